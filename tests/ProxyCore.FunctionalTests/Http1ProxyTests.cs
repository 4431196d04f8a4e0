using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using ProxyCore.Routing.Config;
using ProxyCore.Server;
using ProxyCore.Transport;

namespace ProxyCore.FunctionalTests;

[Collection(SerialCollection.Name)]
public sealed class Http1ProxyTests
{
    [Fact]
    public async Task Get_ThroughProxy_ReturnsUpstreamAnswer()
    {
        await using var host = TestHost.Start();
        using var client = host.CreateClient();
        var response = await client.GetAsync("/hello?x=1");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadAsStringAsync();
        using var json = JsonDocument.Parse(body);
        var request = json.RootElement.GetProperty("request");
        Assert.Equal("GET", request.GetProperty("method").GetString());
        Assert.Equal("/hello", request.GetProperty("path").GetString());
        Assert.Equal("?x=1", request.GetProperty("query").GetString());
        Assert.Contains("proxycore", string.Join(",", response.Headers.Via));
    }

    [Fact]
    public async Task ForwardedHeaders_AreSetAndHopByHopRemoved()
    {
        await using var host = TestHost.Start();
        using var client = host.CreateClient();
        using var message = new HttpRequestMessage(HttpMethod.Get, "/headers");
        message.Headers.TryAddWithoutValidation("X-Forwarded-For", "203.0.113.7");
        message.Headers.TryAddWithoutValidation("Connection", "x-secret");
        message.Headers.TryAddWithoutValidation("X-Secret", "do-not-forward");
        message.Headers.TryAddWithoutValidation("Keep-Alive", "timeout=5");
        message.Headers.TryAddWithoutValidation("X-Keep", "yes");
        var response = await client.SendAsync(message);
        var headers = ParseHeaders(await response.Content.ReadAsStringAsync());
        Assert.Equal("203.0.113.7, 127.0.0.1", headers["x-forwarded-for"]);
        Assert.Equal("http", headers["x-forwarded-proto"]);
        Assert.Equal(host.ProxyEndPoint.ToString(), headers["x-forwarded-host"]);
        Assert.Equal(host.ProxyEndPoint.ToString(), headers["host"]);
        Assert.Equal("1.1 proxycore", headers["via"]);
        Assert.Equal("yes", headers["x-keep"]);
        Assert.False(headers.ContainsKey("x-secret"));
        Assert.False(headers.ContainsKey("keep-alive"));
        Assert.False(headers.ContainsKey("connection"));
    }

    [Fact]
    public async Task ForwardedHeader_AndDestinationHost_WhenConfigured()
    {
        await using var host = TestHost.Start(url =>
        {
            var config = TestHost.DefaultConfig(url);
            config.Forwarding = new ForwardingConfig { Forwarded = true, PreserveHost = false, XForwarded = false, Via = false };
            return config;
        });
        using var client = host.CreateClient();
        using var message = new HttpRequestMessage(HttpMethod.Get, "/headers");
        message.Headers.TryAddWithoutValidation("Forwarded", "for=192.0.2.60;proto=https");
        var headers = ParseHeaders(await (await client.SendAsync(message)).Content.ReadAsStringAsync());
        Assert.Equal($"for=192.0.2.60;proto=https, for=127.0.0.1;proto=http;host=\"{host.ProxyEndPoint}\"", headers["forwarded"]);
        Assert.Equal(host.Upstream.EndPoint.ToString(), headers["host"]);
        Assert.False(headers.ContainsKey("x-forwarded-for"));
        Assert.False(headers.ContainsKey("via"));
    }

