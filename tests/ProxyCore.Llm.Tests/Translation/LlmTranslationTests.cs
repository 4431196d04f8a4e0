using System.Text;
using System.Text.Json;
using ProxyCore.Llm.Translation;

namespace ProxyCore.Llm.Tests.Translation;

public class LlmTranslationTests
{
    private static JsonElement Json(byte[] body) => JsonDocument.Parse(body).RootElement;

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    private const string ChatRequest = """
        {"model":"gpt-4o-mini","max_completion_tokens":300,"temperature":0.5,"stop":"END","user":"u-1","parallel_tool_calls":false,
         "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
         "tool_choice":"required",
         "messages":[
          {"role":"system","content":"Be brief."},
          {"role":"developer","content":[{"type":"text","text":"Use metric."}]},
          {"role":"user","content":[{"type":"text","text":"Weather in Lisbon?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}}]},
          {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Lisbon\"}"}},{"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Porto\"}"}}]},
          {"role":"tool","tool_call_id":"call_1","content":"21 C"},
          {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"19 C"}]},
          {"role":"user","content":"Thanks"}]}
        """;

    [Fact]
    public void OpenAIToAnthropicRequest_FullConversation_Mapped()
    {
        var r = Json(LlmTranslation.OpenAIToAnthropicRequest(Utf8(ChatRequest), model: "claude-haiku-4-5"));
        Assert.Equal("claude-haiku-4-5", r.GetProperty("model").GetString());
        Assert.Equal(300, r.GetProperty("max_tokens").GetInt32());
        Assert.Equal("Be brief.\n\nUse metric.", r.GetProperty("system").GetString());
        Assert.Equal(0.5, r.GetProperty("temperature").GetDouble());
        Assert.Equal("END", r.GetProperty("stop_sequences")[0].GetString());
        Assert.Equal("u-1", r.GetProperty("metadata").GetProperty("user_id").GetString());
        var tool = r.GetProperty("tools")[0];
        Assert.Equal("get_weather", tool.GetProperty("name").GetString());
        Assert.Equal("object", tool.GetProperty("input_schema").GetProperty("type").GetString());
        Assert.Equal("any", r.GetProperty("tool_choice").GetProperty("type").GetString());
        Assert.True(r.GetProperty("tool_choice").GetProperty("disable_parallel_tool_use").GetBoolean());

        var messages = r.GetProperty("messages");
        Assert.Equal(3, messages.GetArrayLength()); // user, assistant, user (two tool results + "Thanks" merged)
        var first = messages[0].GetProperty("content");
        Assert.Equal("text", first[0].GetProperty("type").GetString());
        Assert.Equal("base64", first[1].GetProperty("source").GetProperty("type").GetString());
        Assert.Equal("image/png", first[1].GetProperty("source").GetProperty("media_type").GetString());
        Assert.Equal("iVBOR", first[1].GetProperty("source").GetProperty("data").GetString());
        var calls = messages[1].GetProperty("content");
        Assert.Equal("tool_use", calls[0].GetProperty("type").GetString());
        Assert.Equal("call_1", calls[0].GetProperty("id").GetString());
        Assert.Equal("Lisbon", calls[0].GetProperty("input").GetProperty("city").GetString());
        Assert.Equal("Porto", calls[1].GetProperty("input").GetProperty("city").GetString());
        var last = messages[2];
        Assert.Equal("user", last.GetProperty("role").GetString());
        Assert.Equal("tool_result", last.GetProperty("content")[0].GetProperty("type").GetString());
        Assert.Equal("call_1", last.GetProperty("content")[0].GetProperty("tool_use_id").GetString());
        Assert.Equal("19 C", last.GetProperty("content")[1].GetProperty("content").GetString());
        Assert.Equal("Thanks", last.GetProperty("content")[2].GetProperty("text").GetString());
    }

