namespace ProxyCore.Routing.Config;

/// <summary>Validation of <c>clusters[].circuitBreaker</c>.</summary>
internal sealed partial class ConfigValidator
{
    private void ValidateCircuitBreaker(CircuitBreakerConfig breaker, string path)
    {
        if (breaker.MaxConcurrentRequests < 1)
        {
            Error(path + ".maxConcurrentRequests", "must be at least 1");
        }
        // Both apply to HTTP/1.1 and "http2" clusters: on HTTP/2, maxConnections caps the multiplexed connections
        // over all destinations (http2.maxConnectionsPerDestination still caps each one) and maxPending the
        // requests waiting for a dial in progress or a free stream.
        if (breaker.MaxConnections is int maxConnections && maxConnections < 1)
        {
            Error(path + ".maxConnections", "must be at least 1");
        }
        if (breaker.MaxPending is int maxPending && maxPending < 0)
        {
            Error(path + ".maxPending", "must be 0 (nobody waits) or more");
        }
    }
}
