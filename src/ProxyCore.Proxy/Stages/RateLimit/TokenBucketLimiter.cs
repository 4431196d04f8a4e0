using System.Buffers.Binary;
using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ProxyCore.Proxy.Stages.RateLimit;

/// <summary>
/// A token bucket per key — <c>requestsPerSecond</c> refill, <c>burst</c> size — in a table of fixed size.
/// </summary>
/// <remarks>
/// <para><b>One word of state per bucket.</b> Each bucket is kept as its theoretical arrival time (GCRA,
/// the "virtual scheduling" form of a token bucket): the instant at which the bucket would be full again.
/// A request moves it forward by one emission interval T = 1/rate; it passes while the bucket's debt
/// (that instant minus now) stays within burst × T. So a decision is one read, some integer arithmetic
/// and one compare-and-swap of a 64-bit timestamp — no lock, no refill timer, no floating point. Time
/// comes from the injected <see cref="TimeProvider"/> as raw timestamp ticks; T is rounded up to a whole
/// tick, so the limiter may be stricter than the rate by at most one tick per request, never looser.</para>
/// <para><b>Bounded memory.</b> The table holds <c>maxKeys</c> buckets (rounded up to a power of two, at
/// least 8) and never grows: 16 bytes per bucket, allocated once (1,048,576 keys = 16 MiB). It is
/// 8-way set-associative: a key hashes to one set of eight slots; a new key takes an empty slot of
/// its set, else the slot whose bucket is fullest (oldest arrival time). A full bucket is the same as
/// no bucket, so evicting it changes nothing; evicting a bucket that is not yet full forgives that
/// client its debt — it starts again with a full bucket. <see cref="EarlyEvictions"/> counts those: if it
/// climbs, the table is smaller than the number of clients being limited at once.</para>
/// <para><b>Keys are bytes</b> (client IP text, a header value, a consumer name, a JWT claim), compared
/// exactly, never turned into strings. A bucket is identified by a seeded 64-bit hash of its key, not by
/// the key itself: two keys share a bucket only if their hashes collide (about n²/2⁶⁵ for n live keys),
/// and the seed, drawn from the injected random source, keeps clients from choosing colliding keys.</para>
/// <para><b>Races, and what they cost.</b> Taking over a slot marks it busy, writes the new bucket, then
/// publishes the key. Two threads that see the same new key at once may each create a bucket for it;
/// the spare one is evicted first. Either way a race can let one extra request through at the moment
/// a key enters the table, never more, and never on a key that is already there.</para>
/// </remarks>
public sealed class TokenBucketLimiter
{
    private const int Ways = 8;
    private const int WaysLog2 = 3;
    private const long EmptyKey = 0;
    private const long BusyKey = 1;

    private readonly Slot[] _slots;
    private readonly int _setMask;
    private readonly ulong _seed;
    private readonly TimeProvider _time;
    private readonly long _interval;    // T: timestamp ticks per token
    private readonly long _tolerance;   // burst × T: the most debt a bucket may carry
    private readonly int _burst;
    private readonly double _timeSpanTicksPerTick;
    private int _count;
    private long _earlyEvictions;

