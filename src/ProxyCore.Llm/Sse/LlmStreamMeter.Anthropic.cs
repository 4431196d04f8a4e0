using System.Text.Json;

namespace ProxyCore.Llm.Sse;

public sealed partial class LlmStreamMeter
{
    /// <summary>
    /// One Messages event, named by its <c>event:</c> field:
    /// <code>
    /// message_start        {"message":{"model":…,"usage":{"input_tokens":25,"cache_read_input_tokens":0,"output_tokens":1}}}
    /// content_block_delta  {"delta":{"type":"text_delta","text":"…"}} (input_json_delta: partial_json; thinking_delta: thinking)
    /// message_delta        {"delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":12}}
    /// message_stop         {}
    /// error                {"error":{"type":"overloaded_error","message":…}}
    /// ping, content_block_start, content_block_stop: nothing to meter
    /// </code>
    /// The <c>output_tokens</c> of <c>message_start</c> is a placeholder, and <c>message_delta</c>'s
    /// counts are cumulative: the last figure replaces, nothing is added.
    /// </summary>
    private void OnAnthropicEvent(in SseEvent sseEvent)
    {
        var kind = EventKind(sseEvent);
        if (kind.SequenceEqual("content_block_delta"u8))
        {
            ReadAnthropicEvent(sseEvent.Data, AnthropicEvent.ContentBlockDelta);
        }
        else if (kind.SequenceEqual("message_start"u8))
        {
            ReadAnthropicEvent(sseEvent.Data, AnthropicEvent.MessageStart);
        }
        else if (kind.SequenceEqual("message_delta"u8))
        {
            ReadAnthropicEvent(sseEvent.Data, AnthropicEvent.MessageDelta);
        }
        else if (kind.SequenceEqual("message_stop"u8))
        {
            _terminal = true;
        }
        else if (kind.SequenceEqual("error"u8))
        {
            SetError();
            ReadAnthropicEvent(sseEvent.Data, AnthropicEvent.Error);
        }
    }

    private enum AnthropicEvent : byte
    {
        MessageStart,
        ContentBlockDelta,
        MessageDelta,
        Error,
    }

    private void ReadAnthropicEvent(ReadOnlySpan<byte> data, AnthropicEvent kind)
    {
        var reader = new Utf8JsonReader(data);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            _malformedEvents++;
            return;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (kind == AnthropicEvent.ContentBlockDelta && reader.ValueTextEquals("delta"u8))
            {
                reader.Read();
                ReadAnthropicContentDelta(ref reader);
            }
            else if (kind == AnthropicEvent.MessageStart && reader.ValueTextEquals("message"u8))
            {
                reader.Read();
                ReadAnthropicMessage(ref reader);
            }
            else if (kind == AnthropicEvent.MessageDelta && reader.ValueTextEquals("delta"u8))
            {
                reader.Read();
                ReadAnthropicMessageDelta(ref reader);
            }
            else if (kind == AnthropicEvent.MessageDelta && reader.ValueTextEquals("usage"u8))
            {
                reader.Read();
                ReadAnthropicUsage(ref reader, final: true);
            }
            else if (kind == AnthropicEvent.Error && reader.ValueTextEquals("error"u8))
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

    private void ReadAnthropicContentDelta(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("text"u8) || reader.ValueTextEquals("partial_json"u8) || reader.ValueTextEquals("thinking"u8))
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

    private void ReadAnthropicMessage(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("model"u8))
            {
                ReadName(ref reader, ref _model);
            }
            else if (reader.ValueTextEquals("usage"u8))
            {
                reader.Read();
                ReadAnthropicUsage(ref reader, final: false);
            }
            else
            {
                reader.Skip();
            }
        }
    }

    private void ReadAnthropicMessageDelta(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("stop_reason"u8))
            {
                ReadName(ref reader, ref _finishReason);
            }
            else
            {
                reader.Skip();
            }
        }
    }

    /// <summary>
    /// <c>input_tokens</c> and <c>cache_read_input_tokens</c> replace what came before (message_delta
    /// may repeat them, cumulative). <c>output_tokens</c> counts only when <paramref name="final"/>:
    /// in message_start it is a placeholder (1), and adding it would overcount.
    /// </summary>
    private void ReadAnthropicUsage(ref Utf8JsonReader reader, bool final)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("input_tokens"u8))
            {
                SetIfKnown(ref _promptTokens, ReadCount(ref reader));
            }
            else if (reader.ValueTextEquals("cache_read_input_tokens"u8))
            {
                SetIfKnown(ref _cachedTokens, ReadCount(ref reader));
            }
            else if (final && reader.ValueTextEquals("output_tokens"u8))
            {
                long output = ReadCount(ref reader);
                if (output >= 0)
                {
                    _completionTokens = output;
                    _completionReported = true;
                }
            }
            else
            {
                reader.Skip();
            }
        }
    }
}
