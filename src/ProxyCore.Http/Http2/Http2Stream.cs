using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Threading.Tasks.Sources;
using ProxyCore.Transport;

namespace ProxyCore.Http.Http2;

/// <summary>
/// One HTTP/2 stream as the application sees it: an <see cref="HttpExchange"/> whose request came
/// from a HEADERS block and DATA frames, and whose response goes out as HEADERS, DATA and trailers
/// through the connection's shared writer. Stream objects are pooled per connection; each keeps its
/// own <see cref="HttpExchange.ApplicationState"/> for as long as it is pooled.
/// </summary>
/// <remarks>
/// Threads: the connection's read loop delivers request data and resets (under the connection's
/// stream lock); the application runs on its own task (<see cref="IThreadPoolWorkItem.Execute"/>).
/// </remarks>
internal sealed class Http2Stream : HttpExchange, IThreadPoolWorkItem, IValueTaskSource<bool>
{
    private readonly Http2Connection _connection;
    // The stream object's one long-lived task (see RunLoopAsync) and its wake-up: true = a new request
    // to serve, false = the object is retired.
    private Task? _loop;
    private ManualResetValueTaskSourceCore<bool> _next;
    // Request body: DATA payloads copied in by the read loop. Flow control bounds what it can hold, so
    // the pipe never applies backpressure of its own (a pause would block the whole connection).
    private readonly Pipe _requestBody = new(new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false));
    private CancellationTokenSource _aborted = new();

    private ReadOnlySequence<byte> _pendingBody;
    private bool _pendingIsLast;
    private bool _requestBodyDone;
    private bool _responseStarted;
    private bool _responseCompleted;
    private bool _responseHasNoBody;
    private long _responseRemaining;

    public Http2Stream(Http2Connection connection)
    {
        _connection = connection;
        Writer = new Http2Connection.StreamWriter(connection, this);
    }

    /// <summary>This stream's writes that find the connection's writer taken (one at a time, reused).</summary>
    internal Http2Connection.StreamWriter Writer { get; }

    public int StreamId { get; private set; }

    // ---- state owned by the read loop (under the connection's stream lock) ----

    /// <summary>END_STREAM arrived (half-closed remote, §5.1), or the stream was reset.</summary>
    public bool RequestEnded { get; set; }

    /// <summary>Reset by either side: nothing more is sent on it.</summary>
    public bool IsReset { get; private set; }

    /// <summary>Flow-controlled octets the client may still send on this stream (§6.9).</summary>
    public int ReceiveWindow;

    /// <summary>Consumed octets not yet given back with a WINDOW_UPDATE.</summary>
    public int UnackedConsumed;

    /// <summary>Request body octets received so far (checked against content-length, §8.1.1).</summary>
    public long BodyReceived;

    // ---- state under the connection's window lock ----

    /// <summary>Octets we may still send on this stream (§6.9); may go negative after a SETTINGS change (§6.9.2).</summary>
    public long SendWindow;

    public TaskCompletionSource? WindowWaiter;

    public override ConnectionContext Connection => _connection.Context;

    public override ReadOnlySpan<byte> ClientAddress => _connection.ClientAddress;

    public override CancellationToken Aborted => _aborted.Token;

    public override bool RequestBodyCompleted => _requestBodyDone;

    public override bool ResponseStarted => _responseStarted;

    public override bool ResponseCompleted => _responseCompleted;

    public PipeWriter RequestBodyWriter => _requestBody.Writer;

    /// <summary>Readies a pooled stream for a new stream identifier.</summary>
    public void Initialize(int streamId, int receiveWindow, long sendWindow)
    {
        StreamId = streamId;
        Request.Reset();
        Request.Version = HttpVersion.Http2;
        Response.Reset();
        ResetRequestTrailers();
        RequestEnded = false;
        IsReset = false;
        ResetByUs = false;
        ReceiveWindow = receiveWindow;
        UnackedConsumed = 0;
        BodyReceived = 0;
        SendWindow = sendWindow;
        WindowWaiter = null;
        _pendingBody = default;
        _pendingIsLast = false;
        _requestBodyDone = true;
        _responseStarted = false;
        _responseCompleted = false;
        _responseHasNoBody = false;
        _responseRemaining = 0;
        if (!_aborted.TryReset())
        {
            // Cancelled (its callbacks may still be running on the thread pool): a new one, the old
            // one left to the GC rather than disposed under those callbacks.
            _aborted = new CancellationTokenSource();
        }
    }

    /// <summary>The request head is complete: decide its framing, then the application may run.</summary>
    public void OnHeadComplete(bool endStream)
    {
        StartTimestamp = Stopwatch.GetTimestamp();
        var request = Request;
        request.Version = HttpVersion.Http2;
        request.KeepAlive = true;
        if (request.Authority.IsEmpty && request.TryGetValue(KnownHeader.Host, out _))
        {
            // §8.3.1: a request without ":authority" takes its authority from Host.
            request.Authority = request.Headers[request.IndexOf(KnownHeader.Host)].Value;
        }
        if (request.Scheme.IsEmpty)
        {
            request.Scheme = request.Append(IsHttps ? "https"u8 : "http"u8);
        }
        if (endStream)
        {
            RequestEnded = true;
            request.Framing = BodyFraming.None;
            _requestBodyDone = true;
            _requestBody.Writer.Complete();
        }
        else
        {
            // With content-length the upstream gets the same length (and we check it, §8.1.1);
            // without, the body is as long as its DATA frames.
            request.Framing = request.ContentLength >= 0 ? BodyFraming.ContentLength : BodyFraming.Stream;
            _requestBodyDone = false;
        }
    }

    /// <summary>
    /// Resets the stream (RST_STREAM from the client, a stream error, the application's abort, or the
    /// connection ending): the application's body reads fail, its writes stop, and <see cref="Aborted"/>
    /// fires. Called under the connection's stream lock; never blocks (callbacks of <see cref="Aborted"/>
    /// run on the thread pool). False when it was already reset.
    /// </summary>
    public bool Reset(bool byUs)
    {
        if (IsReset)
        {
            return false;
        }
        IsReset = true;
        ResetByUs = byUs;
        RequestEnded = true;
        _requestBody.Writer.Complete(new IOException("The HTTP/2 stream was reset."));
        _ = _aborted.CancelAsync();
        return true;
    }

    /// <summary>We sent RST_STREAM (§5.1: frames that cross it are ignored), rather than the client.</summary>
    public bool ResetByUs { get; private set; }

    /// <summary>Releases what the exchange held, so the object can serve another stream.</summary>
    public void Recycle()
    {
        _requestBody.Writer.Complete();
        _requestBody.Reader.Complete();
        _requestBody.Reset();
        _pendingBody = default;
    }

    /// <summary>Drops the object for good: its application state ends with it.</summary>
    public void Retire()
    {
        StopLoop();
        (ApplicationState as IDisposable)?.Dispose();
        ApplicationState = null;
        Request.ReleaseMemory();
        Response.ReleaseMemory();
        ReleaseRequestTrailersMemory();
    }

    // ---- the application's task ----

    /// <summary>
    /// On a thread-pool thread (queued by the read loop): the request head is complete. The first
    /// request of this object starts its loop; later ones wake it, and it runs on this thread.
    /// </summary>
    void IThreadPoolWorkItem.Execute()
    {
        if (_loop is null)
        {
            _loop = RunLoopAsync();
        }
        else
        {
            _next.SetResult(true);
        }
    }

    /// <summary>The object leaves the pool for good: its loop (waiting for a next request) returns.</summary>
    private void StopLoop()
    {
        if (_loop is not null)
        {
            _next.SetResult(false);
        }
    }

    /// <summary>
    /// Every request this pooled object serves, one after another, in one async method: a method
    /// called per request that suspends costs a state-machine box per request, this one costs one
    /// box per stream object (the same reason as the relay's per-connection loop).
    /// </summary>
    private async Task RunLoopAsync()
    {
        do
        {
            try
            {
                if (Request.Method == HttpMethod.Connect)
                {
                    // A tunnel needs DetachForTunnel, which HTTP/2 cannot give yet (RFC 8441 extended
                    // CONNECT is a later item): answer here so the relay never tries.
                    await RespondErrorAsync(501, "connect-not-supported", "CONNECT is not supported over HTTP/2.").ConfigureAwait(false);
                }
                else
                {
                    try
                    {
                        await _connection.Application.ProcessAsync(this).ConfigureAwait(false);
                    }
                    catch (Exception) when (!_responseStarted && !IsReset)
                    {
                        await RespondErrorAsync(500, "internal-error", "The proxy failed while handling the request.").ConfigureAwait(false);
                    }
                }
            }
            catch (Exception)
            {
                // The stream or connection went away mid-response: nothing left to tell the client.
            }

            if (!_responseCompleted && !IsReset)
            {
                Abort("response-not-completed");
            }
            else if (!RequestEnded && !IsReset)
            {
                // §8.1: "A server can send a complete response prior to the client sending an entire request
                // ... the server MAY request that the client abort transmission of a request without error
                // by sending a RST_STREAM with an error code of NO_ERROR after sending a complete response".
                _connection.ResetStream(this, Http2ErrorCode.NO_ERROR);
            }
            _connection.OnStreamFinished(this);
        }
        while (await new ValueTask<bool>(this, _next.Version).ConfigureAwait(false));
    }

    bool IValueTaskSource<bool>.GetResult(short token)
    {
        try
        {
            return _next.GetResult(token);
        }
        finally
        {
            _next.Reset();
        }
    }

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _next.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _next.OnCompleted(continuation, state, token, flags);

    // ---- request body ----

    public override async ValueTask<BodyReadResult> ReadRequestBodyAsync(CancellationToken cancellationToken = default)
    {
        Debug.Assert(_pendingBody.IsEmpty, "AdvanceRequestBody must follow each read.");
        if (_requestBodyDone)
        {
            return new BodyReadResult(ReadOnlySequence<byte>.Empty, true);
        }
        var result = await _requestBody.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        if (result.IsCanceled)
        {
            throw new OperationCanceledException("The request body read was cancelled.");
        }
        _pendingBody = result.Buffer;
        _pendingIsLast = result.IsCompleted;
        if (_pendingBody.IsEmpty && _pendingIsLast)
        {
            _requestBody.Reader.AdvanceTo(result.Buffer.End);
            _requestBodyDone = true;
            return new BodyReadResult(ReadOnlySequence<byte>.Empty, true);
        }
        return new BodyReadResult(_pendingBody, _pendingIsLast);
    }

    public override void AdvanceRequestBody()
    {
        if (_pendingBody.IsEmpty)
        {
            return;
        }
        long consumed = _pendingBody.Length;
        _requestBody.Reader.AdvanceTo(_pendingBody.End);
        _pendingBody = default;
        if (_pendingIsLast)
        {
            _requestBodyDone = true;
        }
        _connection.OnRequestBodyConsumed(this, (int)consumed);
    }

    // ---- response ----

    public override ValueTask SendInformationalAsync(ResponseHead head, CancellationToken cancellationToken = default)
    {
        if (_responseStarted || head.StatusCode is < 100 or > 199 || head.StatusCode == 101)
        {
            // §8.6: "The 101 (Switching Protocols) informational status code ... MUST NOT" be used in HTTP/2.
            return ValueTask.CompletedTask;
        }
        return _connection.WriteHeadersAsync(this, head, head.StatusCode, contentLength: -1, endStream: false, flush: true);
    }

    public override ValueTask StartResponseAsync(BodyFraming framing, long contentLength, CancellationToken cancellationToken = default)
    {
        if (_responseStarted)
        {
            throw new InvalidOperationException("The response has already started.");
        }
        _responseStarted = true;
        int status = Response.StatusCode;
        // RFC 9110 §6.4.1: HEAD, 1xx, 204 and 304 responses have no content.
        bool bodyForbidden = status is < 200 or 204 or 304;
        _responseHasNoBody = bodyForbidden || Request.Method == HttpMethod.Head;
        long declared = -1;
        if (framing == BodyFraming.ContentLength && status != 204 && status >= 200)
        {
            declared = contentLength;
        }
        else if (framing == BodyFraming.None && !bodyForbidden && Request.Method != HttpMethod.Head)
        {
            declared = 0;
        }
        _responseRemaining = _responseHasNoBody ? 0 : framing == BodyFraming.ContentLength ? contentLength : framing == BodyFraming.None ? 0 : -1;

        // A response that can have no body ends with its HEADERS frame.
        bool endStream = _responseHasNoBody || framing == BodyFraming.None || (framing == BodyFraming.ContentLength && contentLength == 0);
        if (endStream)
        {
            _responseCompleted = true;
        }
        return _connection.WriteHeadersAsync(this, Response, status, declared, endStream, flush: endStream);
    }

    public override ValueTask WriteResponseBodyAsync(ReadOnlySequence<byte> data, bool flush, CancellationToken cancellationToken = default)
    {
        Debug.Assert(_responseStarted);
        if (_responseHasNoBody || data.IsEmpty || _responseCompleted)
        {
            return ValueTask.CompletedTask;
        }
        if (_responseRemaining >= 0)
        {
            if (data.Length > _responseRemaining)
            {
                throw new InvalidOperationException("The response body is longer than its Content-Length.");
            }
            _responseRemaining -= data.Length;
            // The body is complete: CompleteResponseAsync comes next and flushes with END_STREAM, so
            // one send carries this DATA and the end of the stream instead of two.
            flush &= _responseRemaining != 0;
        }
        return _connection.WriteDataAsync(this, data, endStream: false, flush, cancellationToken);
    }

    public override ValueTask CompleteResponseAsync(HttpHead? trailers = null, CancellationToken cancellationToken = default)
    {
        Debug.Assert(_responseStarted);
        if (_responseCompleted)
        {
            return ValueTask.CompletedTask;
        }
        if (_responseRemaining > 0)
        {
            Abort("response-shorter-than-content-length");
            return ValueTask.CompletedTask;
        }
        _responseCompleted = true;
        if (trailers is { HeaderCount: > 0 })
        {
            return _connection.WriteHeadersAsync(this, trailers, status: -1, contentLength: -1, endStream: true, flush: true);
        }
        return _connection.WriteDataAsync(this, ReadOnlySequence<byte>.Empty, endStream: true, flush: true, cancellationToken);
    }

    /// <summary>HTTP/2 has no tunnel yet: extended CONNECT (RFC 8441) is a later item, and CONNECT is answered 501 before the application runs.</summary>
    public override IDuplexPipe DetachForTunnel() =>
        throw new NotSupportedException("Tunnels over HTTP/2 (CONNECT, RFC 8441) are not supported yet.");

    public override void Abort(string reason) => _connection.ResetStream(this, Http2ErrorCode.INTERNAL_ERROR);

    /// <summary>Only this stream ends with its response; the connection carries on (§8.1).</summary>
    public override void CloseAfterResponse()
    {
    }
}
