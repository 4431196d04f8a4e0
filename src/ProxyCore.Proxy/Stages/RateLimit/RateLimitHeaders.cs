using System.Buffers.Text;
using System.Diagnostics.CodeAnalysis;
using ProxyCore.Http.Http1;

namespace ProxyCore.Proxy.Stages.RateLimit;

/// <summary>
/// The response fields a rate limit answers with, as bytes, without allocating: <c>Retry-After</c> on a
/// 429 and the <c>RateLimit-Limit</c>, <c>RateLimit-Remaining</c>, <c>RateLimit-Reset</c> fields of
/// draft-ietf-httpapi-ratelimit-headers as it stood up to -06 (later drafts fold the three into one
/// structured <c>RateLimit</c> field; these three are the ones clients and gateways read today).
/// </summary>
public static class RateLimitHeaders
{
    /// <summary>Enough room for any value written here (a non-negative <see cref="int"/> or <see cref="long"/> of seconds).</summary>
    public const int MaxValueLength = 20;

    public static ReadOnlySpan<byte> RetryAfterName => "Retry-After"u8;
    public static ReadOnlySpan<byte> LimitName => "RateLimit-Limit"u8;
    public static ReadOnlySpan<byte> RemainingName => "RateLimit-Remaining"u8;
    public static ReadOnlySpan<byte> ResetName => "RateLimit-Reset"u8;

    /// <summary>
    /// <c>Retry-After</c> as delay-seconds. RFC 9110 §10.2.3: <c>Retry-After = HTTP-date / delay-seconds</c>,
    /// <c>delay-seconds = 1*DIGIT</c> — whole seconds, so the wait is rounded up: a client that obeys it
    /// finds a token waiting rather than another 429.
    /// </summary>
    public static int FormatRetryAfter(in RateLimitDecision decision, Span<byte> destination) =>
        FormatSeconds(decision.RetryAfter, destination);

    /// <summary><c>RateLimit-Limit</c>: the bucket size.</summary>
    public static int FormatLimit(in RateLimitDecision decision, Span<byte> destination) =>
        FormatInteger(decision.Limit, destination);

    /// <summary><c>RateLimit-Remaining</c>: whole tokens left.</summary>
    public static int FormatRemaining(in RateLimitDecision decision, Span<byte> destination) =>
        FormatInteger(decision.Remaining, destination);

    /// <summary>
    /// <c>RateLimit-Reset</c>: seconds until the quota is whole again. The draft makes it a delta in
    /// seconds, never a date, so a client with a wrong clock still reads it right. Rounded up like Retry-After.
    /// </summary>
    public static int FormatReset(in RateLimitDecision decision, Span<byte> destination) =>
        FormatSeconds(decision.ResetAfter, destination);

    /// <summary>A duration as whole seconds, rounded up, never negative.</summary>
    public static int FormatSeconds(TimeSpan duration, Span<byte> destination)
    {
        long ticks = Math.Max(0, duration.Ticks);
        long seconds = ticks / TimeSpan.TicksPerSecond + (ticks % TimeSpan.TicksPerSecond == 0 ? 0 : 1);
        return FormatInteger(seconds, destination);
    }

    /// <summary>
    /// Writes <c>RateLimit-Limit</c>, <c>RateLimit-Remaining</c>, <c>RateLimit-Reset</c>, and when the
    /// request was denied <c>Retry-After</c>, as header lines.
    /// </summary>
    public static void WriteTo(ref HeadWriter writer, in RateLimitDecision decision)
    {
        Span<byte> value = stackalloc byte[MaxValueLength];
        writer.WriteHeader(LimitName, value.Slice(0, FormatLimit(decision, value)));
        writer.WriteHeader(RemainingName, value.Slice(0, FormatRemaining(decision, value)));
        writer.WriteHeader(ResetName, value.Slice(0, FormatReset(decision, value)));
        if (!decision.Allowed)
        {
            writer.WriteHeader(RetryAfterName, value.Slice(0, FormatRetryAfter(decision, value)));
        }
    }

    private static int FormatInteger(long value, Span<byte> destination)
    {
        if (!Utf8Formatter.TryFormat(value, destination, out int written))
        {
            ThrowTooSmall();
        }
        return written;
    }

    [DoesNotReturn]
    private static void ThrowTooSmall() =>
        throw new ArgumentException($"The destination needs room for {MaxValueLength} bytes.", "destination");
}
