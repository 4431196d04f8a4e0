using System.Buffers;
using System.Text;
using System.Text.Json;
using ProxyCore.Llm.Cache;
using ProxyCore.Llm.Sse;

namespace ProxyCore.Llm.Tests.Cache;

public class LlmStreamReplayTests
{
    private const string ChatCompletion = """
        {"id":"chatcmpl-1","object":"chat.completion","created":1764115204,"model":"gpt-4o-mini","system_fingerprint":"fp_1",
         "choices":[{"index":0,"message":{"role":"assistant","content":"Ahoj means hello in Czech. 𝄞 And a long tail so the text is cut into several pieces of sixty-four chars.","refusal":null},"logprobs":null,"finish_reason":"stop"}],
         "usage":{"prompt_tokens":14,"completion_tokens":7,"total_tokens":21}}
        """;

    private const string ChatToolCall = """
        {"id":"chatcmpl-2","object":"chat.completion","created":1,"model":"gpt-4o-mini",
         "choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Lisbon\"}"}},{"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"finish_reason":"tool_calls"}],
         "usage":{"prompt_tokens":62,"completion_tokens":16,"total_tokens":78}}
        """;

    private const string AnthropicMessage = """
        {"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5",
         "content":[{"type":"thinking","thinking":"Let me think.","signature":"sig=="},{"type":"text","text":"Ahoj means hello in Czech."},{"type":"tool_use","id":"toolu_1","name":"lookup","input":{"q":"ahoj","n":2}}],
         "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":12,"cache_read_input_tokens":3}}
        """;

    private static (byte[] Stream, List<(string Type, JsonElement Data)> Events) Replay(Func<IBufferWriter<byte>, bool> replay)
    {
        var output = new ArrayBufferWriter<byte>();
        Assert.True(replay(output));
        var events = new List<(string, JsonElement)>();
        var collector = new Collector(events);
        var reader = new SseReader();
        reader.Read(output.WrittenSpan, ref collector);
        return (output.WrittenSpan.ToArray(), events);
    }

    private readonly struct Collector(List<(string, JsonElement)> events) : ISseEventHandler
    {
        public void OnEvent(in SseEvent e) => events.Add((Encoding.UTF8.GetString(e.Type),
            e.Data.SequenceEqual("[DONE]"u8) ? default : JsonDocument.Parse(e.Data.ToArray()).RootElement));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void OpenAIChat_Completion_StreamCarriesSameTextFinishAndUsage(bool includeUsage)
    {
        var (stream, events) = Replay(o => LlmStreamReplay.OpenAIChat(Encoding.UTF8.GetBytes(ChatCompletion), o, includeUsage));
        var text = new StringBuilder();
        string? finish = null;
        foreach (var (_, data) in events.Where(e => e.Data.ValueKind == JsonValueKind.Object))
        {
            Assert.Equal("chat.completion.chunk", data.GetProperty("object").GetString());
            Assert.Equal("chatcmpl-1", data.GetProperty("id").GetString());
            foreach (var choice in data.GetProperty("choices").EnumerateArray())
            {
                if (choice.GetProperty("delta").TryGetProperty("content", out var c))
                {
                    text.Append(c.GetString());
                }
                if (choice.GetProperty("finish_reason").ValueKind == JsonValueKind.String)
                {
                    finish = choice.GetProperty("finish_reason").GetString();
                }
            }
        }
        using var doc = JsonDocument.Parse(ChatCompletion);
        Assert.Equal(doc.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(), text.ToString());
        Assert.Equal("stop", finish);
        Assert.True(events.Count(e => e.Data.ValueKind == JsonValueKind.Object && e.Data.GetProperty("choices").GetArrayLength() > 0 && e.Data.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out _)) > 2, "text is sent in pieces");
        Assert.Equal(JsonValueKind.Undefined, events[^1].Data.ValueKind); // [DONE]

        // Our own meter reads the replay as a complete answer, with the usage when it was asked for.
        var meter = new LlmStreamMeter(LlmStreamFormat.OpenAIChat);
        meter.Observe(stream);
        Assert.Equal(LlmStreamOutcome.Completed, meter.Complete());
        if (includeUsage)
        {
            Assert.Equal(14, meter.Usage.PromptTokens);
            Assert.Equal(7, meter.Usage.CompletionTokens);
        }
        Assert.Equal("gpt-4o-mini", meter.GetModel());
    }

