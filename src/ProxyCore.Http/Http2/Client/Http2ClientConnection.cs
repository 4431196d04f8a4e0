using System.Buffers;
using System.IO.Pipelines;
using ProxyCore.Http.Http2.Hpack;
using ProxyCore.Transport;

namespace ProxyCore.Http.Http2.Client;

/// <summary>
/// The client side of one HTTP/2 connection to an upstream (RFC 9113): many concurrent request streams
/// over any <see cref="ConnectionContext"/> (h2c by prior knowledge on a TCP socket today; a TLS
/// connection that negotiated "h2" by ALPN works the same, as only the duplex pipe is used).
/// </summary>
/// <remarks>
/// <para>One read loop parses frames: SETTINGS, PING, GOAWAY, WINDOW_UPDATE and RST_STREAM change
/// connection or stream state; HEADERS/CONTINUATION are decoded with the shared HPACK decoder into a
/// scratch head and copied to the stream's target head; DATA is copied into the stream's body pipe.
/// Streams write their frames through one writer under an async lock (a field block is one contiguous
/// run, and the HPACK encoder's table changes in wire order).</para>
/// <para>Flow control both ways (§6.9): DATA goes out only within the peer's stream and connection
/// windows; received DATA is given back with WINDOW_UPDATE only as the relay consumes it
/// (<see cref="ConsumedAsync"/>), so a slow client slows the upstream instead of being buffered.</para>
/// <para>Allocations: none per stream in steady state (streams and their pipes are pooled, the head
/// wait is a reusable source, and a HEADERS or DATA write that finds the writer taken waits as the
/// stream's own <see cref="Http2QueuedWrite"/>). A stream that waits for send window allocates a
/// TaskCompletionSource; the rarer writes (trailers, WINDOW_UPDATE, control frames) that wait for the
/// writer cost an async state-machine box.</para>
/// <para>Waits for the writer (<see cref="Http2WriteLock"/>) are not cancellable: a cancelled write
/// finds out once the lock is its, after the holder's one write and flush.</para>
/// </remarks>
public sealed class Http2ClientConnection
{
    /// <summary>§6.5.2: without SETTINGS_MAX_CONCURRENT_STREAMS the peer allows any number; we stop here.</summary>
    private const int UnlimitedStreamsCap = 1000;

    /// <summary>The most one stream writes per turn of the write lock, so one big body does not starve the others.</summary>
    private const int MaxDataPerWrite = 64 * 1024;

    private readonly ConnectionContext _context;
    private readonly Http2ClientOptions _options;
    private readonly TimeProvider _time;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;

    // Writing: one frame run at a time.
    private readonly Http2WriteLock _writeLock = new();
    private readonly HpackEncoder _encoder = new();
    private readonly ArrayBufferWriter<byte> _headerBlock = new(1024);
    private bool _outputClosed;

    // State shared by the read loop and the streams' relays, under _lock.
    private readonly object _lock = new();
    private readonly Dictionary<int, Http2ClientStream> _streams = [];
    private readonly Stack<Http2ClientStream> _free = new();
    private int _reserved;                 // streams rented and not yet released
    private int _nextStreamId = 1;
    private int _peerMaxStreams = UnlimitedStreamsCap;
    private int _peerInitialWindow = 65_535;
    private uint _peerMaxFrameSize = Http2Frame.DefaultMaxFrameSize;
    private long _connectionSendWindow = 65_535;
    private readonly List<Http2ClientStream> _connectionWindowWaiters = [];
    private bool _goAway;
    private int _goAwayLastStreamId = int.MaxValue;
    private bool _closed;
    private long _idleSince;

    // Receive flow control (Interlocked: the read loop takes, the relays give back).
    private int _connectionReceiveWindow = 65_535;
    private int _connectionUnacked;

    // Read loop only.
    private readonly HpackDecoder _decoder;
    private readonly ResponseHead _scratch = new();
    private Http2ResponseFieldHandler _fields;
    private int _blockStreamId;
    private bool _blockEndStream;
    private bool _blockTrailers;
    private int _blockBytes;
    private readonly TaskCompletionSource<bool> _settingsReceived = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Health.
    private long _lastReadTimestamp;
    private long _pingSentAt;   // 0: no PING outstanding
    private ulong _pingCounter;

    internal Http2UpstreamPool.Endpoint? Owner;

    public Http2ClientConnection(ConnectionContext context, Http2ClientOptions options, TimeProvider? timeProvider = null)
    {
        _context = context;
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _input = context.Transport.Input;
        _output = context.Transport.Output;
        _decoder = new HpackDecoder(options.HeaderTableSize, options.MaxHeaderListSize);
        _idleSince = _lastReadTimestamp = _time.GetTimestamp();
    }

    public ConnectionContext Context => _context;

    /// <summary>The writer's lock, for tests that hold it while streams queue behind it.</summary>
    internal Http2WriteLock WriteLock => _writeLock;

    public Http2ClientOptions Options => _options;

    /// <summary>The read loop: ends when the connection does.</summary>
    public Task? Completion { get; private set; }

    /// <summary>Streams rented and not released.</summary>
    public int ActiveStreams
    {
        get
        {
            lock (_lock)
            {
                return _reserved;
            }
        }
    }

    /// <summary>The peer's SETTINGS_MAX_CONCURRENT_STREAMS (capped).</summary>
    public int PeerMaxConcurrentStreams => Volatile.Read(ref _peerMaxStreams);

    /// <summary>True while new streams may be opened (no GOAWAY, not closed, identifiers left).</summary>
    public bool IsOpen
    {
        get
        {
            lock (_lock)
            {
                return !_goAway && !_closed;
            }
        }
    }

