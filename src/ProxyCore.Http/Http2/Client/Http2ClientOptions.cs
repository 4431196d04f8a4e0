namespace ProxyCore.Http.Http2.Client;

/// <summary>How ProxyCore speaks HTTP/2 to one cluster's upstreams (the cluster's <c>http2</c> block).</summary>
public sealed class Http2ClientOptions
{
    /// <summary>
    /// SETTINGS_INITIAL_WINDOW_SIZE we announce: response bytes one stream may have in flight before the
    /// relay consumed them. Default 1 MiB. Larger: more throughput per stream over long RTTs; each stalled
    /// stream (slow client) may pin that much memory.
    /// </summary>
    public int StreamWindowSize { get; init; } = 1024 * 1024;

    /// <summary>
    /// The connection-level receive window: response bytes of all streams of one connection not yet consumed.
    /// Default 16 MiB. Bounds the memory one upstream connection can make us buffer; below
    /// streams × stream window, a few stalled streams slow the others down (HTTP/2 head-of-line).
    /// </summary>
    public int ConnectionWindowSize { get; init; } = 16 * 1024 * 1024;

    /// <summary>Most connections per destination (each carries up to the peer's SETTINGS_MAX_CONCURRENT_STREAMS). Default 16.</summary>
    public int MaxConnectionsPerDestination { get; init; } = 16;

    /// <summary>A connection silent this long is probed with PING. Default 30 s; infinite disables probing.</summary>
    public TimeSpan PingInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>An unanswered PING older than this closes the connection (its streams fail). Default 10 s.</summary>
    public TimeSpan PingTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>A connection without streams this long is closed (GOAWAY). Default 60 s (the cluster's idleTimeout).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Largest decoded response head / trailer section we accept (SETTINGS_MAX_HEADER_LIST_SIZE). Default 64 KiB.</summary>
    public int MaxHeaderListSize { get; init; } = 64 * 1024;

    /// <summary>HPACK dynamic table we keep for the upstream's blocks (SETTINGS_HEADER_TABLE_SIZE). Default 4096.</summary>
    public int HeaderTableSize { get; init; } = 4096;

    public static Http2ClientOptions Default { get; } = new();
}
