using System.Collections.Concurrent;
using System.Net;

namespace ProxyCore.Transport.Tests;

/// <summary>The circuit breaker's connection half: a cluster-wide cap on open connections and on requests waiting for one.</summary>
public class UpstreamConnectionLimitTests
{
    private static readonly EndPoint A = new IPEndPoint(IPAddress.Loopback, 9000);
    private static readonly EndPoint B = new IPEndPoint(IPAddress.Loopback, 9001);

    /// <summary>Dials in memory and counts the dials; the accepted ends are kept so the connections stay open.</summary>
    private sealed class CountingUpstream : IConnectionFactory
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

    private static UpstreamPoolOptions Options(int maxConnections, int maxPending, TimeSpan? connectTimeout = null) => new()
    {
        ConnectionLimit = new UpstreamConnectionLimit(maxConnections, maxPending),
        ConnectTimeout = connectTimeout ?? TimeSpan.FromSeconds(5),
    };

    [Fact]
    public async Task Rent_AtTheCap_WaitsAndTakesTheConnectionReturnedFirst()
    {
        var factory = new CountingUpstream();
        await using var pool = new UpstreamConnectionPool(factory, new FakeTimeProvider());
        var options = Options(maxConnections: 2, maxPending: 4);

        var first = await pool.RentAsync(A, options, default);
        var second = await pool.RentAsync(A, options, default);
        var third = pool.RentAsync(A, options, default).AsTask();

        Assert.False(third.IsCompleted);
        Assert.Equal(1, options.ConnectionLimit!.Pending);
        Assert.Equal(2, factory.Dials);

        pool.Return(first);
        var lease = await third.WaitAsync(Timeouts.Default);

        Assert.Same(first.Connection, lease.Connection);
        Assert.True(lease.IsReused);
        Assert.Equal(2, factory.Dials);
        Assert.Equal(2, options.ConnectionLimit.Open);
        Assert.Equal(0, options.ConnectionLimit.Pending);
        pool.Discard(second);
        pool.Discard(lease);
    }

    [Fact]
    public async Task Rent_AtTheCap_DialsOnceAConnectionCloses()
    {
        var factory = new CountingUpstream();
        await using var pool = new UpstreamConnectionPool(factory, new FakeTimeProvider());
        var options = Options(maxConnections: 1, maxPending: 1);

        var first = await pool.RentAsync(A, options, default);
        var waiting = pool.RentAsync(A, options, default).AsTask();
        Assert.False(waiting.IsCompleted);

        pool.Discard(first);
        var lease = await waiting.WaitAsync(Timeouts.Default);

        Assert.False(lease.IsReused);
        Assert.Equal(2, factory.Dials);
        Assert.Equal(1, options.ConnectionLimit!.Open);
        pool.Discard(lease);
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(1, 1)]
    [InlineData(3, 2)]
    public async Task Rent_BeyondMaxPending_FailsAtOnceWithoutDialling(int maxConnections, int maxPending)
    {
        var factory = new CountingUpstream();
        await using var pool = new UpstreamConnectionPool(factory, new FakeTimeProvider());
        var options = Options(maxConnections, maxPending);
        var held = new List<UpstreamLease>();
        for (int i = 0; i < maxConnections; i++)
        {
            held.Add(await pool.RentAsync(A, options, default));
        }
        var waiting = new List<Task<UpstreamLease>>();
        for (int i = 0; i < maxPending; i++)
        {
            waiting.Add(pool.RentAsync(A, options, default).AsTask());
        }

        var refused = pool.RentAsync(A, options, default);

        Assert.True(refused.IsCompleted, "a request past maxPending must not wait");
        var e = await Assert.ThrowsAsync<UpstreamConnectException>(async () => await refused);
        Assert.Equal(UpstreamConnectFailure.PendingFull, e.Reason);
        Assert.Equal(maxConnections, factory.Dials);
        Assert.Equal(1, options.ConnectionLimit!.RejectedPending);
        Assert.All(waiting, w => Assert.False(w.IsCompleted));
        foreach (var lease in held)
        {
            pool.Return(lease);
        }
        foreach (var w in waiting)
        {
            pool.Discard(await w.WaitAsync(Timeouts.Default));
        }
        Assert.Equal(maxConnections, factory.Dials);
    }

