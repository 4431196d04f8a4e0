using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using ProxyCore.Http;
using ProxyCore.Routing.Config;
using ProxyCore.Server;
using HttpMethod = System.Net.Http.HttpMethod;
using HttpVersion = System.Net.HttpVersion;

namespace ProxyCore.FunctionalTests;

/// <summary>Traffic mirroring over real sockets: the shadow gets its share, the client only ever sees the primary.</summary>
[Collection(SerialCollection.Name)]
public sealed class MirrorTests
{
    private static TestHost Start(ShadowUpstream shadow, MirrorConfig mirror, Random? random = null) => TestHost.Start(url =>
    {
        var config = TestHost.DefaultConfig(url, b => b.ExtraClusters.Add(new ClusterConfig
        {
            Id = "shadow",
            Destinations = [new DestinationConfig { Address = $"http://{shadow.EndPoint}" }],
        }));
        mirror.Cluster = "shadow";
        config.Routes[0].Mirror = mirror;
        config.Routes[0].Transforms = new TransformsConfig { SetRequestHeaders = new Dictionary<string, string> { ["x-env"] = "prod" } };
        return config;
    }, mirrorRandom: random);

    private static long Value(string metrics, string series)
    {
        var match = Regex.Match(metrics, "^" + Regex.Escape(series) + " (\\d+)$", RegexOptions.Multiline);
        return match.Success ? long.Parse(match.Groups[1].Value) : -1;
    }

    private static Task<string> WaitForMetricsAsync(TestHost host, Func<string, bool> done) => Eventually.MetricsAsync(host.AdminUri, done);

    [Theory]
    [InlineData(10, 1)]
    [InlineData(30, 2)]
    [InlineData(100, 3)]
    public async Task Percent_SeededRandom_ShadowGetsExactlyTheSampledRequests_ClientSeesOnlyPrimary(double percent, int seed)
    {
        const int Requests = 300;
        // Replay the seed: the proxy draws one number per request, in order (requests are sequential).
        var replay = new Random(seed);
        int expected = Enumerable.Range(0, Requests).Count(_ => percent >= 100 || replay.NextDouble() * 100 < percent);
        await using var shadow = ShadowUpstream.Start(hang: false);
        await using var host = Start(shadow, new MirrorConfig { Percent = percent }, new Random(seed));
        using var client = host.CreateClient();
        for (int i = 0; i < Requests; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/bytes/{i % 7 + 1}?n={i}");
            request.Headers.TryAddWithoutValidation("connection", "keep-alive, x-drop-me");
            request.Headers.TryAddWithoutValidation("x-drop-me", "hop-by-hop by the Connection header");
            request.Headers.TryAddWithoutValidation("keep-alive", "timeout=5");
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode); // the shadow answers 418: never seen here
            Assert.Equal(i % 7 + 1, (await response.Content.ReadAsByteArrayAsync()).Length);
        }
        string metrics = await WaitForMetricsAsync(host, m => Value(m, "proxycore_mirror_requests_total{route=\"mock\",result=\"sent\"}") >= expected);
        Assert.Equal(expected, Value(metrics, "proxycore_mirror_requests_total{route=\"mock\",result=\"sent\"}"));
        Assert.Equal(0, Value(metrics, "proxycore_mirror_requests_total{route=\"mock\",result=\"failed\"}"));
        Assert.Equal(expected, shadow.Requests.Count);
        // Statistical sanity on top of the exact replay: within 4 standard deviations of percent.
        double mean = Requests * percent / 100, sd = Math.Sqrt(Requests * percent / 100 * (1 - percent / 100));
        Assert.InRange(expected, mean - 4 * sd - 1, mean + 4 * sd + 1);
        // The copy is the forwarded head: after transforms, marked, without hop-by-hop fields.
        var seen = shadow.Requests.First();
        Assert.StartsWith("GET /bytes/", seen);
        Assert.Contains("\nx-env: prod\r\n", seen);
        Assert.Contains("\nx-proxycore-mirror: 1\r\n", seen);
        Assert.Contains("\nx-forwarded-for: 127.0.0.1\r\n", seen);
        Assert.DoesNotContain("\nx-drop-me:", seen);
        Assert.DoesNotContain("\nkeep-alive:", seen);
    }

    [Fact]
    public async Task Http2Client_IsMirroredAsHttp11_WithItsAuthorityAsHost()
    {
        await using var shadow = ShadowUpstream.Start(hang: false);
        await using var host = Start(shadow, new MirrorConfig { Percent = 100 });
        using var client = host.CreateClient(HttpVersion.Version20);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/bytes/5?h2=1") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal(5, (await response.Content.ReadAsByteArrayAsync()).Length);
        await WaitForMetricsAsync(host, m => Value(m, "proxycore_mirror_requests_total{route=\"mock\",result=\"sent\"}") == 1);
        var seen = Assert.Single(shadow.Requests);
        Assert.StartsWith("GET /bytes/5?h2=1\r\n", seen);
        Assert.Contains($"\nhost: {host.ProxyEndPoint}\r\n", seen);
    }

    [Fact]
    public async Task Percent_SharedRandom_ShadowGetsAboutItsShare()
    {
        const int Requests = 400;
        await using var shadow = ShadowUpstream.Start(hang: false);
        await using var host = Start(shadow, new MirrorConfig { Percent = 25 });
        using var client = host.CreateClient();
        for (int i = 0; i < Requests; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/bytes/1")).StatusCode);
        }
        // 25% of 400 = 100, sd ≈ 8.7: ±40 is over 4.5 sd (a false failure about once in 300000 runs).
        // Copies still on their way would make the shadow's count and the metric differ for a moment (the shadow
        // counts on arrival, the proxy once answered): compare them once none is in flight.
        var route = host.Proxy.Metrics.ForRoute("mock");
        int seen = -1;
        string metrics = await WaitForMetricsAsync(host, m =>
        {
            seen = shadow.Requests.Count;
            return Volatile.Read(ref route.MirrorInFlight) == 0 && Value(m, "proxycore_mirror_requests_total{route=\"mock\",result=\"sent\"}") == seen;
        });
        Assert.Equal(0, Volatile.Read(ref route.MirrorInFlight));
        Assert.InRange(seen, 60, 140);
        Assert.Equal(seen, Value(metrics, "proxycore_mirror_requests_total{route=\"mock\",result=\"sent\"}"));
        Assert.Equal(seen, shadow.Requests.Count);
    }

    [Fact]
    public async Task HangingShadow_DoesNotSlowThePrimary_ExtraCopiesDropped_StuckOnesTimeOut()
    {
        await using var shadow = ShadowUpstream.Start(hang: true);
        // The mirror timeout is the yardstick: a primary that waited on its copy would take all of it. It is long
        // enough that 30 requests finish well inside it on a loaded CI machine, so the 4 copies that took the
        // in-flight slots are still stuck when the other 26 are offered (and dropped).
        var mirrorTimeout = TimeSpan.FromSeconds(6);
        await using var host = Start(shadow, new MirrorConfig { Percent = 100, MaxInFlight = 4, Timeout = mirrorTimeout });
        using var client = host.CreateClient();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < 30; i++)
        {
            var one = Stopwatch.StartNew();
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/bytes/10")).StatusCode);
            Assert.True(one.Elapsed < mirrorTimeout / 2, $"request {i} took {one.Elapsed}");
        }
        Assert.True(clock.Elapsed < mirrorTimeout, $"30 requests took {clock.Elapsed} behind a hanging mirror");
        string metrics = await WaitForMetricsAsync(host, m => Value(m, "proxycore_mirror_requests_total{route=\"mock\",result=\"failed\"}") >= 4);
        Assert.Equal(4, Value(metrics, "proxycore_mirror_requests_total{route=\"mock\",result=\"failed\"}"));
        Assert.Equal(26, Value(metrics, "proxycore_mirror_requests_total{route=\"mock\",result=\"dropped\"}"));
        Assert.Equal(0, Value(metrics, "proxycore_mirror_requests_total{route=\"mock\",result=\"sent\"}"));
    }

    [Fact]
    public async Task RequestWithBody_IsNotMirrored_CountedAsDropped_DeadShadowCountedAsFailed()
    {
        await using var shadow = ShadowUpstream.Start(hang: false);
        await using var host = Start(shadow, new MirrorConfig { Percent = 100 });
        using var client = host.CreateClient();
        var response = await client.PostAsync("/echo", new ByteArrayContent(Encoding.ASCII.GetBytes("payload")));
        Assert.Equal("payload", await response.Content.ReadAsStringAsync());
        await shadow.DisposeAsync(); // now nothing listens there
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/bytes/1")).StatusCode);
        string metrics = await WaitForMetricsAsync(host, m => Value(m, "proxycore_mirror_requests_total{route=\"mock\",result=\"failed\"}") >= 1);
        Assert.Equal(1, Value(metrics, "proxycore_mirror_requests_total{route=\"mock\",result=\"dropped\"}"));
        Assert.Equal(1, Value(metrics, "proxycore_mirror_requests_total{route=\"mock\",result=\"failed\"}"));
        Assert.Empty(shadow.Requests);
    }
}

