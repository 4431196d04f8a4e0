using System.Net;
using System.Net.Sockets;

namespace ProxyCore.Transport;

/// <summary>Accepts TCP (or Unix domain socket) connections on one bound endpoint.</summary>
public sealed class SocketConnectionListener : IConnectionListener
{
    private readonly Socket _socket;
    private readonly SocketPipeSettings _settings;
    private int _unbound;

    private SocketConnectionListener(Socket socket, EndPoint endPoint, SocketPipeSettings settings)
    {
        _socket = socket;
        EndPoint = endPoint;
        _settings = settings;
    }

    /// <summary>The bound endpoint; with port 0 requested, it carries the port the OS picked.</summary>
    public EndPoint EndPoint { get; }

    /// <summary>
    /// Binds and starts listening. An <see cref="IPEndPoint"/> with port 0 gets an ephemeral port
    /// (read it back from <see cref="EndPoint"/>); <see cref="IPAddress.IPv6Any"/> also accepts IPv4.
    /// </summary>
    /// <exception cref="AddressInUseException">Another socket listens on the address already.</exception>
    public static SocketConnectionListener Bind(EndPoint endPoint, SocketTransportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        options ??= SocketTransportOptions.Default;

        var protocol = endPoint is UnixDomainSocketEndPoint ? ProtocolType.Unspecified : ProtocolType.Tcp;
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, protocol);
        try
        {
            if (endPoint is IPEndPoint ip && ip.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }
            socket.Bind(endPoint);
            socket.Listen(options.Backlog);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            socket.Dispose();
            throw new AddressInUseException($"Cannot listen on {endPoint}: the address is already in use.", ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new SocketConnectionListener(socket, socket.LocalEndPoint ?? endPoint, new SocketPipeSettings(options));
    }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Socket accepted;
            try
            {
                accepted = await _socket.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                return null; // Unbound.
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.OperationAborted && Volatile.Read(ref _unbound) != 0)
            {
                return null; // Unbound while an accept was pending.
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
            {
                continue; // The client gave up between handshake and accept: not our listener's failure.
            }

            if (_settings.Options.NoDelay && accepted.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
            {
                accepted.NoDelay = true;
            }
            var connection = new SocketConnection(accepted, _settings, ConnectionSide.Client);
            connection.Start();
            return connection;
        }
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _unbound, 1) == 0)
        {
            _socket.Dispose();
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => UnbindAsync();
}
