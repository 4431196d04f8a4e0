using System.Buffers;

namespace ProxyCore.Transport.Tests;

/// <summary>A memory pool that tracks how many bytes are rented at once, to prove memory stays bounded.</summary>
internal sealed class CountingMemoryPool : MemoryPool<byte>
{
    private long _outstanding;
    private long _peak;

    public long Outstanding => Interlocked.Read(ref _outstanding);

    public long Peak => Interlocked.Read(ref _peak);

    public override int MaxBufferSize => 1024 * 1024;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        int size = minBufferSize <= 0 ? 4096 : minBufferSize;
        long now = Interlocked.Add(ref _outstanding, size);
        long peak;
        while (now > (peak = Interlocked.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, now, peak) != peak)
        {
        }
        return new Owner(this, size);
    }

    protected override void Dispose(bool disposing)
    {
    }

    private sealed class Owner(CountingMemoryPool pool, int size) : IMemoryOwner<byte>
    {
        private byte[]? _array = ArrayPool<byte>.Shared.Rent(size);

        public Memory<byte> Memory => _array is { } a ? a.AsMemory(0, size) : throw new ObjectDisposedException(nameof(Owner));

        public void Dispose()
        {
            var array = Interlocked.Exchange(ref _array, null);
            if (array is not null)
            {
                ArrayPool<byte>.Shared.Return(array);
                Interlocked.Add(ref pool._outstanding, -size);
            }
        }
    }
}
