using System.Net;
using System.Text.Json;
using OpenAI.Responses;

#pragma warning disable OPENAI001 // the SDK marks its Responses client as experimental

namespace ProxyCore.FunctionalTests;

/// <summary>OpenAI Responses clients on a route whose providers speak only Anthropic Messages.</summary>
public sealed partial class LlmGatewayTests
{
    [Fact]
    public async Task Translate_OpenAiResponsesSdkAgainstAnthropicProvider_GetsAResponseAndIsMetered()
    {
        await using var host = await LlmHost.StartAsync();
        var client = host.Responses("/to-anthropic/v1", "anything");

        var result = await client.CreateResponseAsync("gpt-4o-mini", "hello world");
        ResponseResult response = result.Value;

        Assert.Equal(ClaudeAnswer, response.GetOutputText());
        Assert.Equal(ResponseStatus.Completed, response.Status);
        Assert.Equal(HelloPromptTokens, response.Usage.InputTokenCount);
        Assert.Equal(AnswerTokens("claude-haiku-4-5"), response.Usage.OutputTokenCount);
        Assert.Equal(HelloPromptTokens + AnswerTokens("claude-haiku-4-5"), response.Usage.TotalTokenCount);
        Assert.True(result.GetRawResponse().Headers.TryGetValue("proxycore-provider", out var provider) && provider == "claude");
        var metrics = await host.MetricsAsync();
        // Metered on the provider's own (Anthropic) answer, under the mapped model.
        Assert.Equal(HelloPromptTokens, Series(metrics, PromptSeries("claude", "claude-haiku-4-5")));
        Assert.Equal(AnswerTokens("claude-haiku-4-5"), Series(metrics, "proxycore_llm_tokens_total{kind=\"completion\",key=\"open\",model=\"claude-haiku-4-5\",provider=\"claude\"}"));
    }

    [Fact]
    public async Task Translate_ResponsesStreamAgainstAnthropicProvider_Gets400NotABrokenStream()
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();

        using var response = await client.PostAsync("/to-anthropic/v1/responses", Json("""{"model":"gpt-4o-mini","input":"hello world","stream":true}"""));
        string body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True(response.Headers.TryGetValues("proxycore-error", out var reason) && reason.Single() == "untranslatable-request");
        using var json = JsonDocument.Parse(body);
        Assert.Contains("stream", json.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }
}
