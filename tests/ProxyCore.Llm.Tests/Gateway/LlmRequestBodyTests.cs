using System.Text;
using System.Text.Json;
using ProxyCore.Llm.Gateway;

namespace ProxyCore.Llm.Tests.Gateway;

public sealed class LlmRequestBodyTests
{
    [Theory]
    [InlineData("""{"model":"m","stream":true,"messages":[]}""", "m", true, false, -1)]
    [InlineData("""{"model":"m","stream":false,"max_tokens":12}""", "m", false, false, 12)]
    [InlineData("""{"stream_options":{"include_usage":true},"model":"m","stream":true,"max_completion_tokens":7}""", "m", true, true, 7)]
    [InlineData("""{"model":"claude","max_tokens":100,"stream":true,"system":[{"type":"text","text":"x"}]}""", "claude", true, false, 100)]
    [InlineData("""{"input":"x","model":"gpt-4o","max_output_tokens":null}""", "gpt-4o", false, false, -1)]
    public void TryRead_Request_FindsWhatTheStageNeeds(string json, string model, bool stream, bool includeUsage, long maxTokens)
    {
        Assert.True(LlmRequestBody.TryRead(Encoding.UTF8.GetBytes(json), out var info, out var error), error);

        Assert.Equal(model, info.Model);
        Assert.Equal(stream, info.Stream);
        Assert.Equal(includeUsage, info.IncludeUsage);
        Assert.Equal(maxTokens, info.MaxTokens);
    }

    [Theory]
    [InlineData("""{"model":""", "not valid JSON")]
    [InlineData("""[1]""", "JSON object")]
    [InlineData("""{"model":42}""", "'model' must be a string")]
    [InlineData("""{"model":"m","max_tokens":"lots"}""", "max_tokens")]
    [InlineData("""{"model":"m"} {"model":"n"}""", "not valid JSON")]
    public void TryRead_BadBody_SaysWhy(string json, string messagePart)
    {
        Assert.False(LlmRequestBody.TryRead(Encoding.UTF8.GetBytes(json), out _, out var error));

        Assert.Contains(messagePart, error, StringComparison.Ordinal);
    }

    [Theory]
    // include_usage injected wherever stream_options stands
    [InlineData("""{"model":"m","stream":true}""", null, true, """{"stream_options":{"include_usage":true},"model":"m","stream":true}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":{}}""", null, true, """{"model":"m","stream":true,"stream_options":{"include_usage":true}}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"include_usage":false}}""", null, true, """{"model":"m","stream":true,"stream_options":{"include_usage":true}}""")]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"x":1}}""", null, true, """{"model":"m","stream":true,"stream_options":{"include_usage":true,"x":1}}""")]
    // model renamed, alone and together with the injection (splices in either order)
    [InlineData("""{"model":"gpt-4o-mini","n":1}""", "llama \"3\"", false, """{"model":"llama \u00223\u0022","n":1}""")]
    [InlineData("""{"stream":true,"stream_options":{},"model":"a"}""", "b", true, """{"stream":true,"stream_options":{"include_usage":true},"model":"b"}""")]
    [InlineData("""{"model":"a","stream":true}""", "b", true, """{"stream_options":{"include_usage":true},"model":"b","stream":true}""")]
    public void Rewrite_Body_SplicesOnlyWhatChanges(string json, string? model, bool inject, string expected)
    {
        var body = Encoding.UTF8.GetBytes(json);
        Assert.True(LlmRequestBody.TryRead(body, out var info, out _));

        var rewritten = info.Rewrite(body, body.Length, model, inject, out int length);

        string text = Encoding.UTF8.GetString(rewritten, 0, length);
        Assert.Equal(expected, text);
        using var doc = JsonDocument.Parse(text); // still one valid JSON object
    }

    [Fact]
    public void Rewrite_NothingToChange_ReturnsTheSameArray()
    {
        var body = Encoding.UTF8.GetBytes("""{"model":"m"}""");
        Assert.True(LlmRequestBody.TryRead(body, out var info, out _));

        Assert.Same(body, info.Rewrite(body, body.Length, null, injectUsage: false, out _));
    }

    [Theory]
    [InlineData("""{"id":"c","choices":[{"message":{}}],"usage":{"prompt_tokens":14,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":4}},"model":"gpt-4o-mini-2024"}""", 14, 7, 4, "gpt-4o-mini-2024")]
    [InlineData("""{"model":"gpt-4o","usage":{"input_tokens":9,"input_tokens_details":{"cached_tokens":0},"output_tokens":3,"total_tokens":12}}""", 9, 3, 0, "gpt-4o")]
    [InlineData("""{"type":"message","model":"claude","usage":{"input_tokens":5,"cache_read_input_tokens":2,"output_tokens":8}}""", 5, 8, 2, "claude")]
    [InlineData("""{"object":"list","data":[],"model":"e","usage":{"prompt_tokens":2,"total_tokens":2}}""", 2, -1, -1, "e")]
    public void ResponseUsage_EachApiShape_ReadsTheFigures(string json, long prompt, long completion, long cached, string model)
    {
        Assert.True(LlmResponseUsage.TryRead(Encoding.UTF8.GetBytes(json), out long p, out long c, out long k, out var m));

        Assert.Equal((prompt, completion, cached, model), (p, c, k, m));
    }

    [Theory]
    [InlineData("data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n", true)]
    [InlineData("data: {\"id\":\"x\",\"choices\":[{\"delta\":{}}],\"usage\":null}\n\n", false)]
    [InlineData("data: {\"id\":\"x\",\"choices\":[],\"usage\":null}\n\n", false)]
    [InlineData("data: [DONE]\n\n", false)]
    [InlineData("event: message_delta\ndata: {\"usage\":{\"output_tokens\":3}}\n\n", false)]
    public void IsUsageOnlyChunk_Event_OnlyTheUsageChunk(string sseEvent, bool expected)
    {
        Assert.Equal(expected, LlmResponseUsage.IsUsageOnlyChunk(Encoding.UTF8.GetBytes(sseEvent)));
    }
}
