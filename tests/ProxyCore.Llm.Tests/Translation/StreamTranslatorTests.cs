using System.Buffers;
using System.Text;
using System.Text.Json;
using ProxyCore.Llm.Sse;
using ProxyCore.Llm.Tests.Sse;
using ProxyCore.Llm.Translation;

namespace ProxyCore.Llm.Tests.Translation;

public class StreamTranslatorTests
{
    private static (string Output, bool Completed) AnthropicToOpenAI(byte[] stream, int split, bool includeUsage = true)
    {
        var translator = new AnthropicToOpenAIStream(includeUsage, created: 1764115204);
        var output = new ArrayBufferWriter<byte>();
        translator.Translate(stream.AsSpan(0, split), output);
        translator.Translate(stream.AsSpan(split), output);
        bool completed = translator.Complete(output);
        return (Encoding.UTF8.GetString(output.WrittenSpan), completed);
    }

    private static (string Output, bool Completed) OpenAIToAnthropic(byte[] stream, int split)
    {
        var translator = new OpenAIToAnthropicStream();
        var output = new ArrayBufferWriter<byte>();
        translator.Translate(stream.AsSpan(0, split), output);
        translator.Translate(stream.AsSpan(split), output);
        bool completed = translator.Complete(output);
        return (Encoding.UTF8.GetString(output.WrittenSpan), completed);
    }

    private static List<JsonElement> Events(string sse) =>
        sse.Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(e => e.Split('\n').First(l => l.StartsWith("data: ", StringComparison.Ordinal))["data: ".Length..])
            .Where(d => d != "[DONE]")
            .Select(d => JsonDocument.Parse(d).RootElement)
            .ToList();

    [Fact]
    public void AnthropicToOpenAI_CorpusStreamSplitAtEveryOffset_SameOutputMeteredComplete()
    {
        var stream = CorpusFiles.LlmStream("anthropic-messages.sse");
        var (whole, completed) = AnthropicToOpenAI(stream, stream.Length);
        Assert.True(completed);
        for (int split = 0; split <= stream.Length; split++)
        {
            Assert.Equal(whole, AnthropicToOpenAI(stream, split).Output);
        }
        var events = Events(whole);
        Assert.All(events, e => Assert.Equal("chat.completion.chunk", e.GetProperty("object").GetString()));
        string text = string.Concat(events.Where(e => e.GetProperty("choices").GetArrayLength() > 0)
            .Select(e => e.GetProperty("choices")[0].GetProperty("delta"))
            .Where(d => d.TryGetProperty("content", out _))
            .Select(d => d.GetProperty("content").GetString()));
        Assert.Equal("Ahoj means hello in Czech.", text);
        Assert.EndsWith("data: [DONE]\n\n", whole);

        var meter = new LlmStreamMeter(LlmStreamFormat.OpenAIChat);
        meter.Observe(Encoding.UTF8.GetBytes(whole));
        Assert.Equal(LlmStreamOutcome.Completed, meter.Complete());
        Assert.Equal(25, meter.Usage.PromptTokens);
        Assert.Equal(12, meter.Usage.CompletionTokens);
        Assert.Equal("stop", Encoding.UTF8.GetString(meter.FinishReason));
        Assert.Equal("claude-haiku-4-5", meter.GetModel());
    }

    [Fact]
    public void AnthropicToOpenAI_NoUsageAsked_NoUsageChunk()
    {
        var stream = CorpusFiles.LlmStream("anthropic-messages.sse");
        var (output, _) = AnthropicToOpenAI(stream, stream.Length, includeUsage: false);
        Assert.DoesNotContain("\"usage\"", output);
    }

    [Fact]
    public void AnthropicToOpenAI_OverloadedMidStream_ErrorChunkNoDone()
    {
        var stream = CorpusFiles.LlmStream("anthropic-overloaded.sse");
        var (output, completed) = AnthropicToOpenAI(stream, stream.Length / 2);
        Assert.False(completed);
        Assert.DoesNotContain("[DONE]", output);
        var error = Events(output)[^1].GetProperty("error");
        Assert.Equal("overloaded_error", error.GetProperty("type").GetString());
        var meter = new LlmStreamMeter(LlmStreamFormat.OpenAIChat);
        meter.Observe(Encoding.UTF8.GetBytes(output));
        Assert.NotEqual(LlmStreamOutcome.Completed, meter.Complete());
    }

    [Fact]
    public void AnthropicToOpenAI_CutBeforeMessageStop_ErrorChunk()
    {
        var stream = CorpusFiles.LlmStream("anthropic-messages.sse");
        int cut = Encoding.UTF8.GetString(stream).IndexOf("event: message_delta", StringComparison.Ordinal);
        var (output, completed) = AnthropicToOpenAI(stream.AsSpan(0, cut).ToArray(), cut / 2);
        Assert.False(completed);
        Assert.Contains("ended before message_stop", output);
    }

