using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;
using ProxyCore.Llm.Sse;

namespace ProxyCore.Llm.Tests.Sse;

public class LlmStreamMeterTests
{
    /// <summary>
    /// The README of shared/corpus/llm-streams as a table: file, format, outcome, prompt, completion,
    /// cached (-1: not reported), model, finish reason, error type. A completion of -1 means the
    /// provider reported none: the meter must give the tokenizer's count of the streamed text.
    /// </summary>
    public static TheoryData<string, LlmStreamFormat, LlmStreamOutcome, long, long, long, string, string, string> Corpus => new()
    {
        { "openai-chat-usage.sse", LlmStreamFormat.OpenAIChat, LlmStreamOutcome.Completed, 14, 7, 0, "gpt-4o-mini", "stop", "" },
        { "openai-chat-no-usage.sse", LlmStreamFormat.OpenAIChat, LlmStreamOutcome.Completed, -1, -1, -1, "gpt-4o-mini", "stop", "" },
        { "openai-chat-vllm-null-choices.sse", LlmStreamFormat.OpenAIChat, LlmStreamOutcome.Completed, 31, 4, -1, "meta-llama/Llama-3.1-8B-Instruct", "stop", "" },
        { "openai-chat-tool-call.sse", LlmStreamFormat.OpenAIChat, LlmStreamOutcome.Completed, 62, 16, -1, "gpt-4o-mini", "tool_calls", "" },
        { "openai-chat-cut.sse", LlmStreamFormat.OpenAIChat, LlmStreamOutcome.Cut, -1, -1, -1, "gpt-4o-mini", "", "" },
        { "openai-responses.sse", LlmStreamFormat.OpenAIResponses, LlmStreamOutcome.Completed, 19, 11, 0, "gpt-4.1-mini", "completed", "" },
        { "openai-responses-error.sse", LlmStreamFormat.OpenAIResponses, LlmStreamOutcome.Error, -1, -1, -1, "gpt-4.1-mini", "", "insufficient_quota" },
        { "anthropic-messages.sse", LlmStreamFormat.AnthropicMessages, LlmStreamOutcome.Completed, 25, 12, 0, "claude-haiku-4-5", "end_turn", "" },
        { "anthropic-overloaded.sse", LlmStreamFormat.AnthropicMessages, LlmStreamOutcome.Error, 40, -1, -1, "claude-haiku-4-5", "", "overloaded_error" },
        { "gemini.sse", LlmStreamFormat.Gemini, LlmStreamOutcome.Completed, 3, 9, -1, "gemini-2.5-flash", "STOP", "" },
    };

    [Fact]
    public void CorpusTable_CoversEveryRecordedStream()
    {
        var inTable = Corpus.Select(row => (string)row[0]).Order();
        Assert.Equal(CorpusFiles.LlmStreamNames(), inTable);
    }

    private static string Snapshot(LlmStreamMeter meter) =>
        $"{meter.Outcome} {meter.Usage} model={Encoding.UTF8.GetString(meter.Model)} finish={Encoding.UTF8.GetString(meter.FinishReason)} " +
        $"error={Encoding.UTF8.GetString(meter.ErrorType)} output={meter.HasOutput} events={meter.EventCount} malformed={meter.MalformedEventCount}";

    private static LlmStreamMeter Meter(LlmStreamFormat format, IEnumerable<byte[]> chunks)
    {
        var meter = new LlmStreamMeter(format);
        foreach (var chunk in chunks)
        {
            Assert.Equal(SseReadStatus.Ok, meter.Observe(chunk.AsSpan()));
        }
        meter.Complete();
        return meter;
    }

    [Theory]
    [MemberData(nameof(Corpus))]
    public void Complete_CorpusStream_RecordsReadmeFigures(string file, LlmStreamFormat format, LlmStreamOutcome outcome,
        long prompt, long completion, long cached, string model, string finish, string error)
    {
        var bytes = CorpusFiles.LlmStream(file);
        var meter = Meter(format, [bytes]);

        Assert.Equal(outcome, meter.Outcome);
        Assert.Equal(prompt, meter.Usage.PromptTokens);
        Assert.Equal(prompt >= 0 ? LlmTokenSource.Provider : LlmTokenSource.None, meter.Usage.PromptSource);
        Assert.Equal(cached, meter.Usage.CachedTokens);
        Assert.Equal(model, meter.GetModel());
        Assert.Equal(finish, Encoding.UTF8.GetString(meter.FinishReason));
        Assert.Equal(error, meter.GetErrorType());
        Assert.Equal(0, meter.MalformedEventCount);
        if (completion >= 0)
        {
            Assert.Equal(completion, meter.Usage.CompletionTokens);
            Assert.Equal(LlmTokenSource.Provider, meter.Usage.CompletionSource);
        }
        else
        {
            var text = StreamedText(format, bytes);
            var tokenizer = TiktokenTokenizer.CreateForModel(model.StartsWith("gpt-", StringComparison.Ordinal) ? model : "gpt-4o");
            Assert.Equal(tokenizer.CountTokens(text), meter.Usage.CompletionTokens);
            Assert.Equal(LlmTokenSource.Estimated, meter.Usage.CompletionSource);
        }
    }

