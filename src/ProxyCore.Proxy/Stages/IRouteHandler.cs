using ProxyCore.Http;
using ProxyCore.Proxy.Relay;
using ProxyCore.Routing.Model;

namespace ProxyCore.Proxy.Stages;

/// <summary>
/// A terminal stage that answers a route's requests itself instead of the plain relay: the LLM
/// stage (ProxyCore.Llm) plugs in here, so the proxy core neither references it nor pays for it on
/// routes without it. Built into <see cref="RouteModel.Handler"/> while a snapshot is prepared.
/// </summary>
public interface IRouteHandler
{
    /// <summary>Serves one exchange that passed the route's policies; reports how it went through <paramref name="recorder"/> exactly once.</summary>
    ValueTask HandleAsync(HttpExchange exchange, RouteModel route, IExchangeRecorder recorder);

    /// <summary>
    /// Writes the body of one of the proxy's own error answers (begun with
    /// <see cref="HttpExchange.BeginErrorResponse"/>) in the shape this route's clients expect.
    /// </summary>
    ValueTask FinishErrorAsync(HttpExchange exchange, int status, string reason, string message);
}

/// <summary>Metrics, access log and destination health for exchanges a <see cref="IRouteHandler"/> served.</summary>
public interface IExchangeRecorder
{
    /// <summary>
    /// One upstream try ended (<paramref name="error"/> None = it answered). Counts against the
    /// destination's health; the handler had entered the cluster and begun the destination's request.
    /// </summary>
    void RecordTry(DestinationModel destination, ForwarderError error, int upstreamStatus, long upstreamTicks);

    /// <summary>The exchange is over: request metrics and the access-log line (with <paramref name="llm"/> fields when given).</summary>
    void RecordExchange(HttpExchange exchange, RouteModel route, DestinationModel? destination, long upstreamTicks, LlmLogFields? llm);
}

/// <summary>What an LLM route adds to its access-log line.</summary>
public sealed record LlmLogFields(string Key, string Provider, string Model, long PromptTokens, long CompletionTokens, long CachedTokens, double CostUsd, string Outcome);
