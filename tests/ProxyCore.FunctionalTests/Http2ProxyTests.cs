using System.Diagnostics;
using System.Net;
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
}
