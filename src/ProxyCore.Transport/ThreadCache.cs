using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace ProxyCore.Transport;

/// <summary>
/// A small per-thread stack (last in, first out) in front of a shared pool of <typeparamref name="T"/>: what a
/// thread gave back last is what it gets next, while it is still in the CPU's cache. One instance per pool.
/// </summary>
/// <remarks>
/// Why: the shared pools are FIFO queues, so with 64 keep-alive connections taking turns every rent got the
/// object returned longest ago, cold in the cache (perf on the h1 rig: the first touch of a pipe block, a head
/// arena or a relay context was a top user-space cost; callgrind: ~15% fewer L1 data misses per request with
/// these stacks). On an epoll reactor nearly all rents and returns happen on one thread, so a stack per thread
/// keeps the working set to the few objects in flight. No locks: a thread touches only its own stacks. Only
/// threads that opted in (the reactors: <see cref="ThreadCacheSlots.EnableForCurrentThread"/>) keep stacks.
/// Bounded: <see cref="Capacity"/> objects per thread and cache (the pool chooses it); the first <see cref="MaxCaches"/> caches made
/// in the process get stacks, later ones (a test process making many hosts) pass everything to their pool.
/// One non-generic thread-static holds every stack: a generic type's thread statics cost a lookup per access.
/// </remarks>
public sealed class ThreadCache<T>
    where T : class
{
    /// <summary>Caches in one process that get per-thread stacks.</summary>
    public const int MaxCaches = ThreadCacheSlots.MaxCaches;

    private readonly int _id = ThreadCacheSlots.NewId();
    private readonly int _capacity;

    /// <param name="capacity">Objects a thread keeps at most; past it they go to the shared pool. A reactor serves
    /// bursts of up to its connections' worth of requests before their returns come, so ~64 keeps those hot.</param>
    public ThreadCache(int capacity) => _capacity = capacity;

    /// <summary>Objects a thread keeps at most; past it they go to the shared pool.</summary>
    public int Capacity => _capacity;

    /// <summary>The object this thread gave back last, if any.</summary>
    public bool TryPop([NotNullWhen(true)] out T? item)
    {
        var stack = ThreadCacheSlots.Get(_id, create: false, 0);
        if (stack is not null && stack.Count > 0)
        {
            int count = --stack.Count;
            ref object? slot = ref stack.Items[count].Item;
            item = Unsafe.As<T>(slot!); // only TryPush of this cache puts objects here
            slot = null;
            return true;
        }
        item = null;
        return false;
    }

    /// <summary>Keeps <paramref name="item"/> on this thread; false when full (the caller pools it as before).</summary>
    public bool TryPush(T item)
    {
        var stack = ThreadCacheSlots.Get(_id, create: true, _capacity);
        if (stack is null || stack.Count == stack.Items.Length)
        {
            return false;
        }
        stack.Items[stack.Count++].Item = item;
        return true;
    }
}

/// <summary>The per-thread stacks of every <see cref="ThreadCache{T}"/>, by cache id.</summary>
internal static class ThreadCacheSlots
{
    public const int MaxCaches = 32;

    private static int s_lastId = -1;

    [ThreadStatic]
    private static Stack?[]? t_stacks;

    public static int NewId() => Interlocked.Increment(ref s_lastId);

    /// <summary>
    /// Lets the calling thread keep stacks: the epoll reactors, which rent and return on the same thread. Elsewhere
    /// (thread-pool threads under the sockets engine rent on one thread and return on another) a stack would only
    /// hold objects its thread never rents again, so the pools would allocate until every thread's stack is full.
    /// </summary>
    public static void EnableForCurrentThread() => t_stacks ??= new Stack?[MaxCaches];

    public static Stack? Get(int id, bool create, int capacity)
    {
        var stacks = t_stacks;
        if (stacks is null || (uint)id >= MaxCaches)
        {
            return null; // not a thread that caches (see EnableForCurrentThread)
        }
        var stack = stacks[id];
        if (stack is null && create)
        {
            stacks[id] = stack = new Stack(capacity); // once per thread and cache
        }
        return stack;
    }

    internal sealed class Stack(int capacity)
    {
        // Slots in a struct: storing into an object?[] goes through the runtime's covariant store check (callgrind:
        // ~33 instructions a push, nine a request); a struct field is a plain reference write.
        public readonly Slot[] Items = new Slot[capacity];
        public int Count;
    }

    internal struct Slot
    {
        public object? Item;
    }
}
