using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace ProxyCore.Llm.Safety;

/// <summary>What to do with personal data in a prompt.</summary>
public enum PiiMode : byte
{
    /// <summary>Replace each finding with its mask and forward the rewritten body.</summary>
    Mask,

    /// <summary>Change nothing; report the kinds found so the stage can refuse the request.</summary>
    Block,
}

/// <summary>
/// Applies a <see cref="PiiRedactor"/> to the prompt text of an LLM request body: string values of the
/// members that carry what the user or the system says — <c>content</c>, <c>text</c>, <c>system</c>,
/// <c>prompt</c>, <c>input</c>, <c>instructions</c> — at any depth, and strings directly inside an
/// array under one of them (<c>"input": ["…"]</c>). Keys, model names, ids, URLs of images and every
/// other value are copied as they are.
/// </summary>
/// <remarks>
/// One pass of a <see cref="Utf8JsonReader"/> into a <see cref="Utf8JsonWriter"/>. Untouched values are
/// copied as their raw JSON text (escapes kept); the output is compact (whitespace between tokens
/// dropped), which every JSON API accepts. Block mode writes nothing.
/// </remarks>
public static class PiiJsonRedactor
{
    private static bool IsPromptMember(ref Utf8JsonReader reader) =>
        reader.ValueTextEquals("content"u8) || reader.ValueTextEquals("text"u8) || reader.ValueTextEquals("system"u8)
        || reader.ValueTextEquals("prompt"u8) || reader.ValueTextEquals("input"u8) || reader.ValueTextEquals("instructions"u8);

    /// <summary>
    /// Redacts <paramref name="body"/>. In <see cref="PiiMode.Mask"/> the rewritten body goes to
    /// <paramref name="output"/> (when nothing was found it is still written, compacted). False when the
    /// body is not valid JSON (nothing is written; the stage answers 400).
    /// </summary>
    public static bool TryRedact(ReadOnlySpan<byte> body, PiiRedactor redactor, PiiMode mode, IBufferWriter<byte>? output, out PiiKind found)
    {
        found = PiiKind.None;
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 64 });
        // One bit per depth: set when the container at that depth is an array that is a prompt member's
        // value (objects clear it). Depth is bounded by MaxDepth (64).
        ulong arrayIsPrompt = 0;
        int depth = 0;
        bool nextIsPrompt = false;
        var scratch = mode == PiiMode.Mask ? new ArrayBufferWriter<byte>(body.Length + 64) : null;
        using var writer = scratch is null ? null : new Utf8JsonWriter(scratch, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        try
        {
            while (reader.Read())
            {
                bool valueIsPrompt = nextIsPrompt || (reader.TokenType != JsonTokenType.PropertyName && depth > 0 && ((arrayIsPrompt >> (depth - 1)) & 1) != 0);
                nextIsPrompt = false;
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                        writer?.WriteStartObject();
                        depth++;
                        arrayIsPrompt &= ~(1UL << (depth - 1));
                        break;
                    case JsonTokenType.EndObject:
                        writer?.WriteEndObject();
                        depth--;
                        break;
                    case JsonTokenType.StartArray:
                        writer?.WriteStartArray();
                        depth++;
                        arrayIsPrompt = valueIsPrompt ? arrayIsPrompt | (1UL << (depth - 1)) : arrayIsPrompt & ~(1UL << (depth - 1));
                        break;
                    case JsonTokenType.EndArray:
                        writer?.WriteEndArray();
                        depth--;
                        break;
                    case JsonTokenType.PropertyName:
                        nextIsPrompt = IsPromptMember(ref reader);
                        if (writer is not null)
                        {
                            WritePropertyName(ref reader, writer);
                        }
                        break;
                    case JsonTokenType.String when valueIsPrompt:
                        {
                            string text = reader.GetString()!;
                            PiiKind kinds;
                            string redacted = text;
                            if (mode == PiiMode.Mask)
                            {
                                redacted = redactor.Redact(text, out kinds);
                            }
                            else
                            {
                                kinds = redactor.Scan(text);
                            }
                            found |= kinds;
                            if (writer is not null)
                            {
                                if (ReferenceEquals(redacted, text))
                                {
                                    WriteRawString(ref reader, writer);
                                }
                                else
                                {
                                    writer.WriteStringValue(redacted);
                                }
                            }
                            break;
                        }
                    case JsonTokenType.String:
                        if (writer is not null)
                        {
                            WriteRawString(ref reader, writer);
                        }
                        break;
                    default:
                        writer?.WriteRawValue(reader.ValueSpan, skipInputValidation: true);
                        break;
                }
            }
            writer?.Flush();
        }
        catch (JsonException)
        {
            found = PiiKind.None;
            return false;
        }
        if (scratch is not null && output is not null)
        {
            output.Write(scratch.WrittenSpan);
        }
        return true;
    }

    private static void WritePropertyName(ref Utf8JsonReader reader, Utf8JsonWriter writer)
    {
        if (!reader.ValueIsEscaped)
        {
            writer.WritePropertyName(reader.ValueSpan);
            return;
        }
        writer.WritePropertyName(reader.GetString()!);
    }

    private static void WriteRawString(ref Utf8JsonReader reader, Utf8JsonWriter writer)
    {
        int length = reader.ValueSpan.Length + 2;
        byte[]? rented = null;
        Span<byte> raw = length <= 512 ? stackalloc byte[length] : (rented = ArrayPool<byte>.Shared.Rent(length));
        raw[0] = (byte)'"';
        reader.ValueSpan.CopyTo(raw[1..]);
        raw[length - 1] = (byte)'"';
        writer.WriteRawValue(raw[..length], skipInputValidation: true);
        if (rented is not null)
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}
