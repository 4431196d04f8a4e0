using System.Text;
using ProxyCore.Http;
using ProxyCore.Proxy.Stages.Compression;
using ProxyCore.Routing.Config;

namespace ProxyCore.Proxy.Tests.Stages.Compression;

public sealed class ResponseCompressionTests
{
    [Theory]
    [InlineData("", 1000)]
    [InlineData("q=1", 1000)]
    [InlineData("q=1.000", 1000)]
    [InlineData("q=0", 0)]
    [InlineData("q=0.5", 500)]
    [InlineData(" Q=0.123", 123)]
    [InlineData("q=0.12", 120)]
    [InlineData("level=1;q=0.3", 300)]
    [InlineData("q=1.5", 0)]
    [InlineData("q=2", 0)]
    [InlineData("q=0.1234", 0)]
    [InlineData("q=", 0)]
    [InlineData("q=.5", 0)]
    [InlineData("q=0,5", 0)]
    public void ParseWeight_Rfc9110Syntax_Thousandths(string parameters, int expected)
        => Assert.Equal(expected, ResponseCompression.ParseWeight(Encoding.ASCII.GetBytes(parameters)));

    private static RequestHead Request(params string[] acceptEncoding)
    {
        var request = new RequestHead();
        foreach (var value in acceptEncoding)
        {
            request.AddHeader("accept-encoding"u8, Encoding.ASCII.GetBytes(value));
        }
        return request;
    }

    [Theory]
    [InlineData(new[] { "gzip", "br" }, ContentCoding.Brotli)]          // two field lines are one list
    [InlineData(new[] { "gzip;q=0.9", "br;q=0.8" }, ContentCoding.Gzip)]
    [InlineData(new[] { "br;q=0.5, br;q=0.9" }, ContentCoding.Brotli)]
    [InlineData(new[] { "x-gzip" }, ContentCoding.Gzip)]
    [InlineData(new[] { "  br  ;  q=0.2 " }, ContentCoding.Brotli)]
    [InlineData(new string[0], ContentCoding.None)]
    public void Negotiate_Table(string[] lines, ContentCoding expected)
        => Assert.Equal(expected, new ResponseCompression(new CompressionConfig()).Negotiate(Request(lines)));

    [Theory]
    [InlineData("application/json", true)]
    [InlineData("Application/JSON; charset=utf-8", true)]
    [InlineData("text/html", true)]
    [InlineData("text/", false)]
    [InlineData("image/svg+xml", true)]
    [InlineData("image/png", false)]
    [InlineData("application/octet-stream", false)]
    public void Apply_ContentTypeList_DecidesAndSetsHeaders(string contentType, bool compressed)
    {
        var compression = new ResponseCompression(new CompressionConfig());
        var response = new ResponseHead { StatusCode = 200 };
        response.AddHeader("content-type"u8, Encoding.ASCII.GetBytes(contentType));
        var coding = compression.Apply(Request("gzip"), response, BodyFraming.Chunked, -1);
        Assert.Equal(compressed ? ContentCoding.Gzip : ContentCoding.None, coding);
        Assert.Equal(compressed, response.TryGetValue(KnownHeader.ContentEncoding, out var encoding) && encoding.SequenceEqual("gzip"u8));
        Assert.Equal(compressed, response.IndexOf("vary"u8) >= 0);
    }

    [Fact]
    public void Apply_NotCompressing_AllocatesNothing()
    {
        var compression = new ResponseCompression(new CompressionConfig());
        var request = Request("gzip, br");
        var response = new ResponseHead { StatusCode = 200 };
        response.AddHeader("content-type"u8, "image/png"u8);
        Assert.Equal(0, Allocations.SteadyState(() => compression.Apply(request, response, BodyFraming.ContentLength, 100_000), 1000, warmUps: 1000));
    }
}
