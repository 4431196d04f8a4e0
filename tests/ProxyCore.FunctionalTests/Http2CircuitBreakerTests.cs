using System.Diagnostics;
using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using ProxyCore.Routing.Config;
using ProxyCore.Server;

namespace ProxyCore.FunctionalTests;

/// <summary>
/// circuitBreaker.maxConnections / maxPending on a "protocol": "http2" cluster, over real sockets: h2c Kestrel
/// upstreams that allow one stream per connection (so each held request pins a connection) and hold /gated
/// requests until the test lets them answer; a real HttpClient in front.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class Http2CircuitBreakerTests
{
    private sealed class Rig : IAsyncDisposable
    {
        public required KestrelUpstream[] Upstreams { get; init; }
        public required ProxyHost Proxy { get; init; }

        public Transport.UpstreamConnectionLimit Limit => Proxy.Current.Clusters["mock"].ConnectionLimit!;

        public static async Task<Rig> StartAsync(int maxConnections, int maxPending, TimeSpan connectTimeout, int destinations = 1)
        {
            var upstreams = new KestrelUpstream[destinations];
            for (int i = 0; i < destinations; i++)
            {
                upstreams[i] = await KestrelUpstream.StartAsync(HttpProtocols.Http2, maxStreamsPerConnection: 1);
            }
            var config = TestHost.DefaultConfig(upstreams[0].Url, b => b.RouteTimeout = TimeSpan.FromSeconds(30));
            var mock = config.Clusters[^1];
            mock.Protocol = "http2";
            mock.ConnectTimeout = connectTimeout;
            mock.Destinations = [.. upstreams.Select(u => new DestinationConfig { Address = u.Url })];
            mock.CircuitBreaker = new CircuitBreakerConfig { MaxConnections = maxConnections, MaxPending = maxPending };
            return new Rig { Upstreams = upstreams, Proxy = ProxyHost.Start(config) };
        }

        public HttpClient CreateClient() => new(new SocketsHttpHandler { UseProxy = false })
        {
            BaseAddress = new Uri($"http://{Proxy.ListenEndPoints[0]}"),
            Timeout = TimeSpan.FromSeconds(60),
        };

        public int GatedHeads => Upstreams.Sum(u => u.GatedHeads);

        public int Connections => Upstreams.Sum(u => u.Connections);

        public void Allow(int answers)
        {
            foreach (var upstream in Upstreams)
            {
                upstream.Allow(answers);
            }
        }

        public async ValueTask DisposeAsync()
        {
            Allow(100);
            await Proxy.StopAsync(TimeSpan.FromSeconds(2));
            foreach (var upstream in Upstreams)
            {
                await upstream.DisposeAsync();
            }
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(2, 3)]
    public async Task MaxConnections_CapsHttp2Connections_PendingBeyondMaxPendingGet503AtOnce_PendingProceed(int maxConnections, int maxPending)
    {
        await using var rig = await Rig.StartAsync(maxConnections, maxPending, TimeSpan.FromSeconds(20));
        using var client = rig.CreateClient();

        var busy = new List<Task<HttpResponseMessage>>();
        for (int i = 0; i < maxConnections; i++)
        {
            // One at a time: each held stream fills its connection (the upstream allows one stream), so the next one dials.
            busy.Add(client.GetAsync("/gated"));
            int reached = i + 1;
            await WaitUntil(() => rig.GatedHeads == reached, "held request " + reached + " reaches the upstream");
        }
        var pending = Enumerable.Range(0, maxPending).Select(_ => client.GetAsync("/gated")).ToArray();
        await WaitUntil(() => rig.Limit.Pending == maxPending, "the next requests wait as pending");

        var watch = Stopwatch.StartNew();
        using var refused = await client.GetAsync("/gated");
        watch.Stop();

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("circuit-open", refused.Headers.GetValues("proxycore-error").Single());
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"refused after {watch.Elapsed}: it must not wait");
        Assert.Equal(maxConnections, rig.Connections);
        Assert.All(pending, p => Assert.False(p.IsCompleted));

        // Each answered stream frees a slot on its connection; the pending requests take them, no new connection.
        rig.Allow(maxConnections + maxPending);
        foreach (var response in await Task.WhenAll([.. busy, .. pending]))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("gated", await response.Content.ReadAsStringAsync());
        }
        Assert.Equal(maxConnections, rig.Connections);
        Assert.Equal(0, rig.Limit.Pending);
        await WaitForMetricAsync(rig, "proxycore_circuit_breaker_rejections_total{cluster=\"mock\",reason=\"max-pending\"} 1");
        await WaitForMetricAsync(rig, $"proxycore_cluster_upstream_connections{{cluster=\"mock\"}} {maxConnections}");
    }

    [Fact]
    public async Task MaxPending_Zero_NobodyWaits_503WhileTheConnectionIsBusy()
    {
        await using var rig = await Rig.StartAsync(maxConnections: 1, maxPending: 0, TimeSpan.FromSeconds(20));
        using var client = rig.CreateClient();

        var held = client.GetAsync("/gated");
        await WaitUntil(() => rig.GatedHeads == 1, "the first request reaches the upstream");
        using var refused = await client.GetAsync("/gated");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("circuit-open", refused.Headers.GetValues("proxycore-error").Single());
        rig.Allow(1);
        Assert.Equal(HttpStatusCode.OK, (await held).StatusCode);
        Assert.Equal(1, rig.Connections);
    }

    [Fact]
    public async Task Pending_NoStreamFreesWithinConnectTimeout_503PendingTimeout()
    {
        await using var rig = await Rig.StartAsync(maxConnections: 1, maxPending: 4, TimeSpan.FromMilliseconds(400));
        using var client = rig.CreateClient();

        var held = client.GetAsync("/gated");
        await WaitUntil(() => rig.GatedHeads == 1, "the first request reaches the upstream");
        var watch = Stopwatch.StartNew();
        using var waited = await client.GetAsync("/gated");
        watch.Stop();

        Assert.Equal(HttpStatusCode.ServiceUnavailable, waited.StatusCode);
        Assert.Equal("circuit-open", waited.Headers.GetValues("proxycore-error").Single());
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(350), $"gave up after {watch.Elapsed}, before the connect timeout");
        Assert.Equal(1, rig.Connections);

        rig.Allow(1);
        Assert.Equal(HttpStatusCode.OK, (await held).StatusCode);
        await WaitForMetricAsync(rig, "proxycore_circuit_breaker_rejections_total{cluster=\"mock\",reason=\"pending-timeout\"} 1");
    }

    [Fact]
    public async Task MaxConnections_AtTheCap_EachDestinationStillGetsOneConnection()
    {
        // maxConnections 1 over two destinations: the second destination still gets its first connection (Envoy's
        // rule), otherwise its requests would wait on a connection that can only free by idling out elsewhere.
        await using var rig = await Rig.StartAsync(maxConnections: 1, maxPending: 4, TimeSpan.FromSeconds(20), destinations: 2);
        using var client = rig.CreateClient();

        var first = client.GetAsync("/gated");
        await WaitUntil(() => rig.GatedHeads == 1, "the first request reaches an upstream");
        var second = client.GetAsync("/gated");
        await WaitUntil(() => rig.GatedHeads == 2, "the second request reaches the other upstream");

        Assert.Equal([1, 1], rig.Upstreams.Select(u => u.Connections));
        rig.Allow(1);
        Assert.Equal(HttpStatusCode.OK, (await first).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await second).StatusCode);

        // Both destinations have a connection now; more requests reuse them instead of dialling past the cap.
        rig.Allow(6);
        for (int i = 0; i < 6; i++)
        {
            using var response = await client.GetAsync("/gated");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        Assert.Equal(2, rig.Connections);
    }

    private static async Task WaitForMetricAsync(Rig rig, string line)
    {
        using var admin = new HttpClient { BaseAddress = new Uri($"http://{rig.Proxy.AdminEndPoint}") };
        var deadline = Stopwatch.StartNew();
        string metrics;
        while (!(metrics = await admin.GetStringAsync("/metrics")).Contains(line, StringComparison.Ordinal))
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(15))
            {
                Assert.Fail($"/metrics never had '{line}'; its circuit-breaker lines:\n" + string.Join("\n", metrics.Split('\n').Where(l => l.Contains("circuit_breaker") || l.Contains("cluster_"))));
            }
            await Task.Delay(20);
        }
    }

    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(15), "timed out waiting until " + what);
            await Task.Delay(10);
        }
    }
}
