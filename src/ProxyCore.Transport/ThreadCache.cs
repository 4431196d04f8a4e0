using System.Diagnostics.CodeAnalysis;

namespace ProxyCore.Transport;

/// <summary>
/// A small per-thread stack (last in, first out) in front of a shared pool of <typeparamref name="T"/>: what a
/// thread gave back last is what it gets next, while it is still in the CPU's cache.
/// </summary>
/// <remarks>
/// Why: the shared pools are FIFO queues, so with 64 keep-alive connections taking turns every rent got the
/// object returned longest ago, cold in the cache (perf on the h1 rig: the first touch of a pipe block, a head
/// arena or a relay context was a top user-space cost). On an epoll reactor nearly all rents and returns happen
/// on one thread, so a stack per thread keeps the working set to the few objects in flight. No locks: each
/// thread touches only its own stack. Bounded by <see cref="Capacity"/> per thread; one owner (pool instance)
/// per thread at a time, so two pools of the same type never mix their objects (a push for a new owner drops the
/// old owner's objects).
/// </remarks>
public static class ThreadCache<T>
    where T : class
{
    /// <summary>Objects a thread keeps at most; past it they go to the shared pool.</summary>
    public const int Capacity = 16;

    [ThreadStatic]
    private static T?[]? t_items;

    [ThreadStatic]
    private static int t_count;

    [ThreadStatic]
    private static object? t_owner;

    /// <summary>The object this thread gave back to <paramref name="owner"/> last, if any.</summary>
    public static bool TryPop(object owner, [NotNullWhen(true)] out T? item)
    {
        int count = t_count;
        if (count > 0 && ReferenceEquals(t_owner, owner))
        {
            var items = t_items!;
            t_count = --count;
            item = items[count]!;
            items[count] = null;
            return true;
        }
        item = null;
        return false;
    }

    /// <summary>Keeps <paramref name="item"/> on this thread for <paramref name="owner"/>; false when full.</summary>
    public static bool TryPush(object owner, T item)
    {
        var items = t_items;
        if (items is null)
        {
            t_items = items = new T?[Capacity]; // once per thread
            t_owner = owner;
        }
        else if (!ReferenceEquals(t_owner, owner))
        {
            // Another pool (one replaced by a reload, or a second host in one process) had this thread: its
            // objects are let go to the GC, so a replaced pool's leftovers never keep the new one out for good.
            Array.Clear(items);
            t_count = 0;
            t_owner = owner;
        }
        int count = t_count;
        if (count == items.Length)
        {
            return false;
        }
        items[count] = item;
        t_count = count + 1;
        return true;
    }
}
