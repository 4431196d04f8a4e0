using System.Threading.Tasks.Sources;

namespace ProxyCore.Transport.Epoll;

/// <summary>
/// Readiness of one direction of one fd under edge-triggered epoll, and the single loop that waits for it.
/// The reactor <see cref="Set"/>s it on an edge; the loop calls <see cref="WaitAsync"/> once it found the fd
/// drained. An edge that came while the loop was busy is remembered (Ready), so none is lost. The waiter's
/// continuation runs inline in <see cref="Set"/>: on the reactor thread, which is the point of the engine.
/// Reusable: no allocation per wait.
/// </summary>
internal sealed class IoSignal : IValueTaskSource
{
    private const int Idle = 0, Ready = 1, Waiting = 2, Closed = 3;

    private ManualResetValueTaskSourceCore<bool> _core; // RunContinuationsAsynchronously = false: inline
    private IIoWaiter? _waiter; // set by Arm: the edge calls it instead of completing _core
    private int _state;

    public bool IsClosed => Volatile.Read(ref _state) == Closed;

    /// <summary>An edge came that nobody has taken yet.</summary>
    public bool IsReady => Volatile.Read(ref _state) == Ready;

    /// <summary>An edge: wakes the waiter, or remembers it for the next wait.</summary>
    public void Set()
    {
        while (true)
        {
            int state = Volatile.Read(ref _state);
            switch (state)
            {
                case Ready or Closed:
                    return;
                case Waiting:
                    if (Interlocked.CompareExchange(ref _state, Idle, Waiting) == Waiting)
                    {
                        Wake();
                        return;
                    }
                    break;
                default:
                    if (Interlocked.CompareExchange(ref _state, Ready, Idle) == Idle)
                    {
                        return;
                    }
                    break;
            }
        }
    }

    /// <summary>Consumes a remembered edge without waiting: true when one was pending (or the signal is closed).</summary>
    public bool TryTake()
    {
        int state = Volatile.Read(ref _state);
        return state == Closed || (state == Ready && Interlocked.CompareExchange(ref _state, Idle, Ready) == Ready);
    }

    /// <summary>Ends waiting for good (the fd is closed); a parked waiter resumes and sees <see cref="IsClosed"/>.</summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _state, Closed) == Waiting)
        {
            Wake();
        }
    }

    /// <summary>
    /// Waits for the next edge by callback: false when one is pending (consumed) or the signal is closed, so the
    /// caller handles it now; true when <paramref name="waiter"/> is parked and its <see cref="IIoWaiter.OnReady"/>
    /// will run, inline, on the thread of the next <see cref="Set"/> or <see cref="Close"/>. No ValueTask, no box.
    /// </summary>
    public bool Arm(IIoWaiter waiter) => TryPark(waiter);

    private void Wake()
    {
        var waiter = _waiter;
        if (waiter is not null)
        {
            _waiter = null;
            waiter.OnReady();
        }
        else
        {
            _core.SetResult(true);
        }
    }

    /// <summary>Completes at once when an edge is pending (consuming it) or the signal is closed, else at the next edge.</summary>
    public ValueTask WaitAsync() => TryPark(null) ? new ValueTask(this, _core.Version) : default;

    /// <summary>Parks <paramref name="waiter"/> (null: the ValueTask of <see cref="WaitAsync"/>); false when an edge was pending (now consumed) or the signal is closed.</summary>
    private bool TryPark(IIoWaiter? waiter)
    {
        while (true)
        {
            int state = Volatile.Read(ref _state);
            if (state == Closed)
            {
                return false;
            }
            if (state == Ready)
            {
                if (Interlocked.CompareExchange(ref _state, Idle, Ready) == Ready)
                {
                    return false;
                }
                continue;
            }
            // Idle: only the waiting side touches _waiter and the core now (Set and Close touch them only in Waiting).
            _waiter = waiter;
            if (waiter is null)
            {
                _core.Reset();
            }
            if (Interlocked.CompareExchange(ref _state, Waiting, Idle) == Idle)
            {
                return true;
            }
        }
    }

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _core.OnCompleted(continuation, state, token, flags);
}

/// <summary>What <see cref="IoSignal.Arm"/> parks: told of the edge (or the close) inline, on the thread that saw it.</summary>
internal interface IIoWaiter
{
    void OnReady();
}
