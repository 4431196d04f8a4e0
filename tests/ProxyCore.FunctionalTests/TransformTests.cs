using System.Net;
using System.Text.Json;
using ProxyCore.Routing.Config;

namespace ProxyCore.FunctionalTests;

/// <summary>Route transforms over real sockets: what the mock upstream's /headers saw, and what the client got back.</summary>
[Collection(SerialCollection.Name)]
public sealed class TransformTests
{
    private static TestHost Start(TransformsConfig transforms, ForwardingConfig? forwarding = null, AuthConfig? auth = null) => TestHost.Start(url =>
    {
        var config = TestHost.DefaultConfig(url, b => b.ExtraRoutes.Add(new RouteConfig
        {
            Id = "api",
            Match = new RouteMatchConfig { Path = "/api/" },
            Cluster = "mock",
            Transforms = transforms,
            Auth = auth,
        }));
        if (forwarding is not null)
        {
            config.Forwarding = forwarding;
        }
        return config;
    });

    private sealed record Seen(string Path, string Query, List<(string Name, string Value)> Headers)
    {
        public string? Header(string name) => Headers.FirstOrDefault(h => string.Equals(h.Name, name, StringComparison.OrdinalIgnoreCase)).Value;

        public IEnumerable<string> All(string name) => Headers.Where(h => string.Equals(h.Name, name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value);
    }

    private static async Task<Seen> UpstreamSawAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var root = doc.RootElement;
        return new Seen(root.GetProperty("path").GetString()!, root.GetProperty("query").GetString()!,
            [.. root.GetProperty("headers").EnumerateArray().Select(p => (p[0].GetString()!, p[1].GetString()!))]);
    }

    [Fact]
    public async Task RequestTransforms_StripPrefixAndHeaders_UpstreamSeesRewrittenRequest()
    {
        await using var host = Start(new TransformsConfig
        {
            StripPrefix = "/api",
            SetRequestHeaders = new Dictionary<string, string> { ["x-env"] = "prod", ["x-client"] = "{client_ip}/{route}" },
            AddRequestHeaders = new Dictionary<string, string> { ["x-tag"] = "proxy" },
            RemoveRequestHeaders = ["x-debug"],
        });
        using var client = host.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/headers?x=1");
        request.Headers.Add("x-env", "dev");
        request.Headers.Add("x-debug", "1");
        request.Headers.Add("x-tag", "client");

        var seen = await UpstreamSawAsync(await client.SendAsync(request));

        Assert.Equal("/headers", seen.Path);
        Assert.Equal("?x=1", seen.Query);
        Assert.Equal(["prod"], seen.All("x-env"));
        Assert.Equal("127.0.0.1/api", seen.Header("x-client"));
        Assert.Equal(["client", "proxy"], seen.All("x-tag"));
        Assert.Null(seen.Header("x-debug"));
    }

    [Fact]
    public async Task RequestTransforms_PathRegexAndAddPrefix_UpstreamSeesRewrittenPath()
    {
        // "/api/v2/headers" → strip → "/v2/headers" → regex → "/headers" (the mock's endpoint), addPrefix is checked on a non-matching path.
        await using var host = Start(new TransformsConfig
        {
            StripPrefix = "/api",
            PathRegex = new PathRegexConfig { Pattern = @"^/v\d+(/.*)$", Replacement = "$1" },
        });
        using var client = host.CreateClient();
        var seen = await UpstreamSawAsync(await client.GetAsync("/api/v2/headers"));
        Assert.Equal("/headers", seen.Path);

        await using var prefixed = Start(new TransformsConfig { StripPrefix = "/api", AddPrefix = "/status" });
        using var prefixedClient = prefixed.CreateClient();
        var response = await prefixedClient.GetAsync("/api/418");
        Assert.Equal((HttpStatusCode)418, response.StatusCode); // the mock answered /status/418
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Host_Transform_WinsOverPreserveHost_XForwardedHostKeepsClients(bool preserveHost)
    {
        await using var host = Start(new TransformsConfig { StripPrefix = "/api", Host = "internal.svc:8443" },
            new ForwardingConfig { PreserveHost = preserveHost });
        using var client = host.CreateClient();
        var seen = await UpstreamSawAsync(await client.GetAsync("/api/headers"));
        Assert.Equal("internal.svc:8443", seen.Header("host"));
        Assert.Equal(host.ProxyEndPoint.ToString(), seen.Header("x-forwarded-host"));
    }

    [Fact]
    public async Task ResponseTransforms_SetAddRemove_ClientSeesRewrittenHeaders()
    {
        await using var host = Start(new TransformsConfig
        {
            StripPrefix = "/api",
            RemoveResponseHeaders = ["content-type"],
            SetResponseHeaders = new Dictionary<string, string> { ["cache-control"] = "no-store" },
            AddResponseHeaders = new Dictionary<string, string> { ["x-route"] = "{route}" },
        });
        using var client = host.CreateClient();
        var response = await client.GetAsync("/api/bytes/10");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        Assert.Equal("api", response.Headers.GetValues("x-route").Single());
        Assert.Null(response.Content.Headers.ContentType);
        Assert.Equal(10, (await response.Content.ReadAsByteArrayAsync()).Length); // framing untouched

        // Routes without transforms are untouched.
        var plain = await client.GetAsync("/bytes/10");
        Assert.False(plain.Headers.Contains("x-route"));
    }

    [Fact]
    public async Task Consumer_Variable_FromApiKeyAuth()
    {
        await using var host = Start(
            new TransformsConfig { StripPrefix = "/api", SetRequestHeaders = new Dictionary<string, string> { ["x-caller"] = "consumer:{consumer}" } },
            auth: new AuthConfig { ApiKeys = [new ApiKeyConfig { Consumer = "mobile", Key = "mobile-key-0123456789abcdef" }] });
        using var client = host.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/headers");
        request.Headers.Add("x-api-key", "mobile-key-0123456789abcdef");
        var seen = await UpstreamSawAsync(await client.SendAsync(request));
        Assert.Equal("consumer:mobile", seen.Header("x-caller"));
        Assert.Equal("mobile", seen.Header("x-consumer"));
    }
}