    [Theory]
    [InlineData("openai-chat-usage.sse", 14, 7, "end_turn")]
    [InlineData("openai-chat-tool-call.sse", 62, 16, "tool_use")]
    [InlineData("openai-chat-vllm-null-choices.sse", 31, 4, null)]
    public void OpenAIToAnthropic_CorpusStreamSplitAtEveryOffset_SameOutputMeteredComplete(string file, int prompt, int completion, string? stopReason)
    {
        var stream = CorpusFiles.LlmStream(file);
        var (whole, completed) = OpenAIToAnthropic(stream, stream.Length);
        Assert.True(completed);
        for (int split = 0; split <= stream.Length; split++)
        {
            Assert.Equal(whole, OpenAIToAnthropic(stream, split).Output);
        }
        var events = Events(whole);
        Assert.Equal("message_start", events[0].GetProperty("type").GetString());
        Assert.Equal("message_stop", events[^1].GetProperty("type").GetString());
        // Every delta refers to a block that was started and not yet stopped.
        var open = new HashSet<int>();
        foreach (var e in events)
        {
            switch (e.GetProperty("type").GetString())
            {
                case "content_block_start":
                    Assert.True(open.Add(e.GetProperty("index").GetInt32()));
                    break;
                case "content_block_delta":
                    Assert.Contains(e.GetProperty("index").GetInt32(), open);
                    break;
                case "content_block_stop":
                    Assert.True(open.Remove(e.GetProperty("index").GetInt32()));
                    break;
            }
        }
        Assert.Empty(open);
        var meter = new LlmStreamMeter(LlmStreamFormat.AnthropicMessages);
        meter.Observe(Encoding.UTF8.GetBytes(whole));
        Assert.Equal(LlmStreamOutcome.Completed, meter.Complete());
        Assert.Equal(prompt, meter.Usage.PromptTokens);
        Assert.Equal(completion, meter.Usage.CompletionTokens);
        if (stopReason is not null)
        {
            Assert.Equal(stopReason, Encoding.UTF8.GetString(meter.FinishReason));
        }
    }

    [Fact]
    public void OpenAIToAnthropic_ToolCall_NameIdAndArgumentsRebuilt()
    {
        var stream = CorpusFiles.LlmStream("openai-chat-tool-call.sse");
        var events = Events(OpenAIToAnthropic(stream, stream.Length).Output);
        var start = events.Single(e => e.GetProperty("type").GetString() == "content_block_start").GetProperty("content_block");
        Assert.Equal("tool_use", start.GetProperty("type").GetString());
        Assert.Equal("call_Zk3", start.GetProperty("id").GetString());
        Assert.Equal("get_weather", start.GetProperty("name").GetString());
        string json = string.Concat(events.Where(e => e.GetProperty("type").GetString() == "content_block_delta")
            .Select(e => e.GetProperty("delta").GetProperty("partial_json").GetString()));
        Assert.Equal("Lisbon", JsonDocument.Parse(json).RootElement.GetProperty("city").GetString());
    }

    [Fact]
    public void OpenAIToAnthropic_CutStream_ErrorEvent()
    {
        var stream = CorpusFiles.LlmStream("openai-chat-cut.sse");
        var (output, completed) = OpenAIToAnthropic(stream, 7);
        Assert.False(completed);
        Assert.Contains("event: error", output);
        Assert.DoesNotContain("message_stop", output);
        var meter = new LlmStreamMeter(LlmStreamFormat.AnthropicMessages);
        meter.Observe(Encoding.UTF8.GetBytes(output));
        Assert.NotEqual(LlmStreamOutcome.Completed, meter.Complete());
    }

    [Fact]
    public void RoundTrip_AnthropicToOpenAIToAnthropic_SameTextAndUsage()
    {
        var stream = CorpusFiles.LlmStream("anthropic-messages.sse");
        var openai = Encoding.UTF8.GetBytes(AnthropicToOpenAI(stream, stream.Length).Output);
        var (back, completed) = OpenAIToAnthropic(openai, openai.Length / 3);
        Assert.True(completed);
        string text = string.Concat(Events(back).Where(e => e.GetProperty("type").GetString() == "content_block_delta")
            .Select(e => e.GetProperty("delta").GetProperty("text").GetString()));
        Assert.Equal("Ahoj means hello in Czech.", text);
        var meter = new LlmStreamMeter(LlmStreamFormat.AnthropicMessages);
        meter.Observe(Encoding.UTF8.GetBytes(back));
        Assert.Equal(LlmStreamOutcome.Completed, meter.Complete());
        Assert.Equal(25, meter.Usage.PromptTokens);
        Assert.Equal(12, meter.Usage.CompletionTokens);
    }

