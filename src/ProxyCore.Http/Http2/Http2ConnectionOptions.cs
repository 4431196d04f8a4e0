namespace ProxyCore.Http.Http2;

/// <summary>Knobs of the HTTP/2 server side (RFC 9113); each says its default and what leaving it unbounded would risk.</summary>
public sealed class Http2ConnectionOptions
{
    /// <summary>
    /// SETTINGS_MAX_CONCURRENT_STREAMS (default 100, the RFC's recommended minimum, §6.5.2). Each open
    /// stream runs the application once; streams beyond it are refused with REFUSED_STREAM (§5.1.2).
    /// Unbounded, one connection could start any number of upstream requests.
    /// </summary>
    public int MaxConcurrentStreams { get; init; } = 100;

    /// <summary>
    /// SETTINGS_INITIAL_WINDOW_SIZE for request bodies (default 65,535, the protocol default): the most
    /// one stream's unread request body may hold here before the client must wait for our
    /// WINDOW_UPDATE. Larger speeds up big uploads on long round trips at the cost of memory per stream.
    /// </summary>
    public int InitialStreamWindowSize { get; init; } = 65_535;

    /// <summary>
    /// The connection-level receive window (default 1 MiB, raised from 65,535 by a WINDOW_UPDATE right
    /// after our SETTINGS): all streams' unread request bodies together.
    /// </summary>
    public int ConnectionWindowSize { get; init; } = 1024 * 1024;

    /// <summary>SETTINGS_MAX_FRAME_SIZE (default 16,384, the protocol minimum): larger frames are a FRAME_SIZE_ERROR.</summary>
    public uint MaxFrameSize { get; init; } = Http2Frame.DefaultMaxFrameSize;

    /// <summary>
    /// SETTINGS_MAX_HEADER_LIST_SIZE (default 32 KiB, as the HTTP/1.1 head limit): the decoded size of
    /// one field block (names + values + 32 per field). The raw block is capped at twice this while its
    /// frames arrive, so a CONTINUATION flood is cut off early.
    /// </summary>
    public int MaxHeaderListSize { get; init; } = 32 * 1024;

    /// <summary>SETTINGS_HEADER_TABLE_SIZE (default 4096, the protocol default): the HPACK dynamic table the client may fill here.</summary>
    public int HeaderTableSize { get; init; } = 4096;

    /// <summary>
    /// Stream objects (each an exchange with its heads and application state) kept for reuse per
    /// connection (default 32). Above it, finished streams are dropped and their state disposed.
    /// </summary>
    public int StreamPoolSize { get; init; } = 32;

    /// <summary>
    /// How long a connection waits for the client preface (default 10 s) before it closes, so an idle
    /// socket cannot hold a connection.
    /// </summary>
    public TimeSpan PrefaceTimeout { get; init; } = TimeSpan.FromSeconds(10);

    public static Http2ConnectionOptions Default { get; } = new();
}
