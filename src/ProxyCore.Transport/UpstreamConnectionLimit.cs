using System.Collections.Concurrent;

namespace ProxyCore.Transport;

/// <summary>
/// A cluster's cap on open HTTP/1.1 upstream connections (idle and leased, over all its destinations) and
/// on the requests waiting for one: the connection half of the circuit breaker (Envoy's max_connections and
/// max_pending_requests). One instance per cluster, carried across reloads so the count stays true while
/// connections dialled under an older snapshot are still open.
/// </summary>
/// <remarks>
/// Counters are plain <see cref="Interlocked"/> updates: reusing an idle connection does not touch this type
/// at all, a dial under the cap is one compare-and-swap, and a connection closing is one decrement plus a
/// dequeue attempt on an (almost always empty) lock-free queue. Only a request that finds the cap reached
/// allocates: its waiter, which it needs anyway since it is going to suspend.
/// </remarks>
public sealed class UpstreamConnectionLimit
{
    private readonly ConcurrentQueue<PendingWaiter> _waiters = new();
    private readonly Lock _poolsLock = new();
    private volatile UpstreamConnectionPool.EndpointPool[] _pools = [];
    private int _maxConnections;
    private int _maxPending;
    private int _open;
    private int _pending;
    private long _rejectedPending;
    private long _timedOutPending;
    private long _waited;

    /// <param name="maxConnections">Open connections allowed at once (at least 1).</param>
    /// <param name="maxPending">Requests allowed to wait for one when the cap is reached (0: none wait, all are refused).</param>
    public UpstreamConnectionLimit(int maxConnections, int maxPending)
    {
        Configure(maxConnections, maxPending);
    }

    /// <summary>Open connections allowed at once.</summary>
    public int MaxConnections => Volatile.Read(ref _maxConnections);

    /// <summary>Requests allowed to wait for a connection.</summary>
    public int MaxPending => Volatile.Read(ref _maxPending);

    /// <summary>Connections counted now: dialling, leased or idle in the pool.</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>Requests waiting for a connection now.</summary>
    public int Pending => Volatile.Read(ref _pending);

    /// <summary>Requests refused at once because <see cref="MaxPending"/> were already waiting.</summary>
    public long RejectedPending => Interlocked.Read(ref _rejectedPending);

    /// <summary>Requests that waited the whole connect timeout without getting a connection.</summary>
    public long TimedOutPending => Interlocked.Read(ref _timedOutPending);

    /// <summary>Requests that had to wait (and then got a connection, or timed out, or were cancelled).</summary>
    public long Waited => Interlocked.Read(ref _waited);

    /// <summary>
    /// Takes new limits (a reload). Lowering the cap closes nothing: connections above it stay until they
    /// close on their own, and no new one is dialled until the count is back under it.
    /// </summary>
    public void Configure(int maxConnections, int maxPending)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConnections, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(maxPending);
        Volatile.Write(ref _maxConnections, maxConnections);
        Volatile.Write(ref _maxPending, maxPending);
        WakeOne(); // a raised cap may let a waiter dial now
    }

    /// <summary>Counts a connection about to be dialled; false (nothing counted) at the cap.</summary>
    internal bool TryAcquire()
    {
        while (true)
        {
            int open = Volatile.Read(ref _open);
            if (open >= Volatile.Read(ref _maxConnections))
            {
                return false;
            }
            if (Interlocked.CompareExchange(ref _open, open + 1, open) == open)
            {
                return true;
            }
        }
    }

    /// <summary>
    /// Counts a connection past the cap: an HTTP/2 destination that has none gets its first one anyway (as Envoy
    /// does), so a cluster at its cap never leaves a chosen destination with nothing to wait on. The count may
    /// exceed the cap by at most one per destination.
    /// </summary>
    internal void AcquireOverCap() => Interlocked.Increment(ref _open);

    /// <summary>A counted connection closed (or its dial failed): its slot goes to the oldest waiter, if any.</summary>
    internal void Release()
    {
        Interlocked.Decrement(ref _open);
        WakeOne();
    }

    /// <summary>
    /// Wakes the oldest live waiter to look again (a slot freed, or a connection went idle). A woken waiter
    /// that finds nothing goes back in line, so a spurious wake costs a look and nothing else.
    /// </summary>
    internal void WakeOne()
    {
        while (_waiters.TryDequeue(out var waiter))
        {
            if (waiter.TrySetResult())
            {
                return;
            }
            // Timed out or cancelled already: drop it and try the next one.
        }
    }

    internal bool TryEnterPending()
    {
        if (Interlocked.Increment(ref _pending) <= Volatile.Read(ref _maxPending))
        {
            Interlocked.Increment(ref _waited);
            return true;
        }
        Interlocked.Decrement(ref _pending);
        Interlocked.Increment(ref _rejectedPending);
        return false;
    }

    internal void ExitPending() => Interlocked.Decrement(ref _pending);

    internal void CountTimeout() => Interlocked.Increment(ref _timedOutPending);

    internal void Enqueue(PendingWaiter waiter)
    {
        // Waiters that timed out stay queued until a wake passes them; drop the ones at the head now so that
        // a cluster whose connections never free cannot grow the queue without bound.
        while (_waiters.TryPeek(out var head) && head.Task.IsCompleted)
        {
            if (_waiters.TryDequeue(out var taken) && !taken.Task.IsCompleted)
            {
                taken.TrySetResult(); // raced with another dequeue and took a live one: a wake is harmless
            }
        }
        _waiters.Enqueue(waiter);
    }

    /// <summary>The endpoints whose idle connections count here (idle ones may be closed to make room for another destination).</summary>
    internal void Register(UpstreamConnectionPool.EndpointPool pool)
    {
        lock (_poolsLock)
        {
            _pools = [.. _pools, pool];
        }
    }

    /// <summary>
    /// At the cap with nothing idle for the caller's destination: takes the oldest idle connection of another
    /// destination, whose slot the caller then uses (it must close the connection, not release the slot).
    /// </summary>
    internal bool TryStealIdle(UpstreamConnectionPool.EndpointPool except, out ConnectionContext victim)
    {
        foreach (var pool in _pools)
        {
            if (!ReferenceEquals(pool, except) && pool.TryPopOldest(out victim))
            {
                return true;
            }
        }
        victim = null!;
        return false;
    }

    /// <summary>One request waiting for a slot; completed with a result to wake it, cancelled when it gives up.</summary>
    internal sealed class PendingWaiter() : TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
}