    /// <summary>
    /// An Anthropic Messages stream in the documented tool-use shape: a text block, then two tool_use blocks
    /// whose input arrives as input_json_delta pieces (the first piece empty), a ping between, stop_reason tool_use.
    /// </summary>
    internal static readonly byte[] AnthropicToolUse = Encoding.UTF8.GetBytes(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01T\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"output_tokens\":2}}}\n\n" +
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking both cities.\"}}\n\n" +
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01A\",\"name\":\"get_weather\",\"input\":{}}}\n\n" +
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n" +
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Lis\"}}\n\n" +
        "event: ping\ndata: {\"type\": \"ping\"}\n\n" +
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"bon\\\"}\"}}\n\n" +
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n" +
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01B\",\"name\":\"get_weather\",\"input\":{}}}\n\n" +
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Porto\\\"}\"}}\n\n" +
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n" +
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n" +
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");

    [Fact]
    public void AnthropicToOpenAI_ToolUseSplitAtEveryOffset_ToolCallsRebuiltInOrder()
    {
        var (whole, completed) = AnthropicToOpenAI(AnthropicToolUse, AnthropicToolUse.Length);
        Assert.True(completed);
        for (int split = 0; split <= AnthropicToolUse.Length; split++)
        {
            Assert.Equal(whole, AnthropicToOpenAI(AnthropicToolUse, split).Output);
        }

        var deltas = Events(whole).Where(e => e.GetProperty("choices").GetArrayLength() > 0).Select(e => e.GetProperty("choices")[0]).ToList();
        Assert.Equal("Checking both cities.", string.Concat(deltas.Select(c => c.GetProperty("delta"))
            .Where(d => d.TryGetProperty("content", out var t) && t.ValueKind == JsonValueKind.String).Select(d => d.GetProperty("content").GetString())));
        var calls = deltas.Select(c => c.GetProperty("delta")).Where(d => d.TryGetProperty("tool_calls", out _))
            .SelectMany(d => d.GetProperty("tool_calls").EnumerateArray()).ToList();
        // Per call index: the first chunk carries id, type and name; the arguments are the pieces in order.
        var byIndex = calls.GroupBy(c => c.GetProperty("index").GetInt32()).OrderBy(g => g.Key).ToList();
        Assert.Equal([0, 1], byIndex.Select(g => g.Key));
        Assert.Equal(["toolu_01A", "toolu_01B"], byIndex.Select(g => g.First().GetProperty("id").GetString()));
        Assert.All(byIndex, g => Assert.Equal("get_weather", g.First().GetProperty("function").GetProperty("name").GetString()));
        Assert.Equal(["Lisbon", "Porto"], byIndex.Select(g => JsonDocument.Parse(string.Concat(g.Select(c => c.GetProperty("function").GetProperty("arguments").GetString())))
            .RootElement.GetProperty("city").GetString()));
        Assert.Equal("tool_calls", deltas.Last(c => c.GetProperty("finish_reason").ValueKind == JsonValueKind.String).GetProperty("finish_reason").GetString());

        var meter = new LlmStreamMeter(LlmStreamFormat.OpenAIChat);
        meter.Observe(Encoding.UTF8.GetBytes(whole));
        Assert.Equal(LlmStreamOutcome.Completed, meter.Complete());
        Assert.Equal((472, 89), (meter.Usage.PromptTokens, meter.Usage.CompletionTokens));
    }

    [Fact]
    public void RoundTrip_AnthropicToolUseToOpenAIAndBack_SameCalls()
    {
        var openai = Encoding.UTF8.GetBytes(AnthropicToOpenAI(AnthropicToolUse, AnthropicToolUse.Length).Output);
        var (back, completed) = OpenAIToAnthropic(openai, openai.Length / 2);
        Assert.True(completed);
        var events = Events(back);
        var starts = events.Where(e => e.GetProperty("type").GetString() == "content_block_start")
            .Select(e => e.GetProperty("content_block")).Where(b => b.GetProperty("type").GetString() == "tool_use").ToList();
        Assert.Equal(["toolu_01A", "toolu_01B"], starts.Select(b => b.GetProperty("id").GetString()));
        var stop = events.Single(e => e.GetProperty("type").GetString() == "message_delta").GetProperty("delta").GetProperty("stop_reason").GetString();
        Assert.Equal("tool_use", stop);
    }
}
