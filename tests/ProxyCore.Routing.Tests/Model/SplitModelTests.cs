using ProxyCore.Http;
using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;

namespace ProxyCore.Routing.Tests.Model;

public sealed class SplitModelTests
{
    private static RouteModel Route(List<SplitConfig> split, string? sticky = null)
    {
        var config = new ProxyConfig
        {
            Listeners = [new ListenerConfig { Address = "127.0.0.1:8080" }],
            Routes = [new RouteConfig { Id = "r", Match = new RouteMatchConfig { Path = "/" }, Cluster = "stable", Split = split, Sticky = sticky }],
            Clusters =
            [
                new ClusterConfig { Id = "stable", Destinations = [new DestinationConfig { Address = "http://127.0.0.1:9001" }] },
                new ClusterConfig { Id = "canary", Destinations = [new DestinationConfig { Address = "http://127.0.0.1:9002" }] },
                new ClusterConfig { Id = "beta", Destinations = [new DestinationConfig { Address = "http://127.0.0.1:9003" }] },
            ],
        };
        Assert.Empty(ProxyConfigLoader.Validate(config));
        return new ProxyState(config).Current.Routes.Routes[0];
    }

    private static RequestHead Request(params (string Name, string Value)[] headers)
    {
        var head = new RequestHead();
        head.Path = head.Append("/"u8);
        foreach (var (name, value) in headers)
        {
            head.AddHeader(System.Text.Encoding.ASCII.GetBytes(name), System.Text.Encoding.ASCII.GetBytes(value));
        }
        return head;
    }

    [Fact]
    public void Choose_90_10_SplitsWithinTolerance()
    {
        var route = Route([new SplitConfig { Cluster = "stable", Weight = 90 }, new SplitConfig { Cluster = "canary", Weight = 10 }]);
        var random = new Random(7);
        var request = Request();
        int canary = 0;
        const int n = 20_000;
        for (int i = 0; i < n; i++)
        {
            canary += route.Split!.Choose(request, random)!.Id == "canary" ? 1 : 0;
        }
        // Binomial(20000, 0.1): sd ≈ 42; ±5 sd.
        Assert.InRange(canary, 2000 - 212, 2000 + 212);
    }

    [Fact]
    public void Choose_HeaderAndCookieConditions_WinBeforeWeights()
    {
        var route = Route(
        [
            new SplitConfig { Cluster = "beta", When = new SplitWhenConfig { Header = "x-beta", Value = "1" } },
            new SplitConfig { Cluster = "canary", When = new SplitWhenConfig { Cookie = "canary" } },
            new SplitConfig { Cluster = "stable", Weight = 1 },
        ]);
        var random = new Random(1);
        Assert.Equal("beta", route.Split!.Choose(Request(("x-beta", "1")), random)!.Id);
        Assert.Equal("stable", route.Split.Choose(Request(("x-beta", "2")), random)!.Id);
        Assert.Equal("canary", route.Split.Choose(Request(("cookie", "a=b; canary=; c=d")), random)!.Id);
        Assert.Equal("stable", route.Split.Choose(Request(("cookie", "a=b; canaryx=1")), random)!.Id);
    }

    [Fact]
    public void Choose_Sticky_SameKeyAlwaysSameSide_KeysSpreadByWeight()
    {
        var route = Route([new SplitConfig { Cluster = "stable", Weight = 50 }, new SplitConfig { Cluster = "canary", Weight = 50 }], sticky: "cookie:session");
        var random = new Random(3);
        int canary = 0;
        for (int user = 0; user < 2000; user++)
        {
            var request = Request(("cookie", $"session=user-{user}"));
            string first = route.Split!.Choose(request, random)!.Id;
            for (int again = 0; again < 5; again++)
            {
                Assert.Equal(first, route.Split.Choose(request, random)!.Id);
            }
            canary += first == "canary" ? 1 : 0;
        }
        Assert.InRange(canary, 1000 - 112, 1000 + 112);
    }

    [Fact]
    public void Choose_AllocatesNothing()
    {
        var route = Route([new SplitConfig { Cluster = "stable", Weight = 9 }, new SplitConfig { Cluster = "canary", Weight = 1 }], sticky: "header:x-user");
        var request = Request(("x-user", "alice"));
        var random = new Random(5);
        Assert.Equal(0, Allocations.SteadyState(() => route.Split!.Choose(request, random), 1000, warmUps: 1000));
    }

    [Theory]
    [InlineData("""[ { "cluster": "nope", "weight": 1 } ]""", null, "$.routes[0].split[0].cluster")]
    [InlineData("""[ { "cluster": "canary", "weight": 0 } ]""", null, "$.routes[0].split")]
    [InlineData("""[ { "cluster": "canary", "when": { "header": "x", "cookie": "y" } } ]""", null, "$.routes[0].split[0].when")]
    [InlineData("""[ { "cluster": "canary", "weight": 1 } ]""", "\"ip\"", "$.routes[0].sticky")]
    public void Validate_SplitMistakes_AreNamedByPath(string split, string? sticky, string path)
    {
        string json = $$"""
            { "listeners": [ { "address": "127.0.0.1:8080" } ],
              "routes": [ { "id": "r", "match": { "path": "/" }, "cluster": "stable", "split": {{split}} {{(sticky is null ? "" : ", \"sticky\": " + sticky)}} } ],
              "clusters": [ { "id": "stable", "destinations": [ { "address": "http://127.0.0.1:9001" } ] },
                            { "id": "canary", "destinations": [ { "address": "http://127.0.0.1:9002" } ] } ] }
            """;
        var result = ProxyConfigLoader.Parse(json);
        Assert.Contains(result.Errors, e => e.Path == path);
    }
}
