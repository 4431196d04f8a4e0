namespace ProxyCore.Llm.Cache;

/// <summary>Where a <see cref="StreamBroadcast"/> is.</summary>
public enum StreamBroadcastState : byte
{
    /// <summary>The leader has not relayed an answer yet (followers wait for it to start or fail).</summary>
    Pending,

    /// <summary>The leader relays a successful stream: the buffer grows as its client gets bytes.</summary>
    Live,

    /// <summary>The leader's stream ended cleanly: the buffer is the whole answer.</summary>
    Completed,

    /// <summary>The leader's stream ended otherwise; if it was <see cref="Live"/>, the buffer ends with the error event its client got (or followers get).</summary>
    Failed,
}

/// <summary>
/// One streaming answer shared live: the leader of identical concurrent stream misses appends the
/// bytes its client gets (client format, after usage strip, translation and deny withholding); the
/// followers copy from the shared buffer at their own pace and wait for more.
/// </summary>
/// <remarks>
/// Append-only: bytes below <see cref="Length"/> never change, and a grown buffer leaves the old one
/// intact, so a follower writes a snapshot to its socket with no lock held (the lock only guards the
/// append and the state). A follower that fell behind copies more at once next time. Waiting costs one
/// shared <see cref="TaskCompletionSource"/> per append that had waiters, never one per byte or per
/// follower. The buffer is bounded: past <c>limit</c> bytes no one attaches any more, and the leader
/// fails it (attached followers get the cut event).
/// </remarks>
public sealed class StreamBroadcast
{
    private const int InitialBytes = 4096;
    private readonly Lock _gate = new();
    private readonly int _limit;
    private byte[] _buffer = [];
    private int _length;
    private StreamBroadcastState _state;
    private bool _overflowed;
    private TaskCompletionSource? _changed;

    /// <param name="limit">Most bytes held (the cache's largest entry).</param>
    /// <param name="includeUsage">What the leader's client asked for: only followers asking the same attach (the bytes differ).</param>
    public StreamBroadcast(int limit, bool includeUsage)
    {
        _limit = Math.Max(1, limit);
        IncludeUsage = includeUsage;
    }

    public bool IncludeUsage { get; }

    public StreamBroadcastState State
    {
        get
        {
            lock (_gate)
            {
                return _state;
            }
        }
    }

    public int Length => Volatile.Read(ref _length);

    /// <summary>The leader relays a successful stream from here on.</summary>
    public void Start() => Transition(StreamBroadcastState.Pending, StreamBroadcastState.Live, default);

    /// <summary>
    /// Appends what the leader's client got. False: over the bound; nothing is appended, no one attaches
    /// any more, and the leader should <see cref="Fail"/> it (with the cut event the attached followers end with).
    /// </summary>
    public bool Publish(ReadOnlySpan<byte> data)
    {
        TaskCompletionSource? wake;
        lock (_gate)
        {
            if (_state != StreamBroadcastState.Live)
            {
                return _state is StreamBroadcastState.Pending; // not shared (yet): nothing to keep
            }
            if (_overflowed || _length + data.Length > _limit)
            {
                _overflowed = true;
                return false;
            }
            AppendLocked(data);
            wake = TakeWaitersLocked();
        }
        wake?.TrySetResult();
        return true;
    }

    /// <summary>The leader's stream ended cleanly.</summary>
    public void Complete() => Transition(StreamBroadcastState.Live, StreamBroadcastState.Completed, default);

    /// <summary>
    /// The leader's stream ended any other way (no-op once completed). A pending broadcast fails with
    /// nothing in it (followers go upstream themselves); a live one ends with <paramref name="errorEvent"/>.
    /// </summary>
    public void Fail(ReadOnlySpan<byte> errorEvent)
    {
        TaskCompletionSource? wake;
        lock (_gate)
        {
            if (_state is StreamBroadcastState.Completed or StreamBroadcastState.Failed)
            {
                return;
            }
            if (_state == StreamBroadcastState.Live)
            {
                AppendLocked(errorEvent);
            }
            _state = StreamBroadcastState.Failed;
            wake = TakeWaitersLocked();
        }
        wake?.TrySetResult();
    }

    /// <summary>Waits until the leader's answer starts or fails. True: a live (or finished) stream a follower may copy from the start.</summary>
    public async ValueTask<bool> WaitAttachAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        Task wait;
        lock (_gate)
        {
            if (_state != StreamBroadcastState.Pending)
            {
                return CanAttachLocked();
            }
            wait = (_changed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
        try
        {
            await wait.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return false; // a slow leader: ask the provider ourselves
        }
        lock (_gate)
        {
            return _state != StreamBroadcastState.Pending && CanAttachLocked();
        }
    }

    /// <summary>
    /// What a follower that has <paramref name="seen"/> bytes copies next: the bytes past it and whether
    /// more may come. Empty and not final: await <see cref="WaitAsync"/>.
    /// </summary>
    public (ReadOnlyMemory<byte> Data, StreamBroadcastState State) Read(int seen)
    {
        lock (_gate)
        {
            return (_buffer.AsMemory(seen, _length - seen), _state);
        }
    }

    /// <summary>Completes when there is more than <paramref name="seen"/> bytes, or the stream ended.</summary>
    public Task WaitAsync(int seen)
    {
        lock (_gate)
        {
            if (_length > seen || _state is StreamBroadcastState.Completed or StreamBroadcastState.Failed)
            {
                return Task.CompletedTask;
            }
            return (_changed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
    }

    private bool CanAttachLocked() => !_overflowed && (_state is StreamBroadcastState.Live or StreamBroadcastState.Completed || (_state == StreamBroadcastState.Failed && _length > 0));

    private void Transition(StreamBroadcastState from, StreamBroadcastState to, ReadOnlySpan<byte> data)
    {
        TaskCompletionSource? wake;
        lock (_gate)
        {
            if (_state != from)
            {
                return;
            }
            AppendLocked(data);
            _state = to;
            wake = TakeWaitersLocked();
        }
        wake?.TrySetResult();
    }

    private TaskCompletionSource? TakeWaitersLocked()
    {
        var wake = _changed;
        _changed = null;
        return wake;
    }

    /// <summary>Appends (the final error event may pass the bound: it is the last write).</summary>
    private void AppendLocked(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }
        int needed = _length + data.Length;
        if (needed > _buffer.Length)
        {
            // A new array: followers may be writing a slice of the old one to their sockets right now.
            var larger = new byte[Math.Max(needed, Math.Min(Math.Max(InitialBytes, _buffer.Length * 2), _limit))];
            _buffer.AsSpan(0, _length).CopyTo(larger);
            _buffer = larger;
        }
        data.CopyTo(_buffer.AsSpan(_length));
        Volatile.Write(ref _length, needed);
    }
}
