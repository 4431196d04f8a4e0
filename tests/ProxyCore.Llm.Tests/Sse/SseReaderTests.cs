using System.Net.ServerSentEvents;
using System.Text;
using ProxyCore.Llm.Sse;

namespace ProxyCore.Llm.Tests.Sse;

public class SseReaderTests
{
    private const string Bom = "\uFEFF";

    /// <summary>
    /// The event-stream edge cases of WHATWG HTML §9.2.5–9.2.6: input, then the dispatched events as
    /// <c>type|data|id|retry</c> joined by " ; " (CR and LF escaped as \r and \n).
    /// </summary>
    public static TheoryData<string, string, string> EdgeCases => new()
    {
        { "lf", "data: hello\n\n", "message|hello||-1" },
        { "no-space-after-colon", "data:hello\n\n", "message|hello||-1" },
        { "only-one-space-removed", "data:  two\n\n", "message| two||-1" },
        { "crlf", "data: a\r\n\r\n", "message|a||-1" },
        { "cr-only", "data: a\r\rdata: b\r\r", "message|a||-1 ; message|b||-1" },
        { "mixed-line-ends", "data: a\r\ndata: b\rdata: c\n\n", "message|a\\nb\\nc||-1" },
        { "cr-cr-lf-is-two-line-ends", "data: a\r\r\ndata: b\n\n", "message|a||-1 ; message|b||-1" },
        { "multi-line-data", "data: a\ndata: b\n\n", "message|a\\nb||-1" },
        { "comment-between-events", ": ping\n\ndata: x\n\n", "message|x||-1" },
        { "comment-inside-event", "data: a\n: note\ndata: b\n\n", "message|a\\nb||-1" },
        { "comment-only-stream", ":\n\n: keep-alive\n\n", "" },
        { "bom", Bom + "data: x\n\n", "message|x||-1" },
        { "only-one-bom-removed", Bom + Bom + "data: x\n\ndata: y\n\n", "message|y||-1" },
        { "bom-not-at-start", "data: x\n\n" + Bom + "data: y\n\n", "message|x||-1" },
        { "field-without-colon", "data\n\n", "message|||-1" },
        { "two-empty-data-lines", "data\ndata\n\n", "message|\\n||-1" },
        { "empty-value", "data: \n\n", "message|||-1" },
        { "no-data-no-event", "event: ping\n\n", "" },
        { "named-event", "event: add\ndata: 1\n\n", "add|1||-1" },
        { "event-without-colon-is-message", "event\ndata: 1\n\n", "message|1||-1" },
        { "type-does-not-carry-over", "event: x\ndata: 1\n\ndata: 2\n\n", "x|1||-1 ; message|2||-1" },
        { "type-with-no-data-is-dropped", "event: x\n\ndata: 2\n\n", "message|2||-1" },
        { "last-event-wins", "event: a\nevent: b\ndata: 1\n\n", "b|1||-1" },
        { "id-persists", "id: 7\ndata: x\n\ndata: y\n\n", "message|x|7|-1 ; message|y|7|-1" },
        { "id-with-nul-ignored", "id: 1\ndata: a\n\nid: 2\0\ndata: b\n\n", "message|a|1|-1 ; message|b|1|-1" },
        { "empty-id-resets", "id: 1\ndata: a\n\nid\ndata: b\n\n", "message|a|1|-1 ; message|b||-1" },
        { "id-without-data-still-sets", "id: 5\n\ndata: a\n\n", "message|a|5|-1" },
        { "retry", "retry: 1000\ndata: x\n\n", "message|x||1000" },
        { "retry-not-digits", "retry: 1a\ndata: x\n\n", "message|x||-1" },
        { "retry-empty", "retry:\ndata: x\n\n", "message|x||-1" },
        { "retry-space-inside", "retry: 1 0\ndata: x\n\n", "message|x||-1" },
        { "unknown-field", "foo: bar\ndata: x\n\n", "message|x||-1" },
        { "field-names-are-case-sensitive", "Data: x\n\n", "" },
        { "leading-space-is-part-of-name", " data: x\n\n", "" },
        { "colon-in-value", "data: a:b\n\n", "message|a:b||-1" },
        { "utf8-value", "data: Ahoj světe ☃ 𝄞\n\n", "message|Ahoj světe ☃ 𝄞||-1" },
        { "unterminated-event-dropped", "data: x\n\ndata: y\n", "message|x||-1" },
        { "unterminated-line-dropped", "data: x\n\ndata: y", "message|x||-1" },
        { "blank-lines-only", "\n\r\n\r\n", "" },
        { "json-data", "data: {\"a\":\"b\\n\"}\n\n", "message|{\"a\":\"b\\\\n\"}||-1" },
    };

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    private static string Joined(List<string> events) => string.Join(" ; ", events);

    [Theory]
    [MemberData(nameof(EdgeCases))]
    public void Read_EdgeCase_DispatchesAsSpecified(string name, string input, string expected)
    {
        var (events, status, _) = EventRecorder.Read([Utf8(input)]);

        Assert.Equal(SseReadStatus.Ok, status);
        Assert.True(expected == Joined(events), $"{name}: expected [{expected}] got [{Joined(events)}]");
    }

