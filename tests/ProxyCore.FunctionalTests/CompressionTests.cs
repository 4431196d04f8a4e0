using System.Buffers;
using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using ProxyCore.Http;
using HttpMethod = System.Net.Http.HttpMethod;
using HttpVersion = System.Net.HttpVersion;
using ProxyCore.Routing.Config;

namespace ProxyCore.FunctionalTests;

/// <summary>Response compression over real sockets: negotiation, byte-exact round trips, streaming, and every skip case.</summary>
[Collection(SerialCollection.Name)]
public sealed class CompressionTests
{
    private static TestHost Start(CompressionConfig? compression = null) => TestHost.Start(url =>
    {
        var config = TestHost.DefaultConfig(url);
        config.Routes[0].Compression = compression ?? new CompressionConfig();
        return config;
    }, upstreamApplication: new DocumentUpstream());

    private static HttpClient RawClient(TestHost host, Version? version = null) => new(new SocketsHttpHandler { UseProxy = false, AutomaticDecompression = DecompressionMethods.None })
    {
        BaseAddress = host.BaseUri,
        Timeout = TimeSpan.FromSeconds(60),
        DefaultRequestVersion = version ?? HttpVersion.Version11,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };

    private static byte[] Decode(string? coding, byte[] body)
    {
        if (coding is null)
        {
            return body;
        }
        using Stream decoder = coding == "br" ? new BrotliStream(new MemoryStream(body), CompressionMode.Decompress) : new GZipStream(new MemoryStream(body), CompressionMode.Decompress);
        var output = new MemoryStream();
        decoder.CopyTo(output);
        return output.ToArray();
    }

    [Theory]
    [InlineData("gzip", "gzip")]
    [InlineData("br", "br")]
    [InlineData("gzip, deflate, br", "br")]      // equal weights: br
    [InlineData("gzip;q=1.0, br;q=0.5", "gzip")]
    [InlineData("br;q=0.8, gzip;q=0.9", "gzip")]
    [InlineData("br;q=0, gzip;q=0.1", "gzip")]
    [InlineData("*", "br")]
    [InlineData("gzip;q=0, *", "br")]
    [InlineData("br;q=0, *;q=0.3", "gzip")]
    [InlineData("*;q=0.5, gzip", "gzip")]
    [InlineData("identity", null)]
    [InlineData("deflate, zstd", null)]
    [InlineData("br;q=0, gzip;q=0", null)]
    [InlineData("gzip;q=2", null)]                 // malformed weight: refused, not guessed
    [InlineData("GZIP", "gzip")]
    [InlineData(null, null)]
    public async Task AcceptEncoding_PicksTheCoding_BodyRoundTripsByteExact(string? acceptEncoding, string? expected)
    {
        await using var host = Start();
        using var client = RawClient(host);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/doc?size=20000");
        if (acceptEncoding is not null)
        {
            request.Headers.TryAddWithoutValidation("accept-encoding", acceptEncoding);
        }
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(expected, response.Content.Headers.ContentEncoding.SingleOrDefault());
        Assert.Contains("accept-encoding", response.Headers.Vary, StringComparer.OrdinalIgnoreCase);
        Assert.Equal(DocumentUpstream.Document(20000), Decode(expected, body));
        if (expected is null)
        {
            Assert.Equal(20000, response.Content.Headers.ContentLength);
        }
        else
        {
            Assert.True(response.Headers.TransferEncodingChunked); // so no Content-Length (HttpClient fills one in once it has buffered the body)
            Assert.True(body.Length < 20000 / 3, $"compressed to {body.Length} bytes");
            Assert.Equal("W/\"v1\"", response.Headers.ETag?.ToString());
        }
    }

