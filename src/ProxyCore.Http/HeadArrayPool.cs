using System.Collections.Concurrent;
using ProxyCore.Transport;

namespace ProxyCore.Http;

/// <summary>
/// Arrays of one fixed length for the heads' arenas and header lists, which every connection rents
/// when a request arrives and returns while it waits idle for the next one.
/// </summary>
/// <remarks>
/// Why not <see cref="System.Buffers.ArrayPool{T}.Shared"/> for the common size: its per-thread and
/// per-core stores keep a few dozen arrays per size, and with every keep-alive connection renting
/// two heads per request, a rig of 64 busy connections would miss and allocate. This pool keeps every
/// array returned, up to <see cref="MaxRetained"/> (so a one-off burst of connections does not pin its
/// peak forever), so steady state rents without allocating however many connections take turns.
/// </remarks>
internal sealed class HeadArrayPool<T>
{
    /// <summary>Free arrays kept at most; more returned are left to the GC.</summary>
    public const int MaxRetained = 4096;

    private readonly ConcurrentQueue<T[]> _free = new();
    private readonly ThreadCache<T[]> _threadCache = new(64); // a burst of 64 connections' heads stays hot
    private readonly int _length;
    private int _count;

    public HeadArrayPool(int length) => _length = length;

    public int Length => _length;

    public T[] Rent()
    {
        if (_threadCache.TryPop(out var array))
        {
            return array; // the array this thread returned last: still in the cache
        }
        if (_free.TryDequeue(out array))
        {
            Interlocked.Decrement(ref _count);
            return array;
        }
        return new T[_length];
    }

    /// <summary>Takes back an array of <see cref="Length"/> elements (never cleared: heads hold no references).</summary>
    public void Return(T[] array)
    {
        if (_threadCache.TryPush(array))
        {
            return;
        }
        if (Interlocked.Increment(ref _count) > MaxRetained)
        {
            Interlocked.Decrement(ref _count);
            return;
        }
        _free.Enqueue(array);
    }
}
