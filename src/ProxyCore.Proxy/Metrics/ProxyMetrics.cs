using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using ProxyCore.Routing.Model;
using ProxyCore.Transport;

namespace ProxyCore.Proxy.Metrics;

/// <summary>
/// The proxy's counters, exported by the admin listener in Prometheus text format (DESIGN.md names
/// the required series). Recording is lock-free and allocation-free once a series was seen: a
/// route's and a cluster's series live in one object each (<see cref="RouteMetrics"/>,
/// <see cref="ClusterMetrics"/>), found by id once and then kept on the snapshot's model, so the hot
/// path does no lookup at all. Series are keyed by id, so they survive reloads.
/// </summary>
public sealed class ProxyMetrics
{
    /// <summary>The route label of requests no route matched (only requests and latency are counted for it).</summary>
    public const string NoRouteId = "(none)";

    private readonly ConcurrentDictionary<(string Route, int Status), StrongBox> _requests = new();
    private readonly ConcurrentDictionary<string, RouteMetrics> _routes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ClusterMetrics> _clusters = new(StringComparer.Ordinal);
    private volatile Action<StringBuilder>[] _exporters = [];

    /// <summary>The series of <paramref name="route"/>, attached to the model on first use (a benign race: both racers get the same object).</summary>
    public RouteMetrics For(RouteModel route)
    {
        if (route.Metrics is RouteMetrics attached)
        {
            return attached;
        }
        var metrics = ForRoute(route.Id);
        route.Metrics = metrics;
        return metrics;
    }

    /// <summary>The series of <paramref name="cluster"/>, attached to the model on first use.</summary>
    public ClusterMetrics For(ClusterModel cluster)
    {
        if (cluster.Metrics is ClusterMetrics attached)
        {
            return attached;
        }
        var metrics = _clusters.GetOrAdd(cluster.Id, static id => new ClusterMetrics(id));
        metrics.ConnectionLimit = cluster.ConnectionLimit; // the same instance across reloads, or a new one if the block came or went
        cluster.Metrics = metrics;
        return metrics;
    }

    /// <summary>The series of the route with this id (or of "(none)": requests no route matched).</summary>
    public RouteMetrics ForRoute(string routeId)
        => _routes.TryGetValue(routeId, out var metrics) ? metrics : _routes.GetOrAdd(routeId, static id => new RouteMetrics(id));

    public void RecordRequest(string route, int status, long elapsedTicks) => RecordRequest(ForRoute(route), status, elapsedTicks);

    public void RecordRequest(RouteMetrics route, int status, long elapsedTicks)
    {
        // The route keeps the counters of the statuses it answered with: no (string, int) hash and compare per
        // request (perf, h1 rig: the dictionary lookup was ~1% of the proxy's user time).
        if (route.CachedCounter(status) is not { } counter)
        {
            if (!_requests.TryGetValue((route.Id, status), out counter))
            {
                counter = _requests.GetOrAdd((route.Id, status), static _ => new StrongBox());
            }
            route.CacheCounter(status, counter);
        }
        Interlocked.Increment(ref counter.Value);
        route.Duration.Observe(elapsedTicks);
    }

    public void RecordUpstream(ClusterModel cluster, long elapsedTicks) => For(cluster).UpstreamDuration.Observe(elapsedTicks);

    /// <summary>Counts a circuit-breaker refusal of <paramref name="cluster"/>: max-requests, max-pending or pending-timeout.</summary>
    public void RecordCircuitOpen(ClusterModel cluster, CircuitOpenReason reason)
    {
        var metrics = For(cluster);
        switch (reason)
        {
            case CircuitOpenReason.MaxPending:
                Interlocked.Increment(ref metrics.RejectedMaxPending);
                break;
            case CircuitOpenReason.PendingTimeout:
                Interlocked.Increment(ref metrics.RejectedPendingTimeout);
                break;
            default:
                Interlocked.Increment(ref metrics.RejectedMaxRequests);
                break;
        }
    }

