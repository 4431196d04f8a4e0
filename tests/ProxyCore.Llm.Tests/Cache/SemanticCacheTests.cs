using ProxyCore.Llm.Cache;
using ProxyCore.Llm.Embeddings;

namespace ProxyCore.Llm.Tests.Cache;

public class SemanticCacheTests
{
    private static readonly BuiltinEmbedder Embedder = new();

    private static float[] Embed(string text)
    {
        var v = new float[Embedder.Dimensions];
        Embedder.Embed(text, v);
        return v;
    }

    private static void Add(SemanticCache cache, string question, UInt128 key, UInt128 partition = default, TimeSpan? ttl = null) =>
        Assert.True(cache.Add(partition, Embed(question), SemanticGuards.Compute(question), key, ttl ?? TimeSpan.FromHours(1)));

    private static bool Find(SemanticCache cache, string question, out SemanticMatch match, float threshold = 0.8f, UInt128 partition = default) =>
        cache.TryFind(partition, Embed(question), SemanticGuards.Compute(question), threshold, out match, out _);

    [Fact]
    public void TryFind_Paraphrase_HitsItsAnswer()
    {
        var cache = new SemanticCache(Embedder.Dimensions);
        Add(cache, "How do I reset my password?", 1);
        Add(cache, "What is the boiling point of water?", 2);
        Assert.True(Find(cache, "How can I reset my password", out var match));
        Assert.Equal((UInt128)1, match.ExactKey);
        Assert.True(match.Similarity >= 0.8f);
    }

    [Theory]
    [InlineData("How do I enable 2FA?", "How do I disable 2FA?")]
    [InlineData("What is 2+2?", "What is 2+3?")]
    public void TryFind_NearMissAboveThreshold_GuardsVeto(string stored, string asked)
    {
        // As if the embedder could not tell them apart at all (same vector): the guards alone must say no.
        var cache = new SemanticCache(Embedder.Dimensions);
        Assert.True(cache.Add(default, Embed(asked), SemanticGuards.Compute(stored), 1, TimeSpan.FromHours(1)));
        Assert.False(cache.TryFind(default, Embed(asked), SemanticGuards.Compute(asked), 0.95f, out _, out var stats));
        Assert.Equal(0, stats.Scanned); // no row shares the query's guards: no vector was compared
        var full = cache.Explain(default, Embed(asked), SemanticGuards.Compute(asked), 0.95f, out var explained);
        Assert.Null(explained);
        Assert.True(full.BestSimilarity >= 0.99f, "the embedding alone would have hit");
        Assert.NotEqual(GuardConflict.None, full.Rejected);
    }

    [Fact]
    public void TryFind_OtherPartition_Miss()
    {
        var cache = new SemanticCache(Embedder.Dimensions);
        Add(cache, "How do I reset my password?", 1, partition: 10);
        Assert.False(Find(cache, "How do I reset my password?", out _, partition: 11));
        Assert.True(Find(cache, "How do I reset my password?", out _, partition: 10));
    }

    [Fact]
    public void TryFind_Expired_Miss()
    {
        var clock = new ManualTimeProvider();
        var cache = new SemanticCache(Embedder.Dimensions, timeProvider: clock);
        Add(cache, "How do I reset my password?", 1, ttl: TimeSpan.FromMinutes(1));
        clock.Advance(TimeSpan.FromMinutes(2));
        Assert.False(Find(cache, "How do I reset my password?", out _));
        cache.Trim();
        Assert.Equal(0, cache.Count);
        Assert.Equal(0, cache.PartitionCount);
    }

    [Fact]
    public void TryFind_ManyEntries_BestOfSeveralAboveThreshold()
    {
        var cache = new SemanticCache(Embedder.Dimensions);
        for (int i = 0; i < 300; i++)
        {
            Add(cache, $"unrelated filler question number {i} about topic {i * 7}", (UInt128)(1000 + i));
        }
        Add(cache, "How do I reset my account password quickly?", 1);
        Add(cache, "How do I reset my password?", 2);
        Assert.True(Find(cache, "How do I reset my password?", out var match, threshold: 0.5f));
        Assert.Equal((UInt128)2, match.ExactKey);
    }

    [Fact]
    public void Add_PartitionFull_OldestDroppedAndBounded()
    {
        var cache = new SemanticCache(Embedder.Dimensions, maxEntriesPerPartition: 8);
        for (int i = 0; i < 20; i++)
        {
            Add(cache, $"question {i}", (UInt128)i);
        }
        Assert.True(cache.Count <= 8);
        Assert.True(Find(cache, "question 19", out var m, threshold: 0.99f));
        Assert.Equal((UInt128)19, m.ExactKey);
        Assert.False(Find(cache, "question 0", out _, threshold: 0.99f));
    }

