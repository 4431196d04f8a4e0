using System.Net;
using System.Text;
using ProxyCore.Routing.Config;
using ProxyCore.Routing.LoadBalancing;
using ProxyCore.Routing.Model;
using static ProxyCore.Routing.Tests.TestConfigs;

namespace ProxyCore.Routing.Tests.Model;

public class ProxySnapshotTests
{
    [Theory]
    [InlineData("http://127.0.0.1:9000", "127.0.0.1", 9000, "127.0.0.1:9000", "", true)]
    [InlineData("http://10.0.0.1", "10.0.0.1", 80, "10.0.0.1", "", true)]
    [InlineData("http://[::1]:9000/", "[::1]", 9000, "[::1]:9000", "", true)]
    [InlineData("http://backend.internal:8080/base/", "backend.internal", 8080, "backend.internal:8080", "/base", false)]
    [InlineData("http://Backend:81/a/b", "backend", 81, "backend:81", "/a/b", false)]
    public void Build_Destination_ParsedOnce(string address, string host, int port, string hostHeader, string prefix, bool isIp)
    {
        var snapshot = ProxySnapshot.Build(ConfigOf([Route("r", "/")], Cluster("c", address)));

        var d = Assert.Single(snapshot.Clusters["c"].Destinations);
        Assert.Equal(address, d.Address);
        Assert.Equal(host, d.Host);
        Assert.Equal(port, d.Port);
        Assert.Equal(hostHeader, Encoding.ASCII.GetString(d.HostHeaderBytes));
        Assert.Equal(prefix, Encoding.ASCII.GetString(d.PathPrefixBytes));
        if (isIp)
        {
            Assert.Equal(port, Assert.IsType<IPEndPoint>(d.EndPoint).Port);
        }
        else
        {
            var dns = Assert.IsType<DnsEndPoint>(d.EndPoint);
            Assert.Equal((host, port), (dns.Host, dns.Port));
        }
    }

    [Fact]
    public void Build_Route_CarriesClusterTimeoutAndUtf8Id()
    {
        var config = ConfigOf([Route("api", "/api/", hosts: ["API.example.com"]), new RouteConfig { Id = "slow", Cluster = "c", Timeout = TimeSpan.FromSeconds(3) }]);
        config.Timeouts = new TimeoutsConfig { Upstream = TimeSpan.FromSeconds(42) };

        var snapshot = ProxySnapshot.Build(config);

        var api = snapshot.Routes.Routes[0];
        Assert.Same(snapshot.Clusters["c"], api.Cluster);
        Assert.Equal(TimeSpan.FromSeconds(42), api.Timeout);
        Assert.Equal("api"u8.ToArray(), api.IdUtf8);
        Assert.Equal(["api.example.com"], api.Hosts);
        Assert.Equal(PathMatchKind.Prefix, api.PathKind);
        var slow = snapshot.Routes.Routes[1];
        Assert.Equal(TimeSpan.FromSeconds(3), slow.Timeout);
        Assert.Equal("/", slow.Path); // no path = every path
        Assert.Equal(PathMatchKind.Prefix, slow.PathKind);
    }

    [Theory]
    [InlineData("round-robin", typeof(RoundRobinLoadBalancer))]
    [InlineData("weighted-round-robin", typeof(WeightedRoundRobinLoadBalancer))]
    [InlineData("least-requests", typeof(LeastRequestsLoadBalancer))]
    [InlineData("power-of-two", typeof(PowerOfTwoChoicesLoadBalancer))]
    [InlineData("random", typeof(RandomLoadBalancer))]
    public void Build_Cluster_BalancerFromPolicy(string policy, Type expected)
    {
        var cluster = Cluster("c", "http://127.0.0.1:9000");
        cluster.LoadBalancing = policy;
        cluster.ConnectTimeout = TimeSpan.FromSeconds(2);
        cluster.MaxIdleConnectionsPerDestination = 7;

        var model = ProxySnapshot.Build(ConfigOf([Route("r", "/")], cluster)).Clusters["c"];

        Assert.IsType(expected, model.LoadBalancer);
        Assert.Equal(TimeSpan.FromSeconds(2), model.ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(60), model.IdleTimeout);
        Assert.Equal(7, model.MaxIdleConnectionsPerDestination);
        Assert.Same(model.Destinations[0], model.PickDestination());
    }

    [Fact]
    public void Swap_DestinationStillExists_KeepsItsState()
    {
        var state = new ProxyState(ConfigOf([Route("r", "/")], Cluster("c", "http://10.0.0.1:80", "http://10.0.0.2:80")));
        var first = state.Current;
        var kept = first.Clusters["c"].Destinations[1].State;
        kept.BeginRequest();
        kept.Healthy = false;

        var second = state.Swap(ConfigOf([Route("r2", "/")], Cluster("c", "http://10.0.0.2:80", "http://10.0.0.3:80")));

        Assert.Same(second, state.Current);
        Assert.Equal(first.Version + 1, second.Version);
        var destinations = second.Clusters["c"].Destinations;
        Assert.Same(kept, destinations[0].State);
        Assert.Equal(1, destinations[0].State.ActiveRequests);
        Assert.False(destinations[0].State.Healthy);
        Assert.NotSame(first.Clusters["c"].Destinations[0].State, destinations[1].State);
        Assert.Equal(0, destinations[1].State.ActiveRequests);
        // The old snapshot is untouched: a request that started on it still sees its routes.
        Assert.Equal("r", first.Routes.Match(Request("h", "/"))?.Id);
        Assert.Equal("r2", second.Routes.Match(Request("h", "/"))?.Id);
    }

    [Fact]
    public void Swap_SameAddressInOtherCluster_GetsFreshState()
    {
        var state = new ProxyState(ConfigOf([Route("r", "/")], Cluster("c", "http://10.0.0.1:80")));
        state.Current.Clusters["c"].Destinations[0].State.BeginRequest();

        var next = state.Swap(ConfigOf([Route("r", cluster: "d")], Cluster("d", "http://10.0.0.1:80")));

        Assert.Equal(0, next.Clusters["d"].Destinations[0].State.ActiveRequests);
    }

    [Fact]
    public void Swap_InvalidConfig_ThrowsAndKeepsCurrent()
    {
        var state = new ProxyState(ConfigOf([Route("r", "/")]));
        var before = state.Current;

        var ex = Assert.Throws<ArgumentException>(() => state.Swap(ConfigOf([Route("r", "/", cluster: "missing")])));

        Assert.Contains("$.routes[0].cluster", ex.Message, StringComparison.Ordinal);
        Assert.Same(before, state.Current);
    }

    [Fact]
    public void DestinationState_BeginEnd_CountsAtomically()
    {
        var s = new DestinationState();

        Parallel.For(0, 10_000, _ => { s.BeginRequest(); s.EndRequest(success: true); });
        s.BeginRequest();
        s.EndRequest(success: false);
        s.BeginRequest();
        s.EndRequest(success: false);

        Assert.Equal(0, s.ActiveRequests);
        Assert.Equal(10_002, s.TotalRequests);
        Assert.Equal(2, s.ConsecutiveFailures);
        s.BeginRequest();
        s.EndRequest(success: true);
        Assert.Equal(0, s.ConsecutiveFailures);
    }
}
