using System.Collections.Concurrent;
using System.Diagnostics;
using K4os.Compression.LZ4;

namespace ProxyCore.Llm.Cache;

/// <summary>What a cached body is, so it can be served to a client that asked for the other delivery.</summary>
public enum LlmCachedFormat : byte
{
    /// <summary>An OpenAI Chat Completions <c>chat.completion</c> JSON object (replay as a stream with <see cref="LlmStreamReplay.OpenAIChat"/>).</summary>
    OpenAIChatJson = 1,

    /// <summary>An Anthropic Messages <c>message</c> JSON object (replay as a stream with <see cref="LlmStreamReplay.Anthropic"/>).</summary>
    AnthropicMessageJson = 2,

    /// <summary>Any other JSON answer (Responses, Embeddings): served as it is, never as a stream.</summary>
    OtherJson = 3,

    /// <summary>A complete <c>text/event-stream</c> body as the provider sent it: served as it is to streaming clients only.</summary>
    EventStream = 4,
}

/// <summary>One stored answer: immutable once inserted, shared by every reader.</summary>
public sealed class LlmCacheEntry
{
    private readonly byte[] _stored;   // LZ4 block, or the body itself when it did not compress
    private readonly bool _compressed;
    internal int _referenced;          // CLOCK bit: set by readers, cleared by the sweeping hand
    internal int _removed;

    internal LlmCacheEntry(UInt128 key, LlmCachedFormat format, byte[] stored, bool compressed, int bodyLength, long createdAt, long expiresAt)
    {
        Key = key;
        Format = format;
        _stored = stored;
        _compressed = compressed;
        BodyLength = bodyLength;
        CreatedAt = createdAt;
        ExpiresAt = expiresAt;
    }

    public UInt128 Key { get; }

    public LlmCachedFormat Format { get; }

    /// <summary>The body's length once decoded: rent a buffer of this size for <see cref="Decode"/>.</summary>
    public int BodyLength { get; }

    /// <summary>What the entry costs against <see cref="LlmResponseCache.MaxBytes"/>: the stored bytes plus a fixed overhead.</summary>
    public int Cost => _stored.Length + LlmResponseCache.EntryOverheadBytes;

    /// <summary>The <see cref="TimeProvider.GetTimestamp"/> at insertion.</summary>
    public long CreatedAt { get; }

    /// <summary>The <see cref="TimeProvider.GetTimestamp"/> after which the entry is stale.</summary>
    public long ExpiresAt { get; }

    /// <summary>The content type to answer with.</summary>
    public string ContentType => Format == LlmCachedFormat.EventStream ? "text/event-stream" : "application/json";

    /// <summary>Decodes the body into <paramref name="destination"/> (at least <see cref="BodyLength"/> bytes); returns the length.</summary>
    public int Decode(Span<byte> destination)
    {
        if (!_compressed)
        {
            _stored.CopyTo(destination);
            return _stored.Length;
        }
        int written = LZ4Codec.Decode(_stored, destination[..BodyLength]);
        Debug.Assert(written == BodyLength);
        return written;
    }

    /// <summary>The body in a new array (tests and the non-hot replay path).</summary>
    public byte[] DecodeToArray()
    {
        var body = new byte[BodyLength];
        Decode(body);
        return body;
    }
}

/// <summary>How a store attempt ended.</summary>
public enum LlmCacheStoreResult : byte
{
    Stored,

    /// <summary>The body is larger than <see cref="LlmResponseCache.MaxEntryBytes"/>.</summary>
    TooLarge,

    /// <summary>The TTL is zero or negative.</summary>
    NotCacheable,
}

