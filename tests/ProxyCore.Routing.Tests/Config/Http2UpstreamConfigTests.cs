using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;

namespace ProxyCore.Routing.Tests.Config;

public class Http2UpstreamConfigTests
{
    private static string Json(string clusterExtra) => $$"""
        { "listeners": [ { "address": "127.0.0.1:8080" } ],
          "routes": [ { "id": "r", "match": { "path": "/" }, "cluster": "c" } ],
          "clusters": [ { "id": "c", "destinations": [ { "address": "http://127.0.0.1:9000" } ]{{clusterExtra}} } ] }
        """;

    [Fact]
    public void Parse_ProtocolHttp2WithBlock_BindsIntoClusterModel()
    {
        var result = ProxyConfigLoader.Parse(Json("""
            , "protocol": "http2", "idleTimeout": "90s",
              "http2": { "streamWindowSize": "256KB", "connectionWindowSize": "8MB", "maxConnectionsPerDestination": 4,
                         "pingInterval": "0s", "pingTimeout": "3s" }
            """));

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var cluster = ProxySnapshot.Build(result.Config!).Clusters["c"];
        Assert.Equal(UpstreamProtocol.Http2, cluster.Protocol);
        var h2 = cluster.Http2Options;
        Assert.Equal((256 * 1024, 8 * 1024 * 1024, 4, Timeout.InfiniteTimeSpan, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(90)),
            (h2.StreamWindowSize, h2.ConnectionWindowSize, h2.MaxConnectionsPerDestination, h2.PingInterval, h2.PingTimeout, h2.IdleTimeout));
    }

    [Fact]
    public void Parse_NoProtocol_DefaultsToHttp1()
    {
        var result = ProxyConfigLoader.Parse(Json(""));

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        Assert.Equal(UpstreamProtocol.Http1, ProxySnapshot.Build(result.Config!).Clusters["c"].Protocol);
    }

    [Theory]
    [InlineData(""", "protocol": "http3" """, "$.clusters[0].protocol")]
    [InlineData(""", "protocol": "HTTP2" """, "$.clusters[0].protocol")]
    [InlineData(""", "http2": { } """, "$.clusters[0].http2")]
    [InlineData(""", "protocol": "http2", "http2": { "streamWindowSize": 1000 } """, "$.clusters[0].http2.streamWindowSize")]
    [InlineData(""", "protocol": "http2", "http2": { "streamWindowSize": "4GB" } """, "$.clusters[0].http2.streamWindowSize")]
    [InlineData(""", "protocol": "http2", "http2": { "streamWindowSize": "4MB", "connectionWindowSize": "1MB" } """, "$.clusters[0].http2.connectionWindowSize")]
    [InlineData(""", "protocol": "http2", "http2": { "maxConnectionsPerDestination": 0 } """, "$.clusters[0].http2.maxConnectionsPerDestination")]
    [InlineData(""", "protocol": "http2", "http2": { "pingTimeout": "0s" } """, "$.clusters[0].http2.pingTimeout")]
    [InlineData(""", "protocol": "http2", "http2": { "pingEvery": "1s" } """, "$.clusters[0].http2.pingEvery")]
    public void Parse_BadHttp2Settings_ErrorAtPath(string clusterExtra, string path)
    {
        var result = ProxyConfigLoader.Parse(Json(clusterExtra));

        Assert.False(result.IsValid);
        Assert.Contains(result.Errors, e => e.Path == path);
    }
}
