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
    public ToolFactAttribute(string tool)
    {
        if (!IsOnPath(tool))
        {
            Skip = $"'{tool}' is not installed (Debian: apt-get install nghttp2-client; .ci/run installs it)";
        }
    }

    private static bool IsOnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, tool)));
}
