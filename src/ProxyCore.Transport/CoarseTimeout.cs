using System.Diagnostics;

namespace ProxyCore.Transport;

/// <summary>
/// A reusable timeout with a <see cref="CancellationToken"/>, for deadlines that are re-armed on every request
/// (keep-alive, head read, upstream response). <see cref="CancellationTokenSource.CancelAfter(TimeSpan)"/> and
/// <see cref="CancellationTokenSource.TryReset"/> each take the runtime's timer-queue lock and relink a timer:
/// six of them per proxied request were ~4% of the proxy's CPU (perf, bench/load). Here arming and
/// disarming are one compare-and-swap of a deadline; one process-wide sweeper checks the deadlines every
/// <see cref="Resolution"/>, so a timeout fires up to that much late; never early, except that an arm on an epoll
/// reactor counts from the start of the reactor's current batch (the clock read once per epoll_wait), which is
/// at most that batch's run time (microseconds, a few milliseconds at worst) before the arm.
/// </summary>
/// <remarks>
/// Owner protocol (the same as a CTS with TryReset): one owner arms it with <see cref="CancelAfter"/> (a later
/// call moves the deadline, as CancelAfter does), and calls <see cref="Reset"/> once nothing waits on the
/// token any more; after a fire, Reset hands out a fresh token. <see cref="Cancel"/> may come from any thread.
/// The sweeper cancels on the thread pool, never inline: a continuation resumed by the cancel (the pipes
/// resume readers inline) may call Reset on this very object.
/// </remarks>
public sealed class CoarseTimeout : IDisposable
{
    /// <summary>How often the sweeper looks at the deadlines: the most a timeout fires late.</summary>
    public static readonly TimeSpan Resolution = TimeSpan.FromMilliseconds(50);

    private const long Disarmed = long.MaxValue;
    private const long Firing = long.MinValue;
    private const long Fired = long.MinValue + 1;

    private readonly Action<object?>? _onFire;
    private readonly object? _onFireState;
    private CancellationTokenSource? _cts; // null in callback mode
    private long _deadline = Disarmed; // Stopwatch timestamp, or one of the states above
    private int _slot = -1;

    public CoarseTimeout()
    {
        _cts = new CancellationTokenSource();
        Sweeper.Add(this);
    }

    /// <summary>
    /// Callback mode: a fire (or <see cref="Cancel"/>) runs <paramref name="onFire"/>(<paramref name="state"/>) on the thread
    /// pool instead of cancelling a token, so the timeout holds no <see cref="CancellationTokenSource"/> and a waiter
    /// registers nothing (an idle keep-alive connection: ~190 B less). <see cref="Token"/> is then
    /// <see cref="CancellationToken.None"/>. A fire may reach the callback after the owner's <see cref="Reset"/> (it was
    /// already queued): the callback tells its own deadline from a later one by <see cref="HasFired"/>.
    /// </summary>
    public CoarseTimeout(Action<object?> onFire, object? state)
    {
        ArgumentNullException.ThrowIfNull(onFire);
        _onFire = onFire;
        _onFireState = state;
        Sweeper.Add(this);
    }

    public CancellationToken Token => _cts?.Token ?? CancellationToken.None;

    public bool IsCancellationRequested => _cts?.IsCancellationRequested ?? HasFired;

    /// <summary>True from a fire (or <see cref="Cancel"/>) until the next <see cref="Reset"/>.</summary>
    public bool HasFired => Volatile.Read(ref _deadline) == Fired;

    /// <summary>Arms (or moves) the deadline to <paramref name="delay"/> from now; infinite disarms. No effect once fired.</summary>
    public void CancelAfter(TimeSpan delay)
    {
        long due;
        if (delay < TimeSpan.Zero)
        {
            due = Disarmed; // Timeout.InfiniteTimeSpan, as CancelAfter takes it
        }
        else
        {
            // On an epoll reactor the batch's timestamp (one clock read per epoll_wait, not one per arm: ~5 arms per
            // proxied request); it is behind by the batch's run so far, well under Resolution.
            if (!Epoll.EpollReactor.TryGetBatchTimestamp(out long now))
            {
                now = Stopwatch.GetTimestamp();
            }
            double ticks = delay.TotalSeconds * Stopwatch.Frequency;
            due = ticks >= Disarmed - now - 1 ? Disarmed - 1 : now + (long)ticks;
        }
        long current = Volatile.Read(ref _deadline);
        while (current > Fired)
        {
            long seen = Interlocked.CompareExchange(ref _deadline, due, current);
            if (seen == current)
            {
                return;
            }
            current = seen;
        }
    }

