using System.Text;
using System.Text.RegularExpressions;
using ProxyCore.Llm.Safety;
using ProxyCore.Llm.Sse;
using ProxyCore.Llm.Tests.Sse;

namespace ProxyCore.Llm.Tests.Safety;

/// <summary>Deny patterns on answers: the stream check over the meter's text (every recorded format, split at every byte) and the whole-answer scan.</summary>
public class DenyOutputTests
{
    private sealed class Recorder : IStreamTextObserver
    {
        public readonly List<byte> Text = [];

        public void OnText(int choice, ReadOnlySpan<byte> utf8) => Text.AddRange(utf8.ToArray());
    }

    public static TheoryData<string, LlmStreamFormat> Streams => new()
    {
        { "openai-chat-usage.sse", LlmStreamFormat.OpenAIChat },
        { "openai-chat-no-usage.sse", LlmStreamFormat.OpenAIChat },
        { "openai-chat-tool-call.sse", LlmStreamFormat.OpenAIChat },
        { "openai-chat-cut.sse", LlmStreamFormat.OpenAIChat },
        { "openai-responses.sse", LlmStreamFormat.OpenAIResponses },
        { "anthropic-messages.sse", LlmStreamFormat.AnthropicMessages },
        { "gemini.sse", LlmStreamFormat.Gemini },
    };

    private static string ObservedText(LlmStreamFormat format, byte[] bytes, params int[] cuts)
    {
        var recorder = new Recorder();
        var meter = new LlmStreamMeter(format) { TextObserver = recorder };
        meter.Observe(SseTestInput.Segmented(bytes, cuts));
        return Encoding.UTF8.GetString([.. recorder.Text]);
    }

    [Theory]
    [MemberData(nameof(Streams))]
    public void TextObserver_AnySplit_SeesTheSameText(string file, LlmStreamFormat format)
    {
        var bytes = CorpusFiles.LlmStream(file);
        string whole = ObservedText(format, bytes);

        Assert.NotEmpty(whole);
        for (int cut = 1; cut < bytes.Length; cut++)
        {
            Assert.Equal(whole, ObservedText(format, bytes, cut));
        }
    }

    [Theory]
    [MemberData(nameof(Streams))]
    public void StreamMatcher_PhraseAcrossDeltas_IsFoundAtEverySplit(string file, LlmStreamFormat format)
    {
        var bytes = CorpusFiles.LlmStream(file);
        string text = ObservedText(format, bytes);
        // The last 10 characters of the answer: in these recordings they span more than one delta.
        var patterns = new DenyPatterns([Regex.Escape(text[^Math.Min(10, text.Length)..])]);
        var absent = new DenyPatterns(["no such phrase in any recording"]);

        for (int cut = 0; cut < bytes.Length; cut++)
        {
            var matcher = new DenyStreamMatcher(patterns, windowChars: 16);
            var clean = new DenyStreamMatcher(absent, windowChars: 16);
            var meter = new LlmStreamMeter(format) { TextObserver = matcher };
            var cleanMeter = new LlmStreamMeter(format) { TextObserver = clean };
            var input = cut == 0 ? SseTestInput.Segmented(bytes) : SseTestInput.Segmented(bytes, cut);
            meter.Observe(input);
            cleanMeter.Observe(input);

            Assert.Equal(new DenyMatch(0, false), matcher.Matched);
            Assert.Null(clean.Matched);
        }
    }

    [Fact]
    public void FeedUtf8_MultibyteTextCutAtEveryByte_Matches()
    {
        var utf8 = Encoding.UTF8.GetBytes("Grüße — 秘密のソース, then more text");
        var patterns = new DenyPatterns(["秘密のソース"]);

        for (int cut = 1; cut < utf8.Length; cut++)
        {
            var matcher = new DenyStreamMatcher(patterns, windowChars: 8);
            matcher.FeedUtf8(utf8.AsSpan(0, cut));
            matcher.FeedUtf8(utf8.AsSpan(cut));
            Assert.NotNull(matcher.Matched);
        }
    }

    [Fact]
    public void StreamMatcher_MatchLongerThanTheWindowPlusOne_IsMissedAcrossDeltas()
    {
        // The documented bound: a match is found across a cut only if it fits in window + the new delta.
        var matcher = new DenyStreamMatcher(new DenyPatterns(["abcdefghij"]), windowChars: 4);

        foreach (char c in "abcdefghij")
        {
            matcher.Feed([c]);
        }

        Assert.Null(matcher.Matched);
    }

    [Theory]
    [InlineData("""{"choices":[{"message":{"role":"assistant","content":"the Secret   Sauce is salt"}}]}""", 0)]
    [InlineData("""{"choices":[{"message":{"content":null,"tool_calls":[{"function":{"name":"f","arguments":"{\"q\":\"secret sauce\"}"}}]}}]}""", 0)]
    [InlineData("""{"output":[{"type":"message","content":[{"type":"output_text","text":"secret\nsauce"}]}]}""", 0)]
    [InlineData("""{"content":[{"type":"text","text":"fine"},{"type":"tool_use","id":"t","name":"x","input":{"recipe":{"step":"secret sauce"}}}]}""", 0)]
    [InlineData("""{"content":[{"type":"text","text":"the \u0073ecret sauce"}]}""", 0)] // escaped in JSON
    [InlineData("""{"content":[{"type":"text","text":"rm -rf / now"}]}""", 1)]
    [InlineData("""{"id":"secret sauce","model":"secret sauce","content":"clean"}""", -1)] // ids and names are not answer text
    [InlineData("""{"choices":[{"message":{"content":"nothing to see"}}]}""", -1)]
    [InlineData("""not json at all secret sauce""", -1)]
    public void Json_AnswerShapes_FindTheFirstMatchingPattern(string json, int expected)
    {
        var patterns = new DenyPatterns([@"secret\s+sauce", @"rm\s+-rf"]);

        var match = DenyOutputScan.Json(Encoding.UTF8.GetBytes(json), patterns);

        Assert.Equal(expected, match?.PatternIndex ?? -1);
    }
}