    /// <param name="requestsPerSecond">Refill rate, tokens per second (&gt; 0; fractions allowed: 0.5 = one every 2 s).</param>
    /// <param name="burst">Bucket size: how many requests may arrive at once after a quiet period (≥ 1).</param>
    /// <param name="maxKeys">
    /// Most distinct keys tracked at once; rounded up to a power of two, at least 8. Memory is 16 bytes
    /// per key, all allocated here. Too small and busy clients evict each other, which forgives them
    /// their debt (see <see cref="EarlyEvictions"/>); there is no unbounded setting by design.
    /// </param>
    /// <param name="time">Clock for refills; <see cref="TimeProvider.System"/> in production.</param>
    /// <param name="random">Seeds the key hash; defaults to <see cref="Random.Shared"/>. Inject a seeded one in tests.</param>
    public TokenBucketLimiter(double requestsPerSecond, int burst, int maxKeys, TimeProvider time, Random? random = null)
    {
        ArgumentNullException.ThrowIfNull(time);
        if (!(requestsPerSecond > 0) || double.IsInfinity(requestsPerSecond))
        {
            throw new ArgumentOutOfRangeException(nameof(requestsPerSecond), requestsPerSecond, "Must be a positive, finite number.");
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(burst, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxKeys, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxKeys, 1 << 30);

        long frequency = time.TimestampFrequency;
        double interval = Math.Ceiling(frequency / requestsPerSecond);
        // Debt is burst × T, and arrival times add T to a timestamp: keep both far from overflow.
        if (interval * burst > long.MaxValue / 4)
        {
            throw new ArgumentOutOfRangeException(nameof(requestsPerSecond), requestsPerSecond, "The rate is too low for this burst.");
        }
        _interval = (long)interval;
        _tolerance = _interval * burst;
        _burst = burst;
        _time = time;
        _timeSpanTicksPerTick = TimeSpan.TicksPerSecond / (double)frequency;
        random ??= Random.Shared;
        _seed = (ulong)random.NextInt64() ^ ((ulong)random.NextInt64() << 1);

        int capacity = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(maxKeys, Ways));
        _slots = new Slot[capacity];
        _setMask = (capacity >> WaysLog2) - 1;
    }

    /// <summary>Buckets the table can hold: <c>maxKeys</c> rounded up to a power of two.</summary>
    public int Capacity => _slots.Length;

    /// <summary>Slots in use (at most <see cref="Capacity"/>).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Buckets evicted while still in debt, whose clients got a full bucket back early.</summary>
    public long EarlyEvictions => Volatile.Read(ref _earlyEvictions);

    /// <summary>The bucket size (the burst).</summary>
    public int Burst => _burst;

