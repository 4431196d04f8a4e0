using System.Collections.Concurrent;
using System.Numerics.Tensors;

namespace ProxyCore.Llm.Cache;

/// <summary>A semantic hit: the exact-cache key of the answer to serve, and how close the stored question was.</summary>
/// <param name="ExactKey">Look this up in the <see cref="LlmResponseCache"/>; a miss there (evicted) is a miss.</param>
/// <param name="Similarity">Cosine of the two questions.</param>
public readonly record struct SemanticMatch(UInt128 ExactKey, float Similarity);

/// <summary>What a semantic lookup saw, for metrics and for tuning a route's threshold.</summary>
/// <param name="Scanned">Vectors compared.</param>
/// <param name="BestSimilarity">The best cosine in the partition, whether or not it passed; -1 when empty.</param>
/// <param name="Rejected">Guards that vetoed candidates above the threshold (a near-miss caught).</param>
public readonly record struct SemanticLookupStats(int Scanned, float BestSimilarity, GuardConflict Rejected);

/// <summary>
/// The semantic cache's index: per partition (<see cref="LlmRequestKeys.Partition"/>: everything in the
/// request but the last user turn) a flat array of unit vectors scanned with SIMD dot products, each
/// beside its <see cref="GuardSignature"/>, expiry and the exact key of its answer.
/// </summary>
/// <remarks>
/// <para>
/// A hit is the most similar stored question with cosine ≥ the route's threshold whose guards agree
/// with the query's; answers live only in the exact cache, so eviction there is enough to stop serving.
/// </para>
/// <para>
/// Concurrency: readers take no lock. A partition's state is an immutable snapshot (arrays + count)
/// read with one volatile read; a writer (serialized per partition) appends a row past the published
/// count, then publishes a new snapshot, so a reader never sees a half-written row. Growth and
/// compaction copy into new arrays (old snapshots stay valid for readers still scanning them).
/// </para>
/// <para>
/// Cost: a flat scan is O(entries × dimensions): with 256 floats (the builtin embedder) about 25 µs per
/// 10k entries on one core with AVX2 — see bench SemanticCacheBenchmarks. Memory is 4 bytes a dimension
/// plus ~64 bytes an entry; the default bound of 10k entries a partition and 100k in all holds 100 MB
/// of 256-float vectors at worst.
/// </para>
/// </remarks>
public sealed class SemanticCache
{
    private readonly ConcurrentDictionary<UInt128, Partition> _partitions = new();
    private readonly TimeProvider _time;
    private int _totalEntries;

