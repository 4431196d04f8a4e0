using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using ProxyCore.Proxy.Metrics;

namespace ProxyCore.Llm.Gateway;

/// <summary>
/// Token and cost counters of LLM routes (DESIGN.md names): <c>proxycore_llm_tokens_total{kind,key,model,provider}</c>
/// and <c>proxycore_llm_cost_usd_total{key,model}</c>. Lock-free once a label set was seen; cost is
/// kept in nano-dollars so it adds with Interlocked.
/// </summary>
public sealed class LlmMetrics
{
    private const double NanoPerUsd = 1e9;
    private readonly ConcurrentDictionary<(string Kind, string Key, string Model, string Provider), Counter> _tokens = new();
    private readonly ConcurrentDictionary<(string Key, string Model), Counter> _cost = new();
    private readonly ConcurrentDictionary<(string Route, string Phase), Counter> _denied = new();
    private readonly ConcurrentDictionary<string, RouteCounters> _routes = new();
    private readonly long[] _cache = new long[s_cacheResults.Length];
    private static readonly string[] s_cacheResults = ["hit-exact", "hit-semantic", "miss", "bypass"];

    /// <summary>One lookup's result for <c>proxycore_llm_cache_total{result}</c>.</summary>
    public void RecordCache(LlmCacheResult result) => Interlocked.Increment(ref _cache[(int)result]);

    public long CacheCount(LlmCacheResult result) => Volatile.Read(ref _cache[(int)result]);

    /// <summary>
    /// A deny pattern stopped a prompt (<paramref name="phase"/> "prompt") or an answer ("output"), or
    /// could not be checked in time (refused all the same): <c>proxycore_llm_denied_total{route,phase}</c>.
    /// </summary>
    public void RecordDenied(string route, string phase)
        => Interlocked.Increment(ref _denied.GetOrAdd((route, phase), static _ => new Counter()).Value);

    private long _embedderFailures;

    /// <summary>An embedder call failed (the lookup was skipped): <c>proxycore_llm_embedder_failures_total</c>.</summary>
    public void RecordEmbedderFailure() => Interlocked.Increment(ref _embedderFailures);

    public long EmbedderFailures => Volatile.Read(ref _embedderFailures);

    public long Denied(string route, string phase) => _denied.TryGetValue((route, phase), out var c) ? Volatile.Read(ref c.Value) : 0;

    /// <summary>
    /// One answer's figures. The DESIGN.md series keep their label sets (key, model, provider); the route's
    /// own totals go to <c>proxycore_llm_route_tokens_total{route,kind}</c> and <c>proxycore_llm_route_cost_usd_total{route}</c>,
    /// so two routes whose keys and providers share names stay apart without changing the documented series.
    /// </summary>
    public void Record(string route, string key, string model, string provider, long prompt, long completion, long cached, double costUsd)
    {
        Add(("prompt", key, model, provider), prompt);
        Add(("completion", key, model, provider), completion);
        Add(("cached", key, model, provider), cached);
        var perRoute = _routes.GetOrAdd(route, static _ => new RouteCounters());
        AddKnown(ref perRoute.Prompt, prompt);
        AddKnown(ref perRoute.Completion, completion);
        AddKnown(ref perRoute.Cached, cached);
        if (costUsd > 0)
        {
            long nano = (long)Math.Round(costUsd * NanoPerUsd);
            var counter = _cost.GetOrAdd((key, model), static _ => new Counter());
            Interlocked.Add(ref counter.Value, nano);
            Interlocked.Add(ref perRoute.CostNano, nano);
        }
    }

    private static void AddKnown(ref long total, long value)
    {
        if (value > 0)
        {
            Interlocked.Add(ref total, value);
        }
    }

    public long RouteTokens(string route, string kind)
        => !_routes.TryGetValue(route, out var c) ? 0 : kind switch
        {
            "prompt" => Volatile.Read(ref c.Prompt),
            "completion" => Volatile.Read(ref c.Completion),
            _ => Volatile.Read(ref c.Cached),
        };

    public double RouteCostUsd(string route) => _routes.TryGetValue(route, out var c) ? Volatile.Read(ref c.CostNano) / NanoPerUsd : 0;

    private void Add((string, string, string, string) labels, long value)
    {
        if (value < 0)
        {
            return; // unknown figure: not counted as 0 tokens
        }
        var counter = _tokens.GetOrAdd(labels, static _ => new Counter());
        Interlocked.Add(ref counter.Value, value);
    }

    public long Tokens(string kind, string key, string model, string provider)
        => _tokens.TryGetValue((kind, key, model, provider), out var c) ? Volatile.Read(ref c.Value) : 0;

    public double CostUsd(string key, string model) => _cost.TryGetValue((key, model), out var c) ? Volatile.Read(ref c.Value) / NanoPerUsd : 0;

