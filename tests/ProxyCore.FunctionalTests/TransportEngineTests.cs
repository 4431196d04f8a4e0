using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using ProxyCore.Routing.Config;

namespace ProxyCore.FunctionalTests;

/// <summary>The whole proxy over each transport engine: what a client sees must not depend on the engine.</summary>
public sealed class TransportEngineTests
{
    public static TheoryData<string> Engines => ["sockets", "epoll"];

    private static TestHost Start(string engine) =>
        TestHost.Start(url => TestHost.DefaultConfig(url, b => b.Transport = new TransportConfig { Engine = engine }));

    [Theory]
    [MemberData(nameof(Engines))]
    public async Task Get_ManyConcurrentKeepAlive_EveryAnswerWhole(string engine)
    {
        await using var host = Start(engine);
        using var client = host.CreateClient();

        // 8 clients × 50 requests over keep-alive: connections and pooled upstreams are reused across reactors.
        var workers = Enumerable.Range(0, 8).Select(async w =>
        {
            for (int i = 0; i < 50; i++)
            {
                int size = (w * 50 + i) * 97 % 20_000;
                using var response = await client.GetAsync($"/bytes/{size}");
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.Equal(size, (await response.Content.ReadAsByteArrayAsync()).Length);
            }
        });
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(60));
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public async Task Post_4MiBEcho_ArrivesIntact(string engine)
    {
        await using var host = Start(engine);
        using var client = host.CreateClient();
        var body = RandomNumberGenerator.GetBytes(4 * 1024 * 1024);

        using var response = await client.PostAsync("/echo", new ByteArrayContent(body)).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(SHA256.HashData(body), SHA256.HashData(await response.Content.ReadAsByteArrayAsync()));
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public async Task Get_OverH2c_ReturnsUpstreamAnswer(string engine)
    {
        await using var host = Start(engine);
        using var client = host.CreateClient(HttpVersion.Version20);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/bytes/1000") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };

        using var response = await client.SendAsync(request).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal(1000, (await response.Content.ReadAsByteArrayAsync()).Length);
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public async Task Get_UpstreamRefuses_502ConnectRefused(string engine)
    {
        // A bound socket that does not listen holds the port and refuses connects.
        using var notListening = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        notListening.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await using var host = TestHost.Start(_ => TestHost.DefaultConfig($"http://{notListening.LocalEndPoint}", b => b.Transport = new TransportConfig { Engine = engine }));
        using var client = host.CreateClient();

        using var response = await client.GetAsync("/bytes/1").WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("upstream-connect-failed", response.Headers.GetValues("proxycore-error").Single());
    }
}
