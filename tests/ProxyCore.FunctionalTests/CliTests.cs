using System.Net;
using ProxyCore.Server;

namespace ProxyCore.FunctionalTests;

/// <summary>The binary as operators run it: CLI contract, signals, reload, curl, memory while streaming.</summary>
[Collection(SerialCollection.Name)]
public sealed class CliTests
{
    private static string WriteConfig(string json)
    {
        var path = Path.Combine(Path.GetTempPath(), "proxycore-test-" + Guid.NewGuid().ToString("N") + ".json");
        File.WriteAllText(path, json);
        return path;
    }

    private static string Config(int listenPort, string upstream, string path = "/a/", string extra = "") => $$"""
        {
          // comments are allowed
          "listeners": [ { "address": "127.0.0.1:{{listenPort}}" } ],
          "admin": { "enabled": false },
          "routes": [ { "id": "a", "match": { "path": "{{path}}" }, "cluster": "mock" } ],
          "clusters": [ { "id": "mock", "destinations": [ { "address": "{{upstream}}" } ] } ]{{extra}}
        }
        """;

    [Fact]
    public async Task Version_And_Help_ExitZero()
    {
        var (code, output) = await ProxyProcess.RunAsync("--version");
        Assert.Equal(0, code);
        Assert.StartsWith("proxycore ", output);
        (code, output) = await ProxyProcess.RunAsync("--help");
        Assert.Equal(0, code);
        Assert.Contains("proxycore validate FILE", output);
    }

    [Fact]
    public async Task UnknownArgument_ExitsTwoWithUsage()
    {
        var (code, output) = await ProxyProcess.RunAsync("--frobnicate");
        Assert.Equal(2, code);
        Assert.Contains("unknown or incomplete argument '--frobnicate'", output);
    }

    [Fact]
    public async Task Validate_ValidFile_ExitsZero_InvalidFile_ListsEveryErrorWithItsPath()
    {
        var good = WriteConfig(Config(8080, "http://127.0.0.1:9000"));
        var (code, output) = await ProxyProcess.RunAsync("validate", good);
        Assert.Equal(0, code);
        Assert.Contains("valid", output);

        var bad = WriteConfig("""
            { "listeners": [ { "address": "nope" } ],
              "routes": [ { "id": "r", "match": { "path": "api" }, "cluster": "missing", "timout": "5s" } ],
              "clusters": [] }
            """);
        (code, output) = await ProxyProcess.RunAsync("validate", bad);
        Assert.Equal(1, code);
        Assert.Contains("$.listeners[0].address", output);
        Assert.Contains("$.routes[0].match.path", output);
        Assert.Contains("$.routes[0].cluster", output);
        Assert.Contains("$.routes[0].timout", output);
    }

    [Fact]
    public async Task Validate_LlmBlock_ListsItsErrorsWithPaths()
    {
        var bad = WriteConfig("""
            { "listeners": [ { "address": "127.0.0.1:8080" } ],
              "routes": [ { "id": "ai", "match": { "path": "/v1/" }, "cluster": "c",
                "llm": { "providers": [ { "name": "p", "type": "gemini", "cluster": "nowhere" } ],
                         "keys": [ { "name": "k", "key": "env:PROXYCORE_TEST_SURELY_UNSET", "tokensPerMinute": 0 } ] } } ],
              "clusters": [ { "id": "c", "destinations": [ { "address": "http://127.0.0.1:9000" } ] } ] }
            """);
        var (code, output) = await ProxyProcess.RunAsync("validate", bad);
        Assert.Equal(1, code);
        Assert.Contains("$.routes[0].llm.providers[0].type", output);
        Assert.Contains("$.routes[0].llm.providers[0].cluster", output);
        Assert.Contains("$.routes[0].llm.keys[0].key: environment variable 'PROXYCORE_TEST_SURELY_UNSET' is not set", output);
        Assert.Contains("$.routes[0].llm.keys[0].tokensPerMinute", output);
    }

