using System.Text;
using ProxyCore.Proxy.Stages.Auth;

namespace ProxyCore.Proxy.Tests.Stages.Auth;

public sealed class JwtClaimsTests
{
    private const string Claims =
        "{\"sub\":\"user-42\",\"n\":12.5,\"admin\":true,\"none\":null,\"tenant\":\"a\\\"b\\nc\",\"obj\":{\"sub\":\"inner\",\"x\":[1,2]}," +
        "\"roles\":[\"r1\",\"r2\"],\"dup\":\"first\",\"dup\":\"last\",\"empty\":\"\",\"caf\\u00e9\":\"escaped-name\"}";

    [Theory]
    [InlineData("sub", "user-42")]
    [InlineData("n", "12.5")]
    [InlineData("admin", "true")]
    [InlineData("none", "null")]
    [InlineData("tenant", "a\\\"b\\nc")]                         // as written: escapes kept, no raw newline
    [InlineData("obj", "{\"sub\":\"inner\",\"x\":[1,2]}")]
    [InlineData("roles", "[\"r1\",\"r2\"]")]
    [InlineData("dup", "last")]                                 // RFC 7519 §4: the lexically last
    [InlineData("empty", "")]
    [InlineData("café", "escaped-name")]                        // the name is matched unescaped
    public void TryGetRawValue_TopLevelClaim_ValueAsWritten(string name, string expected)
    {
        Assert.True(JwtClaims.TryGetRawValue(Encoding.UTF8.GetBytes(Claims), Encoding.UTF8.GetBytes(name), out var value));
        Assert.Equal(expected, Encoding.UTF8.GetString(value));
    }

    [Theory]
    [InlineData(Claims, "x")]               // only inside a nested object
    [InlineData(Claims, "missing")]
    [InlineData(Claims, "SUB")]             // claim names are case-sensitive
    [InlineData("[\"sub\"]", "sub")]
    [InlineData("{\"sub\":", "sub")]
    [InlineData("", "sub")]
    public void TryGetRawValue_AbsentOrNotAnObject_False(string json, string name)
    {
        Assert.False(JwtClaims.TryGetRawValue(Encoding.UTF8.GetBytes(json), Encoding.UTF8.GetBytes(name), out _));
    }
}
