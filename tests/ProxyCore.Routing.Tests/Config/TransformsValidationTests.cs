using ProxyCore.Routing.Config;

namespace ProxyCore.Routing.Tests.Config;

public class TransformsValidationTests
{
    private static IReadOnlyList<ConfigError> Validate(TransformsConfig transforms)
    {
        var route = TestConfigs.Route("r", "/api/");
        route.Transforms = transforms;
        return ProxyConfigLoader.Validate(TestConfigs.ConfigOf([route]));
    }

    private static Dictionary<string, string> Map(string name, string value) => new() { [name] = value };

    [Fact]
    public void Validate_EveryKeyValid_NoErrors()
    {
        var errors = Validate(new TransformsConfig
        {
            StripPrefix = "/api/",
            AddPrefix = "/v1",
            PathRegex = new PathRegexConfig { Pattern = @"^/users/(\d+)$", Replacement = "/u/$1" },
            Host = "internal.svc:8080",
            SetRequestHeaders = Map("x-env", "prod"),
            AddRequestHeaders = Map("x-client", "{client_ip} {consumer} {route}"),
            RemoveRequestHeaders = ["cookie"],
            SetResponseHeaders = Map("cache-control", "no-store"),
            AddResponseHeaders = Map("x-route", "{route}"),
            RemoveResponseHeaders = ["server"],
        });
        Assert.Empty(errors);
    }

    public static TheoryData<TransformsConfig, string> Invalid => new()
    {
        { new TransformsConfig { StripPrefix = "api" }, "$.routes[0].transforms.stripPrefix" },
        { new TransformsConfig { StripPrefix = "/" }, "$.routes[0].transforms.stripPrefix" },
        { new TransformsConfig { AddPrefix = "/v 1" }, "$.routes[0].transforms.addPrefix" },
        { new TransformsConfig { AddPrefix = "/v1?x=1" }, "$.routes[0].transforms.addPrefix" },
        { new TransformsConfig { PathRegex = new PathRegexConfig { Pattern = "^/(unclosed", Replacement = "/x" } }, "$.routes[0].transforms.pathRegex.pattern" },
        { new TransformsConfig { PathRegex = new PathRegexConfig { Pattern = "", Replacement = "/x" } }, "$.routes[0].transforms.pathRegex.pattern" },
        { new TransformsConfig { PathRegex = new PathRegexConfig { Pattern = @"^/(a)\1$", Replacement = "/x" } }, "$.routes[0].transforms.pathRegex.pattern" },
        { new TransformsConfig { PathRegex = new PathRegexConfig { Pattern = "^/(?=a)", Replacement = "/x" } }, "$.routes[0].transforms.pathRegex.pattern" },
        { new TransformsConfig { PathRegex = new PathRegexConfig { Pattern = "^/a$", Replacement = "b" } }, "$.routes[0].transforms.pathRegex.replacement" },
        { new TransformsConfig { PathRegex = new PathRegexConfig { Pattern = "^/a$", Replacement = "/b?c=1" } }, "$.routes[0].transforms.pathRegex.replacement" },
        { new TransformsConfig { Host = "bad host" }, "$.routes[0].transforms.host" },
        { new TransformsConfig { Host = "svc:99999" }, "$.routes[0].transforms.host" },
        { new TransformsConfig { SetRequestHeaders = Map("bad name", "x") }, "$.routes[0].transforms.setRequestHeaders['bad name']" },
        { new TransformsConfig { SetRequestHeaders = Map("x-a", "one\r\nx-b: two") }, "$.routes[0].transforms.setRequestHeaders['x-a']" },
        { new TransformsConfig { AddRequestHeaders = Map("Connection", "close") }, "$.routes[0].transforms.addRequestHeaders.Connection" },
        { new TransformsConfig { SetRequestHeaders = Map("transfer-encoding", "chunked") }, "$.routes[0].transforms.setRequestHeaders['transfer-encoding']" },
        { new TransformsConfig { SetRequestHeaders = Map("host", "x") }, "$.routes[0].transforms.setRequestHeaders.host" },
        { new TransformsConfig { SetRequestHeaders = new Dictionary<string, string> { ["x-a"] = "1", ["X-A"] = "2" } }, "$.routes[0].transforms.setRequestHeaders['X-A']" },
        { new TransformsConfig { RemoveRequestHeaders = ["ok", "content-length"] }, "$.routes[0].transforms.removeRequestHeaders[1]" },
        { new TransformsConfig { SetResponseHeaders = Map("upgrade", "h2c") }, "$.routes[0].transforms.setResponseHeaders.upgrade" },
        { new TransformsConfig { AddResponseHeaders = Map("x-ip", "{client_ip}") }, "$.routes[0].transforms.addResponseHeaders['x-ip']" },
        { new TransformsConfig { RemoveResponseHeaders = ["bad:name"] }, "$.routes[0].transforms.removeResponseHeaders[0]" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Validate_InvalidKey_ErrorAtItsJsonPath(TransformsConfig transforms, string path)
    {
        var error = Assert.Single(Validate(transforms));
        Assert.Equal(path, error.Path);
    }

    // Needs SchemaWalker to walk dictionaries and to accept "transforms" (applied at merge).
    [Fact]
    public void Parse_DesignContractShape_Binds()
    {
        var result = ProxyConfigLoader.Parse("""
            { "listeners": [ { "address": "127.0.0.1:8080" } ],
              "routes": [ { "id": "api", "match": { "path": "/api/" }, "cluster": "c",
                "transforms": { "stripPrefix": "/api", "setRequestHeaders": { "x-env": "prod" },
                                "pathRegex": { "pattern": "^/u/(\\d+)$", "replacement": "/users/$1" },
                                "removeResponseHeaders": [ "server" ] } } ],
              "clusters": [ { "id": "c", "destinations": [ { "address": "http://127.0.0.1:9000" } ] } ] }
            """);
        Assert.True(result.IsValid, string.Join("; ", result.Errors));
        var transforms = result.Config!.Routes[0].Transforms!;
        Assert.Equal("/api", transforms.StripPrefix);
        Assert.Equal("prod", transforms.SetRequestHeaders["x-env"]);
        Assert.Equal(@"^/u/(\d+)$", transforms.PathRegex!.Pattern);
        Assert.Equal(["server"], transforms.RemoveResponseHeaders);
    }

    [Fact]
    public void Parse_HeaderMapWithWrongShapes_ErrorsAtTheirPaths()
    {
        var result = ProxyConfigLoader.Parse("""
            { "listeners": [ { "address": "127.0.0.1:8080" } ],
              "routes": [ { "id": "api", "match": { "path": "/api/" }, "cluster": "c",
                "transforms": { "setRequestHeaders": { "x-n": 1, "x-ok": "v", "x-ok": "w" }, "addResponseHeaders": [] } } ],
              "clusters": [ { "id": "c", "destinations": [ { "address": "http://127.0.0.1:9000" } ] } ] }
            """);
        Assert.Equal(
            ["$.routes[0].transforms.addResponseHeaders", "$.routes[0].transforms.setRequestHeaders['x-n']", "$.routes[0].transforms.setRequestHeaders['x-ok']"],
            result.Errors.Select(e => e.Path).Order(StringComparer.Ordinal));
    }
}
