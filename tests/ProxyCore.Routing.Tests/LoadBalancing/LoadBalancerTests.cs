using ProxyCore.Routing.Config;
using ProxyCore.Routing.LoadBalancing;
using ProxyCore.Routing.Model;
using static ProxyCore.Routing.Tests.TestConfigs;

namespace ProxyCore.Routing.Tests.LoadBalancing;

public class LoadBalancerTests
{
    public static TheoryData<string> Policies => new() { "round-robin", "weighted-round-robin", "least-requests", "power-of-two", "random" };

    private static ClusterModel ClusterWith(string policy, params int[] weights)
    {
        var cluster = new ClusterConfig
        {
            Id = "c",
            LoadBalancing = policy,
            Destinations = [.. weights.Select((w, i) => new DestinationConfig { Address = $"http://10.0.0.{i + 1}:80", Weight = w })],
        };
        return ProxySnapshot.Build(ConfigOf([Route("r", "/")], cluster), random: new Random(12345)).Clusters["c"];
    }

    private static int[] Count(ClusterModel cluster, int picks)
    {
        var counts = new int[cluster.Destinations.Length];
        for (int i = 0; i < picks; i++)
        {
            var d = cluster.PickDestination()!;
            counts[Array.IndexOf(cluster.Destinations, d)]++;
        }
        return counts;
    }

    [Theory]
    [MemberData(nameof(Policies))]
    public void Pick_AllUnhealthy_ReturnsNull(string policy)
    {
        var cluster = ClusterWith(policy, 1, 1, 1);
        foreach (var d in cluster.Destinations)
        {
            d.State.Healthy = false;
        }

        Assert.Null(cluster.PickDestination());
    }

    [Theory]
    [MemberData(nameof(Policies))]
    public void Pick_NoDestinations_ReturnsNull(string policy)
    {
        Assert.Null(LoadBalancers.Create(policy, []).Pick([]));
    }

    [Theory]
    [MemberData(nameof(Policies))]
    public void Pick_SomeUnhealthy_NeverPicksThem(string policy)
    {
        var cluster = ClusterWith(policy, 1, 1, 1, 1);
        cluster.Destinations[1].State.Healthy = false;
        cluster.Destinations[3].State.Healthy = false;

        var counts = Count(cluster, 1000);

        Assert.Equal(0, counts[1]);
        Assert.Equal(0, counts[3]);
        Assert.Equal(1000, counts[0] + counts[2]);
        if (policy != "least-requests") // all idle: least-requests keeps the first by design
        {
            Assert.InRange(counts[0], 350, 650);
        }
    }

    [Fact]
    public void Pick_RoundRobin_Cycles()
    {
        var cluster = ClusterWith("round-robin", 1, 1, 1);

        var picked = Enumerable.Range(0, 6).Select(_ => Array.IndexOf(cluster.Destinations, cluster.PickDestination())).ToArray();

        Assert.Equal([0, 1, 2, 0, 1, 2], picked);
    }

    [Fact]
    public void Pick_RoundRobinUnhealthy_NextHealthyTakesTheTurn()
    {
        var cluster = ClusterWith("round-robin", 1, 1, 1);
        cluster.Destinations[1].State.Healthy = false;

        var picked = Enumerable.Range(0, 6).Select(_ => Array.IndexOf(cluster.Destinations, cluster.PickDestination())).ToArray();

        Assert.Equal([0, 2, 2, 0, 2, 2], picked);
    }

    [Fact]
    public void Pick_RoundRobinConcurrent_EvenCounts()
    {
        var cluster = ClusterWith("round-robin", 1, 1, 1, 1);
        var counts = new int[4];

        Parallel.For(0, 40_000, _ => Interlocked.Increment(ref counts[Array.IndexOf(cluster.Destinations, cluster.PickDestination())]));

        Assert.All(counts, c => Assert.Equal(10_000, c));
    }

    [Fact]
    public void BuildSchedule_Weights511_SmoothLikeNginx()
    {
        // nginx's documented sequence for weights 5,1,1: a a b a c a a.
        Assert.Equal([0, 0, 1, 0, 2, 0, 0], WeightedRoundRobinLoadBalancer.BuildSchedule([5, 1, 1]));
    }

