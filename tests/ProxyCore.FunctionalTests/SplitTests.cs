using System.Net;
using ProxyCore.Routing.Config;

namespace ProxyCore.FunctionalTests;

/// <summary>Canary splits through the proxy: the canary cluster answers 418, the stable one 200.</summary>
[Collection(SerialCollection.Name)]
public sealed class SplitTests
{
    private static TestHost Start(FailingUpstream canary, string? sticky = null) => TestHost.Start(url =>
    {
        var config = TestHost.DefaultConfig(url);
        config.Clusters = [.. config.Clusters, new ClusterConfig { Id = "canary", Destinations = [new DestinationConfig { Address = canary.Url }] }];
        config.Routes[0].Split =
        [
            new SplitConfig { Cluster = "canary", When = new SplitWhenConfig { Header = "x-canary", Value = "always" } },
            new SplitConfig { Cluster = "mock", Weight = 80 },
            new SplitConfig { Cluster = "canary", Weight = 20 },
        ];
        config.Routes[0].Sticky = sticky;
        return config;
    });

    [Fact]
    public async Task WeightedSplit_SendsAboutTheConfiguredShare_AndAHeaderForcesTheCanary()
    {
        await using var canary = new FailingUpstream(418);
        await using var host = Start(canary);
        using var client = host.CreateClient();
        int teapots = 0;
        const int n = 600;
        for (int i = 0; i < n; i++)
        {
            teapots += (await client.GetAsync("/bytes/1")).StatusCode == (HttpStatusCode)418 ? 1 : 0;
        }
        // Binomial(600, 0.2): sd ≈ 9.8; ±5 sd.
        Assert.InRange(teapots, 120 - 49, 120 + 49);

        for (int i = 0; i < 20; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/bytes/1");
            request.Headers.Add("x-canary", "always");
            Assert.Equal((HttpStatusCode)418, (await client.SendAsync(request)).StatusCode);
        }
    }

    [Fact]
    public async Task StickySplit_KeepsEachUserOnOneSide()
    {
        await using var canary = new FailingUpstream(418);
        await using var host = Start(canary, sticky: "header:x-user");
        using var client = host.CreateClient();
        for (int user = 0; user < 30; user++)
        {
            var seen = new HashSet<HttpStatusCode>();
            for (int i = 0; i < 5; i++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, "/bytes/1");
                request.Headers.Add("x-user", $"user-{user}");
                seen.Add((await client.SendAsync(request)).StatusCode);
            }
            Assert.Single(seen);
        }
    }
}
