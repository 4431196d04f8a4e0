using System.Text.Json;

namespace ProxyCore.Llm.Sse;

public sealed partial class LlmStreamMeter
{
    /// <summary>
    /// One <c>streamGenerateContent?alt=sse</c> frame (unnamed events):
    /// <code>
    /// {"candidates":[{"content":{"parts":[{"text":"…"}]},"finishReason":"STOP"}],
    ///  "usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":9,"cachedContentTokenCount":…,"thoughtsTokenCount":…},
    ///  "modelVersion":"gemini-2.5-flash"}
    /// </code>
    /// There is no <c>[DONE]</c>: the frame with a <c>finishReason</c> is the last. Frames before it may
    /// carry a <c>usageMetadata</c> without counts. A failure arrives as <c>{"error":{"code":…,"status":…}}</c>.
    /// Thinking is billed as output: <c>thoughtsTokenCount</c> is added to the completion.
    /// </summary>
    private void OnGeminiEvent(in SseEvent sseEvent)
    {
        var reader = new Utf8JsonReader(sseEvent.Data);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            _malformedEvents++;
            return;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("candidates"u8))
            {
                reader.Read();
                ReadGeminiCandidates(ref reader, sseEvent.Data);
            }
            else if (reader.ValueTextEquals("usageMetadata"u8))
            {
                reader.Read();
                ReadGeminiUsage(ref reader);
            }
            else if (reader.ValueTextEquals("modelVersion"u8) && _model.Length == 0)
            {
                ReadName(ref reader, ref _model);
            }
            else if (reader.ValueTextEquals("error"u8))
            {
                reader.Read();
                ReadErrorObject(ref reader);
            }
            else
            {
                reader.Skip();
            }
        }
    }

    private void ReadGeminiCandidates(ref Utf8JsonReader reader, ReadOnlySpan<byte> data)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            reader.Skip();
            return;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
        {
            _choice = ChoiceIndex(reader);
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("content"u8))
                {
                    reader.Read();
                    ReadGeminiContent(ref reader, data);
                }
                else if (reader.ValueTextEquals("finishReason"u8))
                {
                    ReadName(ref reader, ref _finishReason);
                    _terminal = true;
                }
                else
                {
                    reader.Skip();
                }
            }
        }
    }

    private void ReadGeminiContent(ref Utf8JsonReader reader, ReadOnlySpan<byte> data)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (!reader.ValueTextEquals("parts"u8))
            {
                reader.Skip();
                continue;
            }
            reader.Read();
            if (reader.TokenType != JsonTokenType.StartArray)
            {
                reader.Skip();
                continue;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
            {
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    if (reader.ValueTextEquals("text"u8))
                    {
                        reader.Read();
                        AppendText(ref reader);
                    }
                    else if (reader.ValueTextEquals("functionCall"u8))
                    {
                        // The call arrives whole, as an object: its JSON text is what the model wrote.
                        reader.Read();
                        int start = (int)reader.TokenStartIndex;
                        reader.Skip();
                        AppendText(data.Slice(start, (int)reader.BytesConsumed - start));
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
            }
        }
    }

    private void ReadGeminiUsage(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }
        long candidates = -1;
        long thoughts = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("promptTokenCount"u8))
            {
                SetIfKnown(ref _promptTokens, ReadCount(ref reader));
            }
            else if (reader.ValueTextEquals("candidatesTokenCount"u8))
            {
                candidates = ReadCount(ref reader);
            }
            else if (reader.ValueTextEquals("thoughtsTokenCount"u8))
            {
                thoughts = Math.Max(0, ReadCount(ref reader));
            }
            else if (reader.ValueTextEquals("cachedContentTokenCount"u8))
            {
                SetIfKnown(ref _cachedTokens, ReadCount(ref reader));
            }
            else
            {
                reader.Skip();
            }
        }
        if (candidates >= 0)
        {
            _completionTokens = candidates + thoughts;
            _completionReported = true;
        }
    }
}