/// <summary>The shadow: records each request head it gets and answers 418 (or never answers).</summary>
internal sealed class ShadowUpstream : IHttpApplication, IAsyncDisposable
{
    private readonly bool _hang;
    private readonly TaskCompletionSource _stop = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private SimpleHttpServer? _server;

    private ShadowUpstream(bool hang) => _hang = hang;

    public ConcurrentQueue<string> Requests { get; } = new();

    public IPEndPoint EndPoint => _server!.EndPoint;

    public static ShadowUpstream Start(bool hang)
    {
        var shadow = new ShadowUpstream(hang);
        shadow._server = SimpleHttpServer.Start(new IPEndPoint(IPAddress.Loopback, 0), shadow);
        return shadow;
    }

    public async ValueTask ProcessAsync(HttpExchange exchange)
    {
        var request = exchange.Request;
        var head = new StringBuilder();
        head.Append(Encoding.ASCII.GetString(request.MethodSpan)).Append(' ').Append(Encoding.ASCII.GetString(request.PathSpan))
            .Append(Encoding.ASCII.GetString(request.QuerySpan)).Append("\r\n");
        for (int i = 0; i < request.HeaderCount; i++)
        {
            head.Append(Encoding.ASCII.GetString(request.GetName(i))).Append(": ").Append(Encoding.ASCII.GetString(request.GetValue(i))).Append("\r\n");
        }
        if (_hang)
        {
            await _stop.Task.WaitAsync(TimeSpan.FromSeconds(30)).ContinueWith(_ => { });
            return;
        }
        Requests.Enqueue(head.ToString());
        var body = "shadow answer\n"u8.ToArray();
        exchange.Response.StatusCode = 418;
        exchange.Response.AddHeader("content-type"u8, "text/plain"u8);
        await exchange.StartResponseAsync(BodyFraming.ContentLength, body.Length);
        await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(body), flush: false);
        await exchange.CompleteResponseAsync();
    }

    public async ValueTask DisposeAsync()
    {
        _stop.TrySetResult();
        if (_server is { } server)
        {
            _server = null;
            await server.StopAsync(TimeSpan.FromSeconds(1));
        }
    }
}
