using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Runtime.CompilerServices;
using ProxyCore.Transport;

namespace ProxyCore.Http.Http1;

/// <summary>Knobs of the HTTP/1.1 server side; each is listed in tune.md.</summary>
public sealed class Http1ConnectionOptions
{
    public Http1Limits Limits { get; init; } = Http1Limits.Default;

    /// <summary>
    /// Time from the first byte of a request head to its last (default 10 s). Past it the client gets
    /// 408 and the connection closes: a slowloris client cannot hold a connection open with a trickle.
    /// </summary>
    public TimeSpan HeaderReadTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long an idle keep-alive connection waits for its next request (default 60 s), then closes quietly.</summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public static Http1ConnectionOptions Default { get; } = new();
}

/// <summary>
/// The HTTP/1.1 server side of one client connection (RFC 9112): reads request heads, serves one
/// exchange at a time (pipelined requests wait in the input pipe and are answered in order), frames
/// request and response bodies, and keeps the connection alive when both sides allow it.
/// The connection object is the exchange: it is reused for every request of the connection.
/// </summary>
public sealed class Http1Connection : HttpExchange
{
    private static readonly Action<object?> s_onStopping = static state => ((Http1Connection)state!).OnStopping();

    // One callback per connection tells the application state of a close, so the relay need not register
    // (and unregister) on the connection's token for every exchange it serves. The transport's close-callback slot
    // where it has one (no registration kept on the token's source), else a registration on ConnectionClosed.
    private static readonly Action<object?> s_onClosed = static state =>
    {
        var self = (Http1Connection)state!;
        (self.ApplicationState as IIdleAware)?.OnConnectionClosed(self);
    };

    private readonly ConnectionContext _connection;
    private readonly IHttpApplication _application;
    private readonly Http1ConnectionOptions _options;
    private readonly CancellationToken _stopping;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    // The keep-alive and head-read deadline, re-armed twice per request (no runtime timer per arm). Callback mode: a
    // fire cancels the pending head read (CancelPendingRead) instead of a token the read would register on, so an idle
    // connection holds no CancellationTokenSource, registration node or registrations table for it.
    private readonly CoarseTimeout _timeout;
    private byte[]? _clientAddress;

    private volatile bool _isStopping;
    private volatile bool _waitingForHead;

    // The head read and the timeout's fire (which runs on the thread pool, maybe late: after the read it was meant for):
    // HeadIdle between reads; HeadReading while one may be cut short; HeadTimedOut once the fire claimed it and
    // cancelled the read: a cancel that the loop takes for the timeout, or consumes when it leaves the head read by
    // another way, so that no later read (a body, the next head, a tunnel) sees it. The fire sets HeadTimedOut and
    // cancels under a monitor on _timeout, and the loop looks at HeadTimedOut under it, so it never sees the state
    // without the cancel. (A monitor on an existing object: no lock object per connection.)
    private const int HeadIdle = 0, HeadReading = 1, HeadTimedOut = 2;
    private int _headRead;

    // Request body state.
    private long _requestBodyRemaining;
    private ChunkedDecoder _chunked;
    private bool _requestBodyDone;
    private bool _hasPendingBody;
    private SequencePosition _pendingBodyEnd;
    private long _pendingBodyLength;
    private bool _continueSent;

    // Response state.
    private bool _responseStarted;
    private bool _responseCompleted;
    private bool _responseHasNoBody;
    private bool _responseChunked;
    private long _responseRemaining;
    private bool _closeAfterResponse;
    private bool _detached;
    private bool _aborted;

    public Http1Connection(ConnectionContext connection, IHttpApplication application, Http1ConnectionOptions options, CancellationToken stopping)
    {
        _connection = connection;
        _application = application;
        _options = options;
        _stopping = stopping;
        _input = connection.Transport.Input;
        _output = connection.Transport.Output;
        _timeout = new CoarseTimeout(s_onHeadTimeout, this);
    }

    private static readonly Action<object?> s_onHeadTimeout = static state => ((Http1Connection)state!).OnHeadTimeout();

    public override ConnectionContext Connection => _connection;

    public override CancellationToken Aborted => _connection.ConnectionClosed;

    public override ReadOnlySpan<byte> ClientAddress => _clientAddress ??= FormatClientAddress(_connection.RemoteEndPoint);

    public override bool RequestBodyCompleted => _requestBodyDone;

