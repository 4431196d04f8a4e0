using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using ProxyCore.Http;
using ProxyCore.Routing.Config;
using ProxyCore.Server;

namespace ProxyCore.FunctionalTests;

/// <summary>W3C trace context through the proxy, and spans exported to a (fake) OTLP/HTTP collector.</summary>
[Collection(SerialCollection.Name)]
public sealed class TracingTests
{
    private sealed class Collector : IHttpApplication
    {
        public ConcurrentQueue<string> Bodies { get; } = new();

        public async ValueTask ProcessAsync(HttpExchange exchange)
        {
            var body = new MemoryStream();
            while (exchange.HasRequestBody && !exchange.RequestBodyCompleted)
            {
                var read = await exchange.ReadRequestBodyAsync();
                foreach (var segment in read.Data)
                {
                    body.Write(segment.Span);
                }
                exchange.AdvanceRequestBody();
                if (read.IsCompleted)
                {
                    break;
                }
            }
            Bodies.Enqueue(Encoding.UTF8.GetString(body.ToArray()));
            exchange.Response.StatusCode = 200;
            await exchange.StartResponseAsync(BodyFraming.None, 0);
            await exchange.CompleteResponseAsync();
        }
    }

    private static string UpstreamTraceParent(string json)
    {
        using var doc = JsonDocument.Parse(json);
        foreach (var pair in doc.RootElement.GetProperty("headers").EnumerateArray())
        {
            if (pair[0].GetString() == "traceparent")
            {
                return pair[1].GetString()!;
            }
        }
        return "";
    }

    [Fact]
    public async Task TraceParent_IsContinuedOrCreated_AndEachRequestBecomesAnExportedSpan()
    {
        var collector = new Collector();
        await using var otlp = SimpleHttpServer.Start(new IPEndPoint(IPAddress.Loopback, 0), collector);
        await using var host = TestHost.Start(url =>
        {
            var config = TestHost.DefaultConfig(url);
            config.Tracing = new TracingConfig { OtlpEndpoint = $"http://{otlp.EndPoint}/v1/traces", ServiceName = "edge" };
            return config;
        });
        using var client = host.CreateClient();

        // A client in a trace: we keep its trace id, send our own span id, and keep its flags.
        const string clientTrace = "0af7651916cd43dd8448eb211c80319c";
        const string clientSpan = "b7ad6b7169203331";
        using var traced = new HttpRequestMessage(System.Net.Http.HttpMethod.Get, "/headers");
        traced.Headers.Add("traceparent", $"00-{clientTrace}-{clientSpan}-01");
        traced.Headers.Add("tracestate", "vendor=1");
        string continued = UpstreamTraceParent(await (await client.SendAsync(traced)).Content.ReadAsStringAsync());
        Assert.Matches($"^00-{clientTrace}-[0-9a-f]{{16}}-01$", continued);
        Assert.NotEqual(clientSpan, continued[36..52]);

        // No (or a malformed) traceparent: a new trace starts here.
        using var untraced = new HttpRequestMessage(System.Net.Http.HttpMethod.Get, "/headers");
        untraced.Headers.Add("traceparent", "00-00000000000000000000000000000000-b7ad6b7169203331-01");
        string created = UpstreamTraceParent(await (await client.SendAsync(untraced)).Content.ReadAsStringAsync());
        Assert.Matches("^00-[0-9a-f]{32}-[0-9a-f]{16}-01$", created);
        Assert.NotEqual("00000000000000000000000000000000", created[3..35]);

        // Both spans reach the collector (batched within about a second).
        await Eventually.TrueAsync(() =>
        {
            string all = string.Join("\n", collector.Bodies);
            return all.Contains(created[3..35], StringComparison.Ordinal) && all.Contains(clientTrace, StringComparison.Ordinal);
        });
        var spans = collector.Bodies.SelectMany(body =>
        {
            using var doc = JsonDocument.Parse(body);
            var resource = doc.RootElement.GetProperty("resourceSpans")[0];
            Assert.Equal("edge", resource.GetProperty("resource").GetProperty("attributes")[0].GetProperty("value").GetProperty("stringValue").GetString());
            return resource.GetProperty("scopeSpans")[0].GetProperty("spans").EnumerateArray()
                .Select(s => (Trace: s.GetProperty("traceId").GetString(), Span: s.GetProperty("spanId").GetString(),
                    Parent: s.TryGetProperty("parentSpanId", out var p) ? p.GetString() : null, Name: s.GetProperty("name").GetString()))
                .ToList();
        }).ToList();
        var child = Assert.Single(spans, s => s.Trace == clientTrace);
        Assert.Equal(clientSpan, child.Parent);
        Assert.Equal(continued[36..52], child.Span);
        Assert.Equal("GET mock", child.Name);
        var root = Assert.Single(spans, s => s.Trace == created[3..35]);
        Assert.Null(root.Parent);
    }

    [Fact]
    public async Task Propagation_CanBeTurnedOff()
    {
        await using var host = TestHost.Start(url =>
        {
            var config = TestHost.DefaultConfig(url);
            config.Tracing = new TracingConfig { Propagate = false };
            return config;
        });
        using var client = host.CreateClient();
        Assert.Equal("", UpstreamTraceParent(await client.GetStringAsync("/headers")));
    }
}
