using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;

namespace ProxyCore.Routing.Tests.Config;

public class CircuitBreakerConfigTests
{
    private const string Base = """
        { "listeners": [ { "address": "127.0.0.1:8080" } ],
          "routes": [ { "id": "r", "match": { "path": "/" }, "cluster": "c" } ],
          "clusters": [ { "id": "c", PROTOCOL"circuitBreaker": BREAKER, "destinations": [ { "address": "http://127.0.0.1:9000" } ] } ] }
        """;

    private static string Json(string breaker, string protocol = "") => Base.Replace("BREAKER", breaker).Replace("PROTOCOL", protocol);

    [Theory]
    [InlineData("""{ "maxConnections": 0 }""", "", "$.clusters[0].circuitBreaker.maxConnections", "at least 1")]
    [InlineData("""{ "maxConnections": -3 }""", "", "$.clusters[0].circuitBreaker.maxConnections", "at least 1")]
    [InlineData("""{ "maxPending": -1 }""", "", "$.clusters[0].circuitBreaker.maxPending", "0 (nobody waits) or more")]
    [InlineData("""{ "maxConcurrentRequests": 0 }""", "", "$.clusters[0].circuitBreaker.maxConcurrentRequests", "at least 1")]
    [InlineData("""{ "maxConnections": 0 }""", "\"protocol\": \"http2\", ", "$.clusters[0].circuitBreaker.maxConnections", "at least 1")]
    [InlineData("""{ "maxPending": -1 }""", "\"protocol\": \"http2\", ", "$.clusters[0].circuitBreaker.maxPending", "0 (nobody waits) or more")]
    [InlineData("""{ "maxConnection": 10 }""", "", "$.clusters[0].circuitBreaker.maxConnection", "unknown property")]
    public void Parse_BadCircuitBreaker_ErrorAtPath(string breaker, string protocol, string path, string messagePart)
    {
        var result = ProxyConfigLoader.Parse(Json(breaker, protocol));

        Assert.False(result.IsValid);
        var error = Assert.Single(result.Errors, e => e.Path == path);
        Assert.Contains(messagePart, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{ }""", 1024, 1024)]
    [InlineData("""{ "maxConnections": 8 }""", 8, 1024)]
    [InlineData("""{ "maxConnections": 8, "maxPending": 0 }""", 8, 0)]
    [InlineData("""{ "maxPending": 5 }""", 1024, 5)]
    [InlineData("""{ "maxConcurrentRequests": 5 }""", 1024, 1024, "\"protocol\": \"http2\", ")]
    [InlineData("""{ "maxConnections": 2, "maxPending": 0 }""", 2, 0, "\"protocol\": \"http2\", ")]
    public void Build_CircuitBreaker_LimitHasDefaults(string breaker, int maxConnections, int maxPending, string protocol = "")
    {
        var result = ProxyConfigLoader.Parse(Json(breaker, protocol));
        Assert.True(result.IsValid, string.Join("\n", result.Errors));

        var limit = ProxySnapshot.Build(result.Config!).Clusters["c"].ConnectionLimit;

        Assert.NotNull(limit);
        Assert.Equal((maxConnections, maxPending), (limit.MaxConnections, limit.MaxPending));
    }

    [Fact]
    public void Build_NoBlock_NoConnectionLimit()
    {
        var plain = ProxyConfigLoader.Parse(Base.Replace("\"circuitBreaker\": BREAKER, ", "").Replace("PROTOCOL", "")).Config!;
        var http2 = ProxyConfigLoader.Parse(Base.Replace("\"circuitBreaker\": BREAKER, ", "").Replace("PROTOCOL", "\"protocol\": \"http2\", ")).Config!;

        Assert.Null(ProxySnapshot.Build(plain).Clusters["c"].ConnectionLimit);
        Assert.Null(ProxySnapshot.Build(http2).Clusters["c"].ConnectionLimit);
    }

    [Fact]
    public void Build_Reload_KeepsTheSameLimitWithNewValues()
    {
        var first = ProxySnapshot.Build(ProxyConfigLoader.Parse(Json("""{ "maxConnections": 4 }""")).Config!);
        var second = ProxySnapshot.Build(ProxyConfigLoader.Parse(Json("""{ "maxConnections": 9, "maxPending": 3 }""")).Config!, first);

        // Connections dialled under the first snapshot are pooled under its limit: the count must carry over.
        Assert.Same(first.Clusters["c"].ConnectionLimit, second.Clusters["c"].ConnectionLimit);
        Assert.Equal((9, 3), (second.Clusters["c"].ConnectionLimit!.MaxConnections, second.Clusters["c"].ConnectionLimit!.MaxPending));
    }
}
