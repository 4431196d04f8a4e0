using System.Net;
using System.Net.Sockets;
using System.Text;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using ProxyCore.FunctionalTests.Grpc;
using ProxyCore.Proxy.Health;
using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;
using ProxyCore.Transport;
using ProxyCore.Server;

namespace ProxyCore.FunctionalTests;

/// <summary>
/// The relay to HTTP/2 upstreams ("protocol": "http2"): real Kestrel upstreams (h2c only, or HTTP/1.1
/// only), real HttpClient and Grpc.Net.Client clients, ProxyCore in between on loopback sockets.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class Http2UpstreamTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private sealed class Rig : IAsyncDisposable
    {
        public required KestrelUpstream Upstream { get; init; }
        public required ProxyHost Proxy { get; init; }

        public Uri BaseUri => new($"http://{Proxy.ListenEndPoints[0]}");

        public static async Task<Rig> StartAsync(bool upstreamH2, int maxStreams = 100, Action<ClusterConfig>? cluster = null)
        {
            var upstream = await KestrelUpstream.StartAsync(upstreamH2 ? HttpProtocols.Http2 : HttpProtocols.Http1, maxStreams);
            var config = TestHost.DefaultConfig(upstream.Url, b => b.RouteTimeout = TimeSpan.FromSeconds(20));
            var mock = config.Clusters[^1];
            mock.Protocol = upstreamH2 ? "http2" : "http1";
            cluster?.Invoke(mock);
            return new Rig { Upstream = upstream, Proxy = ProxyHost.Start(config) };
        }

        public HttpClient CreateClient(bool h2) => new(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false })
        {
            BaseAddress = BaseUri,
            Timeout = Timeout,
            DefaultRequestVersion = h2 ? HttpVersion.Version20 : HttpVersion.Version11,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };

        public GrpcChannel CreateGrpcChannel() => GrpcChannel.ForAddress(BaseUri, new GrpcChannelOptions
        {
            // h2c by prior knowledge: http:// with an exact HTTP/2 request version.
            HttpHandler = new SocketsHttpHandler { UseProxy = false, EnableMultipleHttp2Connections = false },
        });

        public async ValueTask DisposeAsync()
        {
            await Proxy.StopAsync(TimeSpan.FromSeconds(2));
            await Upstream.DisposeAsync();
        }
    }

    private static HttpRequestMessage Request(HttpMethod method, string path, bool h2) => new(method, path)
    {
        Version = h2 ? HttpVersion.Version20 : HttpVersion.Version11,
        VersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };

    public static TheoryData<bool, bool> Matrix => new() { { false, false }, { false, true }, { true, false }, { true, true } };

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task Get_ClientByUpstreamProtocol_ReachesUpstreamOverItsProtocol(bool clientH2, bool upstreamH2)
    {
        await using var rig = await Rig.StartAsync(upstreamH2);
        using var client = rig.CreateClient(clientH2);
        using var response = await client.SendAsync(Request(HttpMethod.Get, "/hello", clientH2));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(clientH2 ? HttpVersion.Version20 : HttpVersion.Version11, response.Version);
        Assert.Equal(upstreamH2 ? "HTTP/2" : "HTTP/1.1", response.Headers.GetValues("x-upstream-protocol").Single());
        Assert.Equal("hello from kestrel", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task PostEcho_OneMebibyte_ComesBackWhole(bool clientH2, bool upstreamH2)
    {
        await using var rig = await Rig.StartAsync(upstreamH2);
        using var client = rig.CreateClient(clientH2);
        var body = new byte[1024 * 1024];
        new Random(11).NextBytes(body);
        using var message = Request(HttpMethod.Post, "/echo", clientH2);
        message.Content = new ByteArrayContent(body);
        using var response = await client.SendAsync(message);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(upstreamH2 ? "HTTP/2" : "HTTP/1.1", response.Headers.GetValues("x-upstream-protocol").Single());
        Assert.Equal(body, await response.Content.ReadAsByteArrayAsync());
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task Download_ThreeMegabytes_ArrivesInOrder(bool clientH2, bool upstreamH2)
    {
        const int Size = 3_000_000;
        await using var rig = await Rig.StartAsync(upstreamH2);
        using var client = rig.CreateClient(clientH2);
        using var response = await client.SendAsync(Request(HttpMethod.Get, $"/download/{Size}", clientH2));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(Size, bytes.Length);
        Assert.Equal(KestrelUpstream.Pattern(Size, 0), bytes);
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task ResponseTrailers_PassThroughWhereBothSidesCarryThem(bool clientH2, bool upstreamH2)
    {
        await using var rig = await Rig.StartAsync(upstreamH2);
        using var client = rig.CreateClient(clientH2);
        using var message = Request(HttpMethod.Post, "/trailers", clientH2);
        message.Content = new StringContent("twelve bytes");
        message.Headers.TE.ParseAdd("trailers");
        using var response = await client.SendAsync(message);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("12:", await response.Content.ReadAsStringAsync());
        bool upstreamSends = response.Headers.GetValues("x-supports-trailers").Single() == "true";
        // Kestrel sends trailers over HTTP/2 always; the relay must then deliver them to both client protocols.
        Assert.True(upstreamSends || !upstreamH2);
        if (upstreamSends)
        {
            Assert.Equal("len-12", response.TrailingHeaders.GetValues("x-checksum").Single());
        }
    }

    [Fact]
    public async Task RequestTrailers_ChunkedClientToH2Upstream_ArriveAsTrailers()
    {
        await using var rig = await Rig.StartAsync(upstreamH2: true);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(rig.Proxy.ListenEndPoints[0]);
        await socket.SendAsync(Encoding.ASCII.GetBytes(
            "POST /trailers HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
            "5\r\nhello\r\n0\r\nx-request-trailer: from-the-client\r\n\r\n"));
        string answer = await TestHost.ReadToCloseAsync(socket, TimeSpan.FromSeconds(10));
        Assert.True(answer.StartsWith("HTTP/1.1 200", StringComparison.Ordinal), answer);
        Assert.Contains("5:from-the-client", answer);
        Assert.Contains("x-checksum: len-5", answer, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TlsH2Upstream_AlpnH2_RelaysWithTrailers(bool clientH2)
    {
        // https:// destination + "protocol": "http2": TLS with ALPN "h2" only, :scheme https, trailers intact.
        using var pki = new ProxyCore.Tests.Shared.TestCertificates();
        var (certFile, keyFile) = pki.Issue("upstream", "127.0.0.1");
        using var certificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(certFile, keyFile);
        await using var upstream = await KestrelUpstream.StartAsync(HttpProtocols.Http2, certificate: certificate);
        Assert.StartsWith("https://", upstream.Url);
        var config = TestHost.DefaultConfig(upstream.Url);
        config.Clusters[^1].Protocol = "http2";
        config.Clusters[^1].Tls = new UpstreamTlsConfig { CaFile = pki.CaFile };
        await using var proxy = ProxyHost.Start(config);
        using var client = new HttpClient(new SocketsHttpHandler()) { BaseAddress = new Uri($"http://{proxy.ListenEndPoints[0]}"), Timeout = Timeout };

        using var hello = await client.SendAsync(Request(HttpMethod.Get, "/hello", clientH2));
        Assert.Equal(HttpStatusCode.OK, hello.StatusCode);
        Assert.Equal("HTTP/2", hello.Headers.GetValues("x-upstream-protocol").Single());
        Assert.Equal("hello from kestrel", await hello.Content.ReadAsStringAsync());

        using var message = Request(HttpMethod.Post, "/trailers", clientH2);
        message.Content = new StringContent("twelve bytes");
        message.Headers.TE.ParseAdd("trailers");
        using var response = await client.SendAsync(message);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("12:", await response.Content.ReadAsStringAsync());
        Assert.Equal("len-12", response.TrailingHeaders.GetValues("x-checksum").Single());
    }

    [Fact]
    public async Task TlsUpstreamWithoutH2_Http2Cluster_Answers502()
    {
        // An HTTP/1.1-only TLS upstream cannot agree to ALPN h2: the dial fails, never a garbled exchange.
        using var pki = new ProxyCore.Tests.Shared.TestCertificates();
        var (certFile, keyFile) = pki.Issue("upstream", "127.0.0.1");
        using var certificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(certFile, keyFile);
        await using var upstream = await KestrelUpstream.StartAsync(HttpProtocols.Http1, certificate: certificate);
        var config = TestHost.DefaultConfig(upstream.Url);
        config.Clusters[^1].Protocol = "http2";
        config.Clusters[^1].Tls = new UpstreamTlsConfig { CaFile = pki.CaFile };
        await using var proxy = ProxyHost.Start(config);
        using var client = new HttpClient { BaseAddress = new Uri($"http://{proxy.ListenEndPoints[0]}"), Timeout = Timeout };
        using var response = await client.GetAsync("/hello");
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        // The same reason an HTTP/1.1 cluster gives for a failed upstream handshake (it was connect-failed on HTTP/2).
        Assert.Equal("upstream-tls-failed", response.Headers.GetValues("proxycore-error").Single());
    }

    [Fact]
    public async Task RequestBody_ChunkedOverLimitToH2Upstream_Answers413()
    {
        await using var upstream = await KestrelUpstream.StartAsync(HttpProtocols.Http2);
        var config = TestHost.DefaultConfig(upstream.Url, b => b.Limits = new LimitsConfig { MaxRequestBodyBytes = 1024 });
        config.Clusters[^1].Protocol = "http2";
        await using var proxy = ProxyHost.Start(config);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(proxy.ListenEndPoints[0]);
        // /trailers reads the whole body before it answers: only the proxy can end this exchange.
        await socket.SendAsync(Encoding.ASCII.GetBytes(
            "POST /trailers HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
            "800\r\n" + new string('a', 2048) + "\r\n0\r\n\r\n"));
        string answer = await TestHost.ReadToCloseAsync(socket, TimeSpan.FromSeconds(10));
        Assert.True(answer.StartsWith("HTTP/1.1 413", StringComparison.Ordinal), answer);
        Assert.Contains("request-body-too-large", answer);
    }

    [Fact]
    public async Task EarlyAnswer_UpstreamRespondsBeforeBody_AnswerRelayedWhole()
    {
        await using var rig = await Rig.StartAsync(upstreamH2: true);
        using var client = rig.CreateClient(h2: true);
        using var message = Request(HttpMethod.Post, "/early", h2: true);
        message.Content = new ByteArrayContent(new byte[4 * 1024 * 1024]);
        using var response = await client.SendAsync(message);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("too big for me", await response.Content.ReadAsStringAsync());
        // The shared upstream connection is still good.
        using var again = await client.SendAsync(Request(HttpMethod.Get, "/hello", h2: true));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }

    [Fact]
    public async Task ConcurrentStreams_HundredThroughH2Upstream_ShareOneConnection()
    {
        await using var rig = await Rig.StartAsync(upstreamH2: true);
        using var client = rig.CreateClient(h2: true);
        var tasks = Enumerable.Range(0, 100).Select(async _ =>
        {
            using var response = await client.SendAsync(Request(HttpMethod.Get, "/slow", h2: true));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return await response.Content.ReadAsStringAsync();
        }).ToArray();
        var bodies = await Task.WhenAll(tasks);
        Assert.All(bodies, b => Assert.Equal("slow", b));
        // Kestrel allows 100 streams per connection: one connection carries them all (two if a burst raced a handshake).
        Assert.InRange(rig.Upstream.Connections, 1, 2);
    }

    [Fact]
    public async Task MaxConcurrentStreams_UpstreamLimitFive_OpensMoreConnections()
    {
        await using var rig = await Rig.StartAsync(upstreamH2: true, maxStreams: 5);
        using var client = rig.CreateClient(h2: true);
        var tasks = Enumerable.Range(0, 20).Select(async _ =>
        {
            using var response = await client.SendAsync(Request(HttpMethod.Get, "/slow", h2: true));
            return response.StatusCode;
        }).ToArray();
        var statuses = await Task.WhenAll(tasks);
        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.InRange(rig.Upstream.Connections, 2, 16);
    }

    [Fact]
    public async Task MaxConnectionsPerDestination_One_QueuesInsteadOfFailing()
    {
        await using var rig = await Rig.StartAsync(upstreamH2: true, maxStreams: 3,
            cluster: c => c.Http2 = new Http2UpstreamConfig { MaxConnectionsPerDestination = 1 });
        using var client = rig.CreateClient(h2: true);
        var statuses = await Task.WhenAll(Enumerable.Range(0, 12).Select(async _ =>
        {
            using var response = await client.SendAsync(Request(HttpMethod.Get, "/slow", h2: true));
            return response.StatusCode;
        }));
        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Equal(1, rig.Upstream.Connections);
    }

    [Fact]
    public async Task GoAway_UpstreamClosesMidLoad_NewRequestsStillSucceed()
    {
        await using var rig = await Rig.StartAsync(upstreamH2: true);
        using var client = rig.CreateClient(h2: true);
        int done = 0;
        int closes = 0;
        var statuses = await Task.WhenAll(Enumerable.Range(0, 8).Select(async worker =>
        {
            var mine = new List<HttpStatusCode>();
            for (int i = 0; i < 25; i++)
            {
                using var response = await client.SendAsync(Request(HttpMethod.Get, "/hello", h2: true));
                mine.Add(response.StatusCode);
                int n = Interlocked.Increment(ref done);
                if (n is 50 or 120)
                {
                    Interlocked.Add(ref closes, rig.Upstream.RequestCloseAll());
                }
            }
            return mine;
        }));
        Assert.All(statuses.SelectMany(s => s), s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.True(closes >= 1);
        Assert.True(rig.Upstream.Connections >= 2, $"connections: {rig.Upstream.Connections}");
    }

    [Fact]
    public async Task ConnectFailure_NothingListens_Answers502()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        var config = TestHost.DefaultConfig($"http://127.0.0.1:{port}");
        config.Clusters[^1].Protocol = "http2";
        await using var proxy = ProxyHost.Start(config);
        using var client = new HttpClient { BaseAddress = new Uri($"http://{proxy.ListenEndPoints[0]}"), Timeout = Timeout };
        using var response = await client.GetAsync("/x");
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("upstream-connect-failed", response.Headers.GetValues("proxycore-error").Single());
    }

    [Fact]
    public async Task Http1OnlyUpstream_ClusterSaysHttp2_Answers502()
    {
        await using var upstream = await KestrelUpstream.StartAsync(HttpProtocols.Http1);
        var config = TestHost.DefaultConfig(upstream.Url);
        config.Clusters[^1].Protocol = "http2";
        await using var proxy = ProxyHost.Start(config);
        using var client = new HttpClient { BaseAddress = new Uri($"http://{proxy.ListenEndPoints[0]}"), Timeout = Timeout };
        using var response = await client.GetAsync("/hello");
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
    }

    [Fact]
    public async Task UpstreamReset_BeforeHead_Answers502()
    {
        await using var rig = await Rig.StartAsync(upstreamH2: true);
        using var client = rig.CreateClient(h2: false);
        using var response = await client.GetAsync("/reset-before-head");
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("upstream-closed", response.Headers.GetValues("proxycore-error").Single());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task UpstreamReset_AfterHead_AbortsClientResponse(bool clientH2)
    {
        await using var rig = await Rig.StartAsync(upstreamH2: true);
        using var client = rig.CreateClient(clientH2);
        using var response = await client.SendAsync(Request(HttpMethod.Get, "/reset-after-head", clientH2), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // A cut body must never look complete: the client sees the stream/connection fail.
        await Assert.ThrowsAnyAsync<Exception>(async () => await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Timeout_UpstreamSilent_Answers504AndResetsUpstreamStream()
    {
        await using var rig = await Rig.StartAsync(upstreamH2: true);
        var config = TestHost.DefaultConfig(rig.Upstream.Url, b => b.RouteTimeout = TimeSpan.FromMilliseconds(500));
        config.Clusters[^1].Protocol = "http2";
        await using var proxy = ProxyHost.Start(config);
        using var client = new HttpClient { BaseAddress = new Uri($"http://{proxy.ListenEndPoints[0]}"), Timeout = Timeout };
        using var response = await client.GetAsync("/wait");
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("upstream-timeout", response.Headers.GetValues("proxycore-error").Single());
        await WaitUntilAsync(() => rig.Upstream.AbortedRequests >= 1);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ClientAbort_MidRequest_ResetsUpstreamStream(bool clientH2)
    {
        await using var rig = await Rig.StartAsync(upstreamH2: true);
        using var client = rig.CreateClient(clientH2);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.SendAsync(Request(HttpMethod.Get, "/wait", clientH2), cts.Token));
        // Kestrel only learns of the abort from our RST_STREAM (no grpc-timeout here).
        await WaitUntilAsync(() => rig.Upstream.AbortedRequests >= 1);
        // The shared upstream connection survives the reset.
        using var again = await client.SendAsync(Request(HttpMethod.Get, "/hello", clientH2));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal(1, rig.Upstream.Connections);
    }

    [Fact]
    public async Task Backpressure_ClientNotReading_UpstreamIsHeldByFlowControl()
    {
        const int Size = 200 * 1024 * 1024;
        await using var rig = await Rig.StartAsync(upstreamH2: true);
        using var client = rig.CreateClient(h2: false);
        using var response = await client.SendAsync(Request(HttpMethod.Get, $"/counted/{Size}", h2: false), HttpCompletionOption.ResponseHeadersRead);
        using var body = await response.Content.ReadAsStreamAsync();
        var buffer = new byte[64 * 1024];
        Assert.True(await body.ReadAsync(buffer) > 0);
        // Stop reading: the upstream can run ahead only by the windows and socket buffers on the way.
        long before;
        long after = rig.Upstream.CountedBytes;
        do
        {
            before = after;
            await Task.Delay(300);
            after = rig.Upstream.CountedBytes;
        }
        while (after != before && after < Size / 2);
        Assert.True(after < 32L * 1024 * 1024, $"upstream wrote {after} bytes while the client read none");
        // Reading again lets the transfer go on: nothing was lost while it was held.
        long total = 0;
        int n;
        while ((n = await body.ReadAsync(buffer)) > 0 && total < 32L * 1024 * 1024)
        {
            total += n;
        }
        Assert.True(rig.Upstream.CountedBytes > after);
    }

    [Theory]
    [InlineData(true, "/hello", HealthProbeResult.Passed)]
    [InlineData(true, "/missing", HealthProbeResult.UnexpectedStatus)]
    [InlineData(false, "/hello", HealthProbeResult.ProtocolError)] // an HTTP/1.1-only destination is not healthy for an http2 cluster
    public async Task HealthProbe_Http2Cluster_ProbesOverHttp2(bool upstreamH2, string path, HealthProbeResult expected)
    {
        await using var upstream = await KestrelUpstream.StartAsync(upstreamH2 ? HttpProtocols.Http2 : HttpProtocols.Http1);
        var config = TestHost.DefaultConfig(upstream.Url);
        config.Clusters[^1].Protocol = "http2";
        var destination = ProxySnapshot.Build(config).Clusters["mock"].Destinations[0];
        StatusRanges.TryParse("200-399", out var ok, out _);
        var probe = new ActiveHealthChecker.Probe(destination.EndPoint, [], ok, TimeSpan.FromSeconds(5), Http2Head: ActiveHealthChecker.BuildHttp2Request(path, destination));

        var result = await ActiveHealthChecker.ProbeAsync(new SocketConnectionFactory(), probe, TimeProvider.System, CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(expected, result);
    }

    private static async Task WaitUntilAsync(Func<bool> condition) => Assert.True(await Eventually.TrueAsync(condition));

    // ---- gRPC passthrough ----

    [Fact]
    public async Task Grpc_Unary_ReplyComesBackOverH2Upstream()
    {
        await using var rig = await Rig.StartAsync(upstreamH2: true);
        using var channel = rig.CreateGrpcChannel();
        var client = new Echoer.EchoerClient(channel);
        var reply = await client.EchoAsync(new EchoRequest { Message = "ping through proxycore" }, deadline: DateTime.UtcNow.AddSeconds(20));
        Assert.Equal("ping through proxycore", reply.Message);
        Assert.Equal("HTTP/2", reply.Protocol);
    }

    [Theory]
    [InlineData(10, 10)]
    [InlineData(100, 32 * 1024)] // 3.2 MB: more than every flow-control window on the way
    public async Task Grpc_ServerStreaming_AllMessagesInOrder(int count, int payloadBytes)
    {
        await using var rig = await Rig.StartAsync(upstreamH2: true);
        using var channel = rig.CreateGrpcChannel();
        var client = new Echoer.EchoerClient(channel);
        using var call = client.Count(new CountRequest { Count = count, PayloadBytes = payloadBytes }, deadline: DateTime.UtcNow.AddSeconds(30));
        int expected = 0;
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            Assert.Equal(expected, message.Index);
            Assert.Equal(KestrelUpstream.Pattern(payloadBytes, expected), message.Payload.ToByteArray());
            expected++;
        }
        Assert.Equal(count, expected);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task Grpc_BidiStreaming_PingPongInterleaves()
    {
        await using var rig = await Rig.StartAsync(upstreamH2: true);
        using var channel = rig.CreateGrpcChannel();
        var client = new Echoer.EchoerClient(channel);
        using var call = client.Chat(deadline: DateTime.UtcNow.AddSeconds(30));
        for (int i = 0; i < 20; i++)
        {
            // The next message goes only after the previous reply came back: nothing on the way may wait for the end.
            await call.RequestStream.WriteAsync(new EchoRequest { Message = $"m{i}" });
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
            Assert.Equal($"re: m{i}", call.ResponseStream.Current.Message);
        }
        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task Grpc_ErrorCall_StatusAndTrailersReachClient()
    {
        await using var rig = await Rig.StartAsync(upstreamH2: true);
        using var channel = rig.CreateGrpcChannel();
        var client = new Echoer.EchoerClient(channel);
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.EchoAsync(new EchoRequest { FailWith = "no such echo" }, deadline: DateTime.UtcNow.AddSeconds(20)));
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Equal("no such echo", error.Status.Detail);
        Assert.Equal("asked-to-fail", error.Trailers.GetValue("x-why"));
    }

    [Fact]
    public async Task Grpc_Deadline_ClientGetsDeadlineExceededAndUpstreamCallIsCancelled()
    {
        await using var rig = await Rig.StartAsync(upstreamH2: true);
        using var channel = rig.CreateGrpcChannel();
        var client = new Echoer.EchoerClient(channel);
        int cancelledBefore = rig.Upstream.CancelledCalls;
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.EchoAsync(new EchoRequest { Message = "late", DelayMs = 10_000 }, deadline: DateTime.UtcNow.AddMilliseconds(300)));
        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        // The upstream call ends too (its grpc-timeout, or our RST_STREAM when the client reset its stream).
        Assert.True(await Eventually.TrueAsync(() => rig.Upstream.CancelledCalls > cancelledBefore));
        // And the connection is still good for the next call.
        var reply = await client.EchoAsync(new EchoRequest { Message = "after" }, deadline: DateTime.UtcNow.AddSeconds(20));
        Assert.Equal("after", reply.Message);
    }
}
