using System.Text;
using ProxyCore.Llm.Cache;

namespace ProxyCore.Llm.Tests.Cache;

public class LlmRequestHasherTests
{
    private const string Base = """{"model":"gpt-4o-mini","temperature":0.2,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2?"}]}""";

    /// <summary>Bodies that must hash like <see cref="Base"/>: key order, whitespace, escapes, number spelling, delivery.</summary>
    public static TheoryData<string, string> Equivalent => new()
    {
        { "key-order", """{"messages":[{"content":"Be brief.","role":"system"},{"content":"What is 2+2?","role":"user"}],"temperature":0.2,"model":"gpt-4o-mini"}""" },
        { "whitespace", "{ \"model\" : \"gpt-4o-mini\",\n \"temperature\": 0.2, \"messages\": [ {\"role\":\"system\",\"content\":\"Be brief.\"}, {\"role\":\"user\",\"content\":\"What is 2+2?\"} ] }" },
        { "escapes", """{"model":"gpt\u002d4o-mini","temperature":0.2,"messages":[{"role":"system","content":"Be brief\u002E"},{"role":"user","content":"What is 2\u002b2?"}]}""" },
        { "number-spelling", """{"model":"gpt-4o-mini","temperature":2e-1,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2?"}]}""" },
        { "stream-flag-ignored", """{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"temperature":0.2,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2?"}]}""" },
    };

    /// <summary>Bodies that must not: every value counts.</summary>
    public static TheoryData<string, string> Different => new()
    {
        { "model", Base.Replace("gpt-4o-mini", "gpt-4o") },
        { "temperature", Base.Replace("0.2", "0.3") },
        { "new-parameter", Base.Replace("\"temperature\":0.2", "\"temperature\":0.2,\"seed\":1") },
        { "system-prompt", Base.Replace("Be brief.", "Be verbose.") },
        { "user-turn", Base.Replace("2+2", "2+3") },
        { "role", Base.Replace("\"role\":\"system\"", "\"role\":\"developer\"") },
        { "turn-order", """{"model":"gpt-4o-mini","temperature":0.2,"messages":[{"role":"user","content":"What is 2+2?"},{"role":"system","content":"Be brief."}]}""" },
        { "extra-turn", Base.Replace("]}", ",{\"role\":\"assistant\",\"content\":\"4\"}]}") },
        { "tools", Base.Replace("\"temperature\":0.2", "\"temperature\":0.2,\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"add\"}}]") },
        { "response-format", Base.Replace("\"temperature\":0.2", "\"temperature\":0.2,\"response_format\":{\"type\":\"json_object\"}") },
        { "string-vs-number", Base.Replace("0.2", "\"0.2\"") },
        { "true-vs-false", Base.Replace("\"temperature\":0.2", "\"temperature\":0.2,\"logprobs\":true") },
        { "null-vs-missing", Base.Replace("\"temperature\":0.2", "\"temperature\":0.2,\"stop\":null") },
        { "case", Base.Replace("Be brief.", "be brief.") },
        { "array-vs-string", Base.Replace("\"What is 2+2?\"", "[\"What is 2+2?\"]") },
        { "nested-stream-not-ignored", Base.Replace("\"temperature\":0.2", "\"temperature\":0.2,\"metadata\":{\"stream\":\"x\"}") },
        { "big-integer-digits", Base.Replace("\"temperature\":0.2", "\"temperature\":0.2,\"seed\":123456789012345678901") },
    };

    private static LlmRequestKeys Hash(string body, string tenant = "t1", LlmRequestApi api = LlmRequestApi.OpenAIChat)
    {
        Assert.True(LlmRequestHasher.TryHash(Encoding.UTF8.GetBytes(tenant), api, Encoding.UTF8.GetBytes(body), extractLastUserText: true, out var keys));
        return keys;
    }

    [Theory]
    [MemberData(nameof(Equivalent))]
    public void TryHash_EquivalentBody_SameExactKey(string name, string body)
    {
        Assert.True(Hash(Base).Exact == Hash(body).Exact, name);
        Assert.True(Hash(Base).Partition == Hash(body).Partition, name);
    }

