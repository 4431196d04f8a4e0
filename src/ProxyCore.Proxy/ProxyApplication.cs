using System.Diagnostics;
using ProxyCore.Http;
using ProxyCore.Proxy.Health;
using ProxyCore.Proxy.Metrics;
using ProxyCore.Proxy.Relay;
using ProxyCore.Proxy.Stages;
using ProxyCore.Routing.Model;

namespace ProxyCore.Proxy;

/// <summary>
/// The proxy as an HTTP application: route the request on the current snapshot, pick a destination,
/// relay, record. One instance serves every connection; it holds no per-request state.
/// </summary>
public sealed class ProxyApplication : IHttpApplication, IForwarderObserver, IExchangeRecorder
{
    private const string NoRouteLabel = "(none)";

    private readonly ProxyState _state;
    private readonly HttpForwarder _forwarder;
    private readonly ProxyMetrics _metrics;
    private readonly AccessLog? _accessLog;
    private readonly Tracing.OtlpExporter? _spans;
    private readonly OutlierDetector? _outliers;

    /// <param name="outliers">Fed every forwarded outcome; null = no passive health (outlierDetection blocks are then ignored).</param>
    public ProxyApplication(ProxyState state, HttpForwarder forwarder, ProxyMetrics metrics, AccessLog? accessLog, OutlierDetector? outliers = null, Tracing.OtlpExporter? spans = null)
    {
        _spans = spans;
        _state = state;
        _forwarder = forwarder;
        _metrics = metrics;
        _accessLog = accessLog;
        _outliers = outliers;
    }

    /// <summary>Not async itself: the relay's one async method is the only state machine a request pays for.</summary>
    public ValueTask ProcessAsync(HttpExchange exchange)
    {
        // One volatile read: this request sees one consistent snapshot, even across a reload.
        var snapshot = _state.Current;
        var route = snapshot.Routes.Match(exchange.Request);
        if (route is null)
        {
            return RespondAsync(exchange, ForwarderError.NoRoute, NoRouteLabel);
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
            return RespondAsync(exchange, ForwarderError.NoDestination, route.Id);
        }
        if (!cluster.State.TryEnter(cluster.MaxConcurrentRequests))
        {
            // Circuit breaker: refuse at once rather than queue work the cluster cannot take.
            return RespondAsync(exchange, ForwarderError.CircuitOpen, route.Id);
        }
        destination.State.BeginRequest();
        return _forwarder.ForwardAsync(exchange, route, destination, this);
    }

    private async ValueTask RespondAsync(HttpExchange exchange, ForwarderError error, string routeLabel)
    {
        await exchange.RespondErrorAsync(ForwarderErrors.StatusCode(error), ForwarderErrors.Reason(error), ForwarderErrors.Message(error)).ConfigureAwait(false);
        Record(exchange, routeLabel, null, 0);
    }

    private async ValueTask RejectAsync(HttpExchange exchange, RouteModel route, RoutePolicies policies, PolicyRejection rejection)
    {
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
        Record(exchange, route.Id, null, 0);
    }

    void IForwarderObserver.OnRetry(RouteModel route, DestinationModel failed, ForwarderError reason) => _metrics.RecordRetry();

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
            _metrics.RecordUpstream(upstreamTicks);
        }
        Record(exchange, route.Id, destination.Address, upstreamTicks);
        if (_spans is not null && exchange.ApplicationState is ForwarderContext { Trace.Active: true } context)
        {
            _spans.Export(exchange, context.Trace, route.Id, destination.Address,
                exchange.ResponseStarted ? exchange.Response.StatusCode : 0, Stopwatch.GetTimestamp() - exchange.StartTimestamp);
        }
    }

    void IExchangeRecorder.RecordTry(DestinationModel destination, ForwarderError error, int upstreamStatus, long upstreamTicks)
    {
        destination.Cluster.State.Exit();
        bool failure = error is ForwarderError.ConnectFailed or ForwarderError.ConnectTimeout or ForwarderError.UpstreamClosed
            or ForwarderError.UpstreamProtocol or ForwarderError.UpstreamTimeout or ForwarderError.UpstreamWrite
            || (error == ForwarderError.None && upstreamStatus >= 500);
        destination.State.EndRequest(success: !failure);
        _outliers?.Record(destination.Cluster, destination, failure);
        if (upstreamTicks > 0)
        {
            _metrics.RecordUpstream(upstreamTicks);
        }
    }

    void IExchangeRecorder.RecordExchange(HttpExchange exchange, RouteModel route, DestinationModel? destination, long upstreamTicks, LlmLogFields? llm)
        => Record(exchange, route.Id, destination?.Address, upstreamTicks, llm);

    private void Record(HttpExchange exchange, string routeLabel, string? upstream, long upstreamTicks, LlmLogFields? llm = null)
    {
        long elapsed = Stopwatch.GetTimestamp() - exchange.StartTimestamp;
        int status = exchange.ResponseStarted ? exchange.Response.StatusCode : 0;
        _metrics.RecordRequest(routeLabel, status, elapsed);
        _accessLog?.Log(exchange, routeLabel, upstream, status, elapsed, upstreamTicks, llm);
    }
}
