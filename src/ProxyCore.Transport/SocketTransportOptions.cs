using System.Buffers;

namespace ProxyCore.Transport;

/// <summary>The engine behind <see cref="ConnectionTransport"/>.</summary>
public enum TransportEngine
{
    /// <summary>System.Net.Sockets (<see cref="SocketConnectionListener"/>, <see cref="SocketConnectionFactory"/>).</summary>
    Sockets,

    /// <summary>Our own edge-triggered epoll reactors (Linux only).</summary>
    Epoll,
}

/// <summary>
/// Knobs of the socket transport, shared by the listener (client side) and the factory (upstream side).
/// Every option says its default, what it trades, and what goes wrong if it is left unbounded.
/// </summary>
public sealed class SocketTransportOptions
{
    /// <summary>
    /// Length of the kernel's queue of connections that completed the TCP handshake but were not accepted yet.
    /// Default 512. Larger absorbs connection bursts while the accept loop is busy; the kernel caps it at
    /// <c>net.core.somaxconn</c>. Too small and bursts see SYNs dropped (clients retry after 1 s).
    /// </summary>
    public int Backlog { get; init; } = 512;

    /// <summary>
    /// Sets TCP_NODELAY (disables Nagle). Default true: a proxy flushes whole heads and body chunks, so
    /// holding back a small segment until the previous one is acknowledged only adds latency (up to 40 ms
    /// with delayed ACKs). False trades that latency for fewer small packets when the app flushes tiny writes.
    /// </summary>
    public bool NoDelay { get; init; } = true;

    /// <summary>
    /// Bytes received but not yet consumed by the app after which the transport stops reading the socket
    /// (it resumes at half). Default 1 MiB per connection. This is the backpressure that makes a slow
    /// consumer slow down the sender through TCP flow control. Larger gives more throughput on fat, long
    /// links; 0 means unbounded: one client that sends faster than we forward can then grow memory without limit.
    /// Sockets engine: the input pipe's pause threshold. Epoll engine: how far the reactor reads ahead of an app that
    /// is not reading (the app's own reads recv() directly and are not capped by it).
    /// </summary>
    public long MaxReadBufferSize { get; init; } = 1024 * 1024;

    /// <summary>
    /// Bytes the app wrote but the socket has not sent yet after which the app's <c>FlushAsync</c> waits
    /// (it resumes at half). Default 64 KiB per connection: enough to keep a send in flight while the app
    /// produces the next chunk. 0 means unbounded: a peer that stops reading (slowloris on the response
    /// side) then holds everything the app writes in memory. Sockets engine only: the epoll engine's flush is the send
    /// itself and waits until the kernel took every byte, so nothing is buffered past the kernel's send buffer (but for
    /// the at most 64 KiB a batched flush leaves for the end of the reactor's batch: <see cref="BatchSends"/>).
    /// </summary>
    public long MaxWriteBufferSize { get; init; } = 64 * 1024;

    /// <summary>
    /// Default true: the receive loop first waits with a zero-byte receive and only rents a buffer once
    /// data is there, so an idle keep-alive connection (most of them, at scale) holds no buffer (sockets engine;
    /// the epoll engine always rents only after an edge said data is there). Costs one
    /// extra receive call per read burst; false saves that call where connections are never idle.
    /// </summary>
    public bool WaitForDataBeforeAllocatingBuffer { get; init; } = true;

    /// <summary>
    /// Where the app's continuations run when data arrives or a full write buffer drained. Default false:
    /// they are queued to the thread pool, so a slow or blocking app callback never delays other sockets'
    /// I/O completions. True runs them inline on the thread that completed the I/O: one thread-pool hop
    /// less per read (less CPU and latency), but an app that blocks or does heavy work there stalls that
    /// thread's other completions. Use true only when the app code is non-blocking (ProxyCore's own is).
    /// </summary>
    public bool InlineCompletions { get; init; }

    /// <summary>
    /// Which engine drives the sockets. Default <see cref="TransportEngine.Sockets"/> (System.Net.Sockets).
    /// <see cref="TransportEngine.Epoll"/> (Linux only) runs edge-triggered epoll reactors of our own and the
    /// app inline on them: fewer syscalls and no thread hops per request, but app code that blocks stalls
    /// every connection of that reactor. See <see cref="ConnectionTransport"/>.
    /// </summary>
    public TransportEngine Engine { get; init; }

    /// <summary>Epoll engine: reactor threads (each with its own epoll instance). 0 (default) = one per processor.</summary>
    public int Reactors { get; init; }

    /// <summary>
    /// Epoll engine: a flush made on the connection's own reactor thread completes at once and its bytes go out at the
    /// end of the reactor's event batch, with every other flush of that batch, before the reactor waits again. Default
    /// true. Sends made back to back wake a peer that sleeps in epoll_wait once per batch instead of once per send,
    /// and a head and body flushed apart in one batch leave in one writev(). Costs at most one batch of latency (the
    /// events of one epoll_wait, microseconds). Bounded: past 64 KiB batched on one connection, or once a batched send
    /// found the socket full, a flush sends itself and waits as it would without batching.
    /// </summary>
    public bool BatchSends { get; init; } = true;

    /// <summary>
    /// Where pipe buffers come from. Null (default) uses <see cref="BlockMemoryPool.Shared"/>: 4 KiB
    /// pinned blocks recycled through a lock-free queue, so steady traffic over many connections
    /// allocates nothing (the runtime's shared array pool keeps too few spares per thread for that).
    /// Set a pool to share or bound memory between many transports.
    /// </summary>
    public MemoryPool<byte>? MemoryPool { get; init; }

    /// <summary>The defaults above.</summary>
    public static SocketTransportOptions Default { get; } = new();

    /// <summary>Smallest buffer the receive loop asks the pipe for; also the pipes' minimum segment size.</summary>
    internal const int MinimumSegmentSize = 4096;

    /// <summary>
    /// The buffer the receive loop asks for once a read filled the whole last one (a body streaming in):
    /// one recv() per 64 KiB instead of per 4 KiB cuts the syscalls of a large upload or download 16-fold.
    /// Served by the shared array pool (the 4 KiB block pool has no larger blocks), given back as the
    /// application consumes it; a short read (the socket drained) goes back to 4 KiB blocks.
    /// </summary>
    internal const int StreamingSegmentSize = 64 * 1024;
}
