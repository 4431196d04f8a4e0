using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ProxyCore.Transport.Tests;

public class ConnectionTests
{
    public static TheoryData<TransportKind> Kinds => [TransportKind.Socket, TransportKind.InMemory, TransportKind.Epoll];

    public static TheoryData<TransportKind> SocketEngines => [TransportKind.Socket, TransportKind.Epoll];

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Echo_ClientWrites_ServerEchoesBack(TransportKind kind)
    {
        await using var pair = TransportPair.Create(kind);
        var (client, server) = await pair.ConnectAsync();
        await using var _ = client;
        await using var __ = server;

        var request = Encoding.ASCII.GetBytes("hello through the transport");
        await client.Transport.Output.WriteAndFlushAsync(request);
        var atServer = await server.Transport.Input.ReadExactlyAsync(request.Length);
        await server.Transport.Output.WriteAndFlushAsync(atServer);
        var echoed = await client.Transport.Input.ReadExactlyAsync(request.Length);

        Assert.Equal(request, echoed);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Transfer_64MiBToSlowReader_ArrivesIntactWithBoundedMemory(TransportKind kind)
    {
        const int total = 64 * 1024 * 1024;
        const int chunk = 64 * 1024;
        var pool = new CountingMemoryPool();
        var options = new SocketTransportOptions { MaxReadBufferSize = 256 * 1024, MaxWriteBufferSize = 64 * 1024, MemoryPool = pool };
        await using var pair = TransportPair.Create(kind, options);
        var (client, server) = await pair.ConnectAsync();
        await using var _ = client;
        await using var __ = server;

        var send = Task.Run(async () =>
        {
            // Chunk n is filled with byte n: a lost, repeated or reordered chunk shows at the reader.
            var payload = new byte[chunk];
            for (int sent = 0; sent < total; sent += chunk)
            {
                Array.Fill(payload, (byte)(sent / chunk));
                var flush = await client.Transport.Output.WriteAsync(payload);
                Assert.False(flush.IsCompleted);
            }
            client.Transport.Output.Complete();
        });

        // The reader is the slow side: it yields between reads, so the sender has to wait on backpressure.
        long received = 0;
        var input = server.Transport.Input;
        while (true)
        {
            var result = await input.ReadAsync().AsTask().WaitAsync(Timeouts.Default);
            foreach (var segment in result.Buffer)
            {
                var span = segment.Span;
                while (!span.IsEmpty)
                {
                    int inChunk = (int)Math.Min(span.Length, chunk - received % chunk);
                    Assert.Equal(-1, span[..inChunk].IndexOfAnyExcept((byte)(received / chunk)));
                    received += inChunk;
                    span = span[inChunk..];
                }
            }
            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                break;
            }
            await Task.Yield();
        }
        await send.WaitAsync(Timeouts.Default);

        Assert.Equal(total, received);
        // Four pipes' thresholds plus a few segments of slack, against 64 MiB moved.
        Assert.True(pool.Peak < 2 * 1024 * 1024, $"peak rented {pool.Peak} bytes");
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task CompleteOutput_PeerSeesEofAndCanStillReply(TransportKind kind)
    {
        await using var pair = TransportPair.Create(kind);
        var (client, server) = await pair.ConnectAsync();
        await using var _ = client;
        await using var __ = server;

        await client.Transport.Output.WriteAndFlushAsync("request"u8.ToArray());
        client.Transport.Output.Complete();

        Assert.Equal("request"u8.ToArray(), await server.Transport.Input.ReadToEndAsync());
        await server.Transport.Output.WriteAndFlushAsync("reply"u8.ToArray());
        server.Transport.Output.Complete();

        Assert.Equal("reply"u8.ToArray(), await client.Transport.Input.ReadToEndAsync());
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Abort_PeerInputFailsWithReset(TransportKind kind)
    {
        await using var pair = TransportPair.Create(kind);
        var (client, server) = await pair.ConnectAsync();
        await using var _ = client;
        await using var __ = server;

        server.Abort(new InvalidOperationException("test abort"));

        var reset = await Assert.ThrowsAsync<ConnectionResetException>(() => client.Transport.Input.ReadToEndAsync());
        Assert.NotNull(reset.Message);
        var aborted = await Assert.ThrowsAsync<ConnectionAbortedException>(() => server.Transport.Input.ReadToEndAsync());
        Assert.Equal("test abort", aborted.Message);
    }

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task Abort_RawSocketPeer_ReceivesRst(TransportKind kind)
    {
        await using var listener = Engines.Bind(kind);
        using var raw = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accept = listener.AcceptAsync().AsTask();
        await raw.ConnectAsync(listener.EndPoint).WaitAsync(Timeouts.Default);
        await using var server = (await accept.WaitAsync(Timeouts.Default))!;

        await server.Transport.Output.WriteAndFlushAsync("unsent or not, it gets reset"u8.ToArray());
        server.Abort();

        // Data sent before the RST may arrive first; the stream must then end in a reset, never a clean EOF.
        var buffer = new byte[1024];
        var error = await Assert.ThrowsAsync<SocketException>(async () =>
        {
            while (await raw.ReceiveAsync(buffer.AsMemory()).AsTask().WaitAsync(Timeouts.Default) > 0)
            {
            }
        });
        Assert.Equal(SocketError.ConnectionReset, error.SocketErrorCode);
    }

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task DisposeAsync_LargeUnreadResponse_PeerStillReceivesAllThenEof(TransportKind kind)
    {
        // The kernel holds sent-but-undelivered bytes after DisposeAsync returns; a graceful close must
        // let them go out. An abortive close (RST) would drop them and truncate the response.
        await using var listener = Engines.Bind(kind);
        using var raw = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 64 * 1024 };
        var accept = listener.AcceptAsync().AsTask();
        await raw.ConnectAsync(listener.EndPoint).WaitAsync(Timeouts.Default);
        var server = (await accept.WaitAsync(Timeouts.Default))!;
        const int total = 256 * 1024; // more than the peer's receive buffer, less than both kernel buffers together

        var write = Task.Run(async () =>
        {
            await server.Transport.Output.WriteAsync(new byte[total]);
            await server.DisposeAsync();
        });
        await write.WaitAsync(Timeouts.Default); // start reading only once the server side is disposed
        long received = 0;
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await raw.ReceiveAsync(buffer.AsMemory()).AsTask().WaitAsync(Timeouts.Default)) > 0)
        {
            received += n;
        }

