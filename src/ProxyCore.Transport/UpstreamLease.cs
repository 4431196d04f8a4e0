namespace ProxyCore.Transport;

/// <summary>
/// A connection rented from <see cref="UpstreamConnectionPool"/>. Give it back exactly once:
/// <see cref="UpstreamConnectionPool.Return"/> when the response was read to its end and the connection
/// may carry another request, <see cref="UpstreamConnectionPool.Discard"/> otherwise.
/// </summary>
public readonly struct UpstreamLease
{
    internal UpstreamLease(ConnectionContext connection, bool isReused, UpstreamConnectionPool.EndpointPool pool, UpstreamPoolOptions options)
    {
        Connection = connection;
        IsReused = isReused;
        Pool = pool;
        Options = options;
    }

    /// <summary>The upstream connection.</summary>
    public ConnectionContext Connection { get; }

    /// <summary>
    /// True when the connection served earlier requests. The upstream may have closed it just as we sent,
    /// so a failure before any response byte may be a stale keep-alive, not a broken upstream: retry it
    /// once on a fresh connection if no byte of the request body was consumed.
    /// </summary>
    public bool IsReused { get; }

    internal UpstreamConnectionPool.EndpointPool? Pool { get; }

    internal UpstreamPoolOptions? Options { get; }
}
