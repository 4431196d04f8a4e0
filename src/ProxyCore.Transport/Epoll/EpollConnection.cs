using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ProxyCore.Transport.Epoll;

/// <summary>
/// A connected non-blocking socket driven by one <see cref="EpollReactor"/> (edge-triggered). Same contract as
/// <see cref="SocketConnection"/>, but no pipes and no loops: the connection's input and output are a reader and a
/// writer that make the syscalls themselves, on the thread that reads or flushes (<see cref="Receiver"/>,
/// <see cref="Sender"/>). The reactor's edges only wake a read or flush that found the socket drained or full,
/// inline on the reactor thread, so the application parses and forwards right there.
/// </summary>
internal sealed partial class EpollConnection : ConnectionContext, IEpollHandler, IDuplexPipe
{
    private const uint Events = Native.EPOLLIN | Native.EPOLLOUT | Native.EPOLLRDHUP | Native.EPOLLET;
    private static long _lastId;

    private readonly FdHandle _fd;
    private readonly EpollReactor _reactor;
    private readonly ConnectionSide _side;
    private readonly long _id;
    private readonly Receiver _receiver;
    private readonly Sender _sender;
    private readonly CancellationTokenSource _closedCts = new();
    private readonly IoSignal _readable = new();
    private readonly IoSignal _writable = new();
    private readonly bool _batchSends;
    private IPEndPoint? _localEndPoint; // on first use: nothing on the request path reads it
    private IPEndPoint? _remoteEndPoint;

    private nint _registration;
    private string? _connectionId;
    private Exception? _abortReason;
    private volatile bool _peerHalfClosed;
    private volatile bool _connectCanceled;
    private int _aborted;
    private int _socketClosed;
    private int _closedFired;
    private CloseCallbackSlot _closeCallback;
    private int _loopsRunning = 2; // the reader and the writer, until the app completes them
    private int _disposed;

    public EpollConnection(FdHandle fd, EpollReactor reactor, SocketPipeSettings settings, ConnectionSide side, IPEndPoint? remote)
    {
        _fd = fd;
        _reactor = reactor;
        _side = side;
        _id = Interlocked.Increment(ref _lastId);
        _receiver = new Receiver(this, settings.Pool, settings.Options.MaxReadBufferSize > 0 ? settings.Options.MaxReadBufferSize : long.MaxValue); // 0: unbounded
        _sender = new Sender(this, settings.Pool);
        _batchSends = settings.Options.BatchSends;
        Transport = this; // the connection is its own original duplex pipe: one object less per connection
        _remoteEndPoint = remote ?? SockAddr.Query(fd.Fd, peer: true);
        TransportMetrics.Opened(side);
    }

    public override string ConnectionId => _connectionId ??= (_side == ConnectionSide.Client ? "c" : "u") + _id.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public override IDuplexPipe Transport { get; set; }

    /// <summary>getsockname on first use (null once the socket is closed, if it was never asked before).</summary>
    public override EndPoint? LocalEndPoint => _localEndPoint ??= QueryLocalEndPoint();

    PipeReader IDuplexPipe.Input => _receiver;

    PipeWriter IDuplexPipe.Output => _sender;

    public override EndPoint? RemoteEndPoint => _remoteEndPoint;

    public override CancellationToken ConnectionClosed => _closedCts.Token;

    internal override bool TrySetCloseCallback(Action<object?> callback, object? state) => _closeCallback.TrySet(callback, state, ref _closedFired);

    internal override void ClearCloseCallback() => _closeCallback.Clear();

    internal override object? Affinity => _reactor;

    /// <summary>Adds the fd to the reactor; edges that come before the first read or flush are remembered.</summary>
    public void Register() => _registration = _reactor.Register(_fd, this, Events);

    /// <summary>The socket is connected (accepted, or the dial's connect completed): the reactor may read ahead.</summary>
    public void Start() => _receiver.Start();

    public void OnEvents(uint events)
    {
        if ((events & (Native.EPOLLRDHUP | Native.EPOLLHUP | Native.EPOLLERR)) != 0)
        {
            _peerHalfClosed = true;
        }
        if ((events & (Native.EPOLLIN | Native.EPOLLRDHUP | Native.EPOLLHUP | Native.EPOLLERR)) != 0)
        {
            _readable.Set(); // a parked read resumes here, inline
            _receiver.ReadAhead(); // else the edge is still pending: read it into the buffer (a FIN there fires ConnectionClosed)
        }
        if ((events & (Native.EPOLLOUT | Native.EPOLLHUP | Native.EPOLLERR)) != 0)
        {
            _writable.Set();
            if (_sender.BatchBlocked)
            {
                _reactor.DeferSend(this); // a batched send found the socket full: the rest goes at this batch's end
            }
        }
    }

    /// <summary>Batched bytes found the socket full and wait for the writable edge (for tests).</summary>
    internal bool BatchBlocked => _sender.BatchBlocked;

    /// <summary>The end of the reactor's batch: the bytes flushed on this thread during it go out now.</summary>
    internal void SendBatched() => _sender.SendBatched();

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

        // Bytes the app flushed on this thread before aborting still go first, as they would have without batching.
        // (From another thread the app may be writing right now: there they are dropped, as Abort's unsent data is.)
        if (EpollReactor.Current == _reactor)
        {
            _sender.SendBatched();
        }

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

        CloseSocket();

        // A read or flush parked on an edge resumes inline where it is woken; not here, inside the caller's Abort
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

        _receiver.Complete();
        _sender.Complete();

        // The writer sends what the app left, then the FIN; only then may the socket close.
        if (_sender.Draining is { } draining)
        {
            await draining.ConfigureAwait(false);
        }
        CloseSocket();
        WakeLoops();
        FireConnectionClosed();
    }

    private unsafe nint Receive(Span<byte> span, out int errno)
    {
        bool added = false;
        try
        {
            _fd.DangerousAddRef(ref added); // ObjectDisposedException once closed: the reader maps it.
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

    /// <summary>The app completed its output: a FIN; the receive side stays open.</summary>
    private void ShutdownSend()
    {
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

    /// <summary>The reader or the writer completed; once both have, the socket closes.</summary>
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
}
