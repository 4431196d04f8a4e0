using System.Text;
using System.Text.Json;

namespace ProxyCore.Llm.Translation;

/// <summary>
/// OpenAI Responses → Anthropic Messages (request) and back (non-stream response). The Responses
/// request is stateless here: <c>previous_response_id</c> (state kept by OpenAI) is refused, as is a
/// built-in tool, rather than silently answered without it.
/// </summary>
public static partial class LlmTranslation
{
    /// <summary>An OpenAI Responses request as an Anthropic Messages request.</summary>
    /// <param name="body">The Responses request.</param>
    /// <param name="model">The provider's model name (after the route's model map); null keeps the request's.</param>
    /// <exception cref="LlmTranslationException">The body is not a Responses request, or asks for what Messages cannot do.</exception>
    public static byte[] ResponsesToAnthropicRequest(ReadOnlySpan<byte> body, string? model = null, int defaultMaxTokens = DefaultMaxTokens)
    {
        using var document = Parse(body, "request body");
        var root = document.RootElement;
        if (!root.TryGet("input", out var input) || input.ValueKind is not (JsonValueKind.String or JsonValueKind.Array))
        {
            throw new LlmTranslationException("request has no input (a string or an array of items)");
        }
        if (root.GetString("previous_response_id") is not null)
        {
            throw new LlmTranslationException("previous_response_id cannot be translated: Anthropic keeps no conversation state (send the whole input)");
        }

        var system = new StringBuilder(root.GetString("instructions") ?? "");
        var turns = new List<Turn>();
        if (input.ValueKind == JsonValueKind.String)
        {
            string text = input.GetString()!;
            AddTurn(turns, "user", [w => WriteTextBlock(w, text)]);
        }
        else
        {
            foreach (var item in input.EnumerateArray())
            {
                AddInputItem(item, system, turns);
            }
        }

        return Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("model", model ?? root.GetString("model") ?? "");
            w.WriteNumber("max_tokens", root.GetLong("max_output_tokens") is > 0 and var max ? max : defaultMaxTokens);
            WriteAnthropicBody(w, root, system, turns);
            if (root.TryGet("tools", out var tools) && tools.ValueKind == JsonValueKind.Array && tools.GetArrayLength() > 0)
            {
                w.WriteStartArray("tools");
                foreach (var tool in tools.EnumerateArray())
                {
                    if (tool.GetString("type") != "function")
                    {
                        throw new LlmTranslationException($"tool type '{tool.GetString("type")}' cannot be translated to Anthropic (function tools only)");
                    }
                    WriteAnthropicTool(w, tool.GetString("name") ?? throw new LlmTranslationException("a function tool has no name"), tool);
                }
                w.WriteEndArray();
            }
            bool parallel = !(root.TryGet("parallel_tool_calls", out var p) && p.ValueKind == JsonValueKind.False);
            if (root.TryGet("tool_choice", out var choice) || !parallel)
            {
                // Responses: "auto" | "none" | "required" | {type:"function", name} (flat, unlike Chat's).
                string type = choice.ValueKind switch
                {
                    JsonValueKind.String => choice.GetString() switch { "none" => "none", "required" => "any", _ => "auto" },
                    JsonValueKind.Object when choice.GetString("type") == "function" => "tool",
                    _ => "auto",
                };
                w.WriteStartObject("tool_choice");
                w.WriteString("type", type);
                if (type == "tool")
                {
                    w.WriteString("name", choice.GetString("name"));
                }
                if (!parallel && type != "none")
                {
                    w.WriteBoolean("disable_parallel_tool_use", true);
                }
                w.WriteEndObject();
            }
            if (root.GetString("user") is { } user)
            {
                w.WriteStartObject("metadata");
                w.WriteString("user_id", user);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }, body.Length + 256);
    }

    /// <summary>One Responses input item: a message (by role), a function call, or its output; reasoning items are the model's own notes and are dropped.</summary>
    private static void AddInputItem(JsonElement item, StringBuilder system, List<Turn> turns)
    {
        string? type = item.GetString("type");
        switch (type)
        {
            case null or "message":
                {
                    string role = item.GetString("role") ?? throw new LlmTranslationException("an input message has no role");
                    var content = item.TryGet("content", out var c) ? c : default;
                    switch (role)
                    {
                        case "system" or "developer":
                            if (system.Length > 0)
                            {
                                system.Append("\n\n");
                            }
                            system.Append(TextOf(content));
                            break;
                        case "user" or "assistant":
                            AddTurn(turns, role, InputContentBlocks(content));
                            break;
                        default:
                            throw new LlmTranslationException($"input message role '{role}' cannot be translated");
                    }
                    break;
                }
            case "function_call":
                {
                    string id = item.GetString("call_id") ?? throw new LlmTranslationException("a function_call item has no call_id");
                    string name = item.GetString("name") ?? "";
                    string? arguments = item.GetString("arguments");
                    AddTurn(turns, "assistant", [w =>
                    {
                        w.WriteStartObject();
                        w.WriteString("type", "tool_use");
                        w.WriteString("id", id);
                        w.WriteString("name", name);
                        w.WritePropertyName("input");
                        WriteToolInput(w, arguments);
                        w.WriteEndObject();
                    }]);
                    break;
                }
            case "function_call_output":
                {
                    string id = item.GetString("call_id") ?? throw new LlmTranslationException("a function_call_output item has no call_id");
                    var output = item.TryGet("output", out var o) ? o : default;
                    string text = output.ValueKind == JsonValueKind.String ? output.GetString()! : TextOf(output);
                    AddTurn(turns, "user", [w =>
                    {
                        w.WriteStartObject();
                        w.WriteString("type", "tool_result");
                        w.WriteString("tool_use_id", id);
                        w.WriteString("content", text);
                        w.WriteEndObject();
                    }]);
                    break;
                }
            case "reasoning":
                break;
            default:
                throw new LlmTranslationException($"input item type '{type}' cannot be translated to Anthropic");
        }
    }

    /// <summary>A Responses message's content (a string, or input_text / output_text / input_image parts) as Messages blocks.</summary>
    private static List<Action<Utf8JsonWriter>> InputContentBlocks(JsonElement content)
    {
        var blocks = new List<Action<Utf8JsonWriter>>();
        if (content.ValueKind == JsonValueKind.String)
        {
            string text = content.GetString()!;
            blocks.Add(w => WriteTextBlock(w, text));
            return blocks;
        }
        if (content.ValueKind != JsonValueKind.Array)
        {
            return blocks;
        }
        foreach (var part in content.EnumerateArray())
        {
            switch (part.GetString("type"))
            {
                case "input_text" or "output_text" or "text":
                    {
                        string text = part.GetString("text") ?? "";
                        blocks.Add(w => WriteTextBlock(w, text));
                        break;
                    }
                case "input_image" when part.GetString("image_url") is { } url:
                    blocks.Add(w => WriteImageBlock(w, url));
                    break;
                case "refusal":
                    {
                        string text = part.GetString("refusal") ?? "";
                        blocks.Add(w => WriteTextBlock(w, text));
                        break;
                    }
                default:
                    throw new LlmTranslationException($"content part type '{part.GetString("type")}' cannot be translated to Anthropic");
            }
        }
        return blocks;
    }

    /// <summary>An Anthropic <c>message</c> as an OpenAI Responses <c>response</c> object.</summary>
    /// <param name="createdAt">The <c>created_at</c> Unix time to report (Messages has none): the stage passes its clock's.</param>
    public static byte[] AnthropicToResponsesResponse(ReadOnlySpan<byte> body, long createdAt)
    {
        using var document = Parse(body, "response body");
        var root = document.RootElement;
        if (!root.TryGet("content", out var content) || content.ValueKind != JsonValueKind.Array)
        {
            throw new LlmTranslationException("response has no content array");
        }
        string id = root.GetString("id") ?? "";
        string bare = id.StartsWith("msg_", StringComparison.Ordinal) ? id[4..] : id;
        string? stop = root.GetString("stop_reason");
        string? incomplete = stop switch
        {
            "max_tokens" or "model_context_window_exceeded" => "max_output_tokens",
            "refusal" => "content_filter",
            _ => null,
        };
        return Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("id", "resp_" + bare);
            w.WriteString("object", "response");
            w.WriteNumber("created_at", createdAt);
            w.WriteString("status", incomplete is null ? "completed" : "incomplete");
            w.WriteNull("error");
            if (incomplete is null)
            {
                w.WriteNull("incomplete_details");
            }
            else
            {
                w.WriteStartObject("incomplete_details");
                w.WriteString("reason", incomplete);
                w.WriteEndObject();
            }
            w.WriteString("model", root.GetString("model") ?? "");
            w.WriteStartArray("output");
            var text = new StringBuilder();
            foreach (var block in content.EnumerateArray())
            {
                if (block.GetString("type") == "text")
                {
                    text.Append(block.GetString("text"));
                }
            }
            if (text.Length > 0)
            {
                w.WriteStartObject();
                w.WriteString("type", "message");
                w.WriteString("id", "msg_" + bare);
                w.WriteString("status", "completed");
                w.WriteString("role", "assistant");
                w.WriteStartArray("content");
                w.WriteStartObject();
                w.WriteString("type", "output_text");
                w.WriteString("text", text.ToString());
                w.WriteStartArray("annotations");
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndArray();
                w.WriteEndObject();
            }
            foreach (var block in content.EnumerateArray())
            {
                if (block.GetString("type") != "tool_use")
                {
                    continue;
                }
                string callId = block.GetString("id") ?? "";
                w.WriteStartObject();
                w.WriteString("type", "function_call");
                w.WriteString("id", "fc_" + callId);
                w.WriteString("call_id", callId);
                w.WriteString("name", block.GetString("name"));
                w.WriteString("arguments", block.TryGet("input", out var toolInput) ? toolInput.GetRawText() : "{}");
                w.WriteString("status", "completed");
                w.WriteEndObject();
            }
            w.WriteEndArray();
            WriteResponsesUsage(w, root.TryGet("usage", out var usage) ? usage : default);
            w.WriteEndObject();
        }, body.Length + 512);
    }

    /// <summary>Responses usage from Messages usage: <c>input_tokens</c> counts cache reads and writes too (as OpenAI's does).</summary>
    internal static void WriteResponsesUsage(Utf8JsonWriter w, JsonElement usage)
    {
        long cacheRead = usage.GetLong("cache_read_input_tokens");
        long input = usage.GetLong("input_tokens") + cacheRead + usage.GetLong("cache_creation_input_tokens");
        long output = usage.GetLong("output_tokens");
        w.WriteStartObject("usage");
        w.WriteNumber("input_tokens", input);
        w.WriteStartObject("input_tokens_details");
        w.WriteNumber("cached_tokens", cacheRead);
        w.WriteEndObject();
        w.WriteNumber("output_tokens", output);
        w.WriteStartObject("output_tokens_details");
        w.WriteNumber("reasoning_tokens", 0);
        w.WriteEndObject();
        w.WriteNumber("total_tokens", input + output);
        w.WriteEndObject();
    }
}
