using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using Anthropic.Models.Messages;
using OpenAI.Chat;

namespace ProxyCore.FunctionalTests;

/// <summary>
/// Deny patterns on answers: a JSON answer is checked whole before it is sent, a stream delta by
/// delta as it passes (the mock echoes the prompt, so the prompt decides whether the answer matches;
/// "secret sauce" arrives as two deltas, so the stream check must find it across them).
/// </summary>
public sealed partial class LlmGatewayTests
{
    private const string DeniedPrompt = "tell me the secret sauce please";

    [Theory]
    [InlineData("/deny-out/v1")]
    [InlineData("/deny-out-claude/v1")] // translated from the Anthropic provider's answer
    public async Task DenyOutput_OpenAiSdkJsonAnswer_Is400OutputDenied(string path)
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat(path, "gpt-4o-mini", "anything");

        var error = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage(DeniedPrompt)]));

        Assert.Equal(400, error.Status);
        var raw = error.GetRawResponse()!;
        Assert.True(raw.Headers.TryGetValue("proxycore-error", out var reason) && reason == "output-denied");
        string body = raw.Content.ToString();
        using var json = JsonDocument.Parse(body);
        Assert.Equal("output-denied", json.RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.DoesNotContain("sauce", body, StringComparison.Ordinal); // the answer is withheld, and so is what matched
        string route = path.Split('/')[1];
        Assert.Equal(1, Series(await host.MetricsAsync(), $"proxycore_llm_denied_total{{route=\"{route}\",phase=\"output\"}}"));
    }

    [Fact]
    public async Task DenyOutput_CleanAnswer_PassesAndThePromptIsNotChecked()
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat("/deny-out/v1", "gpt-4o-mini", "anything");

        ChatCompletion completion = await chat.CompleteChatAsync(s_hello);
        var deltas = new List<string>();
        await foreach (var update in chat.CompleteChatStreamingAsync(s_hello))
        {
            deltas.AddRange(update.ContentUpdate.Select(part => part.Text));
        }

        Assert.Equal("Mock answer from gpt-4o-mini: you said \"hello world\".", completion.Content[0].Text);
        Assert.Equal(completion.Content[0].Text, string.Concat(deltas));
        Assert.Equal(0, Series(await host.MetricsAsync(), "proxycore_llm_denied_total{route=\"deny-out\",phase=\"output\"}"));
    }

    [Theory]
    [InlineData("/deny-out/v1")]
    [InlineData("/deny-out-claude/v1")]
    public async Task DenyOutput_OpenAiSdkStream_StopsBeforeTheMatchAndRaises(string path)
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat(path, "gpt-4o-mini", "anything");

        var deltas = new List<string>();
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage(DeniedPrompt)]))
            {
                deltas.AddRange(update.ContentUpdate.Select(part => part.Text));
            }
        });

        string passed = string.Concat(deltas);
        Assert.EndsWith(" secret", passed, StringComparison.Ordinal); // every delta before the one that completed the match
        Assert.DoesNotContain("sauce", passed, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DenyOutput_AnthropicSdk_JsonRaisesAndStreamRaises()
    {
        await using var host = await LlmHost.StartAsync();
        var client = host.Anthropic("/deny-out");
        var request = new MessageCreateParams
        {
            Model = "claude-haiku-4-5",
            MaxTokens = 100,
            Messages = [new UserMessageParam(DeniedPrompt)],
        };

        var error = await Assert.ThrowsAnyAsync<Exception>(() => client.Messages.Create(request));
        Assert.Contains("deny pattern 0", error.Message, StringComparison.Ordinal);
        var texts = new List<string>();
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await foreach (var streamEvent in client.Messages.CreateStreaming(request))
            {
                if (streamEvent.TryPickContentBlockDelta(out var delta) && delta.Delta.TryPickText(out var text))
                {
                    texts.Add(text.Text);
                }
            }
        });

        Assert.DoesNotContain("sauce", string.Concat(texts), StringComparison.Ordinal);
        Assert.Equal(2, Series(await host.MetricsAsync(), "proxycore_llm_denied_total{route=\"deny-out\",phase=\"output\"}"));
    }

    [Theory]
    [InlineData("/deny-out/v1/chat/completions", """{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"PROMPT"}]}""", "data: {\"error\":{", "[DONE]")]
    [InlineData("/deny-out-claude/v1/chat/completions", """{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"PROMPT"}]}""", "data: {\"error\":{", "[DONE]")]
    [InlineData("/deny-out/v1/responses", """{"model":"gpt-4o-mini","stream":true,"input":"PROMPT"}""", "event: error\ndata: {\"type\":\"error\",\"code\":\"output_denied\"", "response.completed")]
    [InlineData("/deny-out/v1/messages", """{"model":"claude-haiku-4-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"PROMPT"}]}""", "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\"", "message_stop")]
    public async Task DenyOutput_RawStream_EndsWithAnErrorEventAndNoCleanFinish(string path, string body, string errorEvent, string cleanEnd)
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = Json(body.Replace("PROMPT", DeniedPrompt, StringComparison.Ordinal)) };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var stream = await response.Content.ReadAsStreamAsync();
        var received = new MemoryStream();

        await Assert.ThrowsAnyAsync<IOException>(() => stream.CopyToAsync(received)); // no last chunk: the body is not complete

        string events = Encoding.UTF8.GetString(received.ToArray());
        Assert.Contains(errorEvent, events, StringComparison.Ordinal);
        Assert.True(events.Contains("deny pattern 0", StringComparison.Ordinal), events);
        Assert.DoesNotContain(cleanEnd, events, StringComparison.Ordinal);
        Assert.DoesNotContain("sauce", events, StringComparison.Ordinal);
        Assert.Contains("secret", events, StringComparison.Ordinal); // what passed before the match was forwarded as it came
    }

    [Fact]
    public async Task DenyOutput_DeniedAnswersAreNeverCached()
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();
        string body = JsonSerializer.Serialize(new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content = DeniedPrompt } } });

        for (int i = 0; i < 2; i++)
        {
            using var response = await client.PostAsync("/deny-out-cached/v1/chat/completions", Json(body));
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        var metrics = await host.MetricsAsync();
        Assert.Equal(2, Series(metrics, "proxycore_llm_denied_total{route=\"deny-out-cached\",phase=\"output\"}"));
        Assert.Equal(0, Series(metrics, "proxycore_llm_cache_total{result=\"hit-exact\"}"));
    }
}
