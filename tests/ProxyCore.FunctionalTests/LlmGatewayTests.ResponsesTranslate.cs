using System.Net;
using System.Text;
using OpenAI.Responses;
using ProxyCore.Server.Mock;

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
    public async Task Translate_OpenAiResponsesSdkStreamingAgainstAnthropicProvider_YieldsEachDeltaAndUsage()
    {
        await using var host = await LlmHost.StartAsync();
        var client = host.Responses("/to-anthropic/v1", "anything");

        var deltas = new List<string>();
        ResponseResult? completed = null;
        await foreach (var update in await client.CreateResponseStreamingAsync("gpt-4o-mini", "hello world"))
        {
            if (update is StreamingResponseOutputTextDeltaUpdate delta)
            {
                deltas.Add(delta.Delta);
            }
            else if (update is StreamingResponseCompletedUpdate done)
            {
                completed = done.Response;
            }
        }

        Assert.Equal(MockTokens.Split(ClaudeAnswer), deltas);
        Assert.NotNull(completed);
        Assert.Equal(ClaudeAnswer, completed.GetOutputText());
        Assert.Equal(HelloPromptTokens, completed.Usage.InputTokenCount);
        Assert.Equal(deltas.Count, completed.Usage.OutputTokenCount);
        var metrics = await host.MetricsAsync();
        // Metered on the provider's own (Anthropic) stream.
        Assert.Equal(HelloPromptTokens, Series(metrics, PromptSeries("claude", "claude-haiku-4-5")));
        Assert.Equal(deltas.Count, Series(metrics, "proxycore_llm_tokens_total{kind=\"completion\",key=\"open\",model=\"claude-haiku-4-5\",provider=\"claude\"}"));
    }

    [Fact]
    public async Task Translate_CutAnthropicStreamToResponses_EndsWithAnErrorEventAndNoCompleted()
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/to-anthropic-cut/v1/responses")
        {
            Content = Json("""{"model":"claude-haiku-4-5","stream":true,"input":"hello world"}"""),
        };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var stream = await response.Content.ReadAsStreamAsync();
        var received = new MemoryStream();

        await Assert.ThrowsAnyAsync<IOException>(() => stream.CopyToAsync(received));

        string body = Encoding.UTF8.GetString(received.ToArray());
        Assert.Contains("event: response.created", body, StringComparison.Ordinal);
        Assert.Contains("event: error", body, StringComparison.Ordinal);
        Assert.DoesNotContain("response.completed", body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"model":"gpt-4o-mini","input":"hello world","previous_response_id":"resp_1"}""", "previous_response_id")]
    [InlineData("""{"model":"gpt-4o-mini","input":"hello world","tools":[{"type":"web_search"}]}""", "web_search")]
    public async Task Translate_UntranslatableResponsesRequest_Gets400InTheOpenAiShape(string request, string named)
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();

        using var response = await client.PostAsync("/to-anthropic/v1/responses", Json(request));
        string body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True(response.Headers.TryGetValues("proxycore-error", out var reason) && reason.Single() == "untranslatable-request");
        using var json = System.Text.Json.JsonDocument.Parse(body);
        Assert.Contains(named, json.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }
}
