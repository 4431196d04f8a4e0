using System.Buffers;
using System.Text.Json;

namespace ProxyCore.Llm.Safety;

/// <summary>
/// The deny check of a whole (non-streamed or stored) answer: the answer's text values are matched
/// one by one, the way a stream's deltas would be. Which values: strings under <c>content</c>,
/// <c>text</c>, <c>refusal</c>, <c>arguments</c>, <c>reasoning_content</c>, <c>thinking</c> and
/// <c>input</c> (Anthropic tool_use input), at any depth below them — so Chat's
/// <c>choices[].message.content</c> and tool-call arguments, Responses' <c>output[].content[].text</c>
/// and Anthropic's <c>content[].text</c> are all read, ids and model names are not.
/// </summary>
internal static class DenyOutputScan
{
    /// <summary>The first match in <paramref name="json"/>; null when none (or when it is not JSON: the caller relays such an answer as it is).</summary>
    public static DenyMatch? Json(ReadOnlySpan<byte> json, DenyPatterns patterns)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 64 });
        int textDepth = -1;     // depth of the text property whose value is being read; -1: outside
        bool textNext = false;  // the last property name was a text one
        byte[]? scratch = null;
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName:
                        if (textDepth < 0)
                        {
                            textNext = IsTextProperty(ref reader);
                        }
                        continue;
                    case JsonTokenType.StartObject or JsonTokenType.StartArray:
                        if (textNext && textDepth < 0)
                        {
                            textDepth = reader.CurrentDepth;
                        }
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        if (reader.CurrentDepth == textDepth)
                        {
                            textDepth = -1;
                        }
                        break;
                    case JsonTokenType.String when textNext || textDepth >= 0:
                        var value = reader.ValueSpan;
                        if (reader.ValueIsEscaped)
                        {
                            if (scratch is null || scratch.Length < value.Length)
                            {
                                if (scratch is not null)
                                {
                                    ArrayPool<byte>.Shared.Return(scratch);
                                }
                                scratch = ArrayPool<byte>.Shared.Rent(value.Length);
                            }
                            value = scratch.AsSpan(0, reader.CopyString(scratch));
                        }
                        if (patterns.MatchUtf8(value) is { } match)
                        {
                            return match;
                        }
                        break;
                }
                textNext = false;
            }
        }
        catch (JsonException)
        {
            // Not JSON: nothing here is answer text we can read.
        }
        finally
        {
            if (scratch is not null)
            {
                ArrayPool<byte>.Shared.Return(scratch);
            }
        }
        return null;
    }

    private static bool IsTextProperty(ref Utf8JsonReader reader)
        => reader.ValueTextEquals("content"u8) || reader.ValueTextEquals("text"u8) || reader.ValueTextEquals("refusal"u8)
            || reader.ValueTextEquals("arguments"u8) || reader.ValueTextEquals("reasoning_content"u8) || reader.ValueTextEquals("thinking"u8)
            || reader.ValueTextEquals("input"u8);
}