    public override bool ResponseStarted => _responseStarted;

    public override bool ResponseCompleted => _responseCompleted;

    /// <summary>Serves requests until the client closes, asks to close, errs, or the server stops.</summary>
    public async Task RunAsync()
    {
        using var stoppingRegistration = _stopping.UnsafeRegister(s_onStopping, this);
        bool closeSlot = _connection.TrySetCloseCallback(s_onClosed, this);
        var closedRegistration = closeSlot ? default : _connection.ConnectionClosed.UnsafeRegister(s_onClosed, this);
        try
        {
            while (true)
            {
                ResetExchange();

                // The next request head, read inline: a separate async method would cost a
                // state-machine box per request whenever it waits for the client.
                bool gotHead = false;
                bool sawBytes = false;
                _timeout.CancelAfter(_options.KeepAliveTimeout);
                Volatile.Write(ref _headRead, HeadReading);
                _waitingForHead = true;
                if (_isStopping)
                {
                    // Stop began between two requests: end the read at once (pipelined bytes are still served).
                    _input.CancelPendingRead();
                }
                try
                {
                    while (true)
                    {
                        ReadResult result;
                        if (sawBytes || !_input.TryRead(out result))
                        {
                            if (!sawBytes)
                            {
                                // Nothing of the next request yet: the connection may stay idle for its
                                // whole keep-alive timeout, so it gives its head buffers back first
                                // (rented again when bytes come; the pools make that cheap).
                                ReleaseIdleMemory();
                            }
                            result = await _input.ReadAsync().ConfigureAwait(false);
                        }

                        var buffer = result.Buffer;
                        if (result.IsCanceled && TakeHeadTimeout())
                        {
                            // The timeout cut this read short.
                            _input.AdvanceTo(buffer.Start, buffer.End);
                            if (sawBytes)
                            {
                                await RespondErrorAsync(408, "request-head-timeout", "The request head did not arrive in time.").ConfigureAwait(false);
                            }
                            break;
                        }
                        if (result.IsCanceled && buffer.IsEmpty)
                        {
                            // Server stopping: an idle connection closes; a request already arriving is still served.
                            _input.AdvanceTo(buffer.Start);
                            break;
                        }
                        if (!sawBytes && !buffer.IsEmpty)
                        {
                            sawBytes = true;
                            _timeout.CancelAfter(_options.HeaderReadTimeout);
                        }

                        var status = Http1Parser.TryParseRequest(buffer, Request, _options.Limits, out var consumed, out var error);
                        if (status == Http1ParseResult.Complete)
                        {
                            _input.AdvanceTo(consumed);
                            gotHead = true;
                            break;
                        }
                        if (status == Http1ParseResult.Error)
                        {
                            _input.AdvanceTo(buffer.End);
                            await RespondErrorAsync(HttpParseErrors.StatusCode(error), ReasonText(error),
                                "Malformed request: " + ReasonText(error) + ".").ConfigureAwait(false);
                            break;
                        }
                        if (result.IsCompleted || result.IsCanceled)
                        {
                            // The client closed (or we are stopping) before a whole head arrived.
                            _input.AdvanceTo(buffer.End);
                            break;
                        }
                        _input.AdvanceTo(buffer.Start, buffer.End);
                    }
                }
                finally
                {
                    _waitingForHead = false;
                    EndHeadRead();
                    _timeout.Reset();
                }
                if (!gotHead)
                {
                    break;
                }

                StartTimestamp = Stopwatch.GetTimestamp();
                PrepareRequestBody();
                try
                {
                    await _application.ProcessAsync(this).ConfigureAwait(false);
                }
                catch (Exception) when (!_responseStarted && !_aborted && !_connection.ConnectionClosed.IsCancellationRequested)
                {
                    // A client that closed (or half-closed: like nginx, we take its FIN as leaving) gets no 500 for our
                    // cancelled work; the loop below resets the connection since no response was completed.
                    await RespondErrorAsync(500, "internal-error", "The proxy failed while handling the request.").ConfigureAwait(false);
                }

                if (_detached || _aborted)
                {
                    return;
                }
                if (!_responseCompleted)
                {
                    Abort("response-not-completed");
                    return;
                }
                if (_closeAfterResponse || !_requestBodyDone)
                {
                    // An unread request body would be parsed as the next request: close instead.
                    break;
                }
            }
        }
        catch (Exception) when (_aborted || _connection.ConnectionClosed.IsCancellationRequested)
        {
            // The client went away mid-exchange: nothing left to tell it.
        }
        finally
        {
            if (closeSlot)
            {
                _connection.ClearCloseCallback();
            }
            closedRegistration.Unregister(); // not Dispose: that would wait for a close callback running on another thread
            (ApplicationState as IDisposable)?.Dispose();
            _timeout.Dispose();
            Request.ReleaseMemory();
            Response.ReleaseMemory();
            ReleaseRequestTrailersMemory();
            if (!_detached)
            {
                await _output.CompleteAsync().ConfigureAwait(false);
                await _input.CompleteAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>The timeout's fire, on the thread pool: cancels the head read it was armed for, if that is still going on.</summary>
    private void OnHeadTimeout()
    {
        lock (_timeout)
        {
            // Not fired: a fire queued for an earlier head read whose Reset cleared it before this ran.
            if (!_timeout.HasFired || Interlocked.CompareExchange(ref _headRead, HeadTimedOut, HeadReading) != HeadReading)
            {
                return; // (or between head reads, or the loop already left this one)
            }
            _input.CancelPendingRead(); // the loop may resume inline, right here (the monitor is re-entrant)
        }
    }

    /// <summary>After a cancelled read: true when it was the timeout's cancel (the head read then ends).</summary>
    private bool TakeHeadTimeout()
    {
        lock (_timeout)
        {
            if (_headRead != HeadTimedOut)
            {
                return false; // the server stopping
            }
            _headRead = HeadIdle;
            return true;
        }
    }

    /// <summary>Leaves the head read; a timeout cancel that came after its last read is consumed, so no later read sees it.</summary>
    private void EndHeadRead()
    {
        if (Interlocked.CompareExchange(ref _headRead, HeadIdle, HeadReading) != HeadTimedOut)
        {
            return; // the usual way: no fire, or one that will now find the read over
        }
        lock (_timeout)
        {
            _headRead = HeadIdle;
            try
            {
                if (_input.TryRead(out var stale))
                {
                    _input.AdvanceTo(stale.Buffer.Start, stale.Buffer.Start);
                }
            }
            catch (InvalidOperationException)
            {
                // The reader was completed: nothing will read again.
            }
        }
    }

    private void ReleaseIdleMemory()
    {
        Request.ReleaseMemory();
        Response.ReleaseMemory();
        ReleaseRequestTrailersMemory();
        if (ApplicationState is IIdleAware state && state.OnIdle())
        {
            ApplicationState = null;
        }
    }

    private void OnStopping()
    {
        _isStopping = true;
        if (_waitingForHead)
        {
            _input.CancelPendingRead();
        }
    }

    private void ResetExchange()
    {
        Request.Reset();
        Response.Reset();
        ResetRequestTrailers();
        _chunked.Reset();
        _requestBodyRemaining = 0;
        _requestBodyDone = true;
        _hasPendingBody = false;
        _continueSent = false;
        _responseStarted = false;
        _responseCompleted = false;
        _responseHasNoBody = false;
        _responseChunked = false;
        _responseRemaining = 0;
    }

    private void PrepareRequestBody()
    {
        if (Request.Scheme.IsEmpty)
        {
            Request.Scheme = Request.Append(IsHttps ? "https"u8 : "http"u8);
        }
        if (!Request.KeepAlive || _isStopping)
        {
            _closeAfterResponse = true;
        }
        switch (Request.Framing)
        {
            case BodyFraming.ContentLength when Request.ContentLength > 0:
                _requestBodyRemaining = Request.ContentLength;
                _requestBodyDone = false;
                break;
            case BodyFraming.Chunked:
                _requestBodyDone = false;
                break;
            default:
                _requestBodyDone = true;
                break;
        }
    }

    // ---- request body ----

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<BodyReadResult> ReadRequestBodyAsync(CancellationToken cancellationToken = default)
    {
        Debug.Assert(!_hasPendingBody, "AdvanceRequestBody must follow each read.");
        if (_requestBodyDone)
        {
            return new BodyReadResult(ReadOnlySequence<byte>.Empty, true);
        }
        if (Request.ExpectContinue && !_continueSent && !_responseStarted)
        {
            // RFC 9110 §10.1.1: the client waits for 100 before sending the body; we send it when the
            // application first asks for the body, i.e. once it decided to forward the request.
            _continueSent = true;
            _output.Write("HTTP/1.1 100 Continue\r\n\r\n"u8);
            await _output.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        while (true)
        {
            var result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (result.IsCanceled)
            {
                throw new OperationCanceledException("The request body read was cancelled.");
            }
            var buffer = result.Buffer;

            if (Request.Framing == BodyFraming.ContentLength)
            {
                if (buffer.IsEmpty && result.IsCompleted)
                {
                    _input.AdvanceTo(buffer.End);
                    throw new IOException("The client closed the connection before the request body ended.");
                }
                long take = Math.Min(buffer.Length, _requestBodyRemaining);
                var data = buffer.Slice(0, take);
                _hasPendingBody = true;
                _pendingBodyEnd = data.End;
                _pendingBodyLength = take;
                return new BodyReadResult(data, take == _requestBodyRemaining);
            }

            var status = _chunked.Read(buffer, RequestTrailers, _options.Limits, out var chunk, out var consumed, out var error);
            switch (status)
            {
                case ChunkedReadResult.Data:
                    _hasPendingBody = true;
                    _pendingBodyEnd = consumed;
                    _pendingBodyLength = chunk.Length;
                    return new BodyReadResult(chunk, false);
                case ChunkedReadResult.Complete:
                    _input.AdvanceTo(consumed);
                    _requestBodyDone = true;
                    return new BodyReadResult(ReadOnlySequence<byte>.Empty, true);
                case ChunkedReadResult.Incomplete:
                    if (result.IsCompleted)
                    {
                        _input.AdvanceTo(buffer.End);
                        throw new IOException("The client closed the connection before the request body ended.");
                    }
                    _input.AdvanceTo(consumed, buffer.End);
                    continue;
                default:
                    _input.AdvanceTo(buffer.End);
                    throw new HttpProtocolException(error);
            }
        }
    }

    public override void AdvanceRequestBody()
    {
        if (!_hasPendingBody)
        {
            return;
        }
        _hasPendingBody = false;
        _input.AdvanceTo(_pendingBodyEnd);
        if (Request.Framing == BodyFraming.ContentLength)
        {
            _requestBodyRemaining -= _pendingBodyLength;
            _requestBodyDone = _requestBodyRemaining == 0;
        }
    }

    // ---- response ----

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask SendInformationalAsync(ResponseHead head, CancellationToken cancellationToken = default)
    {
        if (_responseStarted || Request.Version == HttpVersion.Http10)
        {
            return; // RFC 9110 §15.2: no 1xx to an HTTP/1.0 client.
        }
        var writer = new HeadWriter(_output);
        WriteStatusLine(ref writer, head);
        writer.WriteHeaders(head);
        writer.Write("\r\n"u8);
        writer.Commit();
        await _output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public override ValueTask StartResponseAsync(BodyFraming framing, long contentLength, CancellationToken cancellationToken = default)
    {
        if (_responseStarted)
        {
            throw new InvalidOperationException("The response has already started.");
        }
        _responseStarted = true;
        int status = Response.StatusCode;
        if (_isStopping)
        {
            _closeAfterResponse = true;
        }

        var writer = new HeadWriter(_output);
        WriteStatusLine(ref writer, Response);
        writer.WriteHeaders(Response);

        // RFC 9112 §6.3: HEAD, 1xx, 204 and 304 responses never have a body, whatever the headers say.
        bool bodyForbidden = status is < 200 or 204 or 304;
        _responseHasNoBody = bodyForbidden || Request.Method == HttpMethod.Head;
        switch (framing)
        {
            case BodyFraming.ContentLength:
                if (status != 204 && status >= 200)
                {
                    writer.Write("content-length: "u8);
                    writer.WriteDecimal(contentLength);
                    writer.Write("\r\n"u8);
                }
                _responseRemaining = _responseHasNoBody ? 0 : contentLength;
                break;
            case BodyFraming.Stream or BodyFraming.Chunked or BodyFraming.CloseDelimited:
                if (bodyForbidden)
                {
                    break;
                }
                if (Request.Version == HttpVersion.Http11)
                {
                    writer.Write("transfer-encoding: chunked\r\n"u8);
                    _responseChunked = !_responseHasNoBody;
                }
                else
                {
                    // An HTTP/1.0 client knows no chunked coding: the body ends when we close.
                    _closeAfterResponse = true;
                }
                _responseRemaining = -1;
                break;
            default:
                if (!bodyForbidden && Request.Method != HttpMethod.Head)
                {
                    writer.Write("content-length: 0\r\n"u8);
                }
                _responseRemaining = 0;
                break;
        }

        if (status == 101)
        {
            // The relay copied Connection/Upgrade into the head: the switch is the tunnel's business.
        }
        else if (_closeAfterResponse)
        {
            writer.Write("connection: close\r\n"u8);
        }
        else if (Request.Version == HttpVersion.Http10)
        {
            writer.Write("connection: keep-alive\r\n"u8);
        }
        writer.Write("\r\n"u8);
        writer.Commit();
        return ValueTask.CompletedTask;
    }

    private static void WriteStatusLine(ref HeadWriter writer, ResponseHead head)
    {
        var line = StatusLines.Http11(head.StatusCode);
        if (!line.IsEmpty && head.Reason.IsEmpty)
        {
            writer.Write(line);
            return;
        }
        writer.Write("HTTP/1.1 "u8);
        writer.WriteDecimal(head.StatusCode);
        writer.Write(" "u8);
        writer.Write(head.Reason.IsEmpty ? StatusLines.ReasonPhrase(head.StatusCode) : head.Get(head.Reason));
        writer.Write("\r\n"u8);
    }

    public override ValueTask WriteResponseBodyAsync(ReadOnlySequence<byte> data, bool flush, CancellationToken cancellationToken = default)
    {
        Debug.Assert(_responseStarted && !_responseCompleted);
        if (!_responseHasNoBody && !data.IsEmpty)
        {
            if (_responseRemaining >= 0)
            {
                if (data.Length > _responseRemaining)
                {
                    throw new InvalidOperationException("The response body is longer than its Content-Length.");
                }
                _responseRemaining -= data.Length;
            }
            Http1BodyWriter.Write(_output, data, _responseChunked);
        }
        return flush ? FlushAsync(cancellationToken) : ValueTask.CompletedTask;
    }

    private ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        // Most flushes finish at once (the epoll writer's flush is the send itself): no async method for them.
        var flush = _output.FlushAsync(cancellationToken);
        if (!flush.IsCompletedSuccessfully)
        {
            return AwaitFlushAsync(flush);
        }
        var result = flush.Result;
        return result.IsCompleted || result.IsCanceled ? ValueTask.FromException(ClientClosedWhileWriting()) : default;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask AwaitFlushAsync(ValueTask<FlushResult> flush)
    {
        var result = await flush.ConfigureAwait(false);
        if (result.IsCompleted || result.IsCanceled)
        {
            throw ClientClosedWhileWriting();
        }
    }

    private static IOException ClientClosedWhileWriting() => new("The client connection closed while the response was being written.");

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
        if (_responseChunked)
        {
            Http1BodyWriter.WriteLastChunk(_output, trailers);
        }
        _responseCompleted = true;
        if (_output.CanGetUnflushedBytes && _output.UnflushedBytes == 0)
        {
            // All of it left with the last body write (the usual Content-Length answer, flushed as it was relayed):
            // a flush of nothing would cost an async call and the pipe's lock per request (callgrind) for no bytes.
            return ValueTask.CompletedTask;
        }
        return FlushAsync(cancellationToken);
    }

    public override IDuplexPipe DetachForTunnel()
    {
        Debug.Assert(_responseStarted);
        _detached = true;
        _responseCompleted = true;
        return _connection.Transport;
    }

    public override void Abort(string reason)
    {
        _aborted = true;
        _connection.Abort(new IOException("Exchange aborted: " + reason));
    }

    public override void CloseAfterResponse() => _closeAfterResponse = true;

    private static string ReasonText(HttpParseError error) => System.Text.Encoding.ASCII.GetString(HttpParseErrors.Reason(error));

    private static byte[] FormatClientAddress(EndPoint? endPoint)
    {
        if (endPoint is IPEndPoint ip)
        {
            var address = ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address;
            Span<byte> buffer = stackalloc byte[64];
            if (address.TryFormat(buffer, out int written))
            {
                return buffer.Slice(0, written).ToArray();
            }
        }
        return "unknown"u8.ToArray();
    }
}
