using System.Buffers;
using System.Text.Json;

namespace ProxyCore.Llm.Cache;

/// <summary>
/// Turns a stored (non-stream) answer into the event stream the provider would have sent, so a
/// streaming client is served from the cache as a stream: the same events, in the order the provider
/// documents, that an SSE client library (and our <see cref="Sse.LlmStreamMeter"/>) reads as a
/// complete answer.
/// </summary>
/// <remarks>
/// Runs on a cache hit, not per byte relayed: the stored JSON is read once as a
/// <see cref="JsonDocument"/> (pooled memory) and the events are written with one
/// <see cref="Utf8JsonWriter"/> into the caller's buffer writer. Text is sent in pieces of at most
/// <c>chunkChars</c> characters (cut at a char boundary, never inside a surrogate pair), so clients that
/// render deltas see a stream rather than one lump.
/// </remarks>
public static class LlmStreamReplay
{
    /// <summary>The default text piece per delta event.</summary>
    public const int DefaultChunkChars = 64;

    private static ReadOnlySpan<byte> DataPrefix => "data: "u8;
    private static ReadOnlySpan<byte> EventEnd => "\n\n"u8;
    private static ReadOnlySpan<byte> Done => "data: [DONE]\n\n"u8;

    /// <summary>
    /// Writes a <c>chat.completion</c> as the <c>chat.completion.chunk</c> stream of OpenAI Chat
    /// Completions: per choice a role chunk, content (and refusal) pieces, tool-call chunks (id, name,
    /// then the arguments), a finish chunk; then, when <paramref name="includeUsage"/> (the client sent
    /// <c>stream_options.include_usage</c>), the usage chunk with empty <c>choices</c>; then <c>[DONE]</c>.
    /// </summary>
    /// <returns>False when <paramref name="completion"/> is not a chat completion object (nothing written).</returns>
    public static bool OpenAIChat(ReadOnlySpan<byte> completion, IBufferWriter<byte> output, bool includeUsage, int chunkChars = DefaultChunkChars)
    {
        using var document = TryParse(completion);
        if (document is null || document.RootElement.ValueKind != JsonValueKind.Object
            || !document.RootElement.TryGetProperty("choices", out var choices) || choices.ValueKind != JsonValueKind.Array)
        {
            return false;
        }
        var root = document.RootElement;
        using var writer = new Utf8JsonWriter(output);
        foreach (var choice in choices.EnumerateArray())
        {
            int index = choice.TryGetProperty("index", out var i) && i.TryGetInt32(out int n) ? n : 0;
            choice.TryGetProperty("message", out var message);
            WriteChunk(output, writer, root, index, w =>
            {
                w.WriteString("role", "assistant");
                w.WriteString("content", "");
            }, finishReason: default);
            foreach (var field in (ReadOnlySpan<string>)["content", "refusal"])
            {
                if (message.ValueKind == JsonValueKind.Object && message.TryGetProperty(field, out var text) && text.ValueKind == JsonValueKind.String)
                {
                    foreach (var piece in Pieces(text.GetString()!, chunkChars))
                    {
                        WriteChunk(output, writer, root, index, w => w.WriteString(field, piece), default);
                    }
                }
            }
            if (message.ValueKind == JsonValueKind.Object && message.TryGetProperty("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array)
            {
                int callIndex = 0;
                foreach (var call in calls.EnumerateArray())
                {
                    int ci = callIndex++;
                    call.TryGetProperty("function", out var function);
                    string arguments = function.ValueKind == JsonValueKind.Object && function.TryGetProperty("arguments", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString()! : "";
                    WriteChunk(output, writer, root, index, w =>
                    {
                        w.WriteStartArray("tool_calls");
                        w.WriteStartObject();
                        w.WriteNumber("index", ci);
                        if (call.TryGetProperty("id", out var id))
                        {
                            w.WritePropertyName("id");
                            id.WriteTo(w);
                        }
                        w.WriteString("type", "function");
                        w.WriteStartObject("function");
                        if (function.ValueKind == JsonValueKind.Object && function.TryGetProperty("name", out var name))
                        {
                            w.WritePropertyName("name");
                            name.WriteTo(w);
                        }
                        w.WriteString("arguments", "");
                        w.WriteEndObject();
                        w.WriteEndObject();
                        w.WriteEndArray();
                    }, default);
                    foreach (var piece in Pieces(arguments, chunkChars))
                    {
                        WriteChunk(output, writer, root, index, w =>
                        {
                            w.WriteStartArray("tool_calls");
                            w.WriteStartObject();
                            w.WriteNumber("index", ci);
                            w.WriteStartObject("function");
                            w.WriteString("arguments", piece);
                            w.WriteEndObject();
                            w.WriteEndObject();
                            w.WriteEndArray();
                        }, default);
                    }
                }
            }
            var finish = choice.TryGetProperty("finish_reason", out var f) ? f : default;
            WriteChunk(output, writer, root, index, static _ => { }, finish.ValueKind == JsonValueKind.Undefined ? default : finish, isFinish: true);
        }
        if (includeUsage && root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
        {
            output.Write(DataPrefix);
            writer.Reset(output);
            writer.WriteStartObject();
            WriteChunkHeader(writer, root);
            writer.WriteStartArray("choices");
            writer.WriteEndArray();
            writer.WritePropertyName("usage");
            usage.WriteTo(writer);
            writer.WriteEndObject();
            writer.Flush();
            output.Write(EventEnd);
        }
        output.Write(Done);
        return true;
    }

    private static void WriteChunk(IBufferWriter<byte> output, Utf8JsonWriter writer, JsonElement root, int index, Action<Utf8JsonWriter> delta, JsonElement finishReason, bool isFinish = false)
    {
        output.Write(DataPrefix);
        writer.Reset(output);
        writer.WriteStartObject();
        WriteChunkHeader(writer, root);
        writer.WriteStartArray("choices");
        writer.WriteStartObject();
        writer.WriteNumber("index", index);
        writer.WriteStartObject("delta");
        delta(writer);
        writer.WriteEndObject();
        writer.WriteNull("logprobs");
        writer.WritePropertyName("finish_reason");
        if (isFinish && finishReason.ValueKind != JsonValueKind.Undefined)
        {
            finishReason.WriteTo(writer);
        }
        else
        {
            writer.WriteNullValue();
        }
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteEndObject();
        writer.Flush();
        output.Write(EventEnd);
    }

    private static void WriteChunkHeader(Utf8JsonWriter writer, JsonElement root)
    {
        foreach (var name in (ReadOnlySpan<string>)["id", "created", "model", "system_fingerprint", "service_tier"])
        {
            if (root.TryGetProperty(name, out var value))
            {
                writer.WritePropertyName(name);
                value.WriteTo(writer);
            }
        }
        writer.WriteString("object", "chat.completion.chunk");
    }

    /// <summary>
    /// Writes an Anthropic <c>message</c> as the Messages stream: <c>message_start</c> (the message with
    /// empty content and the input usage), per content block <c>content_block_start</c>, deltas
    /// (<c>text_delta</c>, <c>input_json_delta</c> for tool use, <c>thinking_delta</c> and
    /// <c>signature_delta</c>) and <c>content_block_stop</c>, then <c>message_delta</c> (stop reason,
    /// output tokens) and <c>message_stop</c>.
    /// </summary>
    public static bool Anthropic(ReadOnlySpan<byte> message, IBufferWriter<byte> output, int chunkChars = DefaultChunkChars)
    {
        using var document = TryParse(message);
        if (document is null || document.RootElement.ValueKind != JsonValueKind.Object
            || !document.RootElement.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.Array)
        {
            return false;
        }
        var root = document.RootElement;
        using var writer = new Utf8JsonWriter(output);
        root.TryGetProperty("usage", out var usage);

        WriteEvent(output, writer, "message_start", w =>
        {
            w.WriteStartObject("message");
            foreach (var property in root.EnumerateObject())
            {
                switch (property.Name)
                {
                    case "content":
                        w.WriteStartArray("content");
                        w.WriteEndArray();
                        break;
                    case "stop_reason":
                    case "stop_sequence":
                        w.WriteNull(property.Name);
                        break;
                    case "usage":
                        w.WriteStartObject("usage");
                        foreach (var u in property.Value.EnumerateObject())
                        {
                            if (u.Name == "output_tokens")
                            {
                                w.WriteNumber("output_tokens", 1); // the interim count the provider sends here
                            }
                            else
                            {
                                u.WriteTo(w);
                            }
                        }
                        w.WriteEndObject();
                        break;
                    default:
                        property.WriteTo(w);
                        break;
                }
            }
            w.WriteEndObject();
        });

        int index = 0;
        foreach (var block in content.EnumerateArray())
        {
            int bi = index++;
            string type = block.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "";
            WriteEvent(output, writer, "content_block_start", w =>
            {
                w.WriteNumber("index", bi);
                w.WriteStartObject("content_block");
                foreach (var property in block.EnumerateObject())
                {
                    switch (type, property.Name)
                    {
                        case ("text", "text"):
                            w.WriteString("text", "");
                            break;
                        case ("thinking", "thinking"):
                            w.WriteString("thinking", "");
                            break;
                        case ("thinking", "signature"):
                            break;
                        case ("tool_use", "input"):
                        case ("server_tool_use", "input"):
                            w.WriteStartObject("input");
                            w.WriteEndObject();
                            break;
                        default:
                            property.WriteTo(w);
                            break;
                    }
                }
                w.WriteEndObject();
            });
            switch (type)
            {
                case "text" when block.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String:
                    foreach (var piece in Pieces(text.GetString()!, chunkChars))
                    {
                        WriteDelta(output, writer, bi, "text_delta", "text", piece);
                    }
                    break;
                case "thinking":
                    if (block.TryGetProperty("thinking", out var thinking) && thinking.ValueKind == JsonValueKind.String)
                    {
                        foreach (var piece in Pieces(thinking.GetString()!, chunkChars))
                        {
                            WriteDelta(output, writer, bi, "thinking_delta", "thinking", piece);
                        }
                    }
                    if (block.TryGetProperty("signature", out var signature) && signature.ValueKind == JsonValueKind.String)
                    {
                        WriteDelta(output, writer, bi, "signature_delta", "signature", signature.GetString()!);
                    }
                    break;
                case "tool_use" or "server_tool_use" when block.TryGetProperty("input", out var input):
                    foreach (var piece in Pieces(input.GetRawText(), chunkChars))
                    {
                        WriteDelta(output, writer, bi, "input_json_delta", "partial_json", piece);
                    }
                    break;
            }
            WriteEvent(output, writer, "content_block_stop", w => w.WriteNumber("index", bi));
        }

        WriteEvent(output, writer, "message_delta", w =>
        {
            w.WriteStartObject("delta");
            foreach (var name in (ReadOnlySpan<string>)["stop_reason", "stop_sequence"])
            {
                w.WritePropertyName(name);
                if (root.TryGetProperty(name, out var value))
                {
                    value.WriteTo(w);
                }
                else
                {
                    w.WriteNullValue();
                }
            }
            w.WriteEndObject();
            w.WriteStartObject("usage");
            if (usage.ValueKind == JsonValueKind.Object && usage.TryGetProperty("output_tokens", out var outputTokens))
            {
                w.WritePropertyName("output_tokens");
                outputTokens.WriteTo(w);
            }
            w.WriteEndObject();
        });
        WriteEvent(output, writer, "message_stop", static _ => { });
        return true;
    }

    private static void WriteDelta(IBufferWriter<byte> output, Utf8JsonWriter writer, int index, string deltaType, string field, string value) =>
        WriteEvent(output, writer, "content_block_delta", w =>
        {
            w.WriteNumber("index", index);
            w.WriteStartObject("delta");
            w.WriteString("type", deltaType);
            w.WriteString(field, value);
            w.WriteEndObject();
        });

    private static void WriteEvent(IBufferWriter<byte> output, Utf8JsonWriter writer, string type, Action<Utf8JsonWriter> body)
    {
        output.Write("event: "u8);
        WriteAscii(output, type);
        output.Write("\n"u8);
        output.Write(DataPrefix);
        writer.Reset(output);
        writer.WriteStartObject();
        writer.WriteString("type", type);
        body(writer);
        writer.WriteEndObject();
        writer.Flush();
        output.Write(EventEnd);
    }

    private static void WriteAscii(IBufferWriter<byte> output, string value)
    {
        var span = output.GetSpan(value.Length);
        for (int i = 0; i < value.Length; i++)
        {
            span[i] = (byte)value[i];
        }
        output.Advance(value.Length);
    }

    /// <summary>Cuts text into pieces of at most <paramref name="size"/> chars, never between a surrogate pair.</summary>
    internal static IEnumerable<string> Pieces(string text, int size)
    {
        size = Math.Max(2, size);
        for (int start = 0; start < text.Length;)
        {
            int length = Math.Min(size, text.Length - start);
            if (start + length < text.Length && char.IsHighSurrogate(text[start + length - 1]))
            {
                length--;
            }
            yield return text.Substring(start, length);
            start += length;
        }
    }

    private static JsonDocument? TryParse(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            return JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
