using System.Buffers;
using System.Text;
using ProxyCore.Http.Http2.Hpack;

namespace ProxyCore.Http.Tests.Http2.Hpack;

public class HpackEncoderTests
{
    private static byte[] B(string s) => Encoding.ASCII.GetBytes(s);

    private static (byte[] Wire, HpackRfcExamplesTests.RecordingHandler Decoded, RequestHead Head) EncodeOne(HpackEncoder encoder, HpackDecoder decoder,
        string name, string value, HpackIndexing indexing = HpackIndexing.Auto)
    {
        var output = new ArrayBufferWriter<byte>();
        encoder.BeginBlock(output);
        encoder.Encode(B(name), B(value), output, indexing);
        var head = new RequestHead();
        var handler = new HpackRfcExamplesTests.RecordingHandler();
        decoder.Decode(output.WrittenSpan, true, head, ref handler);
        return (output.WrittenSpan.ToArray(), handler, head);
    }

    public static TheoryData<string, string, bool> Sensitive => new()
    {
        { "authorization", "Bearer abc.def", true },
        { "proxy-authorization", "Basic dXNlcjpwYXNz", true },
        { "cookie", "sid=42", true },
        { "cookie", "session=0123456789abcdefghij", false },
        { "x-custom", "v", false },
    };

    [Theory]
    [MemberData(nameof(Sensitive))]
    public void Encode_SensitiveField_NeverIndexedAndKeptOutOfTable(string name, string value, bool neverIndexed)
    {
        var encoder = new HpackEncoder();
        var decoder = new HpackDecoder();
        var (wire, decoded, head) = EncodeOne(encoder, decoder, name, value);
        Assert.Equal([neverIndexed], decoded.NeverIndexed);
        Assert.Equal(neverIndexed ? 0x10 : 0x40, wire[0] & 0xF0 & (neverIndexed ? 0xF0 : 0xC0));
        Assert.Equal(neverIndexed ? 0 : 1, encoder.DynamicTableCount);
        Assert.Equal([$"{name}: {value}"], HpackStories.Fields(head));
    }

    [Fact]
    public void Encode_SameFieldTwice_SecondIsOneIndexByte()
    {
        var encoder = new HpackEncoder();
        var decoder = new HpackDecoder();
        EncodeOne(encoder, decoder, "x-request-id", "abc");
        var (wire, _, head) = EncodeOne(encoder, decoder, "x-request-id", "abc");
        Assert.Equal([0xBE], wire);
        Assert.Equal(["x-request-id: abc"], HpackStories.Fields(head));
        // Same name, new value: the name is indexed from the dynamic table (62).
        (wire, _, _) = EncodeOne(encoder, decoder, "x-request-id", "xyz", HpackIndexing.WithoutIndexing);
        Assert.Equal(new byte[] { 0x0F, 0x2F }, wire[..2]);
    }

    [Fact]
    public void Encode_UppercaseName_Lowercased()
    {
        var encoder = new HpackEncoder();
        var decoder = new HpackDecoder();
        var (wire, _, head) = EncodeOne(encoder, decoder, "Content-Type", "text/plain");
        Assert.Equal(["content-type: text/plain"], HpackStories.Fields(head));
        Assert.Equal(0x40 | 31, wire[0]); // static name 31, content-type
        (_, _, head) = EncodeOne(encoder, decoder, "X-" + new string('A', 300), "v");
        Assert.Equal(["x-" + new string('a', 300) + ": v"], HpackStories.Fields(head));
    }

    [Fact]
    public void Encode_StaticFullMatch_OneByte()
    {
        var encoder = new HpackEncoder();
        var output = new ArrayBufferWriter<byte>();
        encoder.Encode(":status"u8, "404"u8, output);
        encoder.Encode("accept-encoding"u8, "gzip, deflate"u8, output);
        Assert.Equal("8d90", Convert.ToHexStringLower(output.WrittenSpan));
    }

    [Fact]
    public void Encode_HuffmanOnlyWhenShorter()
    {
        var encoder = new HpackEncoder();
        var output = new ArrayBufferWriter<byte>();
        // Bytes with 28-30 bit codes are far longer in Huffman: sent raw (H bit clear).
        encoder.Encode("x-bin"u8, "\u0001\u0002\u0003"u8, output, HpackIndexing.WithoutIndexing);
        var wire = output.WrittenSpan.ToArray();
        Assert.Equal(0x00, wire[^4] & 0x80);
        Assert.Equal(3, wire[^4]);
    }