    private static Dictionary<string, string> ParseHeaders(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var pair in doc.RootElement.GetProperty("headers").EnumerateArray())
        {
            result[pair[0].GetString()!] = pair[1].GetString()!;
        }
        return result;
    }

    [Fact]
    public async Task KeepAlive_ManyRequests_OneClientConnectionAndPooledUpstream()
    {
        await using var host = TestHost.Start();
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1, UseProxy = false }) { BaseAddress = host.BaseUri };
        long acceptedBefore = TransportMetrics.ClientConnectionsAccepted;
        long dialledBefore = TransportMetrics.UpstreamConnectionsDialled;
        for (int i = 0; i < 200; i++)
        {
            var response = await client.GetAsync("/bytes/100");
            Assert.Equal(100, (await response.Content.ReadAsByteArrayAsync()).Length);
        }
        Assert.Equal(1, TransportMetrics.ClientConnectionsAccepted - acceptedBefore - (TransportMetrics.UpstreamConnectionsDialled - dialledBefore));
        Assert.Equal(1, TransportMetrics.UpstreamConnectionsDialled - dialledBefore);
    }

    [Fact]
    public async Task Pipelining_ThreeRequestsInOneWrite_AnsweredInOrder()
    {
        await using var host = TestHost.Start();
        string request = "GET /bytes/3 HTTP/1.1\r\nHost: a\r\n\r\n" +
                         "GET /status/404 HTTP/1.1\r\nHost: a\r\n\r\n" +
                         "GET /bytes/5 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
        string answer = await host.SendRawAsync(request);
        int first = answer.IndexOf("HTTP/1.1 200", StringComparison.Ordinal);
        int second = answer.IndexOf("HTTP/1.1 404", StringComparison.Ordinal);
        int third = answer.IndexOf("HTTP/1.1 200", second, StringComparison.Ordinal);
        Assert.True(first == 0 && second > first && third > second, answer);
        Assert.Contains("\r\n\r\nabc", answer);
        Assert.EndsWith("\r\n\r\nabcde", answer);
    }

    [Fact]
    public async Task ChunkedUpload_IsEchoedByteForByte()
    {
        await using var host = TestHost.Start();
        using var client = host.CreateClient();
        var payload = new byte[300_000];
        new Random(42).NextBytes(payload);
        var content = new StreamContent(new MemoryStream(payload));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-test");
        using var message = new HttpRequestMessage(HttpMethod.Post, "/echo") { Content = content };
        message.Headers.TransferEncodingChunked = true;
        var response = await client.SendAsync(message);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(payload, await response.Content.ReadAsByteArrayAsync());
        Assert.Equal("application/x-test", response.Content.Headers.ContentType!.MediaType);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task LargeDownload_StreamsEveryByteInOrder(bool chunked)
    {
        const long size = 64L * 1024 * 1024;
        await using var host = TestHost.Start();
        using var client = host.CreateClient();
        using var response = await client.GetAsync($"/bytes/{size}{(chunked ? "?chunked=1" : "")}", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(chunked, response.Headers.TransferEncodingChunked == true);
        await using var stream = await response.Content.ReadAsStreamAsync();
        var buffer = new byte[81920];
        long offset = 0;
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            for (int i = 0; i < n; i++)
            {
                if (buffer[i] != MockUpstream.PatternByte(offset + i))
                {
                    Assert.Fail($"byte {offset + i} differs");
                }
            }
            offset += n;
        }
        Assert.Equal(size, offset);
    }

    [Fact]
    public async Task LargeUpload_WithContentLength_ReachesUpstreamWhole()
    {
        const int size = 64 * 1024 * 1024;
        await using var host = TestHost.Start(url => TestHost.DefaultConfig(url, b => b.Limits = new LimitsConfig { MaxRequestBodyBytes = 0 }));
        using var client = host.CreateClient();
        var response = await client.PostAsync("/sink", new ByteArrayContent(new byte[size]));
        Assert.Equal("{\"bytes\":" + size + "}", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task RequestBodyOverLimit_Returns413()
    {
        await using var host = TestHost.Start(url => TestHost.DefaultConfig(url, b => b.Limits = new LimitsConfig { MaxRequestBodyBytes = 1000 }));
        using var client = host.CreateClient();
        var response = await client.PostAsync("/sink", new ByteArrayContent(new byte[1001]));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("request-body-too-large", response.Headers.GetValues("proxycore-error").Single());
    }

    [Fact]
    public async Task NoRoute_Returns404WithReason()
    {
        await using var host = TestHost.Start(url => new ProxyConfig
        {
            Listeners = [new ListenerConfig { Address = "127.0.0.1:0" }],
            Admin = new AdminConfig { Enabled = false },
            Routes = [new RouteConfig { Id = "api", Match = new RouteMatchConfig { Path = "/api/" }, Cluster = "c" }],
            Clusters = [new ClusterConfig { Id = "c", Destinations = [new DestinationConfig { Address = url }] }],
        });
        using var client = host.CreateClient();
        var response = await client.GetAsync("/other");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("no-route", response.Headers.GetValues("proxycore-error").Single());
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/x")).StatusCode);
    }

    [Fact]
    public async Task UpstreamRefuses_Returns502()
    {
        int closedPort = FreePort();
        await using var host = TestHost.Start(_ => TestHost.DefaultConfig($"http://127.0.0.1:{closedPort}"));
        using var client = host.CreateClient();
        var response = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("upstream-connect-failed", response.Headers.GetValues("proxycore-error").Single());
    }

    [Fact]
    public async Task UpstreamTooSlow_Returns504()
    {
        await using var host = TestHost.Start(url => TestHost.DefaultConfig(url, b => b.RouteTimeout = TimeSpan.FromMilliseconds(300)));
        using var client = host.CreateClient();
        var response = await client.GetAsync("/delay/3000");
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("upstream-timeout", response.Headers.GetValues("proxycore-error").Single());
        // The connection that timed out is not reused: the next request is served normally.
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/delay/1")).StatusCode);
    }

    [Fact]
    public async Task NoHealthyDestination_Returns503()
    {
        await using var host = TestHost.Start();
        foreach (var destination in host.Proxy.Current.Clusters["mock"].Destinations)
        {
            destination.State.Healthy = false;
        }
        using var client = host.CreateClient();
        var response = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("no-healthy-destination", response.Headers.GetValues("proxycore-error").Single());
    }

    [Theory]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400")]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "400")]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", "400")]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nX-Bad : 1\r\n\r\n", "400")]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nX-Fold: a\r\n b\r\n\r\n", "400")]
    [InlineData("GET / HTTP/1.1\r\n\r\n", "400")]
    public async Task SmugglingShapes_Get400AndTheConnectionCloses(string request, string status)
    {
        await using var host = TestHost.Start();
        // A valid request after the bad one must never be answered: the connection is closed.
        string answer = await host.SendRawAsync(request + "GET /bytes/1 HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.StartsWith($"HTTP/1.1 {status}", answer);
        Assert.Contains("proxycore-error:", answer);
        Assert.Single(answer.Split("HTTP/1.1 "), s => s.Length > 0);
    }

    [Theory]
    [InlineData("/delay/300")]   // FIN while the upstream is still working
    [InlineData("/bytes/10")]    // FIN racing a fast answer
    public async Task ClientHalfClosesAfterRequest_NeverGetsA500(string path)
    {
        // Like nginx, a client's FIN counts as leaving; the proxy may still answer if the upstream was
        // quicker, but it must never blame itself with a 500 for the work it cancelled.
        await using var host = TestHost.Start();
        for (int i = 0; i < 20; i++)
        {
            string answer = await host.SendRawAsync($"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n", TimeSpan.FromSeconds(5), halfClose: true);
            Assert.DoesNotContain("<<timeout>>", answer);
            Assert.DoesNotContain(" 500 ", answer);
            Assert.True(answer.Length == 0 || answer == "<<reset>>" || answer.StartsWith("HTTP/1.1 200", StringComparison.Ordinal), answer);
        }
        // The proxy is unharmed.
        using var client = host.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/bytes/1")).StatusCode);
    }

    [Fact]
    public async Task ClosingAnIdleConnection_DoesNotCancelTheNextConnectionsRequest()
    {
        // An idle connection hands its relay context back for the next connection; the close of the first must
        // not reach the timer of the second (it answered 504 "did not answer in time" at once).
        await using var host = TestHost.Start();
        for (int i = 0; i < 10; i++)
        {
            using var first = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await first.ConnectAsync(host.ProxyEndPoint);
            await first.SendAsync("GET /bytes/1 HTTP/1.1\r\nHost: a\r\n\r\n"u8.ToArray());
            var buffer = new byte[4096];
            int n = await first.ReceiveAsync(buffer);
            Assert.StartsWith("HTTP/1.1 200", Encoding.Latin1.GetString(buffer, 0, n));
            await Task.Delay(20); // the first connection is idle now and has given its context back
            first.Close();
            await Task.Delay(20); // its close has been seen

            string answer = await host.SendRawAsync("GET /delay/20 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
            Assert.StartsWith("HTTP/1.1 200", answer);
        }
    }

    [Fact]
    public async Task LongRequestLine_Gets414_AndTooManyHeaders431()
    {
        await using var host = TestHost.Start();
        string longTarget = "/" + new string('a', 9000);
        Assert.StartsWith("HTTP/1.1 414", await host.SendRawAsync($"GET {longTarget} HTTP/1.1\r\nHost: a\r\n\r\n"));
        var headers = new StringBuilder();
        for (int i = 0; i < 101; i++)
        {
            headers.Append($"X-H{i}: v\r\n");
        }
        Assert.StartsWith("HTTP/1.1 431", await host.SendRawAsync($"GET / HTTP/1.1\r\nHost: a\r\n{headers}\r\n"));
    }

    [Fact]
    public async Task SlowHead_Gets408()
    {
        await using var host = TestHost.Start(url => TestHost.DefaultConfig(url, b => b.Limits = new LimitsConfig { HeaderReadTimeout = TimeSpan.FromMilliseconds(300) }));
        string answer = await host.SendRawAsync("GET / HTTP/1.1\r\nHost: a\r\n", TimeSpan.FromSeconds(10));
        Assert.StartsWith("HTTP/1.1 408", answer);
    }

    [Theory]
    [InlineData("epoll")]
    [InlineData("sockets")]
    public async Task SlowHead_Gets408_OnEitherEngine_AfterAnAnsweredRequest(string engine)
    {
        // The head-read deadline cancels the pending read (no token): the 408 still comes, also on a connection
        // that had served a request, and only once.
        await using var host = TestHost.Start(url => TestHost.DefaultConfig(url, b =>
        {
            b.Limits = new LimitsConfig { HeaderReadTimeout = TimeSpan.FromMilliseconds(300) };
            b.Transport = new TransportConfig { Engine = engine };
        }));
        string answer = await host.SendRawAsync("GET /bytes/2 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n", TimeSpan.FromSeconds(10));
        Assert.StartsWith("HTTP/1.1 200", answer);
        int second = answer.IndexOf("HTTP/1.1 408", StringComparison.Ordinal);
        Assert.True(second > 0, answer);
        Assert.Equal(-1, answer.IndexOf("HTTP/1.1 ", second + 1, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("epoll")]
    [InlineData("sockets")]
    public async Task IdleKeepAlive_ClosesQuietlyAtItsTimeout_AndRequestsBeforeItAreServed(string engine)
    {
        await using var host = TestHost.Start(url => TestHost.DefaultConfig(url, b =>
        {
            // 1 s against 100 ms gaps: a loaded 2-core CI box can stall a test's timer for a few hundred milliseconds.
            b.Limits = new LimitsConfig { KeepAliveTimeout = TimeSpan.FromSeconds(1) };
            b.Transport = new TransportConfig { Engine = engine };
        }));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(host.ProxyEndPoint);
        var buffer = new byte[4096];
        for (int i = 0; i < 5; i++)
        {
            // Each wait re-arms the deadline: requests 100 ms apart are all served on the one connection.
            await socket.SendAsync("GET /bytes/2 HTTP/1.1\r\nHost: a\r\n\r\n"u8.ToArray());
            var text = new StringBuilder();
            while (!text.ToString().EndsWith("\r\n\r\nab", StringComparison.Ordinal))
            {
                int n = await socket.ReceiveAsync(buffer).WaitAsync(TimeSpan.FromSeconds(10));
                Assert.True(n > 0, $"closed after {i} answers: {text}");
                text.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }
            Assert.StartsWith("HTTP/1.1 200", text.ToString());
            await Task.Delay(100);
        }
        var idleSince = System.Diagnostics.Stopwatch.StartNew();
        string rest = await TestHost.ReadToCloseAsync(socket, TimeSpan.FromSeconds(10));
        Assert.Equal("", rest); // quiet: no 408 to a client that sent nothing
        Assert.InRange(idleSince.Elapsed, TimeSpan.FromMilliseconds(850), TimeSpan.FromSeconds(6));
    }

    [Fact]
    public async Task Head_204_304_HaveNoBody_AndConnectionStaysUsable()
    {
        await using var host = TestHost.Start();
        string answer = await host.SendRawAsync(
            "HEAD /bytes/10 HTTP/1.1\r\nHost: a\r\n\r\n" +
            "GET /status/204 HTTP/1.1\r\nHost: a\r\n\r\n" +
            "GET /status/304 HTTP/1.1\r\nHost: a\r\n\r\n" +
            "GET /bytes/2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        var parts = answer.Split("HTTP/1.1 ", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, parts.Length);
        Assert.StartsWith("200", parts[0]);
        Assert.Contains("content-length: 10", parts[0], StringComparison.OrdinalIgnoreCase);
        Assert.EndsWith("\r\n\r\n", parts[0]);
        Assert.StartsWith("204", parts[1]);
        Assert.EndsWith("\r\n\r\n", parts[1]);
        Assert.StartsWith("304", parts[2]);
        Assert.EndsWith("\r\n\r\n", parts[2]);
        Assert.EndsWith("\r\n\r\nab", parts[3]);
    }

    [Fact]
    public async Task ExpectContinue_GetsInterim100ThenResponse()
    {
        await using var host = TestHost.Start();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(host.ProxyEndPoint);
        await socket.SendAsync("POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"u8.ToArray());
        var buffer = new byte[1024];
        int n = await socket.ReceiveAsync(buffer).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.StartsWith("HTTP/1.1 100 Continue\r\n\r\n", Encoding.ASCII.GetString(buffer, 0, n));
        await socket.SendAsync("hello"u8.ToArray());
        string rest = await TestHost.ReadToCloseAsync(socket, TimeSpan.FromSeconds(10));
        Assert.Contains("HTTP/1.1 200", Encoding.ASCII.GetString(buffer, 0, n) + rest);
        Assert.EndsWith("{\"bytes\":5}", rest);
    }

    [Fact]
    public async Task AbsoluteFormTarget_IsRoutedByItsAuthority()
    {
        await using var host = TestHost.Start();
        string answer = await host.SendRawAsync("GET http://example.test:81/headers?q=1 HTTP/1.1\r\nHost: ignored\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200", answer);
        Assert.Contains("\"path\":\"/headers\"", answer);
        Assert.Contains("[\"host\",\"example.test:81\"]", answer);
    }

    [Fact]
    public async Task ResponseTrailers_PassThroughChunked()
    {
        await using var host = TestHost.Start();
        string answer = await host.SendRawAsync("GET /trailers HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200", answer);
        Assert.Contains("transfer-encoding: chunked", answer, StringComparison.OrdinalIgnoreCase);
        Assert.EndsWith("0\r\nx-checksum: c0ffee\r\n\r\n", answer);
        Assert.Contains("hello, ", answer);
    }

    [Fact]
    public async Task WebSocket_EchoesThroughTheProxy()
    {
        await using var host = TestHost.Start();
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(new Uri($"ws://{host.ProxyEndPoint}/ws"), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        var received = new byte[1024];
        for (int i = 0; i < 5; i++)
        {
            var text = Encoding.UTF8.GetBytes($"message {i}");
            await ws.SendAsync(text, WebSocketMessageType.Text, true, CancellationToken.None);
            var result = await ws.ReceiveAsync(received, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal($"message {i}", Encoding.UTF8.GetString(received, 0, result.Count));
        }
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(WebSocketState.Closed, ws.State);
    }

    [Fact]
    public async Task Admin_ServesHealthReadinessMetricsAndRedactedConfig()
    {
        await using var host = TestHost.Start();
        using var client = host.CreateClient();
        await client.GetAsync("/bytes/1");
        using var admin = new HttpClient { BaseAddress = host.AdminUri };
        Assert.Equal("ok\n", await admin.GetStringAsync("/healthz"));
        Assert.Equal("ready\n", await admin.GetStringAsync("/readyz"));
        string metrics = await MetricsTests.MetricsAfterAsync(host, 1); // counted just after the answer went out
        foreach (var name in new[] { "proxycore_requests_total{route=\"mock\",status=\"200\"}", "proxycore_request_duration_seconds_bucket",
                     "proxycore_upstream_duration_seconds_count", "proxycore_connections{side=\"client\"}", "proxycore_connections{side=\"upstream\"}",
                     "dotnet_gc_allocated_bytes_total", "dotnet_gc_collections_total{generation=\"0\"}", "process_cpu_seconds_total", "process_resident_memory_bytes" })
        {
            Assert.Contains(name, metrics);
        }
        string config = await admin.GetStringAsync("/config");
        using var doc = JsonDocument.Parse(config);
        Assert.Equal("mock", doc.RootElement.GetProperty("routes")[0].GetProperty("id").GetString());
    }

    [Fact]
    public async Task AccessLog_WritesOneJsonLinePerRequest()
    {
        var log = new BlockingStream();
        await using (var host = TestHost.Start(url => TestHost.DefaultConfig(url, b => b.AccessLog = true), log))
        {
            using var client = host.CreateClient();
            await client.GetAsync("/bytes/7?x=y");
            await client.GetAsync("/status/418");
        }
        var lines = log.Text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        using var first = JsonDocument.Parse(lines[0]);
        Assert.Equal("/bytes/7?x=y", first.RootElement.GetProperty("target").GetString());
        Assert.Equal(200, first.RootElement.GetProperty("status").GetInt32());
        Assert.Equal("mock", first.RootElement.GetProperty("route").GetString());
        using var second = JsonDocument.Parse(lines[1]);
        Assert.Equal(418, second.RootElement.GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task Reload_SwapsRoutesWithoutFailingRequests()
    {
        await using var host = TestHost.Start();
        using var client = host.CreateClient();
        var failures = 0;
        var stop = DateTime.UtcNow.AddSeconds(2);
        var load = Task.Run(async () =>
        {
            int count = 0;
            while (DateTime.UtcNow < stop && count++ < 100_000)
            {
                var response = await client.GetAsync("/bytes/10");
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    Interlocked.Increment(ref failures);
                }
            }
        });
        string upstream = $"http://{host.Upstream.EndPoint}";
        for (int i = 0; i < 20; i++)
        {
            host.Proxy.Reload(TestHost.DefaultConfig(upstream, b => b.ExtraRoutes.Add(new RouteConfig { Id = "r" + i, Match = new RouteMatchConfig { Path = "/r/" }, Cluster = "mock" })));
            await Task.Delay(50);
        }
        await load;
        Assert.Equal(0, failures);
        Assert.True(host.Proxy.Current.Version >= 20);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>A write-only stream the access log writes into, readable by the test.</summary>
    private sealed class BlockingStream : MemoryStream
    {
        private readonly object _gate = new();

        public string Text
        {
            get
            {
                lock (_gate)
                {
                    return Encoding.UTF8.GetString(ToArray());
                }
            }
        }

        public override void Write(ReadOnlySpan<byte> buffer) => Write(buffer.ToArray(), 0, buffer.Length);

        public override void Write(byte[] buffer, int offset, int count)
        {
            lock (_gate)
            {
                base.Write(buffer, offset, count);
            }
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Write(buffer.Span);
            return ValueTask.CompletedTask;
        }
    }
}
