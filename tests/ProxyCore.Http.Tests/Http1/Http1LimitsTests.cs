using ProxyCore.Http.Http1;
using static ProxyCore.Http.Tests.Http1.TestBuffers;

namespace ProxyCore.Http.Tests.Http1;

public class Http1LimitsTests
{
    private static readonly Http1Limits Small = new()
    {
        MaxRequestLineBytes = 32,
        MaxHeaderBytes = 64,
        MaxHeaderCount = 4,
    };

    private static string RequestLine(int length) => "GET /" + new string('a', length - 14) + " HTTP/1.1";

    [Theory]
    [InlineData(32, true, Http1ParseResult.Complete, HttpParseError.None)]
    [InlineData(33, true, Http1ParseResult.Error, HttpParseError.RequestLineTooLong)]
    [InlineData(32, false, Http1ParseResult.Incomplete, HttpParseError.None)]
    public void TryParseRequest_RequestLineAtLimit_OnlyLongerIsRejected(int lineLength, bool complete, Http1ParseResult expected, HttpParseError error)
    {
        var line = RequestLine(lineLength);
        Assert.Equal(lineLength, line.Length);
        var raw = complete ? line + "\r\nHost: a\r\n\r\n" : line + "\r";

        var single = ParseRequest(Single(Bytes(raw)), Small);
        var bytewise = ParseRequest(Bytewise(Bytes(raw)), Small);

        Assert.Equal(expected, single.Result);
        Assert.Equal(error, single.Error);
        Assert.Equal(expected, bytewise.Result);
        Assert.Equal(error, bytewise.Error);
    }

    [Theory]
    [InlineData(34)]
    [InlineData(100)]
    public void TryParseRequest_RequestLineOverLimitWithoutLF_RejectedBeforeItEnds(int pending)
    {
        // No LF yet: the parser must not wait for a line that can no longer fit (34 = 32 + CR + 1).
        var raw = ("GET /" + new string('a', 200))[..pending];

        Assert.Equal(HttpParseError.RequestLineTooLong, ParseRequest(Single(Bytes(raw)), Small).Error);
        Assert.Equal(HttpParseError.RequestLineTooLong, ParseRequest(Bytewise(Bytes(raw)), Small).Error);
        Assert.Equal(414, HttpParseErrors.StatusCode(HttpParseError.RequestLineTooLong));
    }

    [Theory]
    // Header bytes count each field line with its CRLF: "Host: a\r\n" is 9.
    [InlineData(64, Http1ParseResult.Complete, HttpParseError.None)]
    [InlineData(65, Http1ParseResult.Error, HttpParseError.HeadersTooLarge)]
    public void TryParseRequest_HeaderBytesAtLimit_OnlyLargerIsRejected(int headerBytes, Http1ParseResult expected, HttpParseError error)
    {
        var filler = "X: " + new string('v', headerBytes - 9 - 5) + "\r\n";
        var raw = "GET / HTTP/1.1\r\nHost: a\r\n" + filler + "\r\n";

        Assert.Equal(error, ParseRequest(Single(Bytes(raw)), Small).Error);
        Assert.Equal(expected, ParseRequest(Single(Bytes(raw)), Small).Result);
        Assert.Equal(error, ParseRequest(Bytewise(Bytes(raw)), Small).Error);
    }

    [Fact]
    public void TryParseRequest_HeaderBytesOverLimitWithoutEnd_RejectedBeforeHeadEnds()
    {
        var raw = "GET / HTTP/1.1\r\nHost: a\r\nX: " + new string('v', 100);

        var (result, error, consumed, _) = ParseRequest(Single(Bytes(raw)), Small);

        Assert.Equal(Http1ParseResult.Error, result);
        Assert.Equal(HttpParseError.HeadersTooLarge, error);
        Assert.Equal(0, consumed);
        Assert.Equal(431, HttpParseErrors.StatusCode(error));
    }

    [Theory]
    [InlineData(4, Http1ParseResult.Complete)]
    [InlineData(5, Http1ParseResult.Error)]
    public void TryParseRequest_HeaderCountAtLimit_OnlyMoreIsRejected(int count, Http1ParseResult expected)
    {
        var raw = "GET / HTTP/1.1\r\nHost: a\r\n" + string.Concat(Enumerable.Range(1, count - 1).Select(i => $"X{i}: v\r\n")) + "\r\n";
        var (result, error, _, _) = ParseRequest(Single(Bytes(raw)), Small);

        Assert.Equal(expected, result);
        Assert.Equal(expected == Http1ParseResult.Error ? HttpParseError.TooManyHeaders : HttpParseError.None, error);
    }

    [Fact]
    public void TryParseRequest_EmptyLinesBeyondRequestLineLimit_Rejected()
    {
        var raw = string.Concat(Enumerable.Repeat("\r\n", 20)) + "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

        Assert.Equal(HttpParseError.RequestLineTooLong, ParseRequest(Single(Bytes(raw)), Small).Error);
        Assert.Equal(HttpParseError.RequestLineTooLong, ParseRequest(Bytewise(Bytes(raw)), Small).Error);
    }

    [Fact]
    public void TryParseResponse_StatusLineOverLimit_Rejected()
    {
        var raw = "HTTP/1.1 200 " + new string('r', 40) + "\r\n\r\n";

        Assert.Equal(HttpParseError.StatusLineTooLong, ParseResponse(Single(Bytes(raw)), limits: Small).Error);
        Assert.Equal(HttpParseError.StatusLineTooLong, ParseResponse(Single(Bytes(raw[..36])), limits: Small).Error);
    }

    [Fact]
    public void Default_HasDocumentedValues()
    {
        var limits = Http1Limits.Default;

        Assert.Equal(8 * 1024, limits.MaxRequestLineBytes);
        Assert.Equal(32 * 1024, limits.MaxHeaderBytes);
        Assert.Equal(100, limits.MaxHeaderCount);
        Assert.Equal(4 * 1024, limits.MaxChunkLineBytes);
        Assert.Equal(16 * 1024, limits.MaxTrailerBytes);
    }
}
