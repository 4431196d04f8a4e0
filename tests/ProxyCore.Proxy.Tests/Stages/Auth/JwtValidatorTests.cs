using System.Security.Cryptography;
using System.Text;
using ProxyCore.Proxy.Stages.Auth;

namespace ProxyCore.Proxy.Tests.Stages.Auth;

public sealed class JwtValidatorTests
{
    private static readonly TokenMint Mint = TokenMint.Shared;
    private readonly ManualTimeProvider _time = new(start: new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));

    private DateTimeOffset Now => _time.GetUtcNow();

    private JwtValidator Validator(JsonWebKeySet? keys = null, TimeSpan? skew = null, bool requireExp = true, int maxBytes = JwtValidationOptions.DefaultMaxTokenBytes,
        string? issuer = TokenMint.Issuer, string? audience = TokenMint.Audience) =>
        // Cache off: these tests are about the full verification path (JwtValidatorCacheTests cover the cache).
        new(new JwtValidationOptions
        {
            CacheEntries = 0,
            Issuer = issuer,
            Audience = audience,
            ClockSkew = skew ?? TimeSpan.FromSeconds(60),
            RequireExpirationTime = requireExp,
            MaxTokenBytes = maxBytes,
        }, keys ?? Mint.KeySet(), _time);

    private static JwtError Check(JwtValidator validator, string token) => validator.Validate(Encoding.ASCII.GetBytes(token)).Error;

    public static TheoryData<string> Algorithms => new() { "HS256", "RS256", "ES256" };

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Validate_SignedAndInDate_IsValidWithItsKey(string alg)
    {
        var validator = Validator();
        var result = validator.Validate(Encoding.ASCII.GetBytes(Mint.Mint(alg, TokenMint.Claims(Now))));
        Assert.Equal(JwtError.None, result.Error);
        Assert.True(result.IsValid);
        Assert.Equal(Mint.KidFor(alg), result.Key!.KeyId);
        Assert.Equal(alg, result.Key.Algorithm.ToString());
    }

    public static TheoryData<string, string> TamperCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var alg in new[] { "HS256", "RS256", "ES256" })
        {
            foreach (var part in new[] { "header", "payload", "signature" })
            {
                data.Add(alg, part);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(TamperCases))]
    public void Validate_TamperedSegment_BadSignature(string alg, string part)
    {
        var validator = Validator();
        string[] parts = Mint.Mint(alg, TokenMint.Claims(Now)).Split('.');
        switch (part)
        {
            case "header":
                // Same alg and kid, one more member: still a well-formed header, no longer the signed one.
                parts[0] = TokenMint.B64(Encoding.UTF8.GetBytes($"{{\"alg\":\"{alg}\",\"typ\":\"JWT\",\"kid\":\"{Mint.KidFor(alg)}\",\"x\":1}}"));
                break;
            case "payload":
                parts[1] = TokenMint.B64(Encoding.UTF8.GetBytes(TokenMint.Claims(Now).Replace("user-42", "admin")));
                break;
            default:
                byte[] signature = System.Buffers.Text.Base64Url.DecodeFromChars(parts[2]);
                signature[signature.Length / 2] ^= 0x01;
                parts[2] = TokenMint.B64(signature);
                break;
        }
        Assert.Equal(JwtError.BadSignature, Check(validator, string.Join('.', parts)));
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Validate_SignatureTruncatedOrExtended_BadSignature(string alg)
    {
        var validator = Validator();
        string[] parts = Mint.Mint(alg, TokenMint.Claims(Now)).Split('.');
        byte[] signature = System.Buffers.Text.Base64Url.DecodeFromChars(parts[2]);
        Assert.Equal(JwtError.BadSignature, Check(validator, $"{parts[0]}.{parts[1]}.{TokenMint.B64(signature[..^1])}"));
        Assert.Equal(JwtError.BadSignature, Check(validator, $"{parts[0]}.{parts[1]}.{TokenMint.B64([.. signature, 0])}"));
    }

    [Theory]
    [InlineData("none", "")]            // the classic unsigned token
    [InlineData("none", "sig")]         // with a signature anyway
    [InlineData("None", "")]
    [InlineData("NONE", "")]
    [InlineData("HS512", "sig")]
    [InlineData("RS384", "sig")]
    [InlineData("PS256", "sig")]
    [InlineData("hs256", "sig")]        // RFC 7515 §4.1.1: case-sensitive
    public void Validate_AlgorithmNotSupported_Refused(string alg, string signature)
    {
        var validator = Validator();
        string header = TokenMint.B64(Encoding.UTF8.GetBytes($"{{\"alg\":\"{alg}\",\"kid\":\"hs\"}}"));
        string claims = TokenMint.B64(Encoding.UTF8.GetBytes(TokenMint.Claims(Now)));
        Assert.Equal(JwtError.UnsupportedAlgorithm, Check(validator, $"{header}.{claims}.{signature}"));
    }

    [Fact]
    public void Validate_AlgNoneWithoutKid_RefusedEvenWithOneKey()
    {
        var validator = Validator(new JsonWebKeySet([JsonWebKey.FromSecret(Mint.Secret)]));
        string token = Mint.Sign("none", "{\"alg\":\"none\"}", TokenMint.Claims(Now));
        Assert.Equal(JwtError.UnsupportedAlgorithm, Check(validator, token));
    }

    [Fact]
    public void Validate_HS256SignedWithRsaPublicKeyAsSecret_AlgorithmMismatch()
    {
        // Algorithm confusion: the attacker knows the RSA public key, uses its PEM text (or DER) as an
        // HMAC secret, and names the RSA key's kid with alg HS256.
        var validator = Validator();
        string claims = TokenMint.Claims(Now);
        foreach (byte[] secret in new[] { Encoding.ASCII.GetBytes(Mint.Rsa.ExportSubjectPublicKeyInfoPem()), Mint.Rsa.ExportSubjectPublicKeyInfo() })
        {
            string input = TokenMint.B64(Encoding.UTF8.GetBytes("{\"alg\":\"HS256\",\"kid\":\"rs\"}")) + "." + TokenMint.B64(Encoding.UTF8.GetBytes(claims));
            string forged = input + "." + TokenMint.B64(HMACSHA256.HashData(secret, Encoding.ASCII.GetBytes(input)));
            Assert.Equal(JwtError.AlgorithmMismatch, Check(validator, forged));
        }
    }

    [Theory]
    [InlineData("HS256", "rs", "HS256")]
    [InlineData("HS256", "es", "HS256")]
    [InlineData("RS256", "hs", "RS256")]
    [InlineData("RS256", "es", "RS256")]
    [InlineData("ES256", "rs", "ES256")]
    [InlineData("ES256", "hs", "ES256")]
    public void Validate_AlgDiffersFromKeyType_AlgorithmMismatch(string alg, string kid, string signWith)
    {
        var validator = Validator();
        string token = Mint.Sign(signWith, $"{{\"alg\":\"{alg}\",\"kid\":\"{kid}\"}}", TokenMint.Claims(Now));
        Assert.Equal(JwtError.AlgorithmMismatch, Check(validator, token));
    }

    [Fact]
    public void Validate_KeyRotation_EachKidFindsItsKeyAndARetiredKidIsUnknown()
    {
        var both = new JsonWebKeySet([JsonWebKey.FromRsa(Mint.Rsa.ExportParameters(false), "2025-01"), JsonWebKey.FromRsa(Mint.Rsa2.ExportParameters(false), "2025-06")]);
        var newOnly = new JsonWebKeySet([JsonWebKey.FromRsa(Mint.Rsa2.ExportParameters(false), "2025-06")]);
        string claims = TokenMint.Claims(Now);
        string oldToken = Mint.Sign("RS256", "{\"alg\":\"RS256\",\"kid\":\"2025-01\"}", claims);
        string newToken = Mint.Sign("RS256-second", "{\"alg\":\"RS256\",\"kid\":\"2025-06\"}", claims);
        string newTokenWrongKid = Mint.Sign("RS256-second", "{\"alg\":\"RS256\",\"kid\":\"2025-01\"}", claims);

        Assert.Equal(JwtError.None, Check(Validator(both), oldToken));
        Assert.Equal(JwtError.None, Check(Validator(both), newToken));
        Assert.Equal(JwtError.BadSignature, Check(Validator(both), newTokenWrongKid));
        Assert.Equal(JwtError.UnknownKey, Check(Validator(newOnly), oldToken));
        Assert.Equal(JwtError.None, Check(Validator(newOnly), newToken));
    }

    [Fact]
    public void Validate_KidEscapedInJson_FindsTheKey()
    {
        string token = Mint.Sign("HS256", "{\"alg\":\"HS256\",\"kid\":\"h\\u0073\"}", TokenMint.Claims(Now));
        Assert.Equal(JwtError.None, Check(Validator(), token));
    }

    [Fact]
    public void Validate_UnknownKid_UnknownKey()
    {
        Assert.Equal(JwtError.UnknownKey, Check(Validator(), Mint.Mint("HS256", TokenMint.Claims(Now), kid: "nope")));
    }

    [Fact]
    public void Validate_NoKid_OnlyKeyIsUsedButSeveralAreAmbiguous()
    {
        string token = Mint.Sign("ES256", "{\"alg\":\"ES256\"}", TokenMint.Claims(Now));
        Assert.Equal(JwtError.None, Check(Validator(new JsonWebKeySet([JsonWebKey.FromECDsa(Mint.Ec.ExportParameters(false))])), token));
        Assert.Equal(JwtError.UnknownKey, Check(Validator(), token));
    }

    public static TheoryData<string> MalformedTokens()
    {
        string claims = TokenMint.B64(Encoding.UTF8.GetBytes(TokenMint.Claims(DateTimeOffset.UtcNow)));
        string header = TokenMint.B64("{\"alg\":\"HS256\",\"kid\":\"hs\"}"u8.ToArray());
        string H(string json) => TokenMint.B64(Encoding.UTF8.GetBytes(json));
        return new TheoryData<string>
        {
            "a",
            "a.b",
            $"{header}.{claims}",
            $"{header}.{claims}.c2ln.eHg",               // five-part JWE shape has four dots; four parts is nothing
            $".{claims}.c2ln",
            $"{header}..c2ln",
            $"{header}.{claims}.",                       // no signature at all
            $"{header} .{claims}.c2ln",                  // whitespace
            $"{header}.{claims}.c2ln=",                  // padding is not base64url in JWS
            $"{header}.{claims}.c2+l",                   // standard-alphabet characters
            $"{header}.{claims}.c2l/",
            $"{header}.{claims}.c2lnA",                  // length ≡ 1 (mod 4) cannot be base64
            $"{H("not json")}.{claims}.c2ln",
            $"{H("[\"alg\",\"HS256\"]")}.{claims}.c2ln",
            $"{H("{\"kid\":\"hs\"}")}.{claims}.c2ln",    // no alg
            $"{H("{\"alg\":256,\"kid\":\"hs\"}")}.{claims}.c2ln",
            $"{H("{\"alg\":\"HS256\",\"alg\":\"HS256\",\"kid\":\"hs\"}")}.{claims}.c2ln",
            $"{H("{\"alg\":\"HS256\",\"kid\":7}")}.{claims}.c2ln",
            $"{H("{\"alg\":\"HS256\",\"kid\":\"hs\",\"crit\":[\"exp\"],\"exp\":1}")}.{claims}.c2ln",
            $"{H("{\"alg\":\"HS256\",\"kid\":\"hs\"} {}")}.{claims}.c2ln",
            $"{H("{\"alg\":\"HS256\",\"kid\":\"hs\",}")}.{claims}.c2ln",
            $"{H("{\"alg\":\"HS256\",/*c*/\"kid\":\"hs\"}")}.{claims}.c2ln",
            $"{H("{\"alg\":\"HS256\",\"kid\":\"hs\"")}.{claims}.c2ln",
        };
    }

    [Theory]
    [MemberData(nameof(MalformedTokens))]
    public void Validate_NotAWellFormedJws_Malformed(string token)
    {
        Assert.Equal(JwtError.Malformed, Check(Validator(), token));
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Validate_NonCanonicalBase64Signature_Malformed(string alg)
    {
        const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        string token = Mint.Mint(alg, TokenMint.Claims(Now));
        Assert.Equal(JwtError.None, Check(Validator(), token));
        // 32-, 64- and 256-byte signatures all leave unused low bits in the last character; setting one
        // decodes to the same bytes, so a lenient decoder would accept a second spelling of the token.
        Assert.NotEqual(0, token.Split('.')[2].Length % 4);
        string altered = token[..^1] + Alphabet[Alphabet.IndexOf(token[^1]) | 1];
        Assert.Equal(JwtError.Malformed, Check(Validator(), altered));
    }

    public static TheoryData<string> MalformedClaims => new()
    {
        "not json",
        "[1,2]",
        "\"string\"",
        "{\"exp\":\"tomorrow\"}",
        "{\"exp\":1,\"exp\":2}",
        "{\"nbf\":true}",
        "{\"iss\":42}",
        "{\"iss\":\"a\",\"iss\":\"b\"}",
        "{\"aud\":7}",
        "{\"aud\":[\"a\",7]}",
        "{\"aud\":{\"a\":1}}",
        "{\"sub\":\"x\"",
        "{\"sub\":\"x\"}{}",
    };

    [Theory]
    [MemberData(nameof(MalformedClaims))]
    public void Validate_ClaimsNotAnObjectOrWrongTypes_Malformed(string claims)
    {
        Assert.Equal(JwtError.Malformed, Check(Validator(), Mint.Mint("HS256", claims)));
    }

    [Theory]
    // exp relative to now, in seconds, against a 60 s skew: valid strictly before exp + skew.
    [InlineData(-61, JwtError.Expired)]
    [InlineData(-60, JwtError.Expired)]
    [InlineData(-59, JwtError.None)]
    [InlineData(0, JwtError.None)]
    [InlineData(3600, JwtError.None)]
    public void Validate_ExpiryAroundClockSkew_ExpiredExactlyAtExpPlusSkew(int expInSeconds, JwtError expected)
    {
        string claims = $"{{\"iss\":\"{TokenMint.Issuer}\",\"aud\":\"{TokenMint.Audience}\",\"exp\":{Now.ToUnixTimeSeconds() + expInSeconds}}}";
        Assert.Equal(expected, Check(Validator(), Mint.Mint("HS256", claims)));
    }

    [Fact]
    public void Validate_ExpiryEdgeToTheTick_OneTickDecides()
    {
        var validator = Validator(skew: TimeSpan.Zero);
        long exp = Now.ToUnixTimeSeconds() + 10;
        string token = Mint.Mint("HS256", $"{{\"iss\":\"{TokenMint.Issuer}\",\"aud\":\"{TokenMint.Audience}\",\"exp\":{exp}}}");
        _time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(exp).AddTicks(-1));
        Assert.Equal(JwtError.None, Check(validator, token));
        _time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(exp));
        Assert.Equal(JwtError.Expired, Check(validator, token));
    }

    [Theory]
    // nbf relative to now, in seconds, against a 60 s skew: valid while now + skew >= nbf.
    [InlineData(-3600, JwtError.None)]
    [InlineData(59, JwtError.None)]
    [InlineData(60, JwtError.None)]
    [InlineData(61, JwtError.NotYetValid)]
    public void Validate_NotBeforeAroundClockSkew_ValidFromNbfMinusSkew(int nbfInSeconds, JwtError expected)
    {
        Assert.Equal(expected, Check(Validator(), Mint.Mint("HS256", TokenMint.Claims(Now, $",\"nbf\":{Now.ToUnixTimeSeconds() + nbfInSeconds}"))));
    }

    [Fact]
    public void Validate_FractionalNumericDates_ComparedToTheTick()
    {
        var validator = Validator(skew: TimeSpan.Zero);
        long now = Now.ToUnixTimeSeconds();
        string Claims(string exp) => $"{{\"iss\":\"{TokenMint.Issuer}\",\"aud\":\"{TokenMint.Audience}\",\"exp\":{exp}}}";
        Assert.Equal(JwtError.None, Check(validator, Mint.Mint("HS256", Claims($"{now}.5"))));
        _time.Advance(TimeSpan.FromMilliseconds(500));
        Assert.Equal(JwtError.Expired, Check(validator, Mint.Mint("HS256", Claims($"{now}.5"))));
        Assert.Equal(JwtError.None, Check(validator, Mint.Mint("HS256", Claims("1e300"))));       // far future saturates
        Assert.Equal(JwtError.Expired, Check(validator, Mint.Mint("HS256", Claims("-1e300"))));
        Assert.Equal(JwtError.None, Check(validator, Mint.Mint("HS256", Claims("9223372036854775807"))));
    }

    [Theory]
    [InlineData(true, JwtError.MissingExpiration)]
    [InlineData(false, JwtError.None)]
    public void Validate_NoExp_DependsOnRequireExpirationTime(bool require, JwtError expected)
    {
        string claims = $"{{\"iss\":\"{TokenMint.Issuer}\",\"aud\":\"{TokenMint.Audience}\"}}";
        Assert.Equal(expected, Check(Validator(requireExp: require), Mint.Mint("HS256", claims)));
    }

    [Theory]
    [InlineData("\"https://issuer.example\"", JwtError.None)]
    [InlineData("\"https:\\/\\/issuer.example\"", JwtError.None)]   // JSON may escape '/'
    [InlineData("\"https://issuer.example/\"", JwtError.WrongIssuer)]
    [InlineData("\"HTTPS://issuer.example\"", JwtError.WrongIssuer)]   // case-sensitive
    [InlineData("\"https://evil.example\"", JwtError.WrongIssuer)]
    [InlineData(null, JwtError.WrongIssuer)]
    public void Validate_Issuer_MustEqualConfigured(string? iss, JwtError expected)
    {
        string member = iss is null ? "" : $"\"iss\":{iss},";
        string claims = $"{{{member}\"aud\":\"{TokenMint.Audience}\",\"exp\":{Now.AddMinutes(1).ToUnixTimeSeconds()}}}";
        Assert.Equal(expected, Check(Validator(), Mint.Mint("ES256", claims)));
    }

    [Theory]
    [InlineData("\"api://orders\"", JwtError.None)]
    [InlineData("[\"api://billing\",\"api://orders\"]", JwtError.None)]
    [InlineData("[\"api://orders\"]", JwtError.None)]
    [InlineData("[\"api://billing\",\"api://users\"]", JwtError.WrongAudience)]
    [InlineData("[]", JwtError.WrongAudience)]
    [InlineData("\"api://orders2\"", JwtError.WrongAudience)]
    [InlineData(null, JwtError.WrongAudience)]
    public void Validate_Audience_StringOrArrayMustContainConfigured(string? aud, JwtError expected)
    {
        string member = aud is null ? "" : $",\"aud\":{aud}";
        string claims = $"{{\"iss\":\"{TokenMint.Issuer}\",\"exp\":{Now.AddMinutes(1).ToUnixTimeSeconds()}{member}}}";
        Assert.Equal(expected, Check(Validator(), Mint.Mint("RS256", claims)));
    }

    [Fact]
    public void Validate_NoIssuerOrAudienceConfigured_AnyAccepted()
    {
        string claims = $"{{\"iss\":\"someone\",\"aud\":[\"x\"],\"exp\":{Now.AddMinutes(1).ToUnixTimeSeconds()}}}";
        Assert.Equal(JwtError.None, Check(Validator(issuer: null, audience: null), Mint.Mint("HS256", claims)));
    }

    [Fact]
    public void Validate_SignatureCheckedBeforeClaims_ForgedExpiredTokenIsBadSignature()
    {
        string expired = Mint.Mint("HS256", TokenMint.Claims(Now.AddDays(-1)));
        string[] parts = expired.Split('.');
        parts[2] = parts[2][..^2] + (parts[2][^2] == 'A' ? "BA" : "AA");
        Assert.Equal(JwtError.BadSignature, Check(Validator(), string.Join('.', parts)));
    }

    [Fact]
    public void Validate_OverMaxTokenBytes_TooLargeButAtTheLimitValidated()
    {
        string token = Mint.Mint("HS256", TokenMint.Claims(Now));
        Assert.Equal(JwtError.TooLarge, Check(Validator(maxBytes: token.Length - 1), token));
        Assert.Equal(JwtError.None, Check(Validator(maxBytes: token.Length), token));
        Assert.Equal(JwtError.TooLarge, Check(Validator(), new string('A', JwtValidationOptions.DefaultMaxTokenBytes + 1)));
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Validate_LargeTokenBeyondStackScratch_ValidatedFromPooledBuffer(string alg)
    {
        string padding = new('x', 5000);
        string token = Mint.Mint(alg, TokenMint.Claims(Now, $",\"groups\":\"{padding}\""));
        Assert.InRange(token.Length, 2048 * 3, JwtValidationOptions.DefaultMaxTokenBytes);
        Assert.Equal(JwtError.None, Check(Validator(), token));
        Assert.Equal(JwtError.BadSignature, Check(Validator(), token.Replace("eHh4", "eHh5")));
    }

    [Fact]
    public void Validate_Empty_MissingToken()
    {
        Assert.Equal(JwtError.MissingToken, Validator().Validate(ReadOnlySpan<byte>.Empty).Error);
    }

    [Fact]
    public void Validate_WithPayloadBuffer_ValidTokenLeavesClaimsToRead()
    {
        byte[] token = Encoding.ASCII.GetBytes(Mint.Mint("HS256", TokenMint.Claims(Now, ",\"tenant\":\"acme\"")));
        var payload = new byte[JwtValidator.MaxPayloadBytes(token.Length)];
        var result = Validator().Validate(token, payload);

        Assert.True(result.IsValid);
        Assert.True(JwtClaims.TryGetRawValue(payload.AsSpan(0, result.PayloadLength), "tenant"u8, out var tenant));
        Assert.Equal("acme", Encoding.UTF8.GetString(tenant));
        Assert.True(JwtClaims.TryGetRawValue(payload.AsSpan(0, result.PayloadLength), "sub"u8, out var subject));
        Assert.Equal("user-42", Encoding.UTF8.GetString(subject));
    }

    [Fact]
    public void Validate_WithPayloadBufferAndRefusedClaims_NoClaimsLeftBehind()
    {
        byte[] token = Encoding.ASCII.GetBytes(Mint.Mint("HS256", TokenMint.Claims(Now.AddDays(-1), ",\"tenant\":\"acme\"")));
        var payload = new byte[JwtValidator.MaxPayloadBytes(token.Length)];
        var result = Validator().Validate(token, payload);

        Assert.Equal(JwtError.Expired, result.Error);
        Assert.Equal(0, result.PayloadLength);
        Assert.All(payload, b => Assert.Equal(0, b));
    }

    [Fact]
    public void Validate_PayloadBufferTooSmall_Throws()
    {
        byte[] token = Encoding.ASCII.GetBytes(Mint.Mint("HS256", TokenMint.Claims(Now)));
        Assert.Throws<ArgumentException>(() => Validator().Validate(token, new byte[10]));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(86_401)]
    public void Constructor_SkewOutOfRange_Throws(int seconds)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Validator(skew: TimeSpan.FromSeconds(seconds)));
    }

    [Theory]
    [InlineData("HS256")]
    [InlineData("RS256")]
    public void Validate_AfterWarmUp_AllocatesNothing(string alg)
    {
        var validator = Validator();
        byte[] token = Encoding.ASCII.GetBytes(Mint.Mint(alg, TokenMint.Claims(Now, ",\"scope\":\"orders:read orders:write\"")));
        var payload = new byte[JwtValidator.MaxPayloadBytes(token.Length)];
        for (int i = 0; i < 200; i++)
        {
            validator.Validate(token);
            validator.Validate(token, payload); // warm up: the JIT's tiers, the crypto provider's first use
        }
        int valid = 0, calls = 0;
        Assert.Equal(0, Allocations.SteadyState(() =>
        {
            valid += validator.Validate(token).IsValid ? 1 : 0;
            var result = validator.Validate(token, payload);
            valid += JwtClaims.TryGetRawValue(payload.AsSpan(0, result.PayloadLength), "sub"u8, out _) ? 1 : 0;
            calls++;
        }, 100, warmUps: 0));
        Assert.Equal(2 * calls, valid);
    }

    [Fact]
    public void Validate_ES256AfterWarmUp_AllocatesNoMoreThanTheBclVerifyAlone()
    {
        var validator = Validator();
        byte[] token = Encoding.ASCII.GetBytes(Mint.Mint("ES256", TokenMint.Claims(Now)));
        int dot = Array.LastIndexOf(token, (byte)'.');
        byte[] signingInput = token[..dot];
        byte[] signature = System.Buffers.Text.Base64Url.DecodeFromUtf8(token.AsSpan(dot + 1));
        using var ecdsa = ECDsa.Create(Mint.Ec.ExportParameters(false));
        for (int i = 0; i < 200; i++)
        {
            validator.Validate(token);
            ecdsa.VerifyData(signingInput.AsSpan(), signature, HashAlgorithmName.SHA256);
        }

        long ours = Allocations.SteadyState(() => Assert.True(validator.Validate(token).IsValid), 100, warmUps: 0);
        long bclAlone = Allocations.SteadyState(() => Assert.True(ecdsa.VerifyData(signingInput.AsSpan(), signature, HashAlgorithmName.SHA256)), 100, warmUps: 0);

        Assert.Equal(bclAlone, ours);
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Validate_ManyThreadsOneValidator_AllVerify(string alg)
    {
        var validator = Validator();
        byte[] good = Encoding.ASCII.GetBytes(Mint.Mint(alg, TokenMint.Claims(Now)));
        byte[] bad = Encoding.ASCII.GetBytes(Mint.Mint(alg, TokenMint.Claims(Now)).Replace(".ey", ".fy"));
        int wrong = 0;
        Parallel.For(0, 2000, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            bool expectValid = i % 3 != 0;
            var error = validator.Validate(expectValid ? good : bad).Error;
            if ((error == JwtError.None) != expectValid)
            {
                Interlocked.Increment(ref wrong);
            }
        });
        Assert.Equal(0, wrong);
    }
}
