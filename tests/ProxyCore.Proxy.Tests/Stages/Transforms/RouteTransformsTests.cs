using System.Text;
using ProxyCore.Http;
using ProxyCore.Proxy.Stages.Transforms;
using ProxyCore.Routing.Config;

namespace ProxyCore.Proxy.Tests.Stages.Transforms;

public class RouteTransformsTests
{
    private static RequestHead Request(string path, string query = "", params (string Name, string Value)[] headers)
    {
        var head = new RequestHead();
        head.Reset();
        head.MethodBytes = head.Append("GET"u8);
        head.Authority = head.Append("client.example"u8);
        head.Path = head.Append(Encoding.ASCII.GetBytes(path));
        head.Query = head.Append(Encoding.ASCII.GetBytes(query));
        foreach (var (name, value) in headers)
        {
            head.AddHeader(Encoding.ASCII.GetBytes(name), Encoding.ASCII.GetBytes(value));
        }
        return head;
    }

    private static List<(string, string)> HeadersOf(HttpHead head)
    {
        var list = new List<(string, string)>();
        for (int i = 0; i < head.HeaderCount; i++)
        {
            list.Add((Encoding.ASCII.GetString(head.GetName(i)), Encoding.ASCII.GetString(head.GetValue(i))));
        }
        return list;
    }

    private static string PathOf(RequestHead head) => Encoding.ASCII.GetString(head.PathSpan);

    private static bool Apply(TransformsConfig config, RequestHead request, string clientIp = "10.0.0.1", string consumer = "")
        => new RouteTransforms(config, "api").ApplyRequest(request, Encoding.ASCII.GetBytes(clientIp), Encoding.ASCII.GetBytes(consumer));

    [Theory]
    [InlineData("/api", "/api/x", "/x")]
    [InlineData("/api", "/api", "/")]
    [InlineData("/api", "/api/", "/")]
    [InlineData("/api/", "/api/x/y", "/x/y")]
    [InlineData("/api", "/apix", "/apix")]
    [InlineData("/api", "/other/api", "/other/api")]
    [InlineData("/a/b", "/a/b/c", "/c")]
    public void StripPrefix_Paths_RewrittenAtSegmentBoundary(string prefix, string path, string expected)
    {
        var request = Request(path, "?q=1");
        int arenaBefore = request.ArenaUsed;
        Assert.True(Apply(new TransformsConfig { StripPrefix = prefix }, request));
        Assert.Equal(expected, PathOf(request));
        Assert.Equal("?q=1", Encoding.ASCII.GetString(request.QuerySpan));
        Assert.Equal(arenaBefore, request.ArenaUsed); // only the range moved
    }

    [Theory]
    [InlineData("/v1", "/x", "/v1/x")]
    [InlineData("/v1/", "/x", "/v1/x")]
    [InlineData("/v1", "/", "/v1/")]
    public void AddPrefix_Paths_Prepended(string prefix, string path, string expected)
    {
        var request = Request(path);
        Assert.True(Apply(new TransformsConfig { AddPrefix = prefix }, request));
        Assert.Equal(expected, PathOf(request));
    }

    [Theory]
    [InlineData(@"^/users/(\d+)$", "/u/$1", "/users/42", "/u/42")]
    [InlineData(@"^/users/(\d+)$", "/u/$1", "/users/abc", "/users/abc")] // no match: left alone
    [InlineData(@"^/(?<ver>v\d)/(.*)$", "/$1/${ver}", "/v2/items", "/items/v2")]
    [InlineData(@"^/old/(.*)$", "$1", "/old/x", "/x")]
    [InlineData(@"/x$", "/y", "/a/b/x", "/a/b/y")]
    public void PathRegex_Paths_RewrittenWithGroups(string pattern, string replacement, string path, string expected)
    {
        var request = Request(path);
        Assert.True(Apply(new TransformsConfig { PathRegex = new PathRegexConfig { Pattern = pattern, Replacement = replacement } }, request));
        Assert.Equal(expected, PathOf(request));
    }

