using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using ProxyCore.Http.Http2.Hpack;
using ProxyCore.Transport;

namespace ProxyCore.Http.Http2;

/// <summary>
/// The HTTP/2 server side of one client connection (RFC 9113), h2c by prior knowledge or after ALPN:
/// one read loop parses frames and drives the stream states of §5.1; each request stream runs the
/// application on its own task as an <see cref="Http2Stream"/> exchange; responses from all streams
/// go out through one writer (see Http2Connection.Output.cs).
/// </summary>
/// <remarks>
/// Errors are values: a handler that finds a connection error records it with <see cref="Fail"/> and
/// returns false; the loop then sends GOAWAY with that code and closes (§5.4.1). A stream error sends
/// RST_STREAM and resets only that stream (§5.4.2). Nothing the peer sends throws past this class.
/// </remarks>
public sealed partial class Http2Connection
{
    private static readonly Action<object?> s_onStopping = static state => ((Http2Connection)state!).OnStopping();
    private static readonly TimerCallback s_onIdle = static state => ((Http2Connection)state!).OnIdleTimer();

    /// <summary>Stream identifiers remembered after closing, to tell "closed" (STREAM_CLOSED) from "never opened" (§5.1).</summary>
    private const int ClosedStreamMemory = 256;

    /// <summary>A WINDOW_UPDATE smaller than this opens too little to be worth its frame: it counts toward <see cref="Http2ConnectionOptions.MaxControlFrames"/>.</summary>
    private const int TinyWindowIncrement = 1024;

    /// <summary>How a remembered stream closed: §5.1 answers a late frame differently for each.</summary>
    private enum StreamEnd : byte
    {
        /// <summary>Both sides sent END_STREAM: a late HEADERS is a connection error of type STREAM_CLOSED.</summary>
        Finished,
        /// <summary>We sent RST_STREAM: frames that crossed it are ignored.</summary>
        ResetByUs,
        /// <summary>The client sent RST_STREAM: anything but PRIORITY after it is a stream error of type STREAM_CLOSED.</summary>
        ResetByPeer,
    }

    private enum BlockTarget : byte
    {
        /// <summary>A new stream's request head.</summary>
        Request,
        /// <summary>An open stream's trailers (HEADERS with END_STREAM after DATA, §8.1).</summary>
        Trailers,
        /// <summary>A block that must still go through HPACK (§4.3) but whose stream is refused or in error.</summary>
        Discard,
    }

    private readonly ConnectionContext _context;
    private readonly IHttpApplication _application;
    private readonly Http2ConnectionOptions _options;
    private readonly CancellationToken _stopping;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly HpackDecoder _decoder;
    private byte[]? _clientAddress;

    // Streams: the table and the pool are shared with the streams' tasks, under _streamsLock.
    // Lock order: _streamsLock, then _windowLock.
    private readonly object _streamsLock = new();
    private readonly Dictionary<int, Http2Stream> _streams = [];
    private readonly Stack<Http2Stream> _pool = new();
    private readonly int[] _closedStreams = new int[ClosedStreamMemory];
    private readonly StreamEnd[] _closedStreamEnds = new StreamEnd[ClosedStreamMemory];
    private int _closedStreamsNext;
    private int _lastStreamId;
    private TaskCompletionSource? _streamsDrained;
    private bool _closing;

    // The field block being received (HEADERS, then CONTINUATION until END_HEADERS).
    private int _blockStreamId;
    private BlockTarget _blockTarget;
    private HttpHead? _blockHead;
    private Http2Stream? _blockStream;
    private bool _blockEndStream;
    private Http2ErrorCode _blockError;
    private int _blockBytes;
    private int _blockFrames;
    private long _blockStarted; // TimeProvider timestamp of the block's HEADERS
    private Http2RequestFieldHandler _fieldHandler;
    private readonly RequestHead _discardHead = new();

