using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;
using static ProxyCore.Routing.Tests.TestConfigs;

namespace ProxyCore.Routing.Tests;

public class RouteTableTests
{
    private static RouteTable Table(params RouteConfig[] routes)
    {
        var config = ConfigOf(routes);
        Assert.Empty(ProxyConfigLoader.Validate(config));
        return ProxySnapshot.Build(config).Routes;
    }

    private static RouteTable HostTable() => Table(
        Route("exact", "/", hosts: ["api.example.com"]),
        Route("wild", "/", hosts: ["*.example.com"]),
        Route("wild-deeper", "/", hosts: ["*.eu.example.com"]),
        Route("any", "/"));

    [Theory]
    [InlineData("api.example.com", "exact")]
    [InlineData("API.Example.COM", "exact")]
    [InlineData("api.example.com:8080", "exact")]
    [InlineData("api.example.com.", "exact")]
    [InlineData("www.example.com", "wild")]
    [InlineData("a.b.example.com", "wild")]
    [InlineData("x.eu.example.com", "wild-deeper")]
    [InlineData("X.EU.example.com:443", "wild-deeper")]
    [InlineData("example.com", "any")]
    [InlineData("notexample.com", "any")]
    [InlineData("example.com.evil", "any")]
    [InlineData(".example.com", "any")]
    [InlineData("", "any")]
    [InlineData("[::1]:8080", "any")]
    public void Match_Hosts_ExactBeatsLongestWildcardBeatsAny(string authority, string expected)
    {
        Assert.Equal(expected, HostTable().Match(Request(authority, "/x"))?.Id);
    }

    [Fact]
    public void Match_HostBucketWithoutPath_FallsThroughToWildcardThenAny()
    {
        var table = Table(
            Route("exact-api", "/api/", hosts: ["a.example.com"]),
            Route("wild-static", "/static/", hosts: ["*.example.com"]),
            Route("any", "/"));

        Assert.Equal("exact-api", table.Match(Request("a.example.com", "/api/v1"))?.Id);
        Assert.Equal("wild-static", table.Match(Request("a.example.com", "/static/x.css"))?.Id);
        Assert.Equal("any", table.Match(Request("a.example.com", "/other"))?.Id);
    }

    [Fact]
    public void Match_NoRouteForHost_ReturnsNull()
    {
        var table = Table(Route("only", "/", hosts: ["a.example.com"]));

        Assert.Null(table.Match(Request("b.example.com", "/")));
    }

    [Fact]
    public void Match_IPv6Host_ExactBucket()
    {
        var table = Table(Route("v6", "/", hosts: ["[::1]"]), Route("any", "/"));

        Assert.Equal("v6", table.Match(Request("[::1]:8080", "/"))?.Id);
    }

    private static RouteTable PathTable() => Table(
        Route("root", "/"),
        Route("api", "/api/"),
        Route("api-v1", "/api/v1/"),
        Route("api-exact", "/api"),
        Route("health", "/healthz"),
        Route("v1-raw", "/v1", pathType: "prefix"),
        Route("users-exact", "/api/v1/users", pathType: "exact"));

    [Theory]
    [InlineData("/", "root")]
    [InlineData("/anything", "root")]
    [InlineData("/api", "api-exact")]          // exact route; "/api/" prefix does not match "/api" (as nginx)
    [InlineData("/api/", "api")]
    [InlineData("/api/x", "api")]
    [InlineData("/api/v1", "api")]             // "/api/v1/" does not match "/api/v1"
    [InlineData("/api/v1/", "api-v1")]
    [InlineData("/api/v1/orders", "api-v1")]
    [InlineData("/api/v1/users", "users-exact")]
    [InlineData("/api/v1/users/7", "api-v1")]
    [InlineData("/API/x", "root")]             // case-sensitive
    [InlineData("/healthz", "health")]
    [InlineData("/healthz/", "root")]          // exact means exact
    [InlineData("/healthzz", "root")]
    [InlineData("/v1", "v1-raw")]
    [InlineData("/v1beta/models", "v1-raw")]   // a raw-byte prefix, not a segment
    [InlineData("/ap", "root")]
    [InlineData("", "root")]
    public void Match_Paths_ExactThenLongestPrefix(string path, string expected)
    {
        Assert.Equal(expected, PathTable().Match(Request("h", path))?.Id);
    }

