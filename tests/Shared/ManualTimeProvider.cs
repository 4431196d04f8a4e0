namespace ProxyCore.Tests.Shared;

/// <summary>
/// A clock the test moves by hand. Timestamps count in <see cref="TimestampFrequency"/> ticks per second
/// (a nanosecond clock by default, as Stopwatch is on Linux); <see cref="Advance"/> is thread-safe so
/// concurrent tests can move time while others read it.
/// </summary>
internal sealed class ManualTimeProvider : TimeProvider
{
    private static readonly DateTimeOffset Epoch = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly long _frequency;
    private long _timestamp;

    public ManualTimeProvider(long frequency = 1_000_000_000, DateTimeOffset? start = null)
    {
        _frequency = frequency;
        // Start far from zero: the code under test must not treat 0 as "never".
        _timestamp = 1_000 * frequency;
        Start = start ?? Epoch;
    }

    public DateTimeOffset Start { get; }

    public override long TimestampFrequency => _frequency;

    public override long GetTimestamp() => Volatile.Read(ref _timestamp);

    public override DateTimeOffset GetUtcNow() =>
        Start + new TimeSpan((long)((Int128)(GetTimestamp() - 1_000 * _frequency) * TimeSpan.TicksPerSecond / _frequency));

    public void Advance(TimeSpan by) => Interlocked.Add(ref _timestamp, ToTimestampTicks(by.Ticks));

    public void AdvanceTicks(long ticks) => Interlocked.Add(ref _timestamp, ticks);

    /// <summary>Sets the wall clock to exactly <paramref name="utc"/> (whole ticks), for claim-time edges.</summary>
    public void SetUtcNow(DateTimeOffset utc)
    {
        long elapsed = (utc - Start).Ticks;
        Volatile.Write(ref _timestamp, 1_000 * _frequency + ToTimestampTicks(elapsed));
    }

    private long ToTimestampTicks(long timeSpanTicks) => (long)((Int128)timeSpanTicks * _frequency / TimeSpan.TicksPerSecond);
}
