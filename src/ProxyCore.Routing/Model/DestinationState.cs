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

    /// <summary>Requests sent and not yet finished (least-requests and power-of-two read this).</summary>
    public long ActiveRequests => Volatile.Read(ref _activeRequests);

    public long TotalRequests => Volatile.Read(ref _totalRequests);

    public int ConsecutiveFailures => Volatile.Read(ref _consecutiveFailures);

    /// <summary>True until a health check (later) says otherwise; balancers skip false.</summary>
    public bool Healthy
    {
        get => _healthy;
        set => _healthy = value;
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
