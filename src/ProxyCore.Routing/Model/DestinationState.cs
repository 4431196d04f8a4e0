namespace ProxyCore.Routing.Model;

/// <summary>
/// The mutable part of a destination: atomics only, shared by every snapshot in which the
/// destination (same cluster id and address) still exists, so counters survive reloads.
/// </summary>
public sealed class DestinationState
{
    private long _activeRequests;
    private long _totalRequests;
    private int _consecutiveFailures;
    private volatile bool _healthy = true;
    private volatile bool _ejected;
    private long _ejectedUntil;
    private long _returnedAt;
    private int _recentEjections;
    private long _ejectionsTotal;
    private long _healthChecksPassed;
    private long _healthChecksFailed;
    private long _windowStart;
    private int _windowRequests;
    private int _windowFailures;

    /// <summary>Requests sent and not yet finished (least-requests and power-of-two read this).</summary>
    public long ActiveRequests => Volatile.Read(ref _activeRequests);

    public long TotalRequests => Volatile.Read(ref _totalRequests);

    public int ConsecutiveFailures => Volatile.Read(ref _consecutiveFailures);

    /// <summary>
    /// Whether the destination takes traffic: healthy by the active checks and not ejected by outlier
    /// detection. Balancers skip false. Two volatile reads, so the hot path stays lock- and clock-free:
    /// an ejection ends by a timer clearing the flag, not by pickers comparing times.
    /// Setting it sets the active-check verdict only (<see cref="ActivelyHealthy"/>).
    /// </summary>
    public bool Healthy
    {
        get => _healthy && !_ejected;
        set => _healthy = value;
    }

    /// <summary>The active health checks' verdict; true until they say otherwise (a new destination starts healthy).</summary>
    public bool ActivelyHealthy
    {
        get => _healthy;
        set => _healthy = value;
    }

    /// <summary>Ejected by outlier detection until <see cref="EjectedUntil"/>.</summary>
    public bool IsEjected => _ejected;

    /// <summary>Timestamp (of the detector's TimeProvider) when the current or last ejection ends.</summary>
    public long EjectedUntil => Volatile.Read(ref _ejectedUntil);

    /// <summary>Timestamp of the last return from ejection, 0 if never ejected.</summary>
    public long ReturnedAt => Volatile.Read(ref _returnedAt);

    /// <summary>The multiplier of the current or last ejection's length (1 for a first ejection).</summary>
    public int RecentEjections => Volatile.Read(ref _recentEjections);

    /// <summary>Every ejection since the process started (a Prometheus counter).</summary>
    public long EjectionsTotal => Volatile.Read(ref _ejectionsTotal);

    public long HealthChecksPassed => Volatile.Read(ref _healthChecksPassed);

    public long HealthChecksFailed => Volatile.Read(ref _healthChecksFailed);

    /// <summary>Takes the destination out until <paramref name="until"/>; the caller serialises ejections and returns.</summary>
    public void Eject(long until, int recentEjections)
    {
        Volatile.Write(ref _ejectedUntil, until);
        Volatile.Write(ref _recentEjections, recentEjections);
        Interlocked.Increment(ref _ejectionsTotal);
        Interlocked.Exchange(ref _consecutiveFailures, 0);
        _ejected = true;
    }

    /// <summary>Ends the ejection that was to end at <paramref name="until"/> (false if another one replaced it).</summary>
    public bool Return(long until, long now)
    {
        if (!_ejected || Volatile.Read(ref _ejectedUntil) != until)
        {
            return false;
        }
        Volatile.Write(ref _returnedAt, now);
        Interlocked.Exchange(ref _consecutiveFailures, 0);
        _ejected = false;
        return true;
    }

    /// <summary>Forgets the failure streak (an ejection was refused: count afresh rather than retry on every failure).</summary>
    public void ResetFailures() => Interlocked.Exchange(ref _consecutiveFailures, 0);

    public void RecordHealthCheck(bool passed) => Interlocked.Increment(ref passed ? ref _healthChecksPassed : ref _healthChecksFailed);

    /// <summary>
    /// Counts one request in a tumbling error-rate window of <paramref name="windowTicks"/> and says
    /// what the window holds. Approximate under races at a window's turn (a request may land in
    /// either window), which a rate over many requests tolerates.
    /// </summary>
    public void CountInWindow(bool failure, long now, long windowTicks, out int requests, out int failures)
    {
        long start = Volatile.Read(ref _windowStart);
        if (now - start >= windowTicks && Interlocked.CompareExchange(ref _windowStart, now, start) == start)
        {
            Interlocked.Exchange(ref _windowRequests, 0);
            Interlocked.Exchange(ref _windowFailures, 0);
        }
        requests = Interlocked.Increment(ref _windowRequests);
        failures = failure ? Interlocked.Increment(ref _windowFailures) : Volatile.Read(ref _windowFailures);
    }

    /// <summary>Call when a request is sent to this destination; pair with <see cref="EndRequest"/>.</summary>
    public void BeginRequest()
    {
        Interlocked.Increment(ref _activeRequests);
        Interlocked.Increment(ref _totalRequests);
    }

    /// <summary>Call once per <see cref="BeginRequest"/>; a failure counts towards <see cref="ConsecutiveFailures"/>, a success resets it.</summary>
    public void EndRequest(bool success)
    {
        Interlocked.Decrement(ref _activeRequests);
        if (success)
        {
            if (Volatile.Read(ref _consecutiveFailures) != 0)
            {
                Interlocked.Exchange(ref _consecutiveFailures, 0);
            }
        }
        else
        {
            Interlocked.Increment(ref _consecutiveFailures);
        }
    }
}
