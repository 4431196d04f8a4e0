using ProxyCore.Http.Http1;
using static ProxyCore.Http.Tests.Http1.TestBuffers;

namespace ProxyCore.Http.Tests.Http1;

public class Http1RequestParserTests
{
    /// <summary>Valid requests used by the ladder and split tests: every shape the parser has a branch for.</summary>
    public static readonly string[] ValidRequests =
    [
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /plaintext HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\nConnection: keep-alive\r\n\r\n",
        "POST /api/v1/items?sort=asc&x=%20 HTTP/1.1\r\nHost: api.example.com:8443\r\nContent-Length: 5\r\nContent-Type: application/json\r\nX-Empty:\r\nX-Obs: caf\xe9 \t\r\n\r\n",
        "PUT /upload HTTP/1.1\r\nHost: up\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
        "GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: ignored.example\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /chat HTTP/1.1\r\nHost: ws\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
        "GET /old HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
        "\r\n\r\nGET /after-empty-lines HTTP/1.1\r\nHost: a\r\n\r\n",
    ];

    public static TheoryData<int> ValidRequestIndexes()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < ValidRequests.Length; i++)
        {
            data.Add(i);
        }
        return data;
    }

    [Fact]
    public void TryParseRequest_OriginForm_SetsEveryField()
    {
        var input = Bytes("POST /api/items?x=1&y=2 HTTP/1.1\r\nHost: api.example.com:8080\r\nContent-Length:  12 \r\nX-Custom:\tcaf\xe9\t\r\n\r\nbody");
        var (result, error, consumed, head) = ParseRequest(Single(input));

        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal(HttpParseError.None, error);
        Assert.Equal(input.Length - 4, consumed);
        Assert.Equal(HttpMethod.Post, head.Method);
        Assert.Equal("POST", Text(head.MethodSpan));
        Assert.Equal(RequestTargetForm.Origin, head.TargetForm);
        Assert.True(head.Scheme.IsEmpty);
        Assert.Equal("api.example.com:8080", Text(head.AuthoritySpan));
        Assert.Equal("api.example.com", Text(head.HostSpan));
        Assert.Equal("/api/items", Text(head.PathSpan));
        Assert.Equal("?x=1&y=2", Text(head.QuerySpan));
        Assert.Equal(HttpVersion.Http11, head.Version);
        Assert.Equal(BodyFraming.ContentLength, head.Framing);
        Assert.Equal(12, head.ContentLength);
        Assert.True(head.KeepAlive);
        Assert.False(head.ExpectContinue);
        Assert.False(head.IsUpgrade);
        Assert.Equal(3, head.HeaderCount);
        Assert.Equal(KnownHeader.Host, head.Headers[0].Id);
        Assert.Equal(KnownHeader.ContentLength, head.Headers[1].Id);
        Assert.Equal("12", Text(head.GetValue(1)));
        Assert.Equal(KnownHeader.Other, head.Headers[2].Id);
        Assert.Equal("X-Custom", Text(head.GetName(2)));
        Assert.Equal("caf\xe9", Text(head.GetValue(2)));
    }

    [Fact]
    public void TryParseRequest_AbsoluteForm_TargetAuthorityWinsOverHost()
    {
        var (result, _, _, head) = ParseRequest(Single(Bytes("GET HTTP://Example.com:8080/a/b?c=d HTTP/1.1\r\nHost: other.example\r\n\r\n")));

        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal(RequestTargetForm.Absolute, head.TargetForm);
        Assert.Equal("HTTP", Text(head.Get(head.Scheme)));
        Assert.Equal("Example.com:8080", Text(head.AuthoritySpan));
        Assert.Equal("/a/b", Text(head.PathSpan));
        Assert.Equal("?c=d", Text(head.QuerySpan));
    }

    [Theory]
    [InlineData("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", "")]
    [InlineData("GET http://example.com?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", "?q=1")]
    public void TryParseRequest_AbsoluteFormEmptyPath_PathIsSlash(string raw, string query)
    {
        var (result, _, _, head) = ParseRequest(Single(Bytes(raw)));

        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal("/", Text(head.PathSpan));
        Assert.Equal(query, Text(head.QuerySpan));
        Assert.Equal("example.com", Text(head.AuthoritySpan));
    }

    [Fact]
    public void TryParseRequest_ConnectAuthorityForm_SetsAuthority()
    {
        var (result, _, _, head) = ParseRequest(Single(Bytes("CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n")));

        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal(HttpMethod.Connect, head.Method);
        Assert.Equal(RequestTargetForm.Authority, head.TargetForm);
        Assert.Equal("[::1]:443", Text(head.AuthoritySpan));
        Assert.Equal("[::1]", Text(head.HostSpan));
        Assert.True(head.Path.IsEmpty);
    }

    [Fact]
    public void TryParseRequest_AsteriskOptions_SetsAsteriskForm()
    {
        var (result, _, _, head) = ParseRequest(Single(Bytes("OPTIONS * HTTP/1.1\r\nHost: a:1\r\n\r\n")));

        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal(RequestTargetForm.Asterisk, head.TargetForm);
        Assert.Equal("*", Text(head.PathSpan));
        Assert.Equal("a:1", Text(head.AuthoritySpan));
    }

    [Theory]
    [InlineData("Content-Language")]
    [InlineData("Content-Lengthy")]
    [InlineData("Transfer-Encodings")]
    [InlineData("X-Content-Length")]
    [InlineData("Content_Type")]
    public void TryParseRequest_NamesNearFramingFields_Accepted(string name)
    {
        var (result, _, _, head) = ParseRequest(Single(Bytes($"GET / HTTP/1.1\r\nHost: a\r\n{name}: 1\r\n\r\n")));

        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal(KnownHeader.Other, head.Headers[1].Id);
    }

    [Fact]
    public void TryParseRequest_CustomMethod_KeepsBytes()
    {
        var (result, _, _, head) = ParseRequest(Single(Bytes("PROPFIND /dav HTTP/1.1\r\nHost: a\r\n\r\n")));

        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal(HttpMethod.Custom, head.Method);
        Assert.Equal("PROPFIND", Text(head.MethodSpan));
    }

    [Theory]
    [InlineData("HTTP/1.1", "", true)]
    [InlineData("HTTP/1.1", "Connection: close\r\n", false)]
    [InlineData("HTTP/1.1", "Connection: Keep-Alive, CLOSE\r\n", false)]
    [InlineData("HTTP/1.1", "Connection: x-closed\r\n", true)]
    [InlineData("HTTP/1.1", "Connection: upgrade\r\nConnection: close\r\n", false)]
    [InlineData("HTTP/1.0", "", false)]
    [InlineData("HTTP/1.0", "Connection: keep-alive\r\n", true)]
    [InlineData("HTTP/1.0", "Connection: foo ,\tKEEP-ALIVE\r\n", true)]
    [InlineData("HTTP/1.0", "Connection: keep-alive, close\r\n", false)]
    public void TryParseRequest_ConnectionOptions_SetKeepAlive(string version, string headers, bool keepAlive)
    {
        var (result, _, _, head) = ParseRequest(Single(Bytes($"GET / {version}\r\nHost: a\r\n{headers}\r\n")));

        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal(keepAlive, head.KeepAlive);
    }

    [Theory]
    [InlineData("HTTP/1.1", "Expect: 100-continue\r\n", true)]
    [InlineData("HTTP/1.1", "Expect: 100-Continue\r\n", true)]
    [InlineData("HTTP/1.1", "Expect: 200-ok\r\n", false)]
    [InlineData("HTTP/1.1", "", false)]
    [InlineData("HTTP/1.0", "Expect: 100-continue\r\n", false)]
    public void TryParseRequest_Expect_SetsExpectContinue(string version, string headers, bool expected)
    {
        var (result, _, _, head) = ParseRequest(Single(Bytes($"POST / {version}\r\nHost: a\r\nContent-Length: 1\r\n{headers}\r\n")));

        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal(expected, head.ExpectContinue);
    }

    [Theory]
    [InlineData("Connection: Upgrade\r\nUpgrade: websocket\r\n", true)]
    [InlineData("Connection: keep-alive, upgrade\r\nUpgrade: h2c\r\n", true)]
    [InlineData("Upgrade: websocket\r\n", false)]
    [InlineData("Connection: upgrade\r\n", false)]
    public void TryParseRequest_UpgradeHeaders_SetIsUpgrade(string headers, bool expected)
    {
        var (result, _, _, head) = ParseRequest(Single(Bytes($"GET / HTTP/1.1\r\nHost: a\r\n{headers}\r\n")));

        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal(expected, head.IsUpgrade);
    }

    [Theory]
    [InlineData("", BodyFraming.None, -1)]
    [InlineData("Content-Length: 0\r\n", BodyFraming.None, 0)]
    [InlineData("Content-Length: 00042\r\n", BodyFraming.ContentLength, 42)]
    [InlineData("Content-Length: 9223372036854775807\r\n", BodyFraming.ContentLength, long.MaxValue)]
    [InlineData("Transfer-Encoding: chunked\r\n", BodyFraming.Chunked, -1)]
    [InlineData("Transfer-Encoding:  CHUNKED \t\r\n", BodyFraming.Chunked, -1)]
    public void TryParseRequest_FramingHeaders_SetFraming(string headers, BodyFraming framing, long contentLength)
    {
        var (result, error, _, head) = ParseRequest(Single(Bytes($"POST / HTTP/1.1\r\nHost: a\r\n{headers}\r\n")));

        Assert.Equal(HttpParseError.None, error);
        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal(framing, head.Framing);
        Assert.Equal(contentLength, head.ContentLength);
    }

    [Fact]
    public void TryParseRequest_ConnectWithContentLength_HasNoBodyFraming()
    {
        // RFC 9110 §9.3.6: bytes after a CONNECT head are tunnel data, not content.
        var (result, _, _, head) = ParseRequest(Single(Bytes("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 10\r\n\r\n")));

        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal(BodyFraming.None, head.Framing);
        Assert.Equal(10, head.ContentLength);
    }

    [Theory]
    // A head that is not finished but already broken fails at once: each row has no final empty line.
    [InlineData("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n", HttpParseError.MultipleContentLength)]
    [InlineData("PUT / HTTP/1.1\r\nContent-Length: 1000000000000000000000\r\n", HttpParseError.InvalidContentLength)]
    [InlineData("GET / HTTP/1.1\r\n Host: foo", HttpParseError.ObsFold)]
    [InlineData("GET / HTTP/1.1\rLine: 1\r\n", HttpParseError.InvalidRequestLine)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\n\rZGET /evil: HTTP/1.1\r\nHost: a\r\n", HttpParseError.BareCR)]
    [InlineData("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n", HttpParseError.ContentLengthWithTransferEncoding)]
    [InlineData("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n", HttpParseError.TransferEncodingInHttp10)]
    [InlineData("G@T / HTTP/1.1\r\n", HttpParseError.InvalidMethod)]
    public void TryParseRequest_IncompleteButInvalid_ErrorsBeforeHeadEnds(string raw, HttpParseError expected)
    {
        var input = Bytes(raw);
        var single = ParseRequest(Single(input));
        var bytewise = ParseRequest(Bytewise(input));

        Assert.Equal(Http1ParseResult.Error, single.Result);
        Assert.Equal(expected, single.Error);
        Assert.Equal(expected, bytewise.Error);
        Assert.Equal(0, single.Consumed);
    }

    [Fact]
    public void TryParseRequest_IncompleteWithoutHostYet_StaysIncomplete()
    {
        var (result, error, _, head) = ParseRequest(Single(Bytes("GET / HTTP/1.1\r\nAccept: */*\r\n")));

        Assert.Equal(Http1ParseResult.Incomplete, result);
        Assert.Equal(HttpParseError.None, error);
        Assert.Equal(0, head.ArenaUsed);
        Assert.Equal(0, head.HeaderCount);
    }

    [Fact]
    public void TryParseRequest_EmptyLinesBeforeRequestLine_AreSkippedAndConsumed()
    {
        var input = Bytes("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        var (result, _, consumed, head) = ParseRequest(Single(input));

        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal(input.Length, consumed);
        Assert.Equal("GET", Text(head.MethodSpan));
    }

    [Fact]
    public void TryParseRequest_PipelinedRequests_ConsumesOnlyTheFirst()
    {
        var first = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
        var input = Bytes(first + "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
        var (result, _, consumed, head) = ParseRequest(Single(input));

        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal(first.Length, consumed);
        Assert.Equal("/1", Text(head.PathSpan));

        var (result2, _, consumed2, head2) = ParseRequest(Single(input[(int)consumed..]));
        Assert.Equal(Http1ParseResult.Complete, result2);
        Assert.Equal(input.Length - first.Length, consumed2);
        Assert.Equal("/2", Text(head2.PathSpan));
    }

    [Theory]
    // Request line: RFC 9112 §3, single SP separators, token method, visible-ASCII target.
    [InlineData("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidRequestLine)]
    [InlineData("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidRequestLine)]
    [InlineData("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", HttpParseError.InvalidRequestLine)]
    [InlineData(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidRequestLine)]
    [InlineData("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidRequestLine)]
    [InlineData("GET /\tHTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidTarget)]
    [InlineData("GET\r\nHost: a\r\n\r\n", HttpParseError.InvalidRequestLine)]
    [InlineData("GET /\r\nHost: a\r\n\r\n", HttpParseError.InvalidRequestLine)]
    [InlineData("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidMethod)]
    [InlineData("G\x00T / HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidMethod)]
    [InlineData("GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidTarget)]
    [InlineData("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidTarget)]
    [InlineData("GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidTarget)]
    [InlineData("GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.BareCR)]
    [InlineData("GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidTarget)]
    [InlineData("GET * HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidTarget)]
    [InlineData("GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidTarget)]
    [InlineData("GET http:///b HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidTarget)]
    [InlineData("GET http://user:pw@a/b HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidTarget)]
    [InlineData("CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidTarget)]
    [InlineData("CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidTarget)]
    [InlineData("CONNECT a:b HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidTarget)]
    [InlineData("CONNECT http://a:443 HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidTarget)]
    [InlineData("GET / HTTP/1.2\r\nHost: a\r\n\r\n", HttpParseError.UnsupportedVersion)]
    [InlineData("GET / HTTP/2.0\r\nHost: a\r\n\r\n", HttpParseError.UnsupportedVersion)]
    [InlineData("GET / HTTP/0.9\r\nHost: a\r\n\r\n", HttpParseError.UnsupportedVersion)]
    [InlineData("GET / http/1.1\r\nHost: a\r\n\r\n", HttpParseError.InvalidRequestLine)]
    [InlineData("GET / HTTP/1.10\r\nHost: a\r\n\r\n", HttpParseError.InvalidRequestLine)]
    [InlineData("GET / HTTP/1\r\nHost: a\r\n\r\n", HttpParseError.InvalidRequestLine)]
    // Line ends: RFC 9112 §2.2, CRLF only.
    [InlineData("GET / HTTP/1.1\nHost: a\r\n\r\n", HttpParseError.BareLF)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\n\r\n", HttpParseError.BareLF)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\n\n", HttpParseError.BareLF)]
    [InlineData("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", HttpParseError.BareLF)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", HttpParseError.BareCR)]
    [InlineData("GET / HTTP/1.1\r\nX\r: b\r\nHost: a\r\n\r\n", HttpParseError.BareCR)]
    [InlineData("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", HttpParseError.InvalidRequestLine)]
    // Field lines: RFC 9112 §5, RFC 9110 §5.
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", HttpParseError.ObsFold)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", HttpParseError.ObsFold)]
    [InlineData("GET / HTTP/1.1\r\n Host: a\r\n\r\n", HttpParseError.ObsFold)]
    [InlineData("GET / HTTP/1.1\r\nHost : a\r\n\r\n", HttpParseError.WhitespaceBeforeColon)]
    [InlineData("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", HttpParseError.WhitespaceBeforeColon)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", HttpParseError.InvalidHeaderName)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", HttpParseError.InvalidHeaderName)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n", HttpParseError.InvalidHeaderName)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nX\x00y: b\r\n\r\n", HttpParseError.InvalidHeaderName)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nX\xe9: b\r\n\r\n", HttpParseError.InvalidHeaderName)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nX: b\x00c\r\n\r\n", HttpParseError.InvalidHeaderValue)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nX: b\x01\r\n\r\n", HttpParseError.InvalidHeaderValue)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nX: b\x7f\r\n\r\n", HttpParseError.InvalidHeaderValue)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nX: \u000Bb\r\n\r\n", HttpParseError.InvalidHeaderValue)]
    // Names that CGI-style servers read as framing fields ('-' and '_' are one to them).
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent_Length: 5\r\n\r\n", HttpParseError.InvalidHeaderName)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer---Encoding: chunked\r\n\r\n", HttpParseError.InvalidHeaderName)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\ntransfer_encoding: chunked\r\n\r\n", HttpParseError.InvalidHeaderName)]
    // Host: RFC 9112 §3.2.
    [InlineData("GET / HTTP/1.1\r\n\r\n", HttpParseError.MissingHost)]
    [InlineData("GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", HttpParseError.MissingHost)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", HttpParseError.MultipleHost)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", HttpParseError.MultipleHost)]
    [InlineData("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", HttpParseError.InvalidHost)]
    [InlineData("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", HttpParseError.InvalidHost)]
    [InlineData("GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", HttpParseError.InvalidHost)]
    [InlineData("GET / HTTP/1.1\r\nHost: caf\xe9\r\n\r\n", HttpParseError.InvalidHost)]
    // Content-Length: RFC 9112 §6.3, RFC 9110 §8.6.
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", HttpParseError.MultipleContentLength)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", HttpParseError.MultipleContentLength)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n", HttpParseError.MultipleContentLength)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", HttpParseError.InvalidContentLength)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", HttpParseError.InvalidContentLength)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", HttpParseError.InvalidContentLength)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", HttpParseError.InvalidContentLength)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", HttpParseError.InvalidContentLength)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", HttpParseError.InvalidContentLength)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", HttpParseError.InvalidContentLength)]
    // Transfer-Encoding: RFC 9112 §6.1, §6.3.
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", HttpParseError.ContentLengthWithTransferEncoding)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", HttpParseError.ContentLengthWithTransferEncoding)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", HttpParseError.UnsupportedTransferEncoding)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HttpParseError.UnsupportedTransferEncoding)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", HttpParseError.UnsupportedTransferEncoding)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", HttpParseError.UnsupportedTransferEncoding)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", HttpParseError.UnsupportedTransferEncoding)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", HttpParseError.UnsupportedTransferEncoding)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", HttpParseError.UnsupportedTransferEncoding)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", HttpParseError.UnsupportedTransferEncoding)]
    [InlineData("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", HttpParseError.TransferEncodingInHttp10)]
    public void TryParseRequest_InvalidInput_ReturnsError(string raw, HttpParseError expected)
    {
        var input = Bytes(raw);
        var (result, error, consumed, _) = ParseRequest(Single(input));

        Assert.Equal(expected, error);
        Assert.Equal(Http1ParseResult.Error, result);

        // The multi-segment path must agree.
        var (splitResult, splitError, _, _) = ParseRequest(Bytewise(input));
        Assert.Equal(Http1ParseResult.Error, splitResult);
        Assert.Equal(expected, splitError);
        Assert.Equal(0, consumed);
    }

    [Theory]
    [MemberData(nameof(ValidRequestIndexes))]
    public void TryParseRequest_EveryPrefix_IncompleteAndConsumesNothing(int index)
    {
        var input = Bytes(ValidRequests[index]);
        for (int length = 0; length < input.Length; length++)
        {
            var prefix = input.AsSpan(0, length).ToArray();
            var head = new RequestHead();
            head.Reset();
            var buffer = Single(prefix);
            var result = Http1Parser.TryParseRequest(buffer, head, Http1Limits.Default, out var consumed, out var error);

            Assert.True(result == Http1ParseResult.Incomplete, $"prefix {length}: {result} {error}");
            Assert.Equal(buffer.Start, consumed);
            Assert.Equal(HttpParseError.None, error);
            Assert.Equal(0, head.HeaderCount);
            Assert.Equal(0, head.ArenaUsed);
        }
    }

    [Theory]
    [MemberData(nameof(ValidRequestIndexes))]
    public void TryParseRequest_SplitAtEveryOffset_ParsesIdentically(int index)
    {
        var input = Bytes(ValidRequests[index] + "NEXT");
        var (result, error, consumed, head) = ParseRequest(Single(input));
        Assert.Equal(HttpParseError.None, error);
        Assert.Equal(Http1ParseResult.Complete, result);
        Assert.Equal(input.Length - 4, consumed);
        var expected = Describe(head);

        for (int cut = 0; cut <= input.Length; cut++)
        {
            var split = ParseRequest(Split(input, cut));
            Assert.Equal(Http1ParseResult.Complete, split.Result);
            Assert.Equal(consumed, split.Consumed);
            Assert.Equal(expected, Describe(split.Head));
        }
        for (int a = 1; a < input.Length; a += 7)
        {
            var split = ParseRequest(Split(input, a, Math.Min(input.Length, a + 5)));
            Assert.Equal(expected, Describe(split.Head));
        }
        var bytewise = ParseRequest(Bytewise(input));
        Assert.Equal(consumed, bytewise.Consumed);
        Assert.Equal(expected, Describe(bytewise.Head));
    }

    [Theory]
    [MemberData(nameof(ValidRequestIndexes))]
    public void TryParseRequest_BytewisePrefixes_IncompleteUntilTheLastByte(int index)
    {
        var input = Bytes(ValidRequests[index]);
        for (int length = 1; length < input.Length; length++)
        {
            var (result, error, consumed, _) = ParseRequest(Bytewise(input.AsSpan(0, length).ToArray()));
            Assert.True(result == Http1ParseResult.Incomplete, $"prefix {length}: {result} {error}");
            Assert.Equal(0, consumed);
        }
    }

    [Fact]
    public void TryParseRequest_ReusedHead_GivesSameResultAfterReset()
    {
        var head = new RequestHead();
        var a = Single(Bytes(ValidRequests[2]));
        var b = Single(Bytes(ValidRequests[4]));
        head.Reset();
        Http1Parser.TryParseRequest(a, head, Http1Limits.Default, out _, out _);
        head.Reset();
        Http1Parser.TryParseRequest(b, head, Http1Limits.Default, out _, out _);

        Assert.Equal(Describe(ParseRequest(b).Head), Describe(head));
    }
}
