using System.Net;
using System.Net.Sockets;
using System.Text;
using ProxyCore.Routing.Config;
using ProxyCore.Server;

namespace ProxyCore.FunctionalTests;

/// <summary>
/// An idle keep-alive connection (one request done, waiting for the next) costs the proxy only its
/// connection objects: head arenas and header lists go back to their pools while it waits, so opening
/// many such connections allocates little per connection, and that is also what each one keeps
/// (bench/load/idle.sh measures the RSS side: issue 5, at most 4 KB per idle connection).
/// Proxy, clients and upstream share this process, so the count includes the test's own sockets, the
/// per-accept garbage and (test builds are Debug) async state machines boxed even when they complete at
/// once: the bounds are above what this measures today (epoll ~3.8 KB, sockets ~4.8 KB; before the idle-memory
/// changes of tune.md: ~5.0 and ~5.6 KB, over these bounds) and below what a connection that kept its head arrays
/// (+2.4 KB) or its relay context (+1.3 KB) while idle allocates.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class IdleConnectionMemoryTests
{
    private static readonly byte[] s_request = "GET /x HTTP/1.1\r\nHost: test\r\nUser-Agent: idle-test\r\nAccept: */*\r\n\r\n"u8.ToArray();

    [Theory]
    [InlineData("epoll", 4500)]
    [InlineData("sockets", 5500)]
    public async Task IdleKeepAliveConnections_AfterOneRequestEach_AllocateUnderBoundPerConnection(string engine, int bound)
    {
        using var upstream = new TcpListener(IPAddress.Loopback, 0);
        upstream.Start();
        using var stop = new CancellationTokenSource();
        _ = Task.Run(() => SteadyStateAllocationTests.ServeFixedAsync(upstream, stop.Token));

        var config = ProxyConfig.ForUpstream("127.0.0.1:0", $"http://{upstream.LocalEndpoint}");
        config.Admin = new AdminConfig { Enabled = false };
        config.Transport = new TransportConfig { Engine = engine };
        await using var proxy = ProxyHost.Start(config);
        var endPoint = proxy.ListenEndPoints[0];

        const int warm = 64, measured = 400;
        var sockets = new List<Socket>(warm + measured);
        try
        {
            // Warm-up: code paths run once, the upstream pool and the runtime's caches fill.
            OpenIdle(sockets, endPoint, warm);
            // Each client socket is made before the count starts: only its connect and I/O are counted.
            var clients = new Socket[measured];
            for (int i = 0; i < measured; i++)
            {
                clients[i] = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            }
            long before = GC.GetTotalAllocatedBytes(precise: true);
            for (int i = 0; i < measured; i++)
            {
                RequestOnce(clients[i], endPoint);
                sockets.Add(clients[i]);
            }
            long perConnection = (GC.GetTotalAllocatedBytes(precise: true) - before) / measured;
            Assert.True(perConnection < bound, $"{perConnection} B allocated per idle connection ({engine}), bound {bound}");
            Assert.Equal(warm + measured, sockets.Count);
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
            stop.Cancel();
        }
    }

    private static void OpenIdle(List<Socket> sockets, IPEndPoint endPoint, int count)
    {
        for (int i = 0; i < count; i++)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            RequestOnce(socket, endPoint);
            sockets.Add(socket);
        }
    }

    // Blocking calls: they allocate next to nothing, unlike the async socket machinery.
    private static void RequestOnce(Socket socket, IPEndPoint endPoint)
    {
        socket.ReceiveTimeout = 10_000;
        socket.SendTimeout = 10_000;
        socket.Connect(endPoint);
        socket.Send(s_request);
        Span<byte> buffer = stackalloc byte[1024];
        int received = 0;
        while (true)
        {
            int n = socket.Receive(buffer[received..]);
            if (n == 0)
            {
                throw new IOException("proxy closed the connection");
            }
            received += n;
            int headEnd = buffer[..received].IndexOf("\r\n\r\n"u8);
            if (headEnd >= 0 && received >= headEnd + 4 + 64)
            {
                if (!buffer.StartsWith("HTTP/1.1 200"u8))
                {
                    throw new InvalidDataException("expected a 200");
                }
                return;
            }
        }
    }
}
