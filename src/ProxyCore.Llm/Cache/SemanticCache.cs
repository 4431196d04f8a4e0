using System.Buffers;
using System.Collections.Concurrent;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ProxyCore.Llm.Cache;

/// <summary>A semantic hit: the exact-cache key of the answer to serve, and how close the stored question was.</summary>
/// <param name="ExactKey">Look this up in the <see cref="LlmResponseCache"/>; a miss there (evicted) is a miss.</param>
/// <param name="Similarity">Cosine of the two questions.</param>
public readonly record struct SemanticMatch(UInt128 ExactKey, float Similarity);

/// <summary>What a semantic lookup saw, for metrics and for tuning a route's threshold.</summary>
/// <param name="Scanned">Vectors compared (<see cref="SemanticCache.TryFind"/>: the rows whose guards equal the query's; <see cref="SemanticCache.Explain"/>: all).</param>
/// <param name="BestSimilarity">The best cosine among those, whether or not it passed; -1 when none.</param>
/// <param name="Rejected">Guards that vetoed candidates at or above the threshold (a near-miss caught); only <see cref="SemanticCache.Explain"/> looks at rows with other guards.</param>
/// <param name="Reranked">Rows whose float vector was read because the int8 bound could not rule them out (<see cref="SemanticCache.Explain"/>: all).</param>
public readonly record struct SemanticLookupStats(int Scanned, float BestSimilarity, GuardConflict Rejected, int Reranked = 0);

/// <summary>
/// The semantic cache's index: per partition (<see cref="LlmRequestKeys.Partition"/>: everything in the
/// request but the last user turn) flat, contiguous arrays (struct of arrays, no object per entry): the
/// unit vectors as floats and as int8 codes, each row's guard hash, quantization error bounds, expiry
/// and the exact key of its answer.
/// </summary>
/// <remarks>
/// <para>
/// A hit is the most similar stored question with cosine ≥ the route's threshold whose guards agree
/// with the query's; answers live only in the exact cache, so eviction there is enough to stop serving.
/// </para>
/// <para>
/// Lookup, three filters, each exact (the answer is the one a full float scan gives, ties included):
/// (1) guards agree only when every field of the two <see cref="GuardSignature"/>s is equal, so a SIMD
/// compare of one 64-bit hash per row picks the few rows that can hit (the full signature is checked
/// after, for collisions); (2) on those, the int8 dot product (a quarter of the bytes of floats) gives the
/// cosine within a per-row bound from the quantization residuals (Cauchy–Schwarz), so a row whose upper
/// bound is under the threshold or under the best so far is dropped without touching its floats;
/// (3) the survivors are re-ranked with the exact float dot product. 0 B allocated per lookup.
/// </para>
/// <para>
/// Concurrency: readers take no lock. A partition's state is an immutable snapshot (arrays + count)
/// read with one volatile read; a writer (serialized per partition) appends a row past the published
/// count, then publishes a new snapshot, so a reader never sees a half-written row. Growth and
/// compaction copy into new arrays (old snapshots stay valid for readers still scanning them).
/// </para>
/// <para>
/// Cost: the guard-hash scan is 8 bytes a row (10k rows: about 80 KB, a few µs); the vector work is
/// proportional to the rows sharing the query's guards. Memory is 5 bytes a dimension (float + int8)
/// plus ~80 bytes a row; the default bound of 10k entries a partition and 100k in all holds about
/// 136 MB of 256-dimension rows at worst. <see cref="Explain"/> is the old full scan, for tuning.
/// </para>
/// </remarks>
public sealed class SemanticCache
{
    /// <summary>Slack on the quantization bound for float rounding in both dot products (the bound itself is exact arithmetic).</summary>
    private const float BoundSlack = 1e-4f;

    private readonly ConcurrentDictionary<UInt128, Partition> _partitions = new();
    private readonly TimeProvider _time;
    private readonly int _queryLevels;
    private int _totalEntries;

