using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ProxyCore.Routing.Config;

namespace ProxyCore.FunctionalTests;

/// <summary>
/// circuitBreaker.maxConnections / maxPending over real sockets, against an upstream that holds every request
/// until the test lets it answer: the connections stay busy, so the cap and the pending queue are what decide.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class CircuitBreakerTests
{
    private static TestHost Start(GatedUpstream upstream, int maxConnections, int maxPending, TimeSpan connectTimeout) => TestHost.Start(_ =>
    {
        var config = TestHost.DefaultConfig(upstream.Url);
        config.Routes[0].Timeout = TimeSpan.FromSeconds(30);
        config.Clusters[0].ConnectTimeout = connectTimeout;
        config.Clusters[0].CircuitBreaker = new CircuitBreakerConfig { MaxConnections = maxConnections, MaxPending = maxPending };
        return config;
    });

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 1)]
    public async Task MaxConnections_HoldsAtTheUpstream_PendingBeyondMaxPendingGet503AtOnce_PendingProceedWhenAConnectionFrees(int maxConnections, int maxPending)
    {
        await using var upstream = new GatedUpstream();
        await using var host = Start(upstream, maxConnections, maxPending, TimeSpan.FromSeconds(20));
        var limit = host.Proxy.Current.Clusters["mock"].ConnectionLimit!;
        using var client = host.CreateClient();

        var busy = Enumerable.Range(0, maxConnections).Select(_ => client.GetAsync("/held")).ToArray();
        await WaitUntil(() => upstream.Heads == maxConnections, "the first requests reach the upstream");
        var pending = Enumerable.Range(0, maxPending).Select(_ => client.GetAsync("/held")).ToArray();
        await WaitUntil(() => limit.Pending == maxPending, "the next requests wait as pending");

        var watch = Stopwatch.StartNew();
        var refused = await client.GetAsync("/held");
        watch.Stop();

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("circuit-open", refused.Headers.GetValues("proxycore-error").Single());
        // Waiting would take the 20 s connect timeout; a loaded CI machine can take a few seconds for a new connection.
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"refused after {watch.Elapsed}: it must not wait");
        Assert.Equal(maxConnections, upstream.Accepted);
        Assert.All(pending, p => Assert.False(p.IsCompleted));

        // Let every request be answered: each busy connection goes idle and a pending request takes it.
        upstream.Allow(maxConnections + maxPending);
        foreach (var response in await Task.WhenAll([.. busy, .. pending]))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        Assert.Equal(maxConnections, upstream.Accepted);
        Assert.True(upstream.MaxOpen <= maxConnections, $"the upstream saw {upstream.MaxOpen} connections open at once");
        Assert.Equal(0, limit.Pending);

        await WaitForMetricAsync(client, host, "proxycore_circuit_breaker_rejections_total{cluster=\"mock\",reason=\"max-pending\"} 1");
        await WaitForMetricAsync(client, host, $"proxycore_cluster_upstream_connections{{cluster=\"mock\"}} {maxConnections}");
    }

    [Fact]
    public async Task Pending_WhenTheUpstreamClosesAConnection_DialsAnewWithinTheCap()
    {
        await using var upstream = new GatedUpstream(closeAfterAnswer: true);
        await using var host = Start(upstream, maxConnections: 1, maxPending: 2, TimeSpan.FromSeconds(20));
        using var client = host.CreateClient();

        var first = client.GetAsync("/held");
        await WaitUntil(() => upstream.Heads == 1, "the first request reaches the upstream");
        var second = client.GetAsync("/held");
        var third = client.GetAsync("/held");
        await WaitUntil(() => host.Proxy.Current.Clusters["mock"].ConnectionLimit!.Pending == 2, "two wait");

        upstream.Allow(3);

        Assert.Equal(HttpStatusCode.OK, (await first).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await second).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await third).StatusCode);
        Assert.Equal(3, upstream.Accepted);
        Assert.Equal(1, upstream.MaxOpen);
    }

    [Fact]
    public async Task Pending_NoConnectionFreesWithinConnectTimeout_503()
    {
        await using var upstream = new GatedUpstream();
        await using var host = Start(upstream, maxConnections: 1, maxPending: 4, TimeSpan.FromMilliseconds(400));
        using var client = host.CreateClient();

        var held = client.GetAsync("/held");
        await WaitUntil(() => upstream.Heads == 1, "the first request reaches the upstream");
        var watch = Stopwatch.StartNew();
        var waited = await client.GetAsync("/held");
        watch.Stop();

        Assert.Equal(HttpStatusCode.ServiceUnavailable, waited.StatusCode);
        Assert.Equal("circuit-open", waited.Headers.GetValues("proxycore-error").Single());
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(350), $"gave up after {watch.Elapsed}, before the connect timeout");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"gave up after {watch.Elapsed}");
        Assert.Equal(1, upstream.Accepted);

        upstream.Allow(1);
        Assert.Equal(HttpStatusCode.OK, (await held).StatusCode);
        await WaitForMetricAsync(client, host, "proxycore_circuit_breaker_rejections_total{cluster=\"mock\",reason=\"pending-timeout\"} 1");
    }

    /// <summary>
    /// The refusal is counted by the relay right after it wrote the 503, so a client may see the answer a moment
    /// before the counter moves: poll (bounded) instead of reading once.
    /// </summary>
    private static async Task WaitForMetricAsync(HttpClient client, TestHost host, string line)
    {
        var deadline = Stopwatch.StartNew();
        string metrics;
        while (!(metrics = await client.GetStringAsync(new Uri(host.AdminUri, "/metrics"))).Contains(line, StringComparison.Ordinal))
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(15))
            {
                Assert.Fail($"/metrics never had '{line}'; its circuit-breaker lines:\n" + string.Join("\n", metrics.Split('\n').Where(l => l.Contains("circuit_breaker") || l.Contains("cluster_"))));
            }
            await Task.Delay(20);
        }
    }

    private static Task WaitUntil(Func<bool> condition, string what) => Eventually.UntilAsync(condition, what);
}

