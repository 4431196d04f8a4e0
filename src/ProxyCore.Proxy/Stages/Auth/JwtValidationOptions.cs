namespace ProxyCore.Proxy.Stages.Auth;

/// <summary>What a <see cref="JwtValidator"/> checks beyond the signature. Immutable once the validator is built.</summary>
public sealed class JwtValidationOptions
{
    /// <summary>Default <see cref="MaxTokenBytes"/>: 8 KiB, several times a typical access token (0.8–2 KB).</summary>
    public const int DefaultMaxTokenBytes = 8 * 1024;

    /// <summary>
    /// The exact <c>iss</c> a token must carry (RFC 7519 §4.1.1, compared as a case-sensitive string).
    /// Default null: not checked — then any issuer whose key is in the key set is accepted, so leave it
    /// null only when the key set belongs to exactly one issuer.
    /// </summary>
    public string? Issuer { get; init; }

    /// <summary>
    /// The audience this route is: <c>aud</c> (a string, or an array of strings) must contain it
    /// (RFC 7519 §4.1.3). Default null: not checked — then a token minted for another service of the
    /// same issuer is accepted here too.
    /// </summary>
    public string? Audience { get; init; }

    /// <summary>
    /// Slack allowed between our clock and the issuer's when checking <c>exp</c> and <c>nbf</c>.
    /// Default 60 s. Larger tolerates worse clocks and keeps an expired token useful for longer.
    /// </summary>
    public TimeSpan ClockSkew { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Reject a token without <c>exp</c> (default true). A token that never expires stays usable forever
    /// if it leaks; turn this off only for issuers that cannot set it.
    /// </summary>
    public bool RequireExpirationTime { get; init; } = true;

    /// <summary>
    /// Longest token accepted, in bytes (default <see cref="DefaultMaxTokenBytes"/>, at most 1 MiB).
    /// Checked before any decoding. Tokens up to 2 KiB decode on the stack; longer ones borrow a pooled
    /// buffer of about three quarters of their length. The header limit (<c>limits.maxHeaderBytes</c>)
    /// bounds it anyway; this bound stops a client making us decode and hash that much per request.
    /// </summary>
    public int MaxTokenBytes { get; init; } = DefaultMaxTokenBytes;

    /// <summary>Default <see cref="CacheEntries"/>.</summary>
    public const int DefaultCacheEntries = 1024;

    /// <summary>
    /// Verified tokens remembered (rounded up to a power of two; 0 = none), so a client that sends the same
    /// token on every request pays a hash and a compare instead of a signature check and two JSON reads.
    /// A hit compares the whole token byte for byte and checks <c>exp</c>/<c>nbf</c> against the clock again;
    /// only tokens that passed every check are kept, and only up to <see cref="MaxCachedTokenBytes"/>, so the
    /// cache holds at most about entries × 7 KiB (7 MiB at the default). Larger tolerates more distinct live
    /// tokens per route before they evict each other; an evicted token is simply verified again.
    /// </summary>
    public int CacheEntries { get; init; } = DefaultCacheEntries;

    /// <summary>
    /// The claim naming the consumer (a route's auth.jwt.consumerClaim): a cached token keeps where its value is,
    /// so a cache hit hands it back from <see cref="JwtValidator.ValidateCached"/> without reading the JSON again.
    /// Null: nothing is looked up.
    /// </summary>
    public string? ConsumerClaim { get; init; }

    /// <summary>Longest token the cache keeps (4 KiB): bounds its memory; longer tokens are verified every time.</summary>
    public const int MaxCachedTokenBytes = 4 * 1024;
}
