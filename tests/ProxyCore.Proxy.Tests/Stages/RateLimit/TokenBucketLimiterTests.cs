using System.Buffers.Text;
using ProxyCore.Proxy.Stages.RateLimit;

namespace ProxyCore.Proxy.Tests.Stages.RateLimit;

public sealed class TokenBucketLimiterTests
{
    private const long Second = 1_000_000_000; // ManualTimeProvider's default frequency: ns

    private static TokenBucketLimiter Create(double rps, int burst, ManualTimeProvider time, int maxKeys = 1024) =>
        new(rps, burst, maxKeys, time, new Random(42));

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(200)]
    public void TryAcquire_FreshKey_AllowsBurstThenDenies(int burst)
    {
        var time = new ManualTimeProvider();
        var limiter = Create(rps: 10, burst, time);

        for (int i = 0; i < burst; i++)
        {
            var decision = limiter.TryAcquire("10.0.0.1"u8);
            Assert.True(decision.Allowed);
            Assert.Equal(burst, decision.Limit);
            Assert.Equal(burst - 1 - i, decision.Remaining);
            Assert.Equal(TimeSpan.Zero, decision.RetryAfter);
            Assert.Equal(TimeSpan.FromMilliseconds(100 * (i + 1)), decision.ResetAfter);
        }
        var denied = limiter.TryAcquire("10.0.0.1"u8);
        Assert.False(denied.Allowed);
        Assert.Equal(0, denied.Remaining);
        Assert.Equal(TimeSpan.FromMilliseconds(100), denied.RetryAfter);
        Assert.Equal(TimeSpan.FromMilliseconds(100 * burst), denied.ResetAfter);
    }

    [Fact]
    public void TryAcquire_SteadyRateAfterBurst_AllowsOnePerInterval()
    {
        var time = new ManualTimeProvider();
        var limiter = Create(rps: 10, burst: 3, time);
        for (int i = 0; i < 3; i++)
        {
            Assert.True(limiter.TryAcquire("k"u8).Allowed);
        }

        int allowed = 0;
        for (int step = 0; step < 100; step++) // 10 s in 100 ms steps, three tries each
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            for (int attempt = 0; attempt < 3; attempt++)
            {
                allowed += limiter.TryAcquire("k"u8).Allowed ? 1 : 0;
            }
        }
        Assert.Equal(100, allowed);
    }

    [Theory]
    // rate 4/s (T = 250 ms), burst 4, emptied; then `waitMs` of quiet: floor(wait / T) tokens, capped at the burst.
    [InlineData(100, 0, 150)]
    [InlineData(250, 1, 250)]
    [InlineData(600, 2, 150)]
    [InlineData(999, 3, 1)]
    [InlineData(1000, 4, 250)]
    [InlineData(60_000, 4, 250)]
    public void TryAcquire_AfterQuiet_RefillsWholeTokensExactly(int waitMs, int expectedTokens, int expectedRetryMs)
    {
        var time = new ManualTimeProvider();
        var limiter = Create(rps: 4, burst: 4, time);
        for (int i = 0; i < 4; i++)
        {
            Assert.True(limiter.TryAcquire("k"u8).Allowed);
        }

        time.Advance(TimeSpan.FromMilliseconds(waitMs));
        for (int i = 0; i < expectedTokens; i++)
        {
            var decision = limiter.TryAcquire("k"u8);
            Assert.True(decision.Allowed);
            Assert.Equal(expectedTokens - 1 - i, decision.Remaining);
        }
        var denied = limiter.TryAcquire("k"u8);
        Assert.False(denied.Allowed);
        Assert.Equal(TimeSpan.FromMilliseconds(expectedRetryMs), denied.RetryAfter);
        // Full again after the fraction still missing plus the three whole tokens: (burst − 1) × T + RetryAfter.
        Assert.Equal(TimeSpan.FromMilliseconds(750 + expectedRetryMs), denied.ResetAfter);
    }

    [Fact]
    public void TryAcquire_DeniedThenWaitsRetryAfter_Passes()
    {
        var time = new ManualTimeProvider();
        var limiter = Create(rps: 0.5, burst: 1, time); // one every 2 s
        Assert.True(limiter.TryAcquire("k"u8).Allowed);
        time.Advance(TimeSpan.FromMilliseconds(1500));

        var denied = limiter.TryAcquire("k"u8);
        Assert.False(denied.Allowed);
        Assert.Equal(TimeSpan.FromMilliseconds(500), denied.RetryAfter);

        time.Advance(denied.RetryAfter - TimeSpan.FromTicks(1));
        Assert.False(limiter.TryAcquire("k"u8).Allowed);
        time.Advance(TimeSpan.FromTicks(1));
        Assert.True(limiter.TryAcquire("k"u8).Allowed);
    }

    [Fact]
    public void TryAcquire_IntervalNotWholeTicks_RoundsStricterNeverLooser()
    {
        // 3/s on a nanosecond clock: T = 333,333,333.3 ns, kept as 333,333,334.
        var time = new ManualTimeProvider();
        var limiter = Create(rps: 3, burst: 1, time);
        Assert.True(limiter.TryAcquire("k"u8).Allowed);

        time.AdvanceTicks(333_333_333);
        Assert.False(limiter.TryAcquire("k"u8).Allowed);
        time.AdvanceTicks(1);
        Assert.True(limiter.TryAcquire("k"u8).Allowed);

        int allowed = 0;
        for (int ms = 0; ms < 10_000; ms++)
        {
            time.AdvanceTicks(Second / 1000);
            allowed += limiter.TryAcquire("k"u8).Allowed ? 1 : 0;
        }
        Assert.InRange(allowed, 29, 30); // never more than rate × elapsed
    }

    [Fact]
    public void TryAcquire_OtherClock_ConvertsTicksToTimeSpan()
    {
        var time = new ManualTimeProvider(frequency: TimeSpan.TicksPerSecond); // 100 ns ticks, as on Windows
        var limiter = new TokenBucketLimiter(8, 2, 64, time, new Random(1));
        limiter.TryAcquire("k"u8);
        limiter.TryAcquire("k"u8);
        var denied = limiter.TryAcquire("k"u8);
        Assert.Equal(TimeSpan.FromMilliseconds(125), denied.RetryAfter);
        Assert.Equal(TimeSpan.FromMilliseconds(250), denied.ResetAfter);
    }

    [Fact]
    public void TryAcquire_IdleForLong_BucketHoldsNoMoreThanBurst()
    {
        var time = new ManualTimeProvider();
        var limiter = Create(rps: 100, burst: 5, time);
        Assert.True(limiter.TryAcquire("k"u8).Allowed);
        time.Advance(TimeSpan.FromDays(3));
        int allowed = 0;
        while (limiter.TryAcquire("k"u8).Allowed)
        {
            allowed++;
        }
        Assert.Equal(5, allowed);
    }

    [Fact]
    public void TryAcquire_KeysDifferingByOneByte_HaveSeparateBuckets()
    {
        var time = new ManualTimeProvider();
        var limiter = Create(rps: 1, burst: 2, time);
        byte[][] keys = ["10.0.0.1"u8.ToArray(), "10.0.0.10"u8.ToArray(), "10.0.0.2"u8.ToArray(), ""u8.ToArray(),
            "a-header-value-longer-than-eight"u8.ToArray(), "a-header-value-longer-than-eighT"u8.ToArray()];

        foreach (var key in keys)
        {
            Assert.True(limiter.TryAcquire(key).Allowed);
            Assert.True(limiter.TryAcquire(key).Allowed);
            Assert.False(limiter.TryAcquire(key).Allowed);
        }
        Assert.Equal(keys.Length, limiter.Count);
    }

    [Theory]
    [InlineData(1, 8)]
    [InlineData(8, 8)]
    [InlineData(9, 16)]
    [InlineData(1000, 1024)]
    [InlineData(1 << 20, 1 << 20)]
    public void Constructor_MaxKeys_RoundsUpToPowerOfTwo(int maxKeys, int capacity)
    {
        var limiter = new TokenBucketLimiter(1, 1, maxKeys, new ManualTimeProvider());
        Assert.Equal(capacity, limiter.Capacity);
        Assert.Equal(0, limiter.Count);
    }

    [Theory]
    [InlineData(0, 1, 8)]
    [InlineData(-1, 1, 8)]
    [InlineData(double.NaN, 1, 8)]
    [InlineData(double.PositiveInfinity, 1, 8)]
    [InlineData(1e-12, 1_000_000_000, 8)]
    [InlineData(1, 0, 8)]
    [InlineData(1, 1, 0)]
    public void Constructor_OutOfRange_Throws(double rps, int burst, int maxKeys)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenBucketLimiter(rps, burst, maxKeys, new ManualTimeProvider()));
    }

    [Fact]
    public void TryAcquire_MillionDistinctKeys_TableStaysAtCapacityWithoutAllocating()
    {
        var time = new ManualTimeProvider();
        var limiter = Create(rps: 10, burst: 10, time, maxKeys: 4096);
        var key = new byte[16];
        Utf8Formatter.TryFormat(-1, key, out int warm);
        limiter.TryAcquire(key.AsSpan(0, warm));

        int next = 0;
        long allocated = Allocations.SteadyState(() =>
        {
            int i = next++;
            Utf8Formatter.TryFormat(i, key, out int written);
            Assert.True(limiter.TryAcquire(key.AsSpan(0, written)).Allowed); // a new or evicted key starts full
            if ((i & 1023) == 0)
            {
                time.Advance(TimeSpan.FromMilliseconds(1));
            }
        }, 1_000_000, warmUps: 0);

        Assert.Equal(0, allocated);
        Assert.Equal(4096, limiter.Capacity);
        Assert.Equal(limiter.Capacity, limiter.Count);
    }

    [Fact]
    public void TryAcquire_EvictedWhileInDebt_StartsFullAndIsCounted()
    {
        var time = new ManualTimeProvider();
        var limiter = Create(rps: 1, burst: 3, time, maxKeys: 8); // a single set of eight slots
        for (int i = 0; i < 3; i++)
        {
            limiter.TryAcquire("victim"u8);
        }
        Assert.False(limiter.TryAcquire("victim"u8).Allowed);

        // Eight newer clients, each emptying its bucket: the victim's debt is now the oldest, so it goes.
        time.Advance(TimeSpan.FromMilliseconds(10));
        for (int k = 0; k < 8; k++)
        {
            byte[] other = [(byte)'c', (byte)k];
            for (int i = 0; i < 3; i++)
            {
                limiter.TryAcquire(other);
            }
        }
        Assert.Equal(1, limiter.EarlyEvictions);

        var again = limiter.TryAcquire("victim"u8);
        Assert.True(again.Allowed);
        Assert.Equal(2, again.Remaining);
    }

    [Fact]
    public void TryAcquire_ChurnOfOneShotKeys_KeepsTheClientDeepestInDebt()
    {
        var time = new ManualTimeProvider();
        var limiter = Create(rps: 1, burst: 10, time, maxKeys: 8);
        for (int i = 0; i < 5; i++)
        {
            limiter.TryAcquire("hot"u8);
        }
        for (int k = 0; k < 1000; k++)
        {
            byte[] other = [(byte)'c', (byte)k, (byte)(k >> 8)];
            limiter.TryAcquire(other); // one token each: less debt than "hot", so evicted before it
        }
        var decision = limiter.TryAcquire("hot"u8);
        Assert.True(decision.Allowed);
        Assert.Equal(4, decision.Remaining); // not forgiven
        Assert.Equal(8, limiter.Count);
    }

    [Fact]
    public void TryAcquire_HotKeyAfterWarmUp_AllocatesNothing()
    {
        var time = new ManualTimeProvider();
        var limiter = Create(rps: 1000, burst: 100, time);
        for (int i = 0; i < 10_000; i++)
        {
            limiter.TryAcquire("consumer-a"u8); // warm up: first sight, and the JIT's tiers
        }
        int allowed = 0, calls = 0;
        Assert.Equal(0, Allocations.SteadyState(() =>
        {
            time.AdvanceTicks(Second / 2000);
            allowed += limiter.TryAcquire("consumer-a"u8).Allowed ? 1 : 0;
            calls++;
        }, 10_000, warmUps: 0));
        Assert.Equal(calls / 2, allowed); // half the requests at twice the rate
    }

    [Fact]
    public void TryAcquire_ManyThreadsOneKey_NeverAllowsMoreThanBurstPlusRateTimesElapsed()
    {
        const int burst = 50;
        const double rps = 1000;
        var time = new ManualTimeProvider();
        var limiter = Create(rps, burst, time);
        long start = time.GetTimestamp();
        int allowed = limiter.TryAcquire("shared"u8).Allowed ? 1 : 0; // the key enters the table here

        Parallel.For(0, 400_000, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            if (limiter.TryAcquire("shared"u8).Allowed)
            {
                Interlocked.Increment(ref allowed);
            }
            if (i % 100 == 0)
            {
                time.AdvanceTicks(Second / 10_000); // 0.1 ms: well under one token per 100 tries
            }
        });

        double elapsedSeconds = (time.GetTimestamp() - start) / (double)Second;
        Assert.InRange(allowed, burst, burst + (int)Math.Floor(rps * elapsedSeconds));
    }

    [Fact]
    public void TryAcquire_ManyThreadsManyKeysInSmallTable_StaysBoundedAndConsistent()
    {
        var time = new ManualTimeProvider();
        var limiter = Create(rps: 5, burst: 5, time, maxKeys: 64);
        Parallel.For(0, 200_000, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            Span<byte> key = stackalloc byte[12];
            Utf8Formatter.TryFormat(i % 5000, key, out int written);
            var decision = limiter.TryAcquire(key.Slice(0, written));
            Assert.InRange(decision.Remaining, 0, 4);
            if (i % 1000 == 0)
            {
                time.Advance(TimeSpan.FromMilliseconds(1));
            }
        });
        Assert.Equal(64, limiter.Count);
    }
}
