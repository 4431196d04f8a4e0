using System.Net;
using System.Net.Sockets;

namespace ProxyCore.Transport.Epoll;

/// <summary>
/// Dials upstreams with a non-blocking connect() on the caller's own reactor when the caller runs on one
/// (the request that needs the upstream), so the request and its upstream exchange stay on one thread.
/// Names are resolved and their addresses tried in turn, like <see cref="SocketConnectionFactory"/>.
/// </summary>
internal sealed class EpollConnectionFactory : IConnectionFactory
{
    private readonly SocketPipeSettings _settings;
    private readonly EpollReactor.Group _reactors;
    private readonly SocketConnectionFactory _fallback;

    public EpollConnectionFactory(SocketTransportOptions options)
    {
        _settings = new SocketPipeSettings(options); // only its Options and Pool: the epoll engine has no pipes
        _reactors = EpollReactor.Group.Get(options.Reactors);
        _fallback = new SocketConnectionFactory(options);
    }

    public async ValueTask<ConnectionContext> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        switch (endPoint)
        {
            case IPEndPoint ip:
                return await ConnectOneAsync(ip, cancellationToken).ConfigureAwait(false);
            case DnsEndPoint dns:
                var addresses = await Dns.GetHostAddressesAsync(dns.Host, cancellationToken).ConfigureAwait(false);
                SocketException? last = null;
                foreach (var address in addresses)
                {
                    try
                    {
                        return await ConnectOneAsync(new IPEndPoint(address, dns.Port), cancellationToken).ConfigureAwait(false);
                    }
                    catch (SocketException ex)
                    {
                        last = ex;
                    }
                }
                throw last ?? new SocketException((int)SocketError.HostNotFound);
            default:
                // Unix domain sockets and the like: the sockets engine handles them.
                return await _fallback.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask<ConnectionContext> ConnectOneAsync(IPEndPoint endPoint, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var (fd, inProgress) = StartConnect(endPoint);
        var connection = new EpollConnection(fd, _reactors.CurrentOrNext(), _settings, ConnectionSide.Upstream, endPoint);
        try
        {
            connection.Register();
            if (inProgress)
            {
                await connection.CompleteConnectAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            connection.CloseSocket();
            throw;
        }
        connection.Start();
        return connection;
    }

    private unsafe (FdHandle Fd, bool InProgress) StartConnect(IPEndPoint endPoint)
    {
        int family = endPoint.AddressFamily == AddressFamily.InterNetworkV6 ? Native.AF_INET6 : Native.AF_INET;
        int fd = Native.socket(family, Native.SOCK_STREAM | Native.SOCK_NONBLOCK | Native.SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            throw Native.LastError();
        }
        var handle = new FdHandle(fd);
        try
        {
            if (_settings.Options.NoDelay)
            {
                Native.SetInt(fd, Native.IPPROTO_TCP, Native.TCP_NODELAY, 1);
            }
            byte* addr = stackalloc byte[SockAddr.MaxSize];
            int length = SockAddr.Write(endPoint, addr);
            if (Native.connect(fd, addr, length) == 0)
            {
                return (handle, false);
            }
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            if (errno == Native.EINPROGRESS)
            {
                return (handle, true);
            }
            throw Native.Error(errno);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }
}
