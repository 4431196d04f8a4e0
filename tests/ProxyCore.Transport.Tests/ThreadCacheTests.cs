using ProxyCore.Transport;

namespace ProxyCore.Transport.Tests;

public sealed class ThreadCacheTests
{
    private sealed class Item;

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(64)]
    public void PushPop_OnOneThread_LastInFirstOutUpToCapacity(int capacity)
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
    }

    [Fact]
    public void TryPop_TwoCachesOfOneType_NeverMixObjects()
    {
        var first = new ThreadCache<Item>(8);
        var second = new ThreadCache<Item>(8);
        var item = new Item();

        Assert.True(first.TryPush(item));

        Assert.False(second.TryPop(out _));
        Assert.True(first.TryPop(out var back));
        Assert.Same(item, back);
    }

    [Fact]
    public void TryPop_OtherThread_DoesNotSeeThisThreadsObjects()
    {
        // Synchronous on purpose: the pushes and the last pop must run on the test's own thread.
        var cache = new ThreadCache<Item>(8);
        Assert.True(cache.TryPush(new Item()));

        var other = Task.Factory.StartNew(() => cache.TryPop(out _), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);

        Assert.True(other.Wait(TimeSpan.FromSeconds(10)));
        Assert.False(other.Result);
        Assert.True(cache.TryPop(out _));
    }
}
