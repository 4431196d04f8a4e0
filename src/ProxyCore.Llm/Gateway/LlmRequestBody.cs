using System.Buffers;
using System.Text.Json;

namespace ProxyCore.Llm.Gateway;

/// <summary>
/// What the stage reads from a request body (one pass of Utf8JsonReader over the top-level object,
/// everything else skipped) and where those values sit, so the body can be rewritten by splicing
/// (model renamed, <c>stream_options.include_usage</c> added) without re-serialising the rest.
/// </summary>
internal struct LlmRequestBody
{
    public string? Model;
    public bool Stream;
    public bool IncludeUsage;
    /// <summary>max_tokens / max_completion_tokens / max_output_tokens; -1 when absent.</summary>
    public long MaxTokens;
    /// <summary>The body has a top-level <c>template</c> field (a prompt template to fill, see <see cref="PromptTemplates"/>).</summary>
    public bool HasTemplate;

    private int _objectStart;
    private int _modelStart;
    private int _modelLength;
    private int _streamOptionsStart;   // -1 when absent
    private int _streamOptionsLength;
    private bool _streamOptionsEmpty;
    private int _includeUsageStart;    // the value of include_usage inside stream_options; -1 when absent
    private int _includeUsageLength;

    /// <summary>Reads <paramref name="body"/>; false with <paramref name="error"/> when it is not a JSON object with sane field types.</summary>
    public static bool TryRead(ReadOnlySpan<byte> body, out LlmRequestBody info, out string? error)
    {
        info = new LlmRequestBody { MaxTokens = -1, _streamOptionsStart = -1, _includeUsageStart = -1, _modelStart = -1 };
        error = null;
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                error = "The request body must be a JSON object.";
                return false;
            }
            info._objectStart = (int)reader.TokenStartIndex;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("model"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String)
                    {
                        error = "'model' must be a string.";
                        return false;
                    }
                    info.Model = reader.GetString();
                    info._modelStart = (int)reader.TokenStartIndex;
                    info._modelLength = (int)(reader.BytesConsumed - reader.TokenStartIndex);
                }
                else if (reader.ValueTextEquals("stream"u8))
                {
                    reader.Read();
                    info.Stream = reader.TokenType == JsonTokenType.True;
                }
                else if (reader.ValueTextEquals("max_tokens"u8) || reader.ValueTextEquals("max_completion_tokens"u8) || reader.ValueTextEquals("max_output_tokens"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out long max) && max >= 0)
                    {
                        info.MaxTokens = max;
                    }
                    else if (reader.TokenType != JsonTokenType.Null)
                    {
                        error = "max_tokens must be a non-negative integer.";
                        return false;
                    }
                }
                else if (reader.ValueTextEquals("template"u8))
                {
                    info.HasTemplate = true;
                    reader.Read();
                    reader.Skip();
                }
                else if (reader.ValueTextEquals("stream_options"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.StartObject)
                    {
                        ReadStreamOptions(ref reader, ref info);
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
            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
            {
                error = "The request body must be one JSON object.";
                return false;
            }
            return true;
        }
        catch (JsonException e)
        {
            error = "The request body is not valid JSON: " + e.Message;
            return false;
        }
    }

    private static void ReadStreamOptions(ref Utf8JsonReader reader, ref LlmRequestBody info)
    {
        info._streamOptionsStart = (int)reader.TokenStartIndex;
        info._streamOptionsEmpty = true;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            info._streamOptionsEmpty = false;
            if (reader.ValueTextEquals("include_usage"u8))
            {
                reader.Read();
                info.IncludeUsage = reader.TokenType == JsonTokenType.True;
                info._includeUsageStart = (int)reader.TokenStartIndex;
                info._includeUsageLength = (int)(reader.BytesConsumed - reader.TokenStartIndex);
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        info._streamOptionsLength = (int)(reader.BytesConsumed - info._streamOptionsStart);
    }

    /// <summary>
    /// The body to send: <paramref name="body"/> with the model renamed to <paramref name="model"/>
    /// (null: unchanged) and, when <paramref name="injectUsage"/>, include_usage set. Returns the
    /// same array when nothing changes.
    /// </summary>
    public readonly byte[] Rewrite(byte[] body, int length, string? model, bool injectUsage, out int newLength)
    {
        // Splices in body order: (start, length removed, bytes inserted).
        Span<(int Start, int Remove, byte[] Insert)> splices = new (int, int, byte[])[2];
        int count = 0;
        if (injectUsage)
        {
            if (_streamOptionsStart < 0)
            {
                splices[count++] = (_objectStart + 1, 0, "\"stream_options\":{\"include_usage\":true},"u8.ToArray());
            }
            else if (_includeUsageStart >= 0)
            {
                splices[count++] = (_includeUsageStart, _includeUsageLength, "true"u8.ToArray());
            }
            else if (_streamOptionsEmpty)
            {
                splices[count++] = (_streamOptionsStart, _streamOptionsLength, "{\"include_usage\":true}"u8.ToArray());
            }
            else
            {
                splices[count++] = (_streamOptionsStart + 1, 0, "\"include_usage\":true,"u8.ToArray());
            }
        }
        if (model is not null && _modelStart >= 0)
        {
            var encoded = JsonEncodedText.Encode(model);
            byte[] quoted = [(byte)'"', .. encoded.EncodedUtf8Bytes, (byte)'"'];
            splices[count++] = (_modelStart, _modelLength, quoted);
        }
        if (count == 0)
        {
            newLength = length;
            return body;
        }
        if (count == 2 && splices[1].Start < splices[0].Start)
        {
            (splices[0], splices[1]) = (splices[1], splices[0]);
        }
        var output = new ArrayBufferWriter<byte>(length + 64);
        int at = 0;
        for (int i = 0; i < count; i++)
        {
            var (start, remove, insert) = splices[i];
            output.Write(body.AsSpan(at, start - at));
            output.Write(insert);
            at = start + remove;
        }
        output.Write(body.AsSpan(at, length - at));
        newLength = output.WrittenCount;
        return output.WrittenSpan.ToArray();
    }

    public override readonly string ToString() => $"model={Model} stream={Stream} include_usage={IncludeUsage} max_tokens={MaxTokens}";
}

