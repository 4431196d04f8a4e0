using System.Diagnostics;
using ProxyCore.Http;
using ProxyCore.Proxy.Health;
using ProxyCore.Proxy.Metrics;
using ProxyCore.Proxy.Relay;
using ProxyCore.Proxy.Stages;
using ProxyCore.Proxy.Stages.Compression;
using ProxyCore.Proxy.Stages.Mirror;
using ProxyCore.Routing.Model;

namespace ProxyCore.Proxy;

/// <summary>
/// The proxy as an HTTP application: route the request on the current snapshot, pick a destination,
/// relay, record. One instance serves every connection; it holds no per-request state.
/// </summary>
public sealed class ProxyApplication : IHttpApplication, IForwarderObserver, IExchangeRecorder
{
    private readonly ProxyState _state;
    private readonly HttpForwarder _forwarder;
    private readonly ProxyMetrics _metrics;
    private readonly AccessLog? _accessLog;
    private readonly Tracing.OtlpExporter? _spans;
    private readonly OutlierDetector? _outliers;
    private readonly RouteMetrics _noRoute;
    private readonly TrafficMirror? _mirror;

    /// <param name="outliers">Fed every forwarded outcome; null = no passive health (outlierDetection blocks are then ignored).</param>
    /// <param name="mirror">Sends the copies of routes with a `mirror` block; null = mirror blocks are ignored.</param>
    public ProxyApplication(ProxyState state, HttpForwarder forwarder, ProxyMetrics metrics, AccessLog? accessLog, OutlierDetector? outliers = null,
        Tracing.OtlpExporter? spans = null, TrafficMirror? mirror = null)
    {
        _mirror = mirror;
        _spans = spans;
        _state = state;
        _forwarder = forwarder;
        _metrics = metrics;
        _accessLog = accessLog;
        _outliers = outliers;
        _noRoute = metrics.ForRoute(ProxyMetrics.NoRouteId);
    }

    /// <summary>Not async itself: the relay's one async method is the only state machine a request pays for.</summary>
    public ValueTask ProcessAsync(HttpExchange exchange)
    {
        // One volatile read: this request sees one consistent snapshot, even across a reload.
        var snapshot = _state.Current;
        var route = snapshot.Routes.Match(exchange.Request);
        if (route is null)
        {
            return RespondAsync(exchange, ForwarderError.NoRoute, null);
        }
        if (route.Policies is RoutePolicies policies && policies.Evaluate(exchange, out var rejection) == StageStatus.Respond)
        {
            return RejectAsync(exchange, route, policies, rejection);
        }
        if (route.Handler is IRouteHandler handler)
        {
            return handler.HandleAsync(exchange, route, this);
        }
        var cluster = route.Split?.Choose(exchange.Request, Random.Shared) ?? route.Cluster;
        var destination = cluster.LoadBalancer.Pick(cluster.Destinations);
        if (destination is null)
        {
            return RespondAsync(exchange, ForwarderError.NoDestination, route);
        }
        if (!cluster.State.TryEnter(cluster.MaxConcurrentRequests))
        {
            // Circuit breaker: refuse at once rather than queue work the cluster cannot take.
            _metrics.RecordCircuitOpen(cluster, CircuitOpenReason.MaxRequests);
            return RespondAsync(exchange, ForwarderError.CircuitOpen, route);
        }
        destination.State.BeginRequest();
        if (route.Policies is RoutePolicies { Mirror: { } mirror } mirrored && _mirror is not null)
        {
            // Before the relay takes the exchange: the copy of the head is made while it is surely intact.
            _mirror.Offer(exchange, mirror, mirrored, _metrics.For(route));
        }
        return _forwarder.ForwardAsync(exchange, route, destination, this);
    }

    private async ValueTask RespondAsync(HttpExchange exchange, ForwarderError error, RouteModel? route)
    {
        await exchange.RespondErrorAsync(ForwarderErrors.StatusCode(error), ForwarderErrors.Reason(error), ForwarderErrors.Message(error)).ConfigureAwait(false);
        Record(exchange, route is null ? _noRoute : _metrics.For(route), null, 0);
    }

