using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;

namespace ProxyCore.Transport;

/// <summary>
/// A connected socket seen through two pipes. Two loops own the socket's directions:
/// the receive loop fills <see cref="Transport"/>.Input, the send loop drains .Output.
/// The socket is closed once both loops ended (or at once by <see cref="Abort"/>).
/// </summary>
internal sealed class SocketConnection : ConnectionContext
{
    private static long _lastId;

    private readonly Socket _socket;
    private readonly ConnectionSide _side;
    private readonly bool _waitForData;
    private readonly long _id;
    private readonly Pipe _input;   // receive loop → app
    private readonly Pipe _output;  // app → send loop
    private readonly IDuplexPipe _originalTransport;
    private readonly CancellationTokenSource _closedCts = new();
    private readonly EndPoint? _localEndPoint;
    private readonly EndPoint? _remoteEndPoint;

    /// <summary>Size of the receive used when a zero-byte receive woke without data (see the receive loop).</summary>
    private const int ProbeBytes = 64;

    private byte[]? _probe;
    private string? _connectionId;
    private Task _receiveTask = Task.CompletedTask;
    private Task _sendTask = Task.CompletedTask;
    private Exception? _abortReason;
    private int _aborted;
    private int _socketClosed;
    private int _closedFired;
    private CloseCallbackSlot _closeCallback;
    private int _loopsRunning = 2;
    private int _disposed;

    public SocketConnection(Socket socket, SocketPipeSettings settings, ConnectionSide side)
    {
        _socket = socket;
        _side = side;
        _waitForData = settings.Options.WaitForDataBeforeAllocatingBuffer;
        _id = Interlocked.Increment(ref _lastId);
        _input = new Pipe(settings.Input);
        _output = new Pipe(settings.Output);
        _originalTransport = new DuplexPipe(_input.Reader, _output.Writer);
        Transport = _originalTransport;
        _localEndPoint = socket.LocalEndPoint;
        _remoteEndPoint = socket.RemoteEndPoint;
        TransportMetrics.Opened(side);
    }

    public override string ConnectionId => _connectionId ??= (_side == ConnectionSide.Client ? "c" : "u") + _id.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public override IDuplexPipe Transport { get; set; }

    public override EndPoint? LocalEndPoint => _localEndPoint;

    public override EndPoint? RemoteEndPoint => _remoteEndPoint;

    public override CancellationToken ConnectionClosed => _closedCts.Token;

    internal override bool TrySetCloseCallback(Action<object?> callback, object? state) => _closeCallback.TrySet(callback, state, ref _closedFired);

    internal override void ClearCloseCallback() => _closeCallback.Clear();

    /// <summary>Starts both loops. They run synchronously up to their first pending socket operation.</summary>
    public void Start()
    {
        _receiveTask = ReceiveLoopAsync();
        _sendTask = SendLoopAsync();
    }