    /// <summary>Takes a token from <paramref name="key"/>'s bucket if one is there. Thread-safe, lock-free, allocates nothing.</summary>
    public RateLimitDecision TryAcquire(ReadOnlySpan<byte> key)
    {
        long hash = Hash(key);
        long now = _time.GetTimestamp();
        ref Slot set = ref SetOf(hash);
        for (int i = 0; i < Ways; i++)
        {
            ref Slot slot = ref Unsafe.Add(ref set, i);
            if (Volatile.Read(ref slot.Key) == hash)
            {
                return Acquire(ref slot, hash, now);
            }
        }
        return AcquireNew(ref set, hash, now);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref Slot SetOf(long hash) =>
        ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_slots), ((int)((ulong)hash >> 32) & _setMask) << WaysLog2);

    private RateLimitDecision Acquire(ref Slot slot, long hash, long now)
    {
        while (true)
        {
            long stored = Volatile.Read(ref slot.ArrivalTime);
            long arrival = Math.Max(stored, now); // a bucket idle long enough is simply full
            long next = arrival + _interval;
            long debt = next - now;
            if (debt > _tolerance)
            {
                return Denied(arrival - now, debt - _tolerance);
            }
            if (Interlocked.CompareExchange(ref slot.ArrivalTime, next, stored) == stored)
            {
                return Allowed(debt);
            }
            if (Volatile.Read(ref slot.Key) != hash)
            {
                // Evicted under us: find it again (or a new slot) rather than charge the slot's new owner.
                return AcquireNew(ref SetOf(hash), hash, now);
            }
        }
    }

    /// <summary>A key not found in its set: take the set's best victim slot. Out of line: a miss is the uncommon case.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private RateLimitDecision AcquireNew(ref Slot set, long hash, long now)
    {
        var spin = new SpinWait();
        while (true)
        {
            int victim = -1;
            long victimArrival = long.MaxValue;
            for (int i = 0; i < Ways; i++)
            {
                ref Slot slot = ref Unsafe.Add(ref set, i);
                long key = Volatile.Read(ref slot.Key);
                if (key == hash)
                {
                    return Acquire(ref slot, hash, now); // another thread inserted it meanwhile
                }
                if (key == BusyKey)
                {
                    continue;
                }
                // An empty slot sorts first; then the fullest bucket (the oldest arrival time).
                long arrival = key == EmptyKey ? long.MinValue : Volatile.Read(ref slot.ArrivalTime);
                if (arrival < victimArrival)
                {
                    victim = i;
                    victimArrival = arrival;
                }
            }
            if (victim < 0)
            {
                spin.SpinOnce(); // all eight are being taken over right now; each takeover is three writes
                continue;
            }

            ref Slot target = ref Unsafe.Add(ref set, victim);
            long victimKey = Volatile.Read(ref target.Key);
            if (victimKey == BusyKey || Interlocked.CompareExchange(ref target.Key, BusyKey, victimKey) != victimKey)
            {
                continue; // lost the slot to another thread: look again
            }
            // The slot is ours. A fresh bucket is full; this request takes its first token.
            Volatile.Write(ref target.ArrivalTime, now + _interval);
            Volatile.Write(ref target.Key, hash);
            if (victimKey == EmptyKey)
            {
                Interlocked.Increment(ref _count);
            }
            else if (victimArrival > now)
            {
                Interlocked.Increment(ref _earlyEvictions);
            }
            return Allowed(_interval);
        }
    }

    private RateLimitDecision Allowed(long debt) =>
        new(allowed: true, _burst, (int)((_tolerance - debt) / _interval), TimeSpan.Zero, ToTimeSpan(debt));

    private RateLimitDecision Denied(long untilFull, long untilToken) =>
        new(allowed: false, _burst, remaining: 0, ToTimeSpan(untilToken), ToTimeSpan(untilFull));

    /// <summary>Timestamp ticks to a TimeSpan, rounded up: a client told to wait must not come back a tick too early.</summary>
    private TimeSpan ToTimeSpan(long ticks) => new((long)Math.Ceiling(ticks * _timeSpanTicksPerTick));

    /// <summary>
    /// A seeded 64-bit hash of the key: 8 bytes per round, multiply-rotate mixing, and a final avalanche
    /// so the set index (high bits) and the identity (all bits) both depend on every input byte.
    /// 0 and 1 are reserved for empty and busy slots.
    /// </summary>
    private long Hash(ReadOnlySpan<byte> key)
    {
        const ulong K1 = 0x9E3779B185EBCA87;
        const ulong K2 = 0xC2B2AE3D27D4EB4F;
        ulong h = _seed ^ ((ulong)key.Length * K1);
        while (key.Length >= 8)
        {
            h ^= BitOperations.RotateLeft(BinaryPrimitives.ReadUInt64LittleEndian(key) * K2, 31) * K1;
            h = BitOperations.RotateLeft(h, 27) * K1 + K2;
            key = key.Slice(8);
        }
        if (!key.IsEmpty)
        {
            ulong tail = 0;
            for (int i = 0; i < key.Length; i++)
            {
                tail |= (ulong)key[i] << (8 * i);
            }
            h ^= BitOperations.RotateLeft(tail * K2, 31) * K1;
            h = BitOperations.RotateLeft(h, 27) * K1 + K2;
        }
        // fmix64: every input bit flips each output bit with probability about 1/2.
        h ^= h >> 33;
        h *= 0xFF51AFD7ED558CCD;
        h ^= h >> 33;
        h *= 0xC4CEB9FE1A85EC53;
        h ^= h >> 33;
        long result = (long)h;
        Debug.Assert(EmptyKey == 0 && BusyKey == 1);
        return result > BusyKey || result < 0 ? result : result + 2;
    }

    /// <summary>One bucket: whose it is (a key hash, or empty/busy), and its theoretical arrival time.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Slot
    {
        public long Key;
        public long ArrivalTime;
    }
}
