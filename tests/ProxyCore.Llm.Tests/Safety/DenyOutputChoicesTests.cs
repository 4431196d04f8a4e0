using System.Text;
using System.Text.Json;
using ProxyCore.Llm.Safety;
using ProxyCore.Llm.Sse;
using ProxyCore.Llm.Tests.Sse;

namespace ProxyCore.Llm.Tests.Safety;

/// <summary>
/// Deny patterns on streams with several choices (<c>n</c> &gt; 1): their deltas interleave, so each choice
/// index has its own window. Streams in OpenAI Chat's n=2 shape (role chunk per choice, interleaved deltas,
/// a finish chunk per choice, the usage chunk, [DONE]) and Gemini's candidateCount=2 shape (index after the
/// content, left out for candidate 0), each split at every byte offset.
/// </summary>
public class DenyOutputChoicesTests
{
    private const int Window = 16;
    private static readonly DenyPatterns SecretSauce = new([@"secret\s+sauce"]);

    private sealed class PerChoice : IStreamTextObserver
    {
        public readonly Dictionary<int, StringBuilder> Text = [];

        public void OnText(int choice, ReadOnlySpan<byte> utf8)
            => (Text.TryGetValue(choice, out var sb) ? sb : Text[choice] = new StringBuilder()).Append(Encoding.UTF8.GetString(utf8));
    }

    /// <summary>An OpenAI Chat stream whose deltas come in the given order; <paramref name="indexLast"/> writes each choice's index after its delta.</summary>
    private static byte[] Chat((int Choice, string Text)[] deltas, bool indexLast = false)
    {
        var sse = new StringBuilder();
        void Chunk(string choice) => sse.Append("data: {\"id\":\"chatcmpl-n2\",\"object\":\"chat.completion.chunk\",\"created\":1764115200,\"model\":\"gpt-4o-mini\",\"choices\":[")
            .Append(choice).Append("],\"usage\":null}\n\n");
        string Choice(int index, string delta, string finish) => indexLast
            ? $"{{\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish},\"index\":{index}}}"
            : $"{{\"index\":{index},\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}";
        var choices = deltas.Select(d => d.Choice).Distinct().Order().ToArray();
        foreach (int c in choices)
        {
            Chunk(Choice(c, "{\"role\":\"assistant\",\"content\":\"\"}", "null"));
        }
        foreach (var (c, text) in deltas)
        {
            Chunk(Choice(c, $"{{\"content\":{JsonSerializer.Serialize(text)}}}", "null"));
        }
        foreach (int c in choices)
        {
            Chunk(Choice(c, "{}", "\"stop\""));
        }
        sse.Append("data: {\"id\":\"chatcmpl-n2\",\"object\":\"chat.completion.chunk\",\"created\":1764115200,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":40,\"total_tokens\":49}}\n\n");
        sse.Append("data: [DONE]\n\n");
        return Encoding.UTF8.GetBytes(sse.ToString());
    }

    /// <summary>A Gemini stream with candidateCount=2: the index follows the content and is left out for candidate 0.</summary>
    private static byte[] Gemini((int Choice, string Text)[] deltas)
    {
        var sse = new StringBuilder();
        foreach (var (c, text) in deltas)
        {
            string index = c == 0 ? "" : $",\"index\":{c}";
            sse.Append($"data: {{\"candidates\":[{{\"content\":{{\"role\":\"model\",\"parts\":[{{\"text\":{JsonSerializer.Serialize(text)}}}]}}{index}}}],\"usageMetadata\":{{\"trafficType\":\"ON_DEMAND\"}},\"modelVersion\":\"gemini-2.5-flash\"}}\n\n");
        }
        sse.Append("data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"\"}]},\"finishReason\":\"STOP\"},{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"\"}]},\"finishReason\":\"STOP\",\"index\":1}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":30,\"totalTokenCount\":33},\"modelVersion\":\"gemini-2.5-flash\"}\n\n");
        return Encoding.UTF8.GetBytes(sse.ToString());
    }

    // Choice 0 says the phrase, but choice 1's long delta comes between its halves: one shared window
    // would have lost "secret" by the time " sauce" came.
    private static readonly (int, string)[] Hidden =
    [
        (0, "Our secret"),
        (1, "A plain answer with far more text in it than any window carries over"),
        (0, " sauce is salt."),
        (1, " and it ends here."),
    ];

    // No choice says the phrase; the end of choice 0's delta followed by the start of choice 1's does.
    private static readonly (int, string)[] Faked =
    [
        (0, "Keep it secret"),
        (1, " sauce on the side."),
        (0, ", keep it safe."),
    ];

    private static byte[] Stream(string shape, (int, string)[] deltas) => shape switch
    {
        "chat" => Chat(deltas),
        "chat-index-last" => Chat(deltas, indexLast: true),
        "gemini" => Gemini(deltas),
        _ => throw new ArgumentOutOfRangeException(nameof(shape)),
    };

