using ProxyCore.Llm.Sse;

namespace ProxyCore.Llm.Tests.Sse;

/// <summary>The hot path allocates nothing once the reader's and meter's buffers have grown.</summary>
public class AllocationTests
{
    private const int Iterations = 100;

    // Warm-up (JIT, tiering, buffer growth), then the fewest bytes of several windows: see Allocations.
    private static long AllocatedBy(Action action) => Allocations.SteadyState(action, Iterations);

    public static TheoryData<string, LlmStreamFormat> UsageBearingStreams => new()
    {
        { "openai-chat-usage.sse", LlmStreamFormat.OpenAIChat },
        { "openai-chat-vllm-null-choices.sse", LlmStreamFormat.OpenAIChat },
        { "openai-chat-tool-call.sse", LlmStreamFormat.OpenAIChat },
        { "openai-responses.sse", LlmStreamFormat.OpenAIResponses },
        { "anthropic-messages.sse", LlmStreamFormat.AnthropicMessages },
        { "gemini.sse", LlmStreamFormat.Gemini },
    };

    [Theory]
    [MemberData(nameof(UsageBearingStreams))]
    public void Observe_UsageBearingStream_AllocatesNothingAfterWarmUp(string file, LlmStreamFormat format)
    {
        var bytes = CorpusFiles.LlmStream(file);
        var split = SseTestInput.Segmented(bytes, bytes.Length / 3, bytes.Length / 3 + 1, 2 * bytes.Length / 3);
        var meter = new LlmStreamMeter(format);

        long allocated = AllocatedBy(() =>
        {
            meter.Reset(format);
            meter.Observe(bytes);
            meter.Complete();
            meter.Reset(format);
            meter.Observe(split);
            meter.Complete();
            meter.Reset(format);
            for (int i = 0; i < bytes.Length; i += 7)
            {
                meter.Observe(bytes.AsSpan(i, Math.Min(7, bytes.Length - i)));
            }
            meter.Complete();
        });

        Assert.Equal(LlmStreamOutcome.Completed, meter.Outcome);
        Assert.Equal(LlmTokenSource.Provider, meter.Usage.CompletionSource);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Read_CorpusStreams_ReaderAllocatesNothingAfterWarmUp()
    {
        var streams = CorpusFiles.LlmStreamNames().Select(CorpusFiles.LlmStream).ToArray();
        var reader = new SseReader();
        var counter = new CountingHandler();

        long allocated = AllocatedBy(() =>
        {
            foreach (var bytes in streams)
            {
                reader.Reset();
                for (int i = 0; i < bytes.Length; i += 5)
                {
                    reader.Read(bytes.AsSpan(i, Math.Min(5, bytes.Length - i)), ref counter);
                }
            }
        });

        Assert.True(counter.Events > 0);
        Assert.Equal(0, allocated);
    }

    private struct CountingHandler : ISseEventHandler
    {
        public int Events;

        public void OnEvent(in SseEvent sseEvent) => Events += sseEvent.Data.Length >= 0 ? 1 : 0;
    }
}