    [Theory]
    [InlineData(new[] { 1, 1 }, new[] { 0, 1 })]
    [InlineData(new[] { 2, 4 }, new[] { 1, 0, 1 })]          // reduced by the GCD
    [InlineData(new[] { 3, 0, 1 }, new[] { 0, 0, 2, 0 })]    // weight 0 takes nothing
    [InlineData(new[] { 0, 0 }, new int[0])]
    public void BuildSchedule_Weights_Interleaved(int[] weights, int[] expected)
    {
        Assert.Equal(expected, WeightedRoundRobinLoadBalancer.BuildSchedule(weights));
    }

    [Fact]
    public void BuildSchedule_HugeWeights_CappedButEveryPositiveWeightKept()
    {
        var schedule = WeightedRoundRobinLoadBalancer.BuildSchedule([1_000_000, 999_999, 1]);

        Assert.InRange(schedule.Length, 1, WeightedRoundRobinLoadBalancer.MaxScheduleLength + 3);
        Assert.Contains(2, schedule);
    }

    [Fact]
    public void Pick_WeightedRoundRobin_DistributionFollowsWeights()
    {
        var cluster = ClusterWith("weighted-round-robin", 5, 3, 2);

        var counts = Count(cluster, 10_000);

        Assert.Equal([5_000, 3_000, 2_000], counts);
    }

    [Fact]
    public void Pick_WeightedRoundRobinUnhealthy_OthersKeepTheirRatio()
    {
        var cluster = ClusterWith("weighted-round-robin", 2, 5, 1);
        cluster.Destinations[1].State.Healthy = false;

        var counts = Count(cluster, 9_000);

        Assert.Equal(0, counts[1]);
        Assert.InRange(counts[0] / (double)counts[2], 1.5, 6.5); // the skipped turns fall to the next entry
    }

    [Fact]
    public void Pick_LeastRequests_FewestActiveTiesByOrder()
    {
        var cluster = ClusterWith("least-requests", 1, 1, 1);
        var d = cluster.Destinations;
        d[0].State.BeginRequest();
        d[0].State.BeginRequest();
        d[1].State.BeginRequest();
        d[2].State.BeginRequest();

        Assert.Same(d[1], cluster.PickDestination());
        d[1].State.BeginRequest();
        Assert.Same(d[2], cluster.PickDestination());
        d[2].State.Healthy = false;
        Assert.Same(d[0], cluster.PickDestination()); // d[0] and d[1] both at 2: the first wins
    }

    [Fact]
    public void Pick_PowerOfTwo_PrefersLessLoadedOfTwo()
    {
        var cluster = ClusterWith("power-of-two", 1, 1, 1, 1);
        var d = cluster.Destinations;
        for (int i = 0; i < 100; i++)
        {
            d[0].State.BeginRequest();
        }

        var counts = Count(cluster, 12_000);

        // d[0] wins only when both choices are d[0], which distinct choices rule out.
        Assert.Equal(0, counts[0]);
        Assert.All(counts.Skip(1), c => Assert.InRange(c, 3_400, 4_600));
    }

    [Fact]
    public void Pick_PowerOfTwo_TwoChoicesAreDistinct()
    {
        var cluster = ClusterWith("power-of-two", 1, 1);
        cluster.Destinations[0].State.BeginRequest();

        // With two destinations the two choices are always both: the idle one always wins.
        Assert.All(Count(cluster, 1000).Select((c, i) => (c, i)), x => Assert.Equal(x.i == 1 ? 1000 : 0, x.c));
    }

    [Fact]
    public void Pick_Random_Uniform()
    {
        var cluster = ClusterWith("random", 1, 1, 1, 1, 1);

        var counts = Count(cluster, 50_000);

        // Expected 10,000 each; 5 standard deviations ≈ 450.
        Assert.All(counts, c => Assert.InRange(c, 9_550, 10_450));
    }

    [Fact]
    public void Pick_SeededRandom_Reproducible()
    {
        var a = ClusterWith("random", 1, 1, 1, 1);
        var b = ClusterWith("random", 1, 1, 1, 1);

        Assert.Equal(Count(a, 100), Count(b, 100));
    }

    [Theory]
    [MemberData(nameof(Policies))]
    public void Pick_AfterWarmUp_AllocatesNothing(string policy)
    {
        var cluster = ClusterWith(policy, 3, 1, 2);

        Assert.Equal(0, Allocations.SteadyState(() => cluster.PickDestination(), 1000, warmUps: 1));
    }
}
