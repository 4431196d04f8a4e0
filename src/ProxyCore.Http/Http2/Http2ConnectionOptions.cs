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
    /// SETTINGS_INITIAL_WINDOW_SIZE for request bodies (default 64 KiB, precisely 65,535: the protocol's
    /// own initial window, so no client sees it change): the most one stream's unread request body may
    /// hold here before the client must wait for our WINDOW_UPDATE. Larger speeds up big uploads on
    /// long round trips at the cost of memory per stream.
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

    /// <summary>
    /// Frames (HEADERS + CONTINUATION) one field block may span (default 64). A real block needs one
    /// or two; more is a CONTINUATION flood (CVE-2024-27316 family), empty frames included, answered
    /// with GOAWAY ENHANCE_YOUR_CALM before the block is complete.
    /// </summary>
    public int MaxHeaderBlockFrames { get; init; } = 64;

    /// <summary>
    /// Streams the client may cancel before their response completed, per <see cref="RapidResetWindow"/>
    /// (default 200 per 10 s): its RST_STREAMs of unfinished streams and the streams we refused for
    /// going over <see cref="MaxConcurrentStreams"/>. Past it: GOAWAY ENHANCE_YOUR_CALM (Rapid Reset,
    /// CVE-2023-44487, where each stream started costs an upstream request and each reset frees the
    /// slot at once). Kestrel allows 20 a second over a 5 s window; this allows the same rate with a
    /// longer burst.
    /// </summary>
    public int MaxRapidResets { get; init; } = 200;

    /// <summary>The window <see cref="MaxRapidResets"/> counts over (default 10 s; fixed windows, so a burst straddling two may reach twice the limit).</summary>
    public TimeSpan RapidResetWindow { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Frames that make us work or write without serving a request, per <see cref="ControlFrameWindow"/>
    /// (default 5,000 per 10 s): SETTINGS and PING (each answered), PRIORITY, empty DATA without
    /// END_STREAM, WINDOW_UPDATE that opens nothing (tiny, for a stream that is gone, or on a connection
    /// with no open stream), RST_STREAM of
    /// finished streams, unknown frame types, and frames we answer with RST_STREAM. Past it: GOAWAY
    /// ENHANCE_YOUR_CALM (the "ping/settings/empty frames flood" family, CVE-2019-9512/9515/9518).
    /// </summary>
    public int MaxControlFrames { get; init; } = 5000;

    /// <summary>The window <see cref="MaxControlFrames"/> counts over (default 10 s).</summary>
    public TimeSpan ControlFrameWindow { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a response may wait for the client to open its flow-control window, or a write for the
    /// client to read (default 30 s). A stream stuck on its own window is reset (RST_STREAM CANCEL); one
    /// stuck on the connection's window means the whole connection is, and it closes with GOAWAY
    /// ENHANCE_YOUR_CALM; a flush the client never drains aborts the connection (nothing can be sent).
    /// Unbounded, a client that never reads holds streams, upstream connections and buffers forever.
    /// </summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a connection with no open stream stays open (default 60 s, as <c>limits.keepAliveTimeout</c>
    /// for HTTP/1.1); then GOAWAY NO_ERROR and close.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long one field block (HEADERS and its CONTINUATION frames) may take to arrive whole (default
    /// 10 s, as <c>limits.headerReadTimeout</c> for an HTTP/1.1 head). Nothing else may be sent while a
    /// block is open (§6.2), so a client that starts one and stalls holds the whole connection: past it,
    /// GOAWAY ENHANCE_YOUR_CALM.
    /// </summary>
    public TimeSpan HeaderBlockTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The clock behind every timeout and rate window above (tests pass a fake one).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    public static Http2ConnectionOptions Default { get; } = new();
}
