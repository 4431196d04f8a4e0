using System.Buffers;
using ProxyCore.Http.Http2.Hpack;

namespace ProxyCore.Http.Tests.Http2.Hpack;

/// <summary>Every way a block is refused, each an <see cref="HpackException"/> mapping to COMPRESSION_ERROR.</summary>
public class HpackDecoderErrorTests
{
    private static HpackError DecodeError(int maxHeaderListSize, params string[] fragments)
    {
        var decoder = new HpackDecoder(4096, maxHeaderListSize);
        var head = new RequestHead();
        var e = Assert.Throws<HpackException>(() =>
        {
            for (int i = 0; i < fragments.Length; i++)
            {
                decoder.Decode(Convert.FromHexString(fragments[i]), endHeaders: i == fragments.Length - 1, head);
            }
        });
        Assert.Equal(0x9u, e.Http2ErrorCode);
        return e.Error;
    }

    public static TheoryData<string, HpackError> SingleBlockErrors => new()
    {
        // RFC 7541 §6.1: index 0.
        { "80", HpackError.IndexZero },
        // Index 62 with an empty dynamic table; and as a literal's name index (01 111110).
        { "be", HpackError.IndexOutOfRange },
        { "7e", HpackError.IndexOutOfRange },
        { "0f30", HpackError.IndexOutOfRange },
        // The 62nd entry exists after one insertion, the 63rd does not.
        { "4001780179bebf", HpackError.IndexOutOfRange },
        // Integers past 31 bits; and endless zero continuation bytes.
        { "ffffffffff0f", HpackError.IntegerOverflow },
        { "ff80808080808001", HpackError.IntegerOverflow },
        { "3fe2ffffff0f", HpackError.IntegerOverflow },
        // §6.3: a size update to 4097 with the SETTINGS limit at 4096; 4096 itself is fine (second row decodes :method GET after it).
        { "3fe21f", HpackError.SizeUpdateTooLarge },
        // §4.2: a size update after a field.
        { "8220", HpackError.SizeUpdateNotAtBlockStart },
        // §5.2: EOS inside a string (32 one bits hold the 30-bit EOS), padding of zeros, padding of 11 bits.
        { "0084ffffffff", HpackError.HuffmanEos },
        { "048118", HpackError.HuffmanBadPadding },
        { "04821fff", HpackError.HuffmanBadPadding },
        { "0481ff", HpackError.HuffmanBadPadding },
        // END_HEADERS inside a representation: mid-integer, before a literal's name, mid-string, before a value.
        { "ff", HpackError.TruncatedBlock },
        { "40", HpackError.TruncatedBlock },
        { "408361", HpackError.TruncatedBlock },
        { "40016178", HpackError.TruncatedBlock },
        { "04", HpackError.TruncatedBlock },
        { "048561", HpackError.TruncatedBlock },
    };

    [Theory]
    [MemberData(nameof(SingleBlockErrors))]
    public void Decode_MalformedBlock_ThrowsCompressionError(string wire, HpackError expected)
    {
        Assert.Equal(expected, DecodeError(64 * 1024, wire));
    }

    [Fact]
    public void Decode_SizeUpdateToLimit_Accepted()
    {
        var decoder = new HpackDecoder();
        var head = new RequestHead();
        decoder.Decode(Convert.FromHexString("3fe11f82"), true, head);
        Assert.Equal(4096, decoder.DynamicTableMaxSize);
        Assert.Equal([":method: GET"], HpackStories.Fields(head));
    }

    [Fact]
    public void Decode_SizeUpdateInLaterFragmentAfterField_Throws()
    {
        Assert.Equal(HpackError.SizeUpdateNotAtBlockStart, DecodeError(64 * 1024, "82", "20"));
    }

    [Fact]
    public void Decode_SizeUpdateAtStartOfNextBlock_Accepted()
    {
        var decoder = new HpackDecoder();
        var head = new RequestHead();
        decoder.Decode(Convert.FromHexString("82"), true, head);
        decoder.Decode(Convert.FromHexString("2082"), true, head);
        Assert.Equal(0, decoder.DynamicTableMaxSize);
    }

    [Fact]
    public void Decode_LoweredSettingWithoutSizeUpdate_Throws()
    {
        var decoder = new HpackDecoder();
        var head = new RequestHead();
        decoder.Decode(Convert.FromHexString("400178017a"), true, head);
        decoder.SetMaxDynamicTableSize(100);
        var e = Assert.Throws<HpackException>(() => decoder.Decode(Convert.FromHexString("82"), true, head));
        Assert.Equal(HpackError.SizeUpdateMissing, e.Error);
    }

