using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ProxyCore.Transport.Epoll;

/// <summary>
/// A connected non-blocking socket driven by one <see cref="EpollReactor"/> (edge-triggered). Same contract as
/// <see cref="SocketConnection"/>; what differs is who runs what:
/// - Receive: the reactor's edge resumes the receive loop on the reactor thread; it recv()s into the input
///   pipe and flushes with an inline reader scheduler, so the application parses and forwards right there.
///   A read shorter than the buffer means the socket is drained: no further recv (that would only say
///   EAGAIN) until the next edge. A buffer is rented only once an edge said data is there.
/// - Send: the send loop's read of the output pipe completes inline in the app's FlushAsync, so a flush is
///   a send()/writev() on the flushing thread; only EAGAIN makes it wait for an EPOLLOUT edge.
/// </summary>
internal sealed class EpollConnection : ConnectionContext, IEpollHandler, IDuplexPipe
{
    private const uint Events = Native.EPOLLIN | Native.EPOLLOUT | Native.EPOLLRDHUP | Native.EPOLLET;
    private const int MaxIoVecs = 16;
    private static long _lastId;

    private readonly FdHandle _fd;
    private readonly EpollReactor _reactor;
    private readonly ConnectionSide _side;
    private readonly long _id;
    private readonly Pipe _input;
    private readonly Pipe _output;
    private readonly CancellationTokenSource _closedCts = new();
    private readonly IoSignal _readable = new();
    private readonly IoSignal _writable = new();
    private IPEndPoint? _localEndPoint; // on first use: nothing on the request path reads it
    private IPEndPoint? _remoteEndPoint;

    private nint _registration;
    private string? _connectionId;
    private Task _receiveTask = Task.CompletedTask;
    private Task _sendTask = Task.CompletedTask;
    private Exception? _abortReason;
    private volatile bool _peerHalfClosed;
    private volatile bool _connectCanceled;
    private int _aborted;
    private int _socketClosed;
    private int _closedFired;
    private CloseCallbackSlot _closeCallback;
    private int _loopsRunning = 2;
    private int _disposed;

    public EpollConnection(FdHandle fd, EpollReactor reactor, SocketPipeSettings settings, ConnectionSide side, IPEndPoint? remote)
    {
        _fd = fd;
        _reactor = reactor;
        _side = side;
        _id = Interlocked.Increment(ref _lastId);
        _input = new Pipe(settings.Input);
        _output = new Pipe(settings.Output);
        Transport = this; // the connection is its own original duplex pipe: one object less per connection
        _remoteEndPoint = remote ?? SockAddr.Query(fd.Fd, peer: true);
        TransportMetrics.Opened(side);
    }

    public override string ConnectionId => _connectionId ??= (_side == ConnectionSide.Client ? "c" : "u") + _id.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public override IDuplexPipe Transport { get; set; }

    /// <summary>getsockname on first use (null once the socket is closed, if it was never asked before).</summary>
    public override EndPoint? LocalEndPoint => _localEndPoint ??= QueryLocalEndPoint();

    PipeReader IDuplexPipe.Input => _input.Reader;

    PipeWriter IDuplexPipe.Output => _output.Writer;

    public override EndPoint? RemoteEndPoint => _remoteEndPoint;

    public override CancellationToken ConnectionClosed => _closedCts.Token;

    internal override bool TrySetCloseCallback(Action<object?> callback, object? state) => _closeCallback.TrySet(callback, state, ref _closedFired);

    internal override void ClearCloseCallback() => _closeCallback.Clear();

    internal override object? Affinity => _reactor;

    /// <summary>Adds the fd to the reactor; edges that come before the loops start are remembered.</summary>
    public void Register() => _registration = _reactor.Register(_fd, this, Events);

    /// <summary>Starts both loops; they run synchronously up to their first wait.</summary>
    public void Start()
    {
        _receiveTask = ReceiveLoopAsync();
        _sendTask = SendLoopAsync();
    }

