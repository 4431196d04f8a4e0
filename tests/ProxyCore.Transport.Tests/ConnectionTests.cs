using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ProxyCore.Transport.Tests;

public class ConnectionTests
{
    [Theory]
    [InlineData(TransportKind.Socket)]
    [InlineData(TransportKind.InMemory)]
    public async Task Echo_ClientWrites_ServerEchoesBack(TransportKind kind)
    {
        await using var pair = TransportPair.Create(kind);
        var (client, server) = await pair.ConnectAsync();
        await using var _ = client;
        await using var __ = server;

        var request = Encoding.ASCII.GetBytes("hello through the transport");
        await client.Transport.Output.WriteAndFlushAsync(request);
        var atServer = await server.Transport.Input.ReadExactlyAsync(request.Length);
        await server.Transport.Output.WriteAndFlushAsync(atServer);
        var echoed = await client.Transport.Input.ReadExactlyAsync(request.Length);

        Assert.Equal(request, echoed);
    }
}
