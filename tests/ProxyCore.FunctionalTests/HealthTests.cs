using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ProxyCore.Http;
using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;
using ProxyCore.Server;

namespace ProxyCore.FunctionalTests;

/// <summary>Destination health over real sockets: active checks and passive outlier detection.</summary>
[Collection(SerialCollection.Name)]
public sealed class HealthTests
{
    private static readonly HealthCheckConfig s_fastCheck = new()
    {
        // Fast enough for a test, with a timeout loose enough that a busy CI machine does not fail probes
        // (150 ms was not: a loopback probe can wait that long for a thread on a loaded 2-core box).
        Path = "/healthz", Interval = TimeSpan.FromMilliseconds(400), Timeout = TimeSpan.FromMilliseconds(350),
        HealthyThreshold = 2, UnhealthyThreshold = 2,
    };

    [Fact]
    public async Task ActiveCheck_DestinationFailsThenRecovers_TrafficLeavesAndReturns()
    {
        var a = new NamedUpstream("a");
        var b = new NamedUpstream("b");
        await using var upstreams = new Upstreams(a, b);
        await using var proxy = Start(upstreams, cluster => cluster.HealthCheck = s_fastCheck);
        using var client = Client(proxy);
        var stateB = proxy.Current.Clusters["pair"].Destinations[1].State;

        b.HealthStatus = 503;
        await WaitUntilAsync(() => !stateB.Healthy, "b marked unhealthy");
        var whileDown = await SendAsync(client, 20);
        b.HealthStatus = 200;
        await WaitUntilAsync(() => stateB.Healthy, "b healthy again");
        var afterRecovery = await SendAsync(client, 20);

        Assert.All(whileDown, r => Assert.Equal("200 a", r));
        Assert.Contains("200 b", afterRecovery);
        Assert.Contains("200 a", afterRecovery);
        string metrics = await client.GetStringAsync($"http://{proxy.AdminEndPoint}/metrics");
        Assert.Matches(@"proxycore_health_checks_total\{cluster=""pair"",destination=""http://[^""]+"",result=""failed""\} [1-9]", metrics);
    }

    [Fact]
    public async Task ActiveCheck_DestinationStopped_AllTrafficToTheOther()
    {
        var a = new NamedUpstream("a");
        var b = new NamedUpstream("b");
        await using var upstreams = new Upstreams(a, b);
        await using var proxy = Start(upstreams, cluster => cluster.HealthCheck = s_fastCheck);
        using var client = Client(proxy);
        var stateB = proxy.Current.Clusters["pair"].Destinations[1].State;

        await upstreams.Servers[1].StopAsync(TimeSpan.Zero);
        await WaitUntilAsync(() => !stateB.Healthy, "stopped b marked unhealthy");
        var responses = await SendAsync(client, 20);

        Assert.All(responses, r => Assert.Equal("200 a", r));
    }

    [Theory]
    [InlineData(false)] // b refuses connections: 502 upstream-connect-failed
    [InlineData(true)]  // b answers 503 to everything
    public async Task OutlierDetection_FailingDestination_EjectedAfterNFailuresThenAllSucceed(bool answers503)
    {
        var a = new NamedUpstream("a");
        var b = new NamedUpstream("b") { ServeStatus = 503 };
        await using var upstreams = new Upstreams(a, b);
        int closedPort = ClosedPort();
        await using var proxy = Start(upstreams, cluster =>
        {
            cluster.OutlierDetection = new OutlierDetectionConfig { ConsecutiveFailures = 3, EjectFor = TimeSpan.FromSeconds(30) };
            if (!answers503)
            {
                cluster.Destinations = [cluster.Destinations[0], new DestinationConfig { Address = $"http://127.0.0.1:{closedPort}" }];
            }
        });
        using var client = Client(proxy);

        var first = await SendAsync(client, 6); // round-robin: a, b, a, b, a, b — the third failure of b ejects it
        var then = await SendAsync(client, 20);

        Assert.Equal(3, first.Count(r => r.StartsWith(answers503 ? "503" : "502", StringComparison.Ordinal)));
        Assert.All(then, r => Assert.Equal("200 a", r));
        var stateB = proxy.Current.Clusters["pair"].Destinations[1].State;
        Assert.True(stateB.IsEjected);
        string metrics = await client.GetStringAsync($"http://{proxy.AdminEndPoint}/metrics");
        Assert.Contains($"proxycore_destination_ejections_total{{cluster=\"pair\",destination=\"{proxy.Current.Clusters["pair"].Destinations[1].Address}\"}} 1\n", metrics);
    }

    private static ProxyHost Start(Upstreams upstreams, Action<ClusterConfig> configure)
    {
        var cluster = new ClusterConfig
        {
            Id = "pair",
            Destinations = [.. upstreams.Servers.Select(s => new DestinationConfig { Address = $"http://{s.EndPoint}" })],
        };
        configure(cluster);
        return ProxyHost.Start(new ProxyConfig
        {
            Listeners = [new ListenerConfig { Address = "127.0.0.1:0" }],
            Admin = new AdminConfig { Address = "127.0.0.1:0" },
            Routes = [new RouteConfig { Id = "r", Match = new RouteMatchConfig { Path = "/" }, Cluster = "pair" }],
            Clusters = [cluster],
        });
    }

    private static HttpClient Client(ProxyHost proxy) => new(new SocketsHttpHandler { UseProxy = false })
    {
        BaseAddress = new Uri($"http://{proxy.ListenEndPoints[0]}"),
        Timeout = TimeSpan.FromSeconds(30),
    };

    /// <summary>Sequential requests; each result is "status body".</summary>
    private static async Task<List<string>> SendAsync(HttpClient client, int count)
    {
        var results = new List<string>();
        for (int i = 0; i < count; i++)
        {
            using var response = await client.GetAsync("/who");
            results.Add($"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}".TrimEnd());
        }
        return results;
    }

    /// <summary>Real sockets, real time: poll the condition, bounded.</summary>
    private static Task WaitUntilAsync(Func<bool> condition, string what) => Eventually.UntilAsync(condition, what);

    /// <summary>A loopback port nothing listens on (bound, then released).</summary>
    private static int ClosedPort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private sealed class Upstreams(params NamedUpstream[] apps) : IAsyncDisposable
    {
        public SimpleHttpServer[] Servers { get; } = [.. apps.Select(app => SimpleHttpServer.Start(new IPEndPoint(IPAddress.Loopback, 0), app))];

        public async ValueTask DisposeAsync()
        {
            foreach (var server in Servers)
            {
                await server.StopAsync(TimeSpan.FromSeconds(1));
            }
        }
    }

    /// <summary>Answers /healthz with <see cref="HealthStatus"/> and anything else with <see cref="ServeStatus"/> and its name.</summary>
    private sealed class NamedUpstream(string name) : IHttpApplication
    {
        private volatile int _healthStatus = 200;
        private volatile int _serveStatus = 200;

        public int HealthStatus
        {
            get => _healthStatus;
            set => _healthStatus = value;
        }

        public int ServeStatus
        {
            get => _serveStatus;
            set => _serveStatus = value;
        }

        public async ValueTask ProcessAsync(HttpExchange exchange)
        {
            bool health = exchange.Request.PathSpan.SequenceEqual("/healthz"u8);
            var body = Encoding.ASCII.GetBytes(health ? "" : name);
            exchange.Response.StatusCode = health ? HealthStatus : ServeStatus;
            await exchange.StartResponseAsync(BodyFraming.ContentLength, body.Length);
            await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(body), flush: false);
            await exchange.CompleteResponseAsync();
        }
    }
}
