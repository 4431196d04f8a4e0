using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using ProxyCore.Routing.Config;

namespace ProxyCore.FunctionalTests;

/// <summary>The per-route and per-cluster series of /metrics, read from the admin listener after real traffic.</summary>
[Collection(SerialCollection.Name)]
public sealed class MetricsTests
{
    private const string Key = "metrics-key-0123456789abcdef";

    private static TestHost Start(string deadDestination) => TestHost.Start(url =>
    {
        var config = TestHost.DefaultConfig(url, b =>
        {
            b.ExtraRoutes.Add(new RouteConfig
            {
                Id = "keyed",
                Match = new RouteMatchConfig { Path = "/keyed/" },
                Cluster = "mock",
                Auth = new AuthConfig { ApiKeys = [new ApiKeyConfig { Consumer = "a", Key = Key }], Allow = ["a"] },
                RateLimit = new RateLimitConfig { RequestsPerSecond = 0.001, Burst = 2 },
                Transforms = new TransformsConfig { StripPrefix = "/keyed" },
            });
            b.ExtraRoutes.Add(new RouteConfig
            {
                Id = "retried",
                Match = new RouteMatchConfig { Path = "/retried/" },
                Cluster = "flaky",
                Retry = new RetryConfig { Attempts = 2, On = [JsonSerializer.SerializeToElement("connect-failure", JsonContext.Default.String)], Backoff = TimeSpan.Zero, MaxBackoff = TimeSpan.Zero },
                Transforms = new TransformsConfig { StripPrefix = "/retried" },
            });
            b.ExtraClusters.Add(new ClusterConfig
            {
                Id = "flaky",
                LoadBalancing = "round-robin",
                Destinations = [new DestinationConfig { Address = deadDestination }, new DestinationConfig { Address = url }],
            });
        });
        return config;
    });

    /// <summary>/metrics once the proxy has counted <paramref name="requests"/> answers: see <see cref="Eventually.MetricsAfterAsync"/>.</summary>
    internal static Task<string> MetricsAfterAsync(TestHost host, long requests) => Eventually.MetricsAfterAsync(host.AdminUri, requests);

    private static long Value(string metrics, string series)
    {
        var match = Regex.Match(metrics, "^" + Regex.Escape(series) + " (\\d+)$", RegexOptions.Multiline);
        Assert.True(match.Success, $"series {series} missing from:\n{metrics}");
        return long.Parse(match.Groups[1].Value);
    }

    [Fact]
    public async Task Metrics_PerRouteAndPerCluster_CountRejectionsRetriesAndLatency()
    {
        await using var host = Start($"http://127.0.0.1:{ProxyProcess.FreePort()}");
        using var client = host.CreateClient();

        // keyed: 1 missing key, 2 wrong keys, 2 allowed (the burst), then 3 rate-limited.
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/keyed/bytes/1")).StatusCode);
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await Send(client, "/keyed/bytes/1", "wrong-key-0123456789abcdefgh")).StatusCode);
        }
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await Send(client, "/keyed/bytes/1", Key)).StatusCode);
        }
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, (await Send(client, "/keyed/bytes/1", Key)).StatusCode);
        }
        // retried: round-robin over (dead, live), and the retry's pick advances the rotation too, so
        // every first try lands on the dead destination and is retried once on the live one.
        for (int i = 0; i < 6; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/retried/bytes/2")).StatusCode);
        }
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/bytes/3")).StatusCode);

        string metrics = await MetricsAfterAsync(host, 15);
        Assert.Equal(1, Value(metrics, "proxycore_auth_rejections_total{route=\"keyed\",reason=\"missing-credentials\"}"));
        Assert.Equal(2, Value(metrics, "proxycore_auth_rejections_total{route=\"keyed\",reason=\"invalid-credentials\"}"));
        Assert.Equal(0, Value(metrics, "proxycore_auth_rejections_total{route=\"keyed\",reason=\"consumer-not-allowed\"}"));
        Assert.Equal(3, Value(metrics, "proxycore_rate_limit_rejections_total{route=\"keyed\"}"));
        Assert.Equal(0, Value(metrics, "proxycore_rate_limit_rejections_total{route=\"retried\"}"));
        Assert.Equal(6, Value(metrics, "proxycore_upstream_retries_total{route=\"retried\",cluster=\"flaky\"}"));
        Assert.DoesNotContain("proxycore_upstream_retries_total{route=\"mock\"", metrics);

        // Latency: one histogram per route (every answer, rejections included) and per cluster (answers from upstream).
        Assert.Equal(8, Value(metrics, "proxycore_request_duration_seconds_count{route=\"keyed\"}"));
        Assert.Equal(6, Value(metrics, "proxycore_request_duration_seconds_count{route=\"retried\"}"));
        Assert.Equal(1, Value(metrics, "proxycore_request_duration_seconds_count{route=\"mock\"}"));
        Assert.Equal(8, Value(metrics, "proxycore_request_duration_seconds_bucket{route=\"keyed\",le=\"+Inf\"}"));
        Assert.Equal(6, Value(metrics, "proxycore_upstream_duration_seconds_count{cluster=\"flaky\"}"));
        Assert.Equal(3, Value(metrics, "proxycore_upstream_duration_seconds_count{cluster=\"mock\"}"));
        Assert.Matches("proxycore_upstream_duration_seconds_sum\\{cluster=\"flaky\"\\} [0-9.]+\n", metrics);
        Assert.Equal(2, Value(metrics, "proxycore_requests_total{route=\"keyed\",status=\"200\"}"));
        Assert.Equal(3, Value(metrics, "proxycore_requests_total{route=\"keyed\",status=\"429\"}"));
    }

    [Fact]
    public async Task Metrics_ConsumerNotAllowed_CountsAsAuthRejection()
    {
        await using var host = TestHost.Start(url =>
        {
            var config = TestHost.DefaultConfig(url);
            config.Routes[0].Auth = new AuthConfig { ApiKeys = [new ApiKeyConfig { Consumer = "b", Key = Key }], Allow = ["a"] };
            return config;
        });
        using var client = host.CreateClient();
        Assert.Equal(HttpStatusCode.Forbidden, (await Send(client, "/bytes/1", Key)).StatusCode);
        string metrics = await MetricsAfterAsync(host, 1);
        Assert.Equal(1, Value(metrics, "proxycore_auth_rejections_total{route=\"mock\",reason=\"consumer-not-allowed\"}"));
        Assert.Equal(1, Value(metrics, "proxycore_requests_total{route=\"mock\",status=\"403\"}"));
    }

    private static async Task<HttpResponseMessage> Send(HttpClient client, string path, string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("x-api-key", key);
        return await client.SendAsync(request);
    }
}
