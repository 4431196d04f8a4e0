using System.Net;
using System.Text;
using Anthropic.Models.Messages;
using OpenAI.Chat;
using ProxyCore.Server.Mock;

namespace ProxyCore.FunctionalTests;

/// <summary>Translation between OpenAI Chat Completions and Anthropic Messages when the provider speaks the other API.</summary>
public sealed partial class LlmGatewayTests
{
    private const string ClaudeAnswer = "Mock answer from claude-haiku-4-5: you said \"hello world\".";
    private const string GptAnswer = "Mock answer from gpt-4o-mini: you said \"hello world\".";

    [Fact]
    public async Task Translate_OpenAiSdkAgainstAnthropicProvider_GetsAChatCompletion()
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat("/to-anthropic/v1", "gpt-4o-mini", "anything");

        ChatCompletion completion = await chat.CompleteChatAsync(s_hello);

        Assert.Equal(ClaudeAnswer, completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(HelloPromptTokens, completion.Usage.InputTokenCount);
        Assert.Equal(AnswerTokens("claude-haiku-4-5"), completion.Usage.OutputTokenCount);
        var metrics = await host.MetricsAsync();
        Assert.Equal(HelloPromptTokens, Series(metrics, PromptSeries("claude", "claude-haiku-4-5")));
    }

    [Fact]
    public async Task Translate_OpenAiSdkStreamingAgainstAnthropicProvider_YieldsEachDeltaAndUsage()
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat("/to-anthropic/v1", "gpt-4o-mini", "anything");

        var deltas = new List<string>();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync(s_hello))
        {
            deltas.AddRange(update.ContentUpdate.Select(part => part.Text).Where(text => text.Length > 0));
            usage ??= update.Usage;
            finish ??= update.FinishReason;
        }

        Assert.Equal(MockTokens.Split(ClaudeAnswer), deltas);
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.NotNull(usage);
        Assert.Equal(HelloPromptTokens, usage.InputTokenCount);
        var metrics = await host.MetricsAsync();
        // Metered on the provider's own (Anthropic) stream.
        Assert.Equal(HelloPromptTokens, Series(metrics, PromptSeries("claude", "claude-haiku-4-5")));
        Assert.Equal(deltas.Count, Series(metrics, "proxycore_llm_tokens_total{kind=\"completion\",key=\"open\",model=\"claude-haiku-4-5\",provider=\"claude\"}"));
    }

    [Fact]
    public async Task Translate_AnthropicSdkAgainstOpenAiProvider_CreateAndStream()
    {
        await using var host = await LlmHost.StartAsync();
        var client = host.Anthropic("/to-openai");
        var ask = new MessageCreateParams { Model = "claude-haiku-4-5", MaxTokens = 100, Messages = [new UserMessageParam("hello world")] };

        var message = await client.Messages.Create(ask);
        var deltas = new List<string>();
        await foreach (var streamEvent in client.Messages.CreateStreaming(ask))
        {
            if (streamEvent.TryPickContentBlockDelta(out var delta) && delta.Delta.TryPickText(out var textDelta))
            {
                deltas.Add(textDelta.Text);
            }
        }

        Assert.True(message.Content[0].TryPickText(out var text));
        Assert.Equal(GptAnswer, text.Text);
        Assert.Equal(HelloPromptTokens, message.Usage.InputTokens);
        Assert.Equal(GptAnswer, string.Concat(deltas));
        var metrics = await host.MetricsAsync();
        Assert.Equal(2 * HelloPromptTokens, Series(metrics, PromptSeries("gpt", "gpt-4o-mini")));
    }

    [Fact]
    public async Task Translate_CutAnthropicStream_EndsWithAnOpenAiErrorChunkAndNoDone()
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/to-anthropic-cut/v1/chat/completions")
        {
            Content = Json("""{"model":"claude-haiku-4-5","stream":true,"messages":[{"role":"user","content":"hello world"}]}"""),
        };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var stream = await response.Content.ReadAsStreamAsync();
        var received = new MemoryStream();

        await Assert.ThrowsAnyAsync<IOException>(() => stream.CopyToAsync(received));

        string body = Encoding.UTF8.GetString(received.ToArray());
        Assert.Contains("\"chat.completion.chunk\"", body, StringComparison.Ordinal);
        Assert.Contains("data: {\"error\":", body, StringComparison.Ordinal);
        Assert.DoesNotContain("[DONE]", body, StringComparison.Ordinal);
    }
}