    /// <summary>
    /// Sends the connection preface (§3.4) and our SETTINGS, starts the read loop and waits for the peer's
    /// first SETTINGS (so its stream limit and windows are known before the first stream). Fails with
    /// <see cref="IOException"/> when the peer is not an HTTP/2 server or does not answer within <paramref name="timeout"/>.
    /// </summary>
    public async Task StartAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            _output.Write(Http2Preface.ClientPreface);
            Span<Http2Setting> settings =
            [
                // §8.4: we never accept pushes.
                new(Http2SettingsParameter.SETTINGS_ENABLE_PUSH, 0),
                new(Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE, (uint)_options.StreamWindowSize),
                new(Http2SettingsParameter.SETTINGS_MAX_HEADER_LIST_SIZE, (uint)_options.MaxHeaderListSize),
                new(Http2SettingsParameter.SETTINGS_HEADER_TABLE_SIZE, (uint)_options.HeaderTableSize),
            ];
            Http2FrameWriter.WriteSettings(_output, settings);
            int extra = _options.ConnectionWindowSize - 65_535;
            if (extra > 0)
            {
                // §6.9.2: the connection window only grows through WINDOW_UPDATE.
                Http2FrameWriter.WriteWindowUpdate(_output, 0, extra);
                _connectionReceiveWindow = _options.ConnectionWindowSize;
            }
            await FlushLockedAsync().ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
        Completion = Task.Run(ReadLoopAsync, CancellationToken.None);
        try
        {
            if (!await _settingsReceived.Task.WaitAsync(timeout, _time, cancellationToken).ConfigureAwait(false))
            {
                throw new IOException("The upstream closed the connection before its HTTP/2 SETTINGS (not an HTTP/2 server?).");
            }
        }
        catch (TimeoutException e)
        {
            _context.Abort();
            throw new IOException("The upstream sent no HTTP/2 SETTINGS in time (not an HTTP/2 server?).", e);
        }
        catch
        {
            _context.Abort();
            throw;
        }
    }

    // ---- renting streams ----

    /// <summary>Takes a stream slot if the peer's concurrency limit allows; false when full, draining or closed.</summary>
    public bool TryRent(ResponseHead head, HttpHead trailers, out Http2ClientStream? stream)
    {
        lock (_lock)
        {
            if (_goAway || _closed || _reserved >= _peerMaxStreams || _nextStreamId > int.MaxValue - 2 * (_reserved + 1))
            {
                stream = null;
                return false;
            }
            _reserved++;
            stream = _free.Count > 0 ? _free.Pop() : new Http2ClientStream(this);
            stream.Initialize(head, trailers, _options.StreamWindowSize);
            return true;
        }
    }

    /// <summary>
    /// Gives a stream back: resets it upstream with <paramref name="resetCode"/> when it is still open
    /// on either side (CANCEL for an abandoned exchange, NO_ERROR when the response ended before the
    /// request body, §8.1), unregisters it and frees its slot.
    /// </summary>
    public void Release(Http2ClientStream stream, Http2ErrorCode resetCode = Http2ErrorCode.CANCEL)
    {
        bool sendReset;
        int streamId;
        bool closeNow;
        int unackedCredit;
        lock (_lock)
        {
            streamId = stream.StreamId;
            sendReset = streamId != 0 && stream.Registered && !stream.Failed && (!stream.RemoteEnded || !stream.LocalEnded);
            if (stream.Registered)
            {
                _streams.Remove(streamId);
                stream.Registered = false;
            }
            if (!stream.WriterCompleted)
            {
                stream.WriterCompleted = true;
                stream.BodyWriter.Complete();
            }
            // What the stream received but the relay never consumed is given back to the connection.
            unackedCredit = Math.Max(0, _options.StreamWindowSize - stream.ReceiveWindow - stream.Unacked);
            stream.Failed = true;
            stream.WindowWaiter?.TrySetResult();
            _reserved--;
            if (_reserved == 0)
            {
                _idleSince = _time.GetTimestamp();
            }
            closeNow = _goAway && _reserved == 0 && !_closed;
        }
        stream.Body.Complete();
        lock (_lock)
        {
            _free.Push(stream);
        }
        if (sendReset)
        {
            _ = WriteResetAsync(streamId, resetCode);
        }
        if (unackedCredit > 0)
        {
            _ = CreditConnectionAsync(unackedCredit);
        }
        Owner?.OnStreamReleased(this);
        if (closeNow)
        {
            _ = CloseAsync();
        }
    }

    // ---- sending ----

    /// <summary>
    /// Opens the stream: gives it the next identifier and sends <paramref name="head"/> (pseudo-headers
    /// first, as the caller built it) as HEADERS + CONTINUATION. False when the connection can no longer
    /// open streams (GOAWAY arrived, closed): nothing was sent, the request may go elsewhere.
    /// </summary>
    public ValueTask<bool> SendHeadersAsync(Http2ClientStream stream, HttpHead head, bool endStream, CancellationToken cancellationToken)
    {
        // Not cancellable while queued for the writer: the wait is one frame run long.
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }
        if (!_writeLock.TryEnter())
        {
            // Contended (many streams open at once): the stream's own queued write waits without allocating.
            return stream.Writer.IsBusy ? SendHeadersQueuedAsync(stream, head, endStream) : stream.Writer.SendHeaders(head, endStream);
        }
        ValueTask flush;
        try
        {
            if (!TryWriteHeadersLocked(stream, head, endStream, out flush))
            {
                _writeLock.Release();
                return new ValueTask<bool>(false);
            }
        }
        catch (Exception e)
        {
            _writeLock.Release();
            return ValueTask.FromException<bool>(e);
        }
        if (flush.IsCompletedSuccessfully)
        {
            _writeLock.Release();
            return new ValueTask<bool>(true);
        }
        return AwaitHeadersFlushAsync(flush);
    }

    private async ValueTask<bool> AwaitHeadersFlushAsync(ValueTask flush)
    {
        try
        {
            await flush.ConfigureAwait(false);
            return true;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async ValueTask<bool> SendHeadersQueuedAsync(Http2ClientStream stream, HttpHead head, bool endStream)
    {
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!TryWriteHeadersLocked(stream, head, endStream, out var flush))
            {
                return false;
            }
            await flush.ConfigureAwait(false);
            return true;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Holding the write lock: opens the stream and writes its HEADERS (+ CONTINUATION); false when the connection can open no more.</summary>
    private bool TryWriteHeadersLocked(Http2ClientStream stream, HttpHead head, bool endStream, out ValueTask flush)
    {
        lock (_lock)
        {
            if (_goAway || _closed || _outputClosed || stream.Failed)
            {
                flush = default;
                return false;
            }
            // §5.1.1: identifiers increase in the order streams open on the wire, hence under the write lock.
            stream.StreamId = _nextStreamId;
            _nextStreamId += 2;
            stream.SendWindow = _peerInitialWindow;
            stream.Registered = true;
            stream.LocalEnded = endStream;
            _streams.Add(stream.StreamId, stream);
        }
        _headerBlock.ResetWrittenCount();
        _encoder.BeginBlock(_headerBlock);
        var headers = head.Headers;
        for (int i = 0; i < headers.Length; i++)
        {
            _encoder.Encode(head.Get(headers[i].Name), head.Get(headers[i].Value), _headerBlock);
        }
        Http2FrameWriter.WriteHeaders(_output, stream.StreamId, _headerBlock.WrittenSpan, endStream, _peerMaxFrameSize);
        flush = FlushLockedAsync();
        return true;
    }

    /// <summary>Request trailers (§8.1): a HEADERS frame with END_STREAM after the body.</summary>
    public async ValueTask SendTrailersAsync(Http2ClientStream stream, HttpHead trailers, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            ThrowIfCannotWrite(stream);
            _headerBlock.ResetWrittenCount();
            _encoder.BeginBlock(_headerBlock);
            var headers = trailers.Headers;
            for (int i = 0; i < headers.Length; i++)
            {
                var name = trailers.Get(headers[i].Name);
                if (!name.IsEmpty && name[0] != (byte)':')
                {
                    _encoder.Encode(name, trailers.Get(headers[i].Value), _headerBlock);
                }
            }
            stream.LocalEnded = true;
            Http2FrameWriter.WriteHeaders(_output, stream.StreamId, _headerBlock.WrittenSpan, endStream: true, _peerMaxFrameSize);
            await FlushLockedAsync().ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Request body octets as DATA, within the peer's stream and connection windows (§6.9).</summary>
    public ValueTask SendDataAsync(Http2ClientStream stream, ReadOnlySequence<byte> data, bool endStream, CancellationToken cancellationToken)
    {
        if (data.IsEmpty && !endStream)
        {
            return default;
        }
        // The common case without an async method: window for all of it in one turn, and a free lock
        // (written here) or a taken one (the stream's queued write waits for it without allocating).
        if (data.Length > MaxDataPerWrite || cancellationToken.IsCancellationRequested)
        {
            return SendDataSlowAsync(stream, data, endStream, cancellationToken);
        }
        bool locked = _writeLock.TryEnter();
        if (!locked && stream.Writer.IsBusy)
        {
            return SendDataSlowAsync(stream, data, endStream, cancellationToken);
        }
        ValueTask flush;
        try
        {
            if (!data.IsEmpty && !TryTakeWindow(stream, (int)data.Length))
            {
                if (locked)
                {
                    _writeLock.Release();
                }
                return SendDataSlowAsync(stream, data, endStream, cancellationToken);
            }
            if (!locked)
            {
                // The window is taken first, as the slow path does: only the lock is waited for.
                return stream.Writer.SendData(data, endStream, cancellationToken);
            }
            flush = WriteDataLocked(stream, data, endStream);
        }
        catch (Exception e)
        {
            if (locked)
            {
                _writeLock.Release();
            }
            return ValueTask.FromException(e);
        }
        return _writeLock.ReleaseAfter(flush);
    }

    /// <summary>All of <paramref name="length"/> from both send windows, or nothing (then the slow path waits for window).</summary>
    private bool TryTakeWindow(Http2ClientStream stream, int length)
    {
        lock (_lock)
        {
            if (stream.Failed || _closed)
            {
                ThrowStreamGone();
            }
            if (stream.SendWindow < length || _connectionSendWindow < length)
            {
                return false;
            }
            stream.SendWindow -= length;
            _connectionSendWindow -= length;
            return true;
        }
    }

    /// <summary>Holding the write lock: one DATA frame run within window already taken, and its flush.</summary>
    private ValueTask WriteDataLocked(Http2ClientStream stream, ReadOnlySequence<byte> data, bool endStream)
    {
        ThrowIfCannotWrite(stream);
        if (endStream)
        {
            stream.LocalEnded = true;
        }
        Http2FrameWriter.WriteData(_output, stream.StreamId, data, endStream, _peerMaxFrameSize);
        return FlushLockedAsync();
    }

    private async ValueTask SendDataSlowAsync(Http2ClientStream stream, ReadOnlySequence<byte> data, bool endStream, CancellationToken cancellationToken)
    {
        if (data.IsEmpty)
        {
            await _writeLock.WaitAsync().ConfigureAwait(false);
            try
            {
                cancellationToken.ThrowIfCancellationRequested();
                ThrowIfCannotWrite(stream);
                stream.LocalEnded = true;
                Http2FrameWriter.WriteData(_output, stream.StreamId, ReadOnlySpan<byte>.Empty, endStream: true, _peerMaxFrameSize);
                await FlushLockedAsync().ConfigureAwait(false);
            }
            finally
            {
                _writeLock.Release();
            }
            return;
        }

        while (!data.IsEmpty)
        {
            int granted = 0;
            Task? windowOpened = null;
            lock (_lock)
            {
                if (stream.Failed || _closed)
                {
                    ThrowStreamGone();
                }
                long available = Math.Min(stream.SendWindow, _connectionSendWindow);
                if (available > 0)
                {
                    granted = (int)Math.Min(Math.Min(available, data.Length), MaxDataPerWrite);
                    stream.SendWindow -= granted;
                    _connectionSendWindow -= granted;
                }
                else
                {
                    stream.WindowWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    if (_connectionSendWindow <= 0 && !_connectionWindowWaiters.Contains(stream))
                    {
                        _connectionWindowWaiters.Add(stream);
                    }
                    windowOpened = stream.WindowWaiter.Task;
                }
            }
            if (windowOpened is not null)
            {
                await windowOpened.WaitAsync(cancellationToken).ConfigureAwait(false);
                continue;
            }
            bool last = granted == data.Length;
            await _writeLock.WaitAsync().ConfigureAwait(false);
            try
            {
                cancellationToken.ThrowIfCancellationRequested();
                ThrowIfCannotWrite(stream);
                if (last && endStream)
                {
                    stream.LocalEnded = true;
                }
                Http2FrameWriter.WriteData(_output, stream.StreamId, data.Slice(0, granted), endStream && last, _peerMaxFrameSize);
                await FlushLockedAsync().ConfigureAwait(false);
            }
            finally
            {
                _writeLock.Release();
            }
            data = data.Slice(granted);
        }
    }

    /// <summary>
    /// The relay consumed <paramref name="count"/> body octets of <paramref name="stream"/>: once half a
    /// window is owed, give it back to the upstream (stream and connection WINDOW_UPDATE), so it may send more.
    /// </summary>
    public ValueTask ConsumedAsync(Http2ClientStream stream, int count)
    {
        if (count <= 0)
        {
            return default;
        }
        int streamIncrement = 0;
        int streamId = 0;
        lock (_lock)
        {
            stream.Unacked += count;
            if (stream.Registered && !stream.RemoteEnded && stream.Unacked >= _options.StreamWindowSize / 2)
            {
                streamIncrement = stream.Unacked;
                stream.Unacked = 0;
                stream.ReceiveWindow += streamIncrement;
                streamId = stream.StreamId;
            }
        }
        int connection = Interlocked.Add(ref _connectionUnacked, count);
        int connectionIncrement = 0;
        if (connection >= _options.ConnectionWindowSize / 2)
        {
            connectionIncrement = Interlocked.Exchange(ref _connectionUnacked, 0);
        }
        if (streamIncrement == 0 && connectionIncrement <= 0)
        {
            return default;
        }
        return WriteWindowUpdatesAsync(streamId, streamIncrement, connectionIncrement);
    }

    private async ValueTask WriteWindowUpdatesAsync(int streamId, int streamIncrement, int connectionIncrement)
    {
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_outputClosed)
            {
                return;
            }
            if (connectionIncrement > 0)
            {
                Interlocked.Add(ref _connectionReceiveWindow, connectionIncrement);
                Http2FrameWriter.WriteWindowUpdate(_output, 0, connectionIncrement);
            }
            if (streamIncrement > 0)
            {
                Http2FrameWriter.WriteWindowUpdate(_output, streamId, streamIncrement);
            }
            await FlushLockedAsync().ConfigureAwait(false);
        }
        catch (IOException)
        {
            // The connection is gone; the read loop fails the streams.
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private ValueTask CreditConnectionAsync(int count)
    {
        int connection = Interlocked.Add(ref _connectionUnacked, count);
        if (connection < _options.ConnectionWindowSize / 2)
        {
            return default;
        }
        int increment = Interlocked.Exchange(ref _connectionUnacked, 0);
        return increment > 0 ? WriteWindowUpdatesAsync(0, 0, increment) : default;
    }

    private async Task WriteResetAsync(int streamId, Http2ErrorCode code)
    {
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!_outputClosed)
            {
                Http2FrameWriter.WriteRstStream(_output, streamId, code);
                await FlushLockedAsync().ConfigureAwait(false);
            }
        }
        catch (IOException)
        {
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async ValueTask WriteControlAsync(Http2FrameType type, ulong pingData, bool ack, int settingsTableSize = -1)
    {
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_outputClosed)
            {
                return;
            }
            if (type == Http2FrameType.SETTINGS)
            {
                if (settingsTableSize >= 0)
                {
                    // The upstream's decoder table changed: our next block says so first (RFC 7541 §4.2).
                    _encoder.SetMaxDynamicTableSize(settingsTableSize);
                }
                Http2FrameWriter.WriteSettingsAck(_output);
            }
            else
            {
                Http2FrameWriter.WritePing(_output, pingData, ack);
            }
            await FlushLockedAsync().ConfigureAwait(false);
        }
        catch (IOException)
        {
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async ValueTask FlushLockedAsync()
    {
        FlushResult result;
        try
        {
            result = await _output.FlushAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not IOException)
        {
            _outputClosed = true;
            throw new IOException("The upstream HTTP/2 connection failed while frames were being written.", e);
        }
        if (result.IsCompleted || result.IsCanceled)
        {
            _outputClosed = true;
            throw new IOException("The upstream HTTP/2 connection closed while frames were being written.");
        }
    }

    /// <summary>
    /// A stream's HEADERS or DATA that found the writer taken: the same frames as the uncontended paths
    /// of <see cref="SendHeadersAsync"/> and <see cref="SendDataAsync"/> (DATA within window already
    /// taken, at most <see cref="MaxDataPerWrite"/>), written once the lock is its.
    /// </summary>
    internal sealed class StreamWriter(Http2ClientConnection connection, Http2ClientStream stream) : Http2QueuedWrite(connection._writeLock)
    {
        private bool _isHeaders;
        private HttpHead? _head;
        private ReadOnlySequence<byte> _data;
        private bool _endStream;
        private CancellationToken _cancellationToken;

        public ValueTask<bool> SendHeaders(HttpHead head, bool endStream)
        {
            _isHeaders = true;
            _head = head;
            _endStream = endStream;
            return new ValueTask<bool>(this, Start());
        }

        public ValueTask SendData(ReadOnlySequence<byte> data, bool endStream, CancellationToken cancellationToken)
        {
            _isHeaders = false;
            _data = data;
            _endStream = endStream;
            _cancellationToken = cancellationToken;
            return new ValueTask(this, Start());
        }

        protected override ValueTask WriteLocked(out bool result)
        {
            if (_isHeaders)
            {
                result = connection.TryWriteHeadersLocked(stream, _head!, _endStream, out var flush);
                return flush;
            }
            result = true;
            _cancellationToken.ThrowIfCancellationRequested();
            return connection.WriteDataLocked(stream, _data, _endStream);
        }

        protected override void Clear()
        {
            _head = null;
            _data = default;
            _cancellationToken = default;
        }
    }

    private void ThrowIfCannotWrite(Http2ClientStream stream)
    {
        if (_outputClosed || stream.Failed)
        {
            ThrowStreamGone();
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowStreamGone() => throw new IOException("The upstream HTTP/2 stream was reset or its connection closed.");

    // ---- health ----

    /// <summary>
    /// Called about once a second by the pool: PINGs a silent connection, closes one whose PING went
    /// unanswered for <see cref="Http2ClientOptions.PingTimeout"/>, and one idle for <see cref="Http2ClientOptions.IdleTimeout"/>.
    /// </summary>
    public void OnTimer()
    {
        long now = _time.GetTimestamp();
        bool idle;
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }
            idle = _reserved == 0 && _options.IdleTimeout != Timeout.InfiniteTimeSpan && _time.GetElapsedTime(_idleSince, now) >= _options.IdleTimeout;
        }
        if (idle)
        {
            _ = CloseAsync();
            return;
        }
        long pingSent = Volatile.Read(ref _pingSentAt);
        if (pingSent != 0)
        {
            if (_time.GetElapsedTime(pingSent, now) >= _options.PingTimeout)
            {
                // The peer is gone without a FIN (or hopelessly stuck): fail what is in flight now, not at the route timeout.
                _context.Abort(new IOException("The upstream did not answer an HTTP/2 PING in time."));
            }
            return;
        }
        if (_options.PingInterval != Timeout.InfiniteTimeSpan && _time.GetElapsedTime(Volatile.Read(ref _lastReadTimestamp), now) >= _options.PingInterval)
        {
            Volatile.Write(ref _pingSentAt, now);
            _ = WriteControlAsync(Http2FrameType.PING, ++_pingCounter, ack: false);
        }
    }

    /// <summary>Stops new streams, sends GOAWAY and ends the send side; the read loop ends when the upstream closes.</summary>
    public async Task CloseAsync()
    {
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }
            _closed = true;
        }
        Owner?.OnUnavailable(this);
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!_outputClosed)
            {
                // §6.8: we accept no streams from the server at all, so the last one we processed is 0.
                Http2FrameWriter.WriteGoAway(_output, 0, Http2ErrorCode.NO_ERROR);
                await FlushLockedAsync().ConfigureAwait(false);
                _outputClosed = true;
                await _output.CompleteAsync().ConfigureAwait(false);
            }
        }
        catch (Exception)
        {
        }
        finally
        {
            _writeLock.Release();
        }
        // An upstream that never closes its side is cut after a grace period.
        _ = Task.Delay(TimeSpan.FromSeconds(5), _time).ContinueWith(static (_, state) => ((ConnectionContext)state!).Abort(), _context, TaskScheduler.Default);
    }

    /// <summary>Tears the connection down at once (the pool is disposed).</summary>
    public void Abort() => _context.Abort();

    // ---- the read loop ----

    private async Task ReadLoopAsync()
    {
        Http2ErrorCode error = Http2ErrorCode.NO_ERROR;
        try
        {
            while (true)
            {
                var result = await _input.ReadAsync().ConfigureAwait(false);
                Volatile.Write(ref _lastReadTimestamp, _time.GetTimestamp());
                var buffer = result.Buffer;
                while (error == Http2ErrorCode.NO_ERROR)
                {
                    var status = Http2FrameReader.TryReadFrame(buffer, Http2Frame.DefaultMaxFrameSize, out var frame, out var consumed, out var frameError);
                    if (status == Http2ReadStatus.Incomplete)
                    {
                        break;
                    }
                    if (status == Http2ReadStatus.Error && frameError.IsConnectionError)
                    {
                        error = frameError.Code;
                        break;
                    }
                    error = await ProcessFrameAsync(status, frame, frameError).ConfigureAwait(false);
                    buffer = buffer.Slice(consumed);
                }
                _input.AdvanceTo(buffer.Start, buffer.End);
                if (error != Http2ErrorCode.NO_ERROR || result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }
            if (error != Http2ErrorCode.NO_ERROR)
            {
                await _writeLock.WaitAsync().ConfigureAwait(false);
                try
                {
                    if (!_outputClosed)
                    {
                        Http2FrameWriter.WriteGoAway(_output, 0, error);
                        await FlushLockedAsync().ConfigureAwait(false);
                    }
                }
                finally
                {
                    _writeLock.Release();
                }
            }
        }
        catch (Exception)
        {
            // The transport failed (reset, aborted): the streams learn it below.
        }
        finally
        {
            _settingsReceived.TrySetResult(false);
            FailAll();
            Owner?.OnUnavailable(this);
            try
            {
                // Writers check _outputClosed under the write lock: once we hold it, nobody writes to the pipe we dispose.
                await _writeLock.WaitAsync().ConfigureAwait(false);
                _outputClosed = true;
                _writeLock.Release();
                await _input.CompleteAsync().ConfigureAwait(false);
                await _context.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception)
            {
            }
        }
    }

    /// <summary>The connection ended: streams without a head fail (refused when never sent), bodies are cut.</summary>
    private void FailAll()
    {
        lock (_lock)
        {
            _closed = true;
            _outputClosed = true;
            foreach (var stream in _streams.Values)
            {
                FailLocked(stream, stream.StreamId > _goAwayLastStreamId ? Http2StreamOutcome.Refused : Http2StreamOutcome.ConnectionClosed);
            }
            _streams.Clear();
            foreach (var waiter in _connectionWindowWaiters)
            {
                waiter.WindowWaiter?.TrySetResult();
            }
            _connectionWindowWaiters.Clear();
        }
    }

    /// <summary>Under the lock: the stream ends without (more of) a response.</summary>
    private static void FailLocked(Http2ClientStream stream, Http2StreamOutcome outcome)
    {
        stream.Failed = true;
        stream.Registered = false;
        stream.RemoteEnded = true;
        if (!stream.WriterCompleted)
        {
            stream.WriterCompleted = true;
            stream.BodyWriter.Complete(new IOException(outcome == Http2StreamOutcome.Reset
                ? $"The upstream reset the HTTP/2 stream ({stream.ResetCode})."
                : "The upstream HTTP/2 connection closed with the stream open."));
        }
        stream.WindowWaiter?.TrySetResult();
        stream.Signal(outcome);
    }

    private ValueTask<Http2ErrorCode> ProcessFrameAsync(Http2ReadStatus status, in Http2Frame frame, in Http2FrameError frameError)
    {
        // §6.2: a field block is contiguous; anything else in between is a connection error.
        if (_blockStreamId != 0 && (frame.Type != Http2FrameType.CONTINUATION || frame.StreamId != _blockStreamId))
        {
            return new(Http2ErrorCode.PROTOCOL_ERROR);
        }
        if (status == Http2ReadStatus.UnknownFrame)
        {
            return new(Http2ErrorCode.NO_ERROR); // §5.5
        }
        if (status == Http2ReadStatus.Error)
        {
            // A stream error the frame alone shows (§5.4.2): reset that stream; a HEADERS block must still be decoded (§4.3).
            ResetStreamByUs(frame.StreamId, frameError.Code);
            return frame.Type == Http2FrameType.HEADERS ? OnHeaders(frame, discard: true) : new(Http2ErrorCode.NO_ERROR);
        }
        switch (frame.Type)
        {
            case Http2FrameType.DATA:
                return OnData(frame);
            case Http2FrameType.HEADERS:
                return OnHeaders(frame, discard: false);
            case Http2FrameType.CONTINUATION:
                if (_blockStreamId == 0)
                {
                    return new(Http2ErrorCode.PROTOCOL_ERROR); // §6.10
                }
                return DecodeFragment(frame.HeaderBlockFragment, frame.EndHeaders);
            case Http2FrameType.PRIORITY:
                return new(Http2ErrorCode.NO_ERROR);
            case Http2FrameType.RST_STREAM:
                OnRstStream(frame.StreamId, frame.ErrorCode);
                return new(Http2ErrorCode.NO_ERROR);
            case Http2FrameType.SETTINGS:
                return OnSettingsAsync(frame);
            case Http2FrameType.PUSH_PROMISE:
                // §8.4: we sent SETTINGS_ENABLE_PUSH = 0, so a PUSH_PROMISE is a PROTOCOL_ERROR.
                return new(Http2ErrorCode.PROTOCOL_ERROR);
            case Http2FrameType.PING:
                if (frame.IsAck)
                {
                    Volatile.Write(ref _pingSentAt, 0);
                    return new(Http2ErrorCode.NO_ERROR);
                }
                return PingAckAsync(frame.PingOpaqueData);
            case Http2FrameType.GOAWAY:
                OnGoAway(frame.LastStreamId);
                return new(Http2ErrorCode.NO_ERROR);
            default:
                return new(OnWindowUpdate(frame.StreamId, frame.WindowSizeIncrement));
        }
    }

    private async ValueTask<Http2ErrorCode> PingAckAsync(ulong data)
    {
        await WriteControlAsync(Http2FrameType.PING, data, ack: true).ConfigureAwait(false);
        return Http2ErrorCode.NO_ERROR;
    }

    private async ValueTask<Http2ErrorCode> OnSettingsAsync(Http2Frame frame)
    {
        if (frame.IsAck)
        {
            return Http2ErrorCode.NO_ERROR;
        }
        int tableSize = -1;
        lock (_lock)
        {
            foreach (var setting in frame.Settings)
            {
                switch (setting.Parameter)
                {
                    case Http2SettingsParameter.SETTINGS_MAX_CONCURRENT_STREAMS:
                        _peerMaxStreams = (int)Math.Min(setting.Value, UnlimitedStreamsCap);
                        break;
                    case Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE:
                    {
                        // §6.9.2: the change applies to every open stream's window, which may go negative.
                        int delta = (int)setting.Value - _peerInitialWindow;
                        _peerInitialWindow = (int)setting.Value;
                        foreach (var stream in _streams.Values)
                        {
                            stream.SendWindow += delta;
                            if (stream.SendWindow > Http2Frame.MaxWindowSize)
                            {
                                return Http2ErrorCode.FLOW_CONTROL_ERROR;
                            }
                            if (delta > 0)
                            {
                                stream.WindowWaiter?.TrySetResult();
                                stream.WindowWaiter = null;
                            }
                        }
                        break;
                    }
                    case Http2SettingsParameter.SETTINGS_MAX_FRAME_SIZE:
                        _peerMaxFrameSize = setting.Value;
                        break;
                    case Http2SettingsParameter.SETTINGS_HEADER_TABLE_SIZE:
                        tableSize = (int)Math.Min(setting.Value, int.MaxValue);
                        break;
                }
            }
        }
        await WriteControlAsync(Http2FrameType.SETTINGS, 0, ack: true, tableSize).ConfigureAwait(false);
        _settingsReceived.TrySetResult(true);
        Owner?.OnStreamReleased(this); // more streams may fit now
        return Http2ErrorCode.NO_ERROR;
    }

    private Http2ErrorCode OnWindowUpdate(int streamId, int increment)
    {
        lock (_lock)
        {
            if (streamId == 0)
            {
                _connectionSendWindow += increment;
                if (_connectionSendWindow > Http2Frame.MaxWindowSize)
                {
                    return Http2ErrorCode.FLOW_CONTROL_ERROR; // §6.9.1
                }
                foreach (var waiter in _connectionWindowWaiters)
                {
                    waiter.WindowWaiter?.TrySetResult();
                    waiter.WindowWaiter = null;
                }
                _connectionWindowWaiters.Clear();
                return Http2ErrorCode.NO_ERROR;
            }
            if (_streams.TryGetValue(streamId, out var stream))
            {
                stream.SendWindow += increment;
                if (stream.SendWindow > Http2Frame.MaxWindowSize)
                {
                    // §6.9.1: a stream error of type FLOW_CONTROL_ERROR.
                    stream.ResetCode = Http2ErrorCode.FLOW_CONTROL_ERROR;
                    _streams.Remove(streamId);
                    FailLocked(stream, Http2StreamOutcome.Reset);
                    _ = WriteResetAsync(streamId, Http2ErrorCode.FLOW_CONTROL_ERROR);
                    return Http2ErrorCode.NO_ERROR;
                }
                stream.WindowWaiter?.TrySetResult();
                stream.WindowWaiter = null;
            }
        }
        return Http2ErrorCode.NO_ERROR;
    }

    private void OnRstStream(int streamId, Http2ErrorCode code)
    {
        lock (_lock)
        {
            if (_streams.Remove(streamId, out var stream))
            {
                stream.ResetCode = code;
                // §8.7: REFUSED_STREAM means "no application processing"; the request can be sent again.
                FailLocked(stream, code == Http2ErrorCode.REFUSED_STREAM && !stream.HeadReceived ? Http2StreamOutcome.Refused : Http2StreamOutcome.Reset);
            }
        }
    }

    private void OnGoAway(int lastStreamId)
    {
        lock (_lock)
        {
            _goAway = true;
            _goAwayLastStreamId = Math.Min(_goAwayLastStreamId, lastStreamId);
            // §6.8: streams above last-stream-id were not and will not be processed: retryable.
            List<int>? refused = null;
            foreach (var (id, stream) in _streams)
            {
                if (id > _goAwayLastStreamId)
                {
                    (refused ??= []).Add(id);
                    FailLocked(stream, Http2StreamOutcome.Refused);
                }
            }
            if (refused is not null)
            {
                foreach (int id in refused)
                {
                    _streams.Remove(id);
                }
            }
        }
        Owner?.OnUnavailable(this);
        bool drained;
        lock (_lock)
        {
            drained = _reserved == 0;
        }
        if (drained)
        {
            _ = CloseAsync();
        }
    }

    private void ResetStreamByUs(int streamId, Http2ErrorCode code)
    {
        lock (_lock)
        {
            if (_streams.Remove(streamId, out var stream))
            {
                stream.ResetCode = code;
                FailLocked(stream, stream.HeadReceived ? Http2StreamOutcome.Reset : Http2StreamOutcome.ProtocolError);
            }
        }
        _ = WriteResetAsync(streamId, code);
    }

    private ValueTask<Http2ErrorCode> OnData(in Http2Frame frame)
    {
        int streamId = frame.StreamId;
        int length = frame.FlowControlledLength;
        // §6.9.1: the connection window is checked first; frames for closed streams count too.
        if (length > Volatile.Read(ref _connectionReceiveWindow))
        {
            return new(Http2ErrorCode.FLOW_CONTROL_ERROR);
        }
        Interlocked.Add(ref _connectionReceiveWindow, -length);
        int credit = length; // what is given back to the connection at once (not held by a live stream)
        var streamError = Http2ErrorCode.NO_ERROR;
        lock (_lock)
        {
            if ((streamId & 1) == 0 || streamId >= _nextStreamId)
            {
                return new(Http2ErrorCode.PROTOCOL_ERROR); // §5.1 idle stream
            }
            if (_streams.TryGetValue(streamId, out var stream) && !stream.Failed)
            {
                if (!stream.HeadReceived || stream.RemoteEnded)
                {
                    streamError = stream.RemoteEnded ? Http2ErrorCode.STREAM_CLOSED : Http2ErrorCode.PROTOCOL_ERROR;
                }
                else if (length > stream.ReceiveWindow)
                {
                    streamError = Http2ErrorCode.FLOW_CONTROL_ERROR;
                }
                else
                {
                    stream.ReceiveWindow -= length;
                    var data = frame.Data;
                    // Padding is flow controlled but never reaches the relay: give it back at once.
                    credit = length - (int)data.Length;
                    stream.Unacked += credit;
                    foreach (var segment in data)
                    {
                        stream.BodyWriter.Write(segment.Span);
                    }
                    if (frame.EndStream)
                    {
                        stream.RemoteEnded = true;
                        stream.WriterCompleted = true;
                        stream.BodyWriter.Complete();
                    }
                    else
                    {
                        // No pause threshold: completes synchronously, wakes the relay on the thread pool.
                        _ = stream.BodyWriter.FlushAsync();
                    }
                }
            }
        }
        if (streamError != Http2ErrorCode.NO_ERROR)
        {
            ResetStreamByUs(streamId, streamError);
        }
        if (credit > 0)
        {
            return CreditFromLoopAsync(credit);
        }
        return new(Http2ErrorCode.NO_ERROR);
    }

    private async ValueTask<Http2ErrorCode> CreditFromLoopAsync(int credit)
    {
        await CreditConnectionAsync(credit).ConfigureAwait(false);
        return Http2ErrorCode.NO_ERROR;
    }

    private ValueTask<Http2ErrorCode> OnHeaders(in Http2Frame frame, bool discard)
    {
        int streamId = frame.StreamId;
        if ((streamId & 1) == 0 || streamId >= _nextStreamId)
        {
            return new(Http2ErrorCode.PROTOCOL_ERROR); // servers open no streams but by PUSH_PROMISE, which we refuse
        }
        bool trailers = false;
        if (!discard)
        {
            lock (_lock)
            {
                if (_streams.TryGetValue(streamId, out var stream))
                {
                    trailers = stream.HeadReceived;
                }
            }
        }
        _blockStreamId = streamId;
        _blockEndStream = frame.EndStream;
        _blockTrailers = trailers;
        _blockBytes = 0;
        _scratch.Reset();
        _fields = new Http2ResponseFieldHandler(trailers);
        return DecodeFragment(frame.HeaderBlockFragment, frame.EndHeaders);
    }

    private ValueTask<Http2ErrorCode> DecodeFragment(in ReadOnlySequence<byte> fragment, bool endHeaders)
    {
        _blockBytes += (int)fragment.Length;
        if (_blockBytes > 2 * _options.MaxHeaderListSize)
        {
            return new(Http2ErrorCode.ENHANCE_YOUR_CALM);
        }
        try
        {
            _decoder.Decode(fragment, endHeaders, _scratch, ref _fields);
        }
        catch (HpackException)
        {
            return new(Http2ErrorCode.COMPRESSION_ERROR); // §4.3
        }
        if (!endHeaders)
        {
            return new(Http2ErrorCode.NO_ERROR);
        }
        int streamId = _blockStreamId;
        _blockStreamId = 0;
        EndBlock(streamId);
        return new(Http2ErrorCode.NO_ERROR);
    }

    private void EndBlock(int streamId)
    {
        var resetCode = Http2ErrorCode.NO_ERROR;
        lock (_lock)
        {
            if (!_streams.TryGetValue(streamId, out var stream) || stream.Failed)
            {
                return; // released or reset meanwhile: the block only had to go through HPACK
            }
            if (_fields.Error || (_blockTrailers ? !_blockEndStream : _fields.Status == 0))
            {
                // §8.1.1: malformed → stream error PROTOCOL_ERROR; §8.1: trailers must end the stream.
                resetCode = Http2ErrorCode.PROTOCOL_ERROR;
            }
            else if (_blockTrailers)
            {
                CopyHead(_scratch, stream.Trailers!);
                stream.RemoteEnded = true;
                stream.WriterCompleted = true;
                stream.BodyWriter.Complete();
            }
            else if (_fields.Status is >= 100 and < 200)
            {
                if (_fields.Status == 101 || _blockEndStream)
                {
                    resetCode = Http2ErrorCode.PROTOCOL_ERROR; // §8.6: no 101 in HTTP/2; an interim head cannot end a stream
                }
                // Other 1xx: skipped; the final head follows on this stream.
            }
            else
            {
                var head = stream.Head!;
                CopyHead(_scratch, head);
                head.StatusCode = _fields.Status;
                head.Version = HttpVersion.Http2;
                head.KeepAlive = true;
                head.ContentLength = _fields.ContentLength;
                head.Framing = _blockEndStream ? BodyFraming.None : _fields.ContentLength >= 0 ? BodyFraming.ContentLength : BodyFraming.Stream;
                stream.HeadReceived = true;
                if (_blockEndStream)
                {
                    stream.RemoteEnded = true;
                    stream.WriterCompleted = true;
                    stream.BodyWriter.Complete();
                }
                stream.Signal(Http2StreamOutcome.Head);
            }
        }
        if (resetCode != Http2ErrorCode.NO_ERROR)
        {
            ResetStreamByUs(streamId, resetCode);
        }
    }

    private static void CopyHead(HttpHead from, HttpHead to)
    {
        to.Reset();
        var headers = from.Headers;
        for (int i = 0; i < headers.Length; i++)
        {
            var header = headers[i];
            var name = to.Append(from.Get(header.Name));
            var value = to.Append(from.Get(header.Value));
            to.AddHeader(name, value, header.Id);
        }
    }
}

