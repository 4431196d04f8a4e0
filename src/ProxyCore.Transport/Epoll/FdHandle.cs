using System.Runtime.InteropServices;

namespace ProxyCore.Transport.Epoll;

/// <summary>
/// Owns one file descriptor. Every syscall on it runs between DangerousAddRef and DangerousRelease, so a
/// close from another thread (Abort) waits for a call in flight instead of letting it hit a reused fd number.
/// </summary>
internal sealed class FdHandle : SafeHandle
{
    public FdHandle(int fd) : base(new IntPtr(-1), ownsHandle: true) => SetHandle(new IntPtr(fd));

    public override bool IsInvalid => handle.ToInt64() < 0;

    /// <summary>The fd, for a caller that holds a reference (AddRef).</summary>
    public int Fd => (int)handle.ToInt64();

    protected override bool ReleaseHandle() => Native.close((int)handle.ToInt64()) == 0;
}
