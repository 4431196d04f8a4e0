using System.IO.Pipelines;
using System.Net;

namespace ProxyCore.Transport;

/// <summary>
/// One byte-stream connection (accepted or dialled), seen through a duplex pipe.
/// <see cref="Transport"/>.Input yields what the peer sent; writing to .Output sends to the peer.
/// Completing .Output ends the send side after the pending data drained (a FIN);
/// <see cref="Abort"/> tears the connection down at once (an RST where the transport has one).
/// </summary>
public abstract class ConnectionContext : IAsyncDisposable
{
    /// <summary>Process-unique id, for logs.</summary>
    public abstract string ConnectionId { get; }

    /// <summary>The application's side of the connection.</summary>
    public abstract IDuplexPipe Transport { get; set; }

    public abstract EndPoint? LocalEndPoint { get; }

    public abstract EndPoint? RemoteEndPoint { get; }

    /// <summary>Fires once the connection is closed by either side or aborted.</summary>
    public abstract CancellationToken ConnectionClosed { get; }

    /// <summary>Protocol chosen by ALPN (for example "h2"), or null when there was no TLS or no ALPN.</summary>
    public virtual string? NegotiatedProtocol { get; set; }

    /// <summary>True when a TLS layer sits between the socket and <see cref="Transport"/>.</summary>
    public virtual bool IsTls { get; set; }

    /// <summary>
    /// The I/O thread's owner that drives this connection (the epoll engine's reactor), or null. The upstream
    /// pool uses it to hand a request an upstream connection served by the same thread.
    /// </summary>
    internal virtual object? Affinity => null;

    /// <summary>
    /// Sets this connection's one close callback: <paramref name="callback"/>(<paramref name="state"/>) runs once, on the
    /// thread pool, after <see cref="ConnectionClosed"/> was cancelled, as a registration on it would (the last of them,
    /// as the first one registered), but without the registration table and node the token's source keeps for good (~140 B
    /// per connection). One caller per connection (the HTTP/1.1 connection). False when the transport has no such slot
    /// or the connection already closed: the caller registers on <see cref="ConnectionClosed"/> instead.
    /// </summary>
    internal virtual bool TrySetCloseCallback(Action<object?> callback, object? state) => false;

    /// <summary>Clears the callback set by <see cref="TrySetCloseCallback"/>; one already running still runs (as after Unregister).</summary>
    internal virtual void ClearCloseCallback()
    {
    }

    /// <summary>Closes the connection at once, discarding unsent data.</summary>
    public abstract void Abort(Exception? reason = null);

    /// <summary>Flushes, closes and releases the connection.</summary>
    public abstract ValueTask DisposeAsync();
}

/// <summary>Handles one connection until it ends.</summary>
public delegate Task ConnectionDelegate(ConnectionContext connection);

/// <summary>Accepts connections on one bound endpoint.</summary>
public interface IConnectionListener : IAsyncDisposable
{
    EndPoint EndPoint { get; }

    /// <summary>Next connection, or null once the listener was unbound.</summary>
    ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default);

    /// <summary>Stops accepting; connections already accepted live on.</summary>
    ValueTask UnbindAsync(CancellationToken cancellationToken = default);
}

/// <summary>Dials outgoing connections (upstreams).</summary>
public interface IConnectionFactory
{
    ValueTask<ConnectionContext> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken = default);
}

/// <summary>The slot behind <see cref="ConnectionContext.TrySetCloseCallback"/> for transports that fire their close themselves.</summary>
internal struct CloseCallbackSlot
{
    private Action<object?>? _callback;
    private object? _state;

    /// <param name="closedFired">The transport's flag, set (with a full fence) before it queues <see cref="Run"/>.</param>
    public bool TrySet(Action<object?> callback, object? state, ref int closedFired)
    {
        if (Volatile.Read(ref _callback) is not null)
        {
            return false;
        }
        _state = state;
        Interlocked.Exchange(ref _callback, callback);
        // Closed meanwhile: take it back unless the close already took it (then it runs, or ran).
        return Volatile.Read(ref closedFired) == 0 || Interlocked.CompareExchange(ref _callback, null, callback) != callback;
    }

    public void Clear() => Volatile.Write(ref _callback, null);

    /// <summary>After the close token was cancelled.</summary>
    public void Run() => Interlocked.Exchange(ref _callback, null)?.Invoke(_state);

    /// <summary>A transport's close notification, on the thread pool: the close token first, then the slot's callback (even if a token callback threw).</summary>
    public static void CancelThenRun(CancellationTokenSource closed, ref CloseCallbackSlot slot)
    {
        try
        {
            closed.Cancel();
        }
        finally
        {
            slot.Run();
        }
    }
}
