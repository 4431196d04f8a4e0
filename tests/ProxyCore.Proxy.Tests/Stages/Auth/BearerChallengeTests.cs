using System.Text;
using ProxyCore.Proxy.Stages.Auth;

namespace ProxyCore.Proxy.Tests.Stages.Auth;

public sealed class BearerChallengeTests
{
    [Theory]
    [InlineData("Bearer abc.def.ghi", "abc.def.ghi")]
    [InlineData("bearer abc.def.ghi", "abc.def.ghi")]          // RFC 9110 §11.1: scheme is case-insensitive
    [InlineData("BEARER   abc ", "abc")]
    [InlineData("Bearer mF_9.B5f-4.1JqM", "mF_9.B5f-4.1JqM")]  // RFC 6750 §2.1's example
    [InlineData("Bearer a+b/c~d==", "a+b/c~d==")]
    public void TryGetToken_BearerCredentials_Token(string header, string expected)
    {
        Assert.True(BearerChallenge.TryGetToken(Encoding.ASCII.GetBytes(header), out var token));
        Assert.Equal(expected, Encoding.ASCII.GetString(token));
    }

    [Theory]
    [InlineData("")]
    [InlineData("Bearer")]
    [InlineData("Bearer ")]
    [InlineData("Bearerabc")]
    [InlineData("Basic dXNlcjpwYXNz")]
    [InlineData("Bearer a b")]
    [InlineData("Bearer a=b")]
    [InlineData("Bearer ==")]
    [InlineData("Bearer a\"b")]
    public void TryGetToken_NotBearerCredentials_False(string header)
    {
        Assert.False(BearerChallenge.TryGetToken(Encoding.ASCII.GetBytes(header), out _));
    }

    [Theory]
    [InlineData("Bearer abc.def.ghi", true, "abc.def.ghi", true)]
    [InlineData("BEARER   a+b/c~d== ", true, "a+b/c~d==", true)]
    [InlineData("Bearer a b", true, "a b", false)]      // a candidate (the cache may match it), but not token68
    [InlineData("Bearer a=b", true, "a=b", false)]
    [InlineData("Bearer ", true, "", false)]
    [InlineData("Basic dXNlcjpwYXNz", false, "", false)]
    [InlineData("Bearerabc", false, "", false)]
    public void TryGetCandidate_ThenIsToken68_SameAnswerAsTryGetToken(string header, bool candidate, string expected, bool token68)
    {
        var bytes = Encoding.ASCII.GetBytes(header);

        Assert.Equal(candidate, BearerChallenge.TryGetCandidate(bytes, out var token));
        Assert.Equal(expected, Encoding.ASCII.GetString(token));
        Assert.Equal(token68, candidate && BearerChallenge.IsToken68(token));
        Assert.Equal(token68, BearerChallenge.TryGetToken(bytes, out _));
    }

    [Theory]
    [InlineData(JwtError.MissingToken, "", "Bearer")]
    [InlineData(JwtError.MissingToken, "api", "Bearer realm=\"api\"")]
    [InlineData(JwtError.Expired, "api", "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"The access token expired\"")]
    [InlineData(JwtError.BadSignature, "", "Bearer error=\"invalid_token\", error_description=\"The access token's signature is invalid\"")]
    public void Format_Error_ChallengeAsRfc6750Shows(JwtError error, string realm, string expected)
    {
        var destination = new byte[BearerChallenge.MaxLength(realm.Length)];
        int written = BearerChallenge.Format(error, Encoding.ASCII.GetBytes(realm), destination);
        Assert.Equal(expected, Encoding.ASCII.GetString(destination, 0, written));
    }

    [Fact]
    public void Format_EveryFailure_HasDescriptionOfQuotableAsciiThatFits()
    {
        foreach (var error in Enum.GetValues<JwtError>().Where(e => e is not (JwtError.None or JwtError.MissingToken)))
        {
            var description = BearerChallenge.Description(error).ToArray();
            Assert.NotEmpty(description);
            // RFC 6750 §3: %x20-21 / %x23-5B / %x5D-7E
            Assert.All(description, b => Assert.True(b is >= 0x20 and <= 0x7E and not (byte)'"' and not (byte)'\\', $"{error}: byte {b}"));
            var destination = new byte[BearerChallenge.MaxLength(0)];
            Assert.InRange(BearerChallenge.Format(error, default, destination), 40, destination.Length);
        }
    }

    [Theory]
    [InlineData("a\"b")]
    [InlineData("a\\b")]
    [InlineData("a\r\nb")]
    public void Format_RealmNeedingEscapes_Throws(string realm)
    {
        Assert.Throws<ArgumentException>(() => BearerChallenge.Format(JwtError.Expired, Encoding.ASCII.GetBytes(realm), new byte[256]));
    }

    [Fact]
    public void Format_AfterWarmUp_AllocatesNothing()
    {
        Span<byte> destination = stackalloc byte[BearerChallenge.MaxLength(3)];
        BearerChallenge.Format(JwtError.Expired, "api"u8, destination);
        long before = GC.GetAllocatedBytesForCurrentThread();
        int total = 0;
        for (int i = 0; i < 1000; i++)
        {
            total += BearerChallenge.Format((JwtError)(i % 13), "api"u8, destination);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(total > 0);
    }
}
