using BenchmarkDotNet.Running;

namespace ProxyCore.Benchmarks;

public static class Program
{
    /// <summary>Every benchmark class in this assembly; pick with <c>--filter</c>, e.g. <c>--filter *Http1Parser*</c>.</summary>
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
