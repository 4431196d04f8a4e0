using System.Text.Json;

namespace ProxyCore.Llm.Translation;

public static partial class LlmTranslation
{
    /// <summary>An OpenAI <c>chat.completion</c> as an Anthropic <c>message</c> (the first choice).</summary>
    /// <exception cref="LlmTranslationException">Not a chat completion (the stage answers 502: the provider's answer is unusable).</exception>
    public static byte[] OpenAIToAnthropicResponse(ReadOnlySpan<byte> body)
    {
        using var document = Parse(body, "response body");
        var root = document.RootElement;
        if (!root.TryGet("choices", out var choices) || choices.ValueKind != JsonValueKind.Array || choices.GetArrayLength() == 0)
        {
            throw new LlmTranslationException("response has no choices");
        }
        var choice = choices[0];
        var message = choice.TryGet("message", out var m) ? m : default;
        return Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("id", root.GetString("id") ?? "");
            w.WriteString("type", "message");
            w.WriteString("role", "assistant");
            w.WriteString("model", root.GetString("model") ?? "");
            w.WriteStartArray("content");
            string text = TextOf(message.TryGet("content", out var c) ? c : default);
            if (text.Length > 0)
            {
                WriteTextBlock(w, text);
            }
            if (message.TryGet("refusal", out var refusal) && refusal.ValueKind == JsonValueKind.String)
            {
                WriteTextBlock(w, refusal.GetString()!);
            }
            if (message.TryGet("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array)
            {
                foreach (var call in calls.EnumerateArray())
                {
                    var function = call.TryGet("function", out var f) ? f : default;
                    w.WriteStartObject();
                    w.WriteString("type", "tool_use");
                    w.WriteString("id", call.GetString("id"));
                    w.WriteString("name", function.GetString("name"));
                    w.WritePropertyName("input");
                    WriteToolInput(w, function.GetString("arguments"));
                    w.WriteEndObject();
                }
            }
            w.WriteEndArray();
            w.WriteString("stop_reason", ToAnthropicStopReason(choice.GetString("finish_reason")));
            w.WriteNull("stop_sequence");
            WriteAnthropicUsage(w, root.TryGet("usage", out var usage) ? usage : default);
            w.WriteEndObject();
        }, body.Length + 256);
    }

    internal static void WriteAnthropicUsage(Utf8JsonWriter w, JsonElement usage)
    {
        long prompt = usage.GetLong("prompt_tokens");
        long cached = usage.TryGet("prompt_tokens_details", out var details) ? details.GetLong("cached_tokens") : 0;
        w.WriteStartObject("usage");
        w.WriteNumber("input_tokens", Math.Max(0, prompt - cached));
        w.WriteNumber("cache_creation_input_tokens", 0);
        w.WriteNumber("cache_read_input_tokens", cached);
        w.WriteNumber("output_tokens", usage.GetLong("completion_tokens"));
        w.WriteEndObject();
    }

    /// <summary>An Anthropic <c>message</c> as an OpenAI <c>chat.completion</c>.</summary>
    /// <param name="created">The <c>created</c> Unix time to report (Messages has none): the stage passes its clock's.</param>
    public static byte[] AnthropicToOpenAIResponse(ReadOnlySpan<byte> body, long created)
    {
        using var document = Parse(body, "response body");
        var root = document.RootElement;
        if (!root.TryGet("content", out var content) || content.ValueKind != JsonValueKind.Array)
        {
            throw new LlmTranslationException("response has no content array");
        }
        return Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("id", root.GetString("id") ?? "");
            w.WriteString("object", "chat.completion");
            w.WriteNumber("created", created);
            w.WriteString("model", root.GetString("model") ?? "");
            w.WriteStartArray("choices");
            w.WriteStartObject();
            w.WriteNumber("index", 0);
            w.WritePropertyName("message");
            WriteAssistantMessage(w, content, withRefusal: true);
            w.WriteNull("logprobs");
            w.WriteString("finish_reason", ToOpenAIFinishReason(root.GetString("stop_reason")));
            w.WriteEndObject();
            w.WriteEndArray();
            WriteOpenAIUsage(w, root.TryGet("usage", out var usage) ? usage : default, usage.GetLong("output_tokens"));
            w.WriteEndObject();
        }, body.Length + 256);
    }

    internal static void WriteOpenAIUsage(Utf8JsonWriter w, JsonElement usage, long outputTokens)
    {
        long input = usage.GetLong("input_tokens");
        long cacheRead = usage.GetLong("cache_read_input_tokens");
        long cacheWrite = usage.GetLong("cache_creation_input_tokens");
        long prompt = input + cacheRead + cacheWrite;
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", prompt);
        w.WriteNumber("completion_tokens", outputTokens);
        w.WriteNumber("total_tokens", prompt + outputTokens);
        w.WriteStartObject("prompt_tokens_details");
        w.WriteNumber("cached_tokens", cacheRead);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
