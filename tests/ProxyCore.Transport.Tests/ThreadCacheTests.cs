using ProxyCore.Transport;

namespace ProxyCore.Transport.Tests;

/// <summary>
/// Each case runs on a thread of its own, enabled as an epoll reactor enables its own: a test-runner thread
/// that kept stacks would hold pipe blocks of later tests (the allocation tests would see them as allocations).
/// </summary>
public sealed class ThreadCacheTests
{
    private sealed class Item;

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(64)]
    public void PushPop_OnOneThread_LastInFirstOutUpToCapacity(int capacity) => OnReactorLikeThread(() =>
    {
        var cache = new ThreadCache<Item>(capacity);
        var items = new Item[capacity + 2];
        int kept = 0;
        for (int i = 0; i < items.Length; i++)
        {
            items[i] = new Item();
            if (cache.TryPush(items[i]))
            {
                kept++;
            }
        }

        Assert.Equal(capacity, kept); // past the capacity the caller pools them
        for (int i = capacity - 1; i >= 0; i--)
        {
            Assert.True(cache.TryPop(out var item));
            Assert.Same(items[i], item); // newest first
        }
        Assert.False(cache.TryPop(out _));
    });

    [Fact]
    public void TryPush_ThreadNotEnabled_LeavesObjectsToThePool()
    {
        // A thread-pool thread (the sockets engine's completions) keeps nothing: it would hold blocks it never rents.
        var cache = new ThreadCache<Item>(8);
        bool kept = true;
        var thread = new Thread(() => kept = cache.TryPush(new Item()));
        thread.Start();

        Assert.True(thread.Join(TimeSpan.FromSeconds(10)));
        Assert.False(kept);
    }

    [Fact]
    public void TryPop_TwoCachesOfOneType_NeverMixObjects() => OnReactorLikeThread(() =>
    {
        var first = new ThreadCache<Item>(8);
        var second = new ThreadCache<Item>(8);
        var item = new Item();

        Assert.True(first.TryPush(item));

        Assert.False(second.TryPop(out _));
        Assert.True(first.TryPop(out var back));
        Assert.Same(item, back);
    });

    [Fact]
    public void TryPop_OtherThread_DoesNotSeeThisThreadsObjects() => OnReactorLikeThread(() =>
    {
        var cache = new ThreadCache<Item>(8);
        Assert.True(cache.TryPush(new Item()));

        bool seen = true;
        var other = new Thread(() =>
        {
            ThreadCacheSlots.EnableForCurrentThread();
            seen = cache.TryPop(out _);
        });
        other.Start();

        Assert.True(other.Join(TimeSpan.FromSeconds(10)));
        Assert.False(seen);
        Assert.True(cache.TryPop(out _));
    });

    private static void OnReactorLikeThread(Action body)
    {
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            ThreadCacheSlots.EnableForCurrentThread();
            try
            {
                body();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        Assert.True(thread.Join(TimeSpan.FromSeconds(10)));
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
    }
}
