using System.Buffers;
using System.Text;
using ProxyCore.Http.Http1;
using ProxyCore.Proxy.Stages.RateLimit;

namespace ProxyCore.Proxy.Tests.Stages.RateLimit;

public sealed class RateLimitHeadersTests
{
    [Theory]
    [InlineData(0, "0")]
    [InlineData(1, "1")]                      // one tick: still wait a whole second
    [InlineData(TimeSpan.TicksPerSecond, "1")]
    [InlineData(TimeSpan.TicksPerSecond + 1, "2")]
    [InlineData(59 * TimeSpan.TicksPerSecond + 5, "60")]
    [InlineData(-5 * TimeSpan.TicksPerSecond, "0")]
    [InlineData(long.MaxValue, "922337203686")]
    public void FormatSeconds_Duration_WholeSecondsRoundedUp(long ticks, string expected)
    {
        Span<byte> destination = stackalloc byte[RateLimitHeaders.MaxValueLength];
        int written = RateLimitHeaders.FormatSeconds(new TimeSpan(ticks), destination);
        Assert.Equal(expected, Encoding.ASCII.GetString(destination.Slice(0, written)));
    }

    [Fact]
    public void FormatSeconds_DestinationTooSmall_Throws()
    {
        var destination = new byte[1];
        Assert.Throws<ArgumentException>(() => RateLimitHeaders.FormatSeconds(TimeSpan.FromSeconds(42), destination));
    }

    [Fact]
    public void WriteTo_Denied_WritesLimitRemainingResetAndRetryAfter()
    {
        var time = new ManualTimeProvider();
        var limiter = new TokenBucketLimiter(0.25, 2, 8, time, new Random(3)); // one token per 4 s
        limiter.TryAcquire("k"u8);
        limiter.TryAcquire("k"u8);
        time.Advance(TimeSpan.FromMilliseconds(1500));
        var denied = limiter.TryAcquire("k"u8);

        Assert.Equal("RateLimit-Limit: 2\r\nRateLimit-Remaining: 0\r\nRateLimit-Reset: 7\r\nRetry-After: 3\r\n", Write(denied));
    }

    [Fact]
    public void WriteTo_Allowed_OmitsRetryAfter()
    {
        var limiter = new TokenBucketLimiter(10, 20, 8, new ManualTimeProvider(), new Random(3));
        var allowed = limiter.TryAcquire("k"u8);

        Assert.Equal("RateLimit-Limit: 20\r\nRateLimit-Remaining: 19\r\nRateLimit-Reset: 1\r\n", Write(allowed));
    }

    [Fact]
    public void WriteTo_AfterWarmUp_AllocatesNothing()
    {
        var limiter = new TokenBucketLimiter(10, 20, 8, new ManualTimeProvider(), new Random(3));
        var decision = limiter.TryAcquire("k"u8);
        var output = new ArrayBufferWriter<byte>(4096);
        Assert.Equal(0, Allocations.SteadyState(() =>
        {
            WriteInto(output, decision);
            output.ResetWrittenCount();
        }, 1000, warmUps: 1000));
    }

    private static string Write(in RateLimitDecision decision)
    {
        var output = new ArrayBufferWriter<byte>();
        WriteInto(output, decision);
        return Encoding.ASCII.GetString(output.WrittenSpan);
    }

    private static void WriteInto(IBufferWriter<byte> output, in RateLimitDecision decision)
    {
        var writer = new HeadWriter(output);
        RateLimitHeaders.WriteTo(ref writer, decision);
        writer.Commit();
    }
}