    // Receive flow control: what the client may still send on the connection, and consumed octets not
    // yet given back. The read loop takes, the streams' tasks give back: both through Interlocked.
    private int _connectionReceiveWindow;
    private int _connectionUnacked;

    // Abuse budgets (read loop only): fixed windows of the options' TimeProvider timestamps.
    private WindowCounter _rapidResets;
    private WindowCounter _controlFrames;
    private readonly long _rapidResetWindowTicks;
    private readonly long _controlFrameWindowTicks;

    // Idle connection timeout, armed while no stream is open, and header block timeout, armed while a
    // block is incomplete: one timer, firing into the read loop.
    private readonly ITimer _idleTimer;
    private volatile bool _idleExpired;
    // A response found the connection's send window shut for StallTimeout: the read loop closes.
    private volatile bool _stalled;

    private volatile bool _stoppingRequested;
    private bool _goAwaySent;
    private bool _peerGoAway;
    private bool _settingsReceived;
    private Http2ErrorCode _connectionError;
    private byte[]? _connectionErrorReason;
    private bool _failed;

    public Http2Connection(ConnectionContext connection, IHttpApplication application, Http2ConnectionOptions options, CancellationToken stopping)
    {
        _context = connection;
        _application = application;
        _options = options;
        _stopping = stopping;
        _input = connection.Transport.Input;
        _output = connection.Transport.Output;
        _decoder = new HpackDecoder(options.HeaderTableSize, options.MaxHeaderListSize);
        _encoder = new HpackEncoder();
        _connectionReceiveWindow = options.ConnectionWindowSize;
        _controlSender = new ControlFrameSender(this);
        var time = options.TimeProvider;
        _rapidResetWindowTicks = ToTimestampTicks(options.RapidResetWindow, time);
        _controlFrameWindowTicks = ToTimestampTicks(options.ControlFrameWindow, time);
        _idleTimer = time.CreateTimer(s_onIdle, this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    private static long ToTimestampTicks(TimeSpan span, TimeProvider time) => (long)(span.TotalSeconds * time.TimestampFrequency);

    /// <summary>Events counted per fixed window of time; true while the count is within the limit.</summary>
    private struct WindowCounter
    {
        private long _windowStart;
        private int _count;
        private bool _started;

        public bool TryAdd(long now, long windowTicks, int limit)
        {
            if (!_started || now - _windowStart >= windowTicks)
            {
                _started = true;
                _windowStart = now;
                _count = 0;
            }
            return ++_count <= limit;
        }
    }

    /// <summary>
    /// A frame that made us work or write without serving a request; false (a connection error of
    /// type ENHANCE_YOUR_CALM recorded, §5.4.1) once the window's budget is spent.
    /// </summary>
    private bool SpendControlBudget() =>
        _controlFrames.TryAdd(_options.TimeProvider.GetTimestamp(), _controlFrameWindowTicks, _options.MaxControlFrames)
        || Fail(Http2ErrorCode.ENHANCE_YOUR_CALM, s_controlFlood);

    /// <summary>A stream cancelled (or refused) before its response completed: the Rapid Reset budget (CVE-2023-44487).</summary>
    private bool SpendRapidResetBudget() =>
        _rapidResets.TryAdd(_options.TimeProvider.GetTimestamp(), _rapidResetWindowTicks, _options.MaxRapidResets)
        || Fail(Http2ErrorCode.ENHANCE_YOUR_CALM, s_rapidReset);

    private void OnIdleTimer()
    {
        _idleExpired = true;
        _input.CancelPendingRead();
    }

    /// <summary>From a stream's task: the connection's send window stayed shut for the stall timeout.</summary>
    internal void OnConnectionStalled()
    {
        _stalled = true;
        _input.CancelPendingRead();
    }

    internal ConnectionContext Context => _context;

    internal IHttpApplication Application => _application;

    internal ReadOnlySpan<byte> ClientAddress => _clientAddress ??= FormatClientAddress(_context.RemoteEndPoint);

    /// <summary>Serves streams until the client closes, a connection error, or the server stops (then GOAWAY, in-flight streams finish, close).</summary>
    public async Task RunAsync()
    {
        using var stoppingRegistration = _stopping.UnsafeRegister(s_onStopping, this);
        try
        {
            if (!await ReadPrefaceAsync().ConfigureAwait(false))
            {
                // §3.4: "Clients and servers MUST treat an invalid connection preface as a connection
                // error (Section 5.4.1) of type PROTOCOL_ERROR."
                Fail(Http2ErrorCode.PROTOCOL_ERROR);
            }
            else
            {
                await WriteServerPrefaceAsync().ConfigureAwait(false);
                await ReadFramesAsync().ConfigureAwait(false);
            }
        }
        catch (Exception)
        {
            // The transport failed (client gone, reset): nothing to tell it.
        }
        finally
        {
            await CloseAsync().ConfigureAwait(false);
        }
    }

    private async Task<bool> ReadPrefaceAsync()
    {
        using var timeout = new CancellationTokenSource(_options.PrefaceTimeout, _options.TimeProvider);
        while (true)
        {
            ReadResult result;
            try
            {
                result = await _input.ReadAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested)
            {
                return false;
            }
            var buffer = result.Buffer;
            var status = Http2Preface.Check(buffer, out var consumed);
            if (status == Http2PrefaceStatus.Match)
            {
                _input.AdvanceTo(consumed);
                return true;
            }
            if (status == Http2PrefaceStatus.Mismatch || result.IsCompleted || result.IsCanceled)
            {
                _input.AdvanceTo(buffer.End);
                return false;
            }
            _input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private async Task ReadFramesAsync()
    {
        while (true)
        {
            if (_stoppingRequested && !_goAwaySent)
            {
                // §6.8: a graceful shutdown names the last stream we will process; streams up to it finish.
                _goAwaySent = true;
                await WriteControlAsync(ControlFrame.GoAway, _lastStreamId, (uint)Http2ErrorCode.NO_ERROR).ConfigureAwait(false);
            }
            if (_stalled)
            {
                Fail(Http2ErrorCode.ENHANCE_YOUR_CALM, s_flowControlStall);
                return;
            }
            bool blockOpen = _blockStreamId != 0;
            bool idle = !blockOpen && ActiveStreamCount == 0;
            if ((_goAwaySent || _peerGoAway) && idle)
            {
                return;
            }

            if (blockOpen)
            {
                // From the block's first frame, not from the last: dribbling CONTINUATION frames does not extend it.
                var left = _options.HeaderBlockTimeout - _options.TimeProvider.GetElapsedTime(_blockStarted);
                if (left <= TimeSpan.Zero)
                {
                    Fail(Http2ErrorCode.ENHANCE_YOUR_CALM, s_headerBlockTimeout);
                    return;
                }
                _idleTimer.Change(left, Timeout.InfiniteTimeSpan);
            }
            else if (idle)
            {
                _idleTimer.Change(_options.IdleTimeout, Timeout.InfiniteTimeSpan);
            }
            var result = await _input.ReadAsync().ConfigureAwait(false);
            if (idle || blockOpen)
            {
                _idleTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
            var buffer = result.Buffer;
            if (result.IsCanceled && buffer.IsEmpty && !result.IsCompleted)
            {
                if (_stalled)
                {
                    Fail(Http2ErrorCode.ENHANCE_YOUR_CALM, s_flowControlStall);
                    _input.AdvanceTo(buffer.Start);
                    return;
                }
                if (_idleExpired)
                {
                    _idleExpired = false;
                    if (blockOpen)
                    {
                        _input.AdvanceTo(buffer.Start);
                        continue; // the loop's top finds the block's time spent
                    }
                    if (idle && ActiveStreamCount == 0 && !_goAwaySent)
                    {
                        // Nothing open for IdleTimeout: a graceful close (§6.8), as HTTP/1.1's keep-alive timeout.
                        _input.AdvanceTo(buffer.Start);
                        _goAwaySent = true;
                        await WriteControlAsync(ControlFrame.GoAway, _lastStreamId, (uint)Http2ErrorCode.NO_ERROR).ConfigureAwait(false);
                        return;
                    }
                }
            }
            bool ok = true;
            while (true)
            {
                var status = Http2FrameReader.TryReadFrame(buffer, _options.MaxFrameSize, out var frame, out var consumed, out var error);
                if (status == Http2ReadStatus.Incomplete)
                {
                    break;
                }
                if (status == Http2ReadStatus.Error && error.IsConnectionError)
                {
                    ok = Fail(error.Code);
                    break;
                }
                ok = await ProcessFrameAsync(status, frame, error).ConfigureAwait(false);
                buffer = buffer.Slice(consumed);
                if (!ok)
                {
                    break;
                }
            }
            _input.AdvanceTo(buffer.Start, buffer.End);
            if (!ok || result.IsCompleted)
            {
                return;
            }
        }
    }

    private int ActiveStreamCount
    {
        get
        {
            lock (_streamsLock)
            {
                return _streams.Count;
            }
        }
    }

    /// <summary>
    /// Records a connection error (§5.4.1); the loop sends GOAWAY with it and closes. <paramref name="reason"/>
    /// goes out as GOAWAY's debug data (§6.8), so a client (or whoever reads its logs) sees which limit it hit.
    /// </summary>
    private bool Fail(Http2ErrorCode code, byte[]? reason = null)
    {
        if (!_failed)
        {
            _failed = true;
            _connectionError = code;
            _connectionErrorReason = reason;
        }
        return false;
    }

    // GOAWAY debug data per limit: names, never values (§6.8: nothing security- or privacy-sensitive).
    private static readonly byte[] s_rapidReset = "rapid-reset: limits.http2.maxRapidResets"u8.ToArray();
    private static readonly byte[] s_controlFlood = "control-frame-flood: limits.http2.maxControlFrames"u8.ToArray();
    private static readonly byte[] s_headerBlockTooLarge = "header-block-too-large: limits.http2.maxHeaderBlockFrames or 2 x limits.maxHeaderBytes"u8.ToArray();
    private static readonly byte[] s_headerBlockTimeout = "header-block-timeout: limits.headerReadTimeout"u8.ToArray();
    private static readonly byte[] s_flowControlStall = "flow-control-stall: limits.http2.stallTimeout"u8.ToArray();

    private ValueTask<bool> ProcessFrameAsync(Http2ReadStatus status, in Http2Frame frame, in Http2FrameError error)
    {
        // §6.2: "A HEADERS frame without the END_HEADERS flag set MUST be followed by a CONTINUATION
        // frame for the same stream. A receiver MUST treat the receipt of any other type of frame or a
        // frame on a different stream as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
        // Unknown types included (§5.5: they "MUST NOT" appear inside a field block).
        if (_blockStreamId != 0 && (frame.Type != Http2FrameType.CONTINUATION || frame.StreamId != _blockStreamId))
        {
            return new(Fail(Http2ErrorCode.PROTOCOL_ERROR));
        }
        // §3.4: "The SETTINGS frame MUST be the first frame the client sends"... "MUST treat ... as a
        // connection error (Section 5.4.1) of type PROTOCOL_ERROR".
        if (!_settingsReceived)
        {
            if (frame.Type != Http2FrameType.SETTINGS || frame.IsAck)
            {
                return new(Fail(Http2ErrorCode.PROTOCOL_ERROR));
            }
            _settingsReceived = true;
        }
        if (status == Http2ReadStatus.UnknownFrame)
        {
            // §5.5: "Implementations MUST ignore and discard frames of unknown types." Not for free, though.
            return new(SpendControlBudget());
        }
        if (status == Http2ReadStatus.Error)
        {
            // A stream error the frame alone shows (§5.4.2); a HEADERS block must still be decoded (§4.3).
            return frame.Type == Http2FrameType.HEADERS
                ? OnHeadersAsync(frame, error.Code)
                : StreamErrorAsync(frame.StreamId, error.Code);
        }
        switch (frame.Type)
        {
            case Http2FrameType.DATA:
                return OnDataAsync(frame);
            case Http2FrameType.HEADERS:
                return OnHeadersAsync(frame, Http2ErrorCode.NO_ERROR);
            case Http2FrameType.CONTINUATION:
                if (_blockStreamId == 0)
                {
                    // §6.10: "A CONTINUATION frame MUST be preceded by a HEADERS, PUSH_PROMISE or
                    // CONTINUATION frame without the END_HEADERS flag set. A recipient that observes
                    // violation of this rule MUST respond with a connection error (Section 5.4.1) of
                    // type PROTOCOL_ERROR."
                    return new(Fail(Http2ErrorCode.PROTOCOL_ERROR));
                }
                return DecodeFragmentAsync(frame.HeaderBlockFragment, frame.EndHeaders);
            case Http2FrameType.PRIORITY:
                // §5.3.2: the RFC 7540 priority scheme is deprecated; the frame is accepted in any
                // stream state (§5.1) and ignored — within the control-frame budget.
                return new(SpendControlBudget());
            case Http2FrameType.RST_STREAM:
                return new(OnRstStream(frame));
            case Http2FrameType.SETTINGS:
                return OnSettingsAsync(frame);
            case Http2FrameType.PUSH_PROMISE:
                // §8.4: "A client cannot push. Thus, servers MUST treat the receipt of a PUSH_PROMISE
                // frame as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
                return new(Fail(Http2ErrorCode.PROTOCOL_ERROR));
            case Http2FrameType.PING:
                if (!SpendControlBudget())
                {
                    return new(false);
                }
                if (frame.IsAck)
                {
                    return new(true); // We send no PING of our own yet.
                }
                // §6.7: "Receivers of a PING frame that does not include an ACK flag MUST send a PING
                // frame with the ACK flag set in response, with an identical frame payload."
                return WriteControlAsync(ControlFrame.PingAck, 0, 0, frame.PingOpaqueData);
            case Http2FrameType.GOAWAY:
                // §6.8: the client opens no more streams; those in flight finish, then we close.
                _peerGoAway = true;
                return new(true);
            default:
                return OnWindowUpdateAsync(frame);
        }
    }

    // ---- HEADERS and CONTINUATION ----

    private ValueTask<bool> OnHeadersAsync(in Http2Frame frame, Http2ErrorCode frameError)
    {
        int streamId = frame.StreamId;
        // §5.1.1: "Streams initiated by a client MUST use odd-numbered stream identifiers" ... "An
        // endpoint that receives an unexpected stream identifier MUST respond with a connection error
        // (Section 5.4.1) of type PROTOCOL_ERROR."
        if ((streamId & 1) == 0)
        {
            return new(Fail(Http2ErrorCode.PROTOCOL_ERROR));
        }

        Http2Stream? stream;
        lock (_streamsLock)
        {
            _streams.TryGetValue(streamId, out stream);
        }
        if (frameError != Http2ErrorCode.NO_ERROR)
        {
            if (streamId > _lastStreamId)
            {
                _lastStreamId = streamId;
            }
            BeginBlock(BlockTarget.Discard, streamId, null, _discardHead, frame.EndStream, frameError);
        }
        else if (stream is not null)
        {
            if (stream.RequestEnded && !stream.IsReset && stream.ResponseCompleted)
            {
                // Both END_STREAMs are out, only the application's task has not let go of the stream
                // yet: it is closed (§5.1), as it will be a moment later (below).
                return new(Fail(Http2ErrorCode.STREAM_CLOSED));
            }
            if (stream.RequestEnded)
            {
                // §5.1 half-closed (remote): "If an endpoint receives additional frames, other than
                // WINDOW_UPDATE, PRIORITY, or RST_STREAM, for a stream that is in this state, it MUST
                // respond with a stream error (Section 5.4.2) of type STREAM_CLOSED." Reset streams
                // are closed: after the client's RST_STREAM the same stream error; after ours the
                // block is only decoded (§5.1: "MUST ignore frames that it receives on closed streams
                // after it has sent a RST_STREAM frame").
                var error = stream.IsReset && stream.ResetByUs ? Http2ErrorCode.NO_ERROR : Http2ErrorCode.STREAM_CLOSED;
                BeginBlock(BlockTarget.Discard, streamId, null, _discardHead, frame.EndStream, error);
            }
            else if (!frame.EndStream)
            {
                // §8.1: a trailer section is "a HEADERS frame ... with the END_STREAM flag set"; "An
                // endpoint that receives a HEADERS frame without the END_STREAM flag set after
                // receiving the HEADERS frame that opens a request ... MUST treat the corresponding
                // request or response as malformed".
                BeginBlock(BlockTarget.Discard, streamId, null, _discardHead, frame.EndStream, Http2ErrorCode.PROTOCOL_ERROR);
            }
            else
            {
                BeginBlock(BlockTarget.Trailers, streamId, stream, stream.RequestTrailers, true, Http2ErrorCode.NO_ERROR);
            }
        }
        else if (streamId <= _lastStreamId)
        {
            // §5.1 closed: "An endpoint MUST NOT send frames other than PRIORITY on a closed stream.
            // An endpoint that receives any frame other than PRIORITY after receiving a RST_STREAM
            // MUST treat that as a stream error (Section 5.4.2) of type STREAM_CLOSED", and after
            // END_STREAM "MUST treat that as a connection error (Section 6.4.1) of type STREAM_CLOSED".
            // A lower identifier that never opened breaks §5.1.1 instead: "The identifier of a newly
            // established stream MUST be numerically greater than all streams that the initiating
            // endpoint has opened", a PROTOCOL_ERROR.
            if (!WasClosed(streamId, out var end))
            {
                return new(Fail(Http2ErrorCode.PROTOCOL_ERROR));
            }
            if (end == StreamEnd.Finished)
            {
                return new(Fail(Http2ErrorCode.STREAM_CLOSED));
            }
            // A reset stream: the block still goes through HPACK (§4.3), then the stream error, or
            // nothing after our own RST_STREAM (see above).
            BeginBlock(BlockTarget.Discard, streamId, null, _discardHead, frame.EndStream,
                end == StreamEnd.ResetByPeer ? Http2ErrorCode.STREAM_CLOSED : Http2ErrorCode.NO_ERROR);
        }
        else
        {
            _lastStreamId = streamId;
            if (_goAwaySent || ActiveStreamCount >= _options.MaxConcurrentStreams)
            {
                if (!_goAwaySent && !SpendRapidResetBudget())
                {
                    // Streams reset at once still hold their slot until their work ends: a client that
                    // keeps opening past the limit is resetting faster than we can clean up.
                    return new(false);
                }
                // §5.1.2: "An endpoint that receives a HEADERS frame that causes its advertised
                // concurrent stream limit to be exceeded MUST treat this as a stream error (Section
                // 5.4.2) of type PROTOCOL_ERROR or REFUSED_STREAM"; REFUSED_STREAM tells the client it
                // may retry (§8.7). After our GOAWAY, new streams are refused the same way.
                BeginBlock(BlockTarget.Discard, streamId, null, _discardHead, frame.EndStream, Http2ErrorCode.REFUSED_STREAM);
            }
            else
            {
                stream = RentStream(streamId);
                BeginBlock(BlockTarget.Request, streamId, stream, stream.Request, frame.EndStream, Http2ErrorCode.NO_ERROR);
            }
        }
        return DecodeFragmentAsync(frame.HeaderBlockFragment, frame.EndHeaders);
    }

    private void BeginBlock(BlockTarget target, int streamId, Http2Stream? stream, HttpHead head, bool endStream, Http2ErrorCode error)
    {
        _blockStreamId = streamId;
        _blockTarget = target;
        _blockStream = stream;
        _blockHead = head;
        _blockEndStream = endStream;
        _blockError = error;
        _blockBytes = 0;
        _blockFrames = 0;
        _blockStarted = _options.TimeProvider.GetTimestamp();
        if (target == BlockTarget.Discard)
        {
            _discardHead.Reset();
        }
        _fieldHandler.Begin(trailers: target == BlockTarget.Trailers);
    }

    private ValueTask<bool> DecodeFragmentAsync(in ReadOnlySequence<byte> fragment, bool endHeaders)
    {
        // Cap the raw block while it arrives: the decoder bounds the decoded list, this bounds the
        // frames and octets a client can make us take for one request (CONTINUATION floods).
        _blockBytes += (int)fragment.Length;
        if (++_blockFrames > _options.MaxHeaderBlockFrames || _blockBytes > 2 * _options.MaxHeaderListSize)
        {
            return new(Fail(Http2ErrorCode.ENHANCE_YOUR_CALM, s_headerBlockTooLarge));
        }
        try
        {
            _decoder.Decode(fragment, endHeaders, _blockHead!, ref _fieldHandler);
        }
        catch (HpackException)
        {
            // §4.3: "A decoding error in a field block MUST be treated as a connection error (Section
            // 5.4.1) of type COMPRESSION_ERROR."
            return new(Fail(Http2ErrorCode.COMPRESSION_ERROR));
        }
        if (!endHeaders)
        {
            return new(true);
        }
        int streamId = _blockStreamId;
        _blockStreamId = 0;
        return EndBlockAsync(streamId);
    }

    private ValueTask<bool> EndBlockAsync(int streamId)
    {
        var stream = _blockStream;
        _blockStream = null;
        _blockHead = null;
        switch (_blockTarget)
        {
            case BlockTarget.Request:
            {
                var error = _fieldHandler.Complete(stream!.Request);
                if (error != Http2FieldError.None)
                {
                    // §8.1.1: "Malformed requests or responses that are detected MUST be treated as a
                    // stream error (Section 5.4.2) of type PROTOCOL_ERROR."
                    lock (_streamsLock)
                    {
                        RememberClosed(stream.StreamId, StreamEnd.ResetByUs);
                        ReturnToPool(stream);
                    }
                    if (!SpendControlBudget())
                    {
                        return new(false); // a stream of empty or broken HEADERS, each answered with RST_STREAM
                    }
                    return WriteControlAsync(ControlFrame.RstStream, stream.StreamId, (uint)Http2ErrorCode.PROTOCOL_ERROR);
                }
                MergeCookies(stream.Request);
                stream.OnHeadComplete(_blockEndStream);
                lock (_streamsLock)
                {
                    _streams.Add(stream.StreamId, stream);
                }
                ThreadPool.UnsafeQueueUserWorkItem(stream, preferLocal: false);
                return new(true);
            }
            case BlockTarget.Trailers:
                if (_fieldHandler.Error != Http2FieldError.None)
                {
                    return StreamErrorAsync(stream!.StreamId, Http2ErrorCode.PROTOCOL_ERROR);
                }
                return EndRequestAsync(stream!);
            default:
                _discardHead.Reset();
                // NO_ERROR: a block on a stream we reset, decoded only to keep HPACK in step; work
                // that serves no request, so it draws on the control-frame budget as a RST_STREAM would.
                return _blockError == Http2ErrorCode.NO_ERROR ? new(SpendControlBudget()) : StreamErrorAsync(streamId, _blockError);
        }
    }
}
