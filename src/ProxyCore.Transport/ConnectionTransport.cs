using System.Net;
using ProxyCore.Transport.Epoll;

namespace ProxyCore.Transport;

/// <summary>
/// Listeners and dialers for the engine <see cref="SocketTransportOptions.Engine"/> names, behind the same
/// <see cref="IConnectionListener"/> / <see cref="IConnectionFactory"/> abstractions, so nothing above cares.
/// The epoll engine handles IP endpoints; anything else (Unix domain sockets) goes to the sockets engine.
/// </summary>
public static class ConnectionTransport
{
    /// <summary>Binds and listens; see <see cref="SocketConnectionListener.Bind"/> for port 0 and IPv6Any.</summary>
    /// <exception cref="AddressInUseException">Another socket listens on the address already.</exception>
    /// <exception cref="PlatformNotSupportedException">Epoll asked for off Linux.</exception>
    public static IConnectionListener Bind(EndPoint endPoint, SocketTransportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        options ??= SocketTransportOptions.Default;
        if (options.Engine == TransportEngine.Epoll && endPoint is IPEndPoint ip)
        {
            ThrowIfNotLinux();
            return EpollConnectionListener.Bind(ip, options);
        }
        return SocketConnectionListener.Bind(endPoint, options);
    }

    /// <summary>A dialer for upstream connections.</summary>
    public static IConnectionFactory CreateFactory(SocketTransportOptions? options = null)
    {
        options ??= SocketTransportOptions.Default;
        if (options.Engine == TransportEngine.Epoll)
        {
            ThrowIfNotLinux();
            return new EpollConnectionFactory(options);
        }
        return new SocketConnectionFactory(options);
    }

    private static void ThrowIfNotLinux()
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("The epoll transport engine needs Linux.");
        }
    }
}