    [Theory]
    [MemberData(nameof(Different))]
    public void TryHash_AnyValueChanged_DifferentExactKey(string name, string body) =>
        Assert.True(Hash(Base).Exact != Hash(body).Exact, name);

    [Fact]
    public void TryHash_OtherTenantOrApi_DifferentKeys()
    {
        Assert.NotEqual(Hash(Base).Exact, Hash(Base, tenant: "t2").Exact);
        Assert.NotEqual(Hash(Base).Partition, Hash(Base, tenant: "t2").Partition);
        Assert.NotEqual(Hash(Base).Exact, Hash(Base, api: LlmRequestApi.AnthropicMessages).Exact);
    }

    [Fact]
    public void TryHash_OnlyLastUserTextChanged_SamePartitionDifferentExact()
    {
        var a = Hash(Base);
        var b = Hash(Base.Replace("What is 2+2?", "Tell me 2 plus 2"));
        Assert.Equal("What is 2+2?", a.LastUserText);
        Assert.Equal("Tell me 2 plus 2", b.LastUserText);
        Assert.Equal(a.Partition, b.Partition);
        Assert.NotEqual(a.Exact, b.Exact);
        Assert.NotEqual(a.Exact, a.Partition);
    }

    [Theory]
    [InlineData("system", "Be brief.", "Be verbose.")]
    [InlineData("model", "gpt-4o-mini", "gpt-4o")]
    [InlineData("temperature", "0.2", "0.9")]
    public void TryHash_AnythingElseChanged_DifferentPartition(string name, string from, string to) =>
        Assert.True(Hash(Base).Partition != Hash(Base.Replace(from, to)).Partition, name);

    [Fact]
    public void TryHash_EarlierUserTurnChanged_DifferentPartition()
    {
        const string multi = """{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"and now?"}]}""";
        Assert.NotEqual(Hash(multi).Partition, Hash(multi.Replace("\"hi\"", "\"hey\"")).Partition);
        Assert.Equal(Hash(multi).Partition, Hash(multi.Replace("and now?", "what next?")).Partition);
    }

    [Fact]
    public void TryHash_AnthropicTextBlocks_TextJoinedAndCacheControlIgnoredInText()
    {
        const string body = """{"model":"claude-haiku-4-5","max_tokens":100,"system":"S","messages":[{"role":"user","content":[{"type":"text","text":"first"},{"type":"text","text":"second","cache_control":{"type":"ephemeral"}}]}]}""";
        var keys = Hash(body, api: LlmRequestApi.AnthropicMessages);
        Assert.Equal("first\nsecond", keys.LastUserText);
    }

    [Theory]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:x"}}]}]}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}""")]
    [InlineData("""{"model":"m","messages":[{"role":"tool","content":"42","tool_call_id":"c"}]}""")]
    public void TryHash_LastTurnNotUserText_NoSemanticText(string body)
    {
        var keys = Hash(body);
        Assert.Null(keys.LastUserText);
        Assert.Equal(keys.Exact, keys.Partition);
    }

    [Theory]
    [InlineData("")]
    [InlineData("[]")]
    [InlineData("{\"a\":1")]
    [InlineData("{\"a\":1}{}")]
    [InlineData("{\"a\":1,}")]
    [InlineData("\"x\"")]
    public void TryHash_NotOneJsonObject_False(string body) =>
        Assert.False(LlmRequestHasher.TryHash("t"u8, LlmRequestApi.OpenAIChat, Encoding.UTF8.GetBytes(body), true, out _));

    [Fact]
    public void TryHash_LongEscapedString_UsesPooledBuffer()
    {
        string text = new string('a', 2000) + "\\u0041";
        var a = Hash($$"""{"model":"m","messages":[{"role":"user","content":"{{text}}"}]}""");
        var b = Hash($$"""{"model":"m","messages":[{"role":"user","content":"{{new string('a', 2000)}}A"}]}""");
        Assert.Equal(a.Exact, b.Exact);
    }
}
