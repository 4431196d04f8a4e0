using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;

namespace ProxyCore.Proxy.Health;

/// <summary>
/// Passive health: watches the outcome of real requests and ejects a destination that keeps failing
/// (<c>clusters[].outlierDetection</c>). An ejected destination takes no traffic until a timer on the
/// injected <see cref="TimeProvider"/> returns it.
///
/// Each ejection lasts <c>ejectFor × n</c> (capped at <c>maxEjectFor</c>), where n counts recent
/// ejections: a destination that fails again soon after returning stays out longer, as Envoy's
/// outlier detection does. n forgets one ejection per <c>ejectFor</c> spent back in service, so a
/// destination that recovered for good is soon treated as new.
///
/// The common case (a success, or a failure below the threshold) is a few atomic operations on the
/// destination's state: no lock, no allocation. Only an ejection or a return takes the lock.
/// </summary>
public sealed class OutlierDetector : IDisposable
{
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly Dictionary<DestinationState, ITimer> _returns = [];
    private bool _disposed;

    public OutlierDetector(TimeProvider? time = null) => _time = time ?? TimeProvider.System;

    /// <summary>Destinations ejected now (for tests and admin).</summary>
    public int EjectedCount
    {
        get
        {
            lock (_lock)
            {
                return _returns.Count;
            }
        }
    }

    /// <summary>
    /// Records one forwarded request's outcome. Call after <see cref="DestinationState.EndRequest"/>,
    /// whose streak of failures this reads. <paramref name="failure"/> is the upstream's own failure only
    /// (it did not connect, closed, broke the protocol, timed out, or answered 5xx).
    /// </summary>
    /// <returns>True when this outcome ejected the destination.</returns>
    public bool Record(ClusterModel cluster, DestinationModel destination, bool failure)
    {
        if (cluster.Config?.OutlierDetection is not { } options)
        {
            return false;
        }
        var state = destination.State;
        if (state.IsEjected)
        {
            return false; // a request that was in flight when it was ejected
        }
        bool trip = failure && state.ConsecutiveFailures >= options.ConsecutiveFailures;
        if (options.ErrorRatePercent is int percent)
        {
            long window = ToTicks(options.ErrorRateWindow);
            state.CountInWindow(failure, _time.GetTimestamp(), window, out int requests, out int failures);
            trip |= failure && requests >= options.MinRequests && (long)failures * 100 >= (long)percent * requests;
        }
        return trip && TryEject(cluster, destination, options);
    }

    private bool TryEject(ClusterModel cluster, DestinationModel destination, OutlierDetectionConfig options)
    {
        var state = destination.State;
        lock (_lock)
        {
            if (_disposed || state.IsEjected)
            {
                return false;
            }
            int ejected = 0;
            foreach (var d in cluster.Destinations)
            {
                ejected += d.State.IsEjected ? 1 : 0;
            }
            if (!MayEject(ejected, cluster.Destinations.Length, options.MaxEjectionPercent))
            {
                // Ejecting it would leave too little to carry the load (or the outage is the
                // cluster's, not this destination's). Count a fresh streak rather than take this
                // lock again on every failure that follows.
                state.ResetFailures();
                return false;
            }
            long now = _time.GetTimestamp();
            int count = NextEjectionCount(state.RecentEjections, state.ReturnedAt, now, ToTicks(options.EjectFor));
            var duration = EjectionTime(options.EjectFor, options.MaxEjectFor, count);
            long until = now + ToTicks(duration);
            state.Eject(until, count);
            var timer = _time.CreateTimer(static s => ((ReturnTicket)s!).Fire(), new ReturnTicket(this, state, until), duration, Timeout.InfiniteTimeSpan);
            _returns[state] = timer;
            return true;
        }
    }

    private void Return(DestinationState state, long until)
    {
        lock (_lock)
        {
            if (_returns.Remove(state, out var timer))
            {
                timer.Dispose();
            }
            state.Return(until, _time.GetTimestamp());
        }
    }

    /// <summary>Whether one more of <paramref name="total"/> destinations may be ejected when <paramref name="ejected"/> already are.</summary>
    internal static bool MayEject(int ejected, int total, int maxEjectionPercent)
        => (long)(ejected + 1) * 100 <= (long)maxEjectionPercent * total;

    /// <summary>
    /// The multiplier for a new ejection: the previous one's, less one for each full
    /// <paramref name="ejectForTicks"/> the destination has been back, plus one.
    /// </summary>
    internal static int NextEjectionCount(int previous, long returnedAt, long now, long ejectForTicks)
    {
        if (previous <= 0 || returnedAt == 0)
        {
            return 1;
        }
        long forgiven = Math.Max(0, now - returnedAt) / Math.Max(1, ejectForTicks);
        return (int)Math.Max(0, previous - Math.Min(forgiven, previous)) + 1;
    }

    /// <summary>ejectFor × count, at most maxEjectFor.</summary>
    internal static TimeSpan EjectionTime(TimeSpan ejectFor, TimeSpan maxEjectFor, int count)
    {
        double ticks = (double)ejectFor.Ticks * count;
        return ticks >= maxEjectFor.Ticks ? maxEjectFor : TimeSpan.FromTicks((long)ticks);
    }

    private long ToTicks(TimeSpan span) => (long)((double)span.Ticks * _time.TimestampFrequency / TimeSpan.TicksPerSecond);

    /// <summary>Cancels pending returns; ejected destinations stay ejected (the host is stopping).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            foreach (var timer in _returns.Values)
            {
                timer.Dispose();
            }
            _returns.Clear();
        }
    }

    private sealed class ReturnTicket(OutlierDetector owner, DestinationState state, long until)
    {
        public void Fire() => owner.Return(state, until);
    }
}
