using ProxyCore.Routing.Config;

namespace ProxyCore.Routing.Tests.Config;

public class ProxyConfigLoaderTests
{
    // The minimal shape from DESIGN.md "Contracts → Config", which must always parse.
    private const string DesignExample = """
        {
          "listeners": [ { "address": "127.0.0.1:8080", "protocols": ["http1", "http2"],
                           "tls": { "certificate": "cert.pem", "key": "key.pem" } } ],
          "admin": { "address": "127.0.0.1:9901" },
          "routes": [ { "id": "api", "match": { "hosts": ["api.example.com"], "path": "/api/", "methods": ["GET"] },
                        "cluster": "backend" } ],
          "clusters": [ { "id": "backend", "loadBalancing": "round-robin",
                          "destinations": [ { "address": "http://127.0.0.1:9000", "weight": 1 } ] } ]
        }
        """;

    private const string Minimal = """
        { "listeners": [ { "address": "127.0.0.1:8080" } ],
          "routes": [ { "id": "r", "match": { "path": "/" }, "cluster": "c" } ],
          "clusters": [ { "id": "c", "destinations": [ { "address": "http://127.0.0.1:9000" } ] } ] }
        """;

    [Fact]
    public void Parse_DesignExample_IsValidWithEveryValueBound()
    {
        // The certificate files are read at validation: give the example real ones, same shape.
        using var pki = new ProxyCore.Tests.Shared.TestCertificates();
        var (certificate, key) = pki.Issue("cert", "api.example.com");
        var result = ProxyConfigLoader.Parse(DesignExample.Replace("\"cert.pem\"", $"\"{certificate}\"", StringComparison.Ordinal)
            .Replace("\"key.pem\"", $"\"{key}\"", StringComparison.Ordinal));

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var config = result.Config!;
        Assert.Equal("127.0.0.1:8080", config.Listeners[0].Address);
        Assert.Equal(["http1", "http2"], config.Listeners[0].Protocols);
        Assert.Equal(certificate, config.Listeners[0].Tls!.Certificate);
        Assert.Equal(key, config.Listeners[0].Tls!.Key);
        Assert.Equal("127.0.0.1:9901", config.Admin.Address);
        var route = Assert.Single(config.Routes);
        Assert.Equal("api", route.Id);
        Assert.Equal(["api.example.com"], route.Match.Hosts);
        Assert.Equal("/api/", route.Match.Path);
        Assert.Equal(["GET"], route.Match.Methods);
        Assert.Equal("backend", route.Cluster);
        var cluster = Assert.Single(config.Clusters);
        Assert.Equal("round-robin", cluster.LoadBalancing);
        Assert.Equal("http://127.0.0.1:9000", Assert.Single(cluster.Destinations).Address);
    }

