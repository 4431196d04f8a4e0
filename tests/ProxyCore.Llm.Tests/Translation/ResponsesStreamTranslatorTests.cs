using System.Buffers;
using System.Text;
using System.Text.Json;
using ProxyCore.Llm.Sse;
using ProxyCore.Llm.Tests.Sse;
using ProxyCore.Llm.Translation;

namespace ProxyCore.Llm.Tests.Translation;

/// <summary>Anthropic Messages streams as OpenAI Responses streams.</summary>
public class ResponsesStreamTranslatorTests
{
    private static (string Output, bool Completed) Translate(byte[] stream, int split)
    {
        var translator = new AnthropicToResponsesStream(createdAt: 1764115204);
        var output = new ArrayBufferWriter<byte>();
        translator.Translate(stream.AsSpan(0, split), output);
        translator.Translate(stream.AsSpan(split), output);
        bool completed = translator.Complete(output);
        return (Encoding.UTF8.GetString(output.WrittenSpan), completed);
    }

    /// <summary>(event name, data) of each event; the event line and the data's type must agree.</summary>
    private static List<(string Name, JsonElement Data)> Events(string sse) =>
        sse.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e =>
        {
            var lines = e.Split('\n');
            string name = lines.First(l => l.StartsWith("event: ", StringComparison.Ordinal))["event: ".Length..];
            var data = JsonDocument.Parse(lines.First(l => l.StartsWith("data: ", StringComparison.Ordinal))["data: ".Length..]).RootElement;
            Assert.Equal(name, data.GetProperty("type").GetString());
            return (name, data);
        }).ToList();

    [Fact]
    public void Translate_CorpusStreamSplitAtEveryOffset_SameEventsTextAndUsage()
    {
        var stream = CorpusFiles.LlmStream("anthropic-messages.sse");
        var (whole, completed) = Translate(stream, stream.Length);
        Assert.True(completed);
        for (int split = 0; split <= stream.Length; split++)
        {
            Assert.Equal(whole, Translate(stream, split).Output);
        }

        var events = Events(whole);
        Assert.Equal(Enumerable.Range(0, events.Count), events.Select(e => e.Data.GetProperty("sequence_number").GetInt32()));
        var names = events.Select(e => e.Name).Where(n => n != "response.output_text.delta").ToList();
        Assert.Equal(["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
            "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"], names);
        string text = string.Concat(events.Where(e => e.Name == "response.output_text.delta").Select(e => e.Data.GetProperty("delta").GetString()));
        Assert.Equal("Ahoj means hello in Czech.", text);
        Assert.Equal(text, events.Single(e => e.Name == "response.output_text.done").Data.GetProperty("text").GetString());

        var response = events[^1].Data.GetProperty("response");
        Assert.Equal("completed", response.GetProperty("status").GetString());
        Assert.Equal("claude-haiku-4-5", response.GetProperty("model").GetString());
        Assert.Equal(text, response.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal(25, response.GetProperty("usage").GetProperty("input_tokens").GetInt64());
        Assert.Equal(12, response.GetProperty("usage").GetProperty("output_tokens").GetInt64());
        Assert.Equal(37, response.GetProperty("usage").GetProperty("total_tokens").GetInt64());

        // What the stage's own Responses meter reads from it (the path a native Responses stream takes).
        var meter = new LlmStreamMeter(LlmStreamFormat.OpenAIResponses);
        meter.Observe(Encoding.UTF8.GetBytes(whole));
        Assert.Equal(LlmStreamOutcome.Completed, meter.Complete());
        Assert.Equal((25, 12), (meter.Usage.PromptTokens, meter.Usage.CompletionTokens));
    }

    [Fact]
    public void Translate_ToolUseSplitAtEveryOffset_FunctionCallItemsInOrder()
    {
        var stream = StreamTranslatorTests.AnthropicToolUse;
        var (whole, completed) = Translate(stream, stream.Length);
        Assert.True(completed);
        for (int split = 0; split <= stream.Length; split++)
        {
            Assert.Equal(whole, Translate(stream, split).Output);
        }

        var events = Events(whole);
        Assert.Equal("Checking both cities.", string.Concat(events.Where(e => e.Name == "response.output_text.delta").Select(e => e.Data.GetProperty("delta").GetString())));
        var added = events.Where(e => e.Name == "response.output_item.added").Select(e => e.Data.GetProperty("item")).ToList();
        Assert.Equal(["message", "function_call", "function_call"], added.Select(i => i.GetProperty("type").GetString()));
        Assert.Equal(["toolu_01A", "toolu_01B"], added.Skip(1).Select(i => i.GetProperty("call_id").GetString()));
        // The message item is done before the first call starts (output items do not interleave).
        int messageDone = events.FindIndex(e => e.Name == "response.output_item.done");
        int firstCall = events.FindIndex(e => e.Name == "response.output_item.added" && e.Data.GetProperty("item").GetProperty("type").GetString() == "function_call");
        Assert.True(messageDone < firstCall);
        var argumentsDone = events.Where(e => e.Name == "response.function_call_arguments.done").ToList();
        Assert.Equal(["Lisbon", "Porto"], argumentsDone.Select(e => JsonDocument.Parse(e.Data.GetProperty("arguments").GetString()!).RootElement.GetProperty("city").GetString()));
        foreach (var done in argumentsDone)
        {
            string itemId = done.Data.GetProperty("item_id").GetString()!;
            Assert.Equal(done.Data.GetProperty("arguments").GetString(), string.Concat(events
                .Where(e => e.Name == "response.function_call_arguments.delta" && e.Data.GetProperty("item_id").GetString() == itemId)
                .Select(e => e.Data.GetProperty("delta").GetString())));
        }

        var response = events[^1].Data.GetProperty("response");
        Assert.Equal("response.completed", events[^1].Name);
        Assert.Equal([0, 1, 2], events.Where(e => e.Name == "response.output_item.added").Select(e => e.Data.GetProperty("output_index").GetInt32()));
        var output = response.GetProperty("output");
        Assert.Equal(3, output.GetArrayLength());
        Assert.Equal("get_weather", output[2].GetProperty("name").GetString());
        Assert.Equal((472, 89), (response.GetProperty("usage").GetProperty("input_tokens").GetInt64(), response.GetProperty("usage").GetProperty("output_tokens").GetInt64()));
    }

    [Theory]
    [InlineData("event: message_delta", "ended before message_stop")] // cut: the provider's stream stops short
    public void Translate_CutBeforeMessageStop_ErrorEventNoCompleted(string cutAt, string message)
    {
        var stream = CorpusFiles.LlmStream("anthropic-messages.sse");
        int cut = Encoding.UTF8.GetString(stream).IndexOf(cutAt, StringComparison.Ordinal);
        var (output, completed) = Translate(stream.AsSpan(0, cut).ToArray(), cut / 2);
        Assert.False(completed);
        var last = Events(output)[^1];
        Assert.Equal("error", last.Name);
        Assert.Contains(message, last.Data.GetProperty("message").GetString());
        Assert.DoesNotContain("response.completed", output);
    }

    [Fact]
    public void Translate_OverloadedMidStream_ErrorEvent()
    {
        var stream = CorpusFiles.LlmStream("anthropic-overloaded.sse");
        var (output, completed) = Translate(stream, stream.Length / 2);
        Assert.False(completed);
        Assert.Equal("error", Events(output)[^1].Name);
        Assert.DoesNotContain("response.completed", output);
    }

    [Fact]
    public void Translate_MaxTokens_ResponseIncomplete()
    {
        var stream = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(CorpusFiles.LlmStream("anthropic-messages.sse"))
            .Replace("\"stop_reason\":\"end_turn\"", "\"stop_reason\":\"max_tokens\"", StringComparison.Ordinal));
        var (output, completed) = Translate(stream, stream.Length);
        Assert.True(completed);
        var last = Events(output)[^1];
        Assert.Equal("response.incomplete", last.Name);
        Assert.Equal("max_output_tokens", last.Data.GetProperty("response").GetProperty("incomplete_details").GetProperty("reason").GetString());
    }
}
