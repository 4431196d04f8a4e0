using System.Buffers;
using System.Text;
using ProxyCore.Http.Http1;
using static ProxyCore.Http.Tests.Http1.TestBuffers;

namespace ProxyCore.Http.Tests.Http1;

public class ChunkedDecoderTests
{
    public static readonly string[] ValidBodies =
    [
        "0\r\n\r\n",
        "5\r\nhello\r\n0\r\n\r\n",
        "1e\r\nall your base are belong to us\r\n0\r\n\r\n",
        "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n",
        "5;name=value\r\nhello\r\n6 ; a = \"q\\\"d;\" ; flag\r\n world\r\n0;last\r\n\r\n",
        "000004\r\nWiki\r\n0000\r\n\r\n",
        "4\r\nWiki\r\n0\r\ngrpc-status: 0\r\ngrpc-message:\tok \r\n\r\n",
    ];

    public static TheoryData<int> ValidBodyIndexes()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < ValidBodies.Length; i++)
        {
            data.Add(i);
        }
        return data;
    }

    private static string ExpectedPayload(string chunked)
    {
        // Independent reference decoder for well-formed input: sizes in hex, extensions after ';'.
        var sb = new StringBuilder();
        int pos = 0;
        while (true)
        {
            int eol = chunked.IndexOf("\r\n", pos, StringComparison.Ordinal);
            var sizeText = chunked[pos..eol];
            int cut = sizeText.IndexOfAny([';', ' ']);
            int size = Convert.ToInt32(cut < 0 ? sizeText : sizeText[..cut], 16);
            pos = eol + 2;
            if (size == 0)
            {
                return sb.ToString();
            }
            sb.Append(chunked, pos, size);
            pos += size + 2;
        }
    }

    [Theory]
    [MemberData(nameof(ValidBodyIndexes))]
    public void Read_WholeBody_DecodesPayloadAndConsumesAll(int index)
    {
        var input = Bytes(ValidBodies[index] + "NEXT");
        var outcome = ChunkedDriver.Run(input, [], trailers: null);

        Assert.Equal(ChunkedReadResult.Complete, outcome.Result);
        Assert.Equal(ExpectedPayload(ValidBodies[index]), Text(outcome.Body));
        Assert.Equal(input.Length - 4, outcome.Consumed);
    }

    [Theory]
    [MemberData(nameof(ValidBodyIndexes))]
    public void Read_SplitAtEveryOffset_DecodesIdentically(int index)
    {
        var input = Bytes(ValidBodies[index]);
        var expected = ExpectedPayload(ValidBodies[index]);
        for (int cut = 0; cut <= input.Length; cut++)
        {
            // Split as two deliveries, and as one delivery held in two segments.
            var delivered = ChunkedDriver.Run(input, [cut], trailers: null, segmentPerPiece: false);
            Assert.Equal(ChunkedReadResult.Complete, delivered.Result);
            Assert.Equal(expected, Text(delivered.Body));
            Assert.Equal(input.Length, delivered.Consumed);

            var decoder = new ChunkedDecoder();
            var body = new List<byte>();
            var buffer = Split(input, cut);
            ChunkedReadResult result;
            while ((result = decoder.Read(buffer, null, Http1Limits.Default, out var data, out var consumed, out _)) == ChunkedReadResult.Data)
            {
                body.AddRange(data.ToArray());
                buffer = buffer.Slice(consumed);
            }
            Assert.Equal(ChunkedReadResult.Complete, result);
            Assert.Equal(expected, Text(body.ToArray()));
        }
    }

    [Theory]
    [MemberData(nameof(ValidBodyIndexes))]
    public void Read_ByteByByte_DecodesIdentically(int index)
    {
        var input = Bytes(ValidBodies[index]);
        var everyByte = Enumerable.Range(1, input.Length).ToArray();

        var delivered = ChunkedDriver.Run(input, everyByte, trailers: null, segmentPerPiece: false);
        var segmented = ChunkedDriver.Run(input, everyByte, trailers: null, segmentPerPiece: true);

        Assert.Equal(ChunkedReadResult.Complete, delivered.Result);
        Assert.Equal(ExpectedPayload(ValidBodies[index]), Text(delivered.Body));
        Assert.Equal(ChunkedReadResult.Complete, segmented.Result);
        Assert.Equal(ExpectedPayload(ValidBodies[index]), Text(segmented.Body));
    }

    [Fact]
    public void Read_Trailers_AddedToHead()
    {
        var trailers = new ResponseHead();
        trailers.Reset();
        var input = Bytes("4\r\nWiki\r\n0\r\ngrpc-status: 0\r\ngrpc-message:\tok \r\n\r\n");
        var outcome = ChunkedDriver.Run(input, [7, 20, 21], trailers);

        Assert.Equal(ChunkedReadResult.Complete, outcome.Result);
        Assert.Equal(2, trailers.HeaderCount);
        Assert.Equal("grpc-status", Text(trailers.GetName(0)));
        Assert.Equal("0", Text(trailers.GetValue(0)));
        Assert.Equal("grpc-message", Text(trailers.GetName(1)));
        Assert.Equal("ok", Text(trailers.GetValue(1)));
    }

    [Fact]
    public void Read_DataLargerThanBuffer_ReturnsSlicesWithinChunk()
    {
        var input = Bytes("a\r\n0123456789\r\n0\r\n\r\n");
        var outcome = ChunkedDriver.Run(input, [5, 8, 10], trailers: null);

        Assert.Equal(ChunkedReadResult.Complete, outcome.Result);
        Assert.Equal("0123456789", Text(outcome.Body));
        Assert.Equal(4, outcome.DataCalls);
    }

    [Fact]
    public void Read_AfterComplete_StaysCompleteAndConsumesNothing()
    {
        var decoder = new ChunkedDecoder();
        var buffer = Single(Bytes("0\r\n\r\n"));
        Assert.Equal(ChunkedReadResult.Complete, decoder.Read(buffer, null, Http1Limits.Default, out _, out _, out _));
        Assert.True(decoder.IsComplete);

        var next = Single(Bytes("GET"));
        Assert.Equal(ChunkedReadResult.Complete, decoder.Read(next, null, Http1Limits.Default, out _, out var consumed, out _));
        Assert.Equal(next.Start, consumed);

        decoder.Reset();
        Assert.False(decoder.IsComplete);
    }

    [Theory]
    [InlineData("", 0)]
    [InlineData("5", 0)]
    [InlineData("5\r", 0)]
    [InlineData("5\r\nhel", 6)]
    [InlineData("5\r\nhello", 8)]
    [InlineData("5\r\nhello\r", 8)]
    [InlineData("5\r\nhello\r\n", 10)]
    [InlineData("5\r\nhello\r\n0\r\n", 13)]
    [InlineData("5\r\nhello\r\n0\r\nX: y\r\n", 19)]
    [InlineData("5\r\nhello\r\n0\r\nX: y\r\n\r", 19)]
    public void Read_Truncated_IncompleteAfterFramingConsumed(string raw, int consumed)
    {
        var outcome = ChunkedDriver.Run(Bytes(raw), [], trailers: null);

        Assert.Equal(ChunkedReadResult.Incomplete, outcome.Result);
        Assert.Equal(consumed, outcome.Consumed);
    }

    [Theory]
    [InlineData("\r\n", HttpParseError.InvalidChunkSize)]
    [InlineData("x\r\n", HttpParseError.InvalidChunkSize)]
    [InlineData("-1\r\n", HttpParseError.InvalidChunkSize)]
    [InlineData("+1\r\n", HttpParseError.InvalidChunkSize)]
    [InlineData("0x5\r\n", HttpParseError.InvalidChunkSize)]
    [InlineData("8000000000000000\r\n", HttpParseError.InvalidChunkSize)]
    [InlineData("fffffffffffffffff\r\n", HttpParseError.InvalidChunkSize)]
    [InlineData("5\n", HttpParseError.BareLF)]
    [InlineData("5\r\nhello\n0\r\n\r\n", HttpParseError.BareLF)]
    [InlineData("5\r\nhelloX\r\n0\r\n\r\n", HttpParseError.InvalidChunkTerminator)]
    [InlineData("5\r\nhello\rX0\r\n\r\n", HttpParseError.InvalidChunkTerminator)]
    [InlineData("5 \r\nhello\r\n0\r\n\r\n", HttpParseError.InvalidChunkExtension)]
    [InlineData("5;\r\nhello\r\n0\r\n\r\n", HttpParseError.InvalidChunkExtension)]
    [InlineData("5;a=\r\nhello\r\n0\r\n\r\n", HttpParseError.InvalidChunkExtension)]
    [InlineData("5;a=\"x\r\nhello\r\n0\r\n\r\n", HttpParseError.InvalidChunkExtension)]
    [InlineData("5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", HttpParseError.InvalidChunkExtension)]
    [InlineData("5;a\x00\r\nhello\r\n0\r\n\r\n", HttpParseError.InvalidChunkExtension)]
    [InlineData("5\rX\r\nhello\r\n0\r\n\r\n", HttpParseError.BareCR)]
    [InlineData("0\r\nX: a\n\r\n", HttpParseError.BareLF)]
    [InlineData("0\r\nX : a\r\n\r\n", HttpParseError.WhitespaceBeforeColon)]
    [InlineData("0\r\n a\r\n\r\n", HttpParseError.ObsFold)]
    [InlineData("0\r\nX: \x00\r\n\r\n", HttpParseError.InvalidHeaderValue)]
    [InlineData("0\r\n\n", HttpParseError.BareLF)]
    public void Read_InvalidFraming_ReturnsError(string raw, HttpParseError expected)
    {
        var input = Bytes(raw);
        var whole = ChunkedDriver.Run(input, [], trailers: new RequestHead());
        var bytewise = ChunkedDriver.Run(input, Enumerable.Range(1, input.Length).ToArray(), trailers: null);

        Assert.Equal(ChunkedReadResult.Error, whole.Result);
        Assert.Equal(expected, whole.Error);
        Assert.Equal(ChunkedReadResult.Error, bytewise.Result);
        Assert.Equal(expected, bytewise.Error);
    }

    [Fact]
    public void Read_LargestChunkSize_Accepted()
    {
        var decoder = new ChunkedDecoder();
        var buffer = Single(Bytes("7fffffffffffffff\r\nabc"));
        var result = decoder.Read(buffer, null, Http1Limits.Default, out var data, out _, out _);

        Assert.Equal(ChunkedReadResult.Data, result);
        Assert.Equal("abc", Text(data.ToArray()));
    }

    [Theory]
    [InlineData(16, 16, true, ChunkedReadResult.Data)]
    [InlineData(16, 17, true, ChunkedReadResult.Error)]
    [InlineData(16, 17, false, ChunkedReadResult.Incomplete)]
    [InlineData(16, 18, false, ChunkedReadResult.Error)]
    public void Read_ChunkLineLimit_EnforcedBeforeLineEnds(int limit, int lineLength, bool terminated, ChunkedReadResult expected)
    {
        // "5;aaa..." padded with an extension name to lineLength bytes (CRLF not counted).
        var line = "5;" + new string('a', lineLength - 2);
        var raw = terminated ? line + "\r\nhello" : line;
        var decoder = new ChunkedDecoder();
        var result = decoder.Read(Single(Bytes(raw)), null, new Http1Limits { MaxChunkLineBytes = limit }, out _, out _, out var error);

        Assert.Equal(expected, result);
        Assert.Equal(expected == ChunkedReadResult.Error ? HttpParseError.ChunkLineTooLong : HttpParseError.None, error);
    }

    [Theory]
    [InlineData(12, "0\r\nA: 123456\r\n\r\n", ChunkedReadResult.Complete)]
    [InlineData(12, "0\r\nA: 1234567\r\n\r\n", ChunkedReadResult.Complete)]
    [InlineData(12, "0\r\nA: 12345678\r\n\r\n", ChunkedReadResult.Error)]
    [InlineData(12, "0\r\nA: 1\r\nB: 2\r\n\r\n", ChunkedReadResult.Complete)]
    [InlineData(12, "0\r\nA: 12\r\nB: 34\r\n\r\n", ChunkedReadResult.Error)]
    [InlineData(12, "0\r\nA: 123456789", ChunkedReadResult.Error)]
    [InlineData(12, "0\r\nA: 1234", ChunkedReadResult.Incomplete)]
    public void Read_TrailerLimit_Enforced(int limit, string raw, ChunkedReadResult expected)
    {
        var limits = new Http1Limits { MaxTrailerBytes = limit };
        var outcome = ChunkedDriver.Run(Bytes(raw), [], trailers: null, limits);

        Assert.Equal(expected, outcome.Result);
        Assert.Equal(expected == ChunkedReadResult.Error ? HttpParseError.TrailersTooLarge : HttpParseError.None, outcome.Error);
    }
}
