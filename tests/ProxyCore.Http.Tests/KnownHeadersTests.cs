using System.Text;

namespace ProxyCore.Http.Tests;

/// <summary>The word-at-a-time name compare must give exactly what Ascii.EqualsIgnoreCase gives.</summary>
public class KnownHeadersTests
{
    private static readonly (string Name, KnownHeader Id)[] s_names =
    [
        ("te", KnownHeader.TE), ("via", KnownHeader.Via), ("host", KnownHeader.Host), ("date", KnownHeader.Date),
        ("expect", KnownHeader.Expect), ("cookie", KnownHeader.Cookie), ("server", KnownHeader.Server),
        ("trailer", KnownHeader.Trailer), ("upgrade", KnownHeader.Upgrade), ("forwarded", KnownHeader.Forwarded),
        ("connection", KnownHeader.Connection), ("keep-alive", KnownHeader.KeepAlive), ("traceparent", KnownHeader.TraceParent),
        ("content-type", KnownHeader.ContentType), ("authorization", KnownHeader.Authorization),
        ("content-length", KnownHeader.ContentLength), ("x-forwarded-for", KnownHeader.XForwardedFor),
        ("accept-encoding", KnownHeader.AcceptEncoding), ("x-forwarded-host", KnownHeader.XForwardedHost),
        ("proxy-connection", KnownHeader.ProxyConnection), ("content-encoding", KnownHeader.ContentEncoding),
        ("transfer-encoding", KnownHeader.TransferEncoding), ("x-forwarded-proto", KnownHeader.XForwardedProto),
        ("proxy-authenticate", KnownHeader.ProxyAuthenticate), ("proxy-authorization", KnownHeader.ProxyAuthorization),
    ];

    private static KnownHeader Reference(ReadOnlySpan<byte> name)
    {
        foreach (var (known, id) in s_names)
        {
            if (Ascii.EqualsIgnoreCase(name, Encoding.ASCII.GetBytes(known)))
            {
                return id;
            }
        }
        return KnownHeader.Other;
    }

    [Fact]
    public void EveryKnownNameIsClassifiedInAnyCase()
    {
        Assert.Equal(Enum.GetValues<KnownHeader>().Length - 1, s_names.Length); // the table above covers the enum
        foreach (var (name, id) in s_names)
        {
            var mixed = new StringBuilder();
            for (int i = 0; i < name.Length; i++)
            {
                mixed.Append(i % 2 == 0 ? char.ToUpperInvariant(name[i]) : name[i]);
            }
            Assert.Equal(id, KnownHeaders.Classify(Encoding.ASCII.GetBytes(name)));
            Assert.Equal(id, KnownHeaders.Classify(Encoding.ASCII.GetBytes(name.ToUpperInvariant())));
            Assert.Equal(id, KnownHeaders.Classify(Encoding.ASCII.GetBytes(mixed.ToString())));
        }
    }

    [Fact]
    public void EveryOneByteChangeAgreesWithAsciiEqualsIgnoreCase()
    {
        // Each position of each name replaced by every byte value: the CR that ORs into a '-', the 0x20 flip of a
        // '-' or a digit, bytes over 0x7F, the other case of a letter.
        foreach (var (name, _) in s_names)
        {
            byte[] bytes = Encoding.ASCII.GetBytes(name);
            for (int i = 0; i < bytes.Length; i++)
            {
                byte original = bytes[i];
                for (int b = 0; b < 256; b++)
                {
                    bytes[i] = (byte)b;
                    Assert.True(Reference(bytes) == KnownHeaders.Classify(bytes), $"{name} with byte {i} = 0x{b:x2}");
                }
                bytes[i] = original;
            }
        }
    }

    [Theory]
    [InlineData("", "", true)]
    [InlineData("a", "", false)]
    [InlineData("C", "c", true)]
    [InlineData("-", "c", false)]
    [InlineData("close", "close", true)]
    [InlineData("CLOSE", "close", true)]
    [InlineData("closed", "close", false)]
    [InlineData("clos", "close", false)]
    [InlineData("Keep-Alive", "keep-alive", true)]
    [InlineData("Keep\rAlive", "keep-alive", false)]
    [InlineData("100-Continue", "100-continue", true)]
    [InlineData("100-continuE", "100-continue", true)]
    [InlineData("\u0011\u0010\u0010-continue", "100-continue", false)]
    [InlineData("100\rcontinue", "100-continue", false)]
    [InlineData("chunked", "chunked", true)]
    [InlineData("chunkee", "chunked", false)]
    [InlineData("Xhunked", "chunked", false)]
    public void EqualsLowercaseIsAsciiEqualsIgnoreCase(string value, string lower, bool expected)
    {
        var bytes = Encoding.Latin1.GetBytes(value);
        var literal = Encoding.ASCII.GetBytes(lower);
        Assert.Equal(expected, KnownHeaders.EqualsLowercase(bytes, literal));
        Assert.Equal(Ascii.EqualsIgnoreCase(bytes, literal), KnownHeaders.EqualsLowercase(bytes, literal));
    }
}
