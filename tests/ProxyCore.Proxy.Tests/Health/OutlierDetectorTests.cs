using ProxyCore.Proxy.Health;
using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;

namespace ProxyCore.Proxy.Tests.Health;

public class OutlierDetectorTests
{
    private static ClusterModel Cluster(int destinations, OutlierDetectionConfig? outliers)
    {
        var config = new ProxyConfig
        {
            Listeners = [new ListenerConfig { Address = "127.0.0.1:0" }],
            Routes = [new RouteConfig { Id = "r", Match = new RouteMatchConfig { Path = "/" }, Cluster = "c" }],
            Clusters = [new ClusterConfig
            {
                Id = "c",
                OutlierDetection = outliers,
                Destinations = [.. Enumerable.Range(0, destinations).Select(i => new DestinationConfig { Address = $"http://10.0.0.{i + 1}:80" })],
            }],
        };
        return ProxySnapshot.Build(config).Clusters["c"];
    }

    /// <summary>What ProxyApplication.OnForwarded does for one forwarded request.</summary>
    private static bool Forward(OutlierDetector detector, ClusterModel cluster, int destination, bool failure)
    {
        var d = cluster.Destinations[destination];
        d.State.BeginRequest();
        d.State.EndRequest(!failure);
        return detector.Record(cluster, d, failure);
    }

    private static void Fail(OutlierDetector detector, ClusterModel cluster, int destination, int times)
    {
        for (int i = 0; i < times; i++)
        {
            Forward(detector, cluster, destination, failure: true);
        }
    }

    [Fact]
    public void Record_ConsecutiveFailuresReached_EjectsAndBalancerSkipsIt()
    {
        var time = new FakeTimeProvider();
        using var detector = new OutlierDetector(time);
        var cluster = Cluster(2, new OutlierDetectionConfig { ConsecutiveFailures = 3 });

        Fail(detector, cluster, 0, 2);
        bool beforeThreshold = cluster.Destinations[0].State.IsEjected;
        bool ejected = Forward(detector, cluster, 0, failure: true);

        Assert.False(beforeThreshold);
        Assert.True(ejected);
        Assert.False(cluster.Destinations[0].State.Healthy);
        Assert.All(Enumerable.Range(0, 10), _ => Assert.Same(cluster.Destinations[1], cluster.PickDestination()));
        Assert.Equal(1, cluster.Destinations[0].State.EjectionsTotal);
    }

    [Fact]
    public void Record_SuccessBetweenFailures_ResetsStreak()
    {
        using var detector = new OutlierDetector(new FakeTimeProvider());
        var cluster = Cluster(2, new OutlierDetectionConfig { ConsecutiveFailures = 3 });

        for (int i = 0; i < 5; i++)
        {
            Fail(detector, cluster, 0, 2);
            Forward(detector, cluster, 0, failure: false);
        }

        Assert.False(cluster.Destinations[0].State.IsEjected);
    }

    [Fact]
    public void Record_NoOutlierDetectionBlock_NeverEjects()
    {
        using var detector = new OutlierDetector(new FakeTimeProvider());
        var cluster = Cluster(2, null);

        Fail(detector, cluster, 0, 100);

        Assert.False(cluster.Destinations[0].State.IsEjected);
    }

    [Fact]
    public void Ejection_EjectForPasses_ReturnsByItself()
    {
        var time = new FakeTimeProvider();
        using var detector = new OutlierDetector(time);
        var cluster = Cluster(2, new OutlierDetectionConfig { ConsecutiveFailures = 1, EjectFor = TimeSpan.FromSeconds(30) });
        var state = cluster.Destinations[0].State;

        Fail(detector, cluster, 0, 1);
        time.Advance(TimeSpan.FromSeconds(30) - TimeSpan.FromTicks(1));
        bool stillOut = state.IsEjected;
        time.Advance(TimeSpan.FromTicks(1));

        Assert.True(stillOut);
        Assert.False(state.IsEjected);
        Assert.True(state.Healthy);
        Assert.Equal(0, detector.EjectedCount);
    }