    [Theory]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}]}""", "max_tokens", "4096")]
    [InlineData("""{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}""", "max_tokens", "10")]
    [InlineData("""{"model":"m","stop":["a","b"],"messages":[{"role":"user","content":"hi"}]}""", "stop_sequences", "[\"a\",\"b\"]")]
    [InlineData("""{"model":"m","tool_choice":"none","messages":[{"role":"user","content":"hi"}]}""", "tool_choice", "{\"type\":\"none\"}")]
    [InlineData("""{"model":"m","tool_choice":{"type":"function","function":{"name":"f"}},"messages":[{"role":"user","content":"hi"}]}""", "tool_choice", "{\"type\":\"tool\",\"name\":\"f\"}")]
    [InlineData("""{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}""", "stream", "true")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/a.png"}}]}]}""", "messages", "[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://x/a.png\"}}]}]")]
    public void OpenAIToAnthropicRequest_Parameters_Table(string request, string member, string expectedJson)
    {
        var r = Json(LlmTranslation.OpenAIToAnthropicRequest(Utf8(request)));
        Assert.Equal(expectedJson, r.GetProperty(member).GetRawText());
    }

    [Theory]
    [InlineData("""{"model":"m","n":2,"messages":[{"role":"user","content":"hi"}]}""", "n > 1")]
    [InlineData("""{"model":"m"}""", "no messages")]
    [InlineData("""{"model":"m","messages":[{"role":"wizard","content":"hi"}]}""", "wizard")]
    [InlineData("""{"model":"m","messages":[{"role":"tool","content":"x"}]}""", "tool_call_id")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio"}]}]}""", "input_audio")]
    [InlineData("""not json""", "not valid JSON")]
    [InlineData("""[1]""", "not a JSON object")]
    public void OpenAIToAnthropicRequest_Untranslatable_ClearReason(string request, string reason)
    {
        var ex = Assert.Throws<LlmTranslationException>(() => LlmTranslation.OpenAIToAnthropicRequest(Utf8(request)));
        Assert.Contains(reason, ex.Message);
    }

    private const string MessagesRequest = """
        {"model":"claude-haiku-4-5","max_tokens":200,"system":[{"type":"text","text":"Be brief."}],"stream":true,"stop_sequences":["END"],
         "metadata":{"user_id":"u-2"},
         "tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object"}},{"type":"web_search_20250305","name":"web_search"}],
         "tool_choice":{"type":"tool","name":"get_weather","disable_parallel_tool_use":true},
         "messages":[
          {"role":"user","content":[{"type":"text","text":"Weather?"},{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/"}}]},
          {"role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"s"},{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Lisbon"}}]},
          {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"21 C"},{"type":"text","text":"And tomorrow?"}]}]}
        """;

    [Fact]
    public void AnthropicToOpenAIRequest_FullConversation_Mapped()
    {
        var r = Json(LlmTranslation.AnthropicToOpenAIRequest(Utf8(MessagesRequest), model: "gpt-4o-mini"));
        Assert.Equal("gpt-4o-mini", r.GetProperty("model").GetString());
        Assert.Equal(200, r.GetProperty("max_tokens").GetInt32());
        Assert.True(r.GetProperty("stream_options").GetProperty("include_usage").GetBoolean());
        Assert.Equal("END", r.GetProperty("stop")[0].GetString());
        Assert.Equal("u-2", r.GetProperty("user").GetString());
        Assert.Equal(1, r.GetProperty("tools").GetArrayLength()); // the server tool has no Chat form
        Assert.Equal("get_weather", r.GetProperty("tool_choice").GetProperty("function").GetProperty("name").GetString());
        Assert.False(r.GetProperty("parallel_tool_calls").GetBoolean());
        var m = r.GetProperty("messages");
        Assert.Equal(["system", "user", "assistant", "tool", "user"], m.EnumerateArray().Select(x => x.GetProperty("role").GetString()));
        Assert.Equal("Be brief.", m[0].GetProperty("content").GetString());
        Assert.Equal("data:image/jpeg;base64,/9j/", m[1].GetProperty("content")[1].GetProperty("image_url").GetProperty("url").GetString());
        Assert.Equal("Checking.", m[2].GetProperty("content").GetString());
        var call = m[2].GetProperty("tool_calls")[0];
        Assert.Equal("toolu_1", call.GetProperty("id").GetString());
        Assert.Equal("{\"city\":\"Lisbon\"}", call.GetProperty("function").GetProperty("arguments").GetString());
        Assert.Equal("toolu_1", m[3].GetProperty("tool_call_id").GetString());
        Assert.Equal("21 C", m[3].GetProperty("content").GetString());
        Assert.Equal("And tomorrow?", m[4].GetProperty("content")[0].GetProperty("text").GetString());
    }

    [Fact]
    public void Requests_RoundTrip_ChatToMessagesToChat_KeepsConversation()
    {
        var back = Json(LlmTranslation.AnthropicToOpenAIRequest(LlmTranslation.OpenAIToAnthropicRequest(Utf8(ChatRequest))));
        var m = back.GetProperty("messages");
        Assert.Equal(["system", "user", "assistant", "tool", "tool", "user"], m.EnumerateArray().Select(x => x.GetProperty("role").GetString()));
        Assert.Equal("Be brief.\n\nUse metric.", m[0].GetProperty("content").GetString());
        Assert.Equal(2, m[2].GetProperty("tool_calls").GetArrayLength());
        Assert.Equal("{\"city\":\"Porto\"}", m[2].GetProperty("tool_calls")[1].GetProperty("function").GetProperty("arguments").GetString());
        Assert.Equal("19 C", m[4].GetProperty("content").GetString());
        Assert.Equal("required", back.GetProperty("tool_choice").GetString());
        Assert.Equal(300, back.GetProperty("max_tokens").GetInt32());
    }

    [Theory]
    [InlineData("stop", "end_turn")]
    [InlineData("length", "max_tokens")]
    [InlineData("tool_calls", "tool_use")]
    [InlineData("content_filter", "refusal")]
    [InlineData(null, "end_turn")]
    public void ToAnthropicStopReason_Table(string? finish, string stop) => Assert.Equal(stop, LlmTranslation.ToAnthropicStopReason(finish));

    [Theory]
    [InlineData("end_turn", "stop")]
    [InlineData("stop_sequence", "stop")]
    [InlineData("max_tokens", "length")]
    [InlineData("tool_use", "tool_calls")]
    [InlineData("refusal", "content_filter")]
    [InlineData("pause_turn", "stop")]
    public void ToOpenAIFinishReason_Table(string stop, string finish) => Assert.Equal(finish, LlmTranslation.ToOpenAIFinishReason(stop));

    [Fact]
    public void OpenAIToAnthropicResponse_ToolCallsAndUsage_Mapped()
    {
        const string completion = """
            {"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini",
             "choices":[{"index":0,"message":{"role":"assistant","content":"Let me check.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},{"id":"call_2","type":"function","function":{"name":"g","arguments":"not json"}}]},"finish_reason":"tool_calls"}],
             "usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,"prompt_tokens_details":{"cached_tokens":60}}}
            """;
        var r = Json(LlmTranslation.OpenAIToAnthropicResponse(Utf8(completion)));
        Assert.Equal("message", r.GetProperty("type").GetString());
        Assert.Equal("tool_use", r.GetProperty("stop_reason").GetString());
        var content = r.GetProperty("content");
        Assert.Equal("Let me check.", content[0].GetProperty("text").GetString());
        Assert.Equal(1, content[1].GetProperty("input").GetProperty("a").GetInt32());
        Assert.Equal("not json", content[2].GetProperty("input").GetProperty("arguments").GetString());
        var usage = r.GetProperty("usage");
        Assert.Equal(40, usage.GetProperty("input_tokens").GetInt32());
        Assert.Equal(60, usage.GetProperty("cache_read_input_tokens").GetInt32());
        Assert.Equal(20, usage.GetProperty("output_tokens").GetInt32());
    }

    [Fact]
    public void AnthropicToOpenAIResponse_TextToolAndUsage_Mapped()
    {
        const string message = """
            {"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5",
             "content":[{"type":"thinking","thinking":"x","signature":"s"},{"type":"text","text":"Ahoj"},{"type":"text","text":" světe"},{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":[1,2]}}],
             "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":5,"cache_read_input_tokens":10,"output_tokens":12}}
            """;
        var r = Json(LlmTranslation.AnthropicToOpenAIResponse(Utf8(message), created: 1764115204));
        Assert.Equal("chat.completion", r.GetProperty("object").GetString());
        Assert.Equal(1764115204, r.GetProperty("created").GetInt64());
        var choice = r.GetProperty("choices")[0];
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        Assert.Equal("Ahoj světe", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("{\"a\":[1,2]}", choice.GetProperty("message").GetProperty("tool_calls")[0].GetProperty("function").GetProperty("arguments").GetString());
        var usage = r.GetProperty("usage");
        Assert.Equal(40, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(12, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(52, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal(10, usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
    }

    [Fact]
    public void Responses_RoundTrip_MessageToCompletionToMessage_SameTextAndReason()
    {
        const string message = """{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[{"type":"text","text":"Hi"}],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":4}}""";
        var back = Json(LlmTranslation.OpenAIToAnthropicResponse(LlmTranslation.AnthropicToOpenAIResponse(Utf8(message), 0)));
        Assert.Equal("Hi", back.GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal("max_tokens", back.GetProperty("stop_reason").GetString());
        Assert.Equal(3, back.GetProperty("usage").GetProperty("input_tokens").GetInt32());
        Assert.Equal(4, back.GetProperty("usage").GetProperty("output_tokens").GetInt32());
    }
}
