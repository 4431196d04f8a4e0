using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ProxyCore.Proxy.Health;
using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;
using ProxyCore.Transport;

namespace ProxyCore.Proxy.Tests.Health;

public class ActiveHealthCheckerTests
{
    [Theory]
    // passes/fails as a string, starting healthy; expected verdict after each probe ('.' = unchanged)
    [InlineData("fff", 2, 3, "..U")]
    [InlineData("ffpfff", 2, 3, ".....U")]
    [InlineData("fffpp", 2, 3, "..U.H")]
    [InlineData("fffpfpp", 2, 3, "..U...H")]
    [InlineData("f", 1, 1, "U")]
    [InlineData("fp", 1, 1, "UH")]
    [InlineData("pppp", 2, 3, "....")]
    public void HealthCounter_Record_FlipsOnlyAtThresholds(string probes, int healthyThreshold, int unhealthyThreshold, string expected)
    {
        var counter = new HealthCounter();
        bool healthy = true;
        var seen = new StringBuilder();

        foreach (char probe in probes)
        {
            var verdict = counter.Record(probe == 'p', healthy, healthyThreshold, unhealthyThreshold);
            seen.Append(verdict switch { true => 'H', false => 'U', null => '.' });
            healthy = verdict ?? healthy;
        }

        Assert.Equal(expected, seen.ToString());
    }

    [Fact]
    public void InitialDelay_ManySamples_SpreadWithinOneInterval()
    {
        var random = new Random(42);
        var interval = TimeSpan.FromSeconds(5);

        var delays = Enumerable.Range(0, 1000).Select(_ => ActiveHealthChecker.InitialDelay(interval, random)).ToList();

        Assert.All(delays, d => Assert.InRange(d, TimeSpan.Zero, interval - TimeSpan.FromTicks(1)));
        Assert.True(delays.Min() < TimeSpan.FromSeconds(0.5) && delays.Max() > TimeSpan.FromSeconds(4.5), "spread over the interval");
    }