    /// <param name="dimensions">The embedder's <see cref="Embeddings.ITextEmbedder.Dimensions"/>.</param>
    /// <param name="maxEntriesPerPartition">When a partition is full, its oldest quarter (and anything expired) is dropped.</param>
    /// <param name="maxEntries">All partitions together; past it an add first drops expired entries everywhere, then is refused.</param>
    public SemanticCache(int dimensions, int maxEntriesPerPartition = 10_000, int maxEntries = 100_000, TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(dimensions, 65_536);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEntriesPerPartition, 4);
        Dimensions = dimensions;
        MaxEntriesPerPartition = maxEntriesPerPartition;
        MaxEntries = maxEntries;
        _time = timeProvider ?? TimeProvider.System;
        // The query is quantized to int16 levels ±Q; |Σ code·qcode| ≤ 127·Q·d must fit an int32.
        _queryLevels = (int)Math.Min(16_383, (int.MaxValue - 1) / (127L * dimensions));
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
    /// <param name="stats">Over the rows whose guards equal the query's (the only ones that can hit); <see cref="Explain"/> for all.</param>
    public bool TryFind(UInt128 partition, ReadOnlySpan<float> embedding, in GuardSignature guards, float threshold, out SemanticMatch match, out SemanticLookupStats stats)
    {
        match = default;
        if (embedding.Length != Dimensions || !_partitions.TryGetValue(partition, out var p))
        {
            stats = new SemanticLookupStats(0, -1, GuardConflict.None);
            return false;
        }
        var s = Volatile.Read(ref p.Current);
        if (s.Count == 0)
        {
            stats = new SemanticLookupStats(0, -1, GuardConflict.None);
            return false;
        }
        long now = _time.GetTimestamp();
        int d = Dimensions;
        ulong hash = GuardHash(guards);

        short[]? rented = null;
        Span<short> queryCodes = d <= 2048 ? stackalloc short[d] : (rented = ArrayPool<short>.Shared.Rent(d)).AsSpan(0, d);
        QuantizeQuery(embedding, queryCodes, _queryLevels, out float queryScale, out float queryNorm, out float queryResidual);

        float best = -1, bestApprox = float.NegativeInfinity;
        int bestIndex = -1, bestApproxIndex = -1, compared = 0, reranked = 0;
        ref ulong hashes = ref MemoryMarshal.GetArrayDataReference(s.GuardHashes);
        ref sbyte codes = ref MemoryMarshal.GetArrayDataReference(s.Codes);
        ref short query = ref MemoryMarshal.GetReference(queryCodes);
        int i = 0;
        while ((i = NextEqual(ref hashes, s.Count, i, hash)) >= 0)
        {
            ref readonly var row = ref s.Rows[i];
            if (row.ExpiresAt > now && row.Guards.Compare(guards) == GuardConflict.None)
            {
                compared++;
                ref readonly var q = ref s.Quant[i];
                float approx = DotInt8(ref Unsafe.Add(ref codes, (nint)i * d), ref query, d) * (queryScale * q.Scale);
                float upper = approx + queryNorm * q.Residual + queryResidual * q.Norm + BoundSlack;
                if (approx > bestApprox)
                {
                    bestApprox = approx;
                    bestApproxIndex = i;
                }
                // Exact dot only where it could change the answer: the bound says the cosine is at most `upper`.
                if (upper >= threshold && upper > best)
                {
                    reranked++;
                    float similarity = TensorPrimitives.Dot(s.Vectors.AsSpan(i * d, d), embedding);
                    if (similarity >= threshold && similarity > best)
                    {
                        best = similarity;
                        bestIndex = i;
                    }
                }
            }
            i++;
        }
        if (rented is not null)
        {
            ArrayPool<short>.Shared.Return(rented);
        }
        float bestSeen = bestIndex >= 0 ? best
            : bestApproxIndex >= 0 ? TensorPrimitives.Dot(s.Vectors.AsSpan(bestApproxIndex * d, d), embedding) : -1;
        stats = new SemanticLookupStats(compared, bestSeen, GuardConflict.None, reranked);
        if (bestIndex < 0)
        {
            return false;
        }
        match = new SemanticMatch(s.Rows[bestIndex].ExactKey, best);
        return true;
    }

