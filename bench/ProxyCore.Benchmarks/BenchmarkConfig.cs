using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;

namespace ProxyCore.Benchmarks;

/// <summary>
/// The one configuration every ProxyCore benchmark class uses, so results are comparable:
/// allocations per op (the hot path must show 0 B) and operations per second; the default config's
/// GitHub markdown exporter writes the table for perf-results/. Jobs come from the command line (e.g. <c>--job short</c>) or the default.
/// </summary>
public sealed class BenchmarkConfig : ManualConfig
{
    public BenchmarkConfig()
    {
        AddDiagnoser(MemoryDiagnoser.Default);
        AddColumn(StatisticColumn.OperationsPerSecond);
        WithOptions(ConfigOptions.JoinSummary);
    }
}
