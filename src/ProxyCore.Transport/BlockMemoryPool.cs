using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ProxyCore.Transport;

/// <summary>
/// A pool of fixed 4 KiB pinned blocks for the connection pipes. Every block rented is returned
/// to a lock-free queue and reused, however many connections hold blocks at once.
/// </summary>
/// <remarks>
/// Why not <see cref="MemoryPool{T}.Shared"/>: it sits on <see cref="ArrayPool{T}.Shared"/>, whose
/// per-thread and per-core stores keep only a few arrays of each size. With dozens of connections
/// holding buffers at once, rents miss and allocate: measured in-process with 64 keep-alive
/// connections, about 30 B per proxied request, all of it pipe buffers. Blocks are pinned (allocated
/// on the pinned object heap) so the sockets' native I/O never needs to pin them per call. The pool
/// only grows to the peak number of blocks in use; an idle connection holds none (the transport
/// waits for data before renting), so the peak follows active connections, not open ones.
/// </remarks>
public sealed class BlockMemoryPool : MemoryPool<byte>
{
    /// <summary>Every block is this size; larger rents are served by the shared array pool instead.</summary>
    public const int BlockSize = 4096;

    private readonly ConcurrentQueue<Block> _free = new();
    private readonly ThreadCache<Block> _threadCache = new(32); // at most 128 KiB per thread
    private long _allocated;

    /// <summary>The process-wide pool the transports use unless told otherwise.</summary>
    public static new BlockMemoryPool Shared { get; } = new();

    public override int MaxBufferSize => BlockSize;

    /// <summary>Blocks created so far (the pool's high-water mark).</summary>
    public long BlocksAllocated => Interlocked.Read(ref _allocated);

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        if (minBufferSize > BlockSize)
        {
            return MemoryPool<byte>.Shared.Rent(minBufferSize);
        }
        if (_threadCache.TryPop(out var block) || _free.TryDequeue(out block))
        {
            return block;
        }
        Interlocked.Increment(ref _allocated);
        return new Block(this);
    }

    protected override void Dispose(bool disposing)
    {
        // Blocks live as long as the process: nothing to release.
    }

    private void Return(Block block)
    {
        // Newest first on the returning thread (an epoll reactor: the thread that rents next), so a rent gets a block
        // still in the cache; the shared queue takes the overflow and blocks returned on other threads.
        if (!_threadCache.TryPush(block))
        {
            _free.Enqueue(block);
        }
    }

    internal sealed class Block : MemoryManager<byte>, IMemoryOwner<byte>
    {
        private readonly BlockMemoryPool _pool;
        private readonly byte[] _array = GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true);

        public Block(BlockMemoryPool pool)
        {
            _pool = pool;
            ArrayMemory = _array;
        }

        /// <summary>The block as array-backed memory: its Span is a field read, where <see cref="Memory"/>'s is a virtual call.</summary>
        public Memory<byte> ArrayMemory { get; }

        public override Memory<byte> Memory => CreateMemory(BlockSize);

        public override Span<byte> GetSpan() => _array;

        public override MemoryHandle Pin(int elementIndex = 0)
        {
            unsafe
            {
                // The array is on the pinned object heap: its address never changes.
                return new MemoryHandle((byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array)) + elementIndex);
            }
        }

        public override void Unpin()
        {
        }

        protected override bool TryGetArray(out ArraySegment<byte> segment)
        {
            segment = new ArraySegment<byte>(_array);
            return true;
        }

        /// <summary>IMemoryOwner.Dispose: the pipe is done with the block; back to the pool.</summary>
        void IDisposable.Dispose() => _pool.Return(this);

        protected override void Dispose(bool disposing)
        {
        }
    }
}