/// <summary>
/// The exact cache's store: complete successful answers keyed by <see cref="LlmRequestKeys.Exact"/>,
/// LZ4-compressed, bounded by total bytes and by TTL.
/// </summary>
/// <remarks>
/// <para>
/// Reads take no lock and write no shared counter: a <see cref="ConcurrentDictionary{TKey,TValue}"/>
/// lookup, an expiry check against the injected clock, and a write of the entry's CLOCK bit only when
/// it is clear (so a hot entry's cache line is not bounced between cores on every hit). Hit and miss
/// counts are the caller's metrics. Writes compress outside any
/// lock, publish with one dictionary write, and add their cost to an atomic total.
/// </para>
/// <para>
/// Eviction is CLOCK (second chance): every inserted entry joins a FIFO ring; when the total passes
/// <see cref="MaxBytes"/> one writer at a time (the others go on) turns the hand: an expired or removed
/// entry leaves, a referenced one loses its bit and goes round again, an unreferenced one is evicted.
/// Recently read entries thus survive like LRU, without LRU's per-read list move.
/// </para>
/// </remarks>
public sealed class LlmResponseCache
{
    /// <summary>Dictionary node, entry object and ring slot, roughly: counted so a flood of tiny answers is bounded too.</summary>
    internal const int EntryOverheadBytes = 160;

    private readonly ConcurrentDictionary<UInt128, LlmCacheEntry> _entries = new();
    private readonly ConcurrentQueue<LlmCacheEntry> _clock = new();
    private readonly TimeProvider _time;
    private long _totalBytes;
    private int _sweeping;
    private int _ringCount;       // entries in the ring, live or retired (replaced entries linger until the hand passes)
    private long _evictions;

    /// <param name="maxBytes">Budget for stored (compressed) bytes plus overhead.</param>
    /// <param name="timeProvider">The clock for TTLs; <see cref="TimeProvider.System"/> by default.</param>
    /// <param name="maxEntryBytes">Largest body accepted (uncompressed); default an eighth of <paramref name="maxBytes"/>, so one answer cannot flush the cache.</param>
    public LlmResponseCache(long maxBytes, TimeProvider? timeProvider = null, int maxEntryBytes = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        MaxBytes = maxBytes;
        MaxEntryBytes = maxEntryBytes > 0 ? maxEntryBytes : (int)Math.Min(int.MaxValue / 2, Math.Max(1, maxBytes / 8));
        _time = timeProvider ?? TimeProvider.System;
    }

    public long MaxBytes { get; }

    public int MaxEntryBytes { get; }

    /// <summary>Stored bytes plus overhead of live entries (may pass <see cref="MaxBytes"/> briefly while a sweep runs).</summary>
    public long TotalBytes => Volatile.Read(ref _totalBytes);

    public int Count => _entries.Count;

    public long Evictions => Volatile.Read(ref _evictions);

    /// <summary>Looks up a fresh entry.</summary>
    /// <param name="key">The exact key.</param>
    /// <param name="entry">The entry; decode its body with <see cref="LlmCacheEntry.Decode"/>.</param>
    /// <param name="maxAge">A client's <c>max-age</c>: entries older than this are not served (but stay).</param>
    public bool TryGet(UInt128 key, out LlmCacheEntry entry, TimeSpan? maxAge = null)
    {
        if (_entries.TryGetValue(key, out entry!))
        {
            long now = _time.GetTimestamp();
            if (now < entry.ExpiresAt)
            {
                if (maxAge is null || _time.GetElapsedTime(entry.CreatedAt, now) <= maxAge.Value)
                {
                    if (entry._referenced == 0)
                    {
                        entry._referenced = 1; // a benign race: any reader setting it is enough
                    }
                    return true;
                }
            }
            else
            {
                Remove(entry);
            }
        }
        entry = null!;
        return false;
    }

