using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using ProxyCore.Transport;

namespace ProxyCore.Proxy.Metrics;

/// <summary>
/// The proxy's counters, exported by the admin listener in Prometheus text format (DESIGN.md names
/// the required series). Recording is lock-free and allocation-free once a (route, status) pair was seen.
/// </summary>
public sealed class ProxyMetrics
{
    private readonly ConcurrentDictionary<(string Route, int Status), StrongBox> _requests = new();
    private long _upstreamRetries;
    private volatile Action<StringBuilder>[] _exporters = [];

    public Histogram RequestDuration { get; } = new();

    public Histogram UpstreamDuration { get; } = new();

    public void RecordRequest(string route, int status, long elapsedTicks)
    {
        if (!_requests.TryGetValue((route, status), out var counter))
        {
            counter = _requests.GetOrAdd((route, status), static _ => new StrongBox());
        }
        Interlocked.Increment(ref counter.Value);
        RequestDuration.Observe(elapsedTicks);
    }

    public void RecordUpstream(long elapsedTicks) => UpstreamDuration.Observe(elapsedTicks);

    public void RecordRetry() => Interlocked.Increment(ref _upstreamRetries);

    public long RetryCount => Interlocked.Read(ref _upstreamRetries);

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
        var sb = new StringBuilder(4096);
        sb.Append("# HELP proxycore_requests_total Requests answered, by route and status.\n# TYPE proxycore_requests_total counter\n");
        foreach (var pair in _requests)
        {
            sb.Append("proxycore_requests_total{route=\"").Append(Escape(pair.Key.Route)).Append("\",status=\"").Append(pair.Key.Status)
                .Append("\"} ").Append(Volatile.Read(ref pair.Value.Value)).Append('\n');
        }
        sb.Append("# HELP proxycore_request_duration_seconds Time from a complete request head to the end of the response.\n# TYPE proxycore_request_duration_seconds histogram\n");
        RequestDuration.WriteTo(sb, "proxycore_request_duration_seconds", "");
        sb.Append("# HELP proxycore_upstream_duration_seconds Time from sending the request head upstream to its response head.\n# TYPE proxycore_upstream_duration_seconds histogram\n");
        UpstreamDuration.WriteTo(sb, "proxycore_upstream_duration_seconds", "");
        sb.Append("# HELP proxycore_connections Open connections by side.\n# TYPE proxycore_connections gauge\n");
        sb.Append("proxycore_connections{side=\"client\"} ").Append(TransportMetrics.ClientConnectionsOpen).Append('\n');
        sb.Append("proxycore_connections{side=\"upstream\"} ").Append(TransportMetrics.UpstreamConnectionsOpen).Append('\n');
        sb.Append("# HELP proxycore_tls_handshakes_total Client TLS handshakes by result (failed: plaintext clients, scanners, no common version or ALPN, timeouts).\n# TYPE proxycore_tls_handshakes_total counter\n");
        sb.Append("proxycore_tls_handshakes_total{result=\"ok\"} ").Append(ProxyCore.Transport.Tls.TlsServerMiddleware.HandshakesCompleted).Append('\n');
        sb.Append("proxycore_tls_handshakes_total{result=\"failed\"} ").Append(ProxyCore.Transport.Tls.TlsServerMiddleware.HandshakesFailed).Append('\n');
        sb.Append("# HELP proxycore_upstream_retries_total Tries retried under a route retry policy (connect failure, timeout, reset or a listed status).\n# TYPE proxycore_upstream_retries_total counter\n");
        sb.Append("proxycore_upstream_retries_total ").Append(Volatile.Read(ref _upstreamRetries)).Append('\n');
        foreach (var exporter in _exporters)
        {
            exporter(sb);
        }
        WriteRuntime(sb);
        return sb.ToString();
    }

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

    private sealed class StrongBox
    {
        public long Value;
    }
}