    [Theory]
    [InlineData(2, 50, 1)]
    [InlineData(4, 50, 2)]
    [InlineData(5, 50, 2)]
    [InlineData(1, 50, 0)]  // never the only destination at 50%
    [InlineData(1, 100, 1)]
    [InlineData(3, 0, 0)]
    [InlineData(10, 10, 1)]
    public void Record_EveryDestinationFailing_EjectsAtMostMaxPercent(int destinations, int maxPercent, int expectedEjected)
    {
        using var detector = new OutlierDetector(new FakeTimeProvider());
        var cluster = Cluster(destinations, new OutlierDetectionConfig { ConsecutiveFailures = 2, MaxEjectionPercent = maxPercent });

        for (int round = 0; round < 3; round++)
        {
            for (int d = 0; d < destinations; d++)
            {
                Fail(detector, cluster, d, 2);
            }
        }

        Assert.Equal(expectedEjected, cluster.Destinations.Count(d => d.State.IsEjected));
    }

    [Fact]
    public void Ejection_RepeatedSoonAfterReturn_LastsLongerUpToMax()
    {
        var time = new FakeTimeProvider();
        using var detector = new OutlierDetector(time);
        var options = new OutlierDetectionConfig { ConsecutiveFailures = 1, EjectFor = TimeSpan.FromSeconds(10), MaxEjectFor = TimeSpan.FromSeconds(25) };
        var cluster = Cluster(2, options);
        var state = cluster.Destinations[0].State;
        var lengths = new List<TimeSpan>();

        for (int i = 0; i < 4; i++)
        {
            long start = time.GetTimestamp();
            Fail(detector, cluster, 0, 1);
            lengths.Add(TimeSpan.FromTicks(state.EjectedUntil - start)); // FakeTimeProvider counts in TimeSpan ticks
            time.Advance(lengths[^1]);
            Assert.False(state.IsEjected);
        }

        Assert.Equal([TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(25), TimeSpan.FromSeconds(25)], lengths);
    }

    [Theory]
    [InlineData(0, 0, 0, 1)]      // first ejection
    [InlineData(1, 100, 100, 2)]  // right after returning
    [InlineData(3, 100, 120, 4)]  // back less than one ejectFor (30)
    [InlineData(3, 100, 130, 3)]  // one ejectFor forgiven
    [InlineData(3, 100, 190, 1)]  // three forgiven: as new
    [InlineData(3, 100, 10_000, 1)]
    public void NextEjectionCount_TimeBackInService_ForgivesOnePerEjectFor(int previous, long returnedAt, long now, int expected)
    {
        Assert.Equal(expected, OutlierDetector.NextEjectionCount(previous, returnedAt, now, ejectForTicks: 30));
    }

    [Fact]
    public void Record_ErrorRateOverPercent_EjectsOnceMinRequestsSeen()
    {
        var time = new FakeTimeProvider();
        using var detector = new OutlierDetector(time);
        var cluster = Cluster(2, new OutlierDetectionConfig { ConsecutiveFailures = 100, ErrorRatePercent = 50, MinRequests = 10 });
        var state = cluster.Destinations[0].State;

        // Alternate: never two failures in a row, but half of all requests fail.
        int sent = 0;
        while (!state.IsEjected && sent < 100)
        {
            Forward(detector, cluster, 0, failure: sent % 2 == 1);
            sent++;
        }

        Assert.True(state.IsEjected);
        Assert.Equal(10, sent);
    }

    [Fact]
    public void Record_ErrorRateSpreadOverWindows_NotEjected()
    {
        var time = new FakeTimeProvider();
        using var detector = new OutlierDetector(time);
        var cluster = Cluster(2, new OutlierDetectionConfig
        {
            ConsecutiveFailures = 100, ErrorRatePercent = 50, MinRequests = 10, ErrorRateWindow = TimeSpan.FromSeconds(10),
        });

        for (int i = 0; i < 100; i++)
        {
            Forward(detector, cluster, 0, failure: i % 2 == 1);
            if (i % 5 == 4)
            {
                time.Advance(TimeSpan.FromSeconds(10)); // a new window every 5 requests: never 10 in one
            }
        }

        Assert.False(cluster.Destinations[0].State.IsEjected);
    }

    [Fact]
    public void Dispose_PendingReturns_TimersCancelled()
    {
        var time = new FakeTimeProvider();
        var detector = new OutlierDetector(time);
        var cluster = Cluster(2, new OutlierDetectionConfig { ConsecutiveFailures = 1 });
        Fail(detector, cluster, 0, 1);

        detector.Dispose();

        Assert.Equal(0, time.TimerCount);
    }
}