/// <summary>
/// An HTTP/1.1 upstream on a real socket that reads each request head and answers only when the test calls
/// <see cref="Allow"/> (keep-alive, or closing after the answer); it counts accepted and concurrently open sockets.
/// </summary>
internal sealed class GatedUpstream : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _permits = new(0);
    private readonly bool _closeAfterAnswer;
    private int _accepted;
    private int _open;
    private int _maxOpen;
    private int _heads;

    public GatedUpstream(bool closeAfterAnswer = false)
    {
        _closeAfterAnswer = closeAfterAnswer;
        _listener.Start();
        _ = Task.Run(AcceptLoopAsync);
    }

    public string Url => $"http://{_listener.LocalEndpoint}";

    public int Accepted => Volatile.Read(ref _accepted);

    public int MaxOpen => Volatile.Read(ref _maxOpen);

    /// <summary>Request heads received so far (answered or not).</summary>
    public int Heads => Volatile.Read(ref _heads);

    public void Allow(int answers) => _permits.Release(answers);

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }
            Interlocked.Increment(ref _accepted);
            int open = Interlocked.Increment(ref _open);
            for (int seen = Volatile.Read(ref _maxOpen); open > seen; seen = Volatile.Read(ref _maxOpen))
            {
                Interlocked.CompareExchange(ref _maxOpen, open, seen);
            }
            _ = Task.Run(() => ServeAsync(socket));
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        bool counted = true;
        try
        {
            using (socket)
            {
                var buffer = new byte[8192];
                var seen = new StringBuilder();
                while (true)
                {
                    int n = await socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                    if (n == 0)
                    {
                        return;
                    }
                    seen.Append(Encoding.ASCII.GetString(buffer, 0, n));
                    while (seen.ToString().IndexOf("\r\n\r\n", StringComparison.Ordinal) is var end and >= 0)
                    {
                        seen.Remove(0, end + 4);
                        Interlocked.Increment(ref _heads);
                        await _permits.WaitAsync(_stop.Token);
                        string connection = _closeAfterAnswer ? "Connection: close\r\n" : "";
                        await socket.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n{connection}\r\nok"), SocketFlags.None);
                        if (_closeAfterAnswer)
                        {
                            // Done from the upstream's side once it said close: counted closed before the proxy can react.
                            Interlocked.Decrement(ref _open);
                            counted = false;
                            socket.Shutdown(SocketShutdown.Send);
                            while (await socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token) > 0)
                            {
                            }
                            return;
                        }
                    }
                }
            }
        }
        catch (Exception)
        {
            // Stopping, or the proxy closed the connection.
        }
        finally
        {
            if (counted)
            {
                Interlocked.Decrement(ref _open);
            }
        }
    }

    public ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        return ValueTask.CompletedTask;
    }
}