    [Fact]
    public void Encode_EntryOverThreeQuartersOfTable_NotIndexed()
    {
        var encoder = new HpackEncoder();
        var decoder = new HpackDecoder();
        EncodeOne(encoder, decoder, "x-big", new string('v', 3100));
        Assert.Equal(0, encoder.DynamicTableCount);
        EncodeOne(encoder, decoder, "x-big", new string('v', 3000));
        Assert.Equal(1, encoder.DynamicTableCount);
    }

    [Fact]
    public void BeginBlock_PeerLoweredThenRaised_EmitsMinimumThenFinal()
    {
        var encoder = new HpackEncoder();
        var decoder = new HpackDecoder();
        EncodeOne(encoder, decoder, "x-a", "1");
        encoder.SetMaxDynamicTableSize(0);
        encoder.SetMaxDynamicTableSize(2048);
        decoder.SetMaxDynamicTableSize(0);
        decoder.SetMaxDynamicTableSize(2048);
        var (wire, _, head) = EncodeOne(encoder, decoder, "x-b", "2");
        // 001 00000 (0), then 001 11111 + 2017 = 2048.
        Assert.Equal("203fe10f", Convert.ToHexStringLower(wire.AsSpan(0, 4)));
        Assert.Equal(["x-b: 2"], HpackStories.Fields(head));
        Assert.Equal(2048, encoder.DynamicTableMaxSize);
        Assert.Equal(1, decoder.DynamicTableCount);
    }

    [Fact]
    public void Constructor_LimitBelowDefault_AnnouncedInFirstBlock()
    {
        var encoder = new HpackEncoder(maxDynamicTableSize: 100);
        var decoder = new HpackDecoder();
        var (wire, _, _) = EncodeOne(encoder, decoder, "x-a", "1");
        Assert.Equal(0x3F, wire[0]);
        Assert.Equal(100, decoder.DynamicTableMaxSize);
    }

    [Fact]
    public void TryEncode_DestinationTooSmall_WritesNothingAndKeepsTable()
    {
        var encoder = new HpackEncoder();
        var destination = new byte[5];
        Assert.False(encoder.TryEncode("x-long-name"u8, "value"u8, destination, out int written));
        Assert.Equal(0, written);
        Assert.Equal(0, encoder.DynamicTableCount);
        Assert.True(encoder.TryEncode("x-long-name"u8, "value"u8, new byte[64], out written));
        Assert.Equal(1, encoder.DynamicTableCount);
    }

    [Fact]
    public void Encode_ManyFields_EvictsInStepWithDecoder()
    {
        var encoder = new HpackEncoder(512);
        var decoder = new HpackDecoder(512);
        for (int i = 0; i < 200; i++)
        {
            var (_, _, head) = EncodeOne(encoder, decoder, $"x-field-{i % 37}", $"value-{i % 11}");
            Assert.Equal([$"x-field-{i % 37}: value-{i % 11}"], HpackStories.Fields(head));
            Assert.Equal(encoder.DynamicTableSize, decoder.DynamicTableSize);
            Assert.True(decoder.DynamicTableSize <= 512);
        }
    }
}

public class HpackResetTests
{
    /// <summary>After Reset both sides start over (empty tables), so a pooled pair serves a new connection.</summary>
    [Fact]
    public void Reset_EncoderAndDecoder_StartOverInStep()
    {
        var encoder = new HpackEncoder();
        var decoder = new HpackDecoder();
        var output = new ArrayBufferWriter<byte>();
        var head = new RequestHead();
        for (int round = 0; round < 2; round++)
        {
            output.ResetWrittenCount();
            encoder.BeginBlock(output);
            encoder.Encode("x-a"u8, "1"u8, output);
            Assert.Equal(0x40, output.WrittenSpan[0]); // a literal each round: the table was emptied
            head.Reset();
            decoder.Decode(output.WrittenSpan, true, head);
            Assert.Equal(1, decoder.DynamicTableCount);
            encoder.Reset();
            decoder.Reset();
            Assert.Equal(0, encoder.DynamicTableCount);
            Assert.Equal(0, decoder.DynamicTableCount);
        }
    }
}
