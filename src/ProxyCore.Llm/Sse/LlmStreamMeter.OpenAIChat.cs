using System.Text.Json;

namespace ProxyCore.Llm.Sse;

public sealed partial class LlmStreamMeter
{
    /// <summary>The Chat Completions terminator: <c>data: [DONE]</c>.</summary>
    private static ReadOnlySpan<byte> Done => "[DONE]"u8;

    /// <summary>
    /// One Chat Completions chunk:
    /// <code>
    /// {"id":…,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"…","tool_calls":[{"function":{"name":…,"arguments":"…"}}]},"finish_reason":null}],"usage":null}
    /// </code>
    /// With <c>stream_options.include_usage</c> every chunk has <c>"usage": null</c> and one more chunk
    /// before <c>[DONE]</c> has <c>"choices": []</c> (vLLM: <c>null</c>) and the usage. Some compatible
    /// servers report a failure mid-stream as <c>{"error": {…}}</c>.
    /// </summary>
    private void OnOpenAIChatEvent(in SseEvent sseEvent)
    {
        var data = sseEvent.Data;
        if (data.SequenceEqual(Done))
        {
            _terminal = true;
            return;
        }
        var reader = new Utf8JsonReader(data);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            _malformedEvents++;
            return;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("choices"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartArray)
                {
                    ReadChatChoices(ref reader);
                }
                else
                {
                    reader.Skip();
                }
            }
            else if (reader.ValueTextEquals("usage"u8))
            {
                reader.Read();
                ReadOpenAIUsage(ref reader);
            }
            else if (reader.ValueTextEquals("model"u8) && _model.Length == 0)
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

    private void ReadChatChoices(ref Utf8JsonReader reader)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
        {
            _choice = ChoiceIndex(reader);
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("delta"u8))
                {
                    reader.Read();
                    ReadChatDelta(ref reader);
                }
                else if (reader.ValueTextEquals("finish_reason"u8))
                {
                    ReadName(ref reader, ref _finishReason);
                }
                else
                {
                    reader.Skip();
                }
            }
        }
    }

    /// <summary>The text a delta adds: <c>content</c>, <c>refusal</c>, <c>reasoning_content</c> (vLLM, DeepSeek) and tool calls' name and arguments.</summary>
    private void ReadChatDelta(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("content"u8) || reader.ValueTextEquals("refusal"u8) || reader.ValueTextEquals("reasoning_content"u8))
            {
                reader.Read();
                AppendText(ref reader);
            }
            else if (reader.ValueTextEquals("tool_calls"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartArray)
                {
                    reader.Skip();
                    continue;
                }
                while (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
                {
                    _hasOutput = true;
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        if (reader.ValueTextEquals("function"u8))
                        {
                            reader.Read();
                            ReadFunctionCall(ref reader);
                        }
                        else
                        {
                            reader.Skip();
                        }
                    }
                }
            }
            else
            {
                reader.Skip();
            }
        }
    }

    private void ReadFunctionCall(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("name"u8) || reader.ValueTextEquals("arguments"u8))
            {
                reader.Read();
                AppendText(ref reader);
            }
            else
            {
                reader.Skip();
            }
        }
    }
}
