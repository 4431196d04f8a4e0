using System.Text.Json;

namespace ProxyCore.Llm.Sse;

public sealed partial class LlmStreamMeter
{
    /// <summary>
    /// One Responses event, named by its <c>event:</c> field (and again by <c>"type"</c> in its data):
    /// <code>
    /// response.created / response.in_progress      {"response":{"model":…}}
    /// response.output_text.delta (refusal, function_call_arguments, reasoning_summary_text) {"delta":"…"}
    /// response.completed / .incomplete / .failed   {"response":{"status":…,"incomplete_details":{"reason":…},"error":{…},"usage":{"input_tokens":…,"input_tokens_details":{"cached_tokens":…},"output_tokens":…}}}
    /// error                                        {"code":"insufficient_quota","message":…} (newer: {"error":{"type":…,"code":…}})
    /// </code>
    /// Every other event (part and item bookkeeping, the <c>.done</c> events that repeat the text) is
    /// not parsed at all.
    /// </summary>
    private void OnOpenAIResponsesEvent(in SseEvent sseEvent)
    {
        var kind = EventKind(sseEvent);
        if (kind.SequenceEqual("response.output_text.delta"u8)
            || kind.SequenceEqual("response.refusal.delta"u8)
            || kind.SequenceEqual("response.function_call_arguments.delta"u8)
            || kind.SequenceEqual("response.reasoning_summary_text.delta"u8))
        {
            ReadTopLevel(sseEvent.Data, "delta"u8, ResponsesField.Delta);
        }
        else if (kind.SequenceEqual("response.completed"u8) || kind.SequenceEqual("response.incomplete"u8))
        {
            _terminal = true;
            ReadTopLevel(sseEvent.Data, "response"u8, ResponsesField.Response);
        }
        else if (kind.SequenceEqual("response.failed"u8))
        {
            _terminal = true;
            SetError();
            ReadTopLevel(sseEvent.Data, "response"u8, ResponsesField.Response);
        }
        else if (kind.SequenceEqual("response.created"u8) || kind.SequenceEqual("response.in_progress"u8))
        {
            ReadTopLevel(sseEvent.Data, "response"u8, ResponsesField.Response);
        }
        else if (kind.SequenceEqual("error"u8))
        {
            SetError();
            ReadResponsesError(sseEvent.Data);
        }
    }

    private enum ResponsesField : byte
    {
        Delta,
        Response,
    }

    /// <summary>Finds the top-level property <paramref name="name"/> and reads it as <paramref name="field"/>.</summary>
    private void ReadTopLevel(ReadOnlySpan<byte> data, ReadOnlySpan<byte> name, ResponsesField field)
    {
        var reader = new Utf8JsonReader(data);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            _malformedEvents++;
            return;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (!reader.ValueTextEquals(name))
            {
                reader.Skip();
                continue;
            }
            reader.Read();
            if (field == ResponsesField.Delta)
            {
                AppendText(ref reader);
            }
            else
            {
                ReadResponseObject(ref reader);
            }
            return;
        }
    }

    private void ReadResponseObject(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("model"u8) && _model.Length == 0)
            {
                ReadName(ref reader, ref _model);
            }
            else if (reader.ValueTextEquals("usage"u8))
            {
                reader.Read();
                ReadOpenAIUsage(ref reader);
            }
            else if (reader.ValueTextEquals("status"u8) && _terminal)
            {
                // completed / incomplete / failed; the reason of an incomplete answer replaces it below.
                if (_finishReason.Length == 0)
                {
                    ReadName(ref reader, ref _finishReason);
                }
                else
                {
                    reader.Skip();
                }
            }
            else if (reader.ValueTextEquals("incomplete_details"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    reader.Skip();
                    continue;
                }
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    if (reader.ValueTextEquals("reason"u8))
                    {
                        ReadName(ref reader, ref _finishReason);
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
            }
            else if (reader.ValueTextEquals("error"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartObject)
                {
                    ReadErrorObject(ref reader);
                }
                else
                {
                    reader.Skip();
                }
            }
            else
            {
                reader.Skip();
            }
        }
    }

    /// <summary>The <c>error</c> event: its <c>code</c> names the error (its <c>type</c> is just "error"), or a nested <c>error</c> object does.</summary>
    private void ReadResponsesError(ReadOnlySpan<byte> data)
    {
        var reader = new Utf8JsonReader(data);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            _malformedEvents++;
            return;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("code"u8) && _errorType.Length == 0)
            {
                ReadName(ref reader, ref _errorType);
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
}
