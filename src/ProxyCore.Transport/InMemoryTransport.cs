using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Threading.Channels;

namespace ProxyCore.Transport;

/// <summary>
/// A transport without sockets, for tests: <see cref="ConnectAsync"/> makes a connected pair and the
/// other end comes out of <see cref="AcceptAsync"/>. Each direction has the same shape as a socket
/// (the sender's output pipe, a pump standing in for the network, the receiver's input pipe), so FIN,
/// reset, abort and backpressure behave as they do over TCP. The pump copies: fine for tests, and the
/// reason this is not a production transport.
/// </summary>
public sealed class InMemoryTransport : IConnectionListener, IConnectionFactory
{
    private readonly Channel<ConnectionContext> _pending = Channel.CreateUnbounded<ConnectionContext>(
        new UnboundedChannelOptions { SingleReader = false, SingleWriter = false });

    public InMemoryTransport(EndPoint? endPoint = null)
    {
        EndPoint = endPoint ?? new IPEndPoint(IPAddress.Loopback, 0);
    }

    public EndPoint EndPoint { get; }

    /// <summary>Unconsumed bytes after which a receiving side stops taking more (as <see cref="SocketTransportOptions.MaxReadBufferSize"/>).</summary>
    public long MaxReadBufferSize { get; init; } = SocketTransportOptions.Default.MaxReadBufferSize;

    /// <summary>Unsent bytes after which the writer's FlushAsync waits (as <see cref="SocketTransportOptions.MaxWriteBufferSize"/>).</summary>
    public long MaxWriteBufferSize { get; init; } = SocketTransportOptions.Default.MaxWriteBufferSize;

    /// <summary>Where pipe buffers come from; null uses the shared pool (as <see cref="SocketTransportOptions.MemoryPool"/>).</summary>
    public MemoryPool<byte>? MemoryPool { get; init; }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            if (await _pending.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false) && _pending.Reader.TryRead(out var connection))
            {
                return connection;
            }
        }
        catch (ChannelClosedException)
        {
        }
        return null;
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        _pending.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => UnbindAsync();

    /// <exception cref="ConnectionResetException">The transport was unbound: like a refused connect.</exception>
    public ValueTask<ConnectionContext> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var clientEndPoint = new IPEndPoint(IPAddress.Loopback, 0);
        var client = new InMemoryConnection("m-client", clientEndPoint, EndPoint, this);
        var server = new InMemoryConnection("m-server", EndPoint, clientEndPoint, this);
        InMemoryConnection.Link(client, server);
        if (!_pending.Writer.TryWrite(server))
        {
            throw new ConnectionResetException($"Nothing listens on {EndPoint}: the in-memory transport was unbound.");
        }
        client.Start();
        server.Start();
        return ValueTask.FromResult<ConnectionContext>(client);
    }
}

/// <summary>One end of an in-memory connection pair.</summary>
internal sealed class InMemoryConnection : ConnectionContext
{
    private static long _lastId;

    private readonly Pipe _input;   // peer's pump → app
    private readonly Pipe _output;  // app → my pump → peer's input
    private readonly IDuplexPipe _originalTransport;
    private readonly CancellationTokenSource _closedCts = new();
    private readonly string _connectionId;
    private InMemoryConnection _peer = null!;
    private Task _pumpTask = Task.CompletedTask;
    private Exception? _abortReason;
    private int _aborted;
    private int _closedFired;
    private int _disposed;

    public InMemoryConnection(string prefix, EndPoint local, EndPoint remote, InMemoryTransport options)
    {
        _connectionId = prefix + Interlocked.Increment(ref _lastId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        LocalEndPoint = local;
        RemoteEndPoint = remote;
        long maxRead = options.MaxReadBufferSize, maxWrite = options.MaxWriteBufferSize;
        _input = new Pipe(new PipeOptions(options.MemoryPool, pauseWriterThreshold: maxRead, resumeWriterThreshold: maxRead / 2, useSynchronizationContext: false));
        _output = new Pipe(new PipeOptions(options.MemoryPool, pauseWriterThreshold: maxWrite, resumeWriterThreshold: maxWrite / 2, useSynchronizationContext: false));
        _originalTransport = new DuplexPipe(_input.Reader, _output.Writer);
        Transport = _originalTransport;
    }

    public override string ConnectionId => _connectionId;

    public override IDuplexPipe Transport { get; set; }

    public override EndPoint? LocalEndPoint { get; }

    public override EndPoint? RemoteEndPoint { get; }

    public override CancellationToken ConnectionClosed => _closedCts.Token;

    private bool EitherAborted => Volatile.Read(ref _aborted) != 0 || Volatile.Read(ref _peer._aborted) != 0;

    public static void Link(InMemoryConnection a, InMemoryConnection b)
    {
        a._peer = b;
        b._peer = a;
    }

    public void Start() => _pumpTask = PumpAsync();

    public override void Abort(Exception? reason = null)
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return;
        }
        _abortReason = reason;

        // Wake both pumps wherever they wait; they see the abort flag and end with the right errors.
        _output.Reader.CancelPendingRead();
        _peer._input.Writer.CancelPendingFlush();
        _peer._output.Reader.CancelPendingRead();
        _input.Writer.CancelPendingFlush();
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
        await _pumpTask.ConfigureAwait(false);
        FireConnectionClosed();
    }

    // Moves what the app wrote to the peer's input, like the network between two sockets.
    private async Task PumpAsync()
    {
        var reader = _output.Reader;
        var writer = _peer._input.Writer;
        Exception? readerError = null;
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
                    Abort(appError); // As the socket transport: an app error on Output resets the connection.
                    break;
                }
                if (EitherAborted)
                {
                    break;
                }

                var buffer = result.Buffer;
                foreach (var segment in buffer)
                {
                    writer.Write(segment.Span);
                }
                reader.AdvanceTo(buffer.End);

                var flush = await writer.FlushAsync().ConfigureAwait(false);
                if (EitherAborted)
                {
                    break;
                }
                if (flush.IsCompleted)
                {
                    // The peer stops reading: what we send is discarded, as a socket's kernel would.
                    readerError = new ConnectionResetException("The peer no longer reads.");
                    break;
                }
                if (result.IsCompleted)
                {
                    break; // FIN.
                }
            }
        }
        finally
        {
            Exception? peerInputError = null;
            if (Volatile.Read(ref _aborted) != 0)
            {
                peerInputError = new ConnectionResetException("The connection was reset by the peer.");
                readerError = AbortedError();
            }
            else if (Volatile.Read(ref _peer._aborted) != 0)
            {
                peerInputError = _peer.AbortedError();
                readerError = new ConnectionResetException("The connection was reset by the peer.");
            }
            reader.Complete(readerError);
            writer.Complete(peerInputError);
            _peer.FireConnectionClosed();
        }
    }

    private ConnectionAbortedException AbortedError() =>
        new(_abortReason?.Message ?? "The connection was aborted.", _abortReason);

    private void FireConnectionClosed()
    {
        if (Interlocked.Exchange(ref _closedFired, 1) == 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static cts => cts.Cancel(), _closedCts, preferLocal: false);
        }
    }
}
