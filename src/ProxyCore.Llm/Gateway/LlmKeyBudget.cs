namespace ProxyCore.Llm.Gateway;

/// <summary>
/// One virtual key's usage: requests and tokens in the current one-minute window, and spend since
/// start. A lock per key (fine-grained: keys never contend with each other, and the critical section
/// is a few additions). Tokens are reserved before a request (prompt estimate + max_tokens) and
/// reconciled with the real usage after, so concurrent requests cannot all slip under the limit.
/// Kept across config reloads (the stage's registry holds it by route and key name).
/// </summary>
internal sealed class LlmKeyBudget
{
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private long _windowStart;
    private long _windowId;
    private int _requests;
    private long _tokens;
    private long _spentNanoUsd;

    public LlmKeyBudget(TimeProvider time)
    {
        _time = time;
        _windowStart = time.GetTimestamp();
    }

    public double SpentUsd => Volatile.Read(ref _spentNanoUsd) / 1e9;

    /// <summary>Admits one request reserving <paramref name="tokens"/>, or says which limit refused it and when to retry.</summary>
    public bool TryReserve(int? requestsPerMinute, int? tokensPerMinute, double? budgetUsd, long tokens, out long windowId, out TimeSpan retryAfter, out string reason)
    {
        retryAfter = default;
        reason = "";
        if (budgetUsd is { } budget && SpentUsd >= budget)
        {
            windowId = 0;
            // A spend limit does not refill with time: a retry helps only after a reload raises it.
            retryAfter = TimeSpan.FromHours(1);
            reason = "budget-exceeded";
            return false;
        }
        lock (_lock)
        {
            long now = _time.GetTimestamp();
            var elapsed = _time.GetElapsedTime(_windowStart, now);
            if (elapsed >= Window)
            {
                _windowStart = now;
                _windowId++;
                _requests = 0;
                _tokens = 0;
                elapsed = TimeSpan.Zero;
            }
            windowId = _windowId;
            retryAfter = Window - elapsed;
            if (requestsPerMinute is { } rpm && _requests + 1 > rpm)
            {
                reason = "requests-per-minute";
                return false;
            }
            if (tokensPerMinute is { } tpm && _tokens + tokens > tpm)
            {
                reason = "tokens-per-minute";
                return false;
            }
            _requests++;
            _tokens += tokens;
            return true;
        }
    }

    /// <summary>Replaces a reservation by what the request really used (when still in the same window).</summary>
    public void Reconcile(long windowId, long reserved, long used, double costUsd)
    {
        if (costUsd > 0)
        {
            Interlocked.Add(ref _spentNanoUsd, (long)Math.Round(costUsd * 1e9));
        }
        lock (_lock)
        {
            if (windowId == _windowId)
            {
                _tokens = Math.Max(0, _tokens - reserved + used);
            }
        }
    }
}