/// <summary>Usage figures of a complete (non-streamed) JSON answer, any of the three APIs' shapes.</summary>
internal static class LlmResponseUsage
{
    public static bool TryRead(ReadOnlySpan<byte> json, out long prompt, out long completion, out long cached, out string? model)
    {
        prompt = completion = cached = -1;
        model = null;
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }
            bool found = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("model"u8))
                {
                    reader.Read();
                    model = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }
                else if (reader.ValueTextEquals("usage"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.StartObject)
                    {
                        found = true;
                        ReadUsage(ref reader, ref prompt, ref completion, ref cached);
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            return found;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static void ReadUsage(ref Utf8JsonReader reader, ref long prompt, ref long completion, ref long cached)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("prompt_tokens"u8) || reader.ValueTextEquals("input_tokens"u8))
            {
                prompt = Number(ref reader);
            }
            else if (reader.ValueTextEquals("completion_tokens"u8) || reader.ValueTextEquals("output_tokens"u8))
            {
                completion = Number(ref reader);
            }
            else if (reader.ValueTextEquals("cache_read_input_tokens"u8))
            {
                cached = Number(ref reader);
            }
            else if (reader.ValueTextEquals("prompt_tokens_details"u8) || reader.ValueTextEquals("input_tokens_details"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    reader.Skip();
                    continue;
                }
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    if (reader.ValueTextEquals("cached_tokens"u8))
                    {
                        cached = Number(ref reader);
                    }
                    else
                    {
                        reader.Read();
                        reader.Skip();
                    }
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
    }

    private static long Number(ref Utf8JsonReader reader)
    {
        reader.Read();
        return reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out long n) ? n : -1;
    }

    /// <summary>True when an SSE event is OpenAI's usage-only chunk (<c>"choices":[]</c> with a usage object).</summary>
    public static bool IsUsageOnlyChunk(ReadOnlySpan<byte> sseEvent)
    {
        int data = sseEvent.IndexOf("data:"u8);
        if (data < 0)
        {
            return false;
        }
        var payload = sseEvent[(data + 5)..];
        int end = payload.IndexOf((byte)'\n');
        if (end >= 0)
        {
            payload = payload[..end];
        }
        payload = payload.Trim(" \r"u8);
        if (payload.IsEmpty || payload[0] != (byte)'{')
        {
            return false;
        }
        try
        {
            var reader = new Utf8JsonReader(payload);
            reader.Read();
            bool emptyChoices = false, usage = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("choices"u8))
                {
                    reader.Read();
                    emptyChoices = reader.TokenType == JsonTokenType.StartArray && reader.Read() && reader.TokenType == JsonTokenType.EndArray;
                    if (!emptyChoices)
                    {
                        return false;
                    }
                }
                else if (reader.ValueTextEquals("usage"u8))
                {
                    reader.Read();
                    usage = reader.TokenType == JsonTokenType.StartObject;
                    reader.Skip();
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            return emptyChoices && usage;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
