using ProxyCore.Llm.Gateway;

namespace ProxyCore.Llm.Tests.Gateway;

public sealed class LlmKeyBudgetTests
{
    [Fact]
    public void TryReserve_RequestsPerMinute_RefusesThenRefillsNextWindow()
    {
        var time = new ManualClock();
        var budget = new LlmKeyBudget(time);

        Assert.True(budget.TryReserve(2, null, null, 10, out _, out _, out _));
        Assert.True(budget.TryReserve(2, null, null, 10, out _, out _, out _));
        time.Advance(TimeSpan.FromSeconds(20));
        Assert.False(budget.TryReserve(2, null, null, 10, out _, out var retryAfter, out var reason));
        Assert.Equal("requests-per-minute", reason);
        Assert.Equal(TimeSpan.FromSeconds(40), retryAfter);

        time.Advance(TimeSpan.FromSeconds(40));
        Assert.True(budget.TryReserve(2, null, null, 10, out _, out _, out _));
    }

    [Fact]
    public void Reconcile_UsedLessThanReserved_GivesTheRestBack()
    {
        var budget = new LlmKeyBudget(new ManualClock());

        Assert.True(budget.TryReserve(null, 1000, null, 900, out long window, out _, out _));
        Assert.False(budget.TryReserve(null, 1000, null, 200, out _, out _, out var reason));
        Assert.Equal("tokens-per-minute", reason);
        budget.Reconcile(window, reserved: 900, used: 100, costUsd: 0);

        Assert.True(budget.TryReserve(null, 1000, null, 800, out _, out _, out _));
        Assert.False(budget.TryReserve(null, 1000, null, 200, out _, out _, out _));
    }

    [Fact]
    public void Reconcile_AfterTheWindowRolled_DoesNotTouchTheNewWindow()
    {
        var time = new ManualClock();
        var budget = new LlmKeyBudget(time);
        Assert.True(budget.TryReserve(null, 1000, null, 900, out long window, out _, out _));
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.True(budget.TryReserve(null, 1000, null, 900, out _, out _, out _));

        budget.Reconcile(window, reserved: 900, used: 0, costUsd: 0);

        Assert.False(budget.TryReserve(null, 1000, null, 200, out _, out _, out _));
    }

    [Fact]
    public void TryReserve_SpendReachedBudget_RefusesUntilReload()
    {
        var time = new ManualClock();
        var budget = new LlmKeyBudget(time);
        Assert.True(budget.TryReserve(null, null, 0.01, 0, out long window, out _, out _));
        budget.Reconcile(window, 0, 0, costUsd: 0.02);
        time.Advance(TimeSpan.FromHours(2));

        Assert.False(budget.TryReserve(null, null, 0.01, 0, out _, out var retryAfter, out var reason));
        Assert.Equal("budget-exceeded", reason);
        Assert.True(retryAfter > TimeSpan.Zero);
        Assert.True(budget.TryReserve(null, null, 0.05, 0, out _, out _, out _)); // a raised budget (reload) admits again
    }

    [Fact]
    public async Task TryReserve_Concurrent_NeverAdmitsMoreThanTheLimit()
    {
        var budget = new LlmKeyBudget(new ManualClock());
        int admitted = 0;

        await Task.WhenAll(Enumerable.Range(0, 8).Select(worker => Task.Run(() =>
        {
            for (int i = 0; i < 1000; i++)
            {
                if (budget.TryReserve(500, null, null, 1, out _, out _, out _))
                {
                    Interlocked.Increment(ref admitted);
                }
            }
        })));

        Assert.Equal(500, admitted);
    }

    private sealed class ManualClock : TimeProvider
    {
        private long _ticks = 1_000 * TimeSpan.TicksPerSecond;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Volatile.Read(ref _ticks);

        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
    }
}
