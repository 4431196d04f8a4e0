using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace ProxyCore.Llm.Translation;

/// <summary>Why a body could not be translated: the stage answers 400 with this reason (or, for a response, 502).</summary>
public sealed class LlmTranslationException(string message) : Exception(message);

/// <summary>
/// OpenAI Chat Completions ↔ Anthropic Messages for request and non-stream response bodies (streams:
/// <see cref="AnthropicToOpenAIStream"/> and <see cref="OpenAIToAnthropicStream"/>).
/// </summary>
/// <remarks>
/// <para>
/// Bodies are read once as a <see cref="JsonDocument"/> and written with one <see cref="Utf8JsonWriter"/>
/// (no reflection; values that mean the same in both APIs, such as JSON schemas and tool inputs, are
/// copied as they are). What the target API has no field for is dropped rather than refused, except
/// what would change the answer's meaning: <c>n</c> &gt; 1 (Anthropic answers once).
/// </para>
/// <para>Mapping (Chat → Messages; the reverse is symmetric):</para>
/// <list type="bullet">
/// <item><c>system</c>/<c>developer</c> messages → top-level <c>system</c> (joined by a blank line).</item>
/// <item>user text and <c>image_url</c> parts → <c>text</c> and <c>image</c> blocks (data URLs → base64 sources).</item>
/// <item>assistant <c>tool_calls</c> → <c>tool_use</c> blocks (arguments parsed to <c>input</c>); <c>tool</c>
/// messages → <c>tool_result</c> blocks in a user turn. Consecutive turns of one role are merged
/// (Messages requires alternation).</item>
/// <item><c>max_completion_tokens</c>/<c>max_tokens</c> → <c>max_tokens</c> (required there: default when absent);
/// <c>stop</c> → <c>stop_sequences</c>; <c>tools</c>/<c>tool_choice</c>/<c>parallel_tool_calls</c> →
/// <c>tools</c> (<c>input_schema</c>) and <c>tool_choice</c> (<c>required</c> = <c>any</c>); <c>user</c> → <c>metadata.user_id</c>.</item>
/// <item>finish reasons: <c>stop</c> ↔ <c>end_turn</c> (and <c>stop_sequence</c>), <c>length</c> ↔ <c>max_tokens</c>,
/// <c>tool_calls</c> ↔ <c>tool_use</c>, <c>content_filter</c> ↔ <c>refusal</c>.</item>
/// <item>usage: <c>prompt_tokens</c> = <c>input_tokens</c> + cache reads + cache writes;
/// <c>prompt_tokens_details.cached_tokens</c> ↔ <c>cache_read_input_tokens</c>; <c>completion_tokens</c> ↔ <c>output_tokens</c>.</item>
/// </list>
/// </remarks>
public static partial class LlmTranslation
{
    /// <summary>Messages requires <c>max_tokens</c>; Chat does not. Used when the Chat request names none.</summary>
    public const int DefaultMaxTokens = 4096;

    internal static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    internal static JsonDocument Parse(ReadOnlySpan<byte> body, string what)
    {
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 64 });
            var document = JsonDocument.ParseValue(ref reader);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                document.Dispose();
                throw new LlmTranslationException($"{what} is not a JSON object");
            }
            return document;
        }
        catch (JsonException ex)
        {
            throw new LlmTranslationException($"{what} is not valid JSON: {ex.Message}");
        }
    }

    internal static string? GetString(this JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    internal static bool TryGet(this JsonElement element, string name, out JsonElement value)
    {
        if (element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null)
        {
            return true;
        }
        value = default;
        return false;
    }

    internal static long GetLong(this JsonElement element, string name) =>
        element.TryGet(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out long n) ? n : 0;

    /// <summary>Copies a member as it is, when present.</summary>
    internal static void Copy(JsonElement source, string from, Utf8JsonWriter writer, string to)
    {
        if (source.TryGet(from, out var value))
        {
            writer.WritePropertyName(to);
            value.WriteTo(writer);
        }
    }

    internal static byte[] Write(Action<Utf8JsonWriter> write, int sizeHint)
    {
        var buffer = new ArrayBufferWriter<byte>(Math.Max(256, sizeHint));
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            write(writer);
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Chat finish reason → Messages stop reason.</summary>
    public static string ToAnthropicStopReason(string? finishReason) => finishReason switch
    {
        "length" => "max_tokens",
        "tool_calls" or "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    };

    /// <summary>Messages stop reason → Chat finish reason.</summary>
    public static string ToOpenAIFinishReason(string? stopReason) => stopReason switch
    {
        "max_tokens" or "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop", // end_turn, stop_sequence, pause_turn
    };

    /// <summary>A tool call's arguments (a JSON text) as a Messages <c>input</c> object; text that is not a JSON object is kept under <c>"arguments"</c> rather than lost.</summary>
    internal static void WriteToolInput(Utf8JsonWriter writer, string? arguments)
    {
        if (string.IsNullOrWhiteSpace(arguments))
        {
            writer.WriteStartObject();
            writer.WriteEndObject();
            return;
        }
        try
        {
            using var parsed = JsonDocument.Parse(arguments);
            if (parsed.RootElement.ValueKind == JsonValueKind.Object)
            {
                parsed.RootElement.WriteTo(writer);
                return;
            }
        }
        catch (JsonException)
        {
            // fall through: not JSON (a model can emit broken arguments)
        }
        writer.WriteStartObject();
        writer.WriteString("arguments", arguments);
        writer.WriteEndObject();
    }
}
