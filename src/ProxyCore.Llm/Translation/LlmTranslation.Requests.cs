using System.Text;
using System.Text.Json;

namespace ProxyCore.Llm.Translation;

public static partial class LlmTranslation
{
    private sealed record Turn(string Role, List<Action<Utf8JsonWriter>> Blocks);

    /// <summary>An OpenAI Chat Completions request as an Anthropic Messages request.</summary>
    /// <param name="body">The Chat request.</param>
    /// <param name="model">The provider's model name (after the route's model map); null keeps the request's.</param>
    /// <exception cref="LlmTranslationException">The body is not a Chat request, or asks for what Messages cannot do.</exception>
    public static byte[] OpenAIToAnthropicRequest(ReadOnlySpan<byte> body, string? model = null, int defaultMaxTokens = DefaultMaxTokens)
    {
        using var document = Parse(body, "request body");
        var root = document.RootElement;
        if (!root.TryGet("messages", out var messages) || messages.ValueKind != JsonValueKind.Array)
        {
            throw new LlmTranslationException("request has no messages array");
        }
        if (root.GetLong("n") > 1)
        {
            throw new LlmTranslationException("n > 1 cannot be translated: Anthropic returns one answer per request");
        }

        var system = new StringBuilder();
        var turns = new List<Turn>();
        foreach (var message in messages.EnumerateArray())
        {
            string role = message.GetString("role") ?? throw new LlmTranslationException("a message has no role");
            switch (role)
            {
                case "system" or "developer":
                    if (system.Length > 0)
                    {
                        system.Append("\n\n");
                    }
                    system.Append(TextOf(message.TryGet("content", out var c) ? c : default));
                    break;
                case "user":
                    AddTurn(turns, "user", UserBlocks(message));
                    break;
                case "assistant":
                    AddTurn(turns, "assistant", AssistantBlocks(message));
                    break;
                case "tool":
                    {
                        string id = message.GetString("tool_call_id") ?? throw new LlmTranslationException("a tool message has no tool_call_id");
                        string text = TextOf(message.TryGet("content", out var tc) ? tc : default);
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
                default:
                    throw new LlmTranslationException($"message role '{role}' cannot be translated");
            }
        }

        return Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("model", model ?? root.GetString("model") ?? "");
            long maxTokens = root.GetLong("max_completion_tokens") is > 0 and var m1 ? m1 : root.GetLong("max_tokens") is > 0 and var m2 ? m2 : defaultMaxTokens;
            w.WriteNumber("max_tokens", maxTokens);
            WriteAnthropicBody(w, root, system, turns);
            if (root.TryGet("stop", out var stop))
            {
                w.WriteStartArray("stop_sequences");
                if (stop.ValueKind == JsonValueKind.String)
                {
                    w.WriteStringValue(stop.GetString());
                }
                else if (stop.ValueKind == JsonValueKind.Array)
                {
                    foreach (var s in stop.EnumerateArray())
                    {
                        s.WriteTo(w);
                    }
                }
                w.WriteEndArray();
            }
            if (root.TryGet("tools", out var tools) && tools.ValueKind == JsonValueKind.Array)
            {
                w.WriteStartArray("tools");
                foreach (var tool in tools.EnumerateArray())
                {
                    if (!tool.TryGet("function", out var function))
                    {
                        continue; // non-function tools (web search…) have no Messages counterpart here
                    }
                    WriteAnthropicTool(w, function.GetString("name") ?? throw new LlmTranslationException("a tool has no function name"), function);
                }
                w.WriteEndArray();
            }
            bool parallel = !(root.TryGet("parallel_tool_calls", out var p) && p.ValueKind == JsonValueKind.False);
            if (root.TryGet("tool_choice", out var choice) || !parallel)
            {
                w.WriteStartObject("tool_choice");
                string type = choice.ValueKind switch
                {
                    JsonValueKind.String => choice.GetString() switch { "none" => "none", "required" => "any", _ => "auto" },
                    JsonValueKind.Object => "tool",
                    _ => "auto",
                };
                w.WriteString("type", type);
                if (type == "tool")
                {
                    w.WriteString("name", choice.TryGet("function", out var f) ? f.GetString("name") : null);
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

    /// <summary>The part of a Messages request both OpenAI shapes translate alike: system, the turns, and the sampling fields.</summary>
    private static void WriteAnthropicBody(Utf8JsonWriter w, JsonElement root, StringBuilder system, List<Turn> turns)
    {
        if (system.Length > 0)
        {
            w.WriteString("system", system.ToString());
        }
        w.WriteStartArray("messages");
        foreach (var turn in turns)
        {
            w.WriteStartObject();
            w.WriteString("role", turn.Role);
            w.WriteStartArray("content");
            foreach (var block in turn.Blocks)
            {
                block(w);
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        Copy(root, "temperature", w, "temperature");
        Copy(root, "top_p", w, "top_p");
        Copy(root, "stream", w, "stream");
    }

    /// <summary>One Messages tool: name, the description and the JSON Schema (<c>parameters</c>) of <paramref name="spec"/>; no schema: any object.</summary>
    private static void WriteAnthropicTool(Utf8JsonWriter w, string name, JsonElement spec)
    {
        w.WriteStartObject();
        w.WriteString("name", name);
        Copy(spec, "description", w, "description");
        w.WritePropertyName("input_schema");
        if (spec.TryGet("parameters", out var parameters))
        {
            parameters.WriteTo(w);
        }
        else
        {
            w.WriteStartObject();
            w.WriteString("type", "object");
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    private static void AddTurn(List<Turn> turns, string role, List<Action<Utf8JsonWriter>> blocks)
    {
        if (blocks.Count == 0)
        {
            return;
        }
        if (turns.Count > 0 && turns[^1].Role == role)
        {
            turns[^1].Blocks.AddRange(blocks);
        }
        else
        {
            turns.Add(new Turn(role, blocks));
        }
    }

    /// <summary>A Chat content value (string, or parts) as plain text: text parts joined.</summary>
    private static string TextOf(JsonElement content)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString()!;
        }
        if (content.ValueKind != JsonValueKind.Array)
        {
            return "";
        }
        var sb = new StringBuilder();
        foreach (var part in content.EnumerateArray())
        {
            if (part.GetString("text") is { } text)
            {
                sb.Append(text);
            }
        }
        return sb.ToString();
    }

    private static List<Action<Utf8JsonWriter>> UserBlocks(JsonElement message)
    {
        var blocks = new List<Action<Utf8JsonWriter>>();
        if (!message.TryGet("content", out var content))
        {
            return blocks;
        }
        if (content.ValueKind == JsonValueKind.String)
        {
            string text = content.GetString()!;
            blocks.Add(w => WriteTextBlock(w, text));
            return blocks;
        }
        if (content.ValueKind != JsonValueKind.Array)
        {
            throw new LlmTranslationException("message content is neither a string nor an array of parts");
        }
        foreach (var part in content.EnumerateArray())
        {
            switch (part.GetString("type"))
            {
                case "text":
                    {
                        string text = part.GetString("text") ?? "";
                        blocks.Add(w => WriteTextBlock(w, text));
                        break;
                    }
                case "image_url":
                    {
                        string url = part.TryGet("image_url", out var image) ? image.GetString("url") ?? "" : "";
                        blocks.Add(w => WriteImageBlock(w, url));
                        break;
                    }
                default:
                    throw new LlmTranslationException($"content part type '{part.GetString("type")}' cannot be translated to Anthropic");
            }
        }
        return blocks;
    }

    private static List<Action<Utf8JsonWriter>> AssistantBlocks(JsonElement message)
    {
        var blocks = new List<Action<Utf8JsonWriter>>();
        string text = TextOf(message.TryGet("content", out var c) ? c : default);
        if (text.Length > 0)
        {
            blocks.Add(w => WriteTextBlock(w, text));
        }
        if (message.TryGet("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array)
        {
            foreach (var call in calls.EnumerateArray())
            {
                string id = call.GetString("id") ?? "";
                var function = call.TryGet("function", out var f) ? f : default;
                string name = function.GetString("name") ?? "";
                string? arguments = function.GetString("arguments");
                blocks.Add(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("type", "tool_use");
                    w.WriteString("id", id);
                    w.WriteString("name", name);
                    w.WritePropertyName("input");
                    WriteToolInput(w, arguments);
                    w.WriteEndObject();
                });
            }
        }
        return blocks;
    }

    private static void WriteTextBlock(Utf8JsonWriter w, string text)
    {
        w.WriteStartObject();
        w.WriteString("type", "text");
        w.WriteString("text", text);
        w.WriteEndObject();
    }

    /// <summary>A Chat image URL as a Messages image block: <c>data:</c> URLs become base64 sources, others URL sources.</summary>
    private static void WriteImageBlock(Utf8JsonWriter w, string url)
    {
        w.WriteStartObject();
        w.WriteString("type", "image");
        w.WriteStartObject("source");
        int comma = url.IndexOf(',');
        if (url.StartsWith("data:", StringComparison.OrdinalIgnoreCase) && comma > 0 && url.AsSpan(0, comma).EndsWith(";base64", StringComparison.OrdinalIgnoreCase))
        {
            w.WriteString("type", "base64");
            w.WriteString("media_type", url[5..(comma - 7)]);
            w.WriteString("data", url[(comma + 1)..]);
        }
        else
        {
            w.WriteString("type", "url");
            w.WriteString("url", url);
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>An Anthropic Messages request as an OpenAI Chat Completions request.</summary>
    /// <param name="includeUsageInStream">For a streaming request, ask for <c>stream_options.include_usage</c> (the Messages stream always reports usage, so its translation needs it).</param>
    public static byte[] AnthropicToOpenAIRequest(ReadOnlySpan<byte> body, string? model = null, bool includeUsageInStream = true)
    {
        using var document = Parse(body, "request body");
        var root = document.RootElement;
        if (!root.TryGet("messages", out var messages) || messages.ValueKind != JsonValueKind.Array)
        {
            throw new LlmTranslationException("request has no messages array");
        }
        return Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("model", model ?? root.GetString("model") ?? "");
            w.WriteStartArray("messages");
            if (root.TryGet("system", out var system))
            {
                string text = system.ValueKind == JsonValueKind.String ? system.GetString()! : TextOf(system);
                if (text.Length > 0)
                {
                    w.WriteStartObject();
                    w.WriteString("role", "system");
                    w.WriteString("content", text);
                    w.WriteEndObject();
                }
            }
            foreach (var message in messages.EnumerateArray())
            {
                string role = message.GetString("role") ?? throw new LlmTranslationException("a message has no role");
                if (role is not ("user" or "assistant"))
                {
                    throw new LlmTranslationException($"message role '{role}' is not a Messages role");
                }
                if (!message.TryGet("content", out var content))
                {
                    continue;
                }
                if (content.ValueKind == JsonValueKind.String)
                {
                    w.WriteStartObject();
                    w.WriteString("role", role);
                    w.WriteString("content", content.GetString());
                    w.WriteEndObject();
                    continue;
                }
                if (content.ValueKind != JsonValueKind.Array)
                {
                    throw new LlmTranslationException("message content is neither a string nor an array of blocks");
                }
                if (role == "assistant")
                {
                    WriteAssistantMessage(w, content);
                }
                else
                {
                    WriteUserMessages(w, content);
                }
            }
            w.WriteEndArray();
            Copy(root, "max_tokens", w, "max_tokens");
            Copy(root, "temperature", w, "temperature");
            Copy(root, "top_p", w, "top_p");
            Copy(root, "stop_sequences", w, "stop");
            if (root.TryGet("stream", out var stream))
            {
                w.WritePropertyName("stream");
                stream.WriteTo(w);
                if (stream.ValueKind == JsonValueKind.True && includeUsageInStream)
                {
                    w.WriteStartObject("stream_options");
                    w.WriteBoolean("include_usage", true);
                    w.WriteEndObject();
                }
            }
            if (root.TryGet("tools", out var tools) && tools.ValueKind == JsonValueKind.Array)
            {
                w.WriteStartArray("tools");
                foreach (var tool in tools.EnumerateArray())
                {
                    if (!tool.TryGet("input_schema", out var schema))
                    {
                        continue; // server tools (web_search, bash…) have no Chat counterpart
                    }
                    w.WriteStartObject();
                    w.WriteString("type", "function");
                    w.WriteStartObject("function");
                    w.WriteString("name", tool.GetString("name"));
                    Copy(tool, "description", w, "description");
                    w.WritePropertyName("parameters");
                    schema.WriteTo(w);
                    w.WriteEndObject();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            if (root.TryGet("tool_choice", out var choice))
            {
                switch (choice.GetString("type"))
                {
                    case "any":
                        w.WriteString("tool_choice", "required");
                        break;
                    case "none":
                        w.WriteString("tool_choice", "none");
                        break;
                    case "tool":
                        w.WriteStartObject("tool_choice");
                        w.WriteString("type", "function");
                        w.WriteStartObject("function");
                        w.WriteString("name", choice.GetString("name"));
                        w.WriteEndObject();
                        w.WriteEndObject();
                        break;
                    default:
                        w.WriteString("tool_choice", "auto");
                        break;
                }
                if (choice.TryGet("disable_parallel_tool_use", out var d) && d.ValueKind == JsonValueKind.True)
                {
                    w.WriteBoolean("parallel_tool_calls", false);
                }
            }
            if (root.TryGet("metadata", out var metadata) && metadata.GetString("user_id") is { } user)
            {
                w.WriteString("user", user);
            }
            w.WriteEndObject();
        }, body.Length + 256);
    }

    private static void WriteAssistantMessage(Utf8JsonWriter w, JsonElement blocks, bool withRefusal = false)
    {
        var text = new StringBuilder();
        bool anyTool = false;
        foreach (var block in blocks.EnumerateArray())
        {
            if (block.GetString("type") == "text")
            {
                text.Append(block.GetString("text"));
            }
            anyTool |= block.GetString("type") == "tool_use";
        }
        w.WriteStartObject();
        w.WriteString("role", "assistant");
        if (text.Length > 0 || !anyTool)
        {
            w.WriteString("content", text.ToString());
        }
        else
        {
            w.WriteNull("content");
        }
        if (anyTool)
        {
            w.WriteStartArray("tool_calls");
            foreach (var block in blocks.EnumerateArray())
            {
                if (block.GetString("type") != "tool_use")
                {
                    continue;
                }
                w.WriteStartObject();
                w.WriteString("id", block.GetString("id"));
                w.WriteString("type", "function");
                w.WriteStartObject("function");
                w.WriteString("name", block.GetString("name"));
                w.WriteString("arguments", block.TryGet("input", out var input) ? input.GetRawText() : "{}");
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        if (withRefusal)
        {
            w.WriteNull("refusal");
        }
        w.WriteEndObject();
    }

    /// <summary>A user turn's blocks: each <c>tool_result</c> becomes a <c>tool</c> message (first, as Chat wants them right after the call), the rest one user message.</summary>
    private static void WriteUserMessages(Utf8JsonWriter w, JsonElement blocks)
    {
        bool anyOther = false;
        foreach (var block in blocks.EnumerateArray())
        {
            string? type = block.GetString("type");
            if (type != "tool_result")
            {
                anyOther |= type is "text" or "image";
                continue;
            }
            w.WriteStartObject();
            w.WriteString("role", "tool");
            w.WriteString("tool_call_id", block.GetString("tool_use_id"));
            var content = block.TryGet("content", out var c) ? c : default;
            string text = content.ValueKind == JsonValueKind.String ? content.GetString()! : TextOf(content);
            if (block.TryGet("is_error", out var isError) && isError.ValueKind == JsonValueKind.True)
            {
                text = "Error: " + text;
            }
            w.WriteString("content", text);
            w.WriteEndObject();
        }
        if (!anyOther)
        {
            return;
        }
        w.WriteStartObject();
        w.WriteString("role", "user");
        w.WriteStartArray("content");
        foreach (var block in blocks.EnumerateArray())
        {
            switch (block.GetString("type"))
            {
                case "text":
                    w.WriteStartObject();
                    w.WriteString("type", "text");
                    w.WriteString("text", block.GetString("text"));
                    w.WriteEndObject();
                    break;
                case "image":
                    {
                        var source = block.TryGet("source", out var s) ? s : default;
                        string url = source.GetString("type") == "base64"
                            ? $"data:{source.GetString("media_type")};base64,{source.GetString("data")}"
                            : source.GetString("url") ?? "";
                        w.WriteStartObject();
                        w.WriteString("type", "image_url");
                        w.WriteStartObject("image_url");
                        w.WriteString("url", url);
                        w.WriteEndObject();
                        w.WriteEndObject();
                        break;
                    }
            }
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
