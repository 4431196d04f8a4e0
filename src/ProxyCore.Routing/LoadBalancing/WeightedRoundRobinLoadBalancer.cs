using ProxyCore.Routing.Model;

namespace ProxyCore.Routing.LoadBalancing;

/// <summary>
/// Smooth weighted round-robin without a lock. nginx runs its smooth algorithm on every pick
/// (adjust every current weight, take the largest) under the upstream's lock; that is a shared
/// write per destination per request. Weights only change on reload, so the same sequence is
/// computed once here, at snapshot build, into a schedule of destination indices, and a pick is
/// one Interlocked increment into it: same interleaving (weights 5,1,1 → a a b a c a a), no lock,
/// no contention beyond one counter.
/// </summary>
public sealed class WeightedRoundRobinLoadBalancer : ILoadBalancer
{
    /// <summary>Schedules longer than this are scaled down (weights keep their proportions to within rounding).</summary>
    internal const int MaxScheduleLength = 4096;

    private readonly int[] _schedule;
    private readonly int _destinationCount;
    private uint _counter = uint.MaxValue;

    public WeightedRoundRobinLoadBalancer(ReadOnlySpan<DestinationModel> destinations)
    {
        _destinationCount = destinations.Length;
        var weights = new int[destinations.Length];
        for (int i = 0; i < weights.Length; i++)
        {
            weights[i] = Math.Max(0, destinations[i].Weight);
        }
        _schedule = BuildSchedule(weights);
    }

    internal ReadOnlySpan<int> Schedule => _schedule;

    public DestinationModel? Pick(ReadOnlySpan<DestinationModel> destinations)
    {
        if (destinations.Length != _destinationCount || _schedule.Length == 0)
        {
            // Not the array this schedule was built for (or every weight 0): stay correct, lose the weights.
            return destinations.Length == 0 ? null : FallbackPick(destinations);
        }
        int n = _schedule.Length;
        int start = (int)(Interlocked.Increment(ref _counter) % (uint)n);
        for (int i = 0; i < n; i++)
        {
            var d = destinations[_schedule[(start + i) % n]];
            if (d.State.Healthy)
            {
                return d;
            }
        }
        return null;
    }

    private DestinationModel? FallbackPick(ReadOnlySpan<DestinationModel> destinations)
    {
        int n = destinations.Length;
        int start = (int)(Interlocked.Increment(ref _counter) % (uint)n);
        for (int i = 0; i < n; i++)
        {
            var d = destinations[(start + i) % n];
            if (d.State.Healthy)
            {
                return d;
            }
        }
        return null;
    }

    /// <summary>nginx's smooth WRR run offline for one full cycle (sum of weights picks, reduced by their GCD).</summary>
    internal static int[] BuildSchedule(int[] weights)
    {
        int gcd = 0;
        long total = 0;
        foreach (int w in weights)
        {
            gcd = Gcd(gcd, w);
            total += w;
        }
        if (total == 0)
        {
            return [];
        }
        var reduced = new int[weights.Length];
        total = 0;
        for (int i = 0; i < weights.Length; i++)
        {
            reduced[i] = weights[i] / gcd;
            total += reduced[i];
        }
        if (total > MaxScheduleLength)
        {
            double scale = (double)MaxScheduleLength / total;
            total = 0;
            for (int i = 0; i < reduced.Length; i++)
            {
                // A positive weight never rounds down to zero: a destination keeps some traffic.
                reduced[i] = reduced[i] == 0 ? 0 : Math.Max(1, (int)Math.Round(reduced[i] * scale));
                total += reduced[i];
            }
        }
        var schedule = new int[total];
        var current = new long[reduced.Length];
        for (int pick = 0; pick < schedule.Length; pick++)
        {
            int best = -1;
            for (int i = 0; i < reduced.Length; i++)
            {
                current[i] += reduced[i];
                if (reduced[i] > 0 && (best < 0 || current[i] > current[best]))
                {
                    best = i;
                }
            }
            current[best] -= total;
            schedule[pick] = best;
        }
        return schedule;
    }

    private static int Gcd(int a, int b)
    {
        while (b != 0)
        {
            (a, b) = (b, a % b);
        }
        return a;
    }
}
