using ProxyCore.Llm.Cache;

namespace ProxyCore.Llm.Tests.Cache;

public class RequestCoalescerTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task RunAsync_ConcurrentSameKey_OneFetchAllGetResult()
    {
        var coalescer = new RequestCoalescer<UInt128, string>();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int fetches = 0;
        async Task<string> Fetch(CancellationToken ct)
        {
            Interlocked.Increment(ref fetches);
            await release.Task;
            return "answer";
        }
        var leader = coalescer.RunAsync(1, Fetch, Long);
        var followers = Enumerable.Range(0, 8).Select(_ => coalescer.RunAsync(1, Fetch, Long)).ToArray();
        var other = coalescer.RunAsync(2, _ => Task.FromResult("other"), Long);
        Assert.Equal("other", (await other).Value);
        Assert.Equal(1, coalescer.InFlight);
        release.SetResult();
        var results = await Task.WhenAll(followers.Append(leader));
        Assert.Equal(1, fetches);
        Assert.All(results, r => Assert.Equal("answer", r.Value));
        Assert.Equal(CoalescedRole.Leader, (await leader).Role);
        Assert.All(followers, f => Assert.Equal(CoalescedRole.Follower, f.Result.Role));
        Assert.Equal(0, coalescer.InFlight);
    }

    [Fact]
    public async Task RunAsync_LeaderFails_FollowersSeeSameException()
    {
        var coalescer = new RequestCoalescer<int, string>();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async Task<string> Fetch(CancellationToken ct)
        {
            await release.Task;
            throw new InvalidOperationException("upstream 503");
        }
        var leader = coalescer.RunAsync(1, Fetch, Long);
        var follower = coalescer.RunAsync(1, Fetch, Long);
        release.SetResult();
        Assert.Equal("upstream 503", (await Assert.ThrowsAsync<InvalidOperationException>(() => leader)).Message);
        Assert.Equal("upstream 503", (await Assert.ThrowsAsync<InvalidOperationException>(() => follower)).Message);
        // The key is free again: the next caller leads a new fetch.
        var next = await coalescer.RunAsync(1, _ => Task.FromResult("ok"), Long);
        Assert.Equal(CoalescedRole.Leader, next.Role);
    }

    [Fact]
    public async Task RunAsync_LeaderCanceled_FollowersCanceled()
    {
        var coalescer = new RequestCoalescer<int, string>();
        using var cts = new CancellationTokenSource();
        var leader = coalescer.RunAsync(1, async ct => { await Task.Delay(Timeout.Infinite, ct); return ""; }, Long, cts.Token);
        var follower = coalescer.RunAsync(1, _ => Task.FromResult("never"), Long);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => leader);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => follower);
    }

    [Fact]
    public async Task RunAsync_FollowerTimeout_TimeoutExceptionLeaderUnaffected()
    {
        var clock = new FakeTimeProvider();
        var coalescer = new RequestCoalescer<int, string>(clock);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var leader = coalescer.RunAsync(1, async _ => { await release.Task; return "late"; }, Long);
        var follower = coalescer.RunAsync(1, _ => Task.FromResult("never"), TimeSpan.FromSeconds(2));
        Assert.False(follower.IsCompleted);
        clock.Advance(TimeSpan.FromSeconds(3));
        await Assert.ThrowsAsync<TimeoutException>(() => follower);
        release.SetResult();
        Assert.Equal("late", (await leader).Value);
    }

    [Fact]
    public async Task RunAsync_FollowerOwnCancellation_OnlyItsWaitEnds()
    {
        var coalescer = new RequestCoalescer<int, string>();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var cts = new CancellationTokenSource();
        var leader = coalescer.RunAsync(1, async _ => { await release.Task; return "x"; }, Long);
        var follower = coalescer.RunAsync(1, _ => Task.FromResult("never"), Long, cts.Token);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => follower);
        release.SetResult();
        Assert.Equal("x", (await leader).Value);
    }
}
