using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace ProxyCore.Transport.Tests;

public class UpstreamConnectionPoolTests
{
    private static readonly UpstreamPoolOptions Options = new();

    /// <summary>Dials in memory and keeps the accepted ends, so tests can act as the upstream.</summary>
    private sealed class InMemoryUpstream : IConnectionFactory
    {
        private readonly InMemoryTransport _transport = new();

        public int Dials;

        public ConcurrentQueue<ConnectionContext> ServerEnds { get; } = new();

        public async ValueTask<ConnectionContext> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref Dials);
            var client = await _transport.ConnectAsync(endPoint, cancellationToken);
            ServerEnds.Enqueue((await _transport.AcceptAsync(cancellationToken))!);
            return client;
        }
    }

    /// <summary>A dial that never completes unless cancelled: a black-holed upstream.</summary>
    private sealed class BlackHoleFactory : IConnectionFactory
    {
        public async ValueTask<ConnectionContext> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            throw new InvalidOperationException("unreachable");
        }
    }

    private static readonly EndPoint Upstream = new IPEndPoint(IPAddress.Loopback, 9000);

    [Fact]
    public async Task Rent_AfterReturns_ReusesNewestFirst()
    {
        var factory = new InMemoryUpstream();
        await using var pool = new UpstreamConnectionPool(factory, new FakeTimeProvider());

        var first = await pool.RentAsync(Upstream, Options, default);
        var second = await pool.RentAsync(Upstream, Options, default);
        Assert.False(first.IsReused);
        pool.Return(first);
        pool.Return(second);
        Assert.Equal(2, pool.IdleCount);

        var a = await pool.RentAsync(Upstream, Options, default);
        var b = await pool.RentAsync(Upstream, Options, default);

        Assert.Same(second.Connection, a.Connection);
        Assert.Same(first.Connection, b.Connection);
        Assert.True(a.IsReused);
        Assert.Equal(2, factory.Dials);
        Assert.Equal(0, pool.IdleCount);
    }

    [Fact]
    public async Task Rent_DifferentEndPoints_DoNotShareConnections()
    {
        var factory = new InMemoryUpstream();
        await using var pool = new UpstreamConnectionPool(factory, new FakeTimeProvider());

        pool.Return(await pool.RentAsync(Upstream, Options, default));
        var other = await pool.RentAsync(new IPEndPoint(IPAddress.Loopback, 9001), Options, default);

        Assert.False(other.IsReused);
        Assert.Equal(1, pool.IdleCount);
    }

    public static TheoryData<TransportKind, string> StaleCauses => new()
    {
        { TransportKind.Socket, "fin" }, { TransportKind.Socket, "reset" }, { TransportKind.Socket, "unexpected-bytes" },
        { TransportKind.Epoll, "fin" }, { TransportKind.Epoll, "reset" }, { TransportKind.Epoll, "unexpected-bytes" },
    };

    public static TheoryData<TransportKind> SocketEngines => [TransportKind.Socket, TransportKind.Epoll];

    [Theory]
    [MemberData(nameof(StaleCauses))]
    public async Task Rent_IdleConnectionStale_DisposesItAndDials(TransportKind kind, string cause)
    {
        // Real sockets: the stale check must work on what the kernel reports, not only on the in-memory pipes.
        await using var listener = Engines.Bind(kind);
        await using var pool = new UpstreamConnectionPool(ConnectionTransport.CreateFactory(Engines.With(kind)), new FakeTimeProvider());
        var accept = listener.AcceptAsync().AsTask();
        var lease = await pool.RentAsync(listener.EndPoint, Options, default).AsTask().WaitAsync(Timeouts.Default);
        await using var upstream = (await accept.WaitAsync(Timeouts.Default))!;
        pool.Return(lease);

        switch (cause)
        {
            case "fin": upstream.Transport.Output.Complete(); break;
            case "reset": upstream.Abort(); break;
            case "unexpected-bytes": await upstream.Transport.Output.WriteAndFlushAsync("HTTP/1.1 408 Request Timeout\r\n\r\n"u8.ToArray()); break;
        }
        await WaitUntilReadableAsync(lease.Connection);

        accept = listener.AcceptAsync().AsTask();
        var fresh = await pool.RentAsync(listener.EndPoint, Options, default).AsTask().WaitAsync(Timeouts.Default);
        await using var _ = (await accept.WaitAsync(Timeouts.Default))!;

        Assert.False(fresh.IsReused);
        Assert.NotSame(lease.Connection, fresh.Connection);
        await lease.Connection.ConnectionClosed.WaitAsync(); // the stale one was disposed
        pool.Discard(fresh);
    }

    // Waits until the kernel delivered what the upstream did, without consuming it.
    private static async Task WaitUntilReadableAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        try
        {
            var result = await input.ReadAsync().AsTask().WaitAsync(Timeouts.Default);
            input.AdvanceTo(result.Buffer.Start); // examined nothing: TryRead hides bytes already examined
        }
        catch (ConnectionResetException)
        {
            // The reset itself: stays visible to the pool's TryRead, which throws it again.
        }
    }

    [Fact]
    public async Task Return_OverMaxIdle_ClosesOldest()
    {
        var factory = new InMemoryUpstream();
        await using var pool = new UpstreamConnectionPool(factory, new FakeTimeProvider());
        var options = new UpstreamPoolOptions { MaxIdlePerEndpoint = 2 };
        var leases = new UpstreamLease[3];
        for (int i = 0; i < leases.Length; i++)
        {
            leases[i] = await pool.RentAsync(Upstream, options, default);
        }

        foreach (var lease in leases)
        {
            pool.Return(lease);
        }

        Assert.Equal(2, pool.IdleCount);
        await leases[0].Connection.ConnectionClosed.WaitAsync();
        Assert.Same(leases[2].Connection, (await pool.RentAsync(Upstream, options, default)).Connection);
        Assert.Same(leases[1].Connection, (await pool.RentAsync(Upstream, options, default)).Connection);
    }

    [Fact]
    public async Task Return_MaxIdleZero_Disposes()
    {
        await using var pool = new UpstreamConnectionPool(new InMemoryUpstream(), new FakeTimeProvider());
        var options = new UpstreamPoolOptions { MaxIdlePerEndpoint = 0 };
        var lease = await pool.RentAsync(Upstream, options, default);

        pool.Return(lease);

        Assert.Equal(0, pool.IdleCount);
        await lease.Connection.ConnectionClosed.WaitAsync();
    }

    [Fact]
    public async Task IdleTimeout_Elapses_EvictsAndDisposes()
    {
        var time = new FakeTimeProvider();
        await using var pool = new UpstreamConnectionPool(new InMemoryUpstream(), time);
        var options = new UpstreamPoolOptions { IdleTimeout = TimeSpan.FromSeconds(10) };
        var older = await pool.RentAsync(Upstream, options, default);
        var newer = await pool.RentAsync(Upstream, options, default);
        pool.Return(older);
        time.Advance(TimeSpan.FromSeconds(5));
        pool.Return(newer);

        time.Advance(TimeSpan.FromSeconds(6)); // older idled 11 s, newer 6 s
        Assert.Equal(1, pool.IdleCount);
        await older.Connection.ConnectionClosed.WaitAsync();
        Assert.False(newer.Connection.ConnectionClosed.IsCancellationRequested);

        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(0, pool.IdleCount);
        await newer.Connection.ConnectionClosed.WaitAsync();
    }

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task Rent_NobodyListens_ThrowsRefused(TransportKind kind)
    {
        // A bound socket that does not listen holds the port, so no other test can take it, and refuses connects.
        using var notListening = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        notListening.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await using var pool = new UpstreamConnectionPool(ConnectionTransport.CreateFactory(Engines.With(kind)));

        var error = await Assert.ThrowsAsync<UpstreamConnectException>(
            () => pool.RentAsync(notListening.LocalEndPoint!, Options, default).AsTask().WaitAsync(Timeouts.Default));

        Assert.Equal(UpstreamConnectFailure.Refused, error.Reason);
        Assert.Equal(notListening.LocalEndPoint, error.EndPoint);
        Assert.IsType<SocketException>(error.InnerException);
    }

    [Fact]
    public async Task Rent_DialNeverCompletes_ThrowsTimeoutAfterConnectTimeout()
    {
        var time = new FakeTimeProvider();
        await using var pool = new UpstreamConnectionPool(new BlackHoleFactory(), time);
        var options = new UpstreamPoolOptions { ConnectTimeout = TimeSpan.FromSeconds(5) };

        var rent = pool.RentAsync(Upstream, options, default).AsTask();
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.False(rent.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));

        var error = await Assert.ThrowsAsync<UpstreamConnectException>(() => rent.WaitAsync(Timeouts.Default));
        Assert.Equal(UpstreamConnectFailure.Timeout, error.Reason);
    }

    [Fact]
    public async Task Rent_CallerCancels_ThrowsOperationCanceledNotConnectFailure()
    {
        await using var pool = new UpstreamConnectionPool(new BlackHoleFactory(), new FakeTimeProvider());
        using var cts = new CancellationTokenSource();

        var rent = pool.RentAsync(Upstream, Options, cts.Token).AsTask();
        cts.Cancel();

        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => rent.WaitAsync(Timeouts.Default));
        Assert.Equal(cts.Token, error.CancellationToken);
        Assert.IsNotType<UpstreamConnectException>(error);
    }

    [Theory]
    [InlineData(SocketError.ConnectionRefused, UpstreamConnectFailure.Refused)]
    [InlineData(SocketError.TimedOut, UpstreamConnectFailure.Timeout)]
    [InlineData(SocketError.HostUnreachable, UpstreamConnectFailure.Unreachable)]
    [InlineData(SocketError.NetworkUnreachable, UpstreamConnectFailure.Unreachable)]
    [InlineData(SocketError.HostNotFound, UpstreamConnectFailure.DnsFailure)]
    [InlineData(SocketError.TryAgain, UpstreamConnectFailure.DnsFailure)]
    [InlineData(SocketError.AccessDenied, UpstreamConnectFailure.Other)]
    public void Classify_SocketError_MapsToFailure(SocketError error, UpstreamConnectFailure expected)
    {
        Assert.Equal(expected, UpstreamConnectionPool.Classify(error));
    }

    [Fact]
    public async Task Discard_Lease_DisposesConnection()
    {
        await using var pool = new UpstreamConnectionPool(new InMemoryUpstream(), new FakeTimeProvider());
        var lease = await pool.RentAsync(Upstream, Options, default);

        pool.Discard(lease);

        await lease.Connection.ConnectionClosed.WaitAsync();
        Assert.Equal(0, pool.IdleCount);
    }

    [Fact]
    public async Task DisposeAsync_IdleAndLaterReturned_AllDisposed()
    {
        var pool = new UpstreamConnectionPool(new InMemoryUpstream(), new FakeTimeProvider());
        var idle = await pool.RentAsync(Upstream, Options, default);
        var rented = await pool.RentAsync(Upstream, Options, default);
        pool.Return(idle);

        await pool.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);
        pool.Return(rented);

        await idle.Connection.ConnectionClosed.WaitAsync();
        await rented.Connection.ConnectionClosed.WaitAsync();
        Assert.Equal(0, pool.IdleCount);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pool.RentAsync(Upstream, Options, default).AsTask());
    }

    [Fact]
    public async Task RentReturn_ConcurrentStress_NeverSharesAConnection()
    {
        const int workers = 8;
        const int iterations = 2000;
        var factory = new InMemoryUpstream();
        await using var pool = new UpstreamConnectionPool(factory, new FakeTimeProvider());
        var options = new UpstreamPoolOptions { MaxIdlePerEndpoint = 4 };
        var inUse = new ConcurrentDictionary<ConnectionContext, int>();
        int shared = 0;

        var tasks = Enumerable.Range(0, workers).Select(_ => Task.Run(async () =>
        {
            for (int i = 0; i < iterations; i++)
            {
                var lease = await pool.RentAsync(Upstream, options, default);
                if (!inUse.TryAdd(lease.Connection, 0))
                {
                    Interlocked.Increment(ref shared);
                }
                if (i % 3 == 0)
                {
                    await Task.Yield();
                }
                inUse.TryRemove(lease.Connection, out int _);
                pool.Return(lease);
            }
        }));
        await Task.WhenAll(tasks).WaitAsync(Timeouts.Default);

        Assert.Equal(0, shared);
        Assert.InRange(pool.IdleCount, 1, 4);
        // Each worker holds at most one connection at a time; past MaxIdle some are closed and redialled.
        Assert.InRange(factory.Dials, 1, workers * iterations / 10);
    }

    public static TheoryData<string, string, string> AffinityPops => new()
    {
        // idle (oldest → newest, name:affinity), the affinity asked for, the order connections come out in
        { "a:A b:B c:A", "B", "b c a" },
        { "a:A b:B c:A", "A", "c b a" },
        { "a:A b:B c:A", "", "c b a" },
        { "a:A b:A", "B", "b a" },          // none with B: the newest all the same
        { "a:B b:A c:A d:A e:A f:A g:A h:A i:A", "B", "i h g f e d c b a" }, // B is past the 8 newest scanned
    };

    [Theory]
    [MemberData(nameof(AffinityPops))]
    public async Task TryPop_Affinity_PrefersSameReactorAndKeepsOrder(string idle, string affinity, string expectedOrder)
    {
        await using var owner = new UpstreamConnectionPool(new BlackHoleFactory(), new FakeTimeProvider());
        var pool = new UpstreamConnectionPool.EndpointPool(owner, Upstream, tls: null, limit: null);
        var keys = new Dictionary<string, object>();
        object Key(string name) => keys.TryGetValue(name, out var key) ? key : keys[name] = new object();
        foreach (var spec in idle.Split(' '))
        {
            var parts = spec.Split(':');
            Assert.Null(pool.Push(new AffinityConnection(parts[0], Key(parts[1])), long.MaxValue, maxIdle: 64));
        }

        var order = new List<string>();
        bool first = true;
        while (pool.TryPop(first && affinity.Length > 0 ? Key(affinity) : null, out var connection))
        {
            order.Add(connection.ConnectionId);
            first = false;
        }

        Assert.Equal(expectedOrder, string.Join(' ', order));
    }

    private sealed class AffinityConnection(string id, object affinity) : ConnectionContext
    {
        public override string ConnectionId => id;

        public override System.IO.Pipelines.IDuplexPipe Transport { get; set; } = null!;

        public override EndPoint? LocalEndPoint => null;

        public override EndPoint? RemoteEndPoint => null;

        public override CancellationToken ConnectionClosed => CancellationToken.None;

        internal override object? Affinity => affinity;

        public override void Abort(Exception? reason = null)
        {
        }

        public override ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