    private static LlmStreamFormat Format(string shape) => shape == "gemini" ? LlmStreamFormat.Gemini : LlmStreamFormat.OpenAIChat;

    public static TheoryData<string> Shapes => new() { "chat", "chat-index-last", "gemini" };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void TextObserver_InterleavedChoices_EachChoiceItsOwnTextAtEverySplit(string shape)
    {
        var bytes = Stream(shape, Hidden);
        for (int cut = 0; cut < bytes.Length; cut++)
        {
            var observer = new PerChoice();
            new LlmStreamMeter(Format(shape)) { TextObserver = observer }.Observe(cut == 0 ? SseTestInput.Segmented(bytes) : SseTestInput.Segmented(bytes, cut));

            Assert.Equal("Our secret sauce is salt.", observer.Text[0].ToString());
            Assert.Equal("A plain answer with far more text in it than any window carries over and it ends here.", observer.Text[1].ToString());
            Assert.Equal(2, observer.Text.Count);
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void StreamMatcher_PhraseOfOneChoiceSplitByAnothersText_IsFoundAtEverySplit(string shape)
    {
        var bytes = Stream(shape, Hidden);
        for (int cut = 0; cut < bytes.Length; cut++)
        {
            var matcher = new DenyStreamMatcher(SecretSauce, Window);
            new LlmStreamMeter(Format(shape)) { TextObserver = matcher }.Observe(cut == 0 ? SseTestInput.Segmented(bytes) : SseTestInput.Segmented(bytes, cut));

            Assert.Equal(new DenyMatch(0, TimedOut: false), matcher.Matched);
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void StreamMatcher_PhraseOnlyAcrossTwoChoices_IsNotAMatchAtAnySplit(string shape)
    {
        var bytes = Stream(shape, Faked);
        for (int cut = 0; cut < bytes.Length; cut++)
        {
            var matcher = new DenyStreamMatcher(SecretSauce, Window);
            new LlmStreamMeter(Format(shape)) { TextObserver = matcher }.Observe(cut == 0 ? SseTestInput.Segmented(bytes) : SseTestInput.Segmented(bytes, cut));

            Assert.Null(matcher.Matched);
        }
    }

    [Fact]
    public void StreamMatcher_OneSharedWindow_WouldHaveMissedAndFaked()
    {
        // What the per-choice windows fix, shown on the text alone: fed to one window in stream order.
        var hidden = new DenyStreamMatcher(SecretSauce, Window);
        var faked = new DenyStreamMatcher(SecretSauce, Window);
        foreach (var (_, text) in Hidden)
        {
            hidden.Feed(0, text);
        }
        foreach (var (_, text) in Faked)
        {
            faked.Feed(0, text);
        }

        Assert.Null(hidden.Matched);
        Assert.NotNull(faked.Matched);
    }

    [Theory]
    [InlineData(15, false)]
    [InlineData(16, true)]
    [InlineData(1000, true)]
    public void StreamMatcher_ChoicePastTheCap_FailsClosed(int choice, bool tooMany)
    {
        var bytes = Chat([(0, "fine"), (choice, "unchecked text")]);
        var matcher = new DenyStreamMatcher(SecretSauce, Window);

        new LlmStreamMeter(LlmStreamFormat.OpenAIChat) { TextObserver = matcher }.Observe(SseTestInput.Segmented(bytes));

        Assert.Equal(tooMany ? new DenyMatch(-1, TimedOut: false, TooManyChoices: true) : null, matcher.Matched);
    }

    [Theory]
    [InlineData("\"1\"")]
    [InlineData("-1")]
    [InlineData("1.5")]
    public void StreamMatcher_ChoiceIndexNotAnInteger_FailsClosed(string index)
    {
        var bytes = Encoding.UTF8.GetBytes($"data: {{\"choices\":[{{\"index\":{index},\"delta\":{{\"content\":\"hello\"}}}}]}}\n\ndata: [DONE]\n\n");
        var matcher = new DenyStreamMatcher(SecretSauce, Window);

        new LlmStreamMeter(LlmStreamFormat.OpenAIChat) { TextObserver = matcher }.Observe(SseTestInput.Segmented(bytes));

        Assert.True(matcher.Matched?.TooManyChoices);
    }

    [Fact]
    public void Reset_AfterAMatchOnChoiceThree_ChecksTheNextStreamAfresh()
    {
        var matcher = new DenyStreamMatcher(SecretSauce, Window);
        matcher.Feed(3, "the secret");
        Assert.NotNull(matcher.Feed(3, " sauce"));

        matcher.Reset();

        Assert.Null(matcher.Feed(3, " sauce"));
        Assert.Null(matcher.Feed(2, "secret"));
        Assert.Null(matcher.Feed(3, " sauce")); // choice 2's "secret" is not choice 3's
    }
}