    /// <param name="dimensions">The embedder's <see cref="Embeddings.ITextEmbedder.Dimensions"/>.</param>
    /// <param name="maxEntriesPerPartition">When a partition is full, its oldest quarter (and anything expired) is dropped.</param>
    /// <param name="maxEntries">All partitions together; past it an add first drops expired entries everywhere, then is refused.</param>
    public SemanticCache(int dimensions, int maxEntriesPerPartition = 10_000, int maxEntries = 100_000, TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEntriesPerPartition, 4);
        Dimensions = dimensions;
        MaxEntriesPerPartition = maxEntriesPerPartition;
        MaxEntries = maxEntries;
        _time = timeProvider ?? TimeProvider.System;
    }

    public int Dimensions { get; }

    public int MaxEntriesPerPartition { get; }

    public int MaxEntries { get; }

    public int Count => Volatile.Read(ref _totalEntries);

    public int PartitionCount => _partitions.Count;

    /// <summary>Remembers that the question <paramref name="embedding"/> (unit length) was answered by the exact entry <paramref name="exactKey"/>.</summary>
    /// <returns>False when the cache is full of live entries (nothing stored).</returns>
    public bool Add(UInt128 partition, ReadOnlySpan<float> embedding, in GuardSignature guards, UInt128 exactKey, TimeSpan ttl)
    {
        if (embedding.Length != Dimensions)
        {
            throw new ArgumentException($"embedding must have {Dimensions} dimensions", nameof(embedding));
        }
        if (ttl <= TimeSpan.Zero)
        {
            return false;
        }
        long now = _time.GetTimestamp();
        if (Volatile.Read(ref _totalEntries) >= MaxEntries)
        {
            foreach (var p in _partitions.Values)
            {
                p.DropExpired(this, now);
            }
            if (Volatile.Read(ref _totalEntries) >= MaxEntries)
            {
                return false;
            }
        }
        long expires = now + (long)Math.Min(long.MaxValue / 4, ttl.TotalSeconds * _time.TimestampFrequency);
        var target = _partitions.GetOrAdd(partition, static _ => new Partition());
        target.Add(this, embedding, new Row(exactKey, guards, expires), now);
        return true;
    }

    /// <summary>Finds the best stored question for <paramref name="embedding"/> at <paramref name="threshold"/> or above whose guards agree with <paramref name="guards"/>.</summary>
    public bool TryFind(UInt128 partition, ReadOnlySpan<float> embedding, in GuardSignature guards, float threshold, out SemanticMatch match, out SemanticLookupStats stats)
    {
        match = default;
        if (embedding.Length != Dimensions || !_partitions.TryGetValue(partition, out var p))
        {
            stats = new SemanticLookupStats(0, -1, GuardConflict.None);
            return false;
        }
        var snapshot = Volatile.Read(ref p.Current);
        long now = _time.GetTimestamp();
        int d = Dimensions;
        var vectors = snapshot.Vectors.AsSpan(0, snapshot.Count * d);
        float best = -1, bestSeen = -1;
        int bestIndex = -1;
        var rejected = GuardConflict.None;
        for (int i = 0, offset = 0; i < snapshot.Count; i++, offset += d)
        {
            float similarity = TensorPrimitives.Dot(vectors.Slice(offset, d), embedding);
            if (similarity > bestSeen)
            {
                bestSeen = similarity;
            }
            if (similarity < threshold || similarity <= best)
            {
                continue;
            }
            ref readonly var row = ref snapshot.Rows[i];
            if (row.ExpiresAt <= now)
            {
                continue;
            }
            var conflict = row.Guards.Compare(guards);
            if (conflict != GuardConflict.None)
            {
                rejected |= conflict;
                continue;
            }
            best = similarity;
            bestIndex = i;
        }
        stats = new SemanticLookupStats(snapshot.Count, bestSeen, rejected);
        if (bestIndex < 0)
        {
            return false;
        }
        match = new SemanticMatch(snapshot.Rows[bestIndex].ExactKey, best);
        return true;
    }

    /// <summary>Drops expired entries everywhere and empty partitions (call from a periodic timer, off the request path).</summary>
    public void Trim()
    {
        long now = _time.GetTimestamp();
        foreach (var (key, p) in _partitions)
        {
            p.DropExpired(this, now);
            if (Volatile.Read(ref p.Current).Count == 0)
            {
                _partitions.TryRemove(new KeyValuePair<UInt128, Partition>(key, p));
            }
        }
    }

    private readonly record struct Row(UInt128 ExactKey, GuardSignature Guards, long ExpiresAt);

    private sealed class Snapshot(float[] vectors, Row[] rows, int count)
    {
        public readonly float[] Vectors = vectors;
        public readonly Row[] Rows = rows;
        public readonly int Count = count;
    }

    private sealed class Partition
    {
        private const int InitialCapacity = 16;

        private readonly Lock _writeLock = new();
        public Snapshot Current = new([], [], 0);

        public void Add(SemanticCache owner, ReadOnlySpan<float> embedding, Row row, long now)
        {
            int d = owner.Dimensions;
            lock (_writeLock)
            {
                var s = Current;
                if (s.Count == owner.MaxEntriesPerPartition)
                {
                    s = Compact(owner, s, now, keepAtMost: owner.MaxEntriesPerPartition * 3 / 4);
                }
                if (s.Count == s.Rows.Length)
                {
                    int capacity = Math.Min(owner.MaxEntriesPerPartition, Math.Max(InitialCapacity, s.Rows.Length * 2));
                    var vectors = new float[capacity * d];
                    var rows = new Row[capacity];
                    s.Vectors.AsSpan(0, s.Count * d).CopyTo(vectors);
                    s.Rows.AsSpan(0, s.Count).CopyTo(rows);
                    s = new Snapshot(vectors, rows, s.Count);
                }
                // Past the published count: no reader looks here until the new snapshot is published.
                embedding.CopyTo(s.Vectors.AsSpan(s.Count * d, d));
                s.Rows[s.Count] = row;
                Volatile.Write(ref Current, new Snapshot(s.Vectors, s.Rows, s.Count + 1));
                Interlocked.Increment(ref owner._totalEntries);
            }
        }

        public void DropExpired(SemanticCache owner, long now)
        {
            lock (_writeLock)
            {
                var s = Current;
                bool any = false;
                for (int i = 0; i < s.Count && !any; i++)
                {
                    any = s.Rows[i].ExpiresAt <= now;
                }
                if (any)
                {
                    Compact(owner, s, now, keepAtMost: s.Count);
                }
            }
        }

        /// <summary>New arrays with the live rows, newest <paramref name="keepAtMost"/> of them (rows are in insertion order).</summary>
        private Snapshot Compact(SemanticCache owner, Snapshot s, long now, int keepAtMost)
        {
            int d = owner.Dimensions;
            int live = 0;
            for (int i = 0; i < s.Count; i++)
            {
                if (s.Rows[i].ExpiresAt > now)
                {
                    live++;
                }
            }
            int skip = Math.Max(0, live - keepAtMost);
            var vectors = new float[s.Rows.Length * d];
            var rows = new Row[s.Rows.Length];
            int n = 0;
            for (int i = 0; i < s.Count; i++)
            {
                if (s.Rows[i].ExpiresAt <= now)
                {
                    continue;
                }
                if (skip > 0)
                {
                    skip--;
                    continue;
                }
                s.Vectors.AsSpan(i * d, d).CopyTo(vectors.AsSpan(n * d, d));
                rows[n++] = s.Rows[i];
            }
            Interlocked.Add(ref owner._totalEntries, n - s.Count);
            var compacted = new Snapshot(vectors, rows, n);
            Volatile.Write(ref Current, compacted);
            return compacted;
        }
    }
}
