using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using Anthropic.Models.Messages;
using OpenAI.Chat;

namespace ProxyCore.FunctionalTests;

/// <summary>
/// Prompt templates held in config, picked by the request's <c>template</c> field (sent by the OpenAI
/// SDK as an extra body field) or the <c>proxycore-template</c> header. The mock answers with the last
/// user turn it received, so the answer shows what the template made of the request.
/// </summary>
public sealed partial class LlmGatewayTests
{
#pragma warning disable SCME0001 // JsonPatch (extra body fields) is marked experimental in System.ClientModel
    private static ChatCompletionOptions WithTemplate(string reference, bool ownTurns = false)
    {
        var options = new ChatCompletionOptions();
        options.Patch.Set("$.template"u8, BinaryData.FromString(reference));
        if (!ownTurns)
        {
            // The SDK insists on a message; the template supplies them all here.
            options.Patch.Set("$.messages"u8, BinaryData.FromString("[]"));
        }
        return options;
    }

    private static readonly ChatMessage[] s_placeholder = [new UserChatMessage("replaced by the patch")];
#pragma warning restore SCME0001

    [Fact]
    public async Task Template_OpenAiSdkExtraField_FillsTheDefaultVersion()
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat("/templated/v1", "gpt-4o-mini", "anything");

        ChatCompletion completion = await chat.CompleteChatAsync(s_placeholder, WithTemplate("""{"id":"support","variables":{"name":"Ann","product":"the router"}}"""));

        Assert.Equal("Mock answer from gpt-4o-mini: you said \"Question from Ann about the router\".", completion.Content[0].Text);
    }

    [Fact]
    public async Task Template_NamedVersionAndOwnTurns_TheRequestsTurnsComeAfter()
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat("/templated/v1", "gpt-4o-mini", "anything");

        ChatCompletion v1 = await chat.CompleteChatAsync(s_placeholder, WithTemplate("""{"id":"support","version":"1","variables":{"name":"Bo"}}"""));
        ChatCompletion own = await chat.CompleteChatAsync([new UserChatMessage("my own question")], WithTemplate("""{"id":"support","variables":{"name":"Bo","product":"x"}}""", ownTurns: true));

        Assert.Equal("Mock answer from gpt-4o-mini: you said \"v1 for Bo\".", v1.Content[0].Text);
        Assert.Equal("Mock answer from gpt-4o-mini: you said \"my own question\".", own.Content[0].Text);
    }

    [Fact]
    public async Task Template_VariablesPassThePiiCheck()
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat("/templated/v1", "gpt-4o-mini", "anything");

        ChatCompletion completion = await chat.CompleteChatAsync(s_placeholder, WithTemplate("""{"id":"support","version":"1","variables":{"name":"ann@example.com"}}"""));

        Assert.Equal("Mock answer from gpt-4o-mini: you said \"v1 for [EMAIL]\".", completion.Content[0].Text);
    }

    [Theory]
    [InlineData("""{"id":"support","variables":{"name":"Ann"}}""", 400, "template-variable-missing", "'product'")]
    [InlineData("""{"id":"support","version":"1"}""", 400, "template-variable-missing", "'name'")]
    [InlineData("""{"id":"support","variables":{"name":"Ann","product":{"x":1}}}""", 400, "template-variable-invalid", "'product'")]
    [InlineData("""{"id":"billing"}""", 404, "template-not-found", "'billing'")]
    [InlineData("""{"id":"support","version":"7"}""", 404, "template-version-not-found", "versions: 1, 2")]
    [InlineData("""{"id":"support","prompt":"x"}""", 400, "invalid-template-field", "template.prompt")]
    [InlineData("\"support\"", 400, "invalid-template-field", "must be an object")]
    public async Task Template_BadReference_GetsItsStatusAndReason(string reference, int status, string reason, string messagePart)
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat("/templated/v1", "gpt-4o-mini", "anything");

        var error = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync(s_placeholder, WithTemplate(reference)));

        Assert.Equal(status, error.Status);
        var raw = error.GetRawResponse()!;
        Assert.True(raw.Headers.TryGetValue("proxycore-error", out var header) && header == reason);
        using var json = JsonDocument.Parse(raw.Content.ToString());
        Assert.Equal(reason, json.RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains(messagePart, json.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/templated/v1/responses", """{"input":"and a follow-up","template":{"id":"support","variables":{"name":"Cy","product":"p"}}}""", null, "and a follow-up")]
    [InlineData("/templated/v1/chat/completions", """{"model":"gpt-4o-mini","messages":[],"template":{"variables":{"name":"Di"}}}""", "support@1", "v1 for Di")]
    [InlineData("/open/v1/chat/completions", """{"model":"gpt-4o-mini","messages":[],"template":{"id":"support"}}""", null, "has no prompt templates")]
    public async Task Template_RawRequests_ResponsesAndHeaderSelection(string path, string body, string? header, string expected)
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = Json(body) };
        if (header is not null)
        {
            request.Headers.Add("proxycore-template", header);
        }

        using var response = await client.SendAsync(request);
        string answer = await response.Content.ReadAsStringAsync();

        Assert.Contains(expected, answer, StringComparison.Ordinal);
        Assert.Equal(path.StartsWith("/open", StringComparison.Ordinal) ? HttpStatusCode.NotFound : HttpStatusCode.OK, response.StatusCode);
        // The selection header is for the gateway: the provider never sees it (the mock names any proxycore-* it got).
        Assert.False(response.Headers.Contains("x-mock-proxycore-headers"), string.Join(",", response.Headers.Select(h => h.Key)));
    }

    [Fact]
    public async Task Template_AnthropicClient_SystemPromptAndTurnsFilled()
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();
        string body = """{"model":"claude-haiku-4-5","max_tokens":50,"system":"Be brief.","messages":[],"template":{"id":"support","variables":{"name":"Ed","product":"q"}}}""";

        using var response = await client.PostAsync("/templated/v1/messages", Json(body));
        string answer = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("you said \\\"Question from Ed about q\\\"", answer, StringComparison.Ordinal);
    }
}
