using System.Diagnostics;
using ProxyCore.Transport;

namespace ProxyCore.Transport.Tests;

public sealed class CoarseTimeoutTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    public async Task CancelAfter_Elapses_TokenFiresNotEarly(int delayMs)
    {
        using var timeout = new CoarseTimeout();
        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        long start = Stopwatch.GetTimestamp();
        timeout.Token.UnsafeRegister(static s => ((TaskCompletionSource)s!).TrySetResult(), fired);
        timeout.CancelAfter(TimeSpan.FromMilliseconds(delayMs));

        await fired.Task.WaitAsync(Bound);

        Assert.True(timeout.IsCancellationRequested);
        Assert.True(Stopwatch.GetElapsedTime(start) >= TimeSpan.FromMilliseconds(delayMs));
    }

    [Theory]
    [InlineData("reset")]
    [InlineData("infinite")]
    [InlineData("moved")]
    public async Task CancelAfter_DisarmedOrMoved_DoesNotFire(string how)
    {
        using var timeout = new CoarseTimeout();
        timeout.CancelAfter(TimeSpan.FromMilliseconds(60));
        switch (how)
        {
            case "reset": timeout.Reset(); break;
            case "infinite": timeout.CancelAfter(Timeout.InfiniteTimeSpan); break;
            case "moved": timeout.CancelAfter(TimeSpan.FromMinutes(5)); break;
        }

        // Several sweeps: a disarmed or moved deadline must not fire.
        await Task.Delay(CoarseTimeout.Resolution * 6);

        Assert.False(timeout.IsCancellationRequested);
    }

    [Fact]
    public async Task CallbackMode_FiresOnThePool_NotEarly_AndResetRearms()
    {
        var fired = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var timeout = new CoarseTimeout(static s => ((TaskCompletionSource<bool>)s!).TrySetResult(Thread.CurrentThread.IsThreadPoolThread), fired);
        Assert.False(timeout.Token.CanBeCanceled); // no token source behind it
        long start = Stopwatch.GetTimestamp();
        timeout.CancelAfter(TimeSpan.FromMilliseconds(100));

        Assert.True(await fired.Task.WaitAsync(Bound));
        Assert.True(Stopwatch.GetElapsedTime(start) >= TimeSpan.FromMilliseconds(100));
        Assert.True(timeout.HasFired);
        Assert.True(timeout.IsCancellationRequested);

        // Reset clears the fire; a reset deadline does not fire; a new one does.
        timeout.Reset();
        Assert.False(timeout.HasFired);
        int calls = 0;
        using var second = new CoarseTimeout(_ => Interlocked.Increment(ref calls), null);
        second.CancelAfter(TimeSpan.FromMilliseconds(60));
        second.Reset();
        await Task.Delay(CoarseTimeout.Resolution * 6);
        Assert.Equal(0, Volatile.Read(ref calls));
        second.CancelAfter(TimeSpan.Zero);
        await Eventually(() => Volatile.Read(ref calls) == 1);
        Assert.True(second.HasFired);
    }

    private static async Task Eventually(Func<bool> condition)
    {
        long start = Stopwatch.GetTimestamp();
        while (!condition())
        {
            Assert.True(Stopwatch.GetElapsedTime(start) < Bound, "condition not met in time");
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task Reset_AfterFire_GivesFreshTokenThatCanFireAgain()
    {
        using var timeout = new CoarseTimeout();
        for (int round = 0; round < 3; round++)
        {
            var token = timeout.Token;
            Assert.False(token.IsCancellationRequested);
            timeout.CancelAfter(TimeSpan.Zero);
            await WaitUntilAsync(() => token.IsCancellationRequested);
            timeout.Reset();
            Assert.False(timeout.IsCancellationRequested);
        }
    }

    [Fact]
    public void Cancel_Immediate_CancelsAndStaysCancelledUntilReset()
    {
        using var timeout = new CoarseTimeout();
        timeout.CancelAfter(TimeSpan.FromMinutes(1));
        timeout.Cancel();
        Assert.True(timeout.IsCancellationRequested);

        timeout.CancelAfter(TimeSpan.FromMinutes(1)); // no effect once fired, as with a CancellationTokenSource
        Assert.True(timeout.IsCancellationRequested);

        timeout.Reset();
        Assert.False(timeout.IsCancellationRequested);
    }

    [Fact]
    public async Task Dispose_Armed_NeverFires()
    {
        var timeout = new CoarseTimeout();
        timeout.CancelAfter(TimeSpan.FromMilliseconds(10));
        timeout.Dispose();

        await Task.Delay(CoarseTimeout.Resolution * 6);

        Assert.False(timeout.IsCancellationRequested);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var start = Stopwatch.GetTimestamp();
        while (!condition())
        {
            Assert.True(Stopwatch.GetElapsedTime(start) < Bound, "timed out waiting");
            await Task.Delay(5);
        }
    }
}
