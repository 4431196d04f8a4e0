using System.Net;

namespace ProxyCore.Transport;

/// <summary>Why dialling an upstream failed; the relay maps it to a status and decides on a retry.</summary>
public enum UpstreamConnectFailure
{
    /// <summary>Something else went wrong (see the inner exception). Map to 502.</summary>
    Other,

    /// <summary>The host answered with a reset: nothing listens on that port. Map to 502; safe to try another destination.</summary>
    Refused,

    /// <summary>No connection within <see cref="UpstreamPoolOptions.ConnectTimeout"/> (or the OS's own timeout). Map to 504.</summary>
    Timeout,

    /// <summary>No route to the host or its network. Map to 502; safe to try another destination.</summary>
    Unreachable,

    /// <summary>The name did not resolve. Map to 502.</summary>
    DnsFailure,

    /// <summary>
    /// The TLS handshake failed: the certificate was not trusted or not for this name, no common version
    /// or ALPN id, or the peer does not speak TLS. Map to 502; nothing of the request was sent.
    /// </summary>
    Tls,

    /// <summary>
    /// The cluster is at its connection cap and <see cref="UpstreamConnectionLimit.MaxPending"/> requests already
    /// wait for one: refused at once, nothing dialled. Map to 503 (circuit open); another destination of the same
    /// cluster would not help, so do not retry.
    /// </summary>
    PendingFull,

    /// <summary>Waited the cluster's connect timeout for a connection under its cap and got none. Map to 503 (circuit open); nothing was sent.</summary>
    PendingTimeout,
}

/// <summary>
/// Dialling an upstream failed before any byte of the request was sent, so trying another destination
/// (or the same one again) is always safe. <see cref="Reason"/> says why; the inner exception has the detail.
/// </summary>
public sealed class UpstreamConnectException : Exception
{
    public UpstreamConnectException(EndPoint endPoint, UpstreamConnectFailure reason, Exception? inner = null)
        : base($"Connecting to upstream {endPoint} failed: {reason}.", inner)
    {
        EndPoint = endPoint;
        Reason = reason;
    }

    /// <summary>The upstream that could not be reached.</summary>
    public EndPoint EndPoint { get; }

    /// <summary>Why.</summary>
    public UpstreamConnectFailure Reason { get; }
}
