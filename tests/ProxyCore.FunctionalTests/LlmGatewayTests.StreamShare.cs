using System.Diagnostics;
using System.Net;
using System.Text;

namespace ProxyCore.FunctionalTests;

/// <summary>Identical concurrent stream misses (route "cached"): one provider call, the others copy its live output.</summary>
public sealed partial class LlmGatewayTests
{
    /// <summary>One streaming client's view: its cache header, every line it read, when its first and last event came, and whether the body ended cleanly.</summary>
    private sealed record StreamRead(string? Cache, string Body, TimeSpan FirstEvent, TimeSpan LastEvent, bool Clean);

    private static HttpRequestMessage StreamRequest(string tokensPerSecond, string? cutAfter = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/cached/v1/chat/completions") { Content = Json(CachedStreamPrompt) };
        request.Headers.Add("x-mock-tokens-per-second", tokensPerSecond); // knobs are headers: not part of the cache key
        if (cutAfter is not null)
        {
            request.Headers.Add("x-mock-cut-after", cutAfter);
        }
        return request;
    }

    /// <summary>Reads a stream line by line; <paramref name="firstEvent"/> is set when its first event arrived.</summary>
    private static async Task<StreamRead> ReadStreamAsync(HttpClient client, HttpRequestMessage request, Stopwatch clock, TaskCompletionSource? firstEvent = null, CancellationToken leave = default)
    {
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        string? cache = response.Headers.TryGetValues("proxycore-cache", out var values) ? values.Single() : null;
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var body = new StringBuilder();
        TimeSpan first = TimeSpan.MaxValue, last = TimeSpan.Zero;
        int events = 0;
        bool clean = false;
        try
        {
            while (await reader.ReadLineAsync(leave) is { } line)
            {
                body.Append(line).Append('\n');
                if (line.StartsWith("data:", StringComparison.Ordinal))
                {
                    last = clock.Elapsed;
                    if (events++ == 0)
                    {
                        first = last;
                        firstEvent?.TrySetResult();
                    }
                }
            }
            clean = true;
        }
        catch (IOException)
        {
            // A cut stream: the body ends without its last chunk.
        }
        catch (OperationCanceledException) when (leave.IsCancellationRequested)
        {
            // This client left mid-stream.
        }
        firstEvent?.TrySetResult();
        return new StreamRead(cache, body.ToString(), first, last, clean);
    }

    [Fact]
    public async Task StreamShare_IdenticalConcurrentStreamMisses_CallTheProviderOnceAndFollowersGetLiveEvents()
    {
        var log = new LlmHost.LogStream();
        await using var host = await LlmHost.StartAsync(log);
        using var client = host.Http();
        var clock = Stopwatch.StartNew();
        var leaderStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // About a second of paced deltas; the followers come once the leader's first event is out.
        var leader = ReadStreamAsync(client, StreamRequest("8"), clock, leaderStarted);
        await leaderStarted.Task.WaitAsync(TimeSpan.FromSeconds(20));
        var followers = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => ReadStreamAsync(client, StreamRequest("8"), clock))).WaitAsync(TimeSpan.FromSeconds(30));
        var led = await leader.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(("miss", true), (led.Cache, led.Clean));
        Assert.EndsWith("data: [DONE]\n\n", led.Body, StringComparison.Ordinal);
        Assert.All(followers, f =>
        {
            Assert.Equal(("hit-exact", true), (f.Cache, f.Clean));
            Assert.Equal(led.Body, f.Body);
            // Live, not after the end: a follower's first event comes before the leader's last one.
            Assert.True(f.FirstEvent < led.LastEvent, $"follower's first event at {f.FirstEvent}, leader's last at {led.LastEvent}");
        });
        var metrics = await host.MetricsAsync();
        Assert.Equal(HelloPromptTokens, Series(metrics, PromptSeries())); // one provider call
        Assert.Equal(3, Series(metrics, CacheSeries("hit-exact")));
        Assert.Equal(1, Series(metrics, CacheSeries("miss")));
        Assert.Contains("\"provider\":\"cache\"", await log.WaitForAsync("cache-hit-coalesced", Eventually.Bound), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("cut")]         // the provider drops the leader's stream after 8 deltas (about a second)
    [InlineData("client-gone")] // the leader's client leaves after its first events
    public async Task StreamShare_LeaderStreamEndsEarly_FollowersEndWithTheCutEvent(string how)
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();
        var clock = Stopwatch.StartNew();
        var leaderStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        using var leave = new CancellationTokenSource();
        string? cutAfter = how == "cut" ? "8" : null;
        var leader = ReadStreamAsync(client, StreamRequest("8", cutAfter), clock, leaderStarted, leave.Token);
        await leaderStarted.Task.WaitAsync(TimeSpan.FromSeconds(20));
        var attached = Enumerable.Range(0, 3).Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        var following = Task.WhenAll(attached.Select(a => ReadStreamAsync(client, StreamRequest("8", cutAfter), clock, a)));
        if (how == "client-gone")
        {
            // The leader's client leaves once every follower has its first event (attached to the leader's stream).
            await Task.WhenAll(attached.Select(a => a.Task)).WaitAsync(TimeSpan.FromSeconds(20));
            await leave.CancelAsync();
        }
        var followers = await following.WaitAsync(TimeSpan.FromSeconds(30)); // bounded: no follower hangs
        var led = await leader.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.False(led.Clean);
        Assert.All(followers, f =>
        {
            Assert.Equal(("hit-exact", false), (f.Cache, f.Clean)); // no clean end: an SDK raises
            Assert.Contains("upstream_stream_cut", f.Body, StringComparison.Ordinal);
            Assert.DoesNotContain("[DONE]", f.Body, StringComparison.Ordinal);
        });
        if (how == "cut")
        {
            Assert.All(followers, f => Assert.Equal(led.Body, f.Body)); // the leader's own error event
        }
    }

    [Fact]
    public async Task StreamShare_FollowerWithNoStore_GoesToTheProviderItself()
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();
        var clock = Stopwatch.StartNew();
        var leaderStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var leader = ReadStreamAsync(client, StreamRequest("8"), clock, leaderStarted);
        await leaderStarted.Task.WaitAsync(TimeSpan.FromSeconds(20));
        var request = StreamRequest("8");
        request.Headers.CacheControl = new System.Net.Http.Headers.CacheControlHeaderValue { NoStore = true };
        var bypass = await ReadStreamAsync(client, request, clock).WaitAsync(TimeSpan.FromSeconds(30));
        var led = await leader.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(("miss", true), (led.Cache, led.Clean));
        Assert.Equal(("bypass", true), (bypass.Cache, bypass.Clean));
        Assert.Equal(2 * HelloPromptTokens, Series(await host.MetricsAsync(), PromptSeries())); // two provider calls
    }
}