    [Fact]
    public void Decode_LoweredSettingThenSizeUpdate_EvictsAndContinues()
    {
        var decoder = new HpackDecoder();
        var head = new RequestHead();
        decoder.Decode(Convert.FromHexString("400178017a"), true, head);
        Assert.Equal(34, decoder.DynamicTableSize);
        decoder.SetMaxDynamicTableSize(33);
        // 001 11111 + 2 = 33: too small for the entry, which is evicted.
        decoder.Decode(Convert.FromHexString("3f0282"), true, head);
        Assert.Equal(0, decoder.DynamicTableCount);
        var e = Assert.Throws<HpackException>(() => decoder.Decode(Convert.FromHexString("3f03"), true, head));
        Assert.Equal(HpackError.SizeUpdateTooLarge, e.Error);
    }

    /// <summary>A 200-byte name against a 100-byte limit is refused from its length prefix; its bytes never arrive.</summary>
    [Fact]
    public void Decode_StringLongerThanRemainingLimit_RejectedFromLengthPrefix()
    {
        var decoder = new HpackDecoder(4096, maxHeaderListSize: 100);
        var head = new RequestHead();
        var e = Assert.Throws<HpackException>(() => decoder.Decode(Convert.FromHexString("007f49"), false, head));
        Assert.Equal(HpackError.HeaderListTooLarge, e.Error);
        Assert.Equal(0, head.ArenaUsed);
    }

    [Fact]
    public void Decode_HuffmanStringExpandingPastLimit_StoppedWhileDecoding()
    {
        // 60 bytes of Huffman '0' (5 bits each) decode to 96 bytes: over a 32 + 80 limit.
        var value = new string('0', 96);
        var encoded = new byte[HpackHuffman.EncodedLength("000"u8.ToArray()) * 40];
        int n = HpackHuffman.Encode(System.Text.Encoding.ASCII.GetBytes(value), encoded);
        var wire = new byte[] { 0x04, (byte)(0x80 | n) }.Concat(encoded.AsSpan(0, n).ToArray()).ToArray();
        var decoder = new HpackDecoder(4096, maxHeaderListSize: 32 + 5 + 80);
        var head = new RequestHead();
        var e = Assert.Throws<HpackException>(() => decoder.Decode(wire, true, head));
        Assert.Equal(HpackError.HeaderListTooLarge, e.Error);
    }

    [Fact]
    public void Decode_ListExactlyAtLimit_Accepted()
    {
        // ":method: GET" costs 32 + 7 + 3 = 42.
        var decoder = new HpackDecoder(4096, maxHeaderListSize: 84);
        var head = new RequestHead();
        decoder.Decode(Convert.FromHexString("8282"), true, head);
        Assert.Equal(2, head.HeaderCount);
        var e = Assert.Throws<HpackException>(() => decoder.Decode(Convert.FromHexString("828282"), true, head));
        Assert.Equal(HpackError.HeaderListTooLarge, e.Error);
    }

    /// <summary>
    /// The HPACK bomb: one 4,033-byte entry, then a block of 100,000 one-byte references to it (400 MB
    /// decoded). The default 64 KB limit stops it after 16 copies, before it costs memory.
    /// </summary>
    [Fact]
    public void Decode_HpackBomb_StoppedAtListLimit()
    {
        var decoder = new HpackDecoder();
        var head = new RequestHead();
        var insert = new ArrayBufferWriter<byte>();
        insert.Write(Convert.FromHexString("4001787f"));         // literal with indexing, name "x", value length 127 + ...
        insert.Write(Convert.FromHexString("a11e"));             // ... 0x21 + (0x1e << 7) = 3873, + 127 = 4000 bytes
        insert.Write(Enumerable.Repeat((byte)'a', 4000).ToArray());
        decoder.Decode(insert.WrittenSpan, true, head);
        Assert.Equal(1, decoder.DynamicTableCount);

        head.Reset();
        var bomb = Enumerable.Repeat((byte)0xBE, 100_000).ToArray();
        var e = Assert.Throws<HpackException>(() => decoder.Decode(bomb, true, head));
        Assert.Equal(HpackError.HeaderListTooLarge, e.Error);
        Assert.Equal(16, head.HeaderCount);
        Assert.True(head.ArenaUsed <= 64 * 1024, $"arena grew to {head.ArenaUsed}");
    }

    [Fact]
    public void Decode_AfterEveryStoryCaseTruncated_PrefixLadderThrowsTruncated()
    {
        // Every proper prefix of a real block (C.6.3, Huffman and indexed fields) ends mid-representation
        // or on a boundary; with END_HEADERS the former must be TruncatedBlock and the latter must decode.
        var wire = Convert.FromHexString("488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3");
        int[] boundaries = [0, 4, 11, 35];
        for (int length = 0; length < wire.Length; length++)
        {
            var decoder = new HpackDecoder(256);
            var head = new RequestHead();
            if (boundaries.Contains(length))
            {
                decoder.Decode(wire.AsSpan(0, length), true, head);
                continue;
            }
            var e = Assert.Throws<HpackException>(() => decoder.Decode(wire.AsSpan(0, length).ToArray(), true, head));
            Assert.Equal(HpackError.TruncatedBlock, e.Error);
        }
    }
}
