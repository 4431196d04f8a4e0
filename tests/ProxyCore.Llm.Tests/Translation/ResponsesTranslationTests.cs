using System.Text;
using System.Text.Json;
using ProxyCore.Llm.Translation;

namespace ProxyCore.Llm.Tests.Translation;

/// <summary>OpenAI Responses → Anthropic Messages (request) and Messages → Responses (answer).</summary>
public class ResponsesTranslationTests
{
    private static JsonElement Json(byte[] body) => JsonDocument.Parse(body).RootElement;

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    private const string ResponsesRequest = """
        {"model":"gpt-4o-mini","instructions":"Be brief.","max_output_tokens":300,"temperature":0.5,"top_p":0.9,"user":"u-1","parallel_tool_calls":false,
         "tools":[{"type":"function","name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":true}],
         "tool_choice":"required",
         "input":[
          {"role":"developer","content":"Use metric."},
          {"type":"message","role":"user","content":[{"type":"input_text","text":"Weather in Lisbon?"},{"type":"input_image","image_url":"data:image/png;base64,iVBOR"}]},
          {"type":"reasoning","id":"rs_1","summary":[]},
          {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Checking.","annotations":[]}]},
          {"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Lisbon\"}"},
          {"type":"function_call_output","call_id":"call_1","output":"21 C"},
          {"role":"user","content":"Thanks"}]}
        """;