    public void Export(StringBuilder sb)
    {
        sb.Append("# HELP proxycore_llm_tokens_total Tokens through LLM routes by kind (prompt, completion, cached), key, model and provider.\n# TYPE proxycore_llm_tokens_total counter\n");
        foreach (var (labels, counter) in _tokens)
        {
            sb.Append("proxycore_llm_tokens_total{kind=\"").Append(labels.Kind).Append("\",key=\"").Append(ProxyMetrics.Escape(labels.Key))
                .Append("\",model=\"").Append(ProxyMetrics.Escape(labels.Model)).Append("\",provider=\"").Append(ProxyMetrics.Escape(labels.Provider))
                .Append("\"} ").Append(Volatile.Read(ref counter.Value)).Append('\n');
        }
        sb.Append("# HELP proxycore_llm_cost_usd_total Spend through LLM routes in USD, priced by the route's pricing table.\n# TYPE proxycore_llm_cost_usd_total counter\n");
        foreach (var (labels, counter) in _cost)
        {
            sb.Append("proxycore_llm_cost_usd_total{key=\"").Append(ProxyMetrics.Escape(labels.Key)).Append("\",model=\"").Append(ProxyMetrics.Escape(labels.Model))
                .Append("\"} ").Append((Volatile.Read(ref counter.Value) / NanoPerUsd).ToString("0.#########", CultureInfo.InvariantCulture)).Append('\n');
        }
        sb.Append("# HELP proxycore_llm_route_tokens_total Tokens through each LLM route by kind (prompt, completion, cached).\n# TYPE proxycore_llm_route_tokens_total counter\n");
        foreach (var (route, c) in _routes)
        {
            string name = ProxyMetrics.Escape(route);
            sb.Append("proxycore_llm_route_tokens_total{route=\"").Append(name).Append("\",kind=\"prompt\"} ").Append(Volatile.Read(ref c.Prompt)).Append('\n');
            sb.Append("proxycore_llm_route_tokens_total{route=\"").Append(name).Append("\",kind=\"completion\"} ").Append(Volatile.Read(ref c.Completion)).Append('\n');
            sb.Append("proxycore_llm_route_tokens_total{route=\"").Append(name).Append("\",kind=\"cached\"} ").Append(Volatile.Read(ref c.Cached)).Append('\n');
        }
        sb.Append("# HELP proxycore_llm_route_cost_usd_total Spend through each LLM route in USD.\n# TYPE proxycore_llm_route_cost_usd_total counter\n");
        foreach (var (route, c) in _routes)
        {
            sb.Append("proxycore_llm_route_cost_usd_total{route=\"").Append(ProxyMetrics.Escape(route)).Append("\"} ")
                .Append((Volatile.Read(ref c.CostNano) / NanoPerUsd).ToString("0.#########", CultureInfo.InvariantCulture)).Append('\n');
        }
        ExportCache(sb);
        sb.Append("# HELP proxycore_llm_embedder_failures_total Semantic-cache embeddings that failed or timed out (the lookup was skipped).\n# TYPE proxycore_llm_embedder_failures_total counter\nproxycore_llm_embedder_failures_total ")
            .Append(Volatile.Read(ref _embedderFailures)).Append('\n');
        sb.Append("# HELP proxycore_llm_denied_total Prompts and answers stopped by a route's deny patterns, by route and phase (prompt, output).\n# TYPE proxycore_llm_denied_total counter\n");
        foreach (var (labels, counter) in _denied)
        {
            sb.Append("proxycore_llm_denied_total{route=\"").Append(ProxyMetrics.Escape(labels.Route)).Append("\",phase=\"").Append(labels.Phase)
                .Append("\"} ").Append(Volatile.Read(ref counter.Value)).Append('\n');
        }
    }

    private void ExportCache(StringBuilder sb)
    {
        sb.Append("# HELP proxycore_llm_cache_total LLM answer cache lookups by result (hit-exact, hit-semantic, miss, bypass).\n# TYPE proxycore_llm_cache_total counter\n");
        for (int i = 0; i < s_cacheResults.Length; i++)
        {
            sb.Append("proxycore_llm_cache_total{result=\"").Append(s_cacheResults[i]).Append("\"} ").Append(Volatile.Read(ref _cache[i])).Append('\n');
        }
    }

    private sealed class Counter
    {
        public long Value;
    }

    private sealed class RouteCounters
    {
        public long Prompt;
        public long Completion;
        public long Cached;
        public long CostNano;
    }
}

/// <summary>The <c>result</c> label of <c>proxycore_llm_cache_total</c> (and the <c>proxycore-cache</c> answer header).</summary>
public enum LlmCacheResult
{
    HitExact,
    HitSemantic,
    Miss,
    Bypass,
}
