using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using ProxyCore.Http.Http2.Hpack;

namespace ProxyCore.Http.Http2;

// The one writer every stream shares, and send-side flow control (§6.9).
public sealed partial class Http2Connection
{
    /// <summary>
    /// The most one stream writes per turn of the write lock, so a large body does not hold up the
    /// other streams' frames for long (and a flush happens at least this often).
    /// </summary>
    private const int MaxDataPerWrite = 64 * 1024;

    private enum ControlFrame : byte
    {
        SettingsAck,
        PingAck,
        GoAway,
        RstStream,
        /// <summary>Give back a stream's and the connection's consumed window (WINDOW_UPDATE).</summary>
        StreamCredit,
        /// <summary>Give back the connection's consumed window only.</summary>
        ConnectionCredit,
    }

    private readonly record struct ControlItem(ControlFrame Kind, int StreamId, uint Value, Http2Stream? Stream);

    // Frames of all streams go through _output under this lock: a whole HEADERS+CONTINUATION run is
    // written in one hold (§4.3: "Field blocks MUST be transmitted as a contiguous sequence of frames,
    // with no interleaved frames of any other type or from any other stream"), and the HPACK encoder's
    // table changes in the order the blocks reach the wire. An async lock, since flushing waits on the socket;
    // the common case (free lock, flush done at once) takes it and writes synchronously, allocating nothing.
    private readonly Http2WriteLock _writeLock = new();
    private readonly HpackEncoder _encoder;
    private readonly ArrayBufferWriter<byte> _headerBlock = new(1024);
    private bool _outputClosed;
    private uint _peerMaxFrameSize = Http2Frame.DefaultMaxFrameSize;

    // Send-side flow control, under _windowLock. §6.9.2: both windows start at 65,535.
    private readonly object _windowLock = new();
    private long _connectionSendWindow = 65_535;
    private int _peerInitialWindowSize = 65_535;
    private readonly List<Http2Stream> _connectionWindowWaiters = [];

    // Frames the streams' synchronous calls (AdvanceRequestBody, Abort) owe the client, sent by a work item.
    private readonly ConcurrentQueue<ControlItem> _controlQueue = new();
    private readonly ControlFrameSender _controlSender;
    private int _controlScheduled;

    /// <summary>The writer's lock, for tests that hold it while streams queue behind it.</summary>
    internal Http2WriteLock WriteLock => _writeLock;

    private async Task WriteServerPrefaceAsync()
    {
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            // §3.4: "The server connection preface consists of a potentially empty SETTINGS frame
            // (Section 6.5) that MUST be the first frame the server sends in the HTTP/2 connection."
            WriteSettings();
            int extra = _options.ConnectionWindowSize - 65_535;
            if (extra > 0)
            {
                // §6.9.2: the connection window only changes through WINDOW_UPDATE, never SETTINGS.
                Http2FrameWriter.WriteWindowUpdate(_output, 0, extra);
            }
            await FlushOutputAsync().ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private void WriteSettings()
    {
        Span<Http2Setting> settings =
        [
            new(Http2SettingsParameter.SETTINGS_MAX_CONCURRENT_STREAMS, (uint)_options.MaxConcurrentStreams),
            new(Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE, (uint)_options.InitialStreamWindowSize),
            new(Http2SettingsParameter.SETTINGS_MAX_FRAME_SIZE, _options.MaxFrameSize),
            new(Http2SettingsParameter.SETTINGS_MAX_HEADER_LIST_SIZE, (uint)_options.MaxHeaderListSize),
            new(Http2SettingsParameter.SETTINGS_HEADER_TABLE_SIZE, (uint)_options.HeaderTableSize),
        ];
        Http2FrameWriter.WriteSettings(_output, settings);
    }

    /// <summary>One connection-level or RST_STREAM frame, written and flushed under the write lock.</summary>
    private async ValueTask<bool> WriteControlAsync(ControlFrame kind, int streamId, uint value, ulong pingData = 0)
    {
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_outputClosed)
            {
                return false;
            }
            WriteControlFrame(kind, streamId, value, pingData);
            await FlushOutputAsync().ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
        return true;
    }