    [Theory]
    [MemberData(nameof(Corpus))]
    public void Observe_CorpusStreamSplitAtEveryOffsetAndByteByByte_SameResult(string file, LlmStreamFormat format, LlmStreamOutcome outcome,
        long prompt, long completion, long cached, string model, string finish, string error)
    {
        _ = (outcome, prompt, completion, cached, model, finish, error);
        var bytes = CorpusFiles.LlmStream(file);
        string whole = Snapshot(Meter(format, [bytes]));

        for (int cut = 0; cut <= bytes.Length; cut++)
        {
            Assert.Equal(whole, Snapshot(Meter(format, SseTestInput.Chunks(bytes, cut))));

            var meter = new LlmStreamMeter(format);
            meter.Observe(SseTestInput.Segmented(bytes, cut));
            meter.Complete();
            Assert.Equal(whole, Snapshot(meter));
        }
        Assert.Equal(whole, Snapshot(Meter(format, bytes.Select(b => new[] { b }))));
    }

    /// <summary>The text a client saw, taken independently: the runtime's SSE parser and JsonDocument.</summary>
    private static string StreamedText(LlmStreamFormat format, byte[] bytes)
    {
        var text = new StringBuilder();
        foreach (var item in SseParser.Create(new MemoryStream(bytes)).Enumerate())
        {
            if (item.Data == "[DONE]")
            {
                continue;
            }
            using var doc = JsonDocument.Parse(item.Data);
            var root = doc.RootElement;
            switch (format)
            {
                case LlmStreamFormat.OpenAIChat:
                    if (root.TryGetProperty("choices", out var choices) && choices.ValueKind == JsonValueKind.Array)
                    {
                        foreach (var choice in choices.EnumerateArray())
                        {
                            var delta = choice.GetProperty("delta");
                            if (delta.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
                            {
                                text.Append(content.GetString());
                            }
                        }
                    }
                    break;
                case LlmStreamFormat.AnthropicMessages:
                    if (item.EventType == "content_block_delta")
                    {
                        text.Append(root.GetProperty("delta").GetProperty("text").GetString());
                    }
                    break;
                case LlmStreamFormat.OpenAIResponses:
                    if (item.EventType == "response.output_text.delta")
                    {
                        text.Append(root.GetProperty("delta").GetString());
                    }
                    break;
            }
        }
        return text.ToString();
    }

    [Fact]
    public void Complete_NoUsageStream_EqualsTokenizerCountOfTheConcatenatedDeltas()
    {
        var bytes = CorpusFiles.LlmStream("openai-chat-no-usage.sse");
        var meter = Meter(LlmStreamFormat.OpenAIChat, [bytes]);

        string text = StreamedText(LlmStreamFormat.OpenAIChat, bytes);
        Assert.Equal("Hello there, how can I help?", text);
        Assert.Equal(TiktokenTokenizer.CreateForModel("gpt-4o-mini").CountTokens(text), meter.Usage.CompletionTokens);
        Assert.Equal(LlmTokenSource.Estimated, meter.Usage.CompletionSource);
        Assert.Equal(-1, meter.Usage.PromptTokens);
    }

    [Fact]
    public void Complete_AnthropicInterimOutputTokens_NotAdded()
    {
        var meter = Meter(LlmStreamFormat.AnthropicMessages, [CorpusFiles.LlmStream("anthropic-messages.sse")]);
        Assert.Equal(12, meter.Usage.CompletionTokens); // message_delta's cumulative 12, not 1 + 12
    }

    [Fact]
    public void Complete_AnthropicOverloaded_EstimatesTheSeenTextNotTheInterimPlaceholder()
    {
        var meter = Meter(LlmStreamFormat.AnthropicMessages, [CorpusFiles.LlmStream("anthropic-overloaded.sse")]);
        Assert.Equal(TiktokenEstimator.O200kBase.CountTokens("Let me think"u8), meter.Usage.CompletionTokens);
        Assert.True(meter.HasOutput);
    }

    [Fact]
    public void Outcome_ErrorEvent_IsErrorBeforeTheBodyEnds()
    {
        var meter = new LlmStreamMeter(LlmStreamFormat.OpenAIResponses);
        meter.Observe(CorpusFiles.LlmStream("openai-responses-error.sse"));
        Assert.Equal(LlmStreamOutcome.Error, meter.Outcome);
        Assert.False(meter.HasOutput); // the fallback may still try another provider
    }

    [Fact]
    public void Complete_StreamEndingInsideTerminalEvent_IsCut()
    {
        var bytes = CorpusFiles.LlmStream("anthropic-messages.sse");
        // Drop the final blank line: message_stop is never dispatched.
        var meter = Meter(LlmStreamFormat.AnthropicMessages, [bytes[..^1]]);
        Assert.Equal(LlmStreamOutcome.Cut, meter.Outcome);
        Assert.Equal(12, meter.Usage.CompletionTokens);
    }

    [Theory]
    [InlineData(LlmStreamFormat.OpenAIChat, "data: {\"choices\":[],\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"code\":\"x\"}}\n\n", "server_error")]
    [InlineData(LlmStreamFormat.Gemini, "data: {\"error\":{\"code\":503,\"message\":\"busy\",\"status\":\"UNAVAILABLE\"}}\n\n", "UNAVAILABLE")]
    [InlineData(LlmStreamFormat.OpenAIResponses, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"code\":\"bad\"}}\n\n", "invalid_request_error")]
    [InlineData(LlmStreamFormat.OpenAIResponses, "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"x\"},\"usage\":null}}\n\n", "server_error")]
    public void Complete_ProviderErrorShapes_ErrorWithType(LlmStreamFormat format, string body, string errorType)
    {
        var meter = Meter(format, [Encoding.UTF8.GetBytes(body)]);
        Assert.Equal(LlmStreamOutcome.Error, meter.Outcome);
        Assert.Equal(errorType, meter.GetErrorType());
    }

    [Fact]
    public void Complete_ResponsesIncomplete_CompletedWithTheReason()
    {
        var body = "event: response.incomplete\ndata: {\"type\":\"response.incomplete\",\"response\":{\"model\":\"gpt-4o\",\"status\":\"incomplete\"," +
                   "\"incomplete_details\":{\"reason\":\"max_output_tokens\"},\"usage\":{\"input_tokens\":5,\"input_tokens_details\":{\"cached_tokens\":2},\"output_tokens\":16}}}\n\n";
        var meter = Meter(LlmStreamFormat.OpenAIResponses, [Encoding.UTF8.GetBytes(body)]);
        Assert.Equal(LlmStreamOutcome.Completed, meter.Outcome);
        Assert.Equal("max_output_tokens", Encoding.UTF8.GetString(meter.FinishReason));
        Assert.Equal(new LlmUsage(5, 16, 2, LlmTokenSource.Provider, LlmTokenSource.Provider), meter.Usage);
    }

    [Fact]
    public void Observe_MalformedData_CountedAndSkipped()
    {
        var body = "data: {not json\n\ndata: {\"model\":\"m\",\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        var meter = Meter(LlmStreamFormat.OpenAIChat, [Encoding.UTF8.GetBytes(body)]);
        Assert.Equal(1, meter.MalformedEventCount);
        Assert.Equal(LlmStreamOutcome.Completed, meter.Outcome);
        Assert.Equal("m", meter.GetModel());
    }

    /// <summary>Long answers are counted window by window; the total must equal one count of the whole text.</summary>
    [Theory]
    [InlineData("gpt-4o-mini", "o200k_base")]
    [InlineData("gpt-4", "cl100k_base")]
    public void Complete_LongTextWithoutUsage_WindowedCountEqualsWholeCount(string model, string encoding)
    {
        var words = "The quick brown fox jumps over the lazy dog; naïve café, 12345 items costs $6.78 — \"quoted\" text\nnew line\n\n  indented code() { return x+1; } ".Split(' ');
        var text = new StringBuilder();
        var body = new StringBuilder();
        var random = new Random(7);
        for (int i = 0; i < 400; i++)
        {
            // Deltas cut at random points, as providers send them (inside words, inside numbers).
            string piece = string.Join(' ', words.Skip(random.Next(words.Length)).Take(random.Next(1, 4))) + (random.Next(3) == 0 ? " " : "");
            piece = piece.Length == 0 ? "x" : piece[..Math.Max(1, random.Next(piece.Length + 1))];
            text.Append(piece);
            body.Append("data: ").Append(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["model"] = model,
                ["choices"] = new[] { new Dictionary<string, object> { ["delta"] = new Dictionary<string, string> { ["content"] = piece } } },
            }, LlmTestJson.Default.DictionaryStringObject)).Append("\n\n");
        }
        body.Append("data: [DONE]\n\n");

