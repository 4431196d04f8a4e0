namespace ProxyCore.Routing.Config;

/// <summary>Validation of <c>clusters[].circuitBreaker</c>.</summary>
internal sealed partial class ConfigValidator
{
    private void ValidateCircuitBreaker(ClusterConfig cluster, CircuitBreakerConfig breaker, string path)
    {
        if (breaker.MaxConcurrentRequests < 1)
        {
            Error(path + ".maxConcurrentRequests", "must be at least 1");
        }
        bool http2 = cluster.Protocol == "http2";
        if (breaker.MaxConnections is int maxConnections)
        {
            if (http2)
            {
                // One HTTP/2 connection carries many requests: its count is capped per destination instead.
                Error(path + ".maxConnections", "applies to HTTP/1.1 clusters; an \"http2\" cluster caps its connections with http2.maxConnectionsPerDestination");
            }
            else if (maxConnections < 1)
            {
                Error(path + ".maxConnections", "must be at least 1");
            }
        }
        if (breaker.MaxPending is int maxPending)
        {
            if (http2)
            {
                Error(path + ".maxPending", "applies to HTTP/1.1 clusters (requests waiting for a connection under maxConnections)");
            }
            else if (maxPending < 0)
            {
                Error(path + ".maxPending", "must be 0 (nobody waits) or more");
            }
        }
    }
}
