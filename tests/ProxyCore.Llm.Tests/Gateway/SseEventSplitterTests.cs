using System.Buffers;
using System.Text;
using ProxyCore.Llm.Gateway;
using ProxyCore.Llm.Tests.Sse;

namespace ProxyCore.Llm.Tests.Gateway;

public sealed class SseEventSplitterTests
{
    [Theory]
    [InlineData("data: a\n\ndata: b\n\n", new[] { "data: a\n\n", "data: b\n\n" })]
    [InlineData("data: a\r\n\r\nevent: x\r\ndata: b\r\n\r\n", new[] { "data: a\r\n\r\n", "event: x\r\ndata: b\r\n\r\n" })]
    [InlineData("data: a\r\rdata: b\r\r\n", new[] { "data: a\r\r", "data: b\r\r\n" })] // a lone CR at the end cannot be told from CR LF yet
    [InlineData(": comment\n\ndata: a\n\n", new[] { ": comment\n\n", "data: a\n\n" })]
    [InlineData("data: a\ndata: b\n\n", new[] { "data: a\ndata: b\n\n" })]
    public void TryTakeEvent_SplitAtEveryOffset_SameEvents(string stream, string[] expected)
    {
        var bytes = Encoding.UTF8.GetBytes(stream);
        for (int split = 0; split <= bytes.Length; split++)
        {
            var events = Split(bytes, split, out string rest);

            Assert.Equal(expected, events);
            Assert.Equal("", rest);
        }
    }

    [Fact]
    public void TryTakeEvent_UnterminatedLastEvent_StaysPendingUntilTaken()
    {
        var events = Split(Encoding.UTF8.GetBytes("data: a\n\ndata: b\n"), 5, out string rest);

        Assert.Equal(["data: a\n\n"], events);
        Assert.Equal("data: b\n", rest);
    }

    [Theory]
    [MemberData(nameof(CorpusStreams))]
    public void TryTakeEvent_CorpusStreamByteByByte_ConcatenatesBackToTheStream(string file)
    {
        var bytes = CorpusFiles.LlmStream(file);
        var splitter = new SseEventSplitter();
        var output = new List<byte>();
        foreach (byte b in bytes)
        {
            splitter.Append(new ReadOnlySequence<byte>([b]));
            while (splitter.TryTakeEvent(out var e))
            {
                output.AddRange(e.ToArray());
            }
            splitter.Compact();
        }
        output.AddRange(splitter.TakeRest().ToArray());

        Assert.Equal(bytes, output.ToArray());
    }

    public static TheoryData<string> CorpusStreams => new(CorpusFiles.LlmStreamNames());

    private static List<string> Split(byte[] bytes, int at, out string rest)
    {
        var splitter = new SseEventSplitter();
        var events = new List<string>();
        foreach (var part in new[] { bytes[..at], bytes[at..] })
        {
            splitter.Append(new ReadOnlySequence<byte>(part));
            while (splitter.TryTakeEvent(out var e))
            {
                events.Add(Encoding.UTF8.GetString(e.Span));
            }
            splitter.Compact();
        }
        rest = Encoding.UTF8.GetString(splitter.TakeRest().Span);
        return events;
    }
}
