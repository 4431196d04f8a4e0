using System.Text.Json;
using ProxyCore.Routing.Config;

namespace ProxyCore.Routing.Model;

/// <summary>A route's retry policy, decoded once per snapshot so the relay asks it with a bit test.</summary>
public sealed class RetryModel
{
    private readonly ulong _statusMask; // bit (status - 500) for 5xx
    private readonly bool _on429;

    public RetryModel(RetryConfig config)
    {
        Attempts = config.Attempts;
        PerTryTimeout = config.PerTryTimeout;
        Backoff = config.Backoff;
        MaxBackoff = config.MaxBackoff;
        BudgetPercent = config.BudgetPercent;
        MinRetryConcurrency = config.MinRetryConcurrency;
        foreach (var item in config.On)
        {
            if (item.ValueKind == JsonValueKind.String)
            {
                switch (item.GetString())
                {
                    case "connect-failure": OnConnectFailure = true; break;
                    case "timeout": OnTimeout = true; break;
                    case "reset": OnReset = true; break;
                }
            }
            else if (item.TryGetInt32(out int status))
            {
                if (status == 429)
                {
                    _on429 = true;
                }
                else if (status is >= 500 and <= 563)
                {
                    _statusMask |= 1UL << (status - 500);
                }
            }
        }
    }

    public int Attempts { get; }

    public bool OnConnectFailure { get; }

    public bool OnTimeout { get; }

    public bool OnReset { get; }

    public TimeSpan? PerTryTimeout { get; }

    public TimeSpan Backoff { get; }

    public TimeSpan MaxBackoff { get; }

    public int BudgetPercent { get; }

    public int MinRetryConcurrency { get; }

    public bool OnStatus(int status) => status == 429 ? _on429 : (uint)(status - 500) < 64 && (_statusMask & (1UL << (status - 500))) != 0;

    /// <summary>Full-jitter exponential backoff before retry number <paramref name="retry"/> (1-based).</summary>
    public TimeSpan Delay(int retry, Random random)
    {
        double cap = Math.Min(MaxBackoff.Ticks, Backoff.Ticks * Math.Pow(2, retry - 1));
        return TimeSpan.FromTicks((long)(random.NextDouble() * cap));
    }
}

/// <summary>Counters of one cluster in one snapshot, atomics only (circuit breaker and retry budget).</summary>
public sealed class ClusterState
{
    private int _activeRequests;
    private int _activeRetries;

    public int ActiveRequests => Volatile.Read(ref _activeRequests);

    public int ActiveRetries => Volatile.Read(ref _activeRetries);

    /// <summary>Counts a request in; false (and nothing counted) when <paramref name="max"/> are already in flight.</summary>
    public bool TryEnter(int max)
    {
        if (Interlocked.Increment(ref _activeRequests) <= max)
        {
            return true;
        }
        Interlocked.Decrement(ref _activeRequests);
        return false;
    }

    public void Exit() => Interlocked.Decrement(ref _activeRequests);

    /// <summary>Envoy-style retry budget: retries in flight stay under a share of the requests in flight.</summary>
    public bool TryBeginRetry(int budgetPercent, int minConcurrency)
    {
        int allowed = Math.Max(minConcurrency, ActiveRequests * budgetPercent / 100);
        if (Interlocked.Increment(ref _activeRetries) <= allowed)
        {
            return true;
        }
        Interlocked.Decrement(ref _activeRetries);
        return false;
    }

    public void EndRetry() => Interlocked.Decrement(ref _activeRetries);
}
