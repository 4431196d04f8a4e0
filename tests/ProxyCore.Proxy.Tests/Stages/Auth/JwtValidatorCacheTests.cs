using System.Text;
using ProxyCore.Proxy.Stages.Auth;

namespace ProxyCore.Proxy.Tests.Stages.Auth;

/// <summary>The cache of verified tokens: a hit must give exactly the answer a full validation would.</summary>
public sealed class JwtValidatorCacheTests
{
    private static readonly TokenMint Mint = TokenMint.Shared;
    private readonly ManualTimeProvider _time = new(start: new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));

    private JwtValidator Validator(int cacheEntries = JwtValidationOptions.DefaultCacheEntries, string? consumerClaim = null) => new(new JwtValidationOptions
    {
        Issuer = TokenMint.Issuer,
        Audience = TokenMint.Audience,
        ClockSkew = TimeSpan.FromSeconds(60),
        CacheEntries = cacheEntries,
        ConsumerClaim = consumerClaim,
    }, Mint.KeySet(), _time);

    [Theory]
    [InlineData("sub", "\"sub\":\"alice\"", "alice")]
    [InlineData("sub", "\"name\":\"x\"", "")]
    [InlineData("tid", "\"tid\":42,\"sub\":\"a\"", "42")]
    [InlineData(null, "\"sub\":\"alice\"", "")]
    public void ValidateCached_MissThenHit_SameClaimsAndConsumer_HitIsCounted(string? consumerClaim, string extraClaims, string expectedConsumer)
    {
        var validator = Validator(consumerClaim: consumerClaim);
        var now = _time.GetUtcNow();
        string json = $"{{\"iss\":\"{TokenMint.Issuer}\",\"aud\":\"{TokenMint.Audience}\",{extraClaims},\"exp\":{now.AddMinutes(5).ToUnixTimeSeconds()}}}";
        var token = Encoding.ASCII.GetBytes(Mint.Mint("HS256", json));
        var payload = new byte[JwtValidator.MaxPayloadBytes(token.Length)];

        var miss = validator.ValidateCached(token, payload, out var missClaims, out var missConsumer);
        string missSeen = Encoding.UTF8.GetString(missClaims) + "|" + Encoding.UTF8.GetString(missConsumer);
        Array.Clear(payload); // a hit must not read the caller's buffer
        var hit = validator.ValidateCached(token, payload, out var hitClaims, out var hitConsumer);

        Assert.True(miss.IsValid);
        Assert.True(hit.IsValid);
        Assert.Equal(1, validator.CacheHits);
        Assert.Equal(json + "|" + expectedConsumer, missSeen);
        Assert.Equal(missSeen, Encoding.UTF8.GetString(hitClaims) + "|" + Encoding.UTF8.GetString(hitConsumer));
        Assert.Same(miss.Key, hit.Key);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void ValidateCached_PastExpOrTampered_RefusedLikeValidate(int variant)
    {
        var validator = Validator(consumerClaim: "sub");
        var now = _time.GetUtcNow();
        var token = Encoding.ASCII.GetBytes(Mint.Mint("HS256",
            $"{{\"iss\":\"{TokenMint.Issuer}\",\"aud\":\"{TokenMint.Audience}\",\"sub\":\"u\",\"exp\":{now.AddMinutes(5).ToUnixTimeSeconds()}}}"));
        var payload = new byte[JwtValidator.MaxPayloadBytes(token.Length)];
        Assert.True(validator.ValidateCached(token, payload, out _, out _).IsValid);

        JwtError expected;
        if (variant == 0)
        {
            _time.Advance(TimeSpan.FromMinutes(7));
            expected = JwtError.Expired;
        }
        else
        {
            token[^2] = (byte)(token[^2] == 'A' ? 'B' : 'A'); // same slot is likely, same bytes are not
            expected = JwtError.BadSignature;
        }
        var result = validator.ValidateCached(token, payload, out var claims, out var consumer);

        Assert.Equal(expected, result.Error);
        Assert.True(claims.IsEmpty);
        Assert.True(consumer.IsEmpty);
    }

    public static TheoryData<string> Algorithms => new() { "HS256", "RS256", "ES256" };

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Validate_SameTokenAgain_HitsTheCacheWithTheSameClaims(string alg)
    {
        var validator = Validator();
        var token = Encoding.ASCII.GetBytes(Mint.Mint(alg, TokenMint.Claims(_time.GetUtcNow())));
        var first = new byte[JwtValidator.MaxPayloadBytes(token.Length)];
        var second = new byte[first.Length];

        var a = validator.Validate(token, first);
        var b = validator.Validate(token, second);

        Assert.True(a.IsValid);
        Assert.True(b.IsValid);
        Assert.Equal(1, validator.CacheHits);
        Assert.Same(a.Key, b.Key);
        Assert.Equal(first.AsSpan(0, a.PayloadLength).ToArray(), second.AsSpan(0, b.PayloadLength).ToArray());
    }

    [Fact]
    public void Validate_CachedTokenPastExp_IsExpiredNotServedFromCache()
    {
        var validator = Validator();
        var now = _time.GetUtcNow();
        var token = Encoding.ASCII.GetBytes(Mint.Mint("HS256",
            $"{{\"iss\":\"{TokenMint.Issuer}\",\"aud\":\"{TokenMint.Audience}\",\"sub\":\"u\",\"exp\":{now.AddMinutes(5).ToUnixTimeSeconds()}}}"));
        Assert.True(validator.Validate(token).IsValid);

        _time.Advance(TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(59));
        Assert.True(validator.Validate(token).IsValid); // within the clock skew
        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal(JwtError.Expired, validator.Validate(token).Error);
    }

    [Fact]
    public void Validate_CachedTokenBeforeNbf_IsNotYetValid()
    {
        var validator = Validator();
        var now = _time.GetUtcNow();
        var token = Encoding.ASCII.GetBytes(Mint.Mint("HS256",
            $"{{\"iss\":\"{TokenMint.Issuer}\",\"aud\":\"{TokenMint.Audience}\",\"exp\":{now.AddHours(1).ToUnixTimeSeconds()},\"nbf\":{now.AddSeconds(30).ToUnixTimeSeconds()}}}"));
        Assert.True(validator.Validate(token).IsValid); // nbf within the skew
        _time.SetUtcNow(now.AddSeconds(-31));

        Assert.Equal(JwtError.NotYetValid, validator.Validate(token).Error);
    }

    [Fact]
    public void Validate_TokenDifferingOnlyBeforeTheTail_IsVerifiedNotMatched()
    {
        var validator = Validator();
        var good = Mint.Mint("HS256", TokenMint.Claims(_time.GetUtcNow()));
        Assert.True(validator.Validate(Encoding.ASCII.GetBytes(good)).IsValid);
        // Same signature (so the same cache slot), another payload: the whole token is compared, so it is verified and refused.
        string[] parts = good.Split('.');
        parts[1] = TokenMint.B64(Encoding.UTF8.GetBytes(TokenMint.Claims(_time.GetUtcNow()).Replace("user-42", "admin")));

        Assert.Equal(JwtError.BadSignature, validator.Validate(Encoding.ASCII.GetBytes(string.Join('.', parts))).Error);
        Assert.Equal(0, validator.CacheHits);
    }

    [Fact]
    public void Validate_InvalidTokenRepeated_NeverCached()
    {
        var validator = Validator();
        var token = Encoding.ASCII.GetBytes(Mint.Mint("HS256", TokenMint.Claims(_time.GetUtcNow()).Replace(TokenMint.Audience, "api://other")));

        Assert.Equal(JwtError.WrongAudience, validator.Validate(token).Error);
        Assert.Equal(JwtError.WrongAudience, validator.Validate(token).Error);
        Assert.Equal(0, validator.CacheHits);
    }

    [Fact]
    public void Validate_CacheDisabled_NoHits()
    {
        var validator = Validator(cacheEntries: 0);
        var token = Encoding.ASCII.GetBytes(Mint.Mint("HS256", TokenMint.Claims(_time.GetUtcNow())));

        Assert.True(validator.Validate(token).IsValid);
        Assert.True(validator.Validate(token).IsValid);
        Assert.Equal(0, validator.CacheHits);
    }

    [Fact]
    public void Validate_ManyDistinctTokens_BoundedAndStillCorrect()
    {
        var validator = Validator(cacheEntries: 4);
        var tokens = Enumerable.Range(0, 64).Select(i => Encoding.ASCII.GetBytes(Mint.Mint("HS256", TokenMint.Claims(_time.GetUtcNow(), $",\"n\":{i}")))).ToArray();

        for (int round = 0; round < 3; round++)
        {
            foreach (var token in tokens)
            {
                Assert.True(validator.Validate(token).IsValid);
            }
        }
        Assert.True(validator.CacheHits < 64 * 3, "4 entries cannot hold 64 tokens");
    }
}
