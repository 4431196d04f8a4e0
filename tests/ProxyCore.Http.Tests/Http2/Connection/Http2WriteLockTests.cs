using ProxyCore.Http.Http2;

namespace ProxyCore.Http.Tests.Http2.Connection;

public sealed class Http2WriteLockTests
{
    [Fact]
    public async Task WaitAsync_Free_CompletesAtOnceAndTryEnterThenFails()
    {
        var writeLock = new Http2WriteLock();
        var wait = writeLock.WaitAsync();
        Assert.True(wait.IsCompletedSuccessfully);
        await wait;
        Assert.False(writeLock.TryEnter());
        writeLock.Release();
        Assert.True(writeLock.TryEnter());
        writeLock.Release();
    }

    [Fact]
    public async Task WaitAsync_Held_WaitsUntilReleaseThenOwnsInOrder()
    {
        var writeLock = new Http2WriteLock();
        Assert.True(writeLock.TryEnter());
        var first = writeLock.WaitAsync();
        var second = writeLock.WaitAsync();
        Assert.False(first.IsCompleted);
        Assert.False(second.IsCompleted);

        writeLock.Release();
        await first.AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(second.IsCompleted);     // FIFO: the second still waits for the first's release
        Assert.False(writeLock.TryEnter());

        writeLock.Release();
        await second.AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        writeLock.Release();
        Assert.True(writeLock.TryEnter());
        writeLock.Release();
    }

    [Fact]
    public async Task EnterOrQueue_SharesOneFifoWithWaitAsync_AndGrantsOnlyWhenOwned()
    {
        var writeLock = new Http2WriteLock();
        var free = new RecordingWaiter();
        Assert.True(writeLock.EnterOrQueue(free));     // free: ours at once, nothing queued
        Assert.Equal(0, free.Grants);
        var first = writeLock.WaitAsync();
        var queued = new RecordingWaiter();
        Assert.False(writeLock.EnterOrQueue(queued));
        var last = writeLock.WaitAsync();
        Assert.Equal(4, writeLock.Contenders);

        writeLock.Release();
        await first.AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, queued.Grants);                 // FIFO: behind the first
        Assert.False(last.IsCompleted);

        writeLock.Release();
        Assert.Equal(1, queued.Grants);
        Assert.False(last.IsCompleted);                 // the queued waiter owns it until it releases

        writeLock.Release();
        await last.AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        writeLock.Release();
        Assert.Equal(0, writeLock.Contenders);
        Assert.True(writeLock.TryEnter());
        writeLock.Release();
    }

    private sealed class RecordingWaiter : Http2WriteLock.Waiter
    {
        public int Grants;

        public override void Grant() => Grants++;
    }

    [Theory]
    [InlineData(2, 20_000)]
    [InlineData(16, 2_000)]
    public async Task WaitAsync_ManyContenders_NeverTwoOwnersAndNoWaiterLost(int contenders, int rounds)
    {
        var writeLock = new Http2WriteLock();
        int inside = 0;
        long total = 0;
        var tasks = new Task[contenders];
        for (int c = 0; c < contenders; c++)
        {
            tasks[c] = Task.Run(async () =>
            {
                for (int i = 0; i < rounds; i++)
                {
                    if ((i & 1) == 0 || !writeLock.TryEnter())
                    {
                        await writeLock.WaitAsync();
                    }
                    if (Interlocked.Increment(ref inside) != 1)
                    {
                        throw new InvalidOperationException("two owners of the write lock");
                    }
                    total++;          // unsynchronized on purpose: the lock is what protects it
                    if ((i % 64) == 0)
                    {
                        await Task.Yield();   // hold it across a suspension, as a flush does
                    }
                    Interlocked.Decrement(ref inside);
                    writeLock.Release();
                }
            });
        }
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal((long)contenders * rounds, total);
        Assert.True(writeLock.TryEnter());
    }
}