    [Fact]
    public void PathTransforms_AllThree_StripThenRegexThenAdd()
    {
        var request = Request("/api/users/7");
        var config = new TransformsConfig
        {
            StripPrefix = "/api",
            PathRegex = new PathRegexConfig { Pattern = @"^/users/(\d+)$", Replacement = "/people/$1" },
            AddPrefix = "/v2",
        };
        Assert.True(Apply(config, request));
        Assert.Equal("/v2/people/7", PathOf(request));
    }

    [Fact]
    public void PathRegex_LongPath_UsesRentedBufferAndRewrites()
    {
        string tail = new('a', 3000);
        var request = Request("/long/" + tail);
        Assert.True(Apply(new TransformsConfig { PathRegex = new PathRegexConfig { Pattern = "^/long/(a+)$", Replacement = "/short/$1" } }, request));
        Assert.Equal("/short/" + tail, PathOf(request));
    }

    [Fact]
    public void PathTransforms_AsteriskForm_Untouched()
    {
        var request = Request("*");
        request.TargetForm = RequestTargetForm.Asterisk;
        Assert.True(Apply(new TransformsConfig { AddPrefix = "/v1" }, request));
        Assert.Equal("*", PathOf(request));
    }

    [Fact]
    public void RequestHeaders_RemoveSetAdd_AppliedInThatOrderIgnoringCase()
    {
        var request = Request("/", "", ("X-Env", "dev"), ("accept", "*/*"), ("x-debug", "1"), ("X-ENV", "test"), ("x-tag", "a"));
        var config = new TransformsConfig
        {
            RemoveRequestHeaders = ["X-Debug", "absent"],
            SetRequestHeaders = new Dictionary<string, string> { ["x-env"] = "prod" },
            AddRequestHeaders = new Dictionary<string, string> { ["x-tag"] = "b" },
        };
        Assert.True(Apply(config, request));
        Assert.Equal([("accept", "*/*"), ("x-tag", "a"), ("x-env", "prod"), ("x-tag", "b")], HeadersOf(request));
    }

    [Fact]
    public void RequestHeaders_KnownHeaderName_RemovedById()
    {
        var request = Request("/", "", ("Via", "1.1 other"), ("Content-Type", "text/plain"));
        Assert.True(Apply(new TransformsConfig { RemoveRequestHeaders = ["via"], SetRequestHeaders = new Dictionary<string, string> { ["content-type"] = "application/json" } }, request));
        Assert.Equal([("content-type", "application/json")], HeadersOf(request));
        Assert.Equal(KnownHeader.ContentType, request.Headers[0].Id);
    }

    [Fact]
    public void RequestHeaders_Variables_Expanded()
    {
        var request = Request("/");
        var config = new TransformsConfig
        {
            SetRequestHeaders = new Dictionary<string, string>
            {
                ["x-client"] = "{client_ip}",
                ["x-who"] = "consumer={consumer}; route={route}; ip={client_ip}.",
                ["x-literal"] = "{unknown} {route",
            },
        };
        Assert.True(Apply(config, request, clientIp: "192.0.2.7", consumer: "mobile"));
        Assert.Equal([("x-client", "192.0.2.7"), ("x-who", "consumer=mobile; route=api; ip=192.0.2.7."), ("x-literal", "{unknown} {route")], HeadersOf(request));
    }

    [Fact]
    public void RequestHeaders_NoConsumer_VariableIsEmpty()
    {
        var request = Request("/");
        Assert.True(Apply(new TransformsConfig { AddRequestHeaders = new Dictionary<string, string> { ["x-who"] = "[{consumer}]" } }, request));
        Assert.Equal([("x-who", "[]")], HeadersOf(request));
    }

