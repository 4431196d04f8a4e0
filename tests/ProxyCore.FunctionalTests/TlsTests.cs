using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using ProxyCore.Routing.Config;
using ProxyCore.Server;
using ProxyCore.Tests.Shared;
using ProxyCore.Transport;
using ProxyCore.Transport.Tls;

namespace ProxyCore.FunctionalTests;

/// <summary>
/// TLS both ways over real loopback sockets: clients (HttpClient h1/h2, curl, raw SslStream) to a TLS
/// listener, and the proxy to an https:// upstream (another ProxyCore behind a TLS listener).
/// Serial: the handshake counters read here are process-wide.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class TlsTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly TestCertificates _pki = new();
    private readonly (string Certificate, string Key) _local;
    private readonly (string Certificate, string Key) _a;
    private readonly (string Certificate, string Key) _b;

    public TlsTests()
    {
        _local = _pki.Issue("local", "127.0.0.1", "localhost", "upstream.test");
        _a = _pki.Issue("a", "a.example");
        _b = _pki.Issue("b", "*.b.example");
    }

    public void Dispose() => _pki.Dispose();

    private TlsConfig LocalTls(TimeSpan? handshakeTimeout = null) => new()
    {
        Certificate = _local.Certificate,
        Key = _local.Key,
        HandshakeTimeout = handshakeTimeout ?? TimeSpan.FromSeconds(10),
    };

    /// <summary>The mock upstream behind a proxy whose one listener speaks TLS.</summary>
    private static TestHost StartTls(TlsConfig tls, IReadOnlyList<string>? protocols = null, Action<ProxyConfig>? tweak = null) => TestHost.Start(upstream =>
    {
        var config = TestHost.DefaultConfig(upstream);
        config.Listeners = [new ListenerConfig { Address = "127.0.0.1:0", Tls = tls, Protocols = protocols ?? ["http1", "http2"] }];
        tweak?.Invoke(config);
        return config;
    });

    private HttpClient CreateClient(TestHost host, Version version, HttpVersionPolicy policy = HttpVersionPolicy.RequestVersionExact)
    {
        var handler = new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false };
        handler.SslOptions.CertificateChainPolicy = TrustOurCa();
        return new HttpClient(handler)
        {
            BaseAddress = new Uri($"https://{host.ProxyEndPoint}"),
            Timeout = Timeout,
            DefaultRequestVersion = version,
            DefaultVersionPolicy = policy,
        };
    }

    private X509ChainPolicy TrustOurCa()
    {
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.Add(_pki.Ca);
        return policy;
    }

    private static string? Header(string describeJson, string name)
    {
        using var json = JsonDocument.Parse(describeJson);
        var root = json.RootElement.TryGetProperty("request", out var request) ? request : json.RootElement;
        foreach (var pair in root.GetProperty("headers").EnumerateArray())
        {
            if (string.Equals(pair[0].GetString(), name, StringComparison.OrdinalIgnoreCase))
            {
                return pair[1].GetString();
            }
        }
        return null;
    }

    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task Get_OverTls_AlpnPicksTheVersion_AndForwardedProtoIsHttps(string version)
    {
        await using var host = StartTls(LocalTls());
        using var client = CreateClient(host, Version.Parse(version));

        using var response = await client.GetAsync("/headers");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Version.Parse(version), response.Version);
        // h2 → h1: the upstream is the HTTP/1.1 mock either way.
        Assert.Equal("https", Header(await response.Content.ReadAsStringAsync(), "x-forwarded-proto"));
    }

    [Fact]
    public async Task PostEcho_Http2OverTls_OneMebibyteComesBackWhole()
    {
        await using var host = StartTls(LocalTls());
        using var client = CreateClient(host, HttpVersion.Version20);
        var body = new byte[1024 * 1024];
        new Random(11).NextBytes(body);

        using var response = await client.PostAsync("/echo", new ByteArrayContent(body));

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal(body, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Alpn_Http1OnlyListener_Http2ClientGetsHttp11()
    {
        await using var host = StartTls(LocalTls(), protocols: ["http1"]);
        using var client = CreateClient(host, HttpVersion.Version20, HttpVersionPolicy.RequestVersionOrLower);

        using var response = await client.GetAsync("/hello");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpVersion.Version11, response.Version);
    }

    [Theory]
    [InlineData("--http2", "2 200")]
    [InlineData("--http1.1", "1.1 200")]
    public async Task Curl_WithCacert_GetsUpstreamAnswer(string versionFlag, string expected)
    {
        await using var host = StartTls(LocalTls());
        var start = new ProcessStartInfo("curl",
            $"-sS {versionFlag} --cacert {_pki.CaFile} -o - -w \"\\n%{{http_version}} %{{http_code}}\" https://127.0.0.1:{host.ProxyEndPoint.Port}/hello?from=curl")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        Process? curl;
        try
        {
            curl = Process.Start(start);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return; // curl is not installed here: nothing to compare with.
        }
        using var process = curl!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(Timeout);
        string text = await output;
        Assert.True(process.ExitCode == 0, await error);
        Assert.EndsWith(expected, text);
        Assert.Contains("\"query\":\"?from=curl\"", text);
    }

    [Theory]
    [InlineData("a.example", "CN=a.example")]
    [InlineData("x.b.example", "CN=*.b.example")]
    [InlineData("deep.x.b.example", "CN=*.b.example")]
    [InlineData("other.example", "CN=127.0.0.1")]
    [InlineData(null, "CN=127.0.0.1")]
    public async Task Sni_SeveralCertificates_EachHostGetsItsOwn(string? serverName, string expectedSubject)
    {
        var tls = LocalTls();
        tls.Certificates =
        [
            new TlsCertificateConfig { Certificate = _a.Certificate, Key = _a.Key, Hosts = ["a.example"] },
            new TlsCertificateConfig { Certificate = _b.Certificate, Key = _b.Key, Hosts = ["*.b.example"] },
        ];
        await using var host = StartTls(tls);

        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(host.ProxyEndPoint);
        await using var ssl = new SslStream(new NetworkStream(socket, ownsSocket: false));
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            // TargetHost drives SNI; an IP (the null row) sends none. Trust is not the question here.
            TargetHost = serverName ?? "127.0.0.1",
            RemoteCertificateValidationCallback = static (_, _, _, _) => true,
            ApplicationProtocols = [SslApplicationProtocol.Http11],
        }).WaitAsync(Timeout);

        Assert.Equal(expectedSubject, ssl.RemoteCertificate!.Subject);
        Assert.Equal(SslApplicationProtocol.Http11, ssl.NegotiatedApplicationProtocol);
        // The connection serves HTTP over it, too.
        await ssl.WriteAsync(Encoding.ASCII.GetBytes($"GET /hello HTTP/1.1\r\nHost: {serverName ?? "x"}\r\nConnection: close\r\n\r\n"));
        var answer = await new StreamReader(ssl).ReadToEndAsync().WaitAsync(Timeout);
        Assert.StartsWith("HTTP/1.1 200", answer);
    }

    [Fact]
    public async Task PlaintextClient_OnTlsPort_IsClosedAndListenerServesTheNext()
    {
        await using var host = StartTls(LocalTls());
        long failedBefore = TlsServerMiddleware.HandshakesFailed;

        string answer = await host.SendRawAsync("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", TimeSpan.FromSeconds(15));

        Assert.DoesNotContain("<<timeout>>", answer);
        Assert.DoesNotContain("HTTP/1.1 200", answer);
        Assert.True(TlsServerMiddleware.HandshakesFailed > failedBefore);
        using var client = CreateClient(host, HttpVersion.Version11);
        using var response = await client.GetAsync("/hello");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Handshake_SilentClient_IsClosedAfterHandshakeTimeout()
    {
        await using var host = StartTls(LocalTls(handshakeTimeout: TimeSpan.FromMilliseconds(300)));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(host.ProxyEndPoint);
        var clock = Stopwatch.StartNew();

        string received = await TestHost.ReadToCloseAsync(socket, TimeSpan.FromSeconds(15));

        Assert.DoesNotContain("<<timeout>>", received);
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(250), $"closed after {clock.Elapsed}: before the timeout");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"closed after {clock.Elapsed}: the 300ms timeout did not apply");
    }

    [Fact]
    public async Task Reload_NewCertificateFiles_NewHandshakesPresentThem()
    {
        var tls = LocalTls();
        await using var host = StartTls(tls);
        Assert.Equal("CN=127.0.0.1", await PresentedSubjectAsync(host.ProxyEndPoint));

        var rotated = _pki.Issue("rotated", "rotated.example");
        var config = TestHost.DefaultConfig("http://127.0.0.1:1");
        config.Listeners = [new ListenerConfig { Address = "127.0.0.1:0", Tls = new TlsConfig { Certificate = rotated.Certificate, Key = rotated.Key } }];
        var notes = host.Proxy.Reload(config);

        Assert.Empty(notes);
        Assert.Equal("CN=rotated.example", await PresentedSubjectAsync(host.ProxyEndPoint));
    }

    private static async Task<string> PresentedSubjectAsync(IPEndPoint endPoint)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(endPoint);
        await using var ssl = new SslStream(tcp.GetStream());
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "127.0.0.1",
            RemoteCertificateValidationCallback = static (_, _, _, _) => true,
        }).WaitAsync(Timeout);
        return ssl.RemoteCertificate!.Subject;
    }

    [Fact]
    public async Task ValidateCommand_TlsMistakes_ListedWithTheirPaths()
    {
        string config = _pki.Write("config.json", $$"""
            { "listeners": [ { "address": "127.0.0.1:0", "protocols": ["http1", "h3"],
                               "tls": { "certificate": "{{_pki.Directory}}/missing.pem", "key": "{{_local.Key}}",
                                        "certificates": [ { "certificate": "{{_a.Certificate}}", "key": "{{_b.Key}}", "hosts": ["a.*.example"] } ] } } ],
              "routes": [ { "id": "r", "match": { "path": "/" }, "cluster": "c" } ],
              "clusters": [ { "id": "c", "destinations": [ { "address": "https://127.0.0.1:1" } ], "tls": { "caFile": "{{_pki.Directory}}/nope.pem" } } ] }
            """);

        var (code, output) = await ProxyProcess.RunAsync("validate", config);

        Assert.Equal(1, code);
        Assert.Contains("$.listeners[0].protocols[1]", output);
        Assert.Contains("$.listeners[0].tls.certificate", output);
        Assert.Contains("$.listeners[0].tls.certificates[0].key", output);
        Assert.Contains("does not belong to the certificate", output);
        Assert.Contains("$.listeners[0].tls.certificates[0].hosts[0]", output);
        Assert.Contains("$.clusters[0].tls.caFile", output);

        string good = _pki.Write("good.json", $$"""
            { "listeners": [ { "address": "127.0.0.1:0", "tls": { "certificate": "{{_local.Certificate}}", "key": "{{_local.Key}}" } } ],
              "routes": [ { "id": "r", "match": { "path": "/" }, "cluster": "c" } ],
              "clusters": [ { "id": "c", "destinations": [ { "address": "https://127.0.0.1:1" } ], "tls": { "caFile": "{{_pki.CaFile}}" } } ] }
            """);
        (code, output) = await ProxyProcess.RunAsync("validate", good);
        Assert.True(code == 0, output);
    }

    // ---- upstream TLS: the proxy dials an https:// destination (a second ProxyCore terminating TLS) ----

    /// <summary>A plain front proxy whose cluster points at a TLS-terminating ProxyCore in front of the mock.</summary>
    private async Task<(TestHost Front, TestHost Back)> StartChainAsync(UpstreamTlsConfig? upstreamTls)
    {
        var back = StartTls(LocalTls());
        var front = TestHost.Start(_ =>
        {
            var config = TestHost.DefaultConfig($"https://127.0.0.1:{back.ProxyEndPoint.Port}");
            config.Clusters[^1].Tls = upstreamTls;
            return config;
        });
        await Task.CompletedTask;
        return (front, back);
    }

    [Fact]
    public async Task HttpsUpstream_TrustedCa_RelaysAndReusesThePooledTlsConnection()
    {
        var (front, back) = await StartChainAsync(new UpstreamTlsConfig { CaFile = _pki.CaFile, ServerName = "upstream.test" });
        await using var _ = front;
        await using var __ = back;
        using var client = front.CreateClient();
        long handshakesBefore = TlsServerMiddleware.HandshakesCompleted;

        for (int i = 0; i < 5; i++)
        {
            using var response = await client.GetAsync($"/headers?i={i}");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            string body = await response.Content.ReadAsStringAsync();
            // The back proxy saw TLS from the front one, and the front one sent the destination's scheme.
            Assert.Equal("https", Header(body, "x-forwarded-proto")?.Split(',')[^1].Trim());
        }

        Assert.Equal(1, TlsServerMiddleware.HandshakesCompleted - handshakesBefore);
    }

    [Fact]
    public async Task HttpsUpstream_DefaultServerNameIsTheIp_VerifiedAgainstTheIpSan()
    {
        var (front, back) = await StartChainAsync(new UpstreamTlsConfig { CaFile = _pki.CaFile });
        await using var _ = front;
        await using var __ = back;
        using var client = front.CreateClient();

        using var response = await client.GetAsync("/hello");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData("wrong-ca")]
    [InlineData("system-trust")]
    [InlineData("wrong-name")]
    public async Task HttpsUpstream_UntrustedCertificate_Answers502(string scenario)
    {
        using var otherPki = new TestCertificates("Some Other CA");
        var tls = scenario switch
        {
            "wrong-ca" => new UpstreamTlsConfig { CaFile = otherPki.CaFile },
            "system-trust" => null,
            _ => new UpstreamTlsConfig { CaFile = _pki.CaFile, ServerName = "not-on-the-cert.test" },
        };
        var (front, back) = await StartChainAsync(tls);
        await using var _ = front;
        await using var __ = back;
        using var client = front.CreateClient();

        using var response = await client.GetAsync("/hello");

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("upstream-tls-failed", response.Headers.GetValues("proxycore-error").Single());
    }

    [Fact]
    public async Task HttpsUpstream_InsecureSkipVerify_RelaysDespiteAnUnknownCa()
    {
        var (front, back) = await StartChainAsync(new UpstreamTlsConfig { InsecureSkipVerify = true });
        await using var _ = front;
        await using var __ = back;
        using var client = front.CreateClient();

        using var response = await client.GetAsync("/hello");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task HttpsUpstream_Http2ClientThroughTlsBothWays_Relays()
    {
        // h2 over TLS to the front, HTTP/1.1 over TLS to the back, HTTP/1.1 plaintext to the mock.
        var back = StartTls(LocalTls());
        await using var _ = back;
        await using var front = StartTls(LocalTls(), tweak: config =>
        {
            config.Clusters[^1].Destinations = [new DestinationConfig { Address = $"https://127.0.0.1:{back.ProxyEndPoint.Port}" }];
            config.Clusters[^1].Tls = new UpstreamTlsConfig { CaFile = _pki.CaFile };
        });
        using var client = CreateClient(front, HttpVersion.Version20);
        var body = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("through two TLS hops ", 5000)));

        using var response = await client.PostAsync("/echo", new ByteArrayContent(body));

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal(body, await response.Content.ReadAsByteArrayAsync());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task HealthCheck_HttpsDestination_ProbedOverTlsWithTheClusterTrust(bool trusted)
    {
        using var otherPki = new TestCertificates("Some Other CA");
        var (front, back) = await StartChainAsync(new UpstreamTlsConfig { CaFile = trusted ? _pki.CaFile : otherPki.CaFile });
        await using var _ = front;
        await using var __ = back;
        var config = TestHost.DefaultConfig($"https://127.0.0.1:{back.ProxyEndPoint.Port}");
        config.Clusters[^1].Tls = new UpstreamTlsConfig { CaFile = trusted ? _pki.CaFile : otherPki.CaFile };
        config.Clusters[^1].HealthCheck = new HealthCheckConfig
        {
            // A TLS handshake on a loaded CI machine can take a few hundred ms: a probe timeout that tight would fail trusted probes.
            Path = "/healthz", Interval = TimeSpan.FromMilliseconds(500), Timeout = TimeSpan.FromMilliseconds(450), HealthyThreshold = 1, UnhealthyThreshold = 2,
        };
        front.Proxy.Reload(config);
        using var client = front.CreateClient();
        string result = trusted ? "passed" : "failed";

        // Two probes with this result, and the verdict they lead to (probes counted before the verdict is stored).
        var state = front.Proxy.Current.Clusters["mock"].Destinations[0].State;
        var probes = new System.Text.RegularExpressions.Regex($"proxycore_health_checks_total\\{{[^}}]*result=\"{result}\"\\}} ([2-9]|[1-9][0-9]+)\n");
        string metrics = await Eventually.MetricsAsync(front.AdminUri, m => probes.IsMatch(m) && state.Healthy == trusted);
        Assert.True(probes.IsMatch(metrics) && state.Healthy == trusted, $"timed out waiting for two {result} probes and healthy={trusted}:\n" + metrics);

        // A certificate the relay would refuse makes the destination unhealthy (503), not healthy-but-failing (502).
        using var response = await client.GetAsync("/hello");
        Assert.Equal(trusted ? HttpStatusCode.OK : HttpStatusCode.ServiceUnavailable, response.StatusCode);
    }

    [Fact]
    public async Task UpstreamPool_TlsDial_ExposesNegotiatedAlpnAndReusesTheConnection()
    {
        await using var back = StartTls(LocalTls());
        await using var pool = new UpstreamConnectionPool(new SocketConnectionFactory());
        var roots = new X509Certificate2Collection { _pki.Ca };
        var options = new UpstreamPoolOptions { Tls = new UpstreamTlsOptions(trustedRoots: roots) };

        var lease = await pool.RentAsync(back.ProxyEndPoint, options, CancellationToken.None);
        Assert.False(lease.IsReused);
        Assert.True(lease.Connection.IsTls);
        Assert.Equal("http/1.1", lease.Connection.NegotiatedProtocol);
        var transport = lease.Connection.Transport;
        await transport.Output.WriteAsync("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        var text = new StringBuilder();
        using (var cts = new CancellationTokenSource(Timeout))
        {
            while (!text.ToString().Contains("}", StringComparison.Ordinal))
            {
                var read = await transport.Input.ReadAsync(cts.Token);
                foreach (var segment in read.Buffer)
                {
                    text.Append(Encoding.ASCII.GetString(segment.Span));
                }
                transport.Input.AdvanceTo(read.Buffer.End);
                Assert.False(read.IsCompleted, text.ToString());
            }
        }
        Assert.StartsWith("HTTP/1.1 200", text.ToString());
        pool.Return(lease);

        // Same endpoint, same TLS settings (a new but equal options object, as after a reload): reused.
        var again = await pool.RentAsync(back.ProxyEndPoint, new UpstreamPoolOptions { Tls = new UpstreamTlsOptions(trustedRoots: roots) }, CancellationToken.None);
        Assert.True(again.IsReused);
        pool.Return(again);
        // Plaintext to the same endpoint never gets the TLS connection.
        var plain = pool.RentAsync(back.ProxyEndPoint, UpstreamPoolOptions.Default, CancellationToken.None);
        var plainLease = await plain;
        Assert.False(plainLease.IsReused);
        Assert.False(plainLease.Connection.IsTls);
        pool.Discard(plainLease);
    }
}
