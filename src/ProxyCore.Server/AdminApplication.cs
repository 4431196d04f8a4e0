using System.Buffers;
using System.Text;
using ProxyCore.Http;
using ProxyCore.Proxy.Metrics;
using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;

namespace ProxyCore.Server;

/// <summary>
/// The admin listener: liveness, readiness, Prometheus metrics and the effective config
/// (secrets redacted). Served by the same HTTP/1.1 code as the proxy, on its own address.
/// </summary>
internal sealed class AdminApplication : IHttpApplication
{
    private readonly ProxyState _state;
    private readonly ProxyMetrics _metrics;
    private readonly Func<bool> _isReady;

    public AdminApplication(ProxyState state, ProxyMetrics metrics, Func<bool> isReady)
    {
        _state = state;
        _metrics = metrics;
        _isReady = isReady;
    }

    public ValueTask ProcessAsync(HttpExchange exchange)
    {
        var request = exchange.Request;
        if (request.Method is not (HttpMethod.Get or HttpMethod.Head))
        {
            return RespondAsync(exchange, 405, "text/plain; charset=utf-8", "Only GET and HEAD are served here.\n");
        }
        var path = request.PathSpan;
        if (path.SequenceEqual("/healthz"u8))
        {
            return RespondAsync(exchange, 200, "text/plain; charset=utf-8", "ok\n");
        }
        if (path.SequenceEqual("/readyz"u8))
        {
            return _isReady()
                ? RespondAsync(exchange, 200, "text/plain; charset=utf-8", "ready\n")
                : RespondAsync(exchange, 503, "text/plain; charset=utf-8", "not ready\n");
        }
        if (path.SequenceEqual("/metrics"u8))
        {
            return RespondAsync(exchange, 200, "text/plain; version=0.0.4; charset=utf-8", _metrics.Export() + DestinationSeries());
        }
        if (path.SequenceEqual("/config"u8))
        {
            return RespondAsync(exchange, 200, "application/json", ProxyConfigLoader.ToRedactedJson(_state.Current.Config) + "\n");
        }
        return RespondAsync(exchange, 404, "text/plain; charset=utf-8", "Admin endpoints: /healthz /readyz /metrics /config\n");
    }

    private string DestinationSeries()
    {
        var sb = new StringBuilder();
        sb.Append("# HELP proxycore_destination_active_requests Requests in flight per destination.\n# TYPE proxycore_destination_active_requests gauge\n");
        var clusters = _state.Current.Clusters;
        foreach (var cluster in clusters.Values)
        {
            foreach (var d in cluster.Destinations)
            {
                sb.Append("proxycore_destination_active_requests{cluster=\"").Append(cluster.Id).Append("\",destination=\"").Append(d.Address)
                    .Append("\"} ").Append(d.State.ActiveRequests).Append('\n');
            }
        }
        sb.Append("# HELP proxycore_destination_healthy Whether a destination takes traffic (1) or not (0).\n# TYPE proxycore_destination_healthy gauge\n");
        foreach (var cluster in clusters.Values)
        {
            foreach (var d in cluster.Destinations)
            {
                sb.Append("proxycore_destination_healthy{cluster=\"").Append(cluster.Id).Append("\",destination=\"").Append(d.Address)
                    .Append("\"} ").Append(d.State.Healthy ? 1 : 0).Append('\n');
            }
        }
        HealthSeries(sb, clusters.Values);
        return sb.ToString();
    }

    /// <summary>Outlier ejections and active probe results, per destination.</summary>
    private static void HealthSeries(StringBuilder sb, IEnumerable<ClusterModel> clusters)
    {
        sb.Append("# HELP proxycore_destination_ejections_total Times outlier detection ejected a destination.\n# TYPE proxycore_destination_ejections_total counter\n");
        foreach (var cluster in clusters)
        {
            foreach (var d in cluster.Destinations)
            {
                sb.Append("proxycore_destination_ejections_total{cluster=\"").Append(cluster.Id).Append("\",destination=\"").Append(d.Address)
                    .Append("\"} ").Append(d.State.EjectionsTotal).Append('\n');
            }
        }
        sb.Append("# HELP proxycore_health_checks_total Active health probes per destination, by result.\n# TYPE proxycore_health_checks_total counter\n");
        foreach (var cluster in clusters)
        {
            if (cluster.Config?.HealthCheck is null)
            {
                continue;
            }
            foreach (var d in cluster.Destinations)
            {
                sb.Append("proxycore_health_checks_total{cluster=\"").Append(cluster.Id).Append("\",destination=\"").Append(d.Address)
                    .Append("\",result=\"passed\"} ").Append(d.State.HealthChecksPassed).Append('\n');
                sb.Append("proxycore_health_checks_total{cluster=\"").Append(cluster.Id).Append("\",destination=\"").Append(d.Address)
                    .Append("\",result=\"failed\"} ").Append(d.State.HealthChecksFailed).Append('\n');
            }
        }
    }

    private static async ValueTask RespondAsync(HttpExchange exchange, int status, string contentType, string body)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var response = exchange.Response;
        response.StatusCode = status;
        response.AddHeader("content-type"u8, Encoding.ASCII.GetBytes(contentType));
        response.AddHeader("cache-control"u8, "no-store"u8);
        await exchange.StartResponseAsync(BodyFraming.ContentLength, bytes.Length).ConfigureAwait(false);
        await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(bytes), flush: false).ConfigureAwait(false);
        await exchange.CompleteResponseAsync().ConfigureAwait(false);
    }
}
