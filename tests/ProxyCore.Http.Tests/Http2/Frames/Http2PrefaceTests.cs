using System.Text;
using ProxyCore.Http.Http2;
using ProxyCore.Http.Tests.Http1;

namespace ProxyCore.Http.Tests.Http2.Frames;

public class Http2PrefaceTests
{
    private static readonly byte[] Preface = Encoding.ASCII.GetBytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

    [Fact]
    public void ClientPreface_IsTheRfc9113String()
    {
        // RFC 9113 §3.4: 0x505249202a20485454502f322e300d0a0d0a534d0d0a0d0a.
        Assert.Equal("505249202A20485454502F322E300D0A0D0A534D0D0A0D0A", Convert.ToHexString(Http2Preface.ClientPreface));
        Assert.Equal(Http2Preface.Length, Http2Preface.ClientPreface.Length);
    }

    [Fact]
    public void Check_WholePrefaceThenSettings_MatchConsumesOnlyThePreface()
    {
        var input = Preface.Concat(new byte[] { 0, 0, 0, 4, 0, 0, 0, 0, 0 }).ToArray();
        for (int cut = 0; cut <= input.Length; cut++)
        {
            var buffer = TestBuffers.Split(input, cut);
            Assert.Equal(Http2PrefaceStatus.Match, Http2Preface.Check(buffer, out var consumed));
            Assert.Equal(Http2Preface.Length, TestBuffers.Offset(buffer, consumed));
        }
        Assert.Equal(Http2PrefaceStatus.Match, Http2Preface.Check(TestBuffers.Bytewise(input), out _));
    }

    [Fact]
    public void Check_EveryTruncation_IncompleteConsumesNothing()
    {
        for (int length = 0; length < Preface.Length; length++)
        {
            var prefix = Preface.AsSpan(0, length).ToArray();
            foreach (var buffer in new[] { TestBuffers.Single(prefix), TestBuffers.Bytewise(prefix) })
            {
                Assert.Equal(Http2PrefaceStatus.Incomplete, Http2Preface.Check(buffer, out var consumed));
                Assert.Equal(0, TestBuffers.Offset(buffer, consumed));
            }
        }
    }

    [Fact]
    public void Check_AnyByteWrong_MismatchAsSoonAsItArrives()
    {
        for (int i = 0; i < Preface.Length; i++)
        {
            var bad = (byte[])Preface.Clone();
            bad[i] ^= 0x20;
            var prefix = bad.AsSpan(0, i + 1).ToArray();
            Assert.Equal(Http2PrefaceStatus.Mismatch, Http2Preface.Check(TestBuffers.Single(prefix), out _));
            Assert.Equal(Http2PrefaceStatus.Mismatch, Http2Preface.Check(TestBuffers.Bytewise(bad), out _));
            Assert.Equal(Http2PrefaceStatus.Mismatch, Http2Preface.Check(TestBuffers.Single(bad), out var consumed));
            Assert.Equal(0, TestBuffers.Offset(TestBuffers.Single(bad), consumed));
        }
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\n\r\n")]
    [InlineData("PRI * HTTP/1.1\r\n")]
    [InlineData("G")]
    public void Check_Http1Request_Mismatch(string input)
    {
        Assert.Equal(Http2PrefaceStatus.Mismatch, Http2Preface.Check(TestBuffers.Single(Encoding.ASCII.GetBytes(input)), out _));
    }
}
