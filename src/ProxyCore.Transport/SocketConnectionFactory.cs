using System.Net;
using System.Net.Sockets;

namespace ProxyCore.Transport;

/// <summary>
/// Dials upstream connections over TCP (or Unix domain sockets). A <see cref="DnsEndPoint"/> is resolved
/// and its addresses tried in turn. Failures surface as <see cref="SocketException"/> (the upstream pool
/// turns them into <see cref="UpstreamConnectException"/>) or <see cref="OperationCanceledException"/>.
/// </summary>
public sealed class SocketConnectionFactory : IConnectionFactory
{
    private readonly SocketPipeSettings _settings;

    public SocketConnectionFactory(SocketTransportOptions? options = null)
    {
        _settings = new SocketPipeSettings(options ?? SocketTransportOptions.Default);
    }

    public async ValueTask<ConnectionContext> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endPoint);

        Socket socket = endPoint switch
        {
            UnixDomainSocketEndPoint => new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified),
            // A dual-mode IPv6 socket can reach whichever address family the name resolves to.
            DnsEndPoint => new Socket(SocketType.Stream, ProtocolType.Tcp),
            _ => new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp),
        };
        try
        {
            if (_settings.Options.NoDelay && socket.AddressFamily != AddressFamily.Unix)
            {
                socket.NoDelay = true;
            }
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var connection = new SocketConnection(socket, _settings, ConnectionSide.Upstream);
        connection.Start();
        return connection;
    }
}
