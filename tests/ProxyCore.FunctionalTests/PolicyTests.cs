using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ProxyCore.Routing.Config;

namespace ProxyCore.FunctionalTests;

/// <summary>Route policies over real sockets: API keys, JWT bearer tokens, rate limits.</summary>
[Collection(SerialCollection.Name)]
public sealed class PolicyTests
{
    private const string MobileKey = "mobile-key-0123456789abcdef";
    private static readonly byte[] s_secret = RandomNumberGenerator.GetBytes(32);

    private static TestHost Start(AuthConfig? auth = null, RateLimitConfig? rateLimit = null) => TestHost.Start(url =>
    {
        var config = TestHost.DefaultConfig(url);
        config.Routes[0].Auth = auth;
        config.Routes[0].RateLimit = rateLimit;
        return config;
    });

    private static Dictionary<string, string> UpstreamHeaders(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var pair in doc.RootElement.GetProperty("headers").EnumerateArray())
        {
            result[pair[0].GetString()!] = pair[1].GetString()!;
        }
        return result;
    }

    [Fact]
    public async Task ApiKey_ValidKeyPasses_ConsumerReachesUpstream_SpoofedConsumerIsReplaced()
    {
        await using var host = Start(new AuthConfig { ApiKeys = [new ApiKeyConfig { Consumer = "mobile", Key = MobileKey }] });
        using var client = host.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/headers");
        request.Headers.Add("x-api-key", MobileKey);
        request.Headers.Add("x-consumer", "admin");
        var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("mobile", UpstreamHeaders(await response.Content.ReadAsStringAsync())["x-consumer"]);
    }

    [Theory]
    [InlineData(null, "missing-credentials")]
    [InlineData("wrong-key-0123456789abcdef", "invalid-credentials")]
    [InlineData("mobile-key-0123456789abcde", "invalid-credentials")]
    public async Task ApiKey_MissingOrWrong_Gets401WithChallenge(string? key, string reason)
    {
        await using var host = Start(new AuthConfig { ApiKeys = [new ApiKeyConfig { Consumer = "mobile", Key = MobileKey }] });
        using var client = host.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/headers");
        if (key is not null)
        {
            request.Headers.Add("x-api-key", key);
        }
        var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal(reason, response.Headers.GetValues("proxycore-error").Single());
        Assert.StartsWith("ApiKey", response.Headers.WwwAuthenticate.ToString());
    }

    [Fact]
    public async Task ApiKey_FromEnvironmentAndQuery()
    {
        Environment.SetEnvironmentVariable("PROXYCORE_TEST_KEY", "env-key-0123456789abcdef");
        await using var host = Start(new AuthConfig { ApiKeys = [new ApiKeyConfig { Consumer = "svc", Key = "env:PROXYCORE_TEST_KEY" }], Query = "api_key" });
        using var client = host.CreateClient();
        var response = await client.GetAsync("/headers?x=1&api_key=env-key-0123456789abcdef");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("svc", UpstreamHeaders(await response.Content.ReadAsStringAsync())["x-consumer"]);
    }

    private static string WriteJwks()
    {
        var path = Path.Combine(Path.GetTempPath(), $"proxycore-jwks-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, $$"""{ "keys": [ { "kty": "oct", "kid": "k1", "alg": "HS256", "k": "{{Base64Url(s_secret)}}" } ] }""");
        return path;
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static string Mint(string claimsJson, string kid = "k1")
    {
        string header = Base64Url(Encoding.UTF8.GetBytes($$"""{"alg":"HS256","typ":"JWT","kid":"{{kid}}"}"""));
        string payload = Base64Url(Encoding.UTF8.GetBytes(claimsJson));
        string signature = Base64Url(HMACSHA256.HashData(s_secret, Encoding.ASCII.GetBytes(header + "." + payload)));
        return $"{header}.{payload}.{signature}";
    }

    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    [Fact]
    public async Task Jwt_ValidToken_Passes_WithTheSubjectAsConsumer_ExpiredOrForeignIsRefused()
    {
        var auth = new AuthConfig { Jwt = new JwtConfig { Jwks = WriteJwks(), Issuer = "https://issuer.test", Audience = "api" } };
        await using var host = Start(auth);
        using var client = host.CreateClient();

        async Task<HttpResponseMessage> SendAsync(string token)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/headers");
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            return await client.SendAsync(request);
        }

        var ok = await SendAsync(Mint($$"""{"sub":"alice","iss":"https://issuer.test","aud":["web","api"],"exp":{{Now + 300}}}"""));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal("alice", UpstreamHeaders(await ok.Content.ReadAsStringAsync())["x-consumer"]);

        var expired = await SendAsync(Mint($$"""{"sub":"alice","iss":"https://issuer.test","aud":"api","exp":{{Now - 3600}}}"""));
        Assert.Equal(HttpStatusCode.Unauthorized, expired.StatusCode);
        Assert.Contains("error=\"invalid_token\"", expired.Headers.WwwAuthenticate.ToString());

        var otherIssuer = await SendAsync(Mint($$"""{"sub":"alice","iss":"https://evil.test","aud":"api","exp":{{Now + 300}}}"""));
        Assert.Equal(HttpStatusCode.Unauthorized, otherIssuer.StatusCode);

        string token = Mint($$"""{"sub":"alice","iss":"https://issuer.test","aud":"api","exp":{{Now + 300}}}""");
        var tampered = await SendAsync(token[..^2] + (token[^2] == 'A' ? "B" : "A") + token[^1]);
        Assert.Equal(HttpStatusCode.Unauthorized, tampered.StatusCode);

        var none = await client.GetAsync("/headers");
        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        Assert.StartsWith("Bearer", none.Headers.WwwAuthenticate.ToString());
    }

    [Fact]
    public async Task RateLimit_BurstThen429WithRetryAfterAndRateLimitHeaders_KeysIsolated()
    {
        await using var host = Start(rateLimit: new RateLimitConfig { RequestsPerSecond = 0.5, Burst = 3, By = "header:x-tenant" });
        using var client = host.CreateClient();

        async Task<HttpResponseMessage> SendAsync(string tenant)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/bytes/1");
            request.Headers.Add("x-tenant", tenant);
            return await client.SendAsync(request);
        }

        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await SendAsync("a")).StatusCode);
        }
        var limited = await SendAsync("a");
        Assert.Equal((HttpStatusCode)429, limited.StatusCode);
        Assert.Equal("rate-limited", limited.Headers.GetValues("proxycore-error").Single());
        int retryAfter = int.Parse(limited.Headers.GetValues("Retry-After").Single());
        Assert.InRange(retryAfter, 1, 2);
        Assert.Equal("3", limited.Headers.GetValues("RateLimit-Limit").Single());
        Assert.Equal("0", limited.Headers.GetValues("RateLimit-Remaining").Single());
        Assert.True(limited.Headers.Contains("RateLimit-Reset"));
        // Another tenant has its own bucket.
        Assert.Equal(HttpStatusCode.OK, (await SendAsync("b")).StatusCode);
    }

    [Fact]
    public async Task RateLimit_ByConsumer_CountsPerApiKeyConsumer()
    {
        var auth = new AuthConfig { ApiKeys = [new ApiKeyConfig { Consumer = "one", Key = "key-one-0123456789abcdef" }, new ApiKeyConfig { Consumer = "two", Key = "key-two-0123456789abcdef" }] };
        await using var host = Start(auth, new RateLimitConfig { RequestsPerSecond = 0.1, Burst = 1, By = "consumer" });
        using var client = host.CreateClient();

        async Task<HttpStatusCode> SendAsync(string key)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/bytes/1");
            request.Headers.Add("x-api-key", key);
            return (await client.SendAsync(request)).StatusCode;
        }

        Assert.Equal(HttpStatusCode.OK, await SendAsync("key-one-0123456789abcdef"));
        Assert.Equal((HttpStatusCode)429, await SendAsync("key-one-0123456789abcdef"));
        Assert.Equal(HttpStatusCode.OK, await SendAsync("key-two-0123456789abcdef"));
    }

    [Fact]
    public async Task Allow_AuthenticatedButNotListedConsumer_Gets403()
    {
        await using var host = Start(new AuthConfig
        {
            ApiKeys = [new ApiKeyConfig { Consumer = "mobile", Key = MobileKey }, new ApiKeyConfig { Consumer = "batch", Key = "batch-key-0123456789abcdef" }],
            Allow = ["mobile"],
        });
        using var client = host.CreateClient();
        async Task<HttpStatusCode> SendAsync(string key)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/bytes/1");
            request.Headers.Add("x-api-key", key);
            return (await client.SendAsync(request)).StatusCode;
        }
        Assert.Equal(HttpStatusCode.OK, await SendAsync(MobileKey));
        Assert.Equal(HttpStatusCode.Forbidden, await SendAsync("batch-key-0123456789abcdef"));
        Assert.Equal(HttpStatusCode.Unauthorized, await SendAsync("nobody-key-0123456789abcdef"));
    }

    [Fact]
    public async Task Jwt_RS256WithAnInlinePemKey_Passes()
    {
        using var rsa = RSA.Create(2048);
        await using var host = Start(new AuthConfig { Jwt = new JwtConfig { PublicKey = rsa.ExportSubjectPublicKeyInfoPem() } });
        string header = Base64Url(Encoding.UTF8.GetBytes("""{"alg":"RS256","typ":"JWT"}"""));
        string payload = Base64Url(Encoding.UTF8.GetBytes($$"""{"sub":"svc-7","exp":{{Now + 300}}}"""));
        string signature = Base64Url(rsa.SignData(Encoding.ASCII.GetBytes(header + "." + payload), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
        using var client = host.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/headers");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", $"{header}.{payload}.{signature}");
        var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("svc-7", UpstreamHeaders(await response.Content.ReadAsStringAsync())["x-consumer"]);
    }

    [Fact]
    public void Validation_NamesEachPolicyErrorByItsPath()
    {
        var result = ProxyConfigLoader.Parse("""
            { "listeners": [ { "address": "127.0.0.1:8080" } ],
              "routes": [ { "id": "r", "match": { "path": "/" }, "cluster": "c",
                            "auth": { "apiKeys": [ { "consumer": "", "key": "short" }, { "consumer": "x", "key": "env:PROXYCORE_SURELY_UNSET_VAR" } ],
                                      "jwt": { "jwks": "/nonexistent/jwks.json" } },
                            "rateLimit": { "requestsPerSecond": 0, "by": "claim:" } } ],
              "clusters": [ { "id": "c", "destinations": [ { "address": "http://127.0.0.1:9000" } ] } ] }
            """);
        var paths = result.Errors.Select(e => e.Path).ToHashSet();
        Assert.Contains("$.routes[0].auth.apiKeys[0].consumer", paths);
        Assert.Contains("$.routes[0].auth.apiKeys[0].key", paths);
        Assert.Contains("$.routes[0].auth.apiKeys[1].key", paths);
        Assert.Contains("$.routes[0].auth.jwt.jwks", paths);
        var both = ProxyConfigLoader.Parse("""
            { "listeners": [ { "address": "127.0.0.1:8080" } ],
              "routes": [ { "id": "r", "match": { "path": "/" }, "cluster": "c",
                            "auth": { "jwt": { "jwks": "a.json", "publicKey": "-----BEGIN PUBLIC KEY-----" }, "allow": [] } } ],
              "clusters": [ { "id": "c", "destinations": [ { "address": "http://127.0.0.1:9000" } ] } ] }
            """);
        Assert.Contains(both.Errors, e => e.Path == "$.routes[0].auth.jwt");
        Assert.Contains(both.Errors, e => e.Path == "$.routes[0].auth.allow");
        Assert.Contains("$.routes[0].rateLimit.requestsPerSecond", paths);
        Assert.Contains("$.routes[0].rateLimit.by", paths);
    }
}