    [Fact]
    public async Task ListenUpstream_Sidecar_ServesCurl()
    {
        await using var upstream = SimpleHttpServer.Start(new IPEndPoint(IPAddress.Loopback, 0), new MockUpstream());
        int port = ProxyProcess.FreePort();
        await using var proxy = ProxyProcess.Start("--listen", $"127.0.0.1:{port}", "--upstream", $"http://{upstream.EndPoint}", "--admin", "off");
        await proxy.WaitForPortAsync(new IPEndPoint(IPAddress.Loopback, port));
        var (code, stdout, stderr) = await Curl.RunAsync("-sS", "-i", $"http://127.0.0.1:{port}/bytes/12");
        Assert.True(code == 0, stderr);
        Assert.StartsWith("HTTP/1.1 200", stdout);
        Assert.EndsWith("abcdefghijkl", stdout);

        // curl sends Expect: 100-continue for a large POST; the proxy answers it and streams the body.
        var file = Path.GetTempFileName();
        await File.WriteAllBytesAsync(file, new byte[2 * 1024 * 1024]);
        (code, stdout, stderr) = await Curl.RunAsync("-sS", "-v", "--data-binary", "@" + file, $"http://127.0.0.1:{port}/sink");
        Assert.True(code == 0, stderr);
        Assert.Contains("HTTP/1.1 100 Continue", stderr);
        Assert.Equal("{\"bytes\":2097152}", stdout);

        // Chunked upload with curl.
        (code, stdout, _) = await Curl.RunAsync("-sS", "-H", "Transfer-Encoding: chunked", "--data-binary", "hello chunked", $"http://127.0.0.1:{port}/echo");
        Assert.Equal("hello chunked", stdout);
    }

