namespace ProxyCore.Llm.Cache;

/// <summary>Defaults measured on the labelled pairs (tests/ProxyCore.Llm.Tests/Cache/Data/semantic-pairs.tsv; table in perf-results/*-semantic-cache-quality.md).</summary>
public static class SemanticCacheDefaults
{
    /// <summary>Cosine threshold for the builtin embedder, with guards.</summary>
    public const float BuiltinThreshold = 0.80f;

    /// <summary>Cosine threshold for MiniLM (all-MiniLM-L6-v2), with guards.</summary>
    public const float MiniLMThreshold = 0.90f;
}