    [Fact]
    public void RequestTransforms_ArenaGrows_EarlierRangesStayValid()
    {
        var request = Request("/api/items", "?page=2", ("x-keep", "yes"));
        string big = new('v', 5000); // larger than the initial arena: forces at least one growth
        var config = new TransformsConfig
        {
            StripPrefix = "/api",
            AddPrefix = "/v1",
            SetRequestHeaders = new Dictionary<string, string> { ["x-big"] = big },
            AddRequestHeaders = new Dictionary<string, string> { ["x-ip"] = "{client_ip}" },
        };
        Assert.True(Apply(config, request));
        Assert.True(request.ArenaUsed > 5000);
        Assert.Equal("/v1/items", PathOf(request));
        Assert.Equal("?page=2", Encoding.ASCII.GetString(request.QuerySpan));
        Assert.Equal("client.example", Encoding.ASCII.GetString(request.AuthoritySpan));
        Assert.Equal([("x-keep", "yes"), ("x-big", big), ("x-ip", "10.0.0.1")], HeadersOf(request));
    }

    [Fact]
    public void ResponseHeaders_RemoveSetAdd_Applied()
    {
        var response = new ResponseHead();
        response.AddHeader("Server"u8, "upstream/1.0"u8);
        response.AddHeader("Cache-Control"u8, "no-cache"u8);
        response.AddHeader("x-powered-by"u8, "php"u8);
        var transforms = new RouteTransforms(new TransformsConfig
        {
            RemoveResponseHeaders = ["x-powered-by", "server"],
            SetResponseHeaders = new Dictionary<string, string> { ["cache-control"] = "max-age=60" },
            AddResponseHeaders = new Dictionary<string, string> { ["x-route"] = "{route}" },
        }, "api");
        Assert.True(transforms.HasResponseTransforms);
        transforms.ApplyResponse(response);
        Assert.Equal([("cache-control", "max-age=60"), ("x-route", "api")], HeadersOf(response));
    }

    [Fact]
    public void Host_Configured_ExposedAsBytes_NullOtherwise()
    {
        Assert.Equal("internal.svc:8080"u8.ToArray(), new RouteTransforms(new TransformsConfig { Host = "internal.svc:8080" }, "r").Host);
        Assert.Null(new RouteTransforms(new TransformsConfig(), "r").Host);
        Assert.False(new RouteTransforms(new TransformsConfig(), "r").HasResponseTransforms);
    }

    // Warm-up (JIT, tiering, buffer growth), then the fewest bytes of several windows: see Allocations.
    private static long AllocatedBy(Action action) => Allocations.SteadyState(action, 200);

    [Fact]
    public void ApplyRequestAndResponse_AfterWarmUp_AllocateNothing()
    {
        var transforms = new RouteTransforms(new TransformsConfig
        {
            StripPrefix = "/api",
            AddPrefix = "/v1",
            // A regex that does not match still runs on every request: the span overload decides without allocating.
            PathRegex = new PathRegexConfig { Pattern = @"^/never/(\d+)$", Replacement = "/n/$1" },
            Host = "internal:80",
            RemoveRequestHeaders = ["x-debug"],
            SetRequestHeaders = new Dictionary<string, string> { ["x-env"] = "prod", ["x-client"] = "{client_ip} via {route}" },
            AddRequestHeaders = new Dictionary<string, string> { ["x-consumer-seen"] = "{consumer}" },
            RemoveResponseHeaders = ["server"],
            SetResponseHeaders = new Dictionary<string, string> { ["cache-control"] = "no-store" },
            AddResponseHeaders = new Dictionary<string, string> { ["x-route"] = "{route}" },
        }, "api");
        var request = new RequestHead();
        var response = new ResponseHead();
        byte[] path = "/api/items/1"u8.ToArray();
        byte[] clientIp = "203.0.113.9"u8.ToArray();
        byte[] consumer = "mobile"u8.ToArray();

        long bytes = AllocatedBy(() =>
        {
            request.Reset();
            request.Path = request.Append(path);
            request.AddHeader("x-debug"u8, "1"u8);
            request.AddHeader("X-Env"u8, "dev"u8);
            request.AddHeader("accept"u8, "*/*"u8);
            transforms.ApplyRequest(request, clientIp, consumer);

            response.Reset();
            response.AddHeader("server"u8, "upstream"u8);
            response.AddHeader("cache-control"u8, "max-age=5"u8);
            transforms.ApplyResponse(response);
        });

        Assert.Equal(0, bytes);
        Assert.Equal("/v1/items/1", PathOf(request));
    }
}
