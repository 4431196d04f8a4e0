namespace ProxyCore.Proxy.Relay;

/// <summary>
/// Where a forwarded exchange failed, on which side, and so what the client is told.
/// Errors are values: the relay returns one instead of throwing through the stages.
/// </summary>
public enum ForwarderError : byte
{
    None,
    /// <summary>No route matched (404).</summary>
    NoRoute,
    /// <summary>The cluster has no healthy destination (503).</summary>
    NoDestination,
    /// <summary>The upstream refused or could not be reached (502). Nothing was sent: safe to retry.</summary>
    ConnectFailed,
    /// <summary>Connecting took longer than the cluster's connect timeout (504). Nothing was sent.</summary>
    ConnectTimeout,
    /// <summary>Writing the request to the upstream failed (502).</summary>
    UpstreamWrite,
    /// <summary>The upstream closed before a response head (502).</summary>
    UpstreamClosed,
    /// <summary>The upstream sent a malformed response head (502).</summary>
    UpstreamProtocol,
    /// <summary>No response head within the route's timeout (504).</summary>
    UpstreamTimeout,
    /// <summary>The client's request body was malformed (400) or cut (the client went away).</summary>
    RequestBody,
    /// <summary>The request body is over the configured limit (413).</summary>
    RequestBodyTooLarge,
    /// <summary>The upstream's response body was malformed, cut or too slow after the head was sent: the client connection is aborted.</summary>
    ResponseBody,
    /// <summary>The client went away while the response was being written.</summary>
    ClientGone,
    /// <summary>The upstream answered with a status the route retries on (used to report the retry).</summary>
    UpstreamStatus,
    /// <summary>The cluster's circuit breaker is open: too many requests in flight (503).</summary>
    CircuitOpen,
    /// <summary>The TLS handshake with an https:// upstream failed: untrusted or misnamed certificate, no common version, not TLS (502). Nothing was sent: safe to retry.</summary>
    UpstreamTls,
    /// <summary>The cluster is at its connection cap (circuitBreaker.maxConnections) and its pending queue is full (503 `circuit-open`). Nothing was sent; not retried.</summary>
    PendingFull,
    /// <summary>Waited the cluster's connect timeout for a connection under its cap and got none (503 `circuit-open`). Nothing was sent; not retried.</summary>
    PendingTimeout,
}

public static class ForwarderErrors
{
    /// <summary>The error of a failed upstream connect, the same for the HTTP/1.1 and HTTP/2 pools.</summary>
    public static ForwarderError FromConnectFailure(ProxyCore.Transport.UpstreamConnectFailure reason) => reason switch
    {
        ProxyCore.Transport.UpstreamConnectFailure.Timeout => ForwarderError.ConnectTimeout,
        ProxyCore.Transport.UpstreamConnectFailure.Tls => ForwarderError.UpstreamTls,
        ProxyCore.Transport.UpstreamConnectFailure.PendingFull => ForwarderError.PendingFull,
        ProxyCore.Transport.UpstreamConnectFailure.PendingTimeout => ForwarderError.PendingTimeout,
        _ => ForwarderError.ConnectFailed,
    };

    /// <summary>
    /// Whether a connect failure may be retried on another destination: not when the cluster's
    /// connection cap refused it (every destination shares that cap, so the next would be refused the same way).
    /// </summary>
    public static bool MayRetryConnect(ForwarderError connectError) => connectError is not (ForwarderError.PendingFull or ForwarderError.PendingTimeout);

    /// <summary>Whether a failure before the response head is one the route's retry policy names (`timeout`, `reset`).</summary>
    public static bool IsRetriedOn(this ProxyCore.Routing.Model.RetryModel retry, ForwarderError headError)
        => (headError == ForwarderError.UpstreamTimeout && retry.OnTimeout) || (headError == ForwarderError.UpstreamClosed && retry.OnReset);

    /// <summary>Status the client gets for an error found before the response started (DESIGN.md error contract).</summary>
    public static int StatusCode(ForwarderError error) => error switch
    {
        ForwarderError.NoRoute => 404,
        ForwarderError.NoDestination or ForwarderError.CircuitOpen or ForwarderError.PendingFull or ForwarderError.PendingTimeout => 503,
        ForwarderError.ConnectTimeout or ForwarderError.UpstreamTimeout => 504,
        ForwarderError.RequestBody => 400,
        ForwarderError.RequestBodyTooLarge => 413,
        _ => 502,
    };

    /// <summary>The `proxycore-error` token.</summary>
    public static string Reason(ForwarderError error) => error switch
    {
        ForwarderError.NoRoute => "no-route",
        ForwarderError.NoDestination => "no-healthy-destination",
        ForwarderError.ConnectFailed => "upstream-connect-failed",
        ForwarderError.ConnectTimeout => "upstream-connect-timeout",
        ForwarderError.UpstreamWrite => "upstream-write-failed",
        ForwarderError.UpstreamClosed => "upstream-closed",
        ForwarderError.UpstreamProtocol => "upstream-protocol-error",
        ForwarderError.UpstreamTimeout => "upstream-timeout",
        ForwarderError.RequestBody => "invalid-request-body",
        ForwarderError.RequestBodyTooLarge => "request-body-too-large",
        ForwarderError.ResponseBody => "upstream-response-body-failed",
        ForwarderError.ClientGone => "client-gone",
        ForwarderError.UpstreamStatus => "upstream-status",
        ForwarderError.CircuitOpen or ForwarderError.PendingFull or ForwarderError.PendingTimeout => "circuit-open",
        ForwarderError.UpstreamTls => "upstream-tls-failed",
        _ => "none",
    };

    public static string Message(ForwarderError error) => error switch
    {
        ForwarderError.NoRoute => "No route matches this request.",
        ForwarderError.NoDestination => "The route's cluster has no healthy destination.",
        ForwarderError.ConnectFailed => "The upstream could not be reached.",
        ForwarderError.ConnectTimeout => "Connecting to the upstream timed out.",
        ForwarderError.UpstreamWrite => "Sending the request to the upstream failed.",
        ForwarderError.UpstreamClosed => "The upstream closed the connection without a response.",
        ForwarderError.UpstreamProtocol => "The upstream sent a malformed response.",
        ForwarderError.UpstreamTimeout => "The upstream did not answer in time.",
        ForwarderError.RequestBody => "The request body is malformed or incomplete.",
        ForwarderError.RequestBodyTooLarge => "The request body is larger than this route allows.",
        ForwarderError.CircuitOpen => "The cluster is at its limit of requests in flight; try again shortly.",
        ForwarderError.PendingFull => "The cluster is at its limit of connections and of requests waiting for one; try again shortly.",
        ForwarderError.PendingTimeout => "The cluster is at its limit of connections and none freed within its connect timeout; try again shortly.",
        ForwarderError.UpstreamTls => "The TLS handshake with the upstream failed (certificate not trusted or not issued for its name?).",
        _ => "The response could not be relayed.",
    };
}