    [Fact]
    public void Match_NoPrefixCoversPath_ReturnsNull()
    {
        var table = Table(Route("api", "/api/"), Route("exact", "/x"));

        Assert.Null(table.Match(Request("h", "/")));
        Assert.Null(table.Match(Request("h", "/apx")));
        Assert.Null(table.Match(Request("h", "*")));
        Assert.Null(table.Match(Request("h", "/x/")));
    }

    [Fact]
    public void Match_PathTypeDefault_TrailingSlashIsPrefix()
    {
        var table = Table(Route("p", "/p/"), Route("e", "/e"));

        Assert.Equal("p", table.Match(Request("h", "/p/deep"))?.Id);
        Assert.Null(table.Match(Request("h", "/e/deep")));
        Assert.Equal("e", table.Match(Request("h", "/e"))?.Id);
    }

    [Theory]
    [InlineData("GET", "get-only")]
    [InlineData("HEAD", "get-only")]
    [InlineData("POST", "any-method")]
    [InlineData("PURGE", "custom")]
    [InlineData("purge", "any-method")]        // methods are case-sensitive
    [InlineData("DELETE", "any-method")]
    public void Match_Methods_SpecificBeatsAnyAtSamePath(string method, string expected)
    {
        var table = Table(
            Route("any-method", "/api/"),
            Route("get-only", "/api/", methods: ["GET", "HEAD"]),
            Route("custom", "/api/", methods: ["PURGE"]));

        Assert.Equal(expected, table.Match(Request("h", "/api/x", method))?.Id);
    }

    [Fact]
    public void Match_MethodFailsAtLongestPrefix_FallsBackToShorterPrefix()
    {
        var table = Table(Route("root", "/"), Route("api-get", "/api/", methods: ["GET"]));

        Assert.Equal("api-get", table.Match(Request("h", "/api/x", "GET"))?.Id);
        Assert.Equal("root", table.Match(Request("h", "/api/x", "POST"))?.Id);
    }

    [Fact]
    public void Match_MethodFailsOnExact_FallsBackToPrefix()
    {
        var table = Table(Route("p", "/a/"), Route("e", "/a/b", methods: ["POST"]));

        Assert.Equal("e", table.Match(Request("h", "/a/b", "POST"))?.Id);
        Assert.Equal("p", table.Match(Request("h", "/a/b", "GET"))?.Id);
    }

    [Theory]
    [InlineData("x-tenant", "a", "tenant-a")]
    [InlineData("X-Tenant", "a", "tenant-a")]   // names ignore case
    [InlineData("x-tenant", "A", "present")]    // values do not
    [InlineData("x-tenant", "beta-7", "beta")]
    [InlineData("x-tenant", "zzz", "present")]
    [InlineData("x-other", "a", "plain")]
    public void Match_Headers_AllMustHold(string name, string value, string expected)
    {
        var table = Table(
            Route("plain", "/"),
            Route("tenant-a", "/", headers: [new HeaderMatchConfig { Name = "x-tenant", Value = "a" }]),
            Route("beta", "/", headers: [new HeaderMatchConfig { Name = "x-tenant", Value = "beta-", Mode = "prefix" }]),
            Route("present", "/", headers: [new HeaderMatchConfig { Name = "x-tenant", Mode = "present" }]));

        Assert.Equal(expected, table.Match(Request("h", "/", "GET", (name, value)))?.Id);
    }

    [Fact]
    public void Match_SeveralHeaderConditions_EveryOneRequired()
    {
        var table = Table(
            Route("plain", "/"),
            Route("both", "/", headers: [new() { Name = "x-a", Value = "1" }, new() { Name = "x-b", Mode = "present" }]));

        Assert.Equal("both", table.Match(Request("h", "/", "GET", ("x-a", "1"), ("x-b", "")))?.Id);
        Assert.Equal("plain", table.Match(Request("h", "/", "GET", ("x-a", "1")))?.Id);
        Assert.Equal("plain", table.Match(Request("h", "/", "GET", ("x-b", "1")))?.Id);
    }

    [Fact]
    public void Match_RepeatedHeader_AnyFieldCanSatisfy()
    {
        var table = Table(Route("plain", "/"), Route("b", "/", headers: [new() { Name = "x-a", Value = "b" }]));

        Assert.Equal("b", table.Match(Request("h", "/", "GET", ("x-a", "a"), ("x-a", "b")))?.Id);
    }

