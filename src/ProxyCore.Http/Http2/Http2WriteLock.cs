using System.Threading.Tasks.Sources;

namespace ProxyCore.Http.Http2;

/// <summary>
/// The async mutex of an HTTP/2 connection's writer: one interlocked operation to take or release it
/// when nobody else wants it, and pooled waiters (no allocation) when somebody does. SemaphoreSlim
/// allocates a waiter task per contended wait, and the writer is contended whenever several streams
/// answer at once.
/// </summary>
/// <remarks>
/// <para><c>_count</c> is the holder plus everyone waiting or about to wait. A release that finds
/// others hands the lock straight to the oldest waiter (FIFO); if that one has counted itself but not
/// yet queued, the release leaves a grant it takes as soon as it reaches the queue.</para>
/// <para>A waiter resumes on the thread pool, never inside <see cref="Release"/>: the releasing stream
/// goes on with its own work instead of running another stream's write (and what follows it) on its
/// stack. Awaited directly by an async method, that hop allocates nothing either (the runtime queues
/// the awaiting state machine itself).</para>
/// <para>A caller that would rather not be an async method queues its own <see cref="Waiter"/> with
/// <see cref="EnterOrQueue"/> (a stream's <see cref="Http2QueuedWrite"/>): an async method that suspends
/// here costs a state-machine box, and PoolingAsyncValueTaskMethodBuilder keeps only one per thread and
/// one per core, so a burst of streams queued on one connection's writer allocated boxes beyond that.</para>
/// <para>Waits are not cancellable: the lock is held for one write and its flush (bounded by the
/// stall timeout on a client connection; on an upstream connection by the PING timeout once the
/// upstream goes silent), so a cancelled caller notices right after.</para>
/// </remarks>
internal sealed class Http2WriteLock
{
    private readonly object _gate = new();
    private int _count;
    private int _grants;          // under _gate
    private Waiter? _head;        // under _gate: FIFO of waiters
    private Waiter? _tail;
    private PooledWaiter? _free;  // under _gate: pooled waiters of WaitAsync

    /// <summary>The holder plus everyone waiting or about to wait (tests wait for a queue to form).</summary>
    internal int Contenders => Volatile.Read(ref _count);

    /// <summary>Takes the lock if it is free, without waiting.</summary>
    public bool TryEnter() => Interlocked.CompareExchange(ref _count, 1, 0) == 0;

    /// <summary>Takes the lock; the returned task completes once it is ours.</summary>
    public ValueTask WaitAsync()
    {
        if (Interlocked.Increment(ref _count) == 1)
        {
            return default;
        }
        lock (_gate)
        {
            if (_grants > 0)
            {
                _grants--;
                return default;
            }
            var waiter = _free;
            if (waiter is null)
            {
                waiter = new PooledWaiter(this);
            }
            else
            {
                _free = (PooledWaiter?)waiter.Next;
            }
            EnqueueLocked(waiter);
            return new ValueTask(waiter, waiter.Version);
        }
    }

    /// <summary>
    /// Takes the lock if it is free (true: it is ours now), or queues <paramref name="waiter"/> (false:
    /// its <see cref="Waiter.Grant"/> runs once the lock is its). The waiter must not be queued already.
    /// </summary>
    public bool EnterOrQueue(Waiter waiter)
    {
        if (Interlocked.Increment(ref _count) == 1)
        {
            return true;
        }
        lock (_gate)
        {
            if (_grants > 0)
            {
                _grants--;
                return true;
            }
            EnqueueLocked(waiter);
            return false;
        }
    }

    private void EnqueueLocked(Waiter waiter)
    {
        waiter.Next = null;
        if (_tail is null)
        {
            _head = waiter;
        }
        else
        {
            _tail.Next = waiter;
        }
        _tail = waiter;
    }

    /// <summary>Gives the lock up, to the oldest waiter if there is one.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _count) == 0)
        {
            return;
        }
        Waiter? next;
        lock (_gate)
        {
            next = _head;
            if (next is null)
            {
                // Counted, not queued yet: it takes this grant in WaitAsync.
                _grants++;
                return;
            }
            _head = next.Next;
            if (_head is null)
            {
                _tail = null;
            }
        }
        next.Grant();
    }

    /// <summary>
    /// Releases the lock once <paramref name="pending"/> (a flush made under it) is done: at once, with no async state,
    /// when it already is; a failure still releases, and reaches the caller.
    /// </summary>
    public ValueTask ReleaseAfter(ValueTask pending)
    {
        if (pending.IsCompletedSuccessfully)
        {
            pending.GetAwaiter().GetResult(); // a pooled source is told its result was taken
            Release();
            return default;
        }
        return AwaitThenReleaseAsync(pending);
    }

    private async ValueTask AwaitThenReleaseAsync(ValueTask pending)
    {
        try
        {
            await pending.ConfigureAwait(false);
        }
        finally
        {
            Release();
        }
    }

    private void Return(PooledWaiter waiter)
    {
        lock (_gate)
        {
            waiter.Next = _free;
            _free = waiter;
        }
    }

    /// <summary>One place in the queue. <see cref="Grant"/> is called once the lock is the waiter's, inside <see cref="Release"/>: it must only schedule the waiter's work, not run it.</summary>
    public abstract class Waiter
    {
        internal Waiter? Next;

        public abstract void Grant();
    }

    private sealed class PooledWaiter(Http2WriteLock owner) : Waiter, IValueTaskSource
    {
        private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };

        public short Version => _core.Version;

        public override void Grant() => _core.SetResult(true);

        public void GetResult(short token)
        {
            try
            {
                _core.GetResult(token);
            }
            finally
            {
                _core.Reset();
                owner.Return(this);
            }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
            => _core.OnCompleted(continuation, state, token, flags);
    }
}