    [Fact]
    public void OpenAIChat_ToolCalls_IdsNamesAndArgumentsRebuilt()
    {
        var (stream, events) = Replay(o => LlmStreamReplay.OpenAIChat(Encoding.UTF8.GetBytes(ChatToolCall), o, includeUsage: true, chunkChars: 4));
        var args = new Dictionary<int, StringBuilder>();
        var names = new Dictionary<int, string>();
        foreach (var (_, data) in events.Where(e => e.Data.ValueKind == JsonValueKind.Object))
        {
            foreach (var choice in data.GetProperty("choices").EnumerateArray())
            {
                if (!choice.GetProperty("delta").TryGetProperty("tool_calls", out var calls))
                {
                    continue;
                }
                foreach (var call in calls.EnumerateArray())
                {
                    int i = call.GetProperty("index").GetInt32();
                    var f = call.GetProperty("function");
                    if (f.TryGetProperty("name", out var n))
                    {
                        names[i] = n.GetString()!;
                        Assert.StartsWith("call_", call.GetProperty("id").GetString());
                    }
                    (args.TryGetValue(i, out var sb) ? sb : args[i] = new StringBuilder()).Append(f.GetProperty("arguments").GetString());
                }
            }
        }
        Assert.Equal("get_weather", names[0]);
        Assert.Equal("get_time", names[1]);
        Assert.Equal("{\"city\":\"Lisbon\"}", args[0].ToString());
        Assert.Equal("{}", args[1].ToString());
        var meter = new LlmStreamMeter(LlmStreamFormat.OpenAIChat);
        meter.Observe(stream);
        Assert.Equal(LlmStreamOutcome.Completed, meter.Complete());
        Assert.Equal("tool_calls", Encoding.UTF8.GetString(meter.FinishReason));
    }

    [Fact]
    public void Anthropic_Message_EventsInOrderWithBlocksRebuilt()
    {
        var (stream, events) = Replay(o => LlmStreamReplay.Anthropic(Encoding.UTF8.GetBytes(AnthropicMessage), o, chunkChars: 5));
        Assert.Equal("message_start", events[0].Type);
        Assert.Equal("message_stop", events[^1].Type);
        Assert.Equal("message_delta", events[^2].Type);
        Assert.All(events, e => Assert.Equal(e.Type, e.Data.GetProperty("type").GetString()));
        var blocks = new Dictionary<int, StringBuilder>();
        foreach (var (type, data) in events.Where(e => e.Type == "content_block_delta"))
        {
            int i = data.GetProperty("index").GetInt32();
            var d = data.GetProperty("delta");
            string piece = d.GetProperty("type").GetString() switch
            {
                "text_delta" => d.GetProperty("text").GetString()!,
                "thinking_delta" => d.GetProperty("thinking").GetString()!,
                "signature_delta" => "|" + d.GetProperty("signature").GetString(),
                "input_json_delta" => d.GetProperty("partial_json").GetString()!,
                var other => throw new Xunit.Sdk.XunitException(other),
            };
            (blocks.TryGetValue(i, out var sb) ? sb : blocks[i] = new StringBuilder()).Append(piece);
        }
        Assert.Equal("Let me think.|sig==", blocks[0].ToString());
        Assert.Equal("Ahoj means hello in Czech.", blocks[1].ToString());
        Assert.Equal(JsonDocument.Parse("{\"q\":\"ahoj\",\"n\":2}").RootElement.GetRawText(), JsonDocument.Parse(blocks[2].ToString()).RootElement.GetRawText());
        Assert.Equal("tool_use", events[^2].Data.GetProperty("delta").GetProperty("stop_reason").GetString());
        var start = events.First(e => e.Type == "content_block_start" && e.Data.GetProperty("index").GetInt32() == 2).Data.GetProperty("content_block");
        Assert.Equal("toolu_1", start.GetProperty("id").GetString());
        Assert.Equal(JsonValueKind.Object, start.GetProperty("input").ValueKind);

        var meter = new LlmStreamMeter(LlmStreamFormat.AnthropicMessages);
        meter.Observe(stream);
        Assert.Equal(LlmStreamOutcome.Completed, meter.Complete());
        Assert.Equal(25, meter.Usage.PromptTokens);
        Assert.Equal(12, meter.Usage.CompletionTokens);
    }

    [Theory]
    [InlineData("")]
    [InlineData("[1]")]
    [InlineData("{\"choices\":3}")]
    [InlineData("{not json")]
    public void Replay_NotAnAnswer_FalseAndNothingWritten(string json)
    {
        var output = new ArrayBufferWriter<byte>();
        Assert.False(LlmStreamReplay.OpenAIChat(Encoding.UTF8.GetBytes(json), output, true));
        Assert.False(LlmStreamReplay.Anthropic(Encoding.UTF8.GetBytes(json), output));
        Assert.Equal(0, output.WrittenCount);
    }

    [Fact]
    public void Pieces_SurrogatePairAtCut_KeptWhole()
    {
        var pieces = LlmStreamReplay.Pieces("a𝄞b𝄞", 2).ToArray();
        Assert.Equal("a𝄞b𝄞", string.Concat(pieces));
        Assert.All(pieces, p => Assert.False(char.IsHighSurrogate(p[^1])));
    }
}
