using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ProxyCore.Routing.Config;
using System.Text;
using System.Text.Json;

namespace ProxyCore.FunctionalTests;

/// <summary>HTTP/2 clients (h2c by prior knowledge) through the proxy to the HTTP/1.1 mock upstream.</summary>
[Collection(SerialCollection.Name)]
public sealed class Http2ProxyTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static HttpClient CreateH2Client(TestHost host) => new(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false })
    {
        BaseAddress = host.BaseUri,
        Timeout = Timeout,
        DefaultRequestVersion = HttpVersion.Version20,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };

    private static HttpRequestMessage H2(HttpMethod method, string path) => new(method, path)
    {
        Version = HttpVersion.Version20,
        VersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };

    [Fact]
    public async Task Get_OverH2c_ReturnsUpstreamAnswer()
    {
        await using var host = TestHost.Start();
        using var client = CreateH2Client(host);
        using var response = await client.SendAsync(H2(HttpMethod.Get, "/hello?x=1"));
        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var request = json.RootElement.GetProperty("request");
        Assert.Equal("GET", request.GetProperty("method").GetString());
        Assert.Equal("/hello", request.GetProperty("path").GetString());
        Assert.Equal("?x=1", request.GetProperty("query").GetString());
    }

    [Fact]
    public async Task PostEcho_OneMebibyte_ComesBackWhole()
    {
        await using var host = TestHost.Start();
        using var client = CreateH2Client(host);
        var body = new byte[1024 * 1024];
        new Random(7).NextBytes(body);
        using var message = H2(HttpMethod.Post, "/echo");
        message.Content = new ByteArrayContent(body);
        using var response = await client.SendAsync(message);
        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(body, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task PostEcho_StreamedWithoutLength_ComesBackWhole()
    {
        await using var host = TestHost.Start();
        using var client = CreateH2Client(host);
        var body = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("streamed body ", 20_000)));
        using var message = H2(HttpMethod.Post, "/echo");
        message.Content = new StreamContent(new NonSeekableStream(body));
        using var response = await client.SendAsync(message);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(body, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task ConcurrentRequests_FiftyOnOneConnection_AllAnswered()
    {
        await using var host = TestHost.Start();
        using var client = CreateH2Client(host);
        var tasks = Enumerable.Range(0, 50).Select(async i =>
        {
            using var response = await client.SendAsync(H2(HttpMethod.Get, $"/bytes/{1000 + (i * 997)}"));
            Assert.Equal(HttpVersion.Version20, response.Version);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return (await response.Content.ReadAsByteArrayAsync()).Length;
        }).ToArray();
        var lengths = await Task.WhenAll(tasks).WaitAsync(Timeout);
        for (int i = 0; i < 50; i++)
        {
            Assert.Equal(1000 + (i * 997), lengths[i]);
        }
    }

    [Fact]
    public async Task LargeDownload_BeyondTheInitialWindow_NeedsClientWindowUpdates()
    {
        await using var host = TestHost.Start();
        using var client = CreateH2Client(host);
        using var response = await client.SendAsync(H2(HttpMethod.Get, "/bytes/3000000?chunked=1"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(3_000_000, (await response.Content.ReadAsByteArrayAsync()).Length);
    }

    [Fact]
    public async Task ResponseTrailers_ArriveAsHttp2Trailers()
    {
        await using var host = TestHost.Start();
        using var client = CreateH2Client(host);
        using var message = H2(HttpMethod.Get, "/trailers");
        message.Headers.TryAddWithoutValidation("TE", "trailers");
        using var response = await client.SendAsync(message);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("hello, trailers\n", await response.Content.ReadAsStringAsync());
        Assert.Equal("c0ffee", response.TrailingHeaders.GetValues("x-checksum").Single());
    }

    [Fact]
    public async Task NoRoute_Returns404WithReason()
    {
        await using var host = TestHost.Start(url => new ProxyConfig
        {
            Listeners = [new ListenerConfig { Address = "127.0.0.1:0" }],
            Admin = new AdminConfig { Enabled = false },
            Routes = [new RouteConfig { Id = "api", Match = new RouteMatchConfig { Path = "/api/" }, Cluster = "c" }],
            Clusters = [new ClusterConfig { Id = "c", Destinations = [new DestinationConfig { Address = url }] }],
        });
        using var client = CreateH2Client(host);
        using var response = await client.SendAsync(H2(HttpMethod.Get, "/other"));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("no-route", response.Headers.GetValues("proxycore-error").Single());
        // The stream ended; the connection serves the next request.
        using var ok = await client.SendAsync(H2(HttpMethod.Get, "/api/x"));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task UpstreamRefuses_Returns502()
    {
        int closedPort = FreePort();
        await using var host = TestHost.Start(_ => TestHost.DefaultConfig($"http://127.0.0.1:{closedPort}"));
        using var client = CreateH2Client(host);
        using var response = await client.SendAsync(H2(HttpMethod.Get, "/"));
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("upstream-connect-failed", response.Headers.GetValues("proxycore-error").Single());
    }

    [Fact]
    public async Task Http1Client_OnTheSameListener_StillServed()
    {
        await using var host = TestHost.Start();
        using var client = host.CreateClient();
        using var response = await client.GetAsync("/hello");
        Assert.Equal(HttpVersion.Version11, response.Version);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [ToolFact("curl", "curl")]
    public async Task Curl_Http2PriorKnowledge_GetsUpstreamAnswer()
    {
        await using var host = TestHost.Start();
        var start = new ProcessStartInfo("curl", $"-sS --http2-prior-knowledge -o - -w \"\\n%{{http_version}} %{{http_code}}\" {host.BaseUri}hello?from=curl")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(Timeout);
        string text = await output;
        Assert.True(process.ExitCode == 0, await error);
        Assert.EndsWith("2 200", text);
        Assert.Contains("\"query\":\"?from=curl\"", text);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Hides the length so the client streams the body without content-length.</summary>
    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