    [Theory]
    [MemberData(nameof(EdgeCases))]
    public void Read_EdgeCaseSplitAtEveryOffset_SameEvents(string name, string input, string expected)
    {
        var bytes = Utf8(input);
        for (int cut = 0; cut <= bytes.Length; cut++)
        {
            var (events, _, _) = EventRecorder.Read(SseTestInput.Chunks(bytes, cut));
            Assert.True(expected == Joined(events), $"{name} cut at {cut}: got [{Joined(events)}]");
        }
        for (int a = 1; a < bytes.Length; a++)
        {
            for (int b = a; b < bytes.Length; b++)
            {
                var (events, _, _) = EventRecorder.Read(SseTestInput.Chunks(bytes, a, b));
                Assert.True(expected == Joined(events), $"{name} cut at {a},{b}: got [{Joined(events)}]");
            }
        }
    }

    [Theory]
    [MemberData(nameof(EdgeCases))]
    public void Read_EdgeCaseByteByByte_SameEvents(string name, string input, string expected)
    {
        var bytes = Utf8(input);
        var (events, _, _) = EventRecorder.Read(bytes.Select(b => new[] { b }));
        Assert.True(expected == Joined(events), $"{name}: got [{Joined(events)}]");
    }

    /// <summary>
    /// Where System.Net.ServerSentEvents' parser (net10.0) departs from §9.2.6, what it gives instead.
    /// "event" alone: "If the event type buffer has a value other than the empty string, change the
    /// type of the newly created event to equal the value of the event type buffer" — it reports "".
    /// A type with no data: "If the data buffer is an empty string, set the data buffer and the event
    /// type buffer to the empty string and return" — it carries the type over to the next event.
    /// </summary>
    private static readonly Dictionary<string, string> RuntimeDepartures = new()
    {
        ["event-without-colon-is-message"] = "|1",
        ["type-with-no-data-is-dropped"] = "x|2",
    };

    /// <summary>The runtime's <see cref="SseParser"/> reads the same types and data (the spec's other implementation), except where it departs from the spec.</summary>
    [Theory]
    [MemberData(nameof(EdgeCases))]
    public void Read_EdgeCase_AgreesWithRuntimeSseParser(string name, string input, string expected)
    {
        _ = expected;
        var ours = EventRecorder.Read([Utf8(input)]).Events.Select(e => string.Join('|', e.Split('|')[..2]));
        var theirs = SseParser.Create(new MemoryStream(Utf8(input)))
            .Enumerate()
            .Select(i => $"{SseTestInput.Escape(Utf8(i.EventType))}|{SseTestInput.Escape(Utf8(i.Data))}")
            .ToList();
        if (RuntimeDepartures.TryGetValue(name, out var departure))
        {
            Assert.Equal(departure, string.Join(" ; ", theirs));
            return;
        }
        Assert.True(theirs.SequenceEqual(ours), $"{name}: runtime [{string.Join(" ; ", theirs)}] ours [{string.Join(" ; ", ours)}]");
    }

    public static TheoryData<string> CorpusStreams => new(CorpusFiles.LlmStreamNames());

    [Theory]
    [MemberData(nameof(CorpusStreams))]
    public void Read_CorpusStreamSplitAnywhere_SameEventsAsWhole(string file)
    {
        var bytes = CorpusFiles.LlmStream(file);
        var whole = EventRecorder.Read([bytes]);
        Assert.NotEmpty(whole.Events);

        for (int cut = 0; cut <= bytes.Length; cut++)
        {
            var split = EventRecorder.Read(SseTestInput.Chunks(bytes, cut));
            Assert.Equal(whole.Events, split.Events);
            Assert.Equal(whole.Pending, split.Pending);

            // The same split as two segments of one sequence, the way a pipe hands it over.
            var reader = new SseReader();
            var recorder = new EventRecorder();
            Assert.Equal(SseReadStatus.Ok, reader.Read(SseTestInput.Segmented(bytes, cut), ref recorder));
            Assert.Equal(whole.Events, recorder.Events);
        }
        var bytewise = EventRecorder.Read(bytes.Select(b => new[] { b }));
        Assert.Equal(whole.Events, bytewise.Events);
        Assert.Equal(whole.Pending, bytewise.Pending);
    }

    [Theory]
    [MemberData(nameof(CorpusStreams))]
    public void Read_CorpusStream_AgreesWithRuntimeSseParser(string file)
    {
        var bytes = CorpusFiles.LlmStream(file);
        var ours = EventRecorder.Read([bytes]);
        var theirs = SseParser.Create(new MemoryStream(bytes)).Enumerate()
            .Select(i => $"{SseTestInput.Escape(Utf8(i.EventType))}|{SseTestInput.Escape(Utf8(i.Data))}")
            .ToList();
        Assert.Equal(theirs, ours.Events.Select(e => string.Join('|', e.Split('|')[..2])));
    }

    [Fact]
    public void Read_CutCorpusStream_LeavesPendingEvent()
    {
        var (events, _, pending) = EventRecorder.Read([CorpusFiles.LlmStream("openai-chat-cut.sse")]);
        Assert.True(pending);
        Assert.Equal(2, events.Count);
    }