    [Fact]
    public void Parse_Minimal_AppliesDocumentedDefaults()
    {
        var config = ProxyConfigLoader.Parse(Minimal).Config!;

        Assert.True(config.Admin.Enabled);
        Assert.Equal("127.0.0.1:9901", config.Admin.Address);
        Assert.Equal(["http1", "http2"], config.Listeners[0].Protocols);
        Assert.Null(config.Listeners[0].Tls);
        Assert.Equal("round-robin", config.Clusters[0].LoadBalancing);
        Assert.Equal(1, config.Clusters[0].Destinations[0].Weight);
        Assert.Equal(TimeSpan.FromSeconds(5), config.Clusters[0].ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(60), config.Clusters[0].IdleTimeout);
        Assert.Equal(64, config.Clusters[0].MaxIdleConnectionsPerDestination);
        Assert.Equal(8 * 1024, config.Limits.MaxRequestLineBytes);
        Assert.Equal(32 * 1024, config.Limits.MaxHeaderBytes);
        Assert.Equal(100, config.Limits.MaxHeaderCount);
        Assert.Equal(32L * 1024 * 1024, config.Limits.MaxRequestBodyBytes);
        Assert.Equal(TimeSpan.FromSeconds(10), config.Limits.HeaderReadTimeout);
        Assert.Equal(TimeSpan.FromSeconds(60), config.Limits.KeepAliveTimeout);
        var h2 = config.Limits.Http2;
        Assert.Equal((100, 65_535L, 1024L * 1024, 4096L, 64), (h2.MaxConcurrentStreams, h2.InitialStreamWindowSize, h2.ConnectionWindowSize, h2.HeaderTableSize, h2.MaxHeaderBlockFrames));
        Assert.Equal((200, TimeSpan.FromSeconds(10), 5000, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(30)),
            (h2.MaxRapidResets, h2.RapidResetWindow, h2.MaxControlFrames, h2.ControlFrameWindow, h2.StallTimeout));
        Assert.Equal(TimeSpan.FromSeconds(60), config.Timeouts.Upstream);
        Assert.Equal(TimeSpan.FromSeconds(30), config.Timeouts.Drain);
        Assert.True(config.Forwarding.XForwarded);
        Assert.True(config.Forwarding.Via);
        Assert.True(config.Forwarding.PreserveHost);
        Assert.False(config.AccessLog.Enabled);
        Assert.Null(config.AccessLog.Path);
        Assert.Null(config.Routes[0].Timeout);
    }

    [Fact]
    public void Parse_CommentsAndTrailingCommas_Accepted()
    {
        const string json = """
            // line comment
            { "listeners": [ { "address": "127.0.0.1:8080", }, ], /* block */
              "routes": [], "clusters": [], }
            """;

        var result = ProxyConfigLoader.Parse(json);

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
    }

    [Fact]
    public void Parse_DurationsAndSizes_BoundFromStringsAndNumbers()
    {
        const string json = """
            { "listeners": [ { "address": "127.0.0.1:8080" } ],
              "limits": { "maxRequestBodyBytes": "64MB", "maxHeaderBytes": 4096, "maxRequestLineBytes": "0.5KB",
                          "headerReadTimeout": "250ms", "keepAliveTimeout": 75 },
              "timeouts": { "upstream": "1m", "drain": "1h" },
              "routes": [ { "id": "r", "cluster": "c", "timeout": "10s" } ],
              "clusters": [ { "id": "c", "connectTimeout": 1.5, "idleTimeout": "2m",
                              "destinations": [ { "address": "http://127.0.0.1:9000" } ] } ] }
            """;

        var config = ProxyConfigLoader.Parse(json).Config!;

        Assert.Equal(64L << 20, config.Limits.MaxRequestBodyBytes);
        Assert.Equal(4096, config.Limits.MaxHeaderBytes);
        Assert.Equal(512, config.Limits.MaxRequestLineBytes);
        Assert.Equal(TimeSpan.FromMilliseconds(250), config.Limits.HeaderReadTimeout);
        Assert.Equal(TimeSpan.FromSeconds(75), config.Limits.KeepAliveTimeout);
        Assert.Equal(TimeSpan.FromMinutes(1), config.Timeouts.Upstream);
        Assert.Equal(TimeSpan.FromHours(1), config.Timeouts.Drain);
        Assert.Equal(TimeSpan.FromSeconds(10), config.Routes[0].Timeout);
        Assert.Equal(TimeSpan.FromSeconds(1.5), config.Clusters[0].ConnectTimeout);
        Assert.Equal(TimeSpan.FromMinutes(2), config.Clusters[0].IdleTimeout);
    }

    [Fact]
    public void Parse_UnlimitedBody_ZeroIsExpressible()
    {
        var json = Minimal.Replace("\"listeners\"", "\"limits\": { \"maxRequestBodyBytes\": 0 }, \"listeners\"");

        var result = ProxyConfigLoader.Parse(json);

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        Assert.Equal(0, result.Config!.Limits.MaxRequestBodyBytes);
    }

