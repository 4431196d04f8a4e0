using System.Diagnostics;
using System.Runtime.CompilerServices;
using ProxyCore.Http;
using ProxyCore.Proxy.Metrics;
using ProxyCore.Proxy.Relay;
using ProxyCore.Routing.Model;

namespace ProxyCore.Proxy;

/// <summary>
/// The proxy as an HTTP application: route the request on the current snapshot, pick a destination,
/// relay, record. One instance serves every connection; it holds no per-request state.
/// </summary>
public sealed class ProxyApplication : IHttpApplication
{
    private const string NoRouteLabel = "(none)";

    private readonly ProxyState _state;
    private readonly HttpForwarder _forwarder;
    private readonly ProxyMetrics _metrics;
    private readonly AccessLog? _accessLog;

    public ProxyApplication(ProxyState state, HttpForwarder forwarder, ProxyMetrics metrics, AccessLog? accessLog)
    {
        _state = state;
        _forwarder = forwarder;
        _metrics = metrics;
        _accessLog = accessLog;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask ProcessAsync(HttpExchange exchange)
    {
        // One volatile read: this request sees one consistent snapshot, even across a reload.
        var snapshot = _state.Current;
        var route = snapshot.Routes.Match(exchange.Request);
        string routeId = route?.Id ?? NoRouteLabel;
        DestinationModel? destination = null;
        if (route is null)
        {
            await exchange.RespondErrorAsync(404, ForwarderErrors.Reason(ForwarderError.NoRoute), ForwarderErrors.Message(ForwarderError.NoRoute)).ConfigureAwait(false);
        }
        else
        {
            var cluster = route.Cluster;
            destination = cluster.LoadBalancer.Pick(cluster.Destinations);
            if (destination is null)
            {
                await exchange.RespondErrorAsync(503, ForwarderErrors.Reason(ForwarderError.NoDestination), ForwarderErrors.Message(ForwarderError.NoDestination)).ConfigureAwait(false);
            }
            else
            {
                var error = ForwarderError.ClientGone;
                destination.State.BeginRequest();
                try
                {
                    error = await _forwarder.ForwardAsync(exchange, route, destination).ConfigureAwait(false);
                }
                finally
                {
                    // Only the upstream's own failures count against it (for outlier detection and least-requests).
                    destination.State.EndRequest(success: error is not (ForwarderError.ConnectFailed or ForwarderError.ConnectTimeout
                        or ForwarderError.UpstreamClosed or ForwarderError.UpstreamProtocol or ForwarderError.UpstreamTimeout or ForwarderError.UpstreamWrite));
                }
            }
        }

        long elapsed = Stopwatch.GetTimestamp() - exchange.StartTimestamp;
        int status = exchange.ResponseStarted ? exchange.Response.StatusCode : 0;
        _metrics.RecordRequest(routeId, status, elapsed);
        long upstreamTicks = destination is not null && exchange.ApplicationState is ForwarderContext context ? context.UpstreamTicks : 0;
        if (upstreamTicks > 0)
        {
            _metrics.RecordUpstream(upstreamTicks);
        }
        _accessLog?.Log(exchange, routeId, destination?.Address, status, elapsed, upstreamTicks);
    }
}