    /// <summary>
    /// The full float scan of a partition, guards checked on every row above the threshold: the same
    /// answer as <see cref="TryFind"/> (a test holds them equal), with stats over every row — the best
    /// cosine whatever the guards, and which guards vetoed. Linear in the partition: for tuning and
    /// tests, not the request path.
    /// </summary>
    public SemanticLookupStats Explain(UInt128 partition, ReadOnlySpan<float> embedding, in GuardSignature guards, float threshold, out SemanticMatch? match)
    {
        match = null;
        if (embedding.Length != Dimensions || !_partitions.TryGetValue(partition, out var p))
        {
            return new SemanticLookupStats(0, -1, GuardConflict.None);
        }
        var s = Volatile.Read(ref p.Current);
        long now = _time.GetTimestamp();
        int d = Dimensions;
        float best = -1, bestSeen = -1;
        int bestIndex = -1;
        var rejected = GuardConflict.None;
        for (int i = 0; i < s.Count; i++)
        {
            float similarity = TensorPrimitives.Dot(s.Vectors.AsSpan(i * d, d), embedding);
            bestSeen = Math.Max(bestSeen, similarity);
            ref readonly var row = ref s.Rows[i];
            if (similarity < threshold || row.ExpiresAt <= now)
            {
                continue;
            }
            var conflict = row.Guards.Compare(guards);
            if (conflict != GuardConflict.None)
            {
                rejected |= conflict;
                continue;
            }
            if (similarity > best)
            {
                best = similarity;
                bestIndex = i;
            }
        }
        if (bestIndex >= 0)
        {
            match = new SemanticMatch(s.Rows[bestIndex].ExactKey, best);
        }
        return new SemanticLookupStats(s.Count, bestSeen, rejected, s.Count);
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

    /// <summary>One 64-bit digest of all five guard fields: equal signatures give equal hashes (the converse is checked row by row).</summary>
    internal static ulong GuardHash(in GuardSignature g)
    {
        ulong h = Mix(g.Numbers ^ 0x9E3779B97F4A7C15UL);
        h = Mix(h ^ g.Antonyms);
        h = Mix(h ^ g.Entities);
        h = Mix(h ^ g.Quoted);
        return Mix(h ^ (uint)g.Negations);

        static ulong Mix(ulong x)
        {
            // splitmix64's finalizer: every input bit moves every output bit.
            x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
            x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
            return x ^ (x >> 31);
        }
    }

    /// <summary>The first index ≥ <paramref name="from"/> below <paramref name="count"/> whose hash equals <paramref name="hash"/>, or -1.</summary>
    private static int NextEqual(ref ulong hashes, int count, int from, ulong hash)
    {
        int i = from;
        if (Vector256.IsHardwareAccelerated)
        {
            var target = Vector256.Create(hash);
            for (; i + Vector256<ulong>.Count <= count; i += Vector256<ulong>.Count)
            {
                uint bits = Vector256.Equals(Vector256.LoadUnsafe(ref hashes, (nuint)i), target).ExtractMostSignificantBits();
                if (bits != 0)
                {
                    return i + BitOperations.TrailingZeroCount(bits);
                }
            }
        }
        else if (Vector128.IsHardwareAccelerated)
        {
            var target = Vector128.Create(hash);
            for (; i + Vector128<ulong>.Count <= count; i += Vector128<ulong>.Count)
            {
                uint bits = Vector128.Equals(Vector128.LoadUnsafe(ref hashes, (nuint)i), target).ExtractMostSignificantBits();
                if (bits != 0)
                {
                    return i + BitOperations.TrailingZeroCount(bits);
                }
            }
        }
        for (; i < count; i++)
        {
            if (Unsafe.Add(ref hashes, i) == hash)
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>Σ code[j]·query[j] in int32 (exact: the constructor keeps the query's levels small enough).</summary>
    internal static int DotInt8(ref sbyte codes, ref short query, int d)
    {
        int j = 0, sum = 0;
        if (Avx2.IsSupported && d >= 16)
        {
            var acc0 = Vector256<int>.Zero;
            var acc1 = Vector256<int>.Zero;
            for (; j + 32 <= d; j += 32)
            {
                acc0 = Avx2.Add(acc0, Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.LoadUnsafe(ref codes, (nuint)j)), Vector256.LoadUnsafe(ref query, (nuint)j)));
                acc1 = Avx2.Add(acc1, Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.LoadUnsafe(ref codes, (nuint)(j + 16))), Vector256.LoadUnsafe(ref query, (nuint)(j + 16))));
            }
            if (j + 16 <= d)
            {
                acc0 = Avx2.Add(acc0, Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.LoadUnsafe(ref codes, (nuint)j)), Vector256.LoadUnsafe(ref query, (nuint)j)));
                j += 16;
            }
            sum = Vector256.Sum(acc0 + acc1);
        }
        else if (Vector128.IsHardwareAccelerated && d >= 16)
        {
            var acc = Vector128<int>.Zero;
            for (; j + 16 <= d; j += 16)
            {
                var (c0, c1) = Vector128.Widen(Vector128.LoadUnsafe(ref codes, (nuint)j));
                acc += Mul(c0, Vector128.LoadUnsafe(ref query, (nuint)j)) + Mul(c1, Vector128.LoadUnsafe(ref query, (nuint)(j + 8)));
            }
            sum = Vector128.Sum(acc);
        }
        for (; j < d; j++)
        {
            sum += Unsafe.Add(ref codes, j) * Unsafe.Add(ref query, j);
        }
        return sum;

        static Vector128<int> Mul(Vector128<short> a, Vector128<short> b)
        {
            var (a0, a1) = Vector128.Widen(a);
            var (b0, b1) = Vector128.Widen(b);
            return a0 * b0 + a1 * b1;
        }
    }

    /// <summary>Symmetric int8 codes of a stored vector (scale = max|v|/127) and the two numbers its error bound needs.</summary>
    private static Quant QuantizeRow(ReadOnlySpan<float> v, Span<sbyte> codes)
    {
        // MaxMagnitude returns the signed element: take its absolute value.
        float max = MathF.Abs(TensorPrimitives.MaxMagnitude(v));
        float scale = max > 0 ? max / 127f : 0f;
        double residual = 0, norm = 0;
        for (int j = 0; j < v.Length; j++)
        {
            int c = scale > 0 ? Math.Clamp((int)MathF.Round(v[j] / scale), -127, 127) : 0;
            codes[j] = (sbyte)c;
            double e = v[j] - (double)c * scale;
            residual += e * e;
            norm += (double)v[j] * v[j];
        }
        // Rounded up, so the bound stays a bound after the cast to float.
        return new Quant(scale, MathF.BitIncrement((float)Math.Sqrt(residual)), MathF.BitIncrement((float)Math.Sqrt(norm)));
    }

    /// <summary>int16 codes of the query, its scale, the norm of its dequantized form and its residual norm.</summary>
    private static void QuantizeQuery(ReadOnlySpan<float> q, Span<short> codes, int levels, out float scale, out float norm, out float residual)
    {
        float max = MathF.Abs(TensorPrimitives.MaxMagnitude(q));
        scale = max > 0 ? max / levels : 0f;
        double r = 0, n = 0;
        for (int j = 0; j < q.Length; j++)
        {
            int c = scale > 0 ? Math.Clamp((int)MathF.Round(q[j] / scale), -levels, levels) : 0;
            codes[j] = (short)c;
            double dq = (double)c * scale;
            double e = q[j] - dq;
            r += e * e;
            n += dq * dq;
        }
        norm = MathF.BitIncrement((float)Math.Sqrt(n));
        residual = MathF.BitIncrement((float)Math.Sqrt(r));
    }

    private readonly record struct Row(UInt128 ExactKey, GuardSignature Guards, long ExpiresAt);

    /// <summary>A row's int8 scale, ‖v − v̂‖ and ‖v‖: |q·v − q̂·v̂| ≤ ‖q̂‖·‖v − v̂‖ + ‖q − q̂‖·‖v‖.</summary>
    private readonly record struct Quant(float Scale, float Residual, float Norm);

    private sealed class Snapshot(int capacity, int dimensions, int count)
    {
        public readonly float[] Vectors = new float[capacity * dimensions];
        public readonly sbyte[] Codes = new sbyte[capacity * dimensions];
        public readonly ulong[] GuardHashes = new ulong[capacity];
        public readonly Quant[] Quant = new Quant[capacity];
        public readonly Row[] Rows = new Row[capacity];
        public readonly int Count = count;

        private Snapshot(Snapshot arrays, int count) : this(0, 0, count)
        {
            Vectors = arrays.Vectors;
            Codes = arrays.Codes;
            GuardHashes = arrays.GuardHashes;
            Quant = arrays.Quant;
            Rows = arrays.Rows;
        }

        public int Capacity => Rows.Length;

        /// <summary>The same arrays with <paramref name="count"/> rows published.</summary>
        public Snapshot WithCount(int count) => new(this, count);

        public void CopyRow(int from, Snapshot target, int to, int d)
        {
            Vectors.AsSpan(from * d, d).CopyTo(target.Vectors.AsSpan(to * d, d));
            Codes.AsSpan(from * d, d).CopyTo(target.Codes.AsSpan(to * d, d));
            target.GuardHashes[to] = GuardHashes[from];
            target.Quant[to] = Quant[from];
            target.Rows[to] = Rows[from];
        }
    }

    private sealed class Partition
    {
        private const int InitialCapacity = 16;

        private readonly Lock _writeLock = new();
        public Snapshot Current = new(0, 0, 0);

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
                if (s.Count == s.Capacity)
                {
                    int capacity = Math.Min(owner.MaxEntriesPerPartition, Math.Max(InitialCapacity, s.Capacity * 2));
                    var grown = new Snapshot(capacity, d, s.Count);
                    for (int i = 0; i < s.Count; i++)
                    {
                        s.CopyRow(i, grown, i, d);
                    }
                    s = grown;
                }
                // Past the published count: no reader looks here until the new snapshot is published.
                int at = s.Count;
                embedding.CopyTo(s.Vectors.AsSpan(at * d, d));
                s.Quant[at] = QuantizeRow(embedding, s.Codes.AsSpan(at * d, d));
                s.GuardHashes[at] = GuardHash(row.Guards);
                s.Rows[at] = row;
                Volatile.Write(ref Current, s.WithCount(at + 1));
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
            var compacted = new Snapshot(s.Capacity, d, 0);
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
                s.CopyRow(i, compacted, n++, d);
            }
            Interlocked.Add(ref owner._totalEntries, n - s.Count);
            compacted = compacted.WithCount(n);
            Volatile.Write(ref Current, compacted);
            return compacted;
        }
    }
}
