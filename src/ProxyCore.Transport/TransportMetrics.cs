namespace ProxyCore.Transport;

/// <summary>
/// Process-wide connection counters of the socket transport, for <c>proxycore_connections{side}</c> and
/// friends. Updated with <see cref="Interlocked"/> once per connection open/close, never per read or write.
/// The in-memory transport is not counted: it serves tests, not traffic.
/// </summary>
public static class TransportMetrics
{
    private static long _clientConnectionsOpen;
    private static long _upstreamConnectionsOpen;
    private static long _clientConnectionsAccepted;
    private static long _upstreamConnectionsDialled;

    /// <summary>Accepted client connections not yet closed (<c>side="client"</c>).</summary>
    public static long ClientConnectionsOpen => Volatile.Read(ref _clientConnectionsOpen);

    /// <summary>Dialled upstream connections not yet closed, pooled idle ones included (<c>side="upstream"</c>).</summary>
    public static long UpstreamConnectionsOpen => Volatile.Read(ref _upstreamConnectionsOpen);

    /// <summary>Client connections accepted since start (a counter).</summary>
    public static long ClientConnectionsAccepted => Volatile.Read(ref _clientConnectionsAccepted);

    /// <summary>Upstream connections successfully dialled since start (a counter).</summary>
    public static long UpstreamConnectionsDialled => Volatile.Read(ref _upstreamConnectionsDialled);

    internal static void Opened(ConnectionSide side)
    {
        if (side == ConnectionSide.Client)
        {
            Interlocked.Increment(ref _clientConnectionsOpen);
            Interlocked.Increment(ref _clientConnectionsAccepted);
        }
        else
        {
            Interlocked.Increment(ref _upstreamConnectionsOpen);
            Interlocked.Increment(ref _upstreamConnectionsDialled);
        }
    }

    internal static void Closed(ConnectionSide side)
    {
        if (side == ConnectionSide.Client)
        {
            Interlocked.Decrement(ref _clientConnectionsOpen);
        }
        else
        {
            Interlocked.Decrement(ref _upstreamConnectionsOpen);
        }
    }
}

/// <summary>Which side of the proxy a connection faces.</summary>
public enum ConnectionSide
{
    /// <summary>Accepted from a client.</summary>
    Client,

    /// <summary>Dialled to an upstream.</summary>
    Upstream,
}
