using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace ProxyCore.Transport.Epoll;

/// <summary>sockaddr_in / sockaddr_in6 to and from <see cref="IPEndPoint"/>.</summary>
internal static unsafe class SockAddr
{
    public const int MaxSize = 28; // sockaddr_in6

    public static int Write(IPEndPoint endPoint, byte* addr)
    {
        new Span<byte>(addr, MaxSize).Clear();
        var port = (ushort)endPoint.Port;
        if (endPoint.AddressFamily == AddressFamily.InterNetwork)
        {
            *(ushort*)addr = Native.AF_INET;
            BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(addr + 2, 2), port);
            endPoint.Address.TryWriteBytes(new Span<byte>(addr + 4, 4), out _);
            return 16;
        }
        *(ushort*)addr = Native.AF_INET6;
        BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(addr + 2, 2), port);
        endPoint.Address.TryWriteBytes(new Span<byte>(addr + 8, 16), out _);
        *(uint*)(addr + 24) = (uint)endPoint.Address.ScopeId;
        return 28;
    }

    public static IPEndPoint? Read(byte* addr, int length)
    {
        int family = *(ushort*)addr;
        int port = BinaryPrimitives.ReadUInt16BigEndian(new ReadOnlySpan<byte>(addr + 2, 2));
        if (family == Native.AF_INET && length >= 16)
        {
            return new IPEndPoint(new IPAddress(new ReadOnlySpan<byte>(addr + 4, 4)), port);
        }
        if (family == Native.AF_INET6 && length >= 28)
        {
            return new IPEndPoint(new IPAddress(new ReadOnlySpan<byte>(addr + 8, 16), *(uint*)(addr + 24)), port);
        }
        return null;
    }

    /// <summary>getsockname (local) or getpeername (remote) of an fd the caller holds a reference to; null when it fails.</summary>
    public static IPEndPoint? Query(int fd, bool peer)
    {
        byte* addr = stackalloc byte[MaxSize];
        int length = MaxSize;
        int rc = peer ? Native.getpeername(fd, addr, &length) : Native.getsockname(fd, addr, &length);
        return rc == 0 ? Read(addr, length) : null;
    }
}
