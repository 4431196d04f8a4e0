using System.Threading.Tasks.Sources;

namespace ProxyCore.Http.Http2;

/// <summary>
/// A stream's write that found its connection's <see cref="Http2WriteLock"/> taken, run without an async
/// method: queued on the lock, its frames written on a thread-pool thread once the lock is its, and the
/// caller's task completed after the release. One object per pooled stream object, reused for each of
/// its writes, so a stream that waits for the writer allocates nothing however many wait with it.
/// </summary>
/// <remarks>
/// <para>An <c>async ValueTask</c> method that suspends on the lock costs a state-machine box per wait;
/// PoolingAsyncValueTaskMethodBuilder keeps one per thread and one per core, so eight streams queued on
/// one connection (h2load -m8) allocated boxes past that: 1.6–37 B per request on the server side,
/// and with SemaphoreSlim's waiter 44–121 B on the upstream side (GCAllocationTick events in
/// SteadyStateAllocationHttp2ServerTests and SteadyStateAllocationHttp2Tests).</para>
/// <para>A stream has one write outstanding at a time (each is awaited before the next starts);
/// <see cref="IsBusy"/> lets a caller that breaks that fall back to its async path instead of sharing
/// the object.</para>
/// <para>The caller's continuation runs inline when the write completes: on the thread-pool thread that
/// ran it (the lock already released), or where the flush completed, as an <c>await</c> of the flush would.</para>
/// </remarks>
internal abstract class Http2QueuedWrite : Http2WriteLock.Waiter, IValueTaskSource, IValueTaskSource<bool>, IThreadPoolWorkItem
{
    private readonly Http2WriteLock _lock;
    private readonly Action _onFlushed;
    private ManualResetValueTaskSourceCore<bool> _core;
    private ValueTask _flush;
    private bool _result;
    private bool _busy;

    protected Http2QueuedWrite(Http2WriteLock writeLock)
    {
        _lock = writeLock;
        _onFlushed = OnFlushed;
    }

    /// <summary>A write started and its task not yet consumed.</summary>
    public bool IsBusy => _busy;

    /// <summary>
    /// Holding the write lock: writes the frames and returns the flush to wait for (default for none);
    /// <paramref name="result"/> is what a <see cref="ValueTask{Boolean}"/> caller gets. May throw: the
    /// caller's task fails with it.
    /// </summary>
    protected abstract ValueTask WriteLocked(out bool result);

    /// <summary>Drops what the write's parameters referenced, once it is done.</summary>
    protected abstract void Clear();

    /// <summary>Queues the write (its parameters already set); the token of its task (<c>new ValueTask(this, token)</c>).</summary>
    protected short Start()
    {
        System.Diagnostics.Debug.Assert(!_busy, "One write per stream at a time.");
        _busy = true;
        // Read before queuing: once queued, the write may complete on another thread at any moment.
        short version = _core.Version;
        if (_lock.EnterOrQueue(this))
        {
            // The lock came free meanwhile: write on this thread.
            Run();
        }
        return version;
    }

    /// <summary>Inside <see cref="Http2WriteLock.Release"/>: the write runs on the thread pool, not on the releasing stream's stack.</summary>
    public override void Grant() => ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: true);

    void IThreadPoolWorkItem.Execute() => Run();

    private void Run()
    {
        ValueTask flush;
        try
        {
            flush = WriteLocked(out _result);
        }
        catch (Exception e)
        {
            Finish(e);
            return;
        }
        if (flush.IsCompleted)
        {
            Complete(flush);
            return;
        }
        // The transport's buffer is full: wait for the flush holding the lock, as an awaiting method would.
        _flush = flush;
        flush.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onFlushed);
    }

    private void OnFlushed()
    {
        var flush = _flush;
        _flush = default;
        Complete(flush);
    }

    private void Complete(ValueTask flush)
    {
        Exception? error = null;
        try
        {
            flush.GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            error = e;
        }
        Finish(error);
    }

    private void Finish(Exception? error)
    {
        _lock.Release();
        Clear();
        // Last: the caller's continuation may run inline from here and start this object's next write.
        if (error is null)
        {
            _core.SetResult(_result);
        }
        else
        {
            _core.SetException(error);
        }
    }

    private bool GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            _core.Reset();
            _busy = false;
        }
    }

    void IValueTaskSource.GetResult(short token) => GetResult(token);

    bool IValueTaskSource<bool>.GetResult(short token) => GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _core.OnCompleted(continuation, state, token, flags);
}