    public override void Abort(Exception? reason = null)
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return;
        }
        _abortReason = reason;

        // Linger 0 makes close() send an RST and drop unsent data, which is what Abort promises.
        try
        {
            _socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already closed: nothing left to reset.
        }

        // Stops the send loop from sending what is still queued.
        _output.Reader.CancelPendingRead();
        CloseSocket();
        FireConnectionClosed();
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _originalTransport.Input.Complete();
        _originalTransport.Output.Complete();

        // The send loop drains what the app wrote, then sends the FIN; only then may the socket close.
        // A peer that never reads keeps this waiting: whoever disposes bounds that with Abort (the
        // connection server does, after its drain timeout).
        await _sendTask.ConfigureAwait(false);
        CloseSocket();
        await _receiveTask.ConfigureAwait(false);
        FireConnectionClosed();
    }

    private async Task ReceiveLoopAsync()
    {
        Exception? error = null;
        var writer = _input.Writer;
        bool streaming = false;
        try
        {
            while (true)
            {
                if (_waitForData)
                {
                    // Zero-byte receive: completes when data (or FIN) is there, without holding a buffer.
                    await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None).ConfigureAwait(false);
                }

                int received;
                if (_waitForData && _socket.Available == 0)
                {
                    // FIN, or a spurious wake-up: on Linux the runtime completes a zero-byte receive on an
                    // epoll edge that may belong to bytes an earlier receive already took. Had we rented a
                    // pipe block now, an idle connection would hold it until its next request (seen as a
                    // 4 KiB block kept by 1 idle connection in 2 in TlsConnectionTests). Wait on a few
                    // bytes of our own instead; the copy happens only on this rare path.
                    _probe ??= new byte[ProbeBytes];
                    received = await _socket.ReceiveAsync(_probe, SocketFlags.None).ConfigureAwait(false);
                    if (received == 0)
                    {
                        break; // FIN: the peer will send nothing more.
                    }
                    writer.Write(_probe.AsSpan(0, received));
                }
                else
                {
                    var memory = writer.GetMemory(streaming ? SocketTransportOptions.StreamingSegmentSize : SocketTransportOptions.MinimumSegmentSize);
                    received = await _socket.ReceiveAsync(memory, SocketFlags.None).ConfigureAwait(false);
                    if (received == 0)
                    {
                        break; // FIN: the peer will send nothing more.
                    }
                    writer.Advance(received);
                    streaming = received == memory.Length; // A full buffer: more is likely queued, read bigger.
                }

                // Waits while the app holds MaxReadBufferSize unconsumed bytes: that is the backpressure
                // that stops us reading and lets TCP slow the peer down.
                var flush = await writer.FlushAsync().ConfigureAwait(false);
                if (flush.IsCompleted || flush.IsCanceled)
                {
                    break; // The app completed Input: it wants nothing more.
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
                    // The app completed Output with an error: the response is broken. Reset the
                    // connection so the peer cannot take a truncated stream for a complete one.
                    Abort(appError);
                    break;
                }

                if (result.IsCanceled)
                {
                    break; // Abort.
                }

                var buffer = result.Buffer;
                if (!buffer.IsEmpty)
                {
                    if (buffer.IsSingleSegment)
                    {
                        await _socket.SendAsync(buffer.First, SocketFlags.None).ConfigureAwait(false);
                    }
                    else
                    {
                        await SendMultiSegmentAsync(buffer).ConfigureAwait(false);
                    }
                }
                reader.AdvanceTo(buffer.End);

                if (result.IsCompleted)
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
                // The app completed Output: tell the peer with a FIN; the receive side stays open.
                try
                {
                    _socket.Shutdown(SocketShutdown.Send);
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                    // The peer is gone already; the receive loop reports that.
                }
            }
            LoopEnded();
        }
    }

    // One send per segment. Pipe segments are at least 4 KiB, and a proxy flushes whole chunks, so a
    // multi-segment flush is a large one where a syscall per 4 KiB+ costs little next to the copy into the
    // kernel; a gathering send (sendmsg with an iovec) would need a SocketAsyncEventArgs of our own, since
    // the BufferList overloads of Socket return a Task (an allocation per send).
    private async ValueTask SendMultiSegmentAsync(ReadOnlySequence<byte> buffer)
    {
        foreach (var segment in buffer)
        {
            if (!segment.IsEmpty)
            {
                await _socket.SendAsync(segment, SocketFlags.None).ConfigureAwait(false);
            }
        }
    }

    private Exception? MapError(Exception ex)
    {
        if (Volatile.Read(ref _aborted) != 0)
        {
            return new ConnectionAbortedException(_abortReason?.Message ?? "The connection was aborted.", _abortReason);
        }
        if (Volatile.Read(ref _disposed) != 0 && ex is ObjectDisposedException or SocketException { SocketErrorCode: SocketError.OperationAborted })
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

    private void LoopEnded()
    {
        if (Interlocked.Decrement(ref _loopsRunning) == 0)
        {
            CloseSocket();
        }
    }

    private void CloseSocket()
    {
        if (Interlocked.Exchange(ref _socketClosed, 1) != 0)
        {
            return;
        }
        _socket.Dispose();
        TransportMetrics.Closed(_side);
    }

    private void FireConnectionClosed()
    {
        if (Interlocked.Exchange(ref _closedFired, 1) != 0)
        {
            return;
        }

        // Cancel runs the callbacks synchronously; keep them off the I/O loop that noticed the close.
        ThreadPool.UnsafeQueueUserWorkItem(static self => CloseCallbackSlot.CancelThenRun(self._closedCts, ref self._closeCallback), this, preferLocal: false);
    }
}
