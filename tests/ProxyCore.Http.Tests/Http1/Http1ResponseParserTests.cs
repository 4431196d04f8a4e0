using ProxyCore.Http.Http1;
using static ProxyCore.Http.Tests.Http1.TestBuffers;

namespace ProxyCore.Http.Tests.Http1;

public class Http1ResponseParserTests
{
    public static readonly string[] ValidResponses =
    [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n",
        "HTTP/1.1 204 No Content\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: grpc-status\r\n\r\n",
        "HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 500\r\nX: \xe9t\xe9\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    ];

    public static TheoryData<int> ValidResponseIndexes()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < ValidResponses.Length; i++)
        {
            data.Add(i);
        }
        return data;
    }

    [Fact]
    public void TryParseResponse_StatusLine_SetsStatusReasonVersionHeaders()
    {
        var input = Bytes("HTTP/1.1 404 Not Found Here\r\nContent-Length: 3\r\nServer: x\r\n\r\nabc");
        var (result, error, consumed, head) = ParseResponse(Single(input));

        Assert.Equal(HttpParseError.None, error);
        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal(input.Length - 3, consumed);
        Assert.Equal(404, head.StatusCode);
        Assert.Equal("Not Found Here", Text(head.Get(head.Reason)));
        Assert.Equal(HttpVersion.Http11, head.Version);
        Assert.Equal(BodyFraming.ContentLength, head.Framing);
        Assert.Equal(3, head.ContentLength);
        Assert.True(head.KeepAlive);
        Assert.Equal(2, head.HeaderCount);
        Assert.Equal(KnownHeader.Server, head.Headers[1].Id);
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", HttpMethod.Get, BodyFraming.ContentLength, true)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", HttpMethod.Get, BodyFraming.None, true)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", HttpMethod.Head, BodyFraming.None, true)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HttpMethod.Head, BodyFraming.None, true)]
    [InlineData("HTTP/1.1 100 Continue\r\n\r\n", HttpMethod.Post, BodyFraming.None, true)]
    [InlineData("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", HttpMethod.Get, BodyFraming.None, true)]
    [InlineData("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", HttpMethod.Get, BodyFraming.None, true)]
    [InlineData("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", HttpMethod.Get, BodyFraming.None, true)]
    [InlineData("HTTP/1.1 200 Connection established\r\n\r\n", HttpMethod.Connect, BodyFraming.None, true)]
    [InlineData("HTTP/1.1 407 Auth\r\nContent-Length: 2\r\n\r\n", HttpMethod.Connect, BodyFraming.ContentLength, true)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HttpMethod.Get, BodyFraming.Chunked, true)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", HttpMethod.Get, BodyFraming.Chunked, true)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", HttpMethod.Get, BodyFraming.Chunked, true)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", HttpMethod.Get, BodyFraming.CloseDelimited, false)]
    [InlineData("HTTP/1.1 200 OK\r\n\r\n", HttpMethod.Get, BodyFraming.CloseDelimited, false)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, deflate\r\n\r\n", HttpMethod.Get, BodyFraming.CloseDelimited, false)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n", HttpMethod.Get, BodyFraming.CloseDelimited, false)]
    [InlineData("\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", HttpMethod.Get, BodyFraming.ContentLength, true)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n", HttpMethod.Get, BodyFraming.ContentLength, true)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n", HttpMethod.Get, BodyFraming.ContentLength, true)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\n", HttpMethod.Get, BodyFraming.ContentLength, false)]
    [InlineData("HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\n", HttpMethod.Get, BodyFraming.ContentLength, false)]
    [InlineData("HTTP/1.0 200 OK\r\nContent-Length: 7\r\nConnection: keep-alive\r\n\r\n", HttpMethod.Get, BodyFraming.ContentLength, true)]
    public void TryParseResponse_FramingHeaders_SetFramingAndKeepAlive(string raw, HttpMethod requestMethod, BodyFraming framing, bool keepAlive)
    {
        var (result, error, _, head) = ParseResponse(Single(Bytes(raw)), requestMethod);

        Assert.Equal(HttpParseError.None, error);
        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal(framing, head.Framing);
        Assert.Equal(keepAlive, head.KeepAlive);
    }

    [Fact]
    public void TryParseResponse_WhitespaceBeforeColon_ToleratedAndNameTrimmed()
    {
        var (result, _, _, head) = ParseResponse(Single(Bytes("HTTP/1.1 200 OK\r\nContent-Length \t: 2\r\n\r\n")));

        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal("Content-Length", Text(head.GetName(0)));
        Assert.Equal(KnownHeader.ContentLength, head.Headers[0].Id);
        Assert.Equal(2, head.ContentLength);
    }

    [Fact]
    public void TryParseResponse_NoReasonPhrase_Tolerated()
    {
        var (result, _, _, head) = ParseResponse(Single(Bytes("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")));

        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal(200, head.StatusCode);
        Assert.True(head.Reason.IsEmpty);
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", HttpParseError.ContentLengthWithTransferEncoding)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", HttpParseError.MultipleContentLength)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", HttpParseError.MultipleContentLength)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", HttpParseError.InvalidContentLength)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 1,\r\n\r\n", HttpParseError.InvalidContentLength)]
    [InlineData("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HttpParseError.TransferEncodingInHttp10)]
    [InlineData("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", HttpParseError.ObsFold)]
    [InlineData("HTTP/1.1 200 OK\r\nX: a\x00\r\n\r\n", HttpParseError.InvalidHeaderValue)]
    [InlineData("HTTP/1.1 200 OK\nX: a\r\n\r\n", HttpParseError.BareLF)]
    [InlineData("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", HttpParseError.BareCR)]
    [InlineData("HTTP/1.1 200 O\x01K\r\n\r\n", HttpParseError.InvalidStatusLine)]
    [InlineData("HTTP/1.1 2000 OK\r\n\r\n", HttpParseError.InvalidStatusCode)]
    [InlineData("HTTP/1.1 20 OK\r\n\r\n", HttpParseError.InvalidStatusCode)]
    [InlineData("HTTP/1.1 0a0 OK\r\n\r\n", HttpParseError.InvalidStatusCode)]
    [InlineData("HTTP/1.1 099 OK\r\n\r\n", HttpParseError.InvalidStatusCode)]
    [InlineData("HTTP/1.1  200 OK\r\n\r\n", HttpParseError.InvalidStatusCode)]
    [InlineData("HTTP/2.0 200 OK\r\n\r\n", HttpParseError.UnsupportedVersion)]
    [InlineData("HTTPS/1.1 200 OK\r\n\r\n", HttpParseError.InvalidStatusLine)]
    [InlineData("ICY 200 OK\r\n\r\n", HttpParseError.InvalidStatusLine)]
    public void TryParseResponse_InvalidInput_ReturnsError(string raw, HttpParseError expected)
    {
        var input = Bytes(raw);
        var (result, error, consumed, _) = ParseResponse(Single(input));

        Assert.Equal(expected, error);
        Assert.Equal(Http1ParseResult.Error, result);
        Assert.Equal(0, consumed);
        Assert.Equal(expected, ParseResponse(Bytewise(input)).Error);
    }

    [Theory]
    [MemberData(nameof(ValidResponseIndexes))]
    public void TryParseResponse_EveryPrefix_IncompleteAndConsumesNothing(int index)
    {
        var input = Bytes(ValidResponses[index]);
        for (int length = 0; length < input.Length; length++)
        {
            var prefix = input.AsSpan(0, length).ToArray();
            var single = ParseResponse(Single(prefix));
            Assert.True(single.Result == Http1ParseResult.Incomplete, $"prefix {length}: {single.Result} {single.Error}");
            Assert.Equal(0, single.Consumed);
            Assert.Equal(0, single.Head.ArenaUsed);
            Assert.Equal(Http1ParseResult.Incomplete, ParseResponse(Bytewise(prefix)).Result);
        }
    }

    [Theory]
    [MemberData(nameof(ValidResponseIndexes))]
    public void TryParseResponse_SplitAtEveryOffset_ParsesIdentically(int index)
    {
        var input = Bytes(ValidResponses[index] + "body");
        var whole = ParseResponse(Single(input));
        Assert.Equal(Http1ParseResult.Complete, whole.Result);
        var expected = Describe(whole.Head);

        for (int cut = 0; cut <= input.Length; cut++)
        {
            var split = ParseResponse(Split(input, cut));
            Assert.Equal(whole.Consumed, split.Consumed);
            Assert.Equal(expected, Describe(split.Head));
        }
        var bytewise = ParseResponse(Bytewise(input));
        Assert.Equal(whole.Consumed, bytewise.Consumed);
        Assert.Equal(expected, Describe(bytewise.Head));
    }
}
