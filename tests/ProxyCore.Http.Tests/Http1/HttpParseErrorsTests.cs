using System.Text;
using ProxyCore.Http.Http1;

namespace ProxyCore.Http.Tests.Http1;

public class HttpParseErrorsTests
{
    public static TheoryData<HttpParseError> AllErrors()
    {
        var data = new TheoryData<HttpParseError>();
        foreach (var e in Enum.GetValues<HttpParseError>())
        {
            data.Add(e);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(AllErrors))]
    public void Reason_EveryError_IsKebabCaseToken(HttpParseError error)
    {
        var reason = Encoding.ASCII.GetString(HttpParseErrors.Reason(error));

        Assert.Matches("^[a-z0-9]+(-[a-z0-9]+)*$", reason);
        Assert.NotEqual("bad-request", reason);
    }

    [Fact]
    public void Reason_AllErrors_AreDistinct()
    {
        var reasons = Enum.GetValues<HttpParseError>().Select(e => Encoding.ASCII.GetString(HttpParseErrors.Reason(e))).ToList();

        Assert.Equal(reasons.Count, reasons.Distinct().Count());
    }

    [Theory]
    [InlineData(HttpParseError.RequestLineTooLong, 414)]
    [InlineData(HttpParseError.HeadersTooLarge, 431)]
    [InlineData(HttpParseError.TooManyHeaders, 431)]
    [InlineData(HttpParseError.TrailersTooLarge, 431)]
    [InlineData(HttpParseError.InvalidContentLength, 400)]
    [InlineData(HttpParseError.ContentLengthWithTransferEncoding, 400)]
    [InlineData(HttpParseError.ObsFold, 400)]
    [InlineData(HttpParseError.ChunkLineTooLong, 400)]
    [InlineData(HttpParseError.MissingHost, 400)]
    public void StatusCode_Error_MapsToDesignStatus(HttpParseError error, int status)
    {
        Assert.Equal(status, HttpParseErrors.StatusCode(error));
    }

    [Fact]
    public void Reason_InvalidContentLength_IsTheDocumentedToken()
    {
        Assert.Equal("invalid-content-length", Encoding.ASCII.GetString(HttpParseErrors.Reason(HttpParseError.InvalidContentLength)));
    }
}