    [Fact]
    public void Add_TotalFull_Refused()
    {
        var cache = new SemanticCache(Embedder.Dimensions, maxEntriesPerPartition: 100, maxEntries: 5);
        for (int i = 0; i < 5; i++)
        {
            Add(cache, $"q{i}", (UInt128)i, partition: (UInt128)i);
        }
        Assert.False(cache.Add(99, Embed("x"), SemanticGuards.Compute("x"), 9, TimeSpan.FromHours(1)));
    }

    [Fact]
    public async Task AddAndFind_Concurrent_NoTornRows()
    {
        var cache = new SemanticCache(Embedder.Dimensions, maxEntriesPerPartition: 64);
        var questions = Enumerable.Range(0, 200).Select(i => $"distinct question {i} about item {i}").ToArray();
        var vectors = questions.Select(Embed).ToArray();
        var guards = questions.Select(SemanticGuards.Compute).ToArray();
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(() =>
        {
            for (int i = 0; i < 5000; i++)
            {
                cache.Add(1, vectors[i % 200], guards[i % 200], (UInt128)(i % 200), TimeSpan.FromHours(1));
            }
        });
        var readers = Enumerable.Range(0, 2).Select(r => Task.Run(() =>
        {
            int k = 0;
            while (!writer.IsCompleted)
            {
                int q = k++ % 200;
                if (cache.TryFind(1, vectors[q], guards[q], 0.999f, out var m, out _))
                {
                    Assert.Equal((UInt128)q, m.ExactKey); // a row's vector and key always belong together
                }
            }
        })).ToArray();
        await writer;
        await Task.WhenAll(readers);
        Assert.True(cache.Count <= 64);
    }

    [Theory]
    [InlineData(8, 0.95f)]
    [InlineData(40, 0.8f)]
    [InlineData(256, 0.8f)]
    [InlineData(256, 0.95f)]
    [InlineData(384, 0.9f)]
    [InlineData(4096, 0.8f)]
    public void TryFind_QuantizedIndex_SameAnswerAsFullFloatScan(int dimensions, float threshold)
    {
        // Clusters of near-duplicates (so many rows sit near the threshold and near each other) under a
        // few guard signatures: the int8 bound and the guard hash must never change the answer.
        var random = new Random(dimensions * 31 + (int)(threshold * 100));
        int rows = dimensions >= 4096 ? 300 : 2000;
        var cache = new SemanticCache(dimensions, maxEntriesPerPartition: rows, maxEntries: rows);
        GuardSignature[] signatures = [default, new GuardSignature(1, 0, 0, 0, 0), new GuardSignature(0, 0, 7, 0, 1)];
        var centres = Enumerable.Range(0, 20).Select(_ => RandomUnit(random, dimensions, null, 0)).ToArray();
        for (int i = 0; i < rows; i++)
        {
            var v = RandomUnit(random, dimensions, centres[i % centres.Length], random.NextSingle() * 1.2f);
            Assert.True(cache.Add(1, v, signatures[i % signatures.Length], (UInt128)i, TimeSpan.FromHours(1)));
        }
        int hits = 0;
        long scanned = 0, reranked = 0;
        for (int k = 0; k < 300; k++)
        {
            var q = k % 4 == 3 ? RandomUnit(random, dimensions, null, 0) : RandomUnit(random, dimensions, centres[k % centres.Length], random.NextSingle() * 1.2f);
            var g = signatures[k % signatures.Length];
            bool hit = cache.TryFind(1, q, g, threshold, out var match, out var stats);
            cache.Explain(1, q, g, threshold, out var expected);
            scanned += stats.Scanned;
            reranked += stats.Reranked;
            Assert.Equal(expected is not null, hit);
            if (hit)
            {
                hits++;
                Assert.Equal(expected!.Value.ExactKey, match.ExactKey);
                Assert.Equal(expected.Value.Similarity, match.Similarity);
                Assert.Equal(match.Similarity, stats.BestSimilarity);
            }
        }
        Assert.InRange(hits, 1, 299); // the table must exercise both outcomes
        // The guard hash must skip the other signatures' rows, and the int8 bound most of the rest.
        Assert.InRange(scanned, 1, 300L * rows / signatures.Length + 300);
        Assert.True(reranked * 4 < scanned, $"the int8 bound ruled out too few rows: {reranked} re-ranked of {scanned}");
    }

    /// <summary>A unit vector: <paramref name="centre"/> plus noise of relative size <paramref name="noise"/>, or uniform on the sphere.</summary>
    private static float[] RandomUnit(Random random, int dimensions, float[]? centre, float noise)
    {
        var v = new float[dimensions];
        for (int j = 0; j < dimensions; j++)
        {
            // Box-Muller: Gaussian components give a direction uniform on the sphere.
            float gaussian = MathF.Sqrt(-2 * MathF.Log(1 - random.NextSingle())) * MathF.Cos(2 * MathF.PI * random.NextSingle());
            v[j] = centre is null ? gaussian : centre[j] + noise * gaussian / MathF.Sqrt(dimensions);
        }
        float norm = MathF.Sqrt(v.Sum(x => x * x));
        for (int j = 0; j < dimensions; j++)
        {
            v[j] /= norm;
        }
        return v;
    }
}
