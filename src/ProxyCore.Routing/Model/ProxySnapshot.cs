using System.Collections.Frozen;
using ProxyCore.Http.Http2.Client;
using ProxyCore.Routing.Config;
using ProxyCore.Transport;

namespace ProxyCore.Routing.Model;

/// <summary>Everything a request needs, immutable: take it once at the start of a request and keep it.</summary>
public sealed class ProxySnapshot
{
    internal ProxySnapshot(ProxyConfig config, long version, RouteTable routes, IReadOnlyDictionary<string, ClusterModel> clusters)
    {
        Config = config;
        Version = version;
        Routes = routes;
        Clusters = clusters;
    }

    public RouteTable Routes { get; }

    public IReadOnlyDictionary<string, ClusterModel> Clusters { get; }

    /// <summary>The validated config this snapshot was built from (for /config and listener settings).</summary>
    public ProxyConfig Config { get; }

    /// <summary>1 for the first config, +1 per swap.</summary>
    public long Version { get; }

    /// <summary>
    /// Builds a snapshot from a valid config. Destinations that also exist in <paramref name="previous"/>
    /// (same cluster id and address) keep their <see cref="DestinationState"/>.
    /// </summary>
    public static ProxySnapshot Build(ProxyConfig config, ProxySnapshot? previous = null, Random? random = null)
    {
        var clusters = new Dictionary<string, ClusterModel>(StringComparer.Ordinal);
        foreach (var cluster in config.Clusters)
        {
            ClusterModel? old = null;
            previous?.Clusters.TryGetValue(cluster.Id, out old);
            var destinations = new DestinationModel[cluster.Destinations.Count];
            for (int i = 0; i < destinations.Length; i++)
            {
                var d = cluster.Destinations[i];
                if (!Addresses.TryParseDestination(d.Address, out var parsed, out var error))
                {
                    throw new ArgumentException($"$.clusters[?].destinations[{i}].address: {error}", nameof(config));
                }
                destinations[i] = new DestinationModel(d.Address, parsed, d.Weight, FindState(old, d.Address) ?? new DestinationState());
            }
            clusters[cluster.Id] = new ClusterModel(cluster.Id, destinations,
                LoadBalancing.LoadBalancers.Create(cluster.LoadBalancing, destinations, random),
                cluster.ConnectTimeout, cluster.IdleTimeout, cluster.MaxIdleConnectionsPerDestination, TlsModel.BuildUpstream(cluster),
                BuildConnectionLimit(cluster, old))
            {
                Config = cluster,
                MaxConcurrentRequests = cluster.CircuitBreaker?.MaxConcurrentRequests ?? int.MaxValue,
                Protocol = cluster.Protocol == "http2" ? UpstreamProtocol.Http2 : UpstreamProtocol.Http1,
                Http2Options = cluster.Protocol == "http2" ? ToHttp2Options(cluster) : Http2ClientOptions.Default,
            };
            foreach (var destination in destinations)
            {
                destination.Cluster = clusters[cluster.Id];
            }
        }

        var routes = new RouteModel[config.Routes.Count];
        for (int i = 0; i < routes.Length; i++)
        {
            var route = config.Routes[i];
            var match = route.Match;
            string path = match.Path ?? "/";
            var kind = match.PathType switch
            {
                "prefix" => PathMatchKind.Prefix,
                "exact" => PathMatchKind.Exact,
                _ => path.EndsWith('/') ? PathMatchKind.Prefix : PathMatchKind.Exact,
            };
            var hosts = new string[match.Hosts.Count];
            for (int h = 0; h < hosts.Length; h++)
            {
                hosts[h] = match.Hosts[h].ToLowerInvariant();
            }
            var headers = new HeaderMatch[match.Headers.Count];
            for (int h = 0; h < headers.Length; h++)
            {
                var header = match.Headers[h];
                var mode = header.Mode switch
                {
                    "prefix" => HeaderMatchMode.Prefix,
                    "present" => HeaderMatchMode.Present,
                    _ => HeaderMatchMode.Exact,
                };
                headers[h] = new HeaderMatch(header.Name, header.Value, mode);
            }
            routes[i] = new RouteModel(route.Id, i, clusters[route.Cluster], route.Timeout ?? config.Timeouts.Upstream,
                hosts, path, kind, [.. match.Methods], headers) {
                    Config = route,
                    Retry = route.Retry is { } retry ? new RetryModel(retry) : null,
                    Split = route.Split is { Count: > 0 } split ? new SplitModel(split, route.Sticky, clusters) : null,
                };
        }

        return new ProxySnapshot(config, (previous?.Version ?? 0) + 1, new RouteTable(routes),
            clusters.ToFrozenDictionary(StringComparer.Ordinal));
    }

    /// <summary>
    /// The cluster's connection cap: the previous snapshot's instance with the new limits when there is one, so the
    /// count of connections still open from before the reload stays true (they are pooled under that instance).
    /// </summary>
    private static UpstreamConnectionLimit? BuildConnectionLimit(ClusterConfig cluster, ClusterModel? old)
    {
        if (cluster.CircuitBreaker is not { } breaker)
        {
            return null;
        }
        int maxConnections = breaker.MaxConnections ?? CircuitBreakerConfig.DefaultMaxConnections;
        int maxPending = breaker.MaxPending ?? CircuitBreakerConfig.DefaultMaxPending;
        if (old?.ConnectionLimit is { } kept)
        {
            kept.Configure(maxConnections, maxPending);
            return kept;
        }
        return new UpstreamConnectionLimit(maxConnections, maxPending);
    }

    private static Http2ClientOptions ToHttp2Options(ClusterConfig cluster)
    {
        var h2 = cluster.Http2 ?? new Http2UpstreamConfig();
        return new Http2ClientOptions
        {
            StreamWindowSize = (int)h2.StreamWindowSize,
            ConnectionWindowSize = (int)h2.ConnectionWindowSize,
            MaxConnectionsPerDestination = h2.MaxConnectionsPerDestination,
            PingInterval = h2.PingInterval == TimeSpan.Zero ? Timeout.InfiniteTimeSpan : h2.PingInterval,
            PingTimeout = h2.PingTimeout,
            IdleTimeout = cluster.IdleTimeout,
        };
    }

    private static DestinationState? FindState(ClusterModel? old, string address)
    {
        if (old is null)
        {
            return null;
        }
        foreach (var d in old.Destinations)
        {
            if (string.Equals(d.Address, address, StringComparison.OrdinalIgnoreCase))
            {
                return d.State;
            }
        }
        return null;
    }
}