        Assert.Equal(total, received);
    }

    public static TheoryData<TransportKind, string> CloseCauses => new()
    {
        { TransportKind.Socket, "peer-fin" }, { TransportKind.Socket, "peer-abort" }, { TransportKind.Socket, "abort" }, { TransportKind.Socket, "peer-dispose" },
        { TransportKind.InMemory, "peer-fin" }, { TransportKind.InMemory, "peer-abort" }, { TransportKind.InMemory, "abort" }, { TransportKind.InMemory, "peer-dispose" },
        { TransportKind.Epoll, "peer-fin" }, { TransportKind.Epoll, "peer-abort" }, { TransportKind.Epoll, "abort" }, { TransportKind.Epoll, "peer-dispose" },
    };

    [Theory]
    [MemberData(nameof(CloseCauses))]
    public async Task ConnectionClosed_PeerClosesOrAbort_Fires(TransportKind kind, string cause)
    {
        await using var pair = TransportPair.Create(kind);
        var (client, server) = await pair.ConnectAsync();
        await using var _ = client;
        await using var __ = server;
        Assert.False(server.ConnectionClosed.IsCancellationRequested);

        switch (cause)
        {
            case "peer-fin": client.Transport.Output.Complete(); break;
            case "peer-abort": client.Abort(); break;
            case "abort": server.Abort(); break;
            case "peer-dispose": await client.DisposeAsync().AsTask().WaitAsync(Timeouts.Default); break;
        }

        await server.ConnectionClosed.WaitAsync();
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task ConnectionClosed_NothingHappens_DoesNotFire(TransportKind kind)
    {
        await using var pair = TransportPair.Create(kind);
        var (client, server) = await pair.ConnectAsync();
        await using var _ = client;
        await using var __ = server;

        // A round trip gives any wrongly queued close callback time to run first.
        await client.Transport.Output.WriteAndFlushAsync([1]);
        await server.Transport.Input.ReadExactlyAsync(1);
        await server.Transport.Output.WriteAndFlushAsync([2]);
        await client.Transport.Input.ReadExactlyAsync(1);

        Assert.False(server.ConnectionClosed.IsCancellationRequested);
        Assert.False(client.ConnectionClosed.IsCancellationRequested);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task CompleteOutputWithError_PeerSeesReset(TransportKind kind)
    {
        await using var pair = TransportPair.Create(kind);
        var (client, server) = await pair.ConnectAsync();
        await using var _ = client;
        await using var __ = server;

        server.Transport.Output.Complete(new InvalidOperationException("response broke mid-body"));

        await Assert.ThrowsAsync<ConnectionResetException>(() => client.Transport.Input.ReadToEndAsync());
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Unbind_PendingAccept_ReturnsNull(TransportKind kind)
    {
        await using var pair = TransportPair.Create(kind);
        var accept = pair.Listener.AcceptAsync().AsTask();

        await pair.Listener.UnbindAsync();

        Assert.Null(await accept.WaitAsync(Timeouts.Default));
        Assert.Null(await pair.Listener.AcceptAsync().AsTask().WaitAsync(Timeouts.Default));
    }

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task Bind_PortZero_EndPointHasRealPort(TransportKind kind)
    {
        await using var listener = Engines.Bind(kind);

        var endPoint = Assert.IsType<IPEndPoint>(listener.EndPoint);
        Assert.NotEqual(0, endPoint.Port);
        Assert.Equal(IPAddress.Loopback, endPoint.Address);
    }

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task Bind_AddressInUse_ThrowsAddressInUseException(TransportKind kind)
    {
        await using var first = Engines.Bind(kind);

        var error = Assert.Throws<AddressInUseException>(() => Engines.Bind(kind, first.EndPoint));
        Assert.Contains(first.EndPoint.ToString()!, error.Message);
    }

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task Connect_Accepted_EndPointsMatch(TransportKind kind)
    {
        await using var pair = TransportPair.Create(kind);
        var (client, server) = await pair.ConnectAsync();
        await using var _ = client;
        await using var __ = server;

        Assert.Equal(pair.Listener.EndPoint, client.RemoteEndPoint);
        Assert.Equal(client.LocalEndPoint, server.RemoteEndPoint);
        Assert.NotEqual(client.ConnectionId, server.ConnectionId);
    }

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task Connect_DnsEndPointLocalhost_Connects(TransportKind kind)
    {
        await using var listener = Engines.Bind(kind);
        var factory = ConnectionTransport.CreateFactory(Engines.With(kind));
        var accept = listener.AcceptAsync().AsTask();

        await using var client = await factory.ConnectAsync(new DnsEndPoint("localhost", ((IPEndPoint)listener.EndPoint).Port)).AsTask().WaitAsync(Timeouts.Default);
        await using var server = (await accept.WaitAsync(Timeouts.Default))!;

        await client.Transport.Output.WriteAndFlushAsync([7]);
        Assert.Equal([7], await server.Transport.Input.ReadExactlyAsync(1));
    }

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task Connect_NeverAnswered_ThrowsOperationCanceledAtToken(TransportKind kind)
    {
        // A listener whose accept queue is full drops further SYNs: a connect to it stays in progress.
        using var full = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        full.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        full.Listen(0);
        var fillers = new List<Socket>();
        try
        {
            for (int i = 0; i < 8; i++)
            {
                var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                fillers.Add(filler);
                using var attempt = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
                try
                {
                    await filler.ConnectAsync(full.LocalEndPoint!, attempt.Token);
                }
                catch (OperationCanceledException)
                {
                    break; // The queue is full now.
                }
            }
            var factory = ConnectionTransport.CreateFactory(Engines.With(kind));
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

            var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(
                () => factory.ConnectAsync(full.LocalEndPoint!, cts.Token).AsTask().WaitAsync(Timeouts.Default));

            Assert.Equal(cts.Token, error.CancellationToken);
        }
        finally
        {
            fillers.ForEach(f => f.Dispose());
        }
    }

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task Idle_AfterRoundTrips_HoldsNoBuffer(TransportKind kind)
    {
        // Rent late: a keep-alive connection between requests (most of them, at scale) must hold no pipe buffer.
        // On the sockets engine this caught a zero-byte receive woken without data (see SocketConnection's loop).
        var pool = new CountingMemoryPool();
        await using var pair = TransportPair.Create(kind, new SocketTransportOptions { MemoryPool = pool });
        var (client, server) = await pair.ConnectAsync();
        await using var _ = client;
        await using var __ = server;

        for (int i = 0; i < 3; i++)
        {
            await client.Transport.Output.WriteAndFlushAsync(new byte[5000]);
            await server.Transport.Input.ReadExactlyAsync(5000);
            await server.Transport.Output.WriteAndFlushAsync(new byte[100]);
            await client.Transport.Input.ReadExactlyAsync(100);
        }

        // The loops give their last buffers back as they park; bounded wait for that.
        for (int i = 0; i < 2000 && pool.Outstanding != 0; i++)
        {
            await Task.Delay(10);
        }
        Assert.Equal(0, pool.Outstanding);
        Assert.True(pool.Peak > 0);
    }
}