    [Fact]
    public void Read_EarlierChunkOverwritten_EventsUnaffected()
    {
        // The caller reuses its buffers as soon as Read returns: nothing may point into them.
        var bytes = Utf8("event: delta\ndata: first line\ndata: second\nid: 9\n\ndata: tail\n\n");
        for (int cut = 1; cut < bytes.Length; cut++)
        {
            var reader = new SseReader();
            var recorder = new EventRecorder();
            foreach (var chunk in SseTestInput.Chunks(bytes, cut))
            {
                reader.Read(chunk.AsSpan(), ref recorder);
                Array.Fill(chunk, (byte)'#');
            }
            Assert.Equal(["delta|first line\\nsecond|9|-1", "message|tail|9|-1"], recorder.Events);
        }
    }

    [Theory]
    [InlineData("data: 0123456789\n\n", 16, SseReadStatus.Ok, 1)]            // exactly the limit
    [InlineData("data: 0123456789A\n\n", 16, SseReadStatus.EventTooLarge, 0)] // one over
    [InlineData("data: 0123\ndata: 012\n\n", 16, SseReadStatus.EventTooLarge, 0)] // 10 + 9 bytes of lines
    [InlineData(": 0123456789abcdefghij\n\n", 16, SseReadStatus.EventTooLarge, 0)] // comments count
    [InlineData("data: ok\n\ndata: 0123456789ABCDEF\n\n", 16, SseReadStatus.EventTooLarge, 1)]
    [InlineData("data: 0123456789\n\ndata: 0123456789\n\n", 16, SseReadStatus.Ok, 2)] // the count restarts per event
    public void Read_EventOverMaxSize_FailsWithEventTooLargeAtEverySplit(string input, int max, SseReadStatus expected, int eventsBefore)
    {
        var bytes = Utf8(input);
        for (int cut = 0; cut <= bytes.Length; cut++)
        {
            var (events, status, _) = EventRecorder.Read(SseTestInput.Chunks(bytes, cut), max);
            Assert.True(expected == status, $"cut {cut}: {status}");
            Assert.True(eventsBefore == events.Count, $"cut {cut}: {events.Count} events");
        }
    }

    [Fact]
    public void Read_AfterEventTooLarge_StaysFailedUntilReset()
    {
        var reader = new SseReader(8);
        var recorder = new EventRecorder();
        Assert.Equal(SseReadStatus.EventTooLarge, reader.Read("data: too long\n\n"u8, ref recorder));
        Assert.Equal(SseReadStatus.EventTooLarge, reader.Read("data: a\n\n"u8, ref recorder));
        Assert.Empty(recorder.Events);

        reader.Reset();
        Assert.Equal(SseReadStatus.Ok, reader.Read("data: a\n\n"u8, ref recorder));
        Assert.Equal(["message|a||-1"], recorder.Events);
    }

    [Fact]
    public void Read_PartialLineGrowsPastMax_FailsBeforeHoldingIt()
    {
        var reader = new SseReader(32);
        var recorder = new EventRecorder();
        Assert.Equal(SseReadStatus.Ok, reader.Read("data: 0123456789"u8, ref recorder));
        Assert.Equal(SseReadStatus.Ok, reader.Read("0123456789"u8, ref recorder));
        Assert.Equal(SseReadStatus.EventTooLarge, reader.Read("0123456789"u8, ref recorder));
    }

    [Fact]
    public void Reset_AfterPartialStream_StartsClean()
    {
        var reader = new SseReader();
        var recorder = new EventRecorder();
        reader.Read([0xEF, 0xBB], ref recorder);
        reader.Read("id: 3\nretry: 5\nevent: x\ndata: half"u8, ref recorder);
        Assert.True(reader.HasPendingEvent);

        reader.Reset();
        Assert.False(reader.HasPendingEvent);
        Assert.Equal(-1, reader.ReconnectionTime);
        reader.Read([0xEF, 0xBB, 0xBF, .. "data: fresh\n\n"u8], ref recorder);
        Assert.Equal(["message|fresh||-1"], recorder.Events);
    }

    [Fact]
    public void Read_RetryWithoutData_SetsReconnectionTimeOnly()
    {
        var reader = new SseReader();
        var recorder = new EventRecorder();
        reader.Read("retry: 2500\n\n"u8, ref recorder);
        Assert.Empty(recorder.Events);
        Assert.Equal(2500, reader.ReconnectionTime);
        Assert.False(reader.HasPendingEvent);
    }

    [Fact]
    public void Read_BomPrefixThatIsNotBom_KeepsItsBytes()
    {
        // EF BB followed by 'd': not a BOM, so the two bytes start the field name (an unknown field).
        var bytes = new byte[] { 0xEF, 0xBB }.Concat(Utf8("data: x\n\ndata: y\n\n")).ToArray();
        for (int cut = 0; cut <= bytes.Length; cut++)
        {
            var (events, _, _) = EventRecorder.Read(SseTestInput.Chunks(bytes, cut));
            Assert.Equal(["message|y||-1"], events);
        }
    }
}
