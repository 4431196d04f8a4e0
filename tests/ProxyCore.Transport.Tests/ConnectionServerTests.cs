using System.Collections.Concurrent;
using System.Text;

namespace ProxyCore.Transport.Tests;

public class ConnectionServerTests
{
    public static TheoryData<TransportKind> Kinds => [TransportKind.Socket, TransportKind.InMemory, TransportKind.Epoll];

    private static async Task EchoAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;
        while (true)
        {
            var result = await input.ReadAsync();
            foreach (var segment in result.Buffer)
            {
                await output.WriteAsync(segment);
            }
            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return;
            }
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        using var timeout = new CancellationTokenSource(Timeouts.Default);
        while (!condition())
        {
            await Task.Delay(1, timeout.Token);
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Start_EchoHandler_ServesConnectionsAndCountsThem(TransportKind kind)
    {
        var pair = TransportPair.Create(kind);
        var server = new ConnectionServer(EchoAsync);
        server.Start(pair.Listener);

        var first = await pair.Factory.ConnectAsync(pair.Listener.EndPoint).AsTask().WaitAsync(Timeouts.Default);
        var second = await pair.Factory.ConnectAsync(pair.Listener.EndPoint).AsTask().WaitAsync(Timeouts.Default);
        var data = Encoding.ASCII.GetBytes("ping");
        foreach (var client in new[] { first, second })
        {
            await client.Transport.Output.WriteAndFlushAsync(data);
            Assert.Equal(data, await client.Transport.Input.ReadExactlyAsync(data.Length));
        }
        Assert.Equal(2, server.ActiveConnections);

        // FIN from the client ends the echo loop: the server disposes the connection and the client sees EOF.
        first.Transport.Output.Complete();
        Assert.Empty(await first.Transport.Input.ReadToEndAsync());
        await WaitUntilAsync(() => server.ActiveConnections == 1);

        second.Transport.Output.Complete();
        Assert.Empty(await second.Transport.Input.ReadToEndAsync());
        await server.StopAsync(Timeouts.Default).WaitAsync(Timeouts.Default);
        Assert.Equal(0, server.ActiveConnections);
        await first.DisposeAsync();
        await second.DisposeAsync();
    }

    [Fact]
    public async Task Start_SeveralListeners_ServesAll()
    {
        var socket = TransportPair.Create(TransportKind.Socket);
        var memory = TransportPair.Create(TransportKind.InMemory);
        await using var server = new ConnectionServer(EchoAsync);
        server.Start(socket.Listener);
        server.Start(memory.Listener);

        foreach (var pair in new[] { socket, memory })
        {
            await using var client = await pair.Factory.ConnectAsync(pair.Listener.EndPoint).AsTask().WaitAsync(Timeouts.Default);
            await client.Transport.Output.WriteAndFlushAsync([42]);
            Assert.Equal([42], await client.Transport.Input.ReadExactlyAsync(1));
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task StopAsync_HandlerFinishesInFlightWork_DrainsWithoutAbort(TransportKind kind)
    {
        var time = new FakeTimeProvider();
        var pair = TransportPair.Create(kind);
        ConnectionServer? server = null;
        var handlerStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server = new ConnectionServer(async connection =>
        {
            handlerStarted.SetResult();
            await server!.Stopping.WaitAsync();
            // The "in-flight request" finishes after the stop began, then the handler closes.
            await connection.Transport.Output.WriteAsync("bye"u8.ToArray());
        }, timeProvider: time);
        server.Start(pair.Listener);
        await using var client = await pair.Factory.ConnectAsync(pair.Listener.EndPoint).AsTask().WaitAsync(Timeouts.Default);
        await handlerStarted.Task.WaitAsync(Timeouts.Default);

        await server.StopAsync(TimeSpan.FromSeconds(30)).WaitAsync(Timeouts.Default);

        Assert.Equal("bye"u8.ToArray(), await client.Transport.Input.ReadToEndAsync()); // a clean EOF, not a reset
        Assert.Equal(0, server.ActiveConnections);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task StopAsync_HandlerHangs_AbortedAfterDrainTimeout(TransportKind kind)
    {
        var time = new FakeTimeProvider();
        var pair = TransportPair.Create(kind);
        var handlerError = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new ConnectionServer(async connection =>
        {
            try
            {
                // Ignores Stopping and waits for a request that never comes.
                await connection.Transport.Input.ReadAsync();
                handlerError.SetResult(new Exception("read returned"));
            }
            catch (Exception ex)
            {
                handlerError.SetResult(ex);
                throw;
            }
        }, timeProvider: time);
        server.Start(pair.Listener);
        await using var client = await pair.Factory.ConnectAsync(pair.Listener.EndPoint).AsTask().WaitAsync(Timeouts.Default);
        await WaitUntilAsync(() => server.ActiveConnections == 1);

        var stop = server.StopAsync(TimeSpan.FromSeconds(5));
        await WaitUntilAsync(() => time.TimerCount > 0); // the drain timer is armed
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.False(stop.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));

        await stop.WaitAsync(Timeouts.Default);
        Assert.IsType<ConnectionAbortedException>(await handlerError.Task.WaitAsync(Timeouts.Default));
        await Assert.ThrowsAsync<ConnectionResetException>(() => client.Transport.Input.ReadToEndAsync());
        Assert.Equal(0, server.ActiveConnections);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Handler_Throws_ReportedAndServerKeepsServing(TransportKind kind)
    {
        var pair = TransportPair.Create(kind);
        var errors = new ConcurrentQueue<(string Where, Exception Error)>();
        int calls = 0;
        await using var server = new ConnectionServer(connection =>
        {
            if (Interlocked.Increment(ref calls) == 1)
            {
                throw new InvalidOperationException("handler bug");
            }
            return EchoAsync(connection);
        }, (where, error) => errors.Enqueue((where, error)));
        server.Start(pair.Listener);

        await using var failing = await pair.Factory.ConnectAsync(pair.Listener.EndPoint).AsTask().WaitAsync(Timeouts.Default);
        Assert.Empty(await failing.Transport.Input.ReadToEndAsync()); // the server closed it
        await using var working = await pair.Factory.ConnectAsync(pair.Listener.EndPoint).AsTask().WaitAsync(Timeouts.Default);
        await working.Transport.Output.WriteAndFlushAsync([1]);
        Assert.Equal([1], await working.Transport.Input.ReadExactlyAsync(1));

        var (where, error) = Assert.Single(errors);
        Assert.StartsWith("connection ", where);
        Assert.Equal("handler bug", error.Message);
    }

    [Fact]
    public async Task Handler_OnErrorThrows_ServerSurvives()
    {
        var pair = TransportPair.Create(TransportKind.InMemory);
        await using var server = new ConnectionServer(
            _ => throw new InvalidOperationException("handler bug"),
            (_, _) => throw new InvalidOperationException("error sink bug"));
        server.Start(pair.Listener);

        for (int i = 0; i < 2; i++)
        {
            await using var client = await pair.Factory.ConnectAsync(pair.Listener.EndPoint).AsTask().WaitAsync(Timeouts.Default);
            Assert.Empty(await client.Transport.Input.ReadToEndAsync());
        }
    }

    [Fact]
    public async Task StopAsync_Started_FiresStoppingAndRefusesNewListeners()
    {
        var server = new ConnectionServer(EchoAsync);
        var pair = TransportPair.Create(TransportKind.InMemory);
        server.Start(pair.Listener);
        Assert.False(server.Stopping.IsCancellationRequested);

        var stop = server.StopAsync(TimeSpan.Zero);

        Assert.Same(stop, server.StopAsync(TimeSpan.Zero));
        await stop.WaitAsync(Timeouts.Default);
        Assert.True(server.Stopping.IsCancellationRequested);
        Assert.Throws<InvalidOperationException>(() => server.Start(TransportPair.Create(TransportKind.InMemory).Listener));
        await Assert.ThrowsAsync<ConnectionResetException>(() => pair.Factory.ConnectAsync(pair.Listener.EndPoint).AsTask());
    }
}
