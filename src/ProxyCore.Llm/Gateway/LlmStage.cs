using System.Collections.Concurrent;
using System.Net.Http;
using System.Text;
using ProxyCore.Http.Http1;
using ProxyCore.Llm.Cache;
using ProxyCore.Llm.Embeddings;
using ProxyCore.Proxy.Metrics;
using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;
using ProxyCore.Transport;

namespace ProxyCore.Llm.Gateway;

/// <summary>
/// The LLM stage of one proxy host: builds an <see cref="LlmRouteHandler"/> for every route with an
/// <c>llm</c> block when a snapshot is prepared, and owns what outlives a reload (metrics, the
/// budgets of virtual keys). Routes without <c>llm</c> get nothing and pay nothing.
/// </summary>
public sealed class LlmStage
{
    private readonly UpstreamConnectionPool _pool;
    private readonly TimeProvider _time;
    private readonly Http1Limits _limits;
    private readonly ConcurrentDictionary<(string Route, string Key), LlmKeyBudget> _budgets = new();
    private readonly ConcurrentDictionary<string, LlmResponseCache> _caches = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SemanticCache> _semantic = new(StringComparer.Ordinal);

    public LlmStage(UpstreamConnectionPool pool, ProxyMetrics metrics, Http1Limits? limits = null, TimeProvider? time = null)
    {
        _pool = pool;
        _time = time ?? TimeProvider.System;
        _limits = limits ?? Http1Limits.Default;
        metrics.AddExporter(Metrics.Export);
    }

    public LlmMetrics Metrics { get; } = new();

    /// <summary>Sets <see cref="RouteModel.Handler"/> on every LLM route of <paramref name="snapshot"/> (before it is published).</summary>
    /// <exception cref="InvalidOperationException">A route names a provider cluster the snapshot lacks.</exception>
    public void Prepare(ProxySnapshot snapshot)
    {
        foreach (var route in snapshot.Routes.Routes)
        {
            if (route.Config?.Llm is { } llm)
            {
                route.Handler = new LlmRouteHandler(route.Id, llm, snapshot, this);
            }
        }
    }

    internal UpstreamConnectionPool Pool => _pool;

    internal TimeProvider Time => _time;

    internal Http1Limits Limits => _limits;

    /// <summary>
    /// The exact-cache store of a route: kept across reloads (warm answers survive a config change),
    /// replaced when the route's <c>cache.maxBytes</c> changed.
    /// </summary>
    internal LlmResponseCache Cache(string route, long maxBytes)
    {
        while (true)
        {
            var cache = _caches.GetOrAdd(route, _ => new LlmResponseCache(maxBytes, _time));
            if (cache.MaxBytes == maxBytes)
            {
                return cache;
            }
            var replacement = new LlmResponseCache(maxBytes, _time);
            if (_caches.TryUpdate(route, replacement, cache))
            {
                return replacement;
            }
        }
    }

    /// <summary>The semantic index of a route (kept across reloads, like its answer store).</summary>
    internal SemanticCache Semantic(string route, int dimensions)
    {
        var index = _semantic.GetOrAdd(route, _ => new SemanticCache(dimensions, timeProvider: _time));
        if (index.Dimensions != dimensions)
        {
            index = new SemanticCache(dimensions, timeProvider: _time);
            _semantic[route] = index;
        }
        return index;
    }

    internal LlmKeyBudget Budget(string route, string key) => _budgets.GetOrAdd((route, key), _ => new LlmKeyBudget(_time));

    /// <summary>
    /// Makes the local-model embedder (<c>"embedder": "local"</c>); set at start by a server built with
    /// <c>-p:ProxyCoreMiniLM=true</c>, null in the lean binary (whose config validator refuses "local").
    /// </summary>
    public static Func<ITextEmbedder>? LocalEmbedderFactory { get; set; }

    private ITextEmbedder? _local;
    private HttpClient? _embeddingsHttp;

    /// <summary>The local model, loaded once per process on first use (it is large) and shared by every route.</summary>
    internal ITextEmbedder? LocalEmbedder => LocalEmbedderFactory is { } factory ? LazyInitializer.EnsureInitialized(ref _local, factory) : null;

    /// <summary>One client (one connection pool) for every route's OpenAI-compatible embedder, across reloads.</summary>
    internal HttpClient EmbeddingsHttp => LazyInitializer.EnsureInitialized(ref _embeddingsHttp,
        () => new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5), UseProxy = false }));

    internal static byte[] Ascii(string value) => Encoding.ASCII.GetBytes(value);
}