/// <summary>
/// Routes a response block's fields (RFC 9113 §8.3.2): <c>:status</c> first and once, no other
/// pseudo-header, none in trailers; connection-specific fields make the message malformed (§8.2.2);
/// content-length is parsed for the framing. Regular fields go to the head in order.
/// </summary>
internal struct Http2ResponseFieldHandler : IHpackFieldHandler
{
    private readonly bool _trailers;
    private bool _regularSeen;

    public Http2ResponseFieldHandler(bool trailers)
    {
        _trailers = trailers;
        _regularSeen = false;
        Status = 0;
        Error = false;
        ContentLength = -1;
    }

    public int Status;
    public bool Error;
    public long ContentLength;

    public void OnField(HttpHead head, in HpackField field)
    {
        if (field.Pseudo != HpackPseudoHeader.None)
        {
            var value = head.Get(field.Value);
            if (_trailers || _regularSeen || field.Pseudo != HpackPseudoHeader.Status || Status != 0 ||
                value.Length != 3 || !System.Buffers.Text.Utf8Parser.TryParse(value, out int status, out int used) || used != 3 || status < 100)
            {
                Error = true;
                return;
            }
            Status = status;
            return;
        }
        _regularSeen = true;
        var name = head.Get(field.Name);
        var id = KnownHeaders.Classify(name);
        if (name.ContainsAnyInRange((byte)'A', (byte)'Z'))
        {
            Error = true; // §8.2.1: uppercase field names are malformed
            return;
        }
        switch (id)
        {
            case KnownHeader.Connection:
            case KnownHeader.KeepAlive:
            case KnownHeader.ProxyConnection:
            case KnownHeader.TransferEncoding:
            case KnownHeader.Upgrade:
                Error = true; // §8.2.2
                return;
            case KnownHeader.ContentLength when !_trailers:
            {
                var value = head.Get(field.Value);
                if (!System.Buffers.Text.Utf8Parser.TryParse(value, out long length, out int used) || used != value.Length || length < 0 ||
                    (ContentLength >= 0 && ContentLength != length))
                {
                    Error = true;
                    return;
                }
                ContentLength = length;
                break;
            }
        }
        head.AddHeader(field.Name, field.Value, id);
    }
}