    public void OnEvents(uint events)
    {
        if ((events & (Native.EPOLLRDHUP | Native.EPOLLHUP | Native.EPOLLERR)) != 0)
        {
            _peerHalfClosed = true;
        }
        if ((events & (Native.EPOLLIN | Native.EPOLLRDHUP | Native.EPOLLHUP | Native.EPOLLERR)) != 0)
        {
            _readable.Set();
        }
        if ((events & (Native.EPOLLOUT | Native.EPOLLHUP | Native.EPOLLERR)) != 0)
        {
            _writable.Set();
        }
    }

    /// <summary>
    /// Waits for a non-blocking connect() that said EINPROGRESS: the fd turns writable once it is done, and
    /// SO_ERROR tells how. Throws <see cref="SocketException"/> or <see cref="OperationCanceledException"/>.
    /// </summary>
    public async ValueTask CompleteConnectAsync(CancellationToken cancellationToken)
    {
        using (cancellationToken.UnsafeRegister(static state =>
        {
            var self = (EpollConnection)state!;
            self._connectCanceled = true;
            self._writable.Set();
        }, this))
        {
            await _writable.WaitAsync().ConfigureAwait(false);
        }
        if (_connectCanceled)
        {
            throw new OperationCanceledException(cancellationToken);
        }
        ThrowIfConnectFailed();
    }

    private unsafe void ThrowIfConnectFailed()
    {
        int error = 0, length = sizeof(int);
        if (Native.getsockopt(_fd.Fd, Native.SOL_SOCKET, Native.SO_ERROR, &error, &length) != 0)
        {
            throw Native.LastError();
        }
        if (error != 0)
        {
            throw Native.Error(error);
        }
        _remoteEndPoint ??= SockAddr.Query(_fd.Fd, peer: true);
    }