    [Fact]
    public async Task Rent_Pending_GivesUpAfterTheConnectTimeout()
    {
        var time = new FakeTimeProvider();
        var factory = new CountingUpstream();
        await using var pool = new UpstreamConnectionPool(factory, time);
        var options = Options(maxConnections: 1, maxPending: 1, connectTimeout: TimeSpan.FromSeconds(2));
        var held = await pool.RentAsync(A, options, default);
        var waiting = pool.RentAsync(A, options, default).AsTask();

        time.Advance(TimeSpan.FromMilliseconds(1999));
        Assert.False(waiting.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(1));

        var e = await Assert.ThrowsAsync<UpstreamConnectException>(() => waiting.WaitAsync(Timeouts.Default));
        Assert.Equal(UpstreamConnectFailure.PendingTimeout, e.Reason);
        Assert.Equal(0, options.ConnectionLimit!.Pending);
        Assert.Equal(1, options.ConnectionLimit.TimedOutPending);

        // The dead waiter must not swallow the next wake: a later waiter still gets the returned connection.
        var next = pool.RentAsync(A, options, default).AsTask();
        pool.Return(held);
        Assert.Same(held.Connection, (await next.WaitAsync(Timeouts.Default)).Connection);
    }

    [Fact]
    public async Task Rent_Pending_CallerCancellationIsACancellationNotAFailure()
    {
        var factory = new CountingUpstream();
        await using var pool = new UpstreamConnectionPool(factory, new FakeTimeProvider());
        var options = Options(maxConnections: 1, maxPending: 1);
        var held = await pool.RentAsync(A, options, default);
        using var cts = new CancellationTokenSource();
        var waiting = pool.RentAsync(A, options, cts.Token).AsTask();

        cts.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(Timeouts.Default));
        Assert.Equal(0, options.ConnectionLimit!.Pending);
        pool.Discard(held);
    }

    [Fact]
    public async Task Rent_AtTheCap_ClosesAnotherDestinationsIdleConnectionToDial()
    {
        var factory = new CountingUpstream();
        await using var pool = new UpstreamConnectionPool(factory, new FakeTimeProvider());
        var options = Options(maxConnections: 1, maxPending: 0);
        pool.Return(await pool.RentAsync(A, options, default));
        Assert.Equal(1, pool.IdleCount);

        var toB = await pool.RentAsync(B, options, default);

        Assert.False(toB.IsReused);
        Assert.Equal(0, pool.IdleCount);
        Assert.Equal(1, options.ConnectionLimit!.Open);
        Assert.Equal(2, factory.Dials);
        pool.Discard(toB);
    }

    [Fact]
    public async Task Rent_DialFailure_ReleasesItsSlot()
    {
        await using var pool = new UpstreamConnectionPool(new RefusingFactory(), new FakeTimeProvider());
        var options = Options(maxConnections: 1, maxPending: 0);

        for (int i = 0; i < 3; i++)
        {
            var e = await Assert.ThrowsAsync<UpstreamConnectException>(async () => await pool.RentAsync(A, options, default));
            Assert.Equal(UpstreamConnectFailure.Refused, e.Reason);
        }
        Assert.Equal(0, options.ConnectionLimit!.Open);
    }

    [Fact]
    public async Task ClosedConnections_FreeTheirSlots_TheCountSettlesAtZero()
    {
        var factory = new CountingUpstream();
        await using var pool = new UpstreamConnectionPool(factory, new FakeTimeProvider());
        var options = new UpstreamPoolOptions { ConnectionLimit = new UpstreamConnectionLimit(8, 0), MaxIdlePerEndpoint = 2 };
        var leases = new List<UpstreamLease>();
        for (int i = 0; i < 8; i++)
        {
            leases.Add(await pool.RentAsync(A, options, default));
        }
        foreach (var lease in leases)
        {
            pool.Return(lease); // 2 stay idle, 6 are closed as over maxIdle
        }
        await WaitUntil(() => options.ConnectionLimit!.Open == 2);
        await pool.DisposeAsync();
        Assert.Equal(0, options.ConnectionLimit!.Open);
    }

    [Fact]
    public void Configure_RejectsNonsense()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new UpstreamConnectionLimit(0, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new UpstreamConnectionLimit(1, -1));
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (int i = 0; i < 2000 && !condition(); i++)
        {
            await Task.Delay(10);
        }
        Assert.True(condition());
    }

    private sealed class RefusingFactory : IConnectionFactory
    {
        public ValueTask<ConnectionContext> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
            => ValueTask.FromException<ConnectionContext>(new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.ConnectionRefused));
    }
}