    [Fact]
    public void ResponsesToAnthropicRequest_FullConversation_Mapped()
    {
        var r = Json(LlmTranslation.ResponsesToAnthropicRequest(Utf8(ResponsesRequest), model: "claude-haiku-4-5"));
        Assert.Equal("claude-haiku-4-5", r.GetProperty("model").GetString());
        Assert.Equal(300, r.GetProperty("max_tokens").GetInt32());
        Assert.Equal("Be brief.\n\nUse metric.", r.GetProperty("system").GetString());
        Assert.Equal(0.5, r.GetProperty("temperature").GetDouble());
        Assert.Equal(0.9, r.GetProperty("top_p").GetDouble());
        Assert.Equal("u-1", r.GetProperty("metadata").GetProperty("user_id").GetString());
        var tool = r.GetProperty("tools")[0];
        Assert.Equal("get_weather", tool.GetProperty("name").GetString());
        Assert.Equal("Weather", tool.GetProperty("description").GetString());
        Assert.Equal("object", tool.GetProperty("input_schema").GetProperty("type").GetString());
        Assert.Equal("any", r.GetProperty("tool_choice").GetProperty("type").GetString());
        Assert.True(r.GetProperty("tool_choice").GetProperty("disable_parallel_tool_use").GetBoolean());

        var messages = r.GetProperty("messages");
        Assert.Equal(3, messages.GetArrayLength()); // user, assistant (text + tool_use merged), user (tool_result + "Thanks" merged)
        var first = messages[0].GetProperty("content");
        Assert.Equal("Weather in Lisbon?", first[0].GetProperty("text").GetString());
        Assert.Equal("image/png", first[1].GetProperty("source").GetProperty("media_type").GetString());
        var assistant = messages[1];
        Assert.Equal("assistant", assistant.GetProperty("role").GetString());
        Assert.Equal("Checking.", assistant.GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal("tool_use", assistant.GetProperty("content")[1].GetProperty("type").GetString());
        Assert.Equal("call_1", assistant.GetProperty("content")[1].GetProperty("id").GetString());
        Assert.Equal("Lisbon", assistant.GetProperty("content")[1].GetProperty("input").GetProperty("city").GetString());
        var last = messages[2].GetProperty("content");
        Assert.Equal("tool_result", last[0].GetProperty("type").GetString());
        Assert.Equal("call_1", last[0].GetProperty("tool_use_id").GetString());
        Assert.Equal("21 C", last[0].GetProperty("content").GetString());
        Assert.Equal("Thanks", last[1].GetProperty("text").GetString());
    }

    [Theory]
    [InlineData("""{"model":"m","input":"hi"}""", "messages", """[{"role":"user","content":[{"type":"text","text":"hi"}]}]""")]
    [InlineData("""{"model":"m","input":"hi"}""", "max_tokens", "4096")] // the Chat → Messages default
    [InlineData("""{"model":"m","input":"hi","max_output_tokens":12}""", "max_tokens", "12")]
    [InlineData("""{"model":"m","input":"hi","stream":false}""", "stream", "false")]
    [InlineData("""{"model":"m","input":"hi","tool_choice":"none"}""", "tool_choice", """{"type":"none"}""")]
    [InlineData("""{"model":"m","input":"hi","tool_choice":{"type":"function","name":"f"}}""", "tool_choice", """{"type":"tool","name":"f"}""")]
    [InlineData("""{"model":"m","input":"hi","tools":[{"type":"function","name":"f"}]}""", "tools", """[{"name":"f","input_schema":{"type":"object"}}]""")]
    [InlineData("""{"model":"m","input":[{"type":"function_call_output","call_id":"c","output":[{"type":"input_text","text":"ok"}]}]}""", "messages",
        """[{"role":"user","content":[{"type":"tool_result","tool_use_id":"c","content":"ok"}]}]""")]
    [InlineData("""{"model":"m","input":[{"type":"function_call","call_id":"c","name":"f","arguments":"not json"}]}""", "messages",
        """[{"role":"assistant","content":[{"type":"tool_use","id":"c","name":"f","input":{"arguments":"not json"}}]}]""")]
    public void ResponsesToAnthropicRequest_Parameters_Table(string request, string member, string expectedJson)
    {
        var r = Json(LlmTranslation.ResponsesToAnthropicRequest(Utf8(request)));
        Assert.Equal(expectedJson, r.GetProperty(member).GetRawText());
    }

    [Theory]
    [InlineData("""{"model":"m"}""", "no input")]
    [InlineData("""{"model":"m","input":42}""", "no input")]
    [InlineData("""{"model":"m","input":"hi","previous_response_id":"resp_1"}""", "previous_response_id")]
    [InlineData("""{"model":"m","input":"hi","tools":[{"type":"web_search"}]}""", "web_search")]
    [InlineData("""{"model":"m","input":[{"role":"wizard","content":"hi"}]}""", "wizard")]
    [InlineData("""{"model":"m","input":[{"type":"function_call_output","output":"x"}]}""", "call_id")]
    [InlineData("""{"model":"m","input":[{"type":"file_search_call","id":"x"}]}""", "file_search_call")]
    [InlineData("""{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]}""", "input_file")]
    [InlineData("""not json""", "not valid JSON")]
    public void ResponsesToAnthropicRequest_Untranslatable_ClearReason(string request, string reason)
    {
        var ex = Assert.Throws<LlmTranslationException>(() => LlmTranslation.ResponsesToAnthropicRequest(Utf8(request)));
        Assert.Contains(reason, ex.Message);
    }

    [Fact]
    public void AnthropicToResponsesResponse_TextToolAndUsage_Mapped()
    {
        const string message = """
            {"id":"msg_01","type":"message","role":"assistant","model":"claude-haiku-4-5",
             "content":[{"type":"thinking","thinking":"hm","signature":"s"},{"type":"text","text":"Let me "},{"type":"text","text":"check."},
                        {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Lisbon"}}],
             "stop_reason":"tool_use","stop_sequence":null,
             "usage":{"input_tokens":10,"cache_creation_input_tokens":2,"cache_read_input_tokens":5,"output_tokens":7}}
            """;
        var r = Json(LlmTranslation.AnthropicToResponsesResponse(Utf8(message), createdAt: 1700000000));
        Assert.Equal("resp_01", r.GetProperty("id").GetString());
        Assert.Equal("response", r.GetProperty("object").GetString());
        Assert.Equal(1700000000, r.GetProperty("created_at").GetInt64());
        Assert.Equal("completed", r.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, r.GetProperty("incomplete_details").ValueKind);
        Assert.Equal("claude-haiku-4-5", r.GetProperty("model").GetString());
        var output = r.GetProperty("output");
        Assert.Equal(2, output.GetArrayLength());
        Assert.Equal("message", output[0].GetProperty("type").GetString());
        Assert.Equal("assistant", output[0].GetProperty("role").GetString());
        var text = output[0].GetProperty("content")[0];
        Assert.Equal("output_text", text.GetProperty("type").GetString());
        Assert.Equal("Let me check.", text.GetProperty("text").GetString());
        Assert.Equal(0, text.GetProperty("annotations").GetArrayLength());
        Assert.Equal("function_call", output[1].GetProperty("type").GetString());
        Assert.Equal("toolu_1", output[1].GetProperty("call_id").GetString());
        Assert.Equal("get_weather", output[1].GetProperty("name").GetString());
        Assert.Equal("Lisbon", JsonDocument.Parse(output[1].GetProperty("arguments").GetString()!).RootElement.GetProperty("city").GetString());
        var usage = r.GetProperty("usage");
        Assert.Equal(17, usage.GetProperty("input_tokens").GetInt64()); // 10 + cache writes 2 + cache reads 5
        Assert.Equal(5, usage.GetProperty("input_tokens_details").GetProperty("cached_tokens").GetInt64());
        Assert.Equal(7, usage.GetProperty("output_tokens").GetInt64());
        Assert.Equal(24, usage.GetProperty("total_tokens").GetInt64());
    }

    [Theory]
    [InlineData("end_turn", "completed", null)]
    [InlineData("stop_sequence", "completed", null)]
    [InlineData("tool_use", "completed", null)]
    [InlineData("max_tokens", "incomplete", "max_output_tokens")]
    [InlineData("refusal", "incomplete", "content_filter")]
    public void AnthropicToResponsesResponse_StopReason_StatusTable(string stop, string status, string? reason)
    {
        string message = $$$"""{"id":"msg_1","model":"m","content":[{"type":"text","text":"x"}],"stop_reason":"{{{stop}}}","usage":{"input_tokens":1,"output_tokens":1}}""";
        var r = Json(LlmTranslation.AnthropicToResponsesResponse(Utf8(message), 0));
        Assert.Equal(status, r.GetProperty("status").GetString());
        var details = r.GetProperty("incomplete_details");
        Assert.Equal(reason, details.ValueKind == JsonValueKind.Null ? null : details.GetProperty("reason").GetString());
    }

    [Theory]
    [InlineData("""{"id":"x","model":"m"}""", "no content")]
    [InlineData("""oops""", "not valid JSON")]
    public void AnthropicToResponsesResponse_NotAMessage_Throws(string body, string reason)
    {
        var ex = Assert.Throws<LlmTranslationException>(() => LlmTranslation.AnthropicToResponsesResponse(Utf8(body), 0));
        Assert.Contains(reason, ex.Message);
    }
}
