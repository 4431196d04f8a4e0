using System.Text;
using System.Threading.RateLimiting;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using ProxyCore.Proxy.Stages.RateLimit;

namespace ProxyCore.Benchmarks;

/// <summary>
/// One rate-limit decision: our <see cref="TokenBucketLimiter"/> against the BCL's
/// <c>PartitionedRateLimiter</c> with a <c>TokenBucketRateLimiter</c> per partition, on one hot key and
/// round-robin over 10,000 client IPs. Rates are high enough that nearly every request is allowed, so
/// both take their "grant" path. Not quite like for like, in the BCL's favour: its keys are strings made
/// ahead of time, where a proxy would first have to turn the header or address bytes into one.
/// </summary>
[Config(typeof(BenchmarkConfig))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class RateLimiterBenchmarks
{
    private const int DistinctKeys = 10_000;

    private byte[][] _keyBytes = null!;
    private string[] _keyStrings = null!;
    private TokenBucketLimiter _ours = null!;
    private PartitionedRateLimiter<string> _bcl = null!;

    [GlobalSetup]
    public void Setup()
    {
        _keyStrings = Enumerable.Range(0, DistinctKeys).Select(i => $"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}").ToArray();
        _keyBytes = _keyStrings.Select(Encoding.ASCII.GetBytes).ToArray();
        _ours = new TokenBucketLimiter(requestsPerSecond: 1e9, burst: 1_000_000, maxKeys: 16_384, TimeProvider.System);
        _bcl = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = 1_000_000,
            TokensPerPeriod = 1_000_000,
            ReplenishmentPeriod = TimeSpan.FromMilliseconds(100),
            QueueLimit = 0,
            AutoReplenishment = true,
        }));
        // First sight of every key outside the measurement: both tables are warm.
        foreach (var key in _keyBytes)
        {
            _ours.TryAcquire(key);
        }
        foreach (var key in _keyStrings)
        {
            _bcl.AttemptAcquire(key).Dispose();
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _bcl.Dispose();

    [Benchmark(Baseline = true), BenchmarkCategory("HotKey")]
    public bool Bcl_HotKey()
    {
        using var lease = _bcl.AttemptAcquire(_keyStrings[0]);
        return lease.IsAcquired;
    }

    [Benchmark, BenchmarkCategory("HotKey")]
    public bool ProxyCore_HotKey() => _ours.TryAcquire(_keyBytes[0]).Allowed;

    [Benchmark(Baseline = true, OperationsPerInvoke = DistinctKeys), BenchmarkCategory("10kKeys")]
    public int Bcl_10kKeys()
    {
        int allowed = 0;
        foreach (var key in _keyStrings)
        {
            using var lease = _bcl.AttemptAcquire(key);
            allowed += lease.IsAcquired ? 1 : 0;
        }
        return allowed;
    }

    [Benchmark(OperationsPerInvoke = DistinctKeys), BenchmarkCategory("10kKeys")]
    public int ProxyCore_10kKeys()
    {
        int allowed = 0;
        foreach (var key in _keyBytes)
        {
            allowed += _ours.TryAcquire(key).Allowed ? 1 : 0;
        }
        return allowed;
    }
}
