using ProxyCore.Llm.Cache;
using ProxyCore.Llm.Embeddings;
using Xunit.Abstractions;

namespace ProxyCore.Llm.Tests.Cache;

/// <summary>
/// The semantic cache's quality on the labelled pairs with the builtin embedder. Prints the table
/// (and writes it to $PROXYCORE_QUALITY_OUT when set, for perf-results/).
/// </summary>
public class SemanticQualityTests(ITestOutputHelper output)
{
    /// <summary>The builtin embedder's default threshold, chosen from the table (see perf-results/*-semantic-cache-quality.md).</summary>
    internal const float BuiltinDefaultThreshold = SemanticCacheDefaults.BuiltinThreshold;

    /// <summary>
    /// The precision floor. A wrong answer served fast is worse than a miss (DESIGN.md), so a hit must be
    /// right at least 19 times in 20 on pairs built to fool it — near-misses are over half of this set,
    /// far more than in real traffic, where the precision is therefore higher still.
    /// </summary>
    private const double PrecisionFloor = 0.95;

    [Fact]
    public void Pairs_AtLeast200_BothLabels()
    {
        var pairs = SemanticQuality.LoadPairs();
        Assert.True(pairs.Count >= 200, $"{pairs.Count} pairs");
        Assert.True(pairs.Count(p => p.Same) >= 100);
        Assert.True(pairs.Count(p => !p.Same) >= 100);
        Assert.Equal(pairs.Count, pairs.Select(p => (p.A, p.B)).Distinct().Count());
    }

    [Fact]
    public void Builtin_DefaultThresholdWithGuards_PrecisionAboveFloor()
    {
        var pairs = SemanticQuality.LoadPairs();
        var embedder = new BuiltinEmbedder();
        var (cosine, conflicts) = SemanticQuality.Score(pairs, text =>
        {
            var v = new float[embedder.Dimensions];
            embedder.Embed(text, v);
            return v;
        });
        string table = SemanticQuality.Table($"builtin ({embedder.Dimensions} dimensions)", pairs, cosine, conflicts);
        output.WriteLine(table);
        foreach (var line in SemanticQuality.FalseHits(pairs, cosine, conflicts, BuiltinDefaultThreshold))
        {
            output.WriteLine("false hit: " + line);
        }
        if (Environment.GetEnvironmentVariable("PROXYCORE_QUALITY_OUT") is { Length: > 0 } path)
        {
            File.AppendAllText(path, table + "\n");
        }
        var guarded = SemanticQuality.Evaluate(pairs, cosine, conflicts, BuiltinDefaultThreshold, guards: true);
        var plain = SemanticQuality.Evaluate(pairs, cosine, conflicts, BuiltinDefaultThreshold, guards: false);
        Assert.True(guarded.Precision >= PrecisionFloor, $"precision {guarded.Precision:0.000} at {BuiltinDefaultThreshold}");
        Assert.True(guarded.Recall >= 0.4, $"recall {guarded.Recall:0.000}: a cache that never hits is no cache");
        Assert.True(guarded.Precision > plain.Precision, "the guards must earn their keep");
    }
}
