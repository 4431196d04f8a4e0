using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using ProxyCore.Tests.Shared;
using ProxyCore.Transport.Tls;

namespace ProxyCore.Transport.Tests;

/// <summary>The TLS layer over real loopback sockets: plaintext both ways through the pipes, idle memory, close_notify.</summary>
public sealed class TlsConnectionTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private readonly TestCertificates _pki = new();
    private readonly TlsCertificate _certificate;

    public TlsConnectionTests()
    {
        var (certificate, key) = _pki.Issue("server", "127.0.0.1");
        _certificate = TlsCertificate.TryLoad(certificate, key, out _, out var error) ?? throw new InvalidOperationException(error);
    }

    public void Dispose() => _pki.Dispose();

    /// <summary>A TLS echo server: every byte read is written back; the pool counts what the pipes hold.</summary>
    private (ConnectionServer Server, IPEndPoint EndPoint) StartEcho(CountingMemoryPool pool, TimeSpan? handshakeTimeout = null)
    {
        var transport = new SocketTransportOptions { MemoryPool = pool };
        var certificates = new TlsServerCertificates(_certificate, [], [SslApplicationProtocol.Http11], SslProtocols.Tls12 | SslProtocols.Tls13);
        var tls = new TlsServerOptions(certificates) { PipeOptions = transport, HandshakeTimeout = handshakeTimeout ?? TimeSpan.FromSeconds(10) };
        var handler = new ConnectionBuilder().Use(TlsServerMiddleware.Create(tls)).Build(async connection =>
        {
            Assert.True(connection.IsTls);
            var input = connection.Transport.Input;
            var output = connection.Transport.Output;
            while (true)
            {
                var read = await input.ReadAsync();
                foreach (var segment in read.Buffer)
                {
                    await output.WriteAsync(segment);
                }
                input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    break;
                }
            }
        });
        var server = new ConnectionServer(handler);
        var listener = SocketConnectionListener.Bind(new IPEndPoint(IPAddress.Loopback, 0), transport);
        server.Start(listener);
        return (server, (IPEndPoint)listener.EndPoint);
    }

    private static async Task<SslStream> ConnectAsync(IPEndPoint endPoint)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(endPoint);
        var ssl = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "127.0.0.1",
            RemoteCertificateValidationCallback = static (_, _, _, _) => true,
            ApplicationProtocols = [SslApplicationProtocol.Http11],
        }).WaitAsync(Timeout);
        return ssl;
    }

    private static async Task<byte[]> ReadExactlyAsync(Stream stream, int count)
    {
        var buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer).AsTask().WaitAsync(Timeout);
        return buffer;
    }

    [Theory]
    [InlineData(5)]
    [InlineData(16 * 1024 + 1)]      // one record and a byte: the send pump's gather splits it
    [InlineData(300 * 1024)]         // many records, past the pipes' thresholds
    public async Task Echo_AnySize_ComesBackWhole(int size)
    {
        var pool = new CountingMemoryPool();
        var (server, endPoint) = StartEcho(pool);
        await using var _ = server;
        await using var ssl = await ConnectAsync(endPoint);
        Assert.Equal(SslApplicationProtocol.Http11, ssl.NegotiatedApplicationProtocol);
        var data = new byte[size];
        new Random(size).NextBytes(data);

        var write = ssl.WriteAsync(data).AsTask();
        var echoed = await ReadExactlyAsync(ssl, size);
        await write;

        Assert.Equal(data, echoed);
    }

    [Fact]
    public async Task IdleConnection_AfterTraffic_HoldsNoPipeBuffer()
    {
        var pool = new CountingMemoryPool();
        var (server, endPoint) = StartEcho(pool);
        await using var _ = server;
        await using var ssl = await ConnectAsync(endPoint);
        await ssl.WriteAsync(new byte[64 * 1024]);
        await ReadExactlyAsync(ssl, 64 * 1024);

        // The pumps hand every block back once the echo drained; bounded wait for the last AdvanceTo.
        var deadline = DateTime.UtcNow + Timeout;
        while (pool.Outstanding != 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        Assert.Equal(0, pool.Outstanding);
        Assert.True(pool.Peak > 0);
    }

    [Fact]
    public async Task ClientCloses_ServerSeesEnd_AndAnswersWithCloseNotify()
    {
        var pool = new CountingMemoryPool();
        var (server, endPoint) = StartEcho(pool);
        await using var _ = server;
        await using var ssl = await ConnectAsync(endPoint);
        await ssl.WriteAsync("bye"u8.ToArray());
        Assert.Equal("bye"u8.ToArray(), await ReadExactlyAsync(ssl, 3));

        await ssl.ShutdownAsync(); // close_notify: the echo handler's input completes

        // The server ends its side cleanly: a TLS end of stream (0), not a reset.
        var buffer = new byte[16];
        Assert.Equal(0, await ssl.ReadAsync(buffer).AsTask().WaitAsync(Timeout));
    }

    [Fact]
    public async Task Handshake_TimedOut_ClosesTheConnection_ServerCarriesOn()
    {
        var pool = new CountingMemoryPool();
        var (server, endPoint) = StartEcho(pool, TimeSpan.FromMilliseconds(200));
        await using var _ = server;
        using var silent = new TcpClient();
        await silent.ConnectAsync(endPoint);

        var buffer = new byte[16];
        int read;
        try
        {
            read = await silent.GetStream().ReadAsync(buffer).AsTask().WaitAsync(Timeout);
        }
        catch (IOException)
        {
            read = 0; // reset: closed as well
        }
        Assert.Equal(0, read);

        await using var ssl = await ConnectAsync(endPoint);
        await ssl.WriteAsync("ok"u8.ToArray());
        Assert.Equal("ok"u8.ToArray(), await ReadExactlyAsync(ssl, 2));
    }
}
