using ProxyCore.Transport.Tls;

namespace ProxyCore.Transport;

/// <summary>How the upstream pool dials and keeps connections to one cluster's destinations.</summary>
public sealed class UpstreamPoolOptions
{
    /// <summary>
    /// How long a dial may take before it fails with <see cref="UpstreamConnectFailure.Timeout"/> (a 504).
    /// Default 5 s. Shorter fails over to another destination sooner; longer tolerates slow networks.
    /// Infinite lets a black-holed destination (SYNs dropped) hold each request for the OS's SYN retry
    /// budget, about two minutes on Linux.
    /// </summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a connection may sit idle in the pool before it is closed. Default 60 s. Keep it below the
    /// upstream's own keep-alive timeout (nginx: 75 s, Node: 5 s!) or the pool hands out connections the
    /// upstream is closing at that moment. Infinite keeps sockets and upstream resources held forever.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Idle connections kept per endpoint; past it, the oldest idle one is closed. Default 64. Higher saves
    /// handshakes after bursts; the cost is a socket (and a slot in the upstream's limits) per idle connection.
    /// Unbounded, one burst leaves as many idle connections as it had concurrent requests.
    /// </summary>
    public int MaxIdlePerEndpoint { get; init; } = 64;

    /// <summary>
    /// TLS to the destinations (https:// addresses), null for plaintext. <see cref="ConnectTimeout"/> covers
    /// the TCP connect and the handshake together. Connections are pooled per endpoint and TLS settings, so
    /// plain and TLS connections (or two SNI names) to one address never mix.
    /// </summary>
    public UpstreamTlsOptions? Tls { get; init; }

    /// <summary>
    /// The cluster's cap on open connections and on requests waiting for one (circuit breaker); null = no cap.
    /// Connections are pooled per limit as well, so two clusters that share an address keep separate counts.
    /// A request past the cap waits at most <see cref="ConnectTimeout"/> for a connection to go idle or close.
    /// </summary>
    public UpstreamConnectionLimit? ConnectionLimit { get; init; }

    /// <summary>The defaults above.</summary>
    public static UpstreamPoolOptions Default { get; } = new();
}
