using System.Net;
using System.Net.Sockets;
using System.Text;
using ProxyCore.Routing.Config;
using ProxyCore.Server;

namespace ProxyCore.FunctionalTests;

/// <summary>
/// A mock upstream and a proxy in front of it, both on real loopback sockets with ephemeral ports.
/// </summary>
public sealed class TestHost : IAsyncDisposable
{
    private TestHost(SimpleHttpServer upstream, ProxyHost proxy)
    {
        Upstream = upstream;
        Proxy = proxy;
    }

    internal SimpleHttpServer Upstream { get; }

    public ProxyHost Proxy { get; }

    public IPEndPoint ProxyEndPoint => Proxy.ListenEndPoints[0];

    public Uri BaseUri => new($"http://{ProxyEndPoint}");

    public Uri AdminUri => new($"http://{Proxy.AdminEndPoint}");

    public static TestHost Start(Func<string, ProxyConfig>? configure = null, Stream? accessLog = null, ProxyCore.Http.IHttpApplication? upstreamApplication = null,
        Random? mirrorRandom = null)
    {
        var upstream = SimpleHttpServer.Start(new IPEndPoint(IPAddress.Loopback, 0), upstreamApplication ?? new MockUpstream());
        string upstreamUrl = $"http://{upstream.EndPoint}";
        var config = configure?.Invoke(upstreamUrl) ?? DefaultConfig(upstreamUrl);
        return new TestHost(upstream, ProxyHost.Start(config, accessLog, mirrorRandom));
    }

    public static ProxyConfig DefaultConfig(string upstreamUrl, Action<ProxyConfigBuilder>? tweak = null)
    {
        var builder = new ProxyConfigBuilder(upstreamUrl);
        tweak?.Invoke(builder);
        return builder.Build();
    }

    public HttpClient CreateClient(Version? version = null) => new(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false })
    {
        BaseAddress = BaseUri,
        Timeout = TimeSpan.FromSeconds(60),
        DefaultRequestVersion = version ?? HttpVersion.Version11,
    };

    /// <summary>Sends raw bytes on a new connection and reads until the server closes or the timeout.</summary>
    public async Task<string> SendRawAsync(string request, TimeSpan? timeout = null, bool halfClose = false)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(ProxyEndPoint);
        await socket.SendAsync(Encoding.Latin1.GetBytes(request));
        if (halfClose)
        {
            socket.Shutdown(SocketShutdown.Send);
        }
        return await ReadToCloseAsync(socket, timeout ?? TimeSpan.FromSeconds(10));
    }

    public static async Task<string> ReadToCloseAsync(Socket socket, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                int n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0)
                {
                    break;
                }
                received.Write(buffer, 0, n);
            }
        }
        catch (OperationCanceledException)
        {
            received.Write("<<timeout>>"u8);
        }
        catch (SocketException)
        {
            received.Write("<<reset>>"u8);
        }
        return Encoding.Latin1.GetString(received.ToArray());
    }

    public async ValueTask DisposeAsync()
    {
        await Proxy.StopAsync(TimeSpan.FromSeconds(2));
        await Upstream.StopAsync(TimeSpan.FromSeconds(1));
    }
}

/// <summary>Builds test configs: one route "/" to the mock, with knobs.</summary>
public sealed class ProxyConfigBuilder
{
    private readonly string _upstreamUrl;

    public ProxyConfigBuilder(string upstreamUrl) => _upstreamUrl = upstreamUrl;

    public List<RouteConfig> ExtraRoutes { get; } = [];

    public List<ClusterConfig> ExtraClusters { get; } = [];

    public TimeSpan? RouteTimeout { get; set; }

    public LimitsConfig Limits { get; set; } = new();

    public bool AccessLog { get; set; }

    public TransportConfig Transport { get; set; } = new();

    public ProxyConfig Build() => new()
    {
        Listeners = [new ListenerConfig { Address = "127.0.0.1:0" }],
        Admin = new AdminConfig { Address = "127.0.0.1:0" },
        Routes = [.. ExtraRoutes, new RouteConfig { Id = "mock", Match = new RouteMatchConfig { Path = "/" }, Cluster = "mock", Timeout = RouteTimeout }],
        Clusters = [.. ExtraClusters, new ClusterConfig { Id = "mock", Destinations = [new DestinationConfig { Address = _upstreamUrl }] }],
        Limits = Limits,
        AccessLog = new AccessLogConfig { Enabled = AccessLog },
        Transport = Transport,
    };
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection
{
    public const string Name = "serial";
}