    /// <summary>A try on <paramref name="cluster"/> under <paramref name="route"/>'s retry policy is retried (the rare path: a lookup is fine).</summary>
    public void RecordRetry(RouteModel route, ClusterModel cluster) => For(route).RecordRetry(cluster.Id);

    /// <summary>Retries of every route and cluster.</summary>
    public long RetryCount => _routes.Values.Sum(r => r.RetryCount);

    /// <summary>Adds series owned by another layer (the LLM stage's token and cost counters) to <see cref="Export"/>.</summary>
    public void AddExporter(Action<StringBuilder> exporter)
    {
        lock (_requests)
        {
            _exporters = [.. _exporters, exporter];
        }
    }

    public long RequestCount(string route, int status) => _requests.TryGetValue((route, status), out var c) ? Volatile.Read(ref c.Value) : 0;

    /// <summary>The whole exposition, process and runtime series included.</summary>
    public string Export()
    {
        var sb = new StringBuilder(8192);
        var routes = _routes.Values.OrderBy(r => r.Id, StringComparer.Ordinal).ToArray();
        var clusters = _clusters.Values.OrderBy(c => c.Id, StringComparer.Ordinal).ToArray();
        sb.Append("# HELP proxycore_requests_total Requests answered, by route and status.\n# TYPE proxycore_requests_total counter\n");
        foreach (var pair in _requests.OrderBy(p => p.Key.Route, StringComparer.Ordinal).ThenBy(p => p.Key.Status))
        {
            sb.Append("proxycore_requests_total{route=\"").Append(Escape(pair.Key.Route)).Append("\",status=\"").Append(pair.Key.Status)
                .Append("\"} ").Append(Volatile.Read(ref pair.Value.Value)).Append('\n');
        }
        sb.Append("# HELP proxycore_request_duration_seconds Time from a complete request head to the end of the response, by route.\n# TYPE proxycore_request_duration_seconds histogram\n");
        foreach (var route in routes)
        {
            route.Duration.WriteTo(sb, "proxycore_request_duration_seconds", route.Label);
        }
        sb.Append("# HELP proxycore_upstream_duration_seconds Time from sending the request head upstream to its response head, by cluster.\n# TYPE proxycore_upstream_duration_seconds histogram\n");
        foreach (var cluster in clusters)
        {
            cluster.UpstreamDuration.WriteTo(sb, "proxycore_upstream_duration_seconds", cluster.Label);
        }
        sb.Append("# HELP proxycore_circuit_breaker_rejections_total Requests refused with 503 circuit-open by a cluster's circuit breaker, by reason (max-requests: maxConcurrentRequests in flight; max-pending: at maxConnections with maxPending already waiting; pending-timeout: waited connectTimeout for a connection).\n# TYPE proxycore_circuit_breaker_rejections_total counter\n");
        foreach (var cluster in clusters)
        {
            AppendCluster(sb, "proxycore_circuit_breaker_rejections_total", cluster, "max-requests", Volatile.Read(ref cluster.RejectedMaxRequests));
            AppendCluster(sb, "proxycore_circuit_breaker_rejections_total", cluster, "max-pending", Volatile.Read(ref cluster.RejectedMaxPending));
            AppendCluster(sb, "proxycore_circuit_breaker_rejections_total", cluster, "pending-timeout", Volatile.Read(ref cluster.RejectedPendingTimeout));
        }
        sb.Append("# HELP proxycore_cluster_upstream_connections Open upstream connections (HTTP/1.1 pooled or HTTP/2 multiplexed) counted against a cluster's circuitBreaker.maxConnections (idle and busy).\n# TYPE proxycore_cluster_upstream_connections gauge\n");
        foreach (var cluster in clusters)
        {
            if (cluster.ConnectionLimit is { } limit)
            {
                sb.Append("proxycore_cluster_upstream_connections{").Append(cluster.Label.TrimEnd(',')).Append("} ").Append(limit.Open).Append('\n');
            }
        }
        sb.Append("# HELP proxycore_cluster_pending_requests Requests waiting now for a connection under a cluster's circuitBreaker.maxConnections.\n# TYPE proxycore_cluster_pending_requests gauge\n");
        foreach (var cluster in clusters)
        {
            if (cluster.ConnectionLimit is { } limit)
            {
                sb.Append("proxycore_cluster_pending_requests{").Append(cluster.Label.TrimEnd(',')).Append("} ").Append(limit.Pending).Append('\n');
            }
        }
        sb.Append("# HELP proxycore_connections Open connections by side.\n# TYPE proxycore_connections gauge\n");
        sb.Append("proxycore_connections{side=\"client\"} ").Append(TransportMetrics.ClientConnectionsOpen).Append('\n');
        sb.Append("proxycore_connections{side=\"upstream\"} ").Append(TransportMetrics.UpstreamConnectionsOpen).Append('\n');
        sb.Append("# HELP proxycore_tls_handshakes_total Client TLS handshakes by result (failed: plaintext clients, scanners, no common version or ALPN, timeouts).\n# TYPE proxycore_tls_handshakes_total counter\n");
        sb.Append("proxycore_tls_handshakes_total{result=\"ok\"} ").Append(ProxyCore.Transport.Tls.TlsServerMiddleware.HandshakesCompleted).Append('\n');
        sb.Append("proxycore_tls_handshakes_total{result=\"failed\"} ").Append(ProxyCore.Transport.Tls.TlsServerMiddleware.HandshakesFailed).Append('\n');
        sb.Append("# HELP proxycore_upstream_retries_total Tries retried under a route retry policy (connect failure, timeout, reset or a listed status), by route and the cluster of the failed try.\n# TYPE proxycore_upstream_retries_total counter\n");
        foreach (var route in routes)
        {
            foreach (var (cluster, count) in route.Retries.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                sb.Append("proxycore_upstream_retries_total{route=\"").Append(Escape(route.Id)).Append("\",cluster=\"").Append(Escape(cluster))
                    .Append("\"} ").Append(Volatile.Read(ref count.Value)).Append('\n');
            }
        }
        sb.Append("# HELP proxycore_rate_limit_rejections_total Requests refused with 429 by a route's rate limit.\n# TYPE proxycore_rate_limit_rejections_total counter\n");
        var matched = routes.Where(r => r.Id != NoRouteId).ToArray();
        foreach (var route in matched)
        {
            sb.Append("proxycore_rate_limit_rejections_total{").Append(route.Label.TrimEnd(',')).Append("} ").Append(Volatile.Read(ref route.RateLimited)).Append('\n');
        }
        sb.Append("# HELP proxycore_auth_rejections_total Requests refused by a route's authentication (401) or consumer allow-list (403), by reason.\n# TYPE proxycore_auth_rejections_total counter\n");
        foreach (var route in matched)
        {
            AppendReason(sb, "proxycore_auth_rejections_total", route, "missing-credentials", Volatile.Read(ref route.AuthMissing));
            AppendReason(sb, "proxycore_auth_rejections_total", route, "invalid-credentials", Volatile.Read(ref route.AuthInvalid));
            AppendReason(sb, "proxycore_auth_rejections_total", route, "consumer-not-allowed", Volatile.Read(ref route.AuthForbidden));
        }
        sb.Append("# HELP proxycore_compressed_responses_total Responses the proxy compressed, by route and content coding.\n# TYPE proxycore_compressed_responses_total counter\n");
        foreach (var route in matched)
        {
            AppendNamed(sb, "proxycore_compressed_responses_total", route, "encoding", "gzip", Volatile.Read(ref route.CompressedGzip));
            AppendNamed(sb, "proxycore_compressed_responses_total", route, "encoding", "br", Volatile.Read(ref route.CompressedBrotli));
        }
        sb.Append("# HELP proxycore_mirror_requests_total Requests copied to a route's mirror cluster, by result (sent: answered; failed: error or timeout; dropped: not sent, too many in flight or a body too large).\n# TYPE proxycore_mirror_requests_total counter\n");
        foreach (var route in routes)
        {
            if (route.MirrorSeen)
            {
                AppendNamed(sb, "proxycore_mirror_requests_total", route, "result", "sent", Volatile.Read(ref route.MirrorSent));
                AppendNamed(sb, "proxycore_mirror_requests_total", route, "result", "failed", Volatile.Read(ref route.MirrorFailed));
                AppendNamed(sb, "proxycore_mirror_requests_total", route, "result", "dropped", Volatile.Read(ref route.MirrorDropped));
            }
        }
        foreach (var exporter in _exporters)
        {
            exporter(sb);
        }
        WriteRuntime(sb);
        return sb.ToString();
    }