    [Theory]
    [InlineData("", null, 0, false, true)] // the platform's default engine
    [InlineData("\"transport\": { \"engine\": \"epoll\", \"reactors\": 4 }, ", "epoll", 4, false, true)]
    [InlineData("\"transport\": { \"engine\": \"sockets\", \"inlineCompletions\": true, \"waitForData\": false }, ", "sockets", 0, true, false)]
    [InlineData("\"transport\": { \"engine\": \"epoll\", \"batchSends\": false }, ", "epoll", 0, false, true, false)]
    public void Parse_Transport_ReadsEngineAndKnobs(string block, string? engine, int reactors, bool inline, bool waitForData, bool batchSends = true)
    {
        engine ??= OperatingSystem.IsLinux() ? "epoll" : "sockets";
        var result = ProxyConfigLoader.Parse(Minimal.Replace("\"listeners\"", block + "\"listeners\""));

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var transport = result.Config!.Transport;
        Assert.Equal((engine, reactors, inline, waitForData, batchSends), (transport.Engine, transport.Reactors, transport.InlineCompletions, transport.WaitForData, transport.BatchSends));
    }

    [Fact]
    public void Parse_AdminDisabled_NoAdminAddressChecks()
    {
        var json = Minimal.Replace("\"listeners\"", "\"admin\": { \"enabled\": false, \"address\": \"127.0.0.1:8080\" }, \"listeners\"");

        var result = ProxyConfigLoader.Parse(json);

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        Assert.False(result.Config!.Admin.Enabled);
    }

