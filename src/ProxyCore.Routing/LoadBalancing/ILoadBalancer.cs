using ProxyCore.Routing.Model;

namespace ProxyCore.Routing.LoadBalancing;

/// <summary>
/// Chooses a destination among those whose <see cref="DestinationState.Healthy"/> is true, or
/// returns null when none is (the relay answers 503). Implementations are lock-free and allocate
/// nothing per pick; one instance serves one cluster in one snapshot and is called concurrently.
/// </summary>
public interface ILoadBalancer
{
    DestinationModel? Pick(ReadOnlySpan<DestinationModel> destinations);
}

/// <summary>Creates balancers by config name ("round-robin", …).</summary>
public static class LoadBalancers
{
    /// <param name="policy">A name from the config; validation has already rejected unknown names.</param>
    /// <param name="destinations">The cluster's destinations (weighted schedules are built from them).</param>
    /// <param name="random">Randomness for "random" and "power-of-two"; null = <see cref="Random.Shared"/>.</param>
    public static ILoadBalancer Create(string policy, ReadOnlySpan<DestinationModel> destinations, Random? random = null) => policy switch
    {
        "round-robin" => new RoundRobinLoadBalancer(),
        "weighted-round-robin" => new WeightedRoundRobinLoadBalancer(destinations),
        "least-requests" => new LeastRequestsLoadBalancer(),
        "power-of-two" => new PowerOfTwoChoicesLoadBalancer(random),
        "random" => new RandomLoadBalancer(random),
        _ => throw new ArgumentOutOfRangeException(nameof(policy), policy, "unknown load balancing policy"),
    };

    /// <summary>How many destinations are healthy.</summary>
    internal static int CountHealthy(ReadOnlySpan<DestinationModel> destinations)
    {
        int count = 0;
        foreach (var d in destinations)
        {
            if (d.State.Healthy)
            {
                count++;
            }
        }
        return count;
    }

    /// <summary>The <paramref name="n"/>-th healthy destination (0-based), or null.</summary>
    internal static DestinationModel? NthHealthy(ReadOnlySpan<DestinationModel> destinations, int n)
    {
        foreach (var d in destinations)
        {
            if (d.State.Healthy && n-- == 0)
            {
                return d;
            }
        }
        return null;
    }
}

/// <summary>Each destination in turn; an unhealthy one passes its turn to the next healthy one.</summary>
public sealed class RoundRobinLoadBalancer : ILoadBalancer
{
    private uint _counter = uint.MaxValue;

    public DestinationModel? Pick(ReadOnlySpan<DestinationModel> destinations)
    {
        int n = destinations.Length;
        if (n == 0)
        {
            return null;
        }
        // uint wrap-around keeps the index non-negative after 2^32 picks.
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
}

/// <summary>The healthy destination with the fewest active requests; ties go to the first in order.</summary>
public sealed class LeastRequestsLoadBalancer : ILoadBalancer
{
    public DestinationModel? Pick(ReadOnlySpan<DestinationModel> destinations)
    {
        DestinationModel? best = null;
        long bestActive = long.MaxValue;
        foreach (var d in destinations)
        {
            if (!d.State.Healthy)
            {
                continue;
            }
            long active = d.State.ActiveRequests;
            if (active < bestActive)
            {
                best = d;
                bestActive = active;
            }
        }
        return best;
    }
}

/// <summary>
/// Power of two choices (Mitzenmacher): two distinct healthy destinations at random, the one with
/// fewer active requests. Nearly as even as least-requests without every picker herding onto the
/// same least-loaded destination.
/// </summary>
public sealed class PowerOfTwoChoicesLoadBalancer(Random? random = null) : ILoadBalancer
{
    private readonly Random _random = random ?? Random.Shared;

    public DestinationModel? Pick(ReadOnlySpan<DestinationModel> destinations)
    {
        int healthy = LoadBalancers.CountHealthy(destinations);
        if (healthy <= 1)
        {
            return healthy == 0 ? null : LoadBalancers.NthHealthy(destinations, 0);
        }
        int first = _random.Next(healthy);
        int second = _random.Next(healthy - 1);
        if (second >= first)
        {
            second++; // distinct from first, still uniform over the others
        }
        var a = LoadBalancers.NthHealthy(destinations, first)!;
        var b = LoadBalancers.NthHealthy(destinations, second)!;
        return b.State.ActiveRequests < a.State.ActiveRequests ? b : a;
    }
}

/// <summary>A uniformly random healthy destination.</summary>
public sealed class RandomLoadBalancer(Random? random = null) : ILoadBalancer
{
    private readonly Random _random = random ?? Random.Shared;

    public DestinationModel? Pick(ReadOnlySpan<DestinationModel> destinations)
    {
        int healthy = LoadBalancers.CountHealthy(destinations);
        return healthy == 0 ? null : LoadBalancers.NthHealthy(destinations, _random.Next(healthy));
    }
}
