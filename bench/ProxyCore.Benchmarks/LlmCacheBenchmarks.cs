using System.Text;
using BenchmarkDotNet.Attributes;
using ProxyCore.Llm.Cache;
using ProxyCore.Llm.Embeddings;

namespace ProxyCore.Benchmarks;

/// <summary>
/// The exact cache's request path: canonical hashing of a realistic Chat request (system prompt, three
/// turns, a tool) and a store lookup with a hit, a miss, and a hit decoded into a reused buffer. The
/// baseline is XxHash128 over the raw bytes — what hashing costs when the key ignores JSON structure
/// (and so is sensitive to key order and whitespace).
/// </summary>
[Config(typeof(BenchmarkConfig))]
public class ExactCacheBenchmarks
{
    private static readonly byte[] Request = Encoding.UTF8.GetBytes("""
        {"model":"gpt-4o-mini","temperature":0.2,"max_tokens":512,"stream":true,"stream_options":{"include_usage":true},
         "tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather for a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],
         "messages":[{"role":"system","content":"You are a concise assistant for a travel company. Answer in two sentences."},
                     {"role":"user","content":"What is the weather like in Lisbon in May?"},
                     {"role":"assistant","content":"Mild and sunny, usually 17 to 24 degrees."},
                     {"role":"user","content":"And what should I pack for a week there?"}]}
        """);

    private readonly LlmResponseCache _cache = new(64 << 20);
    private readonly byte[] _decoded = new byte[8192];
    private UInt128 _hitKey;

    [GlobalSetup]
    public void Setup()
    {
        LlmRequestHasher.TryHash("team-a"u8, LlmRequestApi.OpenAIChat, Request, false, out var keys);
        _hitKey = keys.Exact;
        var answer = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("""{"choices":[{"message":{"content":"Pack light layers, a rain jacket and comfortable shoes."}}]}""", 20)));
        for (int i = 0; i < 10_000; i++)
        {
            _cache.Store((UInt128)i * 7919, LlmCachedFormat.OpenAIChatJson, answer, TimeSpan.FromHours(1));
        }
        _cache.Store(_hitKey, LlmCachedFormat.OpenAIChatJson, answer, TimeSpan.FromHours(1));
    }

    [Benchmark(Baseline = true)]
    public UInt128 RawBytesHash() => System.IO.Hashing.XxHash128.HashToUInt128(Request);

    [Benchmark]
    public UInt128 CanonicalHash()
    {
        LlmRequestHasher.TryHash("team-a"u8, LlmRequestApi.OpenAIChat, Request, false, out var keys);
        return keys.Exact;
    }

    [Benchmark]
    public UInt128 CanonicalHashWithPartition()
    {
        LlmRequestHasher.TryHash("team-a"u8, LlmRequestApi.OpenAIChat, Request, true, out var keys);
        return keys.Partition;
    }

    [Benchmark]
    public bool LookupHit() => _cache.TryGet(_hitKey, out _);

    [Benchmark]
    public bool LookupMiss() => _cache.TryGet(_hitKey + 1, out _);

    [Benchmark]
    public int LookupHitAndDecode() => _cache.TryGet(_hitKey, out var entry) ? entry.Decode(_decoded) : 0;
}

/// <summary>
/// A semantic lookup in one partition of 10k and 100k stored questions (builtin embedder vectors, 256
/// floats): the flat SIMD scan, guards on candidates above the threshold. Embedding the query is measured
/// separately (it is paid once per lookup, whatever the partition size).
/// </summary>
[Config(typeof(BenchmarkConfig))]
public class SemanticCacheBenchmarks
{
    private readonly BuiltinEmbedder _embedder = new();
    private SemanticCache _cache = null!;
    private SemanticCache _sameGuards = null!;
    private float[] _query = [];
    private GuardSignature _guards;

    [Params(10_000, 100_000)]
    public int Entries { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _cache = new SemanticCache(_embedder.Dimensions, maxEntriesPerPartition: Entries, maxEntries: Entries);
        var topics = new[] { "password", "invoice", "refund", "shipping", "account", "weather", "python", "docker", "router", "visa" };
        var v = new float[_embedder.Dimensions];
        for (int i = 0; i < Entries; i++)
        {
            string q = $"How do I change the {topics[i % topics.Length]} settings for item {i} in region {i % 97}?";
            _embedder.Embed(q, v);
            _cache.Add(1, v, SemanticGuards.Compute(q), (UInt128)i, TimeSpan.FromDays(1));
        }
        // The worst case for the index: every row shares the query's guards (as questions without
        // numbers, entities or negations do), so the guard hash filters nothing and the int8 scan and
        // its bound do all the work.
        _sameGuards = new SemanticCache(_embedder.Dimensions, maxEntriesPerPartition: Entries, maxEntries: Entries);
        for (int i = 0; i < Entries; i++)
        {
            _embedder.Embed($"How do I change the {topics[i % topics.Length]} settings for item {i} in region {i % 97}?", v);
            _sameGuards.Add(1, v, default, (UInt128)i, TimeSpan.FromDays(1));
        }
        _query = new float[_embedder.Dimensions];
        const string query = "How can I change the refund settings for item 4242 in region 71?";
        _embedder.Embed(query, _query);
        _guards = SemanticGuards.Compute(query);
    }

    /// <summary>The request path: guard-hash filter, int8 bound, float re-rank.</summary>
    [Benchmark]
    public bool Lookup() => _cache.TryFind(1, _query, _guards, SemanticCacheDefaults.BuiltinThreshold, out _, out _);

    /// <summary>Every row shares the query's guards: the int8 scan over all of them.</summary>
    [Benchmark]
    public bool LookupSameGuards() => _sameGuards.TryFind(1, _query, default, SemanticCacheDefaults.BuiltinThreshold, out _, out _);

    /// <summary>The previous lookup, a flat float scan of every row (kept as <c>Explain</c>): the baseline.</summary>
    [Benchmark]
    public SemanticLookupStats FullFloatScan() => _cache.Explain(1, _query, _guards, SemanticCacheDefaults.BuiltinThreshold, out _);

    /// <summary>The same scan over the same-guards cache.</summary>
    [Benchmark]
    public SemanticLookupStats FullFloatScanSameGuards() => _sameGuards.Explain(1, _query, default, SemanticCacheDefaults.BuiltinThreshold, out _);

    [Benchmark]
    public float EmbedQuery()
    {
        _embedder.Embed("How can I change the refund settings for item 4242 in region 71?", _query);
        return _query[0];
    }

    [Benchmark]
    public GuardSignature GuardsOfQuery() => SemanticGuards.Compute("How can I change the refund settings for item 4242 in region 71?");
}
