using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace ProxyCore.FunctionalTests;

/// <summary>
/// The nghttp2 project's own clients (Debian nghttp2-client: nghttp, h2load) and HttpClient against
/// the in-process proxy over real loopback sockets, h2c by prior knowledge.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed partial class Http2ClientsTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    [ToolFact("nghttp")]
    public async Task Nghttp_Verbose_SeesOurSettingsAndA200()
    {
        await using var host = TestHost.Start();
        var (exit, output, error) = await RunAsync("nghttp", $"-nv {host.BaseUri}hello?from=nghttp");
        Assert.True(exit == 0, $"nghttp exited {exit}: {error}\n{output}");
        // -v prints every frame: our preface SETTINGS with the documented defaults (nghttp sends its
        // own 100 and 65535 too; the header list size and the connection window are ours alone), then
        // the answer. nghttp opens its request on stream 13, after five PRIORITY-only streams.
        Assert.Matches(@"recv SETTINGS frame <length=30, flags=0x00, stream_id=0>", output);
        Assert.Contains("[SETTINGS_MAX_HEADER_LIST_SIZE(0x06):32768]", output);
        Assert.Contains("[SETTINGS_HEADER_TABLE_SIZE(0x01):4096]", output);
        Assert.Contains("(window_size_increment=983041)", output); // 1 MiB connection window
        Assert.Matches(@"recv \(stream_id=\d+\) :status: 200", output);
        Assert.Matches(@"recv DATA frame <length=\d+, flags=0x01, stream_id=\d+>\s+; END_STREAM", output);
        Assert.DoesNotContain("PROTOCOL_ERROR", output);
    }

    [ToolFact("nghttp")]
    public async Task Nghttp_ManyParallelStreamsAndAnUpload_AllAnswered()
    {
        await using var host = TestHost.Start();
        var upload = Path.GetTempFileName();
        try
        {
            await File.WriteAllBytesAsync(upload, Enumerable.Range(0, 300_000).Select(i => (byte)i).ToArray());
            // -m 50: the same URI fetched 50 times concurrently on one connection; -d: a POST body.
            var (exit, output, error) = await RunAsync("nghttp", $"-ns -m 50 {host.BaseUri}bytes/20000");
            Assert.True(exit == 0, $"nghttp exited {exit}: {error}\n{output}");
            Assert.Equal(50, Regex.Matches(output, @"/bytes/20000\b").Count);
            (exit, output, error) = await RunAsync("nghttp", $"-ns -d {upload} {host.BaseUri}echo");
            Assert.True(exit == 0, $"nghttp exited {exit}: {error}\n{output}");
            Assert.Contains("/echo", output);
        }
        finally
        {
            File.Delete(upload);
        }
    }

    [ToolFact("h2load")]
    public async Task H2load_TwoThousandRequestsFourConnections32Streams_AllSucceed()
    {
        await using var host = TestHost.Start();
        var (exit, output, error) = await RunAsync("h2load", $"-n 2000 -c 4 -m 32 {host.BaseUri}bytes/100");
        Assert.True(exit == 0, $"h2load exited {exit}: {error}\n{output}");
        var requests = RequestsLine().Match(output);
        Assert.True(requests.Success, output);
        Assert.Equal("2000", requests.Groups["total"].Value);
        Assert.Equal("2000", requests.Groups["succeeded"].Value);
        Assert.Equal("0", requests.Groups["failed"].Value);
        Assert.Equal("0", requests.Groups["errored"].Value);
        Assert.Equal("0", requests.Groups["timeout"].Value);
        Assert.Matches(@"status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx", output);
    }

    [ToolFact("h2load")]
    public async Task H2load_PostBodies_AllSucceed()
    {
        await using var host = TestHost.Start();
        var upload = Path.GetTempFileName();
        try
        {
            await File.WriteAllBytesAsync(upload, new byte[100_000]);
            var (exit, output, error) = await RunAsync("h2load", $"-n 200 -c 2 -m 8 -d {upload} {host.BaseUri}echo");
            Assert.True(exit == 0, $"h2load exited {exit}: {error}\n{output}");
            var requests = RequestsLine().Match(output);
            Assert.True(requests.Success, output);
            Assert.Equal("200", requests.Groups["succeeded"].Value);
            Assert.Equal("0", requests.Groups["failed"].Value);
            Assert.Equal("0", requests.Groups["errored"].Value);
        }
        finally
        {
            File.Delete(upload);
        }
    }

    /// <summary>
    /// A stream the client resets (HttpClient sends RST_STREAM CANCEL when its request is cancelled)
    /// aborts the upstream request: the proxy closes its upstream connection instead of leaving the
    /// work to run.
    /// </summary>
    [Fact]
    public async Task ClientResetsStream_UpstreamRequestAborted()
    {
        using var upstream = new TcpListener(IPAddress.Loopback, 0);
        upstream.Start();
        await using var host = TestHost.Start(_ => TestHost.DefaultConfig($"http://{upstream.LocalEndpoint}"));
        using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false })
        {
            BaseAddress = host.BaseUri,
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        using var cancel = new CancellationTokenSource();
        var request = client.GetAsync("/never-answered", cancel.Token);

        using var accepted = await upstream.AcceptSocketAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var head = new StringBuilder();
        var buffer = new byte[4096];
        using var readTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
        {
            int n = await accepted.ReceiveAsync(buffer, SocketFlags.None, readTimeout.Token);
            Assert.True(n > 0, "the proxy closed the upstream connection before sending the request");
            head.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
        Assert.StartsWith("GET /never-answered HTTP/1.1", head.ToString());

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
        // The upstream sees its connection end (FIN or reset), well before any timeout would.
        int read;
        try
        {
            read = await accepted.ReceiveAsync(buffer, SocketFlags.None, readTimeout.Token);
        }
        catch (SocketException)
        {
            read = 0;
        }
        Assert.Equal(0, read);

        // And the proxy's connection goes on serving.
        using var hello = new HttpRequestMessage(HttpMethod.Get, "/") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var next = client.SendAsync(hello);
        using var second = await upstream.AcceptSocketAsync().WaitAsync(TimeSpan.FromSeconds(30));
        head.Clear();
        while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
        {
            int n = await second.ReceiveAsync(buffer, SocketFlags.None, readTimeout.Token);
            Assert.True(n > 0);
            head.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
        await second.SendAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), SocketFlags.None);
        using var response = await next.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ok", await response.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// Rapid Reset over a real socket, with the budget from config (limits.http2.maxRapidResets): the
    /// attacking connection gets GOAWAY ENHANCE_YOUR_CALM, a client on another connection is served.
    /// </summary>
    [Fact]
    public async Task RapidResetOverTcp_ConfiguredBudget_GoAwayEnhanceYourCalmOthersServed()
    {
        await using var host = TestHost.Start(url => TestHost.DefaultConfig(url, b => b.Limits = new ProxyCore.Routing.Config.LimitsConfig
        {
            Http2 = new ProxyCore.Routing.Config.Http2LimitsConfig { MaxRapidResets = 50 },
        }));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(host.ProxyEndPoint);
        var attack = new MemoryStream();
        attack.Write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8);
        WriteFrame(attack, 0x4, 0, 0, []); // SETTINGS
        for (int i = 0; i < 60; i++)
        {
            int streamId = 1 + (2 * i);
            WriteFrame(attack, 0x1, 0x5, streamId, RequestBlock("/delay/10000", host.ProxyEndPoint.ToString())); // HEADERS, END_STREAM | END_HEADERS
            WriteFrame(attack, 0x3, 0, streamId, [0, 0, 0, 8]); // RST_STREAM CANCEL
        }
        await socket.SendAsync(attack.ToArray(), SocketFlags.None);

        var (type, code) = await ReadUntilGoAwayAsync(socket);
        Assert.Equal(0x7, type);
        Assert.Equal(0xBu, code); // ENHANCE_YOUR_CALM

        using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false })
        {
            BaseAddress = host.BaseUri,
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        using var response = await client.GetAsync("/hello");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version20, response.Version);
    }

    private static void WriteFrame(MemoryStream output, byte type, byte flags, int streamId, ReadOnlySpan<byte> payload)
    {
        output.Write([(byte)(payload.Length >> 16), (byte)(payload.Length >> 8), (byte)payload.Length, type, flags,
            (byte)(streamId >> 24), (byte)(streamId >> 16), (byte)(streamId >> 8), (byte)streamId]);
        output.Write(payload);
    }

    /// <summary>An HPACK block of literals without indexing (RFC 7541 §6.2.2), no Huffman.</summary>
    private static byte[] RequestBlock(string path, string authority)
    {
        var block = new MemoryStream();
        foreach (var (name, value) in new[] { (":method", "GET"), (":scheme", "http"), (":path", path), (":authority", authority) })
        {
            block.WriteByte(0x00);
            block.WriteByte((byte)name.Length);
            block.Write(Encoding.ASCII.GetBytes(name));
            block.WriteByte((byte)value.Length);
            block.Write(Encoding.ASCII.GetBytes(value));
        }
        return block.ToArray();
    }

    /// <summary>Reads frames until GOAWAY: its type and error code; (0, 0) when the connection closed first.</summary>
    private static async Task<(int Type, uint Code)> ReadUntilGoAwayAsync(Socket socket)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var buffer = new List<byte>();
        var chunk = new byte[16 * 1024];
        while (true)
        {
            while (buffer.Count >= 9)
            {
                int length = (buffer[0] << 16) | (buffer[1] << 8) | buffer[2];
                if (buffer.Count < 9 + length)
                {
                    break;
                }
                int type = buffer[3];
                if (type == 0x7)
                {
                    uint code = (uint)((buffer[13] << 24) | (buffer[14] << 16) | (buffer[15] << 8) | buffer[16]);
                    return (type, code);
                }
                buffer.RemoveRange(0, 9 + length);
            }
            int n = await socket.ReceiveAsync(chunk, SocketFlags.None, timeout.Token);
            if (n == 0)
            {
                return (0, 0);
            }
            buffer.AddRange(chunk.AsSpan(0, n).ToArray());
        }
    }

    [GeneratedRegex(@"requests: (?<total>\d+) total, \d+ started, \d+ done, (?<succeeded>\d+) succeeded, (?<failed>\d+) failed, (?<errored>\d+) errored, (?<timeout>\d+) timeout")]
    private static partial Regex RequestsLine();

    private static async Task<(int Exit, string Output, string Error)> RunAsync(string tool, string arguments)
    {
        var start = new ProcessStartInfo(tool, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(Timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{tool} {arguments} did not finish in {Timeout}: {await output}");
        }
        return (process.ExitCode, await output, await error);
    }
}

/// <summary>
/// A fact that needs a command-line tool: skipped, saying what to install, only when the tool is not
/// on PATH (CI installs it, so there it runs).
/// </summary>
public sealed class ToolFactAttribute : FactAttribute
{
    public ToolFactAttribute(string tool, string debianPackage = "nghttp2-client")
    {
        if (!IsOnPath(tool))
        {
            Skip = $"'{tool}' is not installed (Debian: apt-get install {debianPackage}; .ci/run installs it)";
        }
    }

    private static bool IsOnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, tool)));
}