    // Each error class: the JSON fragment spliced into a valid config, and the exact path expected.
    [Theory]
    // unknown properties (typos) are errors, with a hint
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:8080" } ], "routs": [] }""", "$.routs", "did you mean 'routes'")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:8080" } ], "routes": [ { "id": "r", "cluster": "c", "match": { "Path": "/" } } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.routes[0].match.Path", "did you mean 'path'")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:8080", "tls": { "cert": "a" , "key": "b", "certificate": "c" } } ] }""", "$.listeners[0].tls.cert", "unknown property")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:8080" } ], "weird key": 1 }""", "$['weird key']", "unknown property")]
    // policy blocks not implemented yet are refused, never ignored
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:8080" } ], "routes": [ { "id": "r", "cluster": "c", "auth": {} } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.routes[0].auth", "needs apiKeys, jwt or both")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:8080" } ], "routes": [ { "id": "r", "cluster": "c", "llm": {} } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.routes[0].llm.providers", "at least one provider")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:8080" } ], "clusters": [ { "id": "c", "healthCheck": {}, "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.clusters[0].healthCheck.path", "required")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:8080" } ], "clusters": [ { "id": "c", "circuitBraker": {}, "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.clusters[0].circuitBraker", "circuitBreaker")]
    // wrong types
    [InlineData("""{ "listeners": { "address": "127.0.0.1:8080" } }""", "$.listeners", "expected an array")]
    [InlineData("""{ "listeners": [ { "address": 8080 } ] }""", "$.listeners[0].address", "expected a string")]
    [InlineData("""{ "listeners": [ "127.0.0.1:8080" ] }""", "$.listeners[0]", "expected an object")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:8080" } ], "accessLog": { "enabled": "yes" } }""", "$.accessLog.enabled", "expected true or false")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:8080" } ], "limits": { "maxHeaderCount": 1.5 } }""", "$.limits.maxHeaderCount", "expected an integer")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:8080" } ], "admin": null }""", "$.admin", "must not be null")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:8080" } ], "listeners": [] }""", "$.listeners", "duplicate property")]
    // durations and sizes
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:8080" } ], "timeouts": { "upstream": "5 seconds" } }""", "$.timeouts.upstream", "expected a duration")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:8080" } ], "timeouts": { "upstream": -1 } }""", "$.timeouts.upstream", "expected a duration")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:8080" } ], "limits": { "maxRequestBodyBytes": "64M" } }""", "$.limits.maxRequestBodyBytes", "expected a size")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:8080" } ], "limits": { "maxRequestBodyBytes": -1 } }""", "$.limits.maxRequestBodyBytes", "expected a size")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:8080" } ], "timeouts": { "upstream": "0s" } }""", "$.timeouts.upstream", "greater than 0")]
    // semantics
    [InlineData("""{ "listeners": [] }""", "$.listeners", "at least one listener")]
    [InlineData("""{ "listeners": [ { "address": "localhost" } ] }""", "$.listeners[0].address", "host:port")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:70000" } ] }""", "$.listeners[0].address", "invalid port")]
    [InlineData("""{ "listeners": [ { "address": "::1:80" } ] }""", "$.listeners[0].address", "brackets")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" }, { "address": "127.0.0.1:80" } ] }""", "$.listeners[1].address", "duplicate listener")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:9901" } ] }""", "$.admin.address", "also a listener")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80", "protocols": ["http3"] } ] }""", "$.listeners[0].protocols[0]", "unknown protocol")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "transport": { "engine": "io_uring" } }""", "$.transport.engine", "unknown engine 'io_uring'")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "transport": { "engine": "epoll", "reactors": 257 } }""", "$.transport.reactors", "between 0")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "transport": { "engine": "epoll", "reactors": -1 } }""", "$.transport.reactors", "between 0")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "transport": { "engine": "sockets", "reactors": 2 } }""", "$.transport.reactors", "only applies to the \"epoll\" engine")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "transport": { "engine": "epoll", "inlineCompletions": true } }""", "$.transport.inlineCompletions", "only applies to the \"sockets\" engine")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "transport": { "waitForData": 1 } }""", "$.transport.waitForData", "expected true or false")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "transport": { "engine": "sockets", "batchSends": false } }""", "$.transport.batchSends", "only applies to the \"epoll\" engine")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "transport": { "engnie": "epoll" } }""", "$.transport.engnie", "engine")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80", "tls": { "certificate": "c" } } ] }""", "$.listeners[0].tls.key", "private key")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "routes": [ { "id": "r", "cluster": "nope" } ] }""", "$.routes[0].cluster", "unknown cluster 'nope'")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "routes": [ { "cluster": "c" } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.routes[0].id", "id is required")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "routes": [ { "id": "r", "cluster": "c" }, { "id": "r", "cluster": "c" } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.routes[1].id", "duplicate route id 'r'")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1" } ] }, { "id": "c", "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.clusters[1].id", "duplicate cluster id 'c'")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "clusters": [ { "id": "c", "destinations": [] } ] }""", "$.clusters[0].destinations", "at least one destination")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "clusters": [ { "id": "c", "destinations": [ { "address": "127.0.0.1:9000" } ] } ] }""", "$.clusters[0].destinations[0].address", "not an http:// URL")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "clusters": [ { "id": "c", "destinations": [ { "address": "ftp://h:21" } ] } ] }""", "$.clusters[0].destinations[0].address", "not an http:// URL")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1/?q=1" } ] } ] }""", "$.clusters[0].destinations[0].address", "without user info, query or fragment")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1" }, { "address": "http://h:1" } ] } ] }""", "$.clusters[0].destinations[1].address", "duplicate destination")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1", "weight": -1 } ] } ] }""", "$.clusters[0].destinations[0].weight", "0 or more")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "clusters": [ { "id": "c", "loadBalancing": "least-conn", "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.clusters[0].loadBalancing", "unknown policy 'least-conn'")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "clusters": [ { "id": "c", "loadBalancing": "weighted-round-robin", "destinations": [ { "address": "http://h:1", "weight": 0 } ] } ] }""", "$.clusters[0].destinations", "every weight is 0")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "routes": [ { "id": "r", "cluster": "c", "match": { "path": "api/" } } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.routes[0].match.path", "must start with '/'")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "routes": [ { "id": "r", "cluster": "c", "match": { "path": "/a?b=1" } } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.routes[0].match.path", "without query")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "routes": [ { "id": "r", "cluster": "c", "match": { "path": "/", "pathType": "regex" } } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.routes[0].match.pathType", "unknown path type 'regex'")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "routes": [ { "id": "r", "cluster": "c", "match": { "methods": ["GET POST"] } } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.routes[0].match.methods[0]", "not a method token")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "routes": [ { "id": "r", "cluster": "c", "match": { "methods": ["get"] } } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.routes[0].match.methods[0]", "did you mean 'GET'")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "routes": [ { "id": "r", "cluster": "c", "match": { "hosts": ["api.example.com:8080"] } } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.routes[0].match.hosts[0]", "without the port")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "routes": [ { "id": "r", "cluster": "c", "match": { "hosts": ["api.*.com"] } } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.routes[0].match.hosts[0]", "wildcard")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "routes": [ { "id": "r", "cluster": "c", "match": { "headers": [ { "name": "x tenant", "value": "a" } ] } } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.routes[0].match.headers[0].name", "not a header field name")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "routes": [ { "id": "r", "cluster": "c", "match": { "headers": [ { "name": "x-tenant", "value": "a", "mode": "regex" } ] } } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.routes[0].match.headers[0].mode", "unknown mode 'regex'")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "routes": [ { "id": "r", "cluster": "c", "match": { "headers": [ { "name": "x-tenant" } ] } } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.routes[0].match.headers[0].value", "needs a value")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "routes": [ { "id": "r", "cluster": "c", "match": { "headers": [ { "name": "x-tenant", "value": "a", "mode": "present" } ] } } ], "clusters": [ { "id": "c", "destinations": [ { "address": "http://h:1" } ] } ] }""", "$.routes[0].match.headers[0].value", "does not compare a value")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "limits": { "http2": { "maxConcurrentStreams": 0 } } }""", "$.limits.http2.maxConcurrentStreams", "at least 1")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "limits": { "http2": { "initialStreamWindowSize": "1KB" } } }""", "$.limits.http2.initialStreamWindowSize", "at least 16384")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "limits": { "http2": { "connectionWindowSize": "4GB" } } }""", "$.limits.http2.connectionWindowSize", "at most 2147483647")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "limits": { "http2": { "maxRapidResets": 0 } } }""", "$.limits.http2.maxRapidResets", "at least 1")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "limits": { "http2": { "maxControlFrames": -5 } } }""", "$.limits.http2.maxControlFrames", "at least 1")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "limits": { "http2": { "maxHeaderBlockFrames": 0 } } }""", "$.limits.http2.maxHeaderBlockFrames", "at least 1")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "limits": { "http2": { "stallTimeout": "0s" } } }""", "$.limits.http2.stallTimeout", "greater than 0")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "limits": { "http2": { "rapidResetWindow": "0s" } } }""", "$.limits.http2.rapidResetWindow", "greater than 0")]
    [InlineData("""{ "listeners": [ { "address": "127.0.0.1:80" } ], "limits": { "http2": { "maxStreams": 10 } } }""", "$.limits.http2.maxStreams", "unknown property")]
    public void Parse_InvalidConfig_ReportsErrorAtExactPath(string json, string expectedPath, string expectedMessagePart)
    {
        var result = ProxyConfigLoader.Parse(json);

        Assert.False(result.IsValid);
        Assert.Null(result.Config);
        var error = Assert.Single(result.Errors, e => e.Path == expectedPath);
        Assert.Contains(expectedMessagePart, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_ManyMistakes_ReportsEveryOneOnce()
    {
        const string json = """
            {
              "listeners": [ { "address": "127.0.0.1:8080", "protocol": ["http1"] } ],
              "routes": [
                { "id": "a", "match": { "path": "a" }, "cluster": "missing", "llm": {} },
                { "id": "a", "match": { "path": "/b", "methods": [ 42 ] }, "cluster": "c", "timeout": "soon" }
              ],
              "clusters": [ { "id": "c", "loadBalancing": "fastest",
                              "destinations": [ { "address": "http://10.0.0.1:80", "weight": -3 } ] } ],
              "limits": { "maxHeaderBytes": "lots" }
            }
            """;

        var result = ProxyConfigLoader.Parse(json);

        string[] expected =
        [
            "$.listeners[0].protocol",
            "$.routes[0].llm.providers",
            "$.routes[0].match.path",
            "$.routes[0].cluster",
            "$.routes[1].id",
            "$.routes[1].match.methods[0]",
            "$.routes[1].timeout",
            "$.clusters[0].loadBalancing",
            "$.clusters[0].destinations[0].weight",
            "$.limits.maxHeaderBytes",
        ];
        Assert.Equal(expected.Order(StringComparer.Ordinal), result.Errors.Select(e => e.Path).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Parse_PolicyExample_ParsesEveryBlock()
    {
        // DESIGN.md "Policy config": the contract shape parses whole (given the key it reads from the environment).
        Environment.SetEnvironmentVariable("MOBILE_KEY", "mobile-key-0123456789abcdef");
        const string json = """
            { "listeners": [ { "address": "127.0.0.1:8080" } ],
              "routes": [ { "id": "api", "match": { "path": "/api/" }, "cluster": "backend",
                "auth": { "apiKeys": [ { "consumer": "mobile", "key": "env:MOBILE_KEY" } ], "header": "x-api-key" },
                "rateLimit": { "requestsPerSecond": 100, "burst": 200, "by": "client-ip" },
                "retry": { "attempts": 2, "on": ["connect-failure", 502, 503], "perTryTimeout": "2s" },
                "timeout": "10s",
                "split": [ { "cluster": "backend", "weight": 90 }, { "cluster": "canary", "weight": 10 } ],
                "transforms": { "stripPrefix": "/api", "setRequestHeaders": { "x-env": "prod" } } } ],
              "clusters": [ { "id": "backend", "loadBalancing": "power-of-two",
                "healthCheck": { "path": "/healthz", "interval": "2s", "timeout": "1s" },
                "outlierDetection": { "consecutiveFailures": 5, "ejectFor": "30s" },
                "circuitBreaker": { "maxConcurrentRequests": 1000 },
                "destinations": [ { "address": "http://127.0.0.1:9000" } ] },
                { "id": "canary", "destinations": [ { "address": "http://127.0.0.1:9001" } ] } ] }
            """;

        var result = ProxyConfigLoader.Parse(json);

        Assert.Empty(result.Errors);
        Assert.NotNull(result.Config!.Routes[0].Retry);
        Assert.NotNull(result.Config.Clusters[0].OutlierDetection);
    }

    [Theory]
    [InlineData("{ \"listeners\": [ { \"address\": \"x\" } ", "$")]
    [InlineData("{ \"listeners\": [ { \"address\": 'x' } ] }", "$.listeners[0].address")]
    [InlineData("{ \"listeners\": [ { \"address\": \"a\" }, { \"address\": } ] }", "$.listeners[1].address")]
    [InlineData("{ \"listeners\": [ 1, 2, } ] }", "$.listeners[2]")]
    [InlineData("", "$")]
    public void Parse_SyntaxError_ReportsLineAndPath(string json, string expectedPath)
    {
        var result = ProxyConfigLoader.Parse(json);

        var error = Assert.Single(result.Errors);
        Assert.StartsWith(expectedPath, error.Path, StringComparison.Ordinal);
        Assert.Contains("invalid JSON at line 1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_SyntaxErrorOnLaterLine_ReportsThatLine()
    {
        var result = ProxyConfigLoader.Parse("{\n  \"listeners\": [\n    { \"address\": }\n  ]\n}");

        Assert.Contains("line 3", Assert.Single(result.Errors).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("42")]
    [InlineData("null")]
    public void Parse_RootNotObject_ReportsRoot(string json)
    {
        var error = Assert.Single(ProxyConfigLoader.Parse(json).Errors);

        Assert.Equal("$", error.Path);
    }

    [Fact]
    public void ConfigError_ToString_IsPathColonMessage()
    {
        Assert.Equal("$.routes[0].id: id is required", new ConfigError("$.routes[0].id", "id is required").ToString());
    }

    [Fact]
    public void LoadFile_Missing_ReportsErrorAtRoot()
    {
        var result = ProxyConfigLoader.LoadFile(Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N"), "proxycore.json"));

        var error = Assert.Single(result.Errors);
        Assert.Equal("$", error.Path);
        Assert.Contains("cannot read config file", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadFile_Existing_Parses()
    {
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, Minimal);

            Assert.True(ProxyConfigLoader.LoadFile(path).IsValid);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ForUpstream_Valid_OneCatchAllRoute()
    {
        var config = ProxyConfig.ForUpstream("127.0.0.1:8080", "http://127.0.0.1:9000");

        Assert.Empty(ProxyConfigLoader.Validate(config));
        var route = Assert.Single(config.Routes);
        Assert.Equal("default", route.Id);
        Assert.Equal("/", route.Match.Path);
        Assert.Equal("prefix", route.Match.PathType);
        Assert.Equal("http://127.0.0.1:9000", Assert.Single(Assert.Single(config.Clusters).Destinations).Address);
    }

    [Theory]
    [InlineData("nohost", "http://127.0.0.1:9000", "$.listeners[0].address")]
    [InlineData("127.0.0.1:8080", "127.0.0.1:9000", "$.clusters[0].destinations[0].address")]
    public void ForUpstream_BadArguments_ValidateReportsThem(string listen, string upstream, string expectedPath)
    {
        var errors = ProxyConfigLoader.Validate(ProxyConfig.ForUpstream(listen, upstream));

        Assert.Equal(expectedPath, Assert.Single(errors).Path);
    }

    [Fact]
    public void ToRedactedJson_RoundTripsAndKeepsEnvReferences()
    {
        Environment.SetEnvironmentVariable("PROXYCORE_TEST_SECRET", "hunter2");
        var config = ProxyConfigLoader.Parse(Minimal.Replace("\"r\",", "\"r\", \"timeout\": \"1500ms\",")).Config!;
        var withSecret = new ProxyConfig
        {
            Listeners = config.Listeners,
            Routes = config.Routes,
            Clusters = config.Clusters,
            AccessLog = new AccessLogConfig { Enabled = true, Path = "env:PROXYCORE_TEST_SECRET" },
        };

        string json = ProxyConfigLoader.ToRedactedJson(withSecret);

        Assert.Contains("\"env:PROXYCORE_TEST_SECRET\"", json, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", json, StringComparison.Ordinal);
        Assert.Contains("\"1500ms\"", json, StringComparison.Ordinal);
        Assert.Contains("\"32MB\"", json, StringComparison.Ordinal);
        var back = ProxyConfigLoader.Parse(json);
        Assert.True(back.IsValid, string.Join("\n", back.Errors));
        Assert.Equal(TimeSpan.FromMilliseconds(1500), back.Config!.Routes[0].Timeout);
        Assert.Equal("env:PROXYCORE_TEST_SECRET", back.Config.AccessLog.Path);
    }

    [Fact]
    public void ConfigSecrets_Resolve_ReadsEnvironmentOnlyForReferences()
    {
        Environment.SetEnvironmentVariable("PROXYCORE_TEST_RESOLVE", "value-1");

        Assert.Equal("value-1", ConfigSecrets.Resolve("env:PROXYCORE_TEST_RESOLVE"));
        Assert.Null(ConfigSecrets.Resolve("env:PROXYCORE_TEST_UNSET_VARIABLE"));
        Assert.Equal("plain", ConfigSecrets.Resolve("plain"));
        Assert.Null(ConfigSecrets.Resolve(null));
    }
}
