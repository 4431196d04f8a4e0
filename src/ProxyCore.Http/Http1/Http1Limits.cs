namespace ProxyCore.Http.Http1;

/// <summary>
/// Size limits the HTTP/1.1 parser enforces while it reads a head or a chunked body. Every limit
/// bounds memory a client (or upstream) can make us hold before we know what the message is;
/// defaults match what browsers and common servers send, with head room.
/// </summary>
public sealed class Http1Limits
{
    /// <summary>Shared instance with every default.</summary>
    public static Http1Limits Default { get; } = new();

    /// <summary>
    /// Longest request line (or status line), CRLF excluded. Default 8 KiB (nginx's
    /// large_client_header_buffers, Kestrel's MaxRequestLineSize). Raising it admits longer URLs
    /// at the cost of more buffered bytes per connection; unbounded, a client can make the
    /// connection buffer grow without limit before a byte is parsed. Exceeded → 414.
    /// </summary>
    public int MaxRequestLineBytes { get; init; } = 8 * 1024;

    /// <summary>
    /// All header field lines together, CRLFs included. Default 32 KiB (Kestrel's
    /// MaxRequestHeadersTotalSize). Large cookies or JWTs need more; unbounded, one connection can
    /// pin arbitrary memory in its head arena. Exceeded → 431.
    /// </summary>
    public int MaxHeaderBytes { get; init; } = 32 * 1024;

    /// <summary>
    /// Number of header field lines. Default 100 (Kestrel's MaxRequestHeaderCount). Each field
    /// costs a header entry and per-field work in every stage; unbounded, tiny fields multiply
    /// that work (hash flooding, O(n) lookups). Exceeded → 431.
    /// </summary>
    public int MaxHeaderCount { get; init; } = 100;

    /// <summary>
    /// Longest chunk-size line including chunk extensions, CRLF excluded. Default 4 KiB: real
    /// clients send a few hex digits and almost never extensions. Unbounded, extensions are a way
    /// to stream bytes that no body limit counts. Exceeded → 400.
    /// </summary>
    public int MaxChunkLineBytes { get; init; } = 4 * 1024;

    /// <summary>
    /// All trailer field lines of a chunked body together, CRLFs included. Default 16 KiB (gRPC's
    /// status trailers are well under 1 KiB). Unbounded, trailers are an unlimited header
    /// section after the body. Exceeded → 431 (request) or 502 (response).
    /// </summary>
    public int MaxTrailerBytes { get; init; } = 16 * 1024;
}