    /// <summary>Stores a complete successful answer (the caller checks status and completeness); replaces an older entry under the same key.</summary>
    public LlmCacheStoreResult Store(UInt128 key, LlmCachedFormat format, ReadOnlySpan<byte> body, TimeSpan ttl)
    {
        if (ttl <= TimeSpan.Zero)
        {
            return LlmCacheStoreResult.NotCacheable;
        }
        if (body.Length > MaxEntryBytes)
        {
            return LlmCacheStoreResult.TooLarge;
        }
        var entry = Create(key, format, body, ttl);
        if (entry.Cost > MaxBytes)
        {
            return LlmCacheStoreResult.TooLarge;
        }
        // Not AddOrUpdate: its update delegate may run for an attempt that loses a race, and retiring
        // an entry that stays in the table would under-count the budget.
        while (true)
        {
            if (_entries.TryGetValue(key, out var old))
            {
                if (_entries.TryUpdate(key, entry, old))
                {
                    Retire(old);
                    break;
                }
            }
            else if (_entries.TryAdd(key, entry))
            {
                break;
            }
        }
        Interlocked.Add(ref _totalBytes, entry.Cost);
        _clock.Enqueue(entry);
        int ring = Interlocked.Increment(ref _ringCount);
        if (Volatile.Read(ref _totalBytes) > MaxBytes || ring > 2 * _entries.Count + 64)
        {
            Sweep();
        }
        return LlmCacheStoreResult.Stored;
    }

    /// <summary>Drops the entry under <paramref name="key"/>, if any.</summary>
    public bool Invalidate(UInt128 key)
    {
        if (_entries.TryRemove(key, out var entry))
        {
            Retire(entry);
            return true;
        }
        return false;
    }

    private LlmCacheEntry Create(UInt128 key, LlmCachedFormat format, ReadOnlySpan<byte> body, TimeSpan ttl)
    {
        long now = _time.GetTimestamp();
        long ttlTicks = (long)Math.Min(long.MaxValue / 4, ttl.TotalSeconds * _time.TimestampFrequency);
        long expires = now + ttlTicks;
        byte[] target = new byte[LZ4Codec.MaximumOutputSize(body.Length)];
        int encoded = body.Length < 64 ? -1 : LZ4Codec.Encode(body, target, LZ4Level.L00_FAST);
        if (encoded > 0 && encoded < body.Length)
        {
            return new LlmCacheEntry(key, format, target.AsSpan(0, encoded).ToArray(), compressed: true, body.Length, now, expires);
        }
        return new LlmCacheEntry(key, format, body.ToArray(), compressed: false, body.Length, now, expires);
    }

    private void Remove(LlmCacheEntry entry)
    {
        if (_entries.TryRemove(new KeyValuePair<UInt128, LlmCacheEntry>(entry.Key, entry)))
        {
            Retire(entry);
        }
    }

    /// <summary>Counts an entry out exactly once, however many paths (replace, expiry, eviction) reach it.</summary>
    private void Retire(LlmCacheEntry entry)
    {
        if (Interlocked.Exchange(ref entry._removed, 1) == 0)
        {
            Interlocked.Add(ref _totalBytes, -entry.Cost);
        }
    }

    private void Sweep()
    {
        if (Interlocked.CompareExchange(ref _sweeping, 1, 0) != 0)
        {
            return; // another writer turns the hand; this one's entry is already counted
        }
        try
        {
            long now = _time.GetTimestamp();
            // Bounded: at most two turns of the ring (the first clears bits, the second must evict).
            long budget = 2L * Volatile.Read(ref _ringCount) + 1;
            while (budget-- > 0 && _clock.TryDequeue(out var entry))
            {
                bool over = Volatile.Read(ref _totalBytes) > MaxBytes;
                if (Volatile.Read(ref entry._removed) != 0 || now >= entry.ExpiresAt)
                {
                    Remove(entry);
                    Interlocked.Decrement(ref _ringCount);
                    continue;
                }
                if (!over && Volatile.Read(ref _ringCount) <= _entries.Count + 64)
                {
                    _clock.Enqueue(entry); // the ring is compact again and the budget holds
                    break;
                }
                if (!over || Interlocked.Exchange(ref entry._referenced, 0) != 0)
                {
                    _clock.Enqueue(entry);
                    continue;
                }
                Interlocked.Decrement(ref _ringCount);
                if (_entries.TryRemove(new KeyValuePair<UInt128, LlmCacheEntry>(entry.Key, entry)))
                {
                    Retire(entry);
                    Interlocked.Increment(ref _evictions);
                }
            }
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0);
        }
    }
}
