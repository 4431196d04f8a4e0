using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using ProxyCore.Routing.Config;

namespace ProxyCore.FunctionalTests;

/// <summary>Retries and the circuit breaker against upstreams that fail on cue.</summary>
[Collection(SerialCollection.Name)]
public sealed class ResilienceTests
{
    private static TestHost Start(string[] badDestinations, RetryConfig? retry, CircuitBreakerConfig? breaker = null, TimeSpan? timeout = null) => TestHost.Start(url =>
    {
        var config = TestHost.DefaultConfig(url);
        config.Routes[0].Retry = retry;
        config.Routes[0].Timeout = timeout;
        config.Clusters[0].Destinations = [.. badDestinations.Select(b => new DestinationConfig { Address = b }), new DestinationConfig { Address = url }];
        config.Clusters[0].CircuitBreaker = breaker;
        return config;
    });

    private static JsonElement[] On(params object[] conditions) => [.. conditions.Select(c => JsonSerializer.SerializeToElement(c, c is int ? JsonContext.Default.Int32 : JsonContext.Default.String))];

    [Fact]
    public async Task ConnectFailure_IsRetriedOnAnotherDestination()
    {
        int closedPort = ProxyProcess.FreePort();
        await using var host = Start([$"http://127.0.0.1:{closedPort}"], new RetryConfig { Attempts = 2, On = On("connect-failure"), Backoff = TimeSpan.Zero, MaxBackoff = TimeSpan.Zero });
        using var client = host.CreateClient();
        for (int i = 0; i < 10; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/bytes/3")).StatusCode);
        }
        Assert.True(host.Proxy.Metrics.RetryCount >= 4, $"retries: {host.Proxy.Metrics.RetryCount}");
    }

    [Fact]
    public async Task Status503_IsRetriedForAnIdempotentRequest_ButNotForAPostWithABody()
    {
        await using var failing = new FailingUpstream(503);
        await using var host = Start([failing.Url], new RetryConfig { Attempts = 2, On = On(503), Backoff = TimeSpan.Zero, MaxBackoff = TimeSpan.Zero });
        using var client = host.CreateClient();
        for (int i = 0; i < 6; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/bytes/2")).StatusCode);
        }
        Assert.True(failing.Requests >= 2);

        var statuses = new List<HttpStatusCode>();
        for (int i = 0; i < 4; i++)
        {
            statuses.Add((await client.PostAsync("/sink", new ByteArrayContent(new byte[10]))).StatusCode);
        }
        // Round-robin sends half the POSTs to the failing destination; a body cannot be sent twice.
        Assert.Contains(HttpStatusCode.ServiceUnavailable, statuses);
        Assert.Contains(HttpStatusCode.OK, statuses);
    }

    [Fact]
    public async Task PerTryTimeout_RetriesASilentUpstream()
    {
        await using var silent = new FailingUpstream(0);
        await using var host = Start([silent.Url], new RetryConfig { Attempts = 1, On = On("timeout"), PerTryTimeout = TimeSpan.FromMilliseconds(200), Backoff = TimeSpan.Zero, MaxBackoff = TimeSpan.Zero },
            timeout: TimeSpan.FromSeconds(20));
        using var client = host.CreateClient();
        for (int i = 0; i < 4; i++)
        {
            var started = DateTime.UtcNow;
            var response = await client.GetAsync("/bytes/1");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5));
        }
    }

    [Fact]
    public async Task NoRetryPolicy_TheFailureReachesTheClient()
    {
        await using var failing = new FailingUpstream(503);
        await using var host = Start([failing.Url], null);
        using var client = host.CreateClient();
        var statuses = new List<HttpStatusCode>();
        for (int i = 0; i < 4; i++)
        {
            statuses.Add((await client.GetAsync("/bytes/1")).StatusCode);
        }
        Assert.Equal(2, statuses.Count(s => s == HttpStatusCode.ServiceUnavailable));
    }

    [Fact]
    public async Task CircuitBreaker_RefusesAtOnceBeyondMaxConcurrentRequests()
    {
        await using var host = Start([], null, new CircuitBreakerConfig { MaxConcurrentRequests = 1 });
        using var client = host.CreateClient();
        var slow = client.GetAsync("/delay/3000");
        // In flight for sure (a fixed pause was not on a loaded machine: the slow request had not reached the proxy).
        var cluster = host.Proxy.Current.Clusters["mock"].State;
        await Eventually.UntilAsync(() => cluster.ActiveRequests == 1, "the slow request is in flight");
        var refused = await client.GetAsync("/bytes/1");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("circuit-open", refused.Headers.GetValues("proxycore-error").Single());
        Assert.Equal(HttpStatusCode.OK, (await slow).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/bytes/1")).StatusCode);
    }
}

/// <summary>An upstream that answers every request with <paramref name="status"/> (or never, when 0), keep-alive.</summary>
internal sealed class FailingUpstream : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private int _requests;

    public FailingUpstream(int status)
    {
        _listener.Start();
        _ = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket socket;
                try
                {
                    socket = await _listener.AcceptSocketAsync(_stop.Token);
                }
                catch (Exception)
                {
                    return;
                }
                _ = Task.Run(async () =>
                {
                    using (socket)
                    {
                        var buffer = new byte[8192];
                        var seen = new StringBuilder();
                        try
                        {
                            while (true)
                            {
                                int n = await socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                                if (n == 0)
                                {
                                    return;
                                }
                                seen.Append(Encoding.ASCII.GetString(buffer, 0, n));
                                while (seen.ToString().IndexOf("\r\n\r\n", StringComparison.Ordinal) is var end and >= 0)
                                {
                                    seen.Remove(0, end + 4);
                                    Interlocked.Increment(ref _requests);
                                    if (status != 0)
                                    {
                                        await socket.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 {status} Failing\r\nContent-Length: 4\r\n\r\nfail"), SocketFlags.None);
                                    }
                                }
                            }
                        }
                        catch (Exception)
                        {
                        }
                    }
                });
            }
        });
    }

    public int Requests => Volatile.Read(ref _requests);

    public string Url => $"http://{_listener.LocalEndpoint}";

    public ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        return ValueTask.CompletedTask;
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(int))]
[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class JsonContext : System.Text.Json.Serialization.JsonSerializerContext
{
}