        var meter = Meter(LlmStreamFormat.OpenAIChat, [Encoding.UTF8.GetBytes(body.ToString())]);

        Assert.Equal(TiktokenTokenizer.CreateForEncoding(encoding).CountTokens(text.ToString()), meter.Usage.CompletionTokens);
    }

    /// <summary>
    /// Text with no safe cut (CJK, no spaces) is counted whole once it passes the hard limit: never a
    /// split UTF-8 sequence, and at most a token or two off per forced cut.
    /// </summary>
    [Fact]
    public void Complete_TextWithoutSpaces_ForcedCutsStayClose()
    {
        var text = new StringBuilder();
        var body = new StringBuilder();
        // Enough text for at least three forced cuts in either build (the window is 128 B in Debug, 16 KiB in Release).
        int pieces = Math.Max(200, 4 * LlmStreamMeter.TextWindowHardLimit / 33);
        for (int i = 0; i < pieces; i++)
        {
            string piece = "布拉格的伏尔塔瓦河流经城市中心"[(i % 5)..];
            text.Append(piece);
            body.Append("data: {\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{\"content\":\"").Append(piece).Append("\"}}]}\n\n");
        }
        body.Append("data: [DONE]\n\n");
        var bytes = Encoding.UTF8.GetBytes(body.ToString());

        var meter = Meter(LlmStreamFormat.OpenAIChat, [bytes]);

        int exact = TiktokenTokenizer.CreateForEncoding("o200k_base").CountTokens(text.ToString());
        int forcedCuts = Encoding.UTF8.GetByteCount(text.ToString()) / LlmStreamMeter.TextWindowHardLimit;
        Assert.True(forcedCuts > 2, $"only {forcedCuts} forced cuts");
        Assert.InRange(meter.Usage.CompletionTokens, exact - 2 * forcedCuts, exact + 2 * forcedCuts);
    }

    /// <summary>Counts one token per byte: additive, so the windowed total must be exactly the text's length.</summary>
    private sealed class ByteCounter : ITokenEstimator
    {
        public int Calls;

        public int CountTokens(ReadOnlySpan<byte> utf8Text)
        {
            Calls++;
            return utf8Text.Length;
        }
    }

    [Fact]
    public void Complete_ExplicitEstimator_IsUsed()
    {
        var counter = new ByteCounter();
        var meter = new LlmStreamMeter(LlmStreamFormat.OpenAIChat, counter);
        meter.Observe(CorpusFiles.LlmStream("openai-chat-no-usage.sse"));
        meter.Complete();
        Assert.Equal(Encoding.UTF8.GetByteCount("Hello there, how can I help?"), meter.Usage.CompletionTokens);
        Assert.True(counter.Calls >= 1);
    }

    [Fact]
    public void Complete_UsageReported_EstimatorNeverCalledForShortAnswers()
    {
        var counter = new ByteCounter();
        var meter = new LlmStreamMeter(LlmStreamFormat.OpenAIChat, counter);
        meter.Observe(CorpusFiles.LlmStream("openai-chat-vllm-null-choices.sse")); // "Forty-two.": under any window
        meter.Complete();
        Assert.Equal(0, counter.Calls);
        Assert.Equal(4, meter.Usage.CompletionTokens);
    }

    [Theory]
    [InlineData("", 0)]
    [InlineData("a", 1)]
    [InlineData("abcd", 1)]
    [InlineData("abcde", 2)]
    [InlineData("světe", 2)] // 6 bytes
    public void Utf8LengthEstimator_CountTokens_QuarterOfBytesRoundedUp(string text, int expected)
    {
        Assert.Equal(expected, Utf8LengthEstimator.Instance.CountTokens(Encoding.UTF8.GetBytes(text)));
    }

    [Fact]
    public void Observe_EventTooLarge_StopsMeteringAndEndsCut()
    {
        var meter = new LlmStreamMeter(LlmStreamFormat.OpenAIChat, maxEventBytes: 64);
        Assert.Equal(SseReadStatus.EventTooLarge, meter.Observe(CorpusFiles.LlmStream("openai-chat-usage.sse")));
        Assert.Equal(LlmStreamOutcome.Cut, meter.Complete());
        Assert.Equal(SseReadStatus.EventTooLarge, meter.ReadStatus);
    }

    [Fact]
    public void Reset_ReusedMeter_SameFiguresAsFresh()
    {
        var meter = new LlmStreamMeter(LlmStreamFormat.AnthropicMessages);
        meter.Observe(CorpusFiles.LlmStream("anthropic-overloaded.sse"));
        meter.Complete();
        meter.Reset(LlmStreamFormat.Gemini);
        meter.Observe(CorpusFiles.LlmStream("gemini.sse"));
        meter.Complete();
        Assert.Equal(Snapshot(Meter(LlmStreamFormat.Gemini, [CorpusFiles.LlmStream("gemini.sse")])), Snapshot(meter));
    }
}
