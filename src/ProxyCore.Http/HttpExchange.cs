using System.Buffers;
using System.IO.Pipelines;
using ProxyCore.Transport;

namespace ProxyCore.Http;

/// <summary>Handles one request: the proxy's relay, the admin endpoints, the mock upstream.</summary>
public interface IHttpApplication
{
    /// <summary>
    /// Answers <paramref name="exchange"/>. Must start (and should complete) the response; if it
    /// returns without completing it, the protocol aborts the exchange (HTTP/1.1 closes the connection).
    /// </summary>
    ValueTask ProcessAsync(HttpExchange exchange);
}

/// <summary>What one read of a request body gave: the data now available and whether it was the last.</summary>
public readonly struct BodyReadResult
{
    public BodyReadResult(ReadOnlySequence<byte> data, bool isCompleted)
    {
        Data = data;
        IsCompleted = isCompleted;
    }

    public ReadOnlySequence<byte> Data { get; }

    /// <summary>True when no body data follows <see cref="Data"/> (trailers, if any, are in <see cref="HttpExchange.RequestTrailers"/>).</summary>
    public bool IsCompleted { get; }
}

/// <summary>
/// Implemented by an <see cref="HttpExchange.ApplicationState"/> that holds buffers worth giving back
/// while its connection waits for the next request (its keep-alive idle time).
/// </summary>
public interface IIdleAware
{
    /// <summary>
    /// The connection finished an exchange and is waiting for the next request's first bytes. Returns true
    /// when the state let go of the exchange (it went back to a pool of its owner): the connection then
    /// clears <see cref="HttpExchange.ApplicationState"/> and will neither use nor dispose it again.
    /// </summary>
    bool OnIdle();

    /// <summary>
    /// The client connection of <paramref name="exchange"/> closed (or was aborted). HTTP/1.1 calls it from its one
    /// registration per connection, on whatever thread noticed the close, also while the state serves another
    /// connection's exchange (after <see cref="OnIdle"/> gave it back): the state must tell the two apart.
    /// </summary>
    void OnConnectionClosed(HttpExchange exchange);
}

/// <summary>
/// One request/response exchange, whichever protocol carries it. The application reads
/// <see cref="Request"/> and the body, fills <see cref="Response"/>, then starts, writes and
/// completes the response. HTTP/1.1 and HTTP/2 implement it; nothing above this type knows which.
/// </summary>
public abstract class HttpExchange
{
    public RequestHead Request { get; } = new();

    public ResponseHead Response { get; } = new();

    /// <summary>Trailer fields of the request body (chunked or HTTP/2), filled once the body completed.</summary>
    public HttpHead RequestTrailers { get; } = new ResponseHead();

    public abstract ConnectionContext Connection { get; }

    /// <summary>The client's address as text bytes ("127.0.0.1", "::1"), computed once per connection.</summary>
    public abstract ReadOnlySpan<byte> ClientAddress { get; }

    /// <summary>True when the client reached us over TLS.</summary>
    public bool IsHttps => Connection.IsTls;

    /// <summary>Fires when the client went away or the exchange was aborted.</summary>
    public abstract CancellationToken Aborted { get; }

    /// <summary>
    /// A slot for the application's per-exchange state (the relay keeps its reusable buffers here),
    /// kept across the exchanges of a connection so that steady state allocates nothing.
    /// </summary>
    public object? ApplicationState { get; set; }

    /// <summary>Protocol-level timestamp of when the request head was complete (Stopwatch ticks).</summary>
    public long StartTimestamp { get; protected set; }

    // ---- request body ----

    /// <summary>True when the request declares a body (it may still be empty when chunked).</summary>
    public bool HasRequestBody => Request.Framing is BodyFraming.ContentLength or BodyFraming.Chunked or BodyFraming.Stream;

    /// <summary>True once the request body was read to its end.</summary>
    public abstract bool RequestBodyCompleted { get; }

    /// <summary>
    /// Waits for request body data. Every byte of <see cref="BodyReadResult.Data"/> must be used
    /// before <see cref="AdvanceRequestBody"/>, which releases it. Throws <see cref="HttpProtocolException"/>
    /// on malformed framing and <see cref="OperationCanceledException"/> when cancelled.
    /// </summary>
    public abstract ValueTask<BodyReadResult> ReadRequestBodyAsync(CancellationToken cancellationToken = default);

