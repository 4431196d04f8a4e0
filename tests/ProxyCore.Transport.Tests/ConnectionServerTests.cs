using System.Text;

namespace ProxyCore.Transport.Tests;

public class ConnectionServerTests
{
    private static async Task EchoAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;
        while (true)
        {
            var result = await input.ReadAsync();
            foreach (var segment in result.Buffer)
            {
                await output.WriteAsync(segment);
            }
            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return;
            }
        }
    }

    [Theory]
    [InlineData(TransportKind.Socket)]
    [InlineData(TransportKind.InMemory)]
    public async Task Start_EchoHandler_ServesConnectionsAndCountsThem(TransportKind kind)
    {
        var pair = TransportPair.Create(kind);
        var server = new ConnectionServer(EchoAsync);
        server.Start(pair.Listener);

        var client = await pair.Factory.ConnectAsync(pair.Listener.EndPoint).AsTask().WaitAsync(Timeouts.Default);
        var data = Encoding.ASCII.GetBytes("ping");
        await client.Transport.Output.WriteAndFlushAsync(data);
        Assert.Equal(data, await client.Transport.Input.ReadExactlyAsync(data.Length));
        Assert.Equal(1, server.ActiveConnections);

        // FIN from the client ends the echo loop: the server disposes the connection and the client sees EOF.
        client.Transport.Output.Complete();
        Assert.Empty(await client.Transport.Input.ReadToEndAsync());
        await client.DisposeAsync();

        await server.StopAsync(Timeouts.Default).WaitAsync(Timeouts.Default);
        Assert.Equal(0, server.ActiveConnections);
    }
}
