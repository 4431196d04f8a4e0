using System.Buffers;
using ProxyCore.Http.Http1;
using static ProxyCore.Http.Tests.Http1.TestBuffers;

namespace ProxyCore.Http.Tests.Http1;

/// <summary>The hot path allocates nothing once the head's arena and header list have grown.</summary>
public class AllocationTests
{
    private const int Iterations = 200;

    // Warm-up (JIT, tiering, buffer growth), then the fewest bytes of several windows: see Allocations.
    private static long AllocatedBy(Action action) => Allocations.SteadyState(action, Iterations);

    [Fact]
    public void TryParseRequest_AfterWarmUp_AllocatesNothing()
    {
        var single = Single(Bytes(Http1RequestParserTests.ValidRequests[2]));
        var split = Split(Bytes(Http1RequestParserTests.ValidRequests[2]), 5, 40, 41);
        var absolute = Single(Bytes(Http1RequestParserTests.ValidRequests[4]));
        var head = new RequestHead();

        long bytes = AllocatedBy(() =>
        {
            head.Reset();
            Http1Parser.TryParseRequest(single, head, Http1Limits.Default, out _, out _);
            head.Reset();
            Http1Parser.TryParseRequest(split, head, Http1Limits.Default, out _, out _);
            head.Reset();
            Http1Parser.TryParseRequest(absolute, head, Http1Limits.Default, out _, out _);
        });

        Assert.Equal(0, bytes);
    }

    [Fact]
    public void TryParseResponse_AfterWarmUp_AllocatesNothing()
    {
        var single = Single(Bytes(Http1ResponseParserTests.ValidResponses[0]));
        var split = Split(Bytes(Http1ResponseParserTests.ValidResponses[2]), 3, 20);
        var head = new ResponseHead();

        long bytes = AllocatedBy(() =>
        {
            head.Reset();
            Http1Parser.TryParseResponse(single, head, HttpMethod.Get, Http1Limits.Default, out _, out _);
            head.Reset();
            Http1Parser.TryParseResponse(split, head, HttpMethod.Get, Http1Limits.Default, out _, out _);
        });

        Assert.Equal(0, bytes);
    }

    [Fact]
    public void ChunkedRead_AfterWarmUp_AllocatesNothing()
    {
        var input = Bytes("5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nA: b\r\n\r\n");
        var single = Single(input);
        var split = Split(input, 2, 9, 17, 30);
        var trailers = new ResponseHead();

        long bytes = AllocatedBy(() =>
        {
            Decode(single, trailers);
            Decode(split, trailers);
        });

        Assert.Equal(0, bytes);

        static void Decode(ReadOnlySequence<byte> buffer, ResponseHead trailers)
        {
            trailers.Reset();
            var decoder = new ChunkedDecoder();
            while (decoder.Read(buffer, trailers, Http1Limits.Default, out _, out var consumed, out _) == ChunkedReadResult.Data)
            {
                buffer = buffer.Slice(consumed);
            }
        }
    }
}