    public override unsafe void Abort(Exception? reason = null)
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return;
        }
        _abortReason = reason;

        // Linger 0 makes close() send an RST and drop unsent data, which is what Abort promises.
        bool added = false;
        try
        {
            _fd.DangerousAddRef(ref added);
            var linger = new Linger { OnOff = 1, Seconds = 0 };
            Native.setsockopt(_fd.Fd, Native.SOL_SOCKET, Native.SO_LINGER, &linger, sizeof(Linger));
        }
        catch (ObjectDisposedException)
        {
            // Already closed: nothing left to reset.
        }
        finally
        {
            if (added)
            {
                _fd.DangerousRelease();
            }
        }

        _output.Reader.CancelPendingRead();
        CloseSocket();

        // The loops parked on an edge resume inline where they are woken; not here, inside the caller's Abort
        // (which may be a timer or the app holding its own state), but on the thread pool, as a socket's would.
        ThreadPool.UnsafeQueueUserWorkItem(static self => self.WakeLoops(), this, preferLocal: false);
        FireConnectionClosed();
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _input.Reader.Complete();
        _output.Writer.Complete();

        // The send loop drains what the app wrote, then sends the FIN; only then may the socket close.
        await _sendTask.ConfigureAwait(false);
        CloseSocket();
        WakeLoops();
        await _receiveTask.ConfigureAwait(false);
        FireConnectionClosed();
    }

    private async Task ReceiveLoopAsync()
    {
        Exception? error = null;
        var writer = _input.Writer;
        try
        {
            // Nothing is read before the first edge: a fresh connection holds no buffer until data is there.
            bool drained = true;
            bool streaming = false;
            while (true)
            {
                if (drained)
                {
                    await _readable.WaitAsync().ConfigureAwait(false);
                    if (_readable.IsClosed)
                    {
                        throw new ObjectDisposedException(nameof(EpollConnection));
                    }
                }

                var memory = writer.GetMemory(streaming ? SocketTransportOptions.StreamingSegmentSize : SocketTransportOptions.MinimumSegmentSize);
                nint received = Receive(memory.Span, out int errno);
                if (received < 0)
                {
                    writer.Advance(0);
                    if (errno == Native.EAGAIN)
                    {
                        drained = true; // An edge we had already read the data of.
                        continue;
                    }
                    if (errno == Native.EINTR)
                    {
                        continue;
                    }
                    throw Native.Error(errno);
                }
                if (received == 0)
                {
                    break; // FIN.
                }
                writer.Advance((int)received);

                // Short read: the kernel had no more. Read on only when the peer's FIN (or an error) is pending,
                // so the next recv reports it; the edge that announced both may have been the last one.
                drained = received < memory.Length && !_peerHalfClosed;
                streaming = received == memory.Length; // A full buffer: more is likely queued, read bigger.

                var flush = await writer.FlushAsync().ConfigureAwait(false);
                if (flush.IsCompleted || flush.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception ex)
        {
            error = MapError(ex);
        }
        finally
        {
            writer.Complete(error);
            FireConnectionClosed();
            LoopEnded();
        }
    }

    private async Task SendLoopAsync()
    {
        Exception? error = null;
        var reader = _output.Reader;
        try
        {
            while (true)
            {
                ReadResult result;
                try
                {
                    result = await reader.ReadAsync().ConfigureAwait(false);
                }
                catch (Exception appError)
                {
                    // The app completed Output with an error: reset, so the peer cannot take a truncated stream for a whole one.
                    Abort(appError);
                    break;
                }
                if (result.IsCanceled)
                {
                    break; // Abort.
                }

                // Only what the next line needs lives across its await: this loop's box is what an idle connection
                // keeps, so the socket-full wait is a method of its own (pooled box, so still no allocation).
                var end = result.Buffer.End;
                bool completed = result.IsCompleted;
                var rest = result.Buffer;
                if (!TrySendAll(ref rest))
                {
                    await SendWhenWritableAsync(rest).ConfigureAwait(false);
                }
                reader.AdvanceTo(end);

                if (completed)
                {
                    break;
                }
            }
        }
        catch (Exception ex)
        {
            error = MapError(ex);
            FireConnectionClosed();
        }
        finally
        {
            reader.Complete(error);
            if (error is null && Volatile.Read(ref _aborted) == 0)
            {
                // The app completed Output: a FIN; the receive side stays open.
                bool added = false;
                try
                {
                    _fd.DangerousAddRef(ref added);
                    Native.shutdown(_fd.Fd, Native.SHUT_WR);
                }
                catch (ObjectDisposedException)
                {
                }
                finally
                {
                    if (added)
                    {
                        _fd.DangerousRelease();
                    }
                }
            }
            LoopEnded();
        }
    }

    /// <summary>Sends until done (true) or the socket is full (false: <paramref name="buffer"/> is what is left).</summary>
    private bool TrySendAll(ref ReadOnlySequence<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            nint sent = Send(buffer, out int errno);
            if (sent >= 0)
            {
                buffer = buffer.Slice(sent);
                continue;
            }
            if (errno == Native.EAGAIN)
            {
                return false;
            }
            if (errno != Native.EINTR)
            {
                throw Native.Error(errno);
            }
        }
        return true;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendWhenWritableAsync(ReadOnlySequence<byte> buffer)
    {
        do
        {
            await _writable.WaitAsync().ConfigureAwait(false);
            if (_writable.IsClosed)
            {
                throw new ObjectDisposedException(nameof(EpollConnection));
            }
        }
        while (!TrySendAll(ref buffer));
    }

    private unsafe nint Receive(Span<byte> span, out int errno)
    {
        bool added = false;
        try
        {
            _fd.DangerousAddRef(ref added); // ObjectDisposedException once closed: the loops map it.
            fixed (byte* p = span)
            {
                nint n = Native.recv(_fd.Fd, p, span.Length, 0);
                errno = n < 0 ? Marshal.GetLastPInvokeError() : 0;
                return n;
            }
        }
        finally
        {
            if (added)
            {
                _fd.DangerousRelease();
            }
        }
    }

    // One send() for a single segment, one writev() for up to 16: a response head and body chunk written
    // as separate segments still leave in one syscall.
    private unsafe nint Send(in ReadOnlySequence<byte> buffer, out int errno)
    {
        bool added = false;
        try
        {
            _fd.DangerousAddRef(ref added);
            nint n;
            if (buffer.IsSingleSegment)
            {
                var span = buffer.FirstSpan; // one read of it: each one type-checks the sequence's segments
                fixed (byte* p = span)
                {
                    n = Native.send(_fd.Fd, p, span.Length, Native.MSG_NOSIGNAL);
                }
            }
            else
            {
                n = SendGather(buffer);
            }
            errno = n < 0 ? Marshal.GetLastPInvokeError() : 0;
            return n;
        }
        finally
        {
            if (added)
            {
                _fd.DangerousRelease();
            }
        }
    }

    private unsafe nint SendGather(in ReadOnlySequence<byte> buffer)
    {
        var handles = new PinnedHandles();
        Native.IoVec* iov = stackalloc Native.IoVec[MaxIoVecs];
        int count = 0;
        try
        {
            foreach (var segment in buffer)
            {
                if (segment.IsEmpty)
                {
                    continue;
                }
                handles[count] = segment.Pin();
                iov[count].Base = (byte*)handles[count].Pointer;
                iov[count].Length = segment.Length;
                if (++count == MaxIoVecs)
                {
                    break;
                }
            }
            // writev has no MSG_NOSIGNAL: the runtime ignores SIGPIPE process-wide, so EPIPE comes back as an error.
            return Native.writev(_fd.Fd, iov, count);
        }
        finally
        {
            for (int i = 0; i < count; i++)
            {
                handles[i].Dispose();
            }
        }
    }

    private IPEndPoint? QueryLocalEndPoint()
    {
        bool added = false;
        try
        {
            _fd.DangerousAddRef(ref added);
            return SockAddr.Query(_fd.Fd, peer: false);
        }
        catch (ObjectDisposedException)
        {
            return null;
        }
        finally
        {
            if (added)
            {
                _fd.DangerousRelease();
            }
        }
    }

    private Exception? MapError(Exception ex)
    {
        if (Volatile.Read(ref _aborted) != 0)
        {
            return new ConnectionAbortedException(_abortReason?.Message ?? "The connection was aborted.", _abortReason);
        }
        if (Volatile.Read(ref _disposed) != 0 && ex is ObjectDisposedException)
        {
            return null; // We closed it ourselves in DisposeAsync: not an error.
        }
        return ex switch
        {
            SocketException { SocketErrorCode: SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown or SocketError.OperationAborted or SocketError.Interrupted } se
                => new ConnectionResetException(se.Message, se),
            SocketException se => new IOException(se.Message, se),
            ObjectDisposedException ode => new ConnectionAbortedException(ode.Message, ode),
            _ => ex,
        };
    }

    private void WakeLoops()
    {
        _readable.Close();
        _writable.Close();
    }

    private void LoopEnded()
    {
        if (Interlocked.Decrement(ref _loopsRunning) == 0)
        {
            CloseSocket();
        }
    }

    /// <summary>Closes the fd; used alone (no loops) when a dial fails.</summary>
    internal void CloseSocket()
    {
        if (Interlocked.Exchange(ref _socketClosed, 1) != 0)
        {
            return;
        }
        if (_registration != 0)
        {
            _reactor.Unregister(_fd, _registration);
        }
        _fd.Dispose();
        TransportMetrics.Closed(_side);
    }

    private void FireConnectionClosed()
    {
        if (Interlocked.Exchange(ref _closedFired, 1) != 0)
        {
            return;
        }

        // Cancel runs the callbacks synchronously; keep them off the reactor thread that noticed the close.
        ThreadPool.UnsafeQueueUserWorkItem(static self => CloseCallbackSlot.CancelThenRun(self._closedCts, ref self._closeCallback), this, preferLocal: false);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Linger
    {
        public int OnOff;
        public int Seconds;
    }

    [InlineArray(MaxIoVecs)]
    private struct PinnedHandles
    {
        private MemoryHandle _first;
    }
}
