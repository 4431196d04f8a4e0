using ProxyCore.Http.Http2.Hpack;

namespace ProxyCore.Http.Tests.Http2.Hpack;

public class HpackHuffmanTests
{
    /// <summary>Codes rebuilt from the bit lengths, checked against RFC 7541 Appendix B rows.</summary>
    [Theory]
    [InlineData(0, 0x1ff8u, 13)]
    [InlineData(10, 0x3ffffffcu, 30)]
    [InlineData(' ', 0x14u, 6)]
    [InlineData('0', 0x0u, 5)]
    [InlineData('a', 0x3u, 5)]
    [InlineData('t', 0x9u, 5)]
    [InlineData('A', 0x21u, 6)]
    [InlineData(':', 0x5cu, 7)]
    [InlineData('~', 0x1ffdu, 13)]
    [InlineData(127, 0xffffffcu, 28)]
    [InlineData(255, 0x3ffffeeu, 26)]
    [InlineData(256, 0x3fffffffu, 30)]
    public void Code_Symbol_MatchesAppendixB(int symbol, uint code, int bits)
    {
        Assert.Equal(code, HpackHuffman.Code(symbol));
        Assert.Equal(bits, HpackHuffman.BitLength(symbol));
    }

    [Fact]
    public void EncodeDecode_EveryByteValue_RoundTrips()
    {
        var all = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        AssertRoundTrip(all);
        foreach (var b in all)
        {
            AssertRoundTrip([b]);
        }
    }

    [Fact]
    public void EncodeDecode_RandomStrings_RoundTripInEveryPieceSize()
    {
        var random = new Random(7541);
        for (int n = 0; n < 300; n++)
        {
            var data = new byte[random.Next(0, 200)];
            random.NextBytes(data);
            AssertRoundTrip(data);
        }
    }

    private static void AssertRoundTrip(byte[] data)
    {
        var encoded = new byte[HpackHuffman.EncodedLength(data)];
        Assert.Equal(encoded.Length, HpackHuffman.Encode(data, encoded));
        for (int piece = 1; piece <= Math.Max(1, encoded.Length); piece *= 3)
        {
            var decoded = new byte[data.Length];
            int state = 0;
            int written = 0;
            for (int i = 0; i < encoded.Length; i += piece)
            {
                var chunk = encoded.AsSpan(i, Math.Min(piece, encoded.Length - i));
                int n = HpackHuffman.Decode(chunk, decoded.AsSpan(written), ref state);
                Assert.True(n >= 0);
                written += n;
            }
            Assert.True(HpackHuffman.IsValidEnd(state));
            Assert.Equal(data, decoded.AsSpan(0, written).ToArray());
        }
    }

    [Fact]
    public void Decode_DestinationFull_ReturnsMinusOne()
    {
        var encoded = new byte[HpackHuffman.EncodedLength("abc"u8)];
        HpackHuffman.Encode("abc"u8, encoded);
        int state = 0;
        Assert.Equal(-1, HpackHuffman.Decode(encoded, new byte[2], ref state));
    }

    [Fact]
    public void MinDecodedLength_NeverAboveActual()
    {
        // The longest codes (30 bits) give the fewest symbols per byte.
        var worst = Enumerable.Repeat((byte)10, 50).ToArray();
        int encoded = HpackHuffman.EncodedLength(worst);
        Assert.True(HpackHuffman.MinDecodedLength(encoded) <= worst.Length);
        var best = Enumerable.Repeat((byte)'0', 50).ToArray();
        Assert.True(HpackHuffman.MaxDecodedLength(HpackHuffman.EncodedLength(best)) >= best.Length);
    }
}

public class HpackIntegerTests
{
    /// <summary>RFC 7541 C.1.1-C.1.3, plus the prefix boundaries.</summary>
    [Theory]
    [InlineData(10, 5, "0a")]
    [InlineData(1337, 5, "1f9a0a")]
    [InlineData(42, 8, "2a")]
    [InlineData(30, 5, "1e")]
    [InlineData(31, 5, "1f00")]
    [InlineData(127, 7, "7f00")]
    [InlineData(128 + 126, 7, "7f7f")]
    [InlineData(128 + 127, 7, "7f8001")]
    [InlineData(int.MaxValue, 7, "7f80ffffff07")]
    public void Write_Value_MatchesRfcEncoding(int value, int prefix, string hex)
    {
        var buffer = new byte[8];
        int n = HpackInteger.Write(buffer, value, prefix, 0);
        Assert.Equal(hex, Convert.ToHexStringLower(buffer.AsSpan(0, n)));
        Assert.Equal(n, HpackInteger.Length(value, prefix));

        // And back, from every split of the continuation bytes.
        if (n > 1)
        {
            for (int cut = 1; cut < n; cut++)
            {
                int v = (1 << prefix) - 1, shift = 0, position = 1;
                var first = buffer.AsSpan(0, cut);
                bool done = HpackInteger.TryContinue(first, ref position, ref v, ref shift);
                Assert.Equal(cut == n, done);
                position = 0;
                Assert.True(HpackInteger.TryContinue(buffer.AsSpan(cut, n - cut), ref position, ref v, ref shift) || cut == n);
                Assert.Equal(value, v);
            }
        }
    }
}
