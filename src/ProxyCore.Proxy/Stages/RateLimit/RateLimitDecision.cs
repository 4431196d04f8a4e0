namespace ProxyCore.Proxy.Stages.RateLimit;

/// <summary>
/// What one <see cref="TokenBucketLimiter.TryAcquire"/> decided, with everything the response needs:
/// <c>Retry-After</c> on a 429 (RFC 9110 §10.2.3, RFC 6585 §4) and the
/// <c>RateLimit-Limit / RateLimit-Remaining / RateLimit-Reset</c> fields of
/// draft-ietf-httpapi-ratelimit-headers. <see cref="RateLimitHeaders"/> formats them as bytes.
/// </summary>
public readonly struct RateLimitDecision
{
    internal RateLimitDecision(bool allowed, int limit, int remaining, TimeSpan retryAfter, TimeSpan resetAfter)
    {
        Allowed = allowed;
        Limit = limit;
        Remaining = remaining;
        RetryAfter = retryAfter;
        ResetAfter = resetAfter;
    }

    /// <summary>True when a token was taken and the request may pass; false means answer 429.</summary>
    public bool Allowed { get; }

    /// <summary>The bucket's size (the burst): the most requests a client can make at once.</summary>
    public int Limit { get; }

    /// <summary>Whole tokens left in the bucket after this request (0 when denied).</summary>
    public int Remaining { get; }

    /// <summary>When denied: how long until one token is back and the same request would pass. Zero when allowed.</summary>
    public TimeSpan RetryAfter { get; }

    /// <summary>How long until the bucket is full again (<see cref="Remaining"/> back to <see cref="Limit"/>) if no request comes.</summary>
    public TimeSpan ResetAfter { get; }
}