    private static void AppendCluster(StringBuilder sb, string name, ClusterMetrics cluster, string reason, long value)
        => sb.Append(name).Append('{').Append(cluster.Label).Append("reason=\"").Append(reason).Append("\"} ").Append(value).Append('\n');

    private static void AppendReason(StringBuilder sb, string name, RouteMetrics route, string reason, long value)
        => AppendNamed(sb, name, route, "reason", reason, value);

    private static void AppendNamed(StringBuilder sb, string name, RouteMetrics route, string label, string labelValue, long value)
        => sb.Append(name).Append('{').Append(route.Label).Append(label).Append("=\"").Append(labelValue).Append("\"} ").Append(value).Append('\n');

    private static void WriteRuntime(StringBuilder sb)
    {
        sb.Append("# HELP dotnet_gc_allocated_bytes_total Bytes allocated on the managed heap since start.\n# TYPE dotnet_gc_allocated_bytes_total counter\n");
        sb.Append("dotnet_gc_allocated_bytes_total ").Append(GC.GetTotalAllocatedBytes(precise: false)).Append('\n');
        sb.Append("# HELP dotnet_gc_collections_total Garbage collections by generation.\n# TYPE dotnet_gc_collections_total counter\n");
        for (int gen = 0; gen <= GC.MaxGeneration; gen++)
        {
            sb.Append("dotnet_gc_collections_total{generation=\"").Append(gen).Append("\"} ").Append(GC.CollectionCount(gen)).Append('\n');
        }
        sb.Append("# HELP process_cpu_seconds_total User and system CPU time.\n# TYPE process_cpu_seconds_total counter\n");
        sb.Append("process_cpu_seconds_total ").Append(Environment.CpuUsage.TotalTime.TotalSeconds.ToString("0.######", System.Globalization.CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("# HELP process_resident_memory_bytes Resident set size.\n# TYPE process_resident_memory_bytes gauge\n");
        sb.Append("process_resident_memory_bytes ").Append(Environment.WorkingSet).Append('\n');
        sb.Append("# HELP process_start_time_seconds Start time since the Unix epoch.\n# TYPE process_start_time_seconds gauge\n");
        sb.Append("process_start_time_seconds ").Append(new DateTimeOffset(Process.GetCurrentProcess().StartTime).ToUnixTimeSeconds()).Append('\n');
    }

    public static string Escape(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

    internal sealed class StrongBox
    {
        public long Value;
    }
}

/// <summary>One route's series. Fields are counters bumped with <see cref="Interlocked"/>; the label text is built once.</summary>
public sealed class RouteMetrics
{
    internal RouteMetrics(string id)
    {
        Id = id;
        Label = "route=\"" + ProxyMetrics.Escape(id) + "\",";
    }

    public string Id { get; }

    /// <summary>`route="id",`, ready for a series' label set.</summary>
    internal string Label { get; }

    public Histogram Duration { get; } = new();

    internal readonly ConcurrentDictionary<string, ProxyMetrics.StrongBox> Retries = new(StringComparer.Ordinal);

    // proxycore_requests_total's counters of this route by status: [status / 100][status % 100], each hundred made on
    // first use; the same objects the metrics' dictionary holds (one per route id and status, never removed).
    private readonly ProxyMetrics.StrongBox?[]?[] _statusCounters = new ProxyMetrics.StrongBox?[]?[10];

    internal ProxyMetrics.StrongBox? CachedCounter(int status)
    {
        uint hundred = (uint)status / 100;
        return hundred < 10 && Volatile.Read(ref _statusCounters[hundred]) is { } slots ? Volatile.Read(ref slots[status % 100]) : null;
    }

    internal void CacheCounter(int status, ProxyMetrics.StrongBox counter)
    {
        uint hundred = (uint)status / 100;
        if (hundred >= 10)
        {
            return;
        }
        var slots = Volatile.Read(ref _statusCounters[hundred]);
        if (slots is null)
        {
            Interlocked.CompareExchange(ref _statusCounters[hundred], new ProxyMetrics.StrongBox?[100], null);
            slots = _statusCounters[hundred]!;
        }
        Volatile.Write(ref slots[status % 100], counter);
    }

    public long RateLimited;
    public long AuthMissing;
    public long AuthInvalid;
    public long AuthForbidden;
    public long CompressedGzip;
    public long CompressedBrotli;
    public long MirrorSent;
    public long MirrorFailed;
    public long MirrorDropped;

    /// <summary>Mirrored exchanges in flight now (bounded by the route's mirror.maxInFlight).</summary>
    public int MirrorInFlight;

    /// <summary>Set once the route mirrored (or tried to): only such routes export mirror series.</summary>
    public bool MirrorSeen;

    public long RetryCount => Retries.Values.Sum(v => Volatile.Read(ref v.Value));

    public long RetriesTo(string cluster) => Retries.TryGetValue(cluster, out var box) ? Volatile.Read(ref box.Value) : 0;

    internal void RecordRetry(string cluster)
    {
        if (!Retries.TryGetValue(cluster, out var box))
        {
            box = Retries.GetOrAdd(cluster, static _ => new ProxyMetrics.StrongBox());
        }
        Interlocked.Increment(ref box.Value);
    }

    /// <summary>Counts a policy refusal by its reason (the `proxycore-error` value).</summary>
    public void RecordRejection(string reason)
    {
        switch (reason)
        {
            case "rate-limited":
                Interlocked.Increment(ref RateLimited);
                break;
            case "missing-credentials":
                Interlocked.Increment(ref AuthMissing);
                break;
            case "invalid-credentials":
                Interlocked.Increment(ref AuthInvalid);
                break;
            case "consumer-not-allowed":
                Interlocked.Increment(ref AuthForbidden);
                break;
        }
    }
}

/// <summary>One cluster's series.</summary>
public sealed class ClusterMetrics
{
    internal ClusterMetrics(string id)
    {
        Id = id;
        Label = "cluster=\"" + ProxyMetrics.Escape(id) + "\",";
    }

    public string Id { get; }

    internal string Label { get; }

    public Histogram UpstreamDuration { get; } = new();

    /// <summary>Refused: maxConcurrentRequests were in flight.</summary>
    public long RejectedMaxRequests;

    /// <summary>Refused at once: at maxConnections with maxPending requests already waiting.</summary>
    public long RejectedMaxPending;

    /// <summary>Refused after waiting the connect timeout for a connection under maxConnections.</summary>
    public long RejectedPendingTimeout;

    /// <summary>The cluster's connection cap as the latest snapshot built it (null: none), for the gauges.</summary>
    public UpstreamConnectionLimit? ConnectionLimit { get; internal set; }
}

/// <summary>Which limit of a cluster's circuit breaker refused a request.</summary>
public enum CircuitOpenReason : byte
{
    MaxRequests,
    MaxPending,
    PendingTimeout,
}
