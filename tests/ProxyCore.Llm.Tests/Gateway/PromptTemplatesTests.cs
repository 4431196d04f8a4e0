using System.Text;
using System.Text.Json;
using ProxyCore.Llm.Gateway;
using ProxyCore.Routing.Config;

namespace ProxyCore.Llm.Tests.Gateway;

public class PromptTemplatesTests
{
    private static readonly PromptTemplates s_templates = new(new Dictionary<string, LlmTemplateConfig>
    {
        ["t"] = new()
        {
            Default = "2",
            Versions = new Dictionary<string, LlmTemplateVersionConfig>
            {
                ["1"] = new() { Messages = [new() { Role = "user", Content = "hi {{a}}" }] },
                ["2"] = new()
                {
                    Model = "m-default",
                    Messages = [new() { Role = "system", Content = "sys {{a}}" }, new() { Role = "user", Content = "{{a}}+{{ b }}" }],
                },
            },
        },
    });

    private static string Apply(LlmApi api, string body, string header = "")
    {
        var failure = s_templates.TryApply(Encoding.UTF8.GetBytes(body), api, Encoding.ASCII.GetBytes(header), out var filled);
        return failure is { } f ? $"{f.Status} {f.Reason}" : Encoding.UTF8.GetString(filled);
    }

    [Theory]
    [InlineData("ChatCompletions", """{"messages":[{"role":"user","content":"own"}],"template":{"id":"t","variables":{"a":"A","b":2}}}""",
        """{"messages":[{"role":"system","content":"sys A"},{"role":"user","content":"A\u002B2"},{"role":"user","content":"own"}],"model":"m-default"}""")]
    [InlineData("AnthropicMessages", """{"model":"x","system":"own sys","template":{"id":"t","variables":{"a":"A","b":true}}}""",
        """{"model":"x","system":"sys A\n\nown sys","messages":[{"role":"user","content":"A\u002Btrue"}]}""")]
    [InlineData("AnthropicMessages", """{"model":"x","system":[{"type":"text","text":"own"}],"messages":[],"template":{"id":"t","variables":{"a":"A","b":1}}}""",
        """{"model":"x","system":[{"type":"text","text":"sys A"},{"type":"text","text":"own"}],"messages":[{"role":"user","content":"A\u002B1"}]}""")]
    [InlineData("Responses", """{"model":"x","input":"follow-up","template":{"id":"t","variables":{"a":"A","b":"B"}}}""",
        """{"model":"x","input":[{"role":"user","content":"A\u002BB"},{"role":"user","content":"follow-up"}],"instructions":"sys A"}""")]
    public void TryApply_EachApi_PutsTheTemplateFirst(string api, string body, string expected)
    {
        Assert.Equal(expected, Apply(Enum.Parse<LlmApi>(api), body));
    }

    [Fact]
    public void TryApply_VariableHoldingAPlaceholder_IsNotExpandedAgain()
    {
        string filled = Apply(LlmApi.ChatCompletions, """{"template":{"id":"t","version":"1","variables":{"a":"{{a}}"}}}""");

        using var json = JsonDocument.Parse(filled);
        Assert.Equal("hi {{a}}", json.RootElement.GetProperty("messages")[0].GetProperty("content").GetString());
    }

    [Theory]
    [InlineData("""{"template":{"id":"t"}}""", "", "400 template-variable-missing")]
    [InlineData("""{"template":{"id":"t","version":1,"variables":{"a":"x"}}}""", "", "OK")] // a number names a version too
    [InlineData("""{"template":{"variables":{"a":"x"}}}""", "t@1", "OK")]
    [InlineData("""{"template":{"id":"t","variables":{"a":"x"}}}""", "u", "400 template-conflict")]
    [InlineData("""{"template":{"variables":{"a":"x"}}}""", "t@9", "404 template-version-not-found")]
    [InlineData("""{"template":{"id":"zz"}}""", "", "404 template-not-found")]
    [InlineData("""{"template":{}}""", "", "400 invalid-template-field")]
    public void TryApply_References_SelectOrFail(string body, string header, string expected)
    {
        string result = Apply(LlmApi.ChatCompletions, body, header);

        Assert.Equal(expected, result.StartsWith('{') ? "OK" : result);
    }

    [Fact]
    public void TryApply_Embeddings_IsNotApplicable()
    {
        Assert.Equal("400 template-not-applicable", Apply(LlmApi.Embeddings, """{"template":{"id":"t"}}"""));
    }
}