    private void WriteControlFrame(ControlFrame kind, int streamId, uint value, ulong pingData)
    {
        switch (kind)
        {
            case ControlFrame.SettingsAck:
                if ((int)value >= 0)
                {
                    // The client's HPACK decoder table changed size: our next block says so first (RFC 7541 §4.2).
                    _encoder.SetMaxDynamicTableSize((int)value);
                }
                Http2FrameWriter.WriteSettingsAck(_output);
                break;
            case ControlFrame.PingAck:
                Http2FrameWriter.WritePing(_output, pingData, ack: true);
                break;
            case ControlFrame.GoAway:
                Http2FrameWriter.WriteGoAway(_output, streamId, (Http2ErrorCode)value,
                    _failed && (Http2ErrorCode)value == _connectionError ? _connectionErrorReason : default);
                break;
            case ControlFrame.RstStream:
                Http2FrameWriter.WriteRstStream(_output, streamId, (Http2ErrorCode)value);
                break;
        }
    }

    private void EnqueueControl(ControlItem item)
    {
        _controlQueue.Enqueue(item);
        ScheduleControl();
    }

    private void ScheduleControl()
    {
        if (Interlocked.Exchange(ref _controlScheduled, 1) == 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(_controlSender, preferLocal: false);
        }
    }

    private async Task SendControlFramesAsync()
    {
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            // Cleared before draining: an item queued from now on schedules another run.
            Volatile.Write(ref _controlScheduled, 0);
            if (_outputClosed)
            {
                _controlQueue.Clear();
                return;
            }
            while (_controlQueue.TryDequeue(out var item))
            {
                if (item.Kind == ControlFrame.StreamCredit)
                {
                    var stream = item.Stream!;
                    if (stream.StreamId == item.StreamId && !stream.RequestEnded)
                    {
                        int increment = Interlocked.Exchange(ref stream.UnackedConsumed, 0);
                        if (increment > 0)
                        {
                            Interlocked.Add(ref stream.ReceiveWindow, increment);
                            Http2FrameWriter.WriteWindowUpdate(_output, item.StreamId, increment);
                        }
                    }
                    continue;
                }
                WriteControlFrame(item.Kind, item.StreamId, item.Value, 0);
            }
            if (Volatile.Read(ref _connectionUnacked) >= _options.ConnectionWindowSize / 4)
            {
                int increment = Interlocked.Exchange(ref _connectionUnacked, 0);
                if (increment > 0)
                {
                    Interlocked.Add(ref _connectionReceiveWindow, increment);
                    Http2FrameWriter.WriteWindowUpdate(_output, 0, increment);
                }
            }
            await FlushOutputAsync().ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The client is gone; the read loop finds out on its own.
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private sealed class ControlFrameSender(Http2Connection connection) : IThreadPoolWorkItem
    {
        public void Execute() => _ = connection.SendControlFramesAsync();
    }

    /// <summary>Caller holds the write lock. Completes synchronously unless the transport's buffer is full.</summary>
    private ValueTask FlushOutputAsync()
    {
        var flush = _output.FlushAsync();
        if (flush.IsCompletedSuccessfully)
        {
            CheckFlushResult(flush.Result);
            return default;
        }
        return AwaitFlushAsync(flush);
    }

    private void CheckFlushResult(FlushResult result)
    {
        if (result.IsCompleted || result.IsCanceled)
        {
            _outputClosed = true;
            throw new IOException("The client connection closed while frames were being written.");
        }
    }

    private async ValueTask AwaitFlushAsync(ValueTask<FlushResult> flush)
    {
        FlushResult result;
        {
            // The transport's write buffer is full: the client is not reading. Everything waits here
            // (the read loop too, so the client's further frames stay in its socket: our output never
            // grows past the transport's bound), but not forever.
            try
            {
                result = await flush.AsTask().WaitAsync(_options.StallTimeout, _options.TimeProvider).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                _outputClosed = true;
                _context.Abort(new IOException("The HTTP/2 client read nothing for the stall timeout."));
                throw new IOException("The HTTP/2 client read nothing for the stall timeout.");
            }
        }
        CheckFlushResult(result);
    }

    // ---- the streams' frames ----

    /// <summary>
    /// A response head (<paramref name="status"/> ≥ 0), an interim 1xx head, or trailers (status -1):
    /// HPACK-encoded and sent as HEADERS (+ CONTINUATION) in one hold of the write lock.
    /// </summary>
    internal ValueTask WriteHeadersAsync(Http2Stream stream, HttpHead head, int status, long contentLength, bool endStream, bool flush)
    {
        if (!_writeLock.TryEnter())
        {
            // Contended: the stream's own queued write waits for the writer without allocating.
            return stream.Writer.IsBusy
                ? WriteHeadersLockedAsync(stream, head, status, contentLength, endStream, flush)
                : stream.Writer.WriteHeaders(head, status, contentLength, endStream, flush);
        }
        ValueTask pending;
        try
        {
            pending = WriteHeadersLocked(stream, head, status, contentLength, endStream, flush);
        }
        catch (Exception e)
        {
            _writeLock.Release();
            return ValueTask.FromException(e);
        }
        return _writeLock.ReleaseAfter(pending);
    }

    /// <summary>Holding the write lock: the head as one HEADERS (+ CONTINUATION) run; the flush to wait for when asked (else default).</summary>
    private ValueTask WriteHeadersLocked(Http2Stream stream, HttpHead head, int status, long contentLength, bool endStream, bool flush)
    {
        ThrowIfCannotWrite(stream);
        EncodeHead(head, status, contentLength);
        Http2FrameWriter.WriteHeaders(_output, stream.StreamId, _headerBlock.WrittenSpan, endStream, _peerMaxFrameSize);
        return flush ? FlushOutputAsync() : default;
    }

    /// <summary>Holding the write lock, window already taken: <paramref name="data"/> as DATA; the flush to wait for (asked, or END_STREAM) else default.</summary>
    private ValueTask WriteDataLocked(Http2Stream stream, in ReadOnlySequence<byte> data, bool endStream, bool flush)
    {
        ThrowIfCannotWrite(stream);
        Http2FrameWriter.WriteData(_output, stream.StreamId, data, endStream, _peerMaxFrameSize);
        return flush || endStream ? FlushOutputAsync() : default;
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteHeadersLockedAsync(Http2Stream stream, HttpHead head, int status, long contentLength, bool endStream, bool flush)
    {
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            await WriteHeadersLocked(stream, head, status, contentLength, endStream, flush).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private void EncodeHead(HttpHead head, int status, long contentLength)
    {
        _headerBlock.ResetWrittenCount();
        _encoder.BeginBlock(_headerBlock);
        Span<byte> digits = stackalloc byte[20];
        if (status >= 0)
        {
            // §8.3.2: ":status" carries the status code; there is no reason phrase in HTTP/2.
            status.TryFormat(digits, out int n);
            _encoder.Encode(":status"u8, digits[..n], _headerBlock);
        }
        var headers = head.Headers;
        for (int i = 0; i < headers.Length; i++)
        {
            var header = headers[i];
            switch (header.Id)
            {
                case KnownHeader.Connection:
                case KnownHeader.KeepAlive:
                case KnownHeader.ProxyConnection:
                case KnownHeader.TransferEncoding:
                case KnownHeader.Upgrade:
                case KnownHeader.ContentLength:
                    // §8.2.2: "An endpoint MUST NOT generate an HTTP/2 message containing
                    // connection-specific header fields"; content-length is ours to write from the framing.
                    continue;
            }
            var name = head.Get(header.Name);
            if (name.IsEmpty || name[0] == (byte)':')
            {
                continue;
            }
            _encoder.Encode(name, head.Get(header.Value), _headerBlock);
        }
        if (contentLength >= 0)
        {
            contentLength.TryFormat(digits, out int n);
            _encoder.Encode("content-length"u8, digits[..n], _headerBlock);
        }
    }

    /// <summary>
    /// Response body octets as DATA frames, within the client's stream and connection windows (§6.9):
    /// when either is spent, what was written is flushed and the stream waits for WINDOW_UPDATE.
    /// </summary>
    internal ValueTask WriteDataAsync(Http2Stream stream, ReadOnlySequence<byte> data, bool endStream, bool flush, CancellationToken cancellationToken)
    {
        // The common case without an async method: window for all of it in one turn, and a free lock
        // (written here) or a taken one (the stream's queued write waits for it without allocating).
        if (data.Length > MaxDataPerWrite || cancellationToken.IsCancellationRequested)
        {
            return WriteDataLockedAsync(stream, data, endStream, flush, cancellationToken);
        }
        bool locked = _writeLock.TryEnter();
        if (!locked && stream.Writer.IsBusy)
        {
            return WriteDataLockedAsync(stream, data, endStream, flush, cancellationToken);
        }
        ValueTask pending;
        try
        {
            if (!data.IsEmpty && !TryTakeWindow(stream, (int)data.Length))
            {
                if (locked)
                {
                    _writeLock.Release();
                }
                return WriteDataLockedAsync(stream, data, endStream, flush, cancellationToken);
            }
            if (!locked)
            {
                // The window is taken first, as the slow path does: only the lock is waited for.
                return stream.Writer.WriteData(data, endStream, flush, cancellationToken);
            }
            pending = WriteDataLocked(stream, data, endStream, flush);
        }
        catch (Exception e)
        {
            if (locked)
            {
                _writeLock.Release();
            }
            return ValueTask.FromException(e);
        }
        return _writeLock.ReleaseAfter(pending);
    }

    /// <summary>All of <paramref name="length"/> from both send windows, or nothing (then the slow path waits for window).</summary>
    private bool TryTakeWindow(Http2Stream stream, int length)
    {
        lock (_windowLock)
        {
            if (stream.IsReset || _outputClosed)
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

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteDataLockedAsync(Http2Stream stream, ReadOnlySequence<byte> data, bool endStream, bool flush, CancellationToken cancellationToken)
    {
        if (data.IsEmpty)
        {
            // END_STREAM alone: an empty DATA frame, which flow control does not count.
            await _writeLock.WaitAsync().ConfigureAwait(false);
            try
            {
                cancellationToken.ThrowIfCancellationRequested();
                ThrowIfCannotWrite(stream);
                Http2FrameWriter.WriteData(_output, stream.StreamId, ReadOnlySpan<byte>.Empty, endStream, _peerMaxFrameSize);
                await FlushOutputAsync().ConfigureAwait(false);
            }
            finally
            {
                _writeLock.Release();
            }
            return;
        }

        while (!data.IsEmpty)
        {
            int want = (int)Math.Min(data.Length, MaxDataPerWrite);
            int granted = 0;
            Task? windowOpened = null;
            lock (_windowLock)
            {
                if (stream.IsReset || _outputClosed)
                {
                    ThrowStreamGone();
                }
                long available = Math.Min(stream.SendWindow, _connectionSendWindow);
                if (available > 0)
                {
                    granted = (int)Math.Min(available, want);
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
                // What is written must reach the client before it can send the WINDOW_UPDATE we wait for.
                await _writeLock.WaitAsync().ConfigureAwait(false);
                try
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    ThrowIfCannotWrite(stream);
                    await FlushOutputAsync().ConfigureAwait(false);
                }
                finally
                {
                    _writeLock.Release();
                }
                try
                {
                    await windowOpened.WaitAsync(_options.StallTimeout, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    OnWindowStall(stream);
                    throw new IOException("The HTTP/2 client kept its flow-control window shut for the stall timeout.");
                }
                continue;
            }

            bool last = granted == data.Length;
            await _writeLock.WaitAsync().ConfigureAwait(false);
            try
            {
                cancellationToken.ThrowIfCancellationRequested();
                ThrowIfCannotWrite(stream);
                Http2FrameWriter.WriteData(_output, stream.StreamId, data.Slice(0, granted), endStream && last, _peerMaxFrameSize);
                if (!last || flush || endStream)
                {
                    await FlushOutputAsync().ConfigureAwait(false);
                }
            }
            finally
            {
                _writeLock.Release();
            }
            data = data.Slice(granted);
        }
    }

    /// <summary>
    /// A response waited the stall timeout for window: its own window shut resets the stream
    /// (RST_STREAM CANCEL); the connection's shut means every stream is stuck, and the connection closes.
    /// </summary>
    private void OnWindowStall(Http2Stream stream)
    {
        bool connectionShut;
        lock (_windowLock)
        {
            connectionShut = _connectionSendWindow <= 0;
        }
        if (connectionShut)
        {
            OnConnectionStalled();
        }
        else
        {
            ResetStream(stream, Http2ErrorCode.CANCEL);
        }
    }

    /// <summary>Under the window lock: a stream waiting for window tries again.</summary>
    private static void WakeLocked(Http2Stream stream)
    {
        var waiter = stream.WindowWaiter;
        stream.WindowWaiter = null;
        waiter?.TrySetResult();
    }

    /// <summary>
    /// A stream's HEADERS or DATA that found the writer taken: the same frames the uncontended paths of
    /// <see cref="WriteHeadersAsync"/> and <see cref="WriteDataAsync"/> write (DATA here always within
    /// window already taken, and at most <see cref="MaxDataPerWrite"/>), written once the lock is its.
    /// </summary>
    internal sealed class StreamWriter(Http2Connection connection, Http2Stream stream) : Http2QueuedWrite(connection._writeLock)
    {
        private bool _isHeaders;
        private HttpHead? _head;
        private int _status;
        private long _contentLength;
        private ReadOnlySequence<byte> _data;
        private bool _endStream;
        private bool _flush;
        private CancellationToken _cancellationToken;

        public ValueTask WriteHeaders(HttpHead head, int status, long contentLength, bool endStream, bool flush)
        {
            _isHeaders = true;
            _head = head;
            _status = status;
            _contentLength = contentLength;
            _endStream = endStream;
            _flush = flush;
            return new ValueTask(this, Start());
        }

        public ValueTask WriteData(ReadOnlySequence<byte> data, bool endStream, bool flush, CancellationToken cancellationToken)
        {
            _isHeaders = false;
            _data = data;
            _endStream = endStream;
            _flush = flush;
            _cancellationToken = cancellationToken;
            return new ValueTask(this, Start());
        }

        protected override ValueTask WriteLocked(out bool result)
        {
            result = true;
            if (_isHeaders)
            {
                return connection.WriteHeadersLocked(stream, _head!, _status, _contentLength, _endStream, _flush);
            }
            _cancellationToken.ThrowIfCancellationRequested();
            // END_STREAM alone (empty DATA) is always flushed, as the slow path does.
            return connection.WriteDataLocked(stream, _data, _endStream, _flush || _data.IsEmpty);
        }

        protected override void Clear()
        {
            _head = null;
            _data = default;
            _cancellationToken = default;
        }
    }

    private void ThrowIfCannotWrite(Http2Stream stream)
    {
        if (_outputClosed || stream.IsReset)
        {
            ThrowStreamGone();
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowStreamGone() =>
        throw new IOException("The HTTP/2 stream was reset or its connection closed.");
}
