using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Exporters;

namespace ProxyCore.Benchmarks;

/// <summary>
/// The one configuration every ProxyCore benchmark class uses, so results are comparable:
/// allocations per op (the hot path must show 0 B), operations per second, and a GitHub markdown
/// table for perf-results/. Jobs come from the command line (e.g. <c>--job short</c>) or the default.
/// </summary>
public sealed class BenchmarkConfig : ManualConfig
{
    public BenchmarkConfig()
    {
        AddDiagnoser(MemoryDiagnoser.Default);
        AddColumn(StatisticColumn.OperationsPerSecond);
        AddExporter(MarkdownExporter.GitHub);
        WithOptions(ConfigOptions.JoinSummary);
    }
}
