using System.Net;
using System.Runtime.InteropServices;

namespace ProxyCore.Transport.Epoll;

/// <summary>
/// Accepts TCP connections with accept4() and hands each to the next reactor of the group, round-robin.
/// The listening fd itself is watched by one reactor (edge-triggered): accepts run until EAGAIN, then wait.
/// </summary>
internal sealed class EpollConnectionListener : IConnectionListener, IEpollHandler
{
    private readonly FdHandle _fd;
    private readonly EpollReactor.Group _reactors;
    private readonly EpollReactor _own;
    private readonly SocketPipeSettings _settings;
    private readonly IoSignal _acceptable = new();
    private readonly nint _registration;
    private volatile bool _canceled;
    private int _unbound;

    private EpollConnectionListener(FdHandle fd, EndPoint endPoint, EpollReactor.Group reactors, SocketPipeSettings settings)
    {
        _fd = fd;
        EndPoint = endPoint;
        _reactors = reactors;
        _settings = settings;
        _own = reactors.Next();
        _registration = _own.Register(fd, this, Native.EPOLLIN | Native.EPOLLET);
    }

    public EndPoint EndPoint { get; }

    public static unsafe EpollConnectionListener Bind(IPEndPoint endPoint, SocketTransportOptions options)
    {
        int family = endPoint.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? Native.AF_INET6 : Native.AF_INET;
        int fd = Native.socket(family, Native.SOCK_STREAM | Native.SOCK_NONBLOCK | Native.SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            throw Native.LastError();
        }
        var handle = new FdHandle(fd);
        try
        {
            // As the sockets engine does on Unix: a restart may bind while old connections sit in TIME_WAIT.
            Native.SetInt(fd, Native.SOL_SOCKET, Native.SO_REUSEADDR, 1);
            if (endPoint.Address.Equals(IPAddress.IPv6Any))
            {
                Native.SetInt(fd, Native.IPPROTO_IPV6, Native.IPV6_V6ONLY, 0);
            }
            byte* addr = stackalloc byte[SockAddr.MaxSize];
            int length = SockAddr.Write(endPoint, addr);
            if (Native.bind(fd, addr, length) != 0)
            {
                var error = Native.LastError();
                if (error.SocketErrorCode == System.Net.Sockets.SocketError.AddressAlreadyInUse)
                {
                    throw new AddressInUseException($"Cannot listen on {endPoint}: the address is already in use.", error);
                }
                throw error;
            }
            if (Native.listen(fd, options.Backlog) != 0)
            {
                throw Native.LastError();
            }
            var bound = SockAddr.Query(fd, peer: false) ?? endPoint;
            var settings = new SocketPipeSettings(options); // only its Options and Pool: the epoll engine has no pipes
            return new EpollConnectionListener(handle, bound, EpollReactor.Group.Get(options.Reactors), settings);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public void OnEvents(uint events) => _acceptable.Set();

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            if (Volatile.Read(ref _unbound) != 0)
            {
                return null;
            }
            int fd = Accept(out int errno, out var remote);
            if (fd >= 0)
            {
                if (_settings.Options.NoDelay)
                {
                    Native.SetInt(fd, Native.IPPROTO_TCP, Native.TCP_NODELAY, 1);
                }
                var connection = new EpollConnection(new FdHandle(fd), _reactors.Next(), _settings, ConnectionSide.Client, remote);
                connection.Register();
                connection.Start();
                return connection;
            }
            switch (errno)
            {
                case Native.EAGAIN:
                    await WaitAcceptableAsync(cancellationToken).ConfigureAwait(false);
                    break;
                case Native.EINTR or 103 or 104 or 71: // ECONNABORTED, ECONNRESET, EPROTO: the client gave up before we accepted.
                    break;
                case -1:
                    return null; // Unbound while we were about to accept.
                default:
                    throw Native.Error(errno);
            }
        }
    }

    private async ValueTask WaitAcceptableAsync(CancellationToken cancellationToken)
    {
        if (!cancellationToken.CanBeCanceled)
        {
            await _acceptable.WaitAsync().ConfigureAwait(false);
            return;
        }
        using (cancellationToken.UnsafeRegister(static state =>
        {
            var self = (EpollConnectionListener)state!;
            self._canceled = true;
            self._acceptable.Set();
        }, this))
        {
            await _acceptable.WaitAsync().ConfigureAwait(false);
        }
        if (_canceled)
        {
            _canceled = false;
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    // The peer's address comes with the accept (no getpeername per connection).
    private unsafe int Accept(out int errno, out IPEndPoint? remote)
    {
        bool added = false;
        remote = null;
        try
        {
            _fd.DangerousAddRef(ref added);
            byte* addr = stackalloc byte[SockAddr.MaxSize];
            int length = SockAddr.MaxSize;
            int fd = Native.accept4(_fd.Fd, addr, &length, Native.SOCK_NONBLOCK | Native.SOCK_CLOEXEC);
            errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
            if (fd >= 0)
            {
                remote = SockAddr.Read(addr, length);
            }
            return fd;
        }
        catch (ObjectDisposedException)
        {
            errno = -1;
            return -1;
        }
        finally
        {
            if (added)
            {
                _fd.DangerousRelease();
            }
        }
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _unbound, 1) == 0)
        {
            _own.Unregister(_fd, _registration);
            _fd.Dispose();
            _acceptable.Close();
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => UnbindAsync();
}