    /// <summary>Cancels the token now (any thread).</summary>
    public void Cancel()
    {
        var cts = _cts;
        var spin = new SpinWait();
        while (true)
        {
            long current = Volatile.Read(ref _deadline);
            if (current == Firing)
            {
                spin.SpinOnce(); // the sweeper is between its swap and its hand-off: a few instructions
                continue;
            }
            if (Interlocked.CompareExchange(ref _deadline, Fired, current) == current)
            {
                break;
            }
        }
        if (cts is null)
        {
            _onFire!(_onFireState);
            return;
        }
        cts.Cancel();
    }

    /// <summary>Disarms; after a fire (or <see cref="Cancel"/>) the next <see cref="Token"/> is a fresh one. Owner only.</summary>
    public void Reset()
    {
        long current = Volatile.Read(ref _deadline);
        if (current == Disarmed && (_cts is null || !_cts.IsCancellationRequested))
        {
            return;
        }
        var spin = new SpinWait();
        while (true)
        {
            current = Volatile.Read(ref _deadline);
            if (current == Firing)
            {
                spin.SpinOnce(); // the sweeper is between its swap and its hand-off: a few instructions
                continue;
            }
            if (Interlocked.CompareExchange(ref _deadline, Disarmed, current) == current)
            {
                break;
            }
        }
        if (_cts is not null && (current == Fired || _cts.IsCancellationRequested))
        {
            // Whoever fired holds the old source and cancels that one; nobody listens to it any more.
            _cts = new CancellationTokenSource();
        }
    }

    public void Dispose() => Sweeper.Remove(this);

    /// <summary>Called by the sweeper: fires when the deadline has passed.</summary>
    private void Check(long now)
    {
        long due = Volatile.Read(ref _deadline);
        if (due > now || due <= Fired || Interlocked.CompareExchange(ref _deadline, Firing, due) != due)
        {
            return;
        }
        var cts = _cts; // read while Firing: Reset waits, so this is the source the deadline belonged to
        Volatile.Write(ref _deadline, Fired);
        if (cts is null)
        {
            ThreadPool.UnsafeQueueUserWorkItem(_onFire!, _onFireState, preferLocal: false);
            return;
        }
        ThreadPool.UnsafeQueueUserWorkItem(static c => c.Cancel(), cts, preferLocal: false);
    }

    /// <summary>
    /// Every live timeout, each in a slot (held weakly: an owner that never disposes does not leak it), and the
    /// one timer that sweeps them. Add and Remove take a lock: they happen once per connection, not per request.
    /// </summary>
    private static class Sweeper
    {
        private static readonly Lock s_lock = new();
        private static WeakReference<CoarseTimeout>?[] s_slots = new WeakReference<CoarseTimeout>?[64];
        private static readonly Stack<int> s_free = new();
        private static int s_used; // slots [0, s_used) have been handed out at least once
        private static Thread? s_thread;

        public static void Add(CoarseTimeout timeout)
        {
            lock (s_lock)
            {
                int slot;
                if (!s_free.TryPop(out slot))
                {
                    if (s_used == s_slots.Length)
                    {
                        Array.Resize(ref s_slots, s_slots.Length * 2);
                    }
                    slot = s_used++;
                }
                s_slots[slot] = new WeakReference<CoarseTimeout>(timeout);
                timeout._slot = slot;
                if (s_thread is null)
                {
                    // Its own thread, not a Timer: a timer callback wakes a thread-pool worker 20 times a second,
                    // and each then spins (sched_yield) on the core the reactor needs (perf: ~5% of the proxy's CPU).
                    s_thread = new Thread(static () =>
                    {
                        while (true)
                        {
                            Thread.Sleep(Resolution);
                            Sweep();
                        }
                    }) { IsBackground = true, Name = "proxycore-timeouts" };
                    s_thread.UnsafeStart();
                }
            }
        }

        public static void Remove(CoarseTimeout timeout)
        {
            lock (s_lock)
            {
                int slot = timeout._slot;
                if (slot < 0)
                {
                    return;
                }
                timeout._slot = -1;
                s_slots[slot] = null;
                s_free.Push(slot);
            }
        }

        private static void Sweep()
        {
            long now = Stopwatch.GetTimestamp();
            WeakReference<CoarseTimeout>?[] slots;
            int used;
            lock (s_lock)
            {
                slots = s_slots;
                used = s_used;
            }
            for (int i = 0; i < used; i++)
            {
                var entry = Volatile.Read(ref slots[i]);
                if (entry is null)
                {
                    continue;
                }
                if (entry.TryGetTarget(out var timeout))
                {
                    timeout.Check(now);
                }
                else
                {
                    lock (s_lock)
                    {
                        if (ReferenceEquals(s_slots[i], entry))
                        {
                            s_slots[i] = null;
                            s_free.Push(i);
                        }
                    }
                }
            }
        }
    }
}