    /// <summary>Releases the data returned by the last <see cref="ReadRequestBodyAsync"/>.</summary>
    public abstract void AdvanceRequestBody();

    // ---- response ----

    /// <summary>True once the response head was written (a late error can then only abort).</summary>
    public abstract bool ResponseStarted { get; }

    public abstract bool ResponseCompleted { get; }

    /// <summary>Sends an interim 1xx response (103 Early Hints) carried in <paramref name="head"/>.</summary>
    public abstract ValueTask SendInformationalAsync(ResponseHead head, CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes <see cref="Response"/>'s status and headers. <paramref name="framing"/> says what body
    /// follows: None, ContentLength (<paramref name="contentLength"/> bytes), or Stream (length unknown:
    /// HTTP/1.1 uses chunked, HTTP/1.0 closes). Hop-by-hop and framing headers in Response are the
    /// caller's to have removed; the protocol writes its own framing.
    /// </summary>
    public abstract ValueTask StartResponseAsync(BodyFraming framing, long contentLength, CancellationToken cancellationToken = default);

    /// <summary>Writes body bytes; <paramref name="flush"/> pushes them to the client now.</summary>
    public abstract ValueTask WriteResponseBodyAsync(ReadOnlySequence<byte> data, bool flush, CancellationToken cancellationToken = default);

    /// <summary>Ends the response, with trailer fields where the protocol and framing can carry them.</summary>
    public abstract ValueTask CompleteResponseAsync(HttpHead? trailers = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// After a 101 (or a 2xx to CONNECT) was started, hands over the raw client byte stream for
    /// a tunnel. The exchange and its connection end when the tunnel ends.
    /// </summary>
    public abstract IDuplexPipe DetachForTunnel();

    /// <summary>Tears the exchange down (HTTP/1.1: closes the connection; HTTP/2: resets the stream).</summary>
    public abstract void Abort(string reason);

    /// <summary>Asks the protocol to end the connection after this exchange (sends Connection: close).</summary>
    public abstract void CloseAfterResponse();

    /// <summary>Answers with one of the proxy's own error statuses (DESIGN.md contract): short text body and <c>proxycore-error</c>.</summary>
    public ValueTask RespondErrorAsync(int status, string reason, string message, CancellationToken cancellationToken = default)
    {
        if (!BeginErrorResponse(status, reason))
        {
            return ValueTask.CompletedTask;
        }
        return FinishErrorResponseAsync(status, message, cancellationToken);
    }

    /// <summary>
    /// Starts an error answer: <see cref="Response"/> reset to <paramref name="status"/> with the
    /// standard fields; the caller may add more (WWW-Authenticate, Retry-After) before
    /// <see cref="FinishErrorResponseAsync"/>. False when the response had already started: the
    /// exchange was aborted instead, as nothing else can tell the client.
    /// </summary>
    public bool BeginErrorResponse(int status, string reason)
    {
        if (ResponseStarted)
        {
            Abort(reason);
            return false;
        }
        Response.Reset();
        Response.StatusCode = status;
        Response.AddHeader("content-type"u8, "text/plain; charset=utf-8"u8);
        Response.AddHeader("proxycore-error"u8, System.Text.Encoding.ASCII.GetBytes(reason));
        return true;
    }

    /// <summary>Writes the short text body of an error answer begun with <see cref="BeginErrorResponse"/>.</summary>
    public async ValueTask FinishErrorResponseAsync(int status, string message, CancellationToken cancellationToken = default)
    {
        var body = System.Text.Encoding.UTF8.GetBytes(message + "\n");
        if (status == 400 || !RequestBodyCompleted && HasRequestBody)
        {
            // A malformed request leaves the stream position unknown; an unread body would be taken for
            // the next request: in both cases the connection cannot be reused.
            CloseAfterResponse();
        }
        await StartResponseAsync(BodyFraming.ContentLength, body.Length, cancellationToken).ConfigureAwait(false);
        if (Request.Method != HttpMethod.Head)
        {
            await WriteResponseBodyAsync(new ReadOnlySequence<byte>(body), flush: false, cancellationToken).ConfigureAwait(false);
        }
        await CompleteResponseAsync(null, cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>A protocol violation found while reading a message (its body or trailers).</summary>
public sealed class HttpProtocolException : Exception
{
    public HttpProtocolException(HttpParseError error)
        : base("HTTP protocol error: " + error)
    {
        Error = error;
    }

    public HttpParseError Error { get; }
}