    [Fact]
    public async Task NoArguments_RunsTheEmbeddedDemoOn8080()
    {
        await ProxyProcess.WaitUntilFreeAsync(TimeSpan.FromSeconds(60), 8080, 9901);
        await using var proxy = ProxyProcess.Start();
        await proxy.WaitForPortAsync(new IPEndPoint(IPAddress.Loopback, 8080));
        await proxy.WaitForPortAsync(new IPEndPoint(IPAddress.Loopback, 9901));
        var (code, stdout, stderr) = await Curl.RunAsync("-sS", "http://127.0.0.1:8080/");
        Assert.True(code == 0, stderr);
        Assert.Contains("Hello from the ProxyCore demo upstream", stdout);
        // Exchanges are counted just after their answer is written: curl may read it first.
        Assert.True(await MetricsEventuallyContainAsync("proxycore_requests_total{route=\"demo\",status=\"200\"} 1"), proxy.Output);
        // The mock LLM behind the LLM stage on /v1/, with curl exactly as README shows it.
        (code, stdout, stderr) = await Curl.RunAsync("-sS", "http://127.0.0.1:8080/v1/chat/completions", "-d", "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
        Assert.True(code == 0, stderr);
        Assert.Contains("Mock answer from gpt-4o-mini: you said \\\"hi\\\".", stdout);
        Assert.True(await MetricsEventuallyContainAsync("proxycore_llm_tokens_total{kind=\"prompt\",key=\"open\",model=\"gpt-4o-mini\",provider=\"mock-openai\"} 4"), proxy.Output);
        proxy.Signal("TERM");
        Assert.Equal(0, await proxy.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("\"route\":\"demo\"", proxy.Output); // the demo's access log line
    }

    [Fact]
    public async Task Sigterm_DrainsTheRequestInFlight_ThenExitsZero()
    {
        var arrivals = new Arrivals(new MockUpstream());
        await using var upstream = SimpleHttpServer.Start(new IPEndPoint(IPAddress.Loopback, 0), arrivals);
        int port = ProxyProcess.FreePort();
        var config = WriteConfig(Config(port, $"http://{upstream.EndPoint}", path: "/", extra: """, "timeouts": { "drain": "10s" }"""));
        await using var proxy = ProxyProcess.Start("--config", config);
        await proxy.WaitForPortAsync(new IPEndPoint(IPAddress.Loopback, port));
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var slow = client.GetAsync("/delay/1500");
        // TERM once the request is in flight for sure (a fixed pause was not, on a loaded machine: it could land first).
        await arrivals.First.WaitAsync(TimeSpan.FromSeconds(30));
        proxy.Signal("TERM");
        var response = await slow.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("delayed 1500 ms\n", await response.Content.ReadAsStringAsync());
        Assert.Equal(0, await proxy.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("draining", proxy.Output);
    }

    [Theory]
    [InlineData("file")]
    [InlineData("HUP")]
    public async Task Reload_AppliesAValidFile_AndKeepsTheOldConfigOnAnInvalidOne(string trigger)
    {
        await using var upstream = SimpleHttpServer.Start(new IPEndPoint(IPAddress.Loopback, 0), new MockUpstream());
        int port = ProxyProcess.FreePort();
        string url = $"http://{upstream.EndPoint}";
        var config = WriteConfig(Config(port, url, path: "/a/"));
        await using var proxy = ProxyProcess.Start("--config", config);
        await proxy.WaitForPortAsync(new IPEndPoint(IPAddress.Loopback, port));
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/bytes/1")).StatusCode);

        ReplaceFile(config, Config(port, url, path: "/"));
        if (trigger == "HUP")
        {
            proxy.Signal("HUP");
        }
        Assert.True(await EventuallyAsync(async () => (await client.GetAsync("/bytes/1")).StatusCode == HttpStatusCode.OK), proxy.Output);

        ReplaceFile(config, "{ \"listeners\": [ { \"address\": \"oops\" } ] }");
        if (trigger == "HUP")
        {
            proxy.Signal("HUP");
        }
        Assert.True(await EventuallyAsync(() => Task.FromResult(proxy.Output.Contains("$.listeners[0].address"))), proxy.Output);
        Assert.Contains("rejected", proxy.Output);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/bytes/1")).StatusCode);
    }

    /// <summary>Replaces the file in one rename, as editors and config-management tools do, so no reader sees it half written.</summary>
    private static void ReplaceFile(string path, string content)
    {
        File.WriteAllText(path + ".tmp", content);
        File.Move(path + ".tmp", path, overwrite: true);
    }

    private static Task<bool> MetricsEventuallyContainAsync(string line) => EventuallyAsync(async () =>
    {
        var (_, metrics, _) = await Curl.RunAsync("-sS", "http://127.0.0.1:9901/metrics");
        return metrics.Contains(line);
    });

    private static Task<bool> EventuallyAsync(Func<Task<bool>> condition) => Eventually.TrueAsync(condition);

    /// <summary>
    /// Issue #2: a 1 GiB upload and a 1 GiB download pass through while the proxy's RSS stays under
    /// 100 MB — the relay streams, it never holds a body.
    /// </summary>
    [Fact]
    public async Task OneGiB_UploadAndDownload_StreamWithBoundedMemory()
    {
        const long size = 1L << 30;
        await using var upstream = SimpleHttpServer.Start(new IPEndPoint(IPAddress.Loopback, 0), new MockUpstream());
        int port = ProxyProcess.FreePort();
        var config = WriteConfig(Config(port, $"http://{upstream.EndPoint}", path: "/", extra: """, "limits": { "maxRequestBodyBytes": 0 }"""));
        await using var proxy = ProxyProcess.Start("--config", config);
        await proxy.WaitForPortAsync(new IPEndPoint(IPAddress.Loopback, port));
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromMinutes(3) };

        using (var response = await client.GetAsync($"/bytes/{size}", HttpCompletionOption.ResponseHeadersRead))
        {
            await using var stream = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[256 * 1024];
            long total = 0;
            int n;
            while ((n = await stream.ReadAsync(buffer)) > 0)
            {
                total += n;
            }
            Assert.Equal(size, total);
        }

        var upload = await client.PostAsync("/sink", new StreamContent(new PatternStream(size), 256 * 1024) { Headers = { ContentLength = size } });
        Assert.Equal("{\"bytes\":" + size + "}", await upload.Content.ReadAsStringAsync());

        long peak = proxy.PeakRssBytes();
        Assert.True(peak < 100L * 1024 * 1024, $"peak RSS {peak / (1024 * 1024)} MB");
    }

    /// <summary>A read-only stream of N generated bytes, so the test itself holds no gigabyte either.</summary>
    private sealed class PatternStream(long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = (int)Math.Min(count, length - _position);
            buffer.AsSpan(offset, n).Fill((byte)'p');
            _position += n;
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>The upstream, telling the test when the first request reached it.</summary>
    private sealed class Arrivals(ProxyCore.Http.IHttpApplication inner) : ProxyCore.Http.IHttpApplication
    {
        private readonly TaskCompletionSource _first = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task First => _first.Task;

        public ValueTask ProcessAsync(ProxyCore.Http.HttpExchange exchange)
        {
            _first.TrySetResult();
            return inner.ProcessAsync(exchange);
        }
    }
}