    [Fact]
    public void BuildRequest_DestinationWithPrefix_PrefixThenPathAndHost()
    {
        var snapshot = ProxySnapshot.Build(Config("/healthz", "http://10.0.0.1:8080/base"));

        var request = Encoding.ASCII.GetString(ActiveHealthChecker.BuildRequest("/healthz", snapshot.Clusters["c"].Destinations[0]));

        Assert.StartsWith("GET /base/healthz HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n", request, StringComparison.Ordinal);
        Assert.Contains("\r\nConnection: close\r\n", request, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\n", request, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", HealthProbeResult.Passed)]
    [InlineData("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", HealthProbeResult.Passed)]
    [InlineData("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", HealthProbeResult.UnexpectedStatus)]
    [InlineData("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", HealthProbeResult.UnexpectedStatus)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Le", HealthProbeResult.Closed)]
    [InlineData("garbage\r\n\r\n", HealthProbeResult.ProtocolError)]
    public async Task ProbeAsync_UpstreamAnswer_Classified(string answer, HealthProbeResult expected)
    {
        await using var transport = new InMemoryTransport();
        var upstream = AnswerOnceAsync(transport, answer);
        var probe = Probe(transport.EndPoint, TimeSpan.FromSeconds(10));

        var result = await ActiveHealthChecker.ProbeAsync(transport, probe, TimeProvider.System, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(expected, result);
        Assert.StartsWith("GET /healthz HTTP/1.1\r\n", await upstream.WaitAsync(TimeSpan.FromSeconds(10)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ProbeAsync_NothingListening_ConnectFailed()
    {
        var result = await ActiveHealthChecker.ProbeAsync(new RefusingFactory(), Probe(new IPEndPoint(IPAddress.Loopback, 1), TimeSpan.FromSeconds(1)),
            TimeProvider.System, CancellationToken.None);

        Assert.Equal(HealthProbeResult.ConnectFailed, result);
    }

    [Fact]
    public async Task ProbeAsync_UpstreamSilent_TimeoutOnInjectedClock()
    {
        var time = new FakeTimeProvider();
        await using var transport = new InMemoryTransport();
        var probe = Probe(transport.EndPoint, TimeSpan.FromSeconds(2));

        var pending = ActiveHealthChecker.ProbeAsync(transport, probe, time, CancellationToken.None);
        var silent = (await transport.AcceptAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)))!;
        bool doneBefore = pending.IsCompleted;
        time.Advance(TimeSpan.FromSeconds(2));
        var result = await pending.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.False(doneBefore);
        Assert.Equal(HealthProbeResult.Timeout, result);
        await silent.DisposeAsync();
    }

    [Fact]
    public async Task Start_UpstreamTurnsBadThenGood_VerdictFollowsThresholds()
    {
        var time = new FakeTimeProvider();
        await using var transport = new InMemoryTransport();
        var upstream = new ScriptedUpstream(transport);
        var snapshot = ProxySnapshot.Build(Config("/healthz", "http://10.0.0.1:80", interval: TimeSpan.FromSeconds(5), healthy: 2, unhealthy: 3));
        var state = snapshot.Clusters["c"].Destinations[0].State;
        await using var checker = new ActiveHealthChecker(transport, time, new Random(1));

        checker.Start(snapshot);
        upstream.Status = 503;
        await WaitForProbesAsync(time, state, 0); // the first, jittered delay is armed
        var verdicts = new List<bool>();
        for (int probe = 1; probe <= 5; probe++)
        {
            if (probe == 4)
            {
                upstream.Status = 200;
            }
            time.Advance(TimeSpan.FromSeconds(5)); // the first probe's jittered start lies within this
            await WaitForProbesAsync(time, state, probe);
            verdicts.Add(state.ActivelyHealthy);
        }

        Assert.Equal([true, true, false, false, true], verdicts);
        Assert.Equal((2L, 3L), (state.HealthChecksPassed, state.HealthChecksFailed));
    }

    [Fact]
    public async Task Start_Reload_VerdictCarriesOverAndRemovedCheckRestoresHealth()
    {
        var time = new FakeTimeProvider();
        await using var transport = new InMemoryTransport();
        var upstream = new ScriptedUpstream(transport) { Status = 500 };
        var checkedConfig = Config("/healthz", "http://10.0.0.1:80", interval: TimeSpan.FromSeconds(5), healthy: 2, unhealthy: 1);
        var first = ProxySnapshot.Build(checkedConfig);
        var state = first.Clusters["c"].Destinations[0].State;
        await using var checker = new ActiveHealthChecker(transport, time, new Random(1));
        checker.Start(first);
        await WaitForProbesAsync(time, state, 0);
        time.Advance(TimeSpan.FromSeconds(5));
        await WaitForProbesAsync(time, state, 1);

        checker.Start(ProxySnapshot.Build(checkedConfig, first));
        bool afterReload = state.ActivelyHealthy;
        var unchecked_ = Config("/healthz", "http://10.0.0.1:80");
        unchecked_.Clusters[0].HealthCheck = null;
        checker.Start(ProxySnapshot.Build(unchecked_, first));

        Assert.False(afterReload);
        Assert.True(state.ActivelyHealthy);
        Assert.Equal(0, checker.CheckedCount);
    }

    /// <summary>
    /// The loop runs on the thread pool and the probe on the in-memory transport's pumps: wait, bounded,
    /// until probe <paramref name="count"/> has its verdict and the loop sleeps on the fake clock again
    /// (one timer: its interval delay), so the next Advance cannot overtake it.
    /// </summary>
    private static async Task WaitForProbesAsync(FakeTimeProvider time, DestinationState state, long count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (state.HealthChecksPassed + state.HealthChecksFailed < count || time.TimerCount != 1)
        {
            Assert.True(DateTime.UtcNow < deadline, $"probe {count} did not finish");
            await Task.Delay(1);
        }
    }

    private static ProxyConfig Config(string path, string address, TimeSpan? interval = null, int healthy = 2, int unhealthy = 3) => new()
    {
        Listeners = [new ListenerConfig { Address = "127.0.0.1:0" }],
        Routes = [new RouteConfig { Id = "r", Match = new RouteMatchConfig { Path = "/" }, Cluster = "c" }],
        Clusters = [new ClusterConfig
        {
            Id = "c",
            HealthCheck = new HealthCheckConfig
            {
                Path = path, Interval = interval ?? TimeSpan.FromSeconds(5), Timeout = TimeSpan.FromSeconds(1),
                HealthyThreshold = healthy, UnhealthyThreshold = unhealthy,
            },
            Destinations = [new DestinationConfig { Address = address }],
        }],
    };

    private static ActiveHealthChecker.Probe Probe(EndPoint endPoint, TimeSpan timeout)
    {
        StatusRanges.TryParse("200-399", out var expected, out _);
        return new ActiveHealthChecker.Probe(endPoint, Encoding.ASCII.GetBytes("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), expected, timeout);
    }

    /// <summary>Accepts one connection, reads the request head, writes <paramref name="answer"/>, closes; returns what it read.</summary>
    private static async Task<string> AnswerOnceAsync(InMemoryTransport transport, string answer)
    {
        var connection = (await transport.AcceptAsync())!;
        var request = await ReadHeadAsync(connection);
        await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes(answer));
        await connection.Transport.Output.CompleteAsync();
        await connection.DisposeAsync();
        return request;
    }

    private static async Task<string> ReadHeadAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        var seen = new StringBuilder();
        while (true)
        {
            var result = await input.ReadAsync();
            seen.Append(Encoding.ASCII.GetString(result.Buffer.ToArray()));
            input.AdvanceTo(result.Buffer.End);
            if (seen.ToString().Contains("\r\n\r\n", StringComparison.Ordinal) || result.IsCompleted)
            {
                return seen.ToString();
            }
        }
    }

    /// <summary>Answers every probe connection with the current <see cref="Status"/>.</summary>
    private sealed class ScriptedUpstream
    {
        private volatile int _status = 200;

        public ScriptedUpstream(InMemoryTransport transport) => _ = Task.Run(() => ServeAsync(transport));

        public int Status
        {
            get => _status;
            set => _status = value;
        }

        private async Task ServeAsync(InMemoryTransport transport)
        {
            while (await transport.AcceptAsync() is { } connection)
            {
                await ReadHeadAsync(connection);
                await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 {Status} X\r\nContent-Length: 0\r\n\r\n"));
                await connection.DisposeAsync();
            }
        }
    }

    private sealed class RefusingFactory : IConnectionFactory
    {
        public ValueTask<ConnectionContext> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
            => ValueTask.FromException<ConnectionContext>(new SocketException((int)SocketError.ConnectionRefused));
    }
}
