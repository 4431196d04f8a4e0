using System.Buffers;
using System.IO.Pipelines;
using System.Net;

namespace ProxyCore.Transport.Tests;

/// <summary>Which transport a [Theory] runs over: real loopback sockets or the in-memory pair.</summary>
public enum TransportKind
{
    Socket,
    InMemory,
    Epoll,
}

internal static class Engines
{
    /// <summary>The socket engine's <paramref name="kind"/> options: Socket and Epoll take the same knobs.</summary>
    public static SocketTransportOptions With(TransportKind kind, SocketTransportOptions? options = null)
    {
        options ??= SocketTransportOptions.Default;
        return new SocketTransportOptions
        {
            Engine = kind == TransportKind.Epoll ? TransportEngine.Epoll : TransportEngine.Sockets,
            Backlog = options.Backlog,
            NoDelay = options.NoDelay,
            MaxReadBufferSize = options.MaxReadBufferSize,
            MaxWriteBufferSize = options.MaxWriteBufferSize,
            WaitForDataBeforeAllocatingBuffer = options.WaitForDataBeforeAllocatingBuffer,
            InlineCompletions = options.InlineCompletions,
            MemoryPool = options.MemoryPool,
            Reactors = options.Reactors,
            BatchSends = options.BatchSends,
        };
    }

    public static IConnectionListener Bind(TransportKind kind, EndPoint? endPoint = null)
        => ConnectionTransport.Bind(endPoint ?? new IPEndPoint(IPAddress.Loopback, 0), With(kind));
}

/// <summary>A listener and a factory that dials it, over one transport kind.</summary>
internal sealed class TransportPair : IAsyncDisposable
{
    private TransportPair(IConnectionListener listener, IConnectionFactory factory)
    {
        Listener = listener;
        Factory = factory;
    }

    public IConnectionListener Listener { get; }

    public IConnectionFactory Factory { get; }

    public static TransportPair Create(TransportKind kind, SocketTransportOptions? options = null)
    {
        if (kind is TransportKind.Socket or TransportKind.Epoll)
        {
            var engine = Engines.With(kind, options);
            return new TransportPair(
                ConnectionTransport.Bind(new IPEndPoint(IPAddress.Loopback, 0), engine),
                ConnectionTransport.CreateFactory(engine));
        }
        var memory = new InMemoryTransport
        {
            MaxReadBufferSize = (options ?? SocketTransportOptions.Default).MaxReadBufferSize,
            MaxWriteBufferSize = (options ?? SocketTransportOptions.Default).MaxWriteBufferSize,
            MemoryPool = options?.MemoryPool,
        };
        return new TransportPair(memory, memory);
    }

    /// <summary>Dials and accepts: (the dialled end, the accepted end).</summary>
    public async Task<(ConnectionContext Client, ConnectionContext Server)> ConnectAsync()
    {
        var acceptTask = Listener.AcceptAsync().AsTask();
        var client = await Factory.ConnectAsync(Listener.EndPoint).AsTask().WaitAsync(Timeouts.Default);
        var server = await acceptTask.WaitAsync(Timeouts.Default);
        Assert.NotNull(server);
        return (client, server!);
    }

    public ValueTask DisposeAsync() => Listener.DisposeAsync();
}

internal static class Timeouts
{
    /// <summary>Bounds every wait: a bug fails the test instead of hanging the run.</summary>
    public static readonly TimeSpan Default = TimeSpan.FromSeconds(30); // generous: a loaded 2-core CI box is 3-5x slower
}

internal static class PipeTestExtensions
{
    public static async Task WriteAndFlushAsync(this PipeWriter writer, byte[] data)
    {
        await writer.WriteAsync(data).AsTask().WaitAsync(Timeouts.Default);
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes; fails if the stream ends before.</summary>
    public static async Task<byte[]> ReadExactlyAsync(this PipeReader reader, int count)
    {
        while (true)
        {
            var result = await reader.ReadAsync().AsTask().WaitAsync(Timeouts.Default);
            var buffer = result.Buffer;
            if (buffer.Length >= count)
            {
                var bytes = buffer.Slice(0, count).ToArray();
                reader.AdvanceTo(buffer.GetPosition(count));
                return bytes;
            }
            Assert.False(result.IsCompleted, $"stream ended after {buffer.Length} of {count} bytes");
            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>Reads until the peer's FIN; returns everything read.</summary>
    public static async Task<byte[]> ReadToEndAsync(this PipeReader reader)
    {
        while (true)
        {
            var result = await reader.ReadAsync().AsTask().WaitAsync(Timeouts.Default);
            if (result.IsCompleted)
            {
                var bytes = result.Buffer.ToArray();
                reader.AdvanceTo(result.Buffer.End);
                return bytes;
            }
            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    /// <summary>Waits for a token to fire, failing after the default timeout.</summary>
    public static Task WaitAsync(this CancellationToken token)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        token.Register(static s => ((TaskCompletionSource)s!).TrySetResult(), tcs);
        return tcs.Task.WaitAsync(Timeouts.Default);
    }
}
