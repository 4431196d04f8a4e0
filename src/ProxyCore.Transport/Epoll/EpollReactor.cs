using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace ProxyCore.Transport.Epoll;

/// <summary>Something registered with a reactor: told the epoll event bits of each edge, on the reactor thread.</summary>
internal interface IEpollHandler
{
    void OnEvents(uint events);
}

/// <summary>
/// One thread, one epoll instance. Connections registered here get their edges, and so their receive
/// loops and the application code that continues inline from them, on this thread. Registration data is a
/// GCHandle to the handler; it is freed only by the reactor itself after the batch it was in (an event
/// collected just before the fd was removed may still be in hand), so no event ever meets a freed handle.
/// </summary>
internal sealed unsafe class EpollReactor
{
    private const int MaxEvents = 256;

    // Wakes an idle reactor now and then to free handles queued while it slept; costs nothing measurable.
    private const int WaitTimeoutMs = 1000;

    [ThreadStatic]
    private static EpollReactor? t_current;

    // When this thread's epoll_wait last returned: every handler of the batch runs after it.
    [ThreadStatic]
    private static long t_batchTimestamp;

    private readonly int _epfd;
    private readonly ConcurrentQueue<nint> _handlesToFree = new();

    // Connections whose flushes of this batch wait to be sent at its end (reactor thread only; may repeat one).
    private EpollConnection?[] _batchedSends = new EpollConnection?[64];
    private int _batchedSendCount;

    private EpollReactor(int index)
    {
        _epfd = Native.epoll_create1(Native.EPOLL_CLOEXEC);
        if (_epfd < 0)
        {
            throw Native.LastError();
        }
        var thread = new Thread(Run) { IsBackground = true, Name = $"proxycore-epoll-{index}" };
        thread.UnsafeStart();
    }

    /// <summary>The reactor whose thread is running the caller, or null off reactor threads.</summary>
    public static EpollReactor? Current => t_current;

    /// <summary>
    /// On a reactor thread, the <see cref="System.Diagnostics.Stopwatch"/> timestamp of the return of the epoll_wait whose
    /// batch is running (behind the clock by at most the time the batch has taken so far); false off reactor threads.
    /// For coarse deadlines (<see cref="CoarseTimeout"/>): a clock read per batch instead of one per arm.
    /// </summary>
    public static bool TryGetBatchTimestamp(out long timestamp)
    {
        timestamp = t_batchTimestamp;
        return t_current is not null;
    }

    /// <summary>Adds <paramref name="fd"/> for <paramref name="events"/>; returns the registration to pass to <see cref="Unregister"/>.</summary>
    public nint Register(FdHandle fd, IEpollHandler handler, uint events)
    {
        nint data = GCHandle.ToIntPtr(GCHandle.Alloc(handler));
        byte* ev = stackalloc byte[16];
        *(uint*)ev = events;
        *(nint*)(ev + Native.EventDataOffset) = data;
        bool added = false;
        try
        {
            fd.DangerousAddRef(ref added);
            if (Native.epoll_ctl(_epfd, Native.EPOLL_CTL_ADD, fd.Fd, ev) != 0)
            {
                var error = Native.LastError();
                GCHandle.FromIntPtr(data).Free();
                throw error;
            }
        }
        finally
        {
            if (added)
            {
                fd.DangerousRelease();
            }
        }
        return data;
    }

    /// <summary>
    /// On this reactor's thread: <paramref name="connection"/> has bytes to send once the batch's events are handled,
    /// so all the sends of one batch go out back to back (<see cref="SocketTransportOptions.BatchSends"/>).
    /// </summary>
    public void DeferSend(EpollConnection connection)
    {
        if (_batchedSendCount == _batchedSends.Length)
        {
            Array.Resize(ref _batchedSends, _batchedSends.Length * 2);
        }
        _batchedSends[_batchedSendCount++] = connection;
    }

    /// <summary>Removes the fd (while it is still open: the caller holds a reference) and frees the registration later.</summary>
    public void Unregister(FdHandle fd, nint registration)
    {
        bool added = false;
        try
        {
            fd.DangerousAddRef(ref added);
            Native.epoll_ctl(_epfd, Native.EPOLL_CTL_DEL, fd.Fd, null);
        }
        catch (ObjectDisposedException)
        {
            // Already closed: the kernel removed it with the last close.
        }
        finally
        {
            if (added)
            {
                fd.DangerousRelease();
            }
        }
        _handlesToFree.Enqueue(registration);
    }

    private void Run()
    {
        t_current = this;
        ThreadCacheSlots.EnableForCurrentThread(); // rents and returns of the pools happen here: keep them hot
        byte* events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * Native.EventSize));
        int size = Native.EventSize, dataOffset = Native.EventDataOffset;
        while (true)
        {
            int count = Native.epoll_wait(_epfd, events, MaxEvents, WaitTimeoutMs);
            t_batchTimestamp = System.Diagnostics.Stopwatch.GetTimestamp();
            for (int i = 0; i < count; i++)
            {
                byte* ev = events + (i * size);
                uint bits = *(uint*)ev;
                var handler = (IEpollHandler)GCHandle.FromIntPtr(*(nint*)(ev + dataOffset)).Target!;
                try
                {
                    handler.OnEvents(bits);
                }
                catch (Exception ex)
                {
                    // Handlers end in async state machines that keep their own exceptions; anything that still
                    // gets here must not take every other connection of this reactor down with it.
                    Console.Error.WriteLine($"proxycore: epoll reactor: unhandled {ex.GetType().Name}: {ex.Message}");
                }
            }
            SendBatched();
            while (_handlesToFree.TryDequeue(out var handle))
            {
                GCHandle.FromIntPtr(handle).Free();
            }
        }
    }

    private void SendBatched()
    {
        // No app code runs in here (a send's failure is reported to the app's next call), so nothing adds to the list.
        for (int i = 0; i < _batchedSendCount; i++)
        {
            var connection = _batchedSends[i]!;
            _batchedSends[i] = null;
            try
            {
                connection.SendBatched();
            }
            catch (Exception ex)
            {
                Console.Error.WriteLine($"proxycore: epoll reactor: unhandled {ex.GetType().Name} in a batched send: {ex.Message}");
            }
        }
        _batchedSendCount = 0;
    }

    /// <summary>A fixed set of reactors; connections are spread over them round-robin.</summary>
    internal sealed class Group
    {
        private static readonly ConcurrentDictionary<int, Group> s_groups = new();
        private readonly EpollReactor[] _reactors;
        private uint _next;

        private Group(int count)
        {
            _reactors = new EpollReactor[count];
            for (int i = 0; i < count; i++)
            {
                _reactors[i] = new EpollReactor(i);
            }
        }

        /// <summary>The process-wide group of <paramref name="count"/> reactors (0 = one per processor); threads live as long as the process.</summary>
        public static Group Get(int count)
        {
            if (count <= 0)
            {
                count = Environment.ProcessorCount;
            }
            return s_groups.GetOrAdd(count, static n => new Group(n));
        }

        public EpollReactor Next() => _reactors[Interlocked.Increment(ref _next) % (uint)_reactors.Length];

        /// <summary>The caller's own reactor when it runs on one of this group's, so a dial stays on the thread of the request that asked.</summary>
        public EpollReactor CurrentOrNext()
        {
            var current = t_current;
            if (current is not null && Array.IndexOf(_reactors, current) >= 0)
            {
                return current;
            }
            return Next();
        }
    }
}