    [Fact]
    public void Match_HeaderRouteBeatsMethodRouteAtSamePath()
    {
        var table = Table(
            Route("get", "/", methods: ["GET"]),
            Route("canary", "/", headers: [new() { Name = "x-canary", Mode = "present" }]));

        Assert.Equal("canary", table.Match(Request("h", "/", "GET", ("x-canary", "1")))?.Id);
        Assert.Equal("get", table.Match(Request("h", "/", "GET"))?.Id);
    }

    [Fact]
    public void Match_IdenticalRoutes_FirstDeclaredWins()
    {
        var table = Table(Route("first", "/a/"), Route("second", "/a/"), Route("third", "/a/"));

        Assert.Equal("first", table.Match(Request("h", "/a/x"))?.Id);
    }

    [Fact]
    public void Match_RouteWithSeveralHosts_InEveryBucket()
    {
        var table = Table(Route("multi", "/", hosts: ["a.test", "*.b.test"]));

        Assert.Equal("multi", table.Match(Request("a.test", "/"))?.Id);
        Assert.Equal("multi", table.Match(Request("x.b.test", "/"))?.Id);
        Assert.Null(table.Match(Request("c.test", "/")));
    }

    [Fact]
    public void Match_SharedEdgesSplit_EveryRouteStillReachable()
    {
        // Inserted in an order that forces edge splits at several depths.
        string[] paths = ["/abcdef", "/abc", "/abcxyz", "/ab", "/abcd", "/a", "/abq"];
        var table = Table([.. paths.Select((p, i) => Route("r" + i, p))]);

        for (int i = 0; i < paths.Length; i++)
        {
            Assert.Equal("r" + i, table.Match(Request("h", paths[i]))?.Id);
        }
        Assert.Null(table.Match(Request("h", "/abce")));
    }

    [Theory]
    [InlineData(10)]
    [InlineData(10_000)]
    public void Match_ManyRoutes_NodesVisitedBoundedByPathLength(int routeCount)
    {
        var table = ManyRoutes(routeCount);
        var request = Request("h", "/svc7/items/42");
        int visited = 0;

        var route = table.Match(request, ref visited);

        Assert.Equal("svc7", route?.Id);
        Assert.InRange(visited, 1, request.PathSpan.Length + 1);
    }

    [Fact]
    public void Match_TenVersusTenThousandRoutes_SimilarCost()
    {
        var small = ManyRoutes(10);
        var large = ManyRoutes(10_000);
        var request = Request("h", "/svc7/items/42");
        int visitedSmall = 0;
        int visitedLarge = 0;

        Assert.Equal("svc7", small.Match(request, ref visitedSmall)?.Id);
        Assert.Equal("svc7", large.Match(request, ref visitedLarge)?.Id);

        // 10,000 routes add at most the distinguishing digits of the id, never a scan of the routes.
        Assert.InRange(visitedLarge - visitedSmall, 0, 4);
        var deep = Request("h", "/svc9999/x");
        int visitedDeep = 0;
        Assert.Equal("svc9999", large.Match(deep, ref visitedDeep)?.Id);
        Assert.True(visitedDeep <= 8, $"visited {visitedDeep}");
    }

    [Fact]
    public void Match_AfterWarmUp_AllocatesNothing()
    {
        var table = Table(
            Route("exact", "/api/", hosts: ["api.example.com"], methods: ["GET"]),
            Route("wild", "/", hosts: ["*.example.com"], headers: [new() { Name = "x-tenant", Value = "a" }]),
            Route("any", "/"));
        var requests = new[]
        {
            Request("api.example.com:8080", "/api/x"),
            Request("www.example.com", "/x", "GET", ("x-tenant", "a")),
            Request("other", "/x", "PURGE"),
        };
        long allocated = Allocations.SteadyState(() =>
        {
            foreach (var r in requests)
            {
                table.Match(r);
            }
        }, 1000, warmUps: 1);

        Assert.Equal(0, allocated);
    }

    private static RouteTable ManyRoutes(int count)
    {
        var routes = new RouteConfig[count];
        for (int i = 0; i < count; i++)
        {
            routes[i] = Route("svc" + i, "/svc" + i + "/");
        }
        return ProxySnapshot.Build(ConfigOf(routes)).Routes;
    }
}
