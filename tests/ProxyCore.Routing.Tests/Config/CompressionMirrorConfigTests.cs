using ProxyCore.Routing.Config;

namespace ProxyCore.Routing.Tests.Config;

public class CompressionMirrorConfigTests
{
    private static IReadOnlyList<ConfigError> Validate(CompressionConfig? compression = null, MirrorConfig? mirror = null)
    {
        var route = TestConfigs.Route("r", "/api/");
        route.Compression = compression;
        route.Mirror = mirror;
        return ProxyConfigLoader.Validate(TestConfigs.ConfigOf([route], TestConfigs.Cluster("c", "http://127.0.0.1:9000"), TestConfigs.Cluster("shadow", "http://127.0.0.1:9001")));
    }

    [Fact]
    public void Validate_DefaultsAndEveryKeyValid_NoErrors()
    {
        Assert.Empty(Validate(new CompressionConfig()));
        Assert.Empty(Validate(new CompressionConfig { Gzip = false, MinBytes = 0, ContentTypes = ["text/*", "application/vnd.api+json"], Level = "smallest" },
            new MirrorConfig { Cluster = "shadow", Percent = 12.5, Timeout = TimeSpan.FromSeconds(1), MaxInFlight = 8 }));
    }

    public static TheoryData<CompressionConfig?, MirrorConfig?, string> Invalid => new()
    {
        { new CompressionConfig { Gzip = false, Brotli = false }, null, "$.routes[0].compression" },
        { new CompressionConfig { MinBytes = -1 }, null, "$.routes[0].compression.minBytes" },
        { new CompressionConfig { Level = "max" }, null, "$.routes[0].compression.level" },
        { new CompressionConfig { ContentTypes = [] }, null, "$.routes[0].compression.contentTypes" },
        { new CompressionConfig { ContentTypes = ["text/html", "json"] }, null, "$.routes[0].compression.contentTypes[1]" },
        { new CompressionConfig { ContentTypes = ["text/html; charset=utf-8"] }, null, "$.routes[0].compression.contentTypes[0]" },
        { new CompressionConfig { ContentTypes = ["*/*"] }, null, "$.routes[0].compression.contentTypes[0]" },
        { new CompressionConfig { ContentTypes = ["text/"] }, null, "$.routes[0].compression.contentTypes[0]" },
        { null, new MirrorConfig { Cluster = "" }, "$.routes[0].mirror.cluster" },
        { null, new MirrorConfig { Cluster = "nope" }, "$.routes[0].mirror.cluster" },
        { null, new MirrorConfig { Cluster = "c" }, "$.routes[0].mirror.cluster" },
        { null, new MirrorConfig { Cluster = "shadow", Percent = 101 }, "$.routes[0].mirror.percent" },
        { null, new MirrorConfig { Cluster = "shadow", Percent = -1 }, "$.routes[0].mirror.percent" },
        { null, new MirrorConfig { Cluster = "shadow", Percent = double.NaN }, "$.routes[0].mirror.percent" },
        { null, new MirrorConfig { Cluster = "shadow", Timeout = TimeSpan.Zero }, "$.routes[0].mirror.timeout" },
        { null, new MirrorConfig { Cluster = "shadow", MaxInFlight = 0 }, "$.routes[0].mirror.maxInFlight" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Validate_InvalidKey_ErrorAtItsJsonPath(CompressionConfig? compression, MirrorConfig? mirror, string path)
    {
        var error = Assert.Single(Validate(compression, mirror));
        Assert.Equal(path, error.Path);
    }

    [Fact]
    public void Parse_ContractShape_Binds()
    {
        var result = ProxyConfigLoader.Parse("""
            { "listeners": [ { "address": "127.0.0.1:8080" } ],
              "routes": [ { "id": "api", "match": { "path": "/api/" }, "cluster": "c",
                "compression": { "gzip": true, "brotli": false, "minBytes": "2KB", "contentTypes": [ "text/*", "application/json" ], "level": "optimal" },
                "mirror": { "cluster": "shadow", "percent": 10, "timeout": "2s", "maxInFlight": 16 } } ],
              "clusters": [ { "id": "c", "destinations": [ { "address": "http://127.0.0.1:9000" } ] },
                            { "id": "shadow", "destinations": [ { "address": "http://127.0.0.1:9001" } ] } ] }
            """);
        Assert.True(result.IsValid, string.Join("; ", result.Errors));
        var route = result.Config!.Routes[0];
        Assert.Equal(2048, route.Compression!.MinBytes);
        Assert.False(route.Compression.Brotli);
        Assert.Equal(["text/*", "application/json"], route.Compression.ContentTypes);
        Assert.Equal("optimal", route.Compression.Level);
        Assert.Equal("shadow", route.Mirror!.Cluster);
        Assert.Equal(10, route.Mirror.Percent);
        Assert.Equal(TimeSpan.FromSeconds(2), route.Mirror.Timeout);
        Assert.Equal(16, route.Mirror.MaxInFlight);
    }

    [Theory]
    [InlineData("""{ "gzip": "yes" }""", "$.routes[0].compression.gzip")]
    [InlineData("""{ "minBytes": "lots" }""", "$.routes[0].compression.minBytes")]
    [InlineData("""{ "zstd": true }""", "$.routes[0].compression.zstd")]
    public void Parse_MalformedCompression_ErrorAtItsJsonPath(string block, string path)
    {
        var result = ProxyConfigLoader.Parse($$"""
            { "listeners": [ { "address": "127.0.0.1:8080" } ],
              "routes": [ { "id": "api", "match": { "path": "/api/" }, "cluster": "c", "compression": {{block}} } ],
              "clusters": [ { "id": "c", "destinations": [ { "address": "http://127.0.0.1:9000" } ] } ] }
            """);
        Assert.Contains(result.Errors, e => e.Path == path);
    }
}