    [Theory]
    [InlineData("gzip", false)]
    [InlineData("br", false)]
    [InlineData("gzip", true)]
    [InlineData("br", true)]
    public async Task LargeStreamedBody_DecompressedByHttpClient_ByteExact_H1AndH2(string coding, bool http2)
    {
        await using var host = Start();
        using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false, AutomaticDecompression = DecompressionMethods.All })
        {
            BaseAddress = host.BaseUri,
            DefaultRequestVersion = http2 ? HttpVersion.Version20 : HttpVersion.Version11,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        using var request = new HttpRequestMessage(HttpMethod.Get, "/doc?size=3000000&chunked=1")
        {
            Version = http2 ? HttpVersion.Version20 : HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.AcceptEncoding.Clear();
        request.Headers.TryAddWithoutValidation("accept-encoding", coding);
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(http2 ? HttpVersion.Version20 : HttpVersion.Version11, response.Version);
        Assert.Equal(DocumentUpstream.Document(3_000_000), await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task SlowStream_EachPieceIsDecodableBeforeTheUpstreamSendsTheNext()
    {
        await using var host = Start(new CompressionConfig { MinBytes = 0 });
        using var client = RawClient(host);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/events");
        request.Headers.TryAddWithoutValidation("accept-encoding", "gzip");
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("gzip", response.Content.Headers.ContentEncoding.Single());
        using var gzip = new GZipStream(await response.Content.ReadAsStreamAsync(), CompressionMode.Decompress);
        using var reader = new StreamReader(gzip);
        // The upstream waits for the release after each event: a proxy that held compressed bytes back would hang here.
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal($"data: event {i}", await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Equal("", await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)));
            DocumentUpstream.ReleaseNextEvent();
        }
        Assert.Null(await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Theory]
    [InlineData("/doc?size=500", "small body (Content-Length below minBytes)")]
    [InlineData("/doc?size=20000&type=image/png", "type not listed")]
    [InlineData("/doc?size=20000&type=", "no Content-Type")]
    [InlineData("/doc?size=20000&encoding=gzip", "upstream already compressed")]
    [InlineData("/doc?size=20000&cache=no-transform", "Cache-Control: no-transform")]
    [InlineData("/doc?size=20000&cache=public,%20no-transform", "no-transform in a list")]
    [InlineData("/doc?size=20000&status=206", "206 with Content-Range")]
    [InlineData("/doc?size=0&status=204", "204")]
    [InlineData("/doc?size=0&status=304", "304")]
    public async Task Skipped_BodyAndHeadersPassUnchanged(string target, string why)
    {
        await using var host = Start();
        using var client = RawClient(host);
        using var request = new HttpRequestMessage(HttpMethod.Get, target);
        request.Headers.TryAddWithoutValidation("accept-encoding", "gzip, br");
        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsByteArrayAsync();
        var upstreamEncoding = target.Contains("encoding=gzip") ? "gzip" : null;
        Assert.True(upstreamEncoding == response.Content.Headers.ContentEncoding.SingleOrDefault(), why);
        int size = int.Parse(Regex.Match(target, "size=(\\d+)").Groups[1].Value);
        Assert.Equal(DocumentUpstream.Document(size), body);
        if (size > 0)
        {
            Assert.Equal(size, response.Content.Headers.ContentLength);
        }
        Assert.Equal("\"v1\"", response.Headers.ETag?.ToString());
    }

    [Fact]
    public async Task Head_KeepsContentLength_NoCoding()
    {
        await using var host = Start();
        using var client = RawClient(host);
        using var request = new HttpRequestMessage(HttpMethod.Head, "/doc?size=20000");
        request.Headers.TryAddWithoutValidation("accept-encoding", "gzip, br");
        using var response = await client.SendAsync(request);
        Assert.Empty(response.Content.Headers.ContentEncoding);
        Assert.Equal(20000, response.Content.Headers.ContentLength);
    }

    [Theory]
    [InlineData("1.0", false)]
    [InlineData("1.1", true)]
    public async Task Http10Client_GetsTheBodyUncompressed_WithItsLength(string version, bool compressed)
    {
        await using var host = Start();
        string answer = await host.SendRawAsync($"GET /doc?size=5000 HTTP/{version}\r\nHost: t\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n");
        Assert.StartsWith($"HTTP/1.1 200", answer);
        Assert.Equal(compressed, answer.Contains("\r\ncontent-encoding: gzip\r\n", StringComparison.OrdinalIgnoreCase));
        Assert.Equal(!compressed, answer.Contains("\r\ncontent-length: 5000\r\n", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task RouteWithoutCompression_NeverCompresses()
    {
        await using var host = TestHost.Start(url => TestHost.DefaultConfig(url), upstreamApplication: new DocumentUpstream());
        using var client = RawClient(host);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/doc?size=20000");
        request.Headers.TryAddWithoutValidation("accept-encoding", "gzip, br");
        using var response = await client.SendAsync(request);
        Assert.Empty(response.Content.Headers.ContentEncoding);
        Assert.DoesNotContain("accept-encoding", response.Headers.Vary, StringComparer.OrdinalIgnoreCase);
        Assert.Equal(DocumentUpstream.Document(20000), await response.Content.ReadAsByteArrayAsync());
    }

    [Theory]
    [InlineData(false, true, "br", "br")]
    [InlineData(true, false, "br", null)]
    [InlineData(true, false, "gzip, br", "gzip")]
    [InlineData(false, true, "gzip", null)]
    public async Task OnlyEnabledCodingsAreOffered(bool gzip, bool brotli, string accept, string? expected)
    {
        await using var host = Start(new CompressionConfig { Gzip = gzip, Brotli = brotli, Level = "optimal" });
        using var client = RawClient(host);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/doc?size=5000");
        request.Headers.TryAddWithoutValidation("accept-encoding", accept);
        using var response = await client.SendAsync(request);
        Assert.Equal(expected, response.Content.Headers.ContentEncoding.SingleOrDefault());
        Assert.Equal(DocumentUpstream.Document(5000), Decode(expected, await response.Content.ReadAsByteArrayAsync()));
    }

    [Theory]
    [InlineData("gzip", false)]
    [InlineData("br", false)]
    [InlineData("gzip", true)]
    [InlineData("br", true)]
    public async Task Curl_Compressed_ByteExact_AndCountedInMetrics(string coding, bool http2)
    {
        await using var host = Start();
        string file = Path.Combine(Path.GetTempPath(), $"proxycore-curl-{Guid.NewGuid():N}");
        try
        {
            var curl = Process.Start(new ProcessStartInfo("curl", ["-sS", http2 ? "--http2-prior-knowledge" : "--http1.1", "--compressed", "-H", $"accept-encoding: {coding}",
                "-D", "-", "-o", file, $"{host.BaseUri}doc?size=200000&chunked=1"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            string headers = await curl.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
            await curl.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(curl.ExitCode == 0, await curl.StandardError.ReadToEndAsync());
            Assert.Contains($"content-encoding: {coding}", headers, StringComparison.OrdinalIgnoreCase);
            Assert.StartsWith(http2 ? "HTTP/2 200" : "HTTP/1.1 200", headers);
            Assert.Equal(DocumentUpstream.Document(200_000), await File.ReadAllBytesAsync(file));
        }
        finally
        {
            File.Delete(file);
        }
        Assert.Contains($"proxycore_compressed_responses_total{{route=\"mock\",encoding=\"{coding}\"}} 1\n", await MetricsTests.MetricsAfterAsync(host, 1));
    }

    [Fact]
    public async Task ExistingVary_IsKept_AcceptEncodingAdded()
    {
        await using var host = Start();
        using var client = RawClient(host);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/doc?size=5000&vary=origin");
        request.Headers.TryAddWithoutValidation("accept-encoding", "gzip");
        using var response = await client.SendAsync(request);
        Assert.Contains("origin", response.Headers.Vary, StringComparer.OrdinalIgnoreCase);
        Assert.Contains("accept-encoding", response.Headers.Vary, StringComparer.OrdinalIgnoreCase);
    }
}

/// <summary>
/// An upstream for compression tests: GET /doc?size=N[&amp;chunked=1][&amp;type=T][&amp;encoding=E][&amp;cache=C][&amp;status=S][&amp;vary=V]
/// answers <see cref="Document"/> bytes with ETag "v1"; GET /events streams three SSE events, each after a release.
/// </summary>
internal sealed class DocumentUpstream : IHttpApplication
{
    private static readonly SemaphoreSlim s_events = new(0);

    /// <summary>Compressible but not trivial: numbered JSON-ish lines.</summary>
    public static byte[] Document(int size)
    {
        var text = new StringBuilder(size + 64);
        for (int i = 0; text.Length < size; i++)
        {
            text.Append("{\"id\":").Append(i).Append(",\"name\":\"item ").Append(i * 7919 % 10007).Append("\",\"ok\":true}\n");
        }
        return Encoding.ASCII.GetBytes(text.ToString(0, size));
    }

    public static void ReleaseNextEvent() => s_events.Release();

    public async ValueTask ProcessAsync(HttpExchange exchange)
    {
        var request = exchange.Request;
        var response = exchange.Response;
        string path = Encoding.ASCII.GetString(request.PathSpan);
        var query = System.Web.HttpUtility.ParseQueryString(Encoding.ASCII.GetString(request.QuerySpan));
        if (path == "/events")
        {
            response.StatusCode = 200;
            response.AddHeader("content-type"u8, "text/event-stream"u8);
            await exchange.StartResponseAsync(BodyFraming.Stream, -1);
            for (int i = 0; i < 3; i++)
            {
                await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes($"data: event {i}\n\n")), flush: true);
                if (!await s_events.WaitAsync(TimeSpan.FromSeconds(10)))
                {
                    break;
                }
            }
            await exchange.CompleteResponseAsync();
            return;
        }
        int size = int.Parse(query["size"] ?? "0");
        int status = int.Parse(query["status"] ?? "200");
        var body = Document(size);
        response.StatusCode = status;
        string type = query["type"] ?? "application/json; charset=utf-8";
        if (type.Length > 0)
        {
            response.AddHeader("content-type"u8, Encoding.ASCII.GetBytes(type));
        }
        response.AddHeader("etag"u8, "\"v1\""u8);
        if (query["encoding"] is { } encoding)
        {
            response.AddHeader("content-encoding"u8, Encoding.ASCII.GetBytes(encoding)); // a label only: the test checks it is left alone
        }
        if (query["cache"] is { } cache)
        {
            response.AddHeader("cache-control"u8, Encoding.ASCII.GetBytes(cache));
        }
        if (query["vary"] is { } vary)
        {
            response.AddHeader("vary"u8, Encoding.ASCII.GetBytes(vary));
        }
        if (status == 206)
        {
            response.AddHeader("content-range"u8, Encoding.ASCII.GetBytes($"bytes 0-{size - 1}/{size * 2}"));
        }
        if (status is 204 or 304)
        {
            await exchange.StartResponseAsync(BodyFraming.None, 0);
            await exchange.CompleteResponseAsync();
            return;
        }
        bool chunked = query["chunked"] == "1";
        await exchange.StartResponseAsync(chunked ? BodyFraming.Stream : BodyFraming.ContentLength, body.Length);
        if (request.Method != ProxyCore.Http.HttpMethod.Head)
        {
            for (int offset = 0; offset < body.Length; offset += 16 * 1024)
            {
                await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(body, offset, Math.Min(16 * 1024, body.Length - offset)), flush: chunked);
            }
        }
        await exchange.CompleteResponseAsync();
    }
}
