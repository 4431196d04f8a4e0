using System.Buffers;
using System.Text;
using ProxyCore.Http.Http2.Hpack;

namespace ProxyCore.Http.Tests.Http2.Hpack;

/// <summary>RFC 7541 Appendix C: the examples, each block decoded in sequence with one decoder, with the table size after each.</summary>
public class HpackRfcExamplesTests
{
    private static void DecodeSequence(int tableSize, params (string Wire, string[] Fields, int TableSize)[] blocks)
    {
        var decoder = new HpackDecoder(tableSize);
        var head = new RequestHead();
        foreach (var (wire, fields, size) in blocks)
        {
            head.Reset();
            decoder.Decode(Convert.FromHexString(wire), endHeaders: true, head);
            Assert.Equal(fields, HpackStories.Fields(head));
            Assert.Equal(size, decoder.DynamicTableSize);
        }
    }

    [Fact]
    public void Decode_C2_1_LiteralWithIndexing_AddsEntry() =>
        DecodeSequence(4096, ("400a637573746f6d2d6b65790d637573746f6d2d686561646572", ["custom-key: custom-header"], 55));

    [Fact]
    public void Decode_C2_2_LiteralWithoutIndexing_LeavesTableEmpty() =>
        DecodeSequence(4096, ("040c2f73616d706c652f70617468", [":path: /sample/path"], 0));

    [Fact]
    public void Decode_C2_3_LiteralNeverIndexed_FlagsFieldAndLeavesTableEmpty()
    {
        DecodeSequence(4096, ("100870617373776f726406736563726574", ["password: secret"], 0));
        var handler = new RecordingHandler();
        new HpackDecoder().Decode(Convert.FromHexString("100870617373776f726406736563726574"), true, new RequestHead(), ref handler);
        Assert.Equal([true], handler.NeverIndexed);
    }

    [Fact]
    public void Decode_C2_4_Indexed_ReadsStaticTable() =>
        DecodeSequence(4096, ("82", [":method: GET"], 0));

    private static readonly string[] C3Request1 = [":method: GET", ":scheme: http", ":path: /", ":authority: www.example.com"];
    private static readonly string[] C3Request2 = [.. C3Request1, "cache-control: no-cache"];
    private static readonly string[] C3Request3 = [":method: GET", ":scheme: https", ":path: /index.html", ":authority: www.example.com", "custom-key: custom-value"];

    [Fact]
    public void Decode_C3_RequestsWithoutHuffman_MatchRfc() => DecodeSequence(4096,
        ("828684410f7777772e6578616d706c652e636f6d", C3Request1, 57),
        ("828684be58086e6f2d6361636865", C3Request2, 110),
        ("828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565", C3Request3, 164));

    private const string C4Wire1 = "828684418cf1e3c2e5f23a6ba0ab90f4ff";
    private const string C4Wire2 = "828684be5886a8eb10649cbf";
    private const string C4Wire3 = "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf";

    [Fact]
    public void Decode_C4_RequestsWithHuffman_MatchRfc() => DecodeSequence(4096,
        (C4Wire1, C3Request1, 57), (C4Wire2, C3Request2, 110), (C4Wire3, C3Request3, 164));

    private static readonly string[] C5Response1 = [":status: 302", "cache-control: private", "date: Mon, 21 Oct 2013 20:13:21 GMT", "location: https://www.example.com"];
    private static readonly string[] C5Response2 = [":status: 307", "cache-control: private", "date: Mon, 21 Oct 2013 20:13:21 GMT", "location: https://www.example.com"];
    private static readonly string[] C5Response3 = [":status: 200", "cache-control: private", "date: Mon, 21 Oct 2013 20:13:22 GMT", "location: https://www.example.com", "content-encoding: gzip", "set-cookie: foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"];

    /// <summary>C.5 and C.6 run with a 256-byte table, so entries are evicted along the way.</summary>
    [Fact]
    public void Decode_C5_ResponsesWithoutHuffman_EvictAsRfc() => DecodeSequence(256,
        ("4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d", C5Response1, 222),
        ("4803333037c1c0bf", C5Response2, 222),
        ("88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31", C5Response3, 215));

    [Fact]
    public void Decode_C6_ResponsesWithHuffman_EvictAsRfc() => DecodeSequence(256,
        ("488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3", C5Response1, 222),
        ("4883640effc1c0bf", C5Response2, 222),
        ("88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007", C5Response3, 215));

    /// <summary>Our encoder's choices coincide with the RFC's on C.4 (static full and name matches, incremental indexing, Huffman), so the bytes must too.</summary>
    [Fact]
    public void Encode_C4_Requests_ProducesRfcBytes()
    {
        var encoder = new HpackEncoder();
        var output = new ArrayBufferWriter<byte>();
        foreach (var (fields, wire) in new[] { (C3Request1, C4Wire1), (C3Request2, C4Wire2), (C3Request3, C4Wire3) })
        {
            output.ResetWrittenCount();
            encoder.BeginBlock(output);
            foreach (var field in fields)
            {
                int colon = field.IndexOf(": ", 1, StringComparison.Ordinal);
                encoder.Encode(Encoding.ASCII.GetBytes(field[..colon]), Encoding.ASCII.GetBytes(field[(colon + 2)..]), output);
            }
            Assert.Equal(wire, Convert.ToHexStringLower(output.WrittenSpan));
        }
        Assert.Equal(164, encoder.DynamicTableSize);
    }

    internal struct RecordingHandler : IHpackFieldHandler
    {
        public List<bool> NeverIndexed;
        public List<HpackPseudoHeader> Pseudo;

        public void OnField(HttpHead head, in HpackField field)
        {
            (NeverIndexed ??= []).Add(field.NeverIndexed);
            (Pseudo ??= []).Add(field.Pseudo);
            head.AddHeader(field.Name, field.Value, KnownHeader.Other);
        }
    }
}
