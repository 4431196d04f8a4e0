using System.Text;

namespace ProxyCore.Http.Tests;

/// <summary>
/// KnownHeaders.Classify compares whole words under a per-byte case mask; these pin that it matches exactly the
/// names it knows, in any letter case, and nothing that differs from one in a single byte.
/// </summary>
public class KnownHeadersTests
{
    public static readonly TheoryData<string, KnownHeader> Names = new()
    {
        { "te", KnownHeader.TE }, { "via", KnownHeader.Via }, { "host", KnownHeader.Host }, { "date", KnownHeader.Date },
        { "expect", KnownHeader.Expect }, { "cookie", KnownHeader.Cookie }, { "server", KnownHeader.Server },
        { "trailer", KnownHeader.Trailer }, { "upgrade", KnownHeader.Upgrade }, { "forwarded", KnownHeader.Forwarded },
        { "connection", KnownHeader.Connection }, { "keep-alive", KnownHeader.KeepAlive },
        { "traceparent", KnownHeader.TraceParent }, { "content-type", KnownHeader.ContentType },
        { "authorization", KnownHeader.Authorization }, { "content-length", KnownHeader.ContentLength },
        { "x-forwarded-for", KnownHeader.XForwardedFor }, { "accept-encoding", KnownHeader.AcceptEncoding },
        { "x-forwarded-host", KnownHeader.XForwardedHost }, { "proxy-connection", KnownHeader.ProxyConnection },
        { "content-encoding", KnownHeader.ContentEncoding }, { "transfer-encoding", KnownHeader.TransferEncoding },
        { "x-forwarded-proto", KnownHeader.XForwardedProto }, { "proxy-authenticate", KnownHeader.ProxyAuthenticate },
        { "proxy-authorization", KnownHeader.ProxyAuthorization },
    };

    [Theory]
    [MemberData(nameof(Names))]
    public void KnownName_InAnyLetterCase_IsClassified(string name, KnownHeader expected)
    {
        Assert.Equal(expected, Classify(name));
        Assert.Equal(expected, Classify(name.ToUpperInvariant()));
        // Alternate case, both phases.
        var mixed = new StringBuilder();
        for (int i = 0; i < name.Length; i++)
        {
            mixed.Append(i % 2 == 0 ? char.ToUpperInvariant(name[i]) : name[i]);
        }
        Assert.Equal(expected, Classify(mixed.ToString()));
        Assert.Equal(expected, Classify(mixed.ToString().ToLowerInvariant()));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void KnownName_WithOneByteChanged_IsOther(string name, KnownHeader expected)
    {
        _ = expected;
        byte[] original = Encoding.ASCII.GetBytes(name);
        for (int i = 0; i < original.Length; i++)
        {
            // Every byte value except the name's own byte in either case: catches a position the words or masks miss,
            // and the bytes a careless case fold would let through ('\r' for '-' under |0x20, '@' for '`', '[' for '{').
            for (int value = 0; value < 256; value++)
            {
                byte own = original[i];
                if (value == own || (char.IsAsciiLetter((char)own) && (value | 0x20) == own))
                {
                    continue;
                }
                byte[] changed = (byte[])original.Clone();
                changed[i] = (byte)value;
                Assert.True(KnownHeaders.Classify(changed) == KnownHeader.Other, $"'{name}' with byte {i} = 0x{value:x2} was classified");
            }
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("t")]
    [InlineData("x")]
    [InlineData("hos")]
    [InlineData("hostx")]
    [InlineData("xhost")]
    [InlineData("content-lengthx")]
    [InlineData("proxy-authorizationx")]
    [InlineData("proxy-authorization-proxy-authorization")]
    [InlineData("accept")]
    [InlineData("x-request-id")]
    public void OtherNames_AreOther(string name) => Assert.Equal(KnownHeader.Other, Classify(name));

    private static KnownHeader Classify(string name) => KnownHeaders.Classify(Encoding.ASCII.GetBytes(name));
}
