using System.Collections.Concurrent;

namespace ProxyCore.Llm.Cache;

/// <summary>Which part a caller played in a coalesced fetch.</summary>
public enum CoalescedRole : byte
{
    /// <summary>This caller ran the fetch.</summary>
    Leader,

    /// <summary>This caller awaited another caller's fetch and got its result.</summary>
    Follower,
}

/// <summary>The outcome of <see cref="RequestCoalescer{TKey,TResult}.RunAsync"/>.</summary>
public readonly record struct Coalesced<TResult>(TResult Value, CoalescedRole Role);

/// <summary>
/// Merges identical concurrent cache misses: the first caller for a key (the leader) runs the fetch,
/// callers arriving while it runs (followers) await the leader's result instead of asking the
/// provider again.
/// </summary>
/// <remarks>
/// <para>
/// Failure propagates: if the leader's fetch throws (or is canceled), every follower sees the same
/// exception — the stage then treats it as a miss and goes upstream itself, so one client's failure
/// never becomes another's error page. A follower waits at most <c>followerTimeout</c> and then gets a
/// <see cref="TimeoutException"/> (same handling); its own cancellation ends only its wait.
/// </para>
/// <para>
/// The key leaves the table when the leader finishes, before followers resume, so a caller that
/// arrives after completion starts a new fetch (by then the answer is normally in the cache).
/// Costs one <see cref="TaskCompletionSource{TResult}"/> per miss, nothing per hit.
/// </para>
/// </remarks>
public sealed class RequestCoalescer<TKey, TResult> where TKey : notnull
{
    private readonly ConcurrentDictionary<TKey, TaskCompletionSource<TResult>> _inFlight = new();
    private readonly TimeProvider _time;

    public RequestCoalescer(TimeProvider? timeProvider = null) => _time = timeProvider ?? TimeProvider.System;

    /// <summary>Fetches in flight.</summary>
    public int InFlight => _inFlight.Count;

    /// <summary>Runs <paramref name="fetch"/> for <paramref name="key"/> unless an identical fetch is running; then awaits that one.</summary>
    /// <param name="key">The exact cache key.</param>
    /// <param name="fetch">The leader's work; gets the leader's <paramref name="cancellationToken"/>.</param>
    /// <param name="followerTimeout">How long a follower waits for the leader.</param>
    /// <param name="cancellationToken">Ends this caller's fetch (leader) or wait (follower).</param>
    public async Task<Coalesced<TResult>> RunAsync(TKey key, Func<CancellationToken, Task<TResult>> fetch, TimeSpan followerTimeout, CancellationToken cancellationToken = default)
    {
        var mine = new TaskCompletionSource<TResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        var current = _inFlight.GetOrAdd(key, mine);
        if (!ReferenceEquals(current, mine))
        {
            var value = await current.Task.WaitAsync(followerTimeout, _time, cancellationToken).ConfigureAwait(false);
            return new Coalesced<TResult>(value, CoalescedRole.Follower);
        }
        try
        {
            var value = await fetch(cancellationToken).ConfigureAwait(false);
            _inFlight.TryRemove(new KeyValuePair<TKey, TaskCompletionSource<TResult>>(key, mine));
            mine.TrySetResult(value);
            return new Coalesced<TResult>(value, CoalescedRole.Leader);
        }
        catch (Exception ex)
        {
            _inFlight.TryRemove(new KeyValuePair<TKey, TaskCompletionSource<TResult>>(key, mine));
            if (ex is OperationCanceledException oce)
            {
                mine.TrySetCanceled(oce.CancellationToken);
            }
            else
            {
                mine.TrySetException(ex);
            }
            throw;
        }
    }
}
