using ProxyCore.Routing.Config;
using ProxyCore.Routing.LoadBalancing;
using ProxyCore.Http.Http2.Client;
using ProxyCore.Transport;

namespace ProxyCore.Routing.Model;

/// <summary>A cluster as one snapshot sees it: immutable destinations and their balancer.</summary>
public sealed class ClusterModel
{
    internal ClusterModel(string id, DestinationModel[] destinations, ILoadBalancer loadBalancer,
        TimeSpan connectTimeout, TimeSpan idleTimeout, int maxIdleConnectionsPerDestination, Transport.Tls.UpstreamTlsOptions? tls = null,
        UpstreamConnectionLimit? connectionLimit = null)
    {
        Id = id;
        Destinations = destinations;
        LoadBalancer = loadBalancer;
        ConnectTimeout = connectTimeout;
        IdleTimeout = idleTimeout;
        MaxIdleConnectionsPerDestination = maxIdleConnectionsPerDestination;
        PoolOptions = new UpstreamPoolOptions
        {
            ConnectTimeout = connectTimeout,
            IdleTimeout = idleTimeout,
            MaxIdlePerEndpoint = maxIdleConnectionsPerDestination,
            Tls = tls,
            ConnectionLimit = connectionLimit,
        };
    }

    public string Id { get; }

    /// <summary>The cluster's validated config (health checks and outlier detection read their blocks here).</summary>
    public ClusterConfig? Config { get; internal init; }

    public DestinationModel[] Destinations { get; }

    /// <summary>Built for <see cref="Destinations"/> (weighted schedules index into it).</summary>
    public ILoadBalancer LoadBalancer { get; }

    public TimeSpan ConnectTimeout { get; }

    public TimeSpan IdleTimeout { get; }

    public int MaxIdleConnectionsPerDestination { get; }

    /// <summary>The same settings (and TLS for https:// destinations) as the upstream pool takes them, built once per snapshot.</summary>
    public UpstreamPoolOptions PoolOptions { get; }

    /// <summary>How the relay speaks to this cluster's destinations.</summary>
    public UpstreamProtocol Protocol { get; init; }

    /// <summary>HTTP/2 connection settings (used when <see cref="Protocol"/> is <see cref="UpstreamProtocol.Http2"/>).</summary>
    public Http2ClientOptions Http2Options { get; init; } = Http2ClientOptions.Default;

    /// <summary>Requests in flight past which the cluster answers 503 at once (circuit breaker); int.MaxValue when unset.</summary>
    public int MaxConcurrentRequests { get; init; } = int.MaxValue;

    /// <summary>The circuit breaker's cap on open connections and pending requests (clusters with a circuitBreaker block: HTTP/1.1 pooled connections, or HTTP/2 multiplexed ones); null = none.</summary>
    public UpstreamConnectionLimit? ConnectionLimit => PoolOptions.ConnectionLimit;

    /// <summary>In-flight counters for the circuit breaker and the retry budget.</summary>
    public ClusterState State { get; } = new();

    /// <summary>The cluster's metric series (owned by the proxy layer), attached on first use; see <see cref="RouteModel.Metrics"/>.</summary>
    public object? Metrics { get; set; }

    /// <summary>A healthy destination by this cluster's policy, or null (the relay answers 503).</summary>
    public DestinationModel? PickDestination() => LoadBalancer.Pick(Destinations);
}

/// <summary>The protocol the relay speaks to a cluster's destinations.</summary>
public enum UpstreamProtocol : byte
{
    Http1,
    Http2,
}
