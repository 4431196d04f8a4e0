using System.Net;
using System.Net.Sockets;
using System.Text;
using ProxyCore.Routing.Config;
using ProxyCore.Server;

namespace ProxyCore.FunctionalTests;

/// <summary>
/// The hot path allocates (next to) nothing once warm: proxy, client and upstream all run in this
/// process over real loopback sockets, with a client and an upstream written to allocate nothing
/// themselves, so the process's allocation counter measures the proxy.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class SteadyStateAllocationTests
{
    private static readonly byte[] s_request = "GET /x HTTP/1.1\r\nHost: test\r\nUser-Agent: alloc-test\r\n\r\n"u8.ToArray();
    private static readonly byte[] s_response = Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 64\r\nContent-Type: text/plain\r\n\r\n" + new string('x', 64));

    [Theory]
    [InlineData(false)]
    // The route has compression and mirror blocks that do not apply (64-byte answers, no
    // Accept-Encoding; mirror at 0%): having the features configured must cost nothing either.
    [InlineData(true)]
    public async Task KeepAliveGets_OverManyConnections_AllocateUnder32BytesPerRequest(bool idlePolicies)
    {
        using var upstream = new TcpListener(IPAddress.Loopback, 0);
        upstream.Start();
        using var stop = new CancellationTokenSource();
        var upstreamTask = Task.Run(() => ServeFixedAsync(upstream, stop.Token));

        var config = ProxyConfig.ForUpstream("127.0.0.1:0", $"http://{upstream.LocalEndpoint}");
        config.Admin = new AdminConfig { Enabled = false };
        if (idlePolicies)
        {
            config.Clusters = [.. config.Clusters, new ClusterConfig { Id = "shadow", Destinations = [new DestinationConfig { Address = $"http://{upstream.LocalEndpoint}" }] }];
            config.Routes[0].Compression = new CompressionConfig();
            config.Routes[0].Mirror = new MirrorConfig { Cluster = "shadow", Percent = 0 };
        }
        await using var proxy = ProxyHost.Start(config);

        const int connections = 32;
        var clients = new Socket[connections];
        for (int i = 0; i < connections; i++)
        {
            clients[i] = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await clients[i].ConnectAsync(proxy.ListenEndPoints[0]);
        }
        try
        {
            await RunAsync(clients, 1500); // warm-up: pools fill, the JIT settles
            await RunAsync(clients, 1500);
            double perRequest = await Allocations.PerCallAsync(() => RunAsync(clients, 1500), connections * 1500L, bound: 32);
            Assert.True(perRequest < 32, $"{perRequest:F1} B allocated per proxied request");
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
            stop.Cancel();
        }
    }

    /// <summary>
    /// The load rig's policies route (JWT HS256 bearer, a rate limit by consumer that is never hit, a retry
    /// policy, one setRequestHeaders), every request with the same token: once warm, the gateway stages must
    /// add no garbage per request either (the verified-token cache answers the repeated token).
    /// </summary>
    [Fact]
    public async Task KeepAliveGets_ThroughJwtRateLimitRetryTransform_AllocateUnder32BytesPerRequest()
    {
        using var upstream = new TcpListener(IPAddress.Loopback, 0);
        upstream.Start();
        using var stop = new CancellationTokenSource();
        var upstreamTask = Task.Run(() => ServeFixedAsync(upstream, stop.Token));

        byte[] secret = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
        string jwks = Path.Combine(Path.GetTempPath(), $"proxycore-alloc-{Guid.NewGuid():N}.json");
        File.WriteAllText(jwks, $"{{\"keys\":[{{\"kty\":\"oct\",\"kid\":\"bench\",\"alg\":\"HS256\",\"k\":\"{System.Buffers.Text.Base64Url.EncodeToString(secret)}\"}}]}}");
        string signed = System.Buffers.Text.Base64Url.EncodeToString("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"bench\"}"u8) + "." +
            System.Buffers.Text.Base64Url.EncodeToString("{\"sub\":\"bench\",\"iss\":\"load-rig\",\"exp\":4102444800}"u8);
        string token = signed + "." + System.Buffers.Text.Base64Url.EncodeToString(System.Security.Cryptography.HMACSHA256.HashData(secret, Encoding.ASCII.GetBytes(signed)));
        byte[] request = Encoding.ASCII.GetBytes($"GET /x HTTP/1.1\r\nHost: test\r\nUser-Agent: alloc-test\r\nAuthorization: Bearer {token}\r\n\r\n");

        var config = ProxyConfig.ForUpstream("127.0.0.1:0", $"http://{upstream.LocalEndpoint}");
        config.Admin = new AdminConfig { Enabled = false };
        config.Routes[0].Auth = new AuthConfig { Jwt = new JwtConfig { Jwks = jwks, Issuer = "load-rig" } };
        config.Routes[0].RateLimit = new RateLimitConfig { RequestsPerSecond = 100_000_000, Burst = 100_000_000, By = "consumer" };
        config.Routes[0].Retry = new RetryConfig
        {
            Attempts = 2,
            On = [System.Text.Json.JsonSerializer.SerializeToElement("connect-failure", JsonContext.Default.String), System.Text.Json.JsonSerializer.SerializeToElement(503, JsonContext.Default.Int32)],
        };
        config.Routes[0].Transforms = new TransformsConfig { SetRequestHeaders = new Dictionary<string, string> { ["x-env"] = "bench" } };
        await using var proxy = ProxyHost.Start(config);

        const int connections = 32;
        var clients = new Socket[connections];
        for (int i = 0; i < connections; i++)
        {
            clients[i] = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await clients[i].ConnectAsync(proxy.ListenEndPoints[0]);
        }
        try
        {
            await RunAsync(clients, 1500, request);
            await RunAsync(clients, 1500, request);
            double perRequest = await Allocations.PerCallAsync(() => RunAsync(clients, 1500, request), connections * 1500L, bound: 32);
            Assert.True(perRequest < 32, $"{perRequest:F1} B allocated per proxied request");
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
            stop.Cancel();
            File.Delete(jwks);
        }
    }

    /// <summary>
    /// The same over TLS from client to proxy. The clients' own SslStreams run in this process and are
    /// counted too, so the bound is on both ends together; the point is that TLS adds no per-request
    /// garbage that grows with traffic (a leak of buffers or boxes per record would show here).
    /// </summary>
    [Fact]
    public async Task KeepAliveGets_OverTls_AllocateUnder32BytesPerRequestBothEndsCounted()
    {
        using var pki = new ProxyCore.Tests.Shared.TestCertificates();
        var (certificate, key) = pki.Issue("alloc", "127.0.0.1");
        using var upstream = new TcpListener(IPAddress.Loopback, 0);
        upstream.Start();
        using var stop = new CancellationTokenSource();
        var upstreamTask = Task.Run(() => ServeFixedAsync(upstream, stop.Token));

        var config = ProxyConfig.ForUpstream("127.0.0.1:0", $"http://{upstream.LocalEndpoint}");
        config.Listeners[0].Tls = new TlsConfig { Certificate = certificate, Key = key };
        config.Admin = new AdminConfig { Enabled = false };
        await using var proxy = ProxyHost.Start(config);

        const int connections = 16;
        var clients = new System.Net.Security.SslStream[connections];
        for (int i = 0; i < connections; i++)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(proxy.ListenEndPoints[0]);
            clients[i] = new System.Net.Security.SslStream(new NetworkStream(socket, ownsSocket: true));
            await clients[i].AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions
            {
                TargetHost = "127.0.0.1",
                RemoteCertificateValidationCallback = static (_, _, _, _) => true,
            });
        }
        try
        {
            await RunTlsAsync(clients, 1000);
            await RunTlsAsync(clients, 1000);
            double perRequest = await Allocations.PerCallAsync(() => RunTlsAsync(clients, 1000), connections * 1000L, bound: 32);
            Assert.True(perRequest < 32, $"{perRequest:F1} B allocated per proxied TLS request (client and proxy)");
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
            stop.Cancel();
        }
    }

    private static Task RunTlsAsync(System.Net.Security.SslStream[] clients, int requestsEach)
    {
        var tasks = new Task[clients.Length];
        for (int i = 0; i < clients.Length; i++)
        {
            tasks[i] = TlsClientLoopAsync(clients[i], requestsEach);
        }
        return Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60));
    }

    private static async Task TlsClientLoopAsync(System.Net.Security.SslStream client, int requests)
    {
        var buffer = new byte[4096];
        for (int i = 0; i < requests; i++)
        {
            await client.WriteAsync(s_request.AsMemory());
            int received = 0;
            while (true)
            {
                int n = await client.ReadAsync(buffer.AsMemory(received));
                if (n == 0)
                {
                    throw new IOException("proxy closed the connection");
                }
                received += n;
                int headEnd = buffer.AsSpan(0, received).IndexOf("\r\n\r\n"u8);
                if (headEnd >= 0 && received >= headEnd + 4 + 64)
                {
                    break;
                }
            }
        }
    }

    private static Task RunAsync(Socket[] clients, int requestsEach, byte[]? request = null)
    {
        var tasks = new Task[clients.Length];
        for (int i = 0; i < clients.Length; i++)
        {
            tasks[i] = ClientLoopAsync(clients[i], requestsEach, request ?? s_request);
        }
        return Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60));
    }

    private static async Task ClientLoopAsync(Socket client, int requests, byte[] request)
    {
        var buffer = new byte[4096];
        for (int i = 0; i < requests; i++)
        {
            await client.SendAsync(request.AsMemory(), SocketFlags.None);
            int received = 0;
            while (true)
            {
                int n = await client.ReceiveAsync(buffer.AsMemory(received), SocketFlags.None);
                if (n == 0)
                {
                    throw new IOException("proxy closed the connection");
                }
                received += n;
                int headEnd = buffer.AsSpan(0, received).IndexOf("\r\n\r\n"u8);
                if (headEnd >= 0 && received >= headEnd + 4 + 64)
                {
                    if (received != headEnd + 4 + 64)
                    {
                        // Not Assert.Equal: xunit's comparers allocate, and this loop is being measured.
                        throw new InvalidDataException($"expected exactly one answer, got {received} bytes");
                    }
                    break;
                }
            }
        }
    }

    internal static async Task ServeFixedAsync(TcpListener listener, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptSocketAsync(stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            _ = Task.Run(async () =>
            {
                using (socket)
                {
                    var buffer = new byte[8192];
                    int state = 0;
                    while (true)
                    {
                        int n;
                        try
                        {
                            n = await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None);
                        }
                        catch (SocketException)
                        {
                            return;
                        }
                        if (n == 0)
                        {
                            return;
                        }
                        int heads = 0;
                        for (int i = 0; i < n; i++)
                        {
                            // Count "\r\n\r\n" (GETs have no body): one answer per request head.
                            byte b = buffer[i];
                            state = (state, b) switch
                            {
                                (0, (byte)'\r') or (2, (byte)'\r') => state + 1,
                                (1, (byte)'\n') => 2,
                                (3, (byte)'\n') => 4,
                                (_, (byte)'\r') => 1,
                                _ => 0,
                            };
                            if (state == 4)
                            {
                                heads++;
                                state = 0;
                            }
                        }
                        for (int i = 0; i < heads; i++)
                        {
                            await socket.SendAsync(s_response.AsMemory(), SocketFlags.None);
                        }
                    }
                }
            });
        }
    }
}