    private async ValueTask RejectAsync(HttpExchange exchange, RouteModel route, RoutePolicies policies, PolicyRejection rejection)
    {
        var metrics = _metrics.For(route);
        metrics.RecordRejection(rejection.Reason);
        if (exchange.BeginErrorResponse(rejection.Status, rejection.Reason))
        {
            policies.AddRejectionHeaders(exchange.Response, rejection);
            if (route.Handler is IRouteHandler handler)
            {
                await handler.FinishErrorAsync(exchange, rejection.Status, rejection.Reason, rejection.Message).ConfigureAwait(false);
            }
            else
            {
                await exchange.FinishErrorResponseAsync(rejection.Status, rejection.Message).ConfigureAwait(false);
            }
        }
        Record(exchange, metrics, null, 0);
    }

    void IForwarderObserver.OnRetry(RouteModel route, DestinationModel failed, ForwarderError reason) => _metrics.RecordRetry(route, failed.Cluster);

    void IForwarderObserver.OnForwarded(HttpExchange exchange, RouteModel route, DestinationModel destination, ForwarderError error, long upstreamTicks)
    {
        destination.Cluster.State.Exit();
        // Only the upstream's own failures count against it: it could not be reached, broke the
        // exchange, or answered 5xx. A client going away or a bad request body is not its fault.
        bool failure = error is ForwarderError.ConnectFailed or ForwarderError.UpstreamTls or ForwarderError.ConnectTimeout or ForwarderError.UpstreamClosed
            or ForwarderError.UpstreamProtocol or ForwarderError.UpstreamTimeout or ForwarderError.UpstreamWrite
            || (error == ForwarderError.None && exchange.Response.StatusCode >= 500);
        destination.State.EndRequest(success: !failure);
        _outliers?.Record(destination.Cluster, destination, failure);
        if (upstreamTicks > 0)
        {
            _metrics.RecordUpstream(destination.Cluster, upstreamTicks);
        }
        RecordPendingRejection(destination.Cluster, error);
        var routeMetrics = _metrics.For(route);
        if (exchange.ApplicationState is ForwarderContext { Coding: not ContentCoding.None } compressed)
        {
            Interlocked.Increment(ref compressed.Coding == ContentCoding.Brotli ? ref routeMetrics.CompressedBrotli : ref routeMetrics.CompressedGzip);
        }
        Record(exchange, routeMetrics, destination.Address, upstreamTicks);
        if (_spans is not null && exchange.ApplicationState is ForwarderContext { Trace.Active: true } context)
        {
            _spans.Export(exchange, context.Trace, route.Id, destination.Address,
                exchange.ResponseStarted ? exchange.Response.StatusCode : 0, Stopwatch.GetTimestamp() - exchange.StartTimestamp);
        }
    }

    void IExchangeRecorder.RecordTry(DestinationModel destination, ForwarderError error, int upstreamStatus, long upstreamTicks)
    {
        destination.Cluster.State.Exit();
        bool failure = error is ForwarderError.ConnectFailed or ForwarderError.UpstreamTls or ForwarderError.ConnectTimeout or ForwarderError.UpstreamClosed
            or ForwarderError.UpstreamProtocol or ForwarderError.UpstreamTimeout or ForwarderError.UpstreamWrite
            || (error == ForwarderError.None && upstreamStatus >= 500);
        destination.State.EndRequest(success: !failure);
        _outliers?.Record(destination.Cluster, destination, failure);
        if (upstreamTicks > 0)
        {
            _metrics.RecordUpstream(destination.Cluster, upstreamTicks);
        }
        RecordPendingRejection(destination.Cluster, error);
    }

    private void RecordPendingRejection(ClusterModel cluster, ForwarderError error)
    {
        if (error == ForwarderError.PendingFull)
        {
            _metrics.RecordCircuitOpen(cluster, CircuitOpenReason.MaxPending);
        }
        else if (error == ForwarderError.PendingTimeout)
        {
            _metrics.RecordCircuitOpen(cluster, CircuitOpenReason.PendingTimeout);
        }
    }

    void IExchangeRecorder.RecordExchange(HttpExchange exchange, RouteModel route, DestinationModel? destination, long upstreamTicks, LlmLogFields? llm)
        => Record(exchange, _metrics.For(route), destination?.Address, upstreamTicks, llm);

    private void Record(HttpExchange exchange, RouteMetrics route, string? upstream, long upstreamTicks, LlmLogFields? llm = null)
    {
        long elapsed = Stopwatch.GetTimestamp() - exchange.StartTimestamp;
        int status = exchange.ResponseStarted ? exchange.Response.StatusCode : 0;
        _metrics.RecordRequest(route, status, elapsed);
        _accessLog?.Log(exchange, route.Id, upstream, status, elapsed, upstreamTicks, llm);
    }
}
