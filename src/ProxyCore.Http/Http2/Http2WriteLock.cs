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
/// <para>Waits are not cancellable: the lock is held for one write and its flush, and a flush is
/// bounded by the connection's stall timeout, so a cancelled caller notices right after.</para>
/// </remarks>
internal sealed class Http2WriteLock
{
    private readonly object _gate = new();
    private int _count;
    private int _grants;          // under _gate
    private Waiter? _head;        // under _gate: FIFO of waiters
    private Waiter? _tail;
    private Waiter? _free;        // under _gate: pooled waiters

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
                waiter = new Waiter(this);
            }
            else
            {
                _free = waiter.Next;
            }
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
            return new ValueTask(waiter, waiter.Version);
        }
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

    private void Return(Waiter waiter)
    {
        lock (_gate)
        {
            waiter.Next = _free;
            _free = waiter;
        }
    }

    private sealed class Waiter(Http2WriteLock owner) : IValueTaskSource
    {
        private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };

        public Waiter? Next;

        public short Version => _core.Version;

        public void Grant() => _core.SetResult(true);

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
