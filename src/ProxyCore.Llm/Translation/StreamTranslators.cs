using System.Buffers;
using System.Text.Json;
using ProxyCore.Llm.Sse;

namespace ProxyCore.Llm.Translation;

/// <summary>
/// What every translator of an Anthropic Messages event stream shares: the SSE reader, one JSON read
/// per event (events that are not JSON are skipped), the usage figures (message_start's, then
/// message_delta's cumulative ones), and the end-of-body rule: a stream that stops before
/// <c>message_stop</c> gets the client format's error event instead of a clean ending.
/// </summary>
public abstract class AnthropicStreamTranslator : IStreamTranslator
{
    private readonly SseReader _reader = new();
    protected long _inputTokens, _cacheRead, _cacheWrite, _outputTokens;
    protected bool _done, _errored;

    /// <summary>True once <c>message_stop</c> was translated.</summary>
    public bool Completed => _done;

    /// <summary>Translates the next body chunk; whole translated events go to <paramref name="output"/>.</summary>
    public SseReadStatus Translate(ReadOnlySpan<byte> chunk, IBufferWriter<byte> output)
    {
        var handler = new Handler(this, output);
        return _reader.Read(chunk, ref handler);
    }

    /// <summary>The upstream body ended. False (and an error event written) when it ended before <c>message_stop</c>.</summary>
    public bool Complete(IBufferWriter<byte> output)
    {
        if (_done || _errored)
        {
            return _done;
        }
        WriteError(output, "upstream stream ended before message_stop", "api_error");
        _errored = true;
        return false;
    }

    /// <summary>One Messages event (its JSON root), translated into the client's format; <c>error</c> events are the base's.</summary>
    protected abstract void OnEvent(JsonElement root, IBufferWriter<byte> output);

    /// <summary>The client format's error event.</summary>
    protected abstract void WriteError(IBufferWriter<byte> output, string message, string type);

    private readonly struct Handler(AnthropicStreamTranslator owner, IBufferWriter<byte> output) : ISseEventHandler
    {
        public void OnEvent(in SseEvent e) => owner.OnEventData(e.Data, output);
    }

    private void OnEventData(ReadOnlySpan<byte> data, IBufferWriter<byte> output)
    {
        if (_done || _errored)
        {
            return;
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(data.ToArray());
        }
        catch (JsonException)
        {
            return; // not JSON: nothing a client could use
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.GetString("type") == "error")
            {
                // The provider's own error event: the client's format says it, and the stream ends without a clean finish.
                var error = root.TryGet("error", out var er) ? er : default;
                WriteError(output, error.GetString("message") ?? "upstream error", error.GetString("type") ?? "api_error");
                _errored = true;
                return;
            }
            OnEvent(root, output);
        }
    }

    protected void ReadUsage(JsonElement usage)
    {
        if (usage.ValueKind != JsonValueKind.Object)
        {
            return;
        }
        // message_delta's usage is cumulative; any field present replaces what message_start said.
        if (usage.TryGet("input_tokens", out _))
        {
            _inputTokens = usage.GetLong("input_tokens");
        }
        if (usage.TryGet("cache_read_input_tokens", out _))
        {
            _cacheRead = usage.GetLong("cache_read_input_tokens");
        }
        if (usage.TryGet("cache_creation_input_tokens", out _))
        {
            _cacheWrite = usage.GetLong("cache_creation_input_tokens");
        }
        if (usage.TryGet("output_tokens", out _))
        {
            _outputTokens = usage.GetLong("output_tokens");
        }
    }
}

/// <summary>
/// Translates an Anthropic Messages event stream into the OpenAI Chat Completions chunk stream, event by
/// event as the bytes arrive (nothing of the stream is held beyond the event being read).
/// </summary>
/// <remarks>
/// <para>State machine over the Messages events:</para>
/// <code>
/// message_start        → role chunk (id, model kept for every chunk; input usage kept)
/// content_block_start  → tool_use: a tool_calls chunk (id, name, empty arguments), numbered in order
/// content_block_delta  → text_delta: content chunk; input_json_delta: tool_calls arguments chunk;
///                        thinking/signature deltas: dropped (Chat has no field for them)
/// message_delta        → finish chunk (stop_reason mapped), output usage kept
/// message_stop         → usage chunk (when asked for), then [DONE]
/// error                → data: {"error":{…}} and the stream ends without [DONE]
/// ping, content_block_stop → nothing
/// </code>
/// <para>Call <see cref="Translate"/> per body chunk and <see cref="Complete"/> at the end: a stream that
/// stops before <c>message_stop</c> gets an error chunk instead of a clean ending.</para>
/// </remarks>
public sealed class AnthropicToOpenAIStream : AnthropicStreamTranslator
{
    private readonly bool _includeUsage;
    private readonly long _created;
    private readonly Dictionary<int, int> _toolIndexByBlock = [];
    private string _id = "";
    private string _model = "";

    /// <param name="includeUsage">The client asked for <c>stream_options.include_usage</c>: send the usage chunk.</param>
    /// <param name="created">The <c>created</c> Unix time of every chunk.</param>
    public AnthropicToOpenAIStream(bool includeUsage, long created)
    {
        _includeUsage = includeUsage;
        _created = created;
    }

    protected override void OnEvent(JsonElement root, IBufferWriter<byte> output)
    {
        switch (root.GetString("type"))
        {
            case "message_start":
                {
                    var message = root.TryGet("message", out var m) ? m : default;
                    _id = message.GetString("id") ?? "";
                    _model = message.GetString("model") ?? "";
                    ReadUsage(message.TryGet("usage", out var u) ? u : default);
                    WriteChunk(output, w =>
                    {
                        w.WriteString("role", "assistant");
                        w.WriteString("content", "");
                    }, null);
                    break;
                }
            case "content_block_start":
                {
                    var block = root.TryGet("content_block", out var b) ? b : default;
                    int blockIndex = (int)root.GetLong("index");
                    if (block.GetString("type") == "tool_use")
                    {
                        int toolIndex = _toolIndexByBlock.Count;
                        _toolIndexByBlock[blockIndex] = toolIndex;
                        string? id = block.GetString("id");
                        string? name = block.GetString("name");
                        WriteChunk(output, w => WriteToolCall(w, toolIndex, id, name, ""), null);
                    }
                    else if (block.GetString("type") == "text" && block.GetString("text") is { Length: > 0 } text)
                    {
                        WriteChunk(output, w => w.WriteString("content", text), null);
                    }
                    break;
                }
            case "content_block_delta":
                {
                    var delta = root.TryGet("delta", out var d) ? d : default;
                    switch (delta.GetString("type"))
                    {
                        case "text_delta":
                            {
                                string text = delta.GetString("text") ?? "";
                                WriteChunk(output, w => w.WriteString("content", text), null);
                                break;
                            }
                        case "input_json_delta" when _toolIndexByBlock.TryGetValue((int)root.GetLong("index"), out int toolIndex):
                            {
                                string json = delta.GetString("partial_json") ?? "";
                                WriteChunk(output, w => WriteToolCall(w, toolIndex, null, null, json), null);
                                break;
                            }
                    }
                    break;
                }
            case "message_delta":
                {
                    if (root.TryGet("usage", out var usage))
                    {
                        ReadUsage(usage);
                    }
                    string finish = LlmTranslation.ToOpenAIFinishReason(root.TryGet("delta", out var d) ? d.GetString("stop_reason") : null);
                    WriteChunk(output, static _ => { }, finish);
                    break;
                }
            case "message_stop":
                if (_includeUsage)
                {
                    WriteUsageChunk(output);
                }
                output.Write("data: [DONE]\n\n"u8);
                _done = true;
                break;
        }
    }


    private static void WriteToolCall(Utf8JsonWriter w, int index, string? id, string? name, string arguments)
    {
        w.WriteStartArray("tool_calls");
        w.WriteStartObject();
        w.WriteNumber("index", index);
        if (id is not null)
        {
            w.WriteString("id", id);
            w.WriteString("type", "function");
        }
        w.WriteStartObject("function");
        if (name is not null)
        {
            w.WriteString("name", name);
        }
        w.WriteString("arguments", arguments);
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndArray();
    }

    private void WriteHeader(Utf8JsonWriter w)
    {
        w.WriteString("id", _id);
        w.WriteString("object", "chat.completion.chunk");
        w.WriteNumber("created", _created);
        w.WriteString("model", _model);
    }

    private void WriteChunk(IBufferWriter<byte> output, Action<Utf8JsonWriter> delta, string? finishReason)
    {
        output.Write("data: "u8);
        using (var w = new Utf8JsonWriter(output, LlmTranslation.WriterOptions))
        {
            w.WriteStartObject();
            WriteHeader(w);
            w.WriteStartArray("choices");
            w.WriteStartObject();
            w.WriteNumber("index", 0);
            w.WriteStartObject("delta");
            delta(w);
            w.WriteEndObject();
            w.WriteNull("logprobs");
            if (finishReason is null)
            {
                w.WriteNull("finish_reason");
            }
            else
            {
                w.WriteString("finish_reason", finishReason);
            }
            w.WriteEndObject();
            w.WriteEndArray();
            if (_includeUsage)
            {
                w.WriteNull("usage");
            }
            w.WriteEndObject();
        }
        output.Write("\n\n"u8);
    }

    private void WriteUsageChunk(IBufferWriter<byte> output)
    {
        output.Write("data: "u8);
        using (var w = new Utf8JsonWriter(output, LlmTranslation.WriterOptions))
        {
            w.WriteStartObject();
            WriteHeader(w);
            w.WriteStartArray("choices");
            w.WriteEndArray();
            long prompt = _inputTokens + _cacheRead + _cacheWrite;
            w.WriteStartObject("usage");
            w.WriteNumber("prompt_tokens", prompt);
            w.WriteNumber("completion_tokens", _outputTokens);
            w.WriteNumber("total_tokens", prompt + _outputTokens);
            w.WriteStartObject("prompt_tokens_details");
            w.WriteNumber("cached_tokens", _cacheRead);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        output.Write("\n\n"u8);
    }

    protected override void WriteError(IBufferWriter<byte> output, string message, string type)
    {
        output.Write("data: "u8);
        using (var w = new Utf8JsonWriter(output, LlmTranslation.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteStartObject("error");
            w.WriteString("message", message);
            w.WriteString("type", type);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        output.Write("\n\n"u8);
    }
}

/// <summary>
/// Translates an OpenAI Chat Completions chunk stream into the Anthropic Messages event stream, event
/// by event.
/// </summary>
/// <remarks>
/// <code>
/// first chunk            → message_start (id, model; usage filled in at the end)
/// delta.content          → (content_block_start text) content_block_delta text_delta
/// delta.tool_calls[i]    → new i: (content_block_stop) content_block_start tool_use; arguments: input_json_delta
/// finish_reason          → content_block_stop of the open block; the reason kept
/// usage chunk            → kept
/// [DONE] (or the end after a finish_reason: some backends omit [DONE])
///                        → message_delta (stop_reason, usage) and message_stop
/// data: {"error":…}      → event: error
/// </code>
/// The final <c>message_delta</c> waits for <c>[DONE]</c> because the usage chunk follows the finish chunk.
/// </remarks>
public sealed class OpenAIToAnthropicStream : IStreamTranslator
{
    private readonly SseReader _reader = new();
    private readonly Dictionary<int, int> _blockByTool = [];
    private bool _started, _done, _errored;
    private int _openBlock = -1;
    private bool _openIsText;
    private int _nextBlock;
    private string? _finishReason;
    private long _promptTokens, _completionTokens, _cachedTokens;

    /// <summary>True once <c>message_stop</c> was written.</summary>
    public bool Completed => _done;

    public SseReadStatus Translate(ReadOnlySpan<byte> chunk, IBufferWriter<byte> output)
    {
        var handler = new Handler(this, output);
        return _reader.Read(chunk, ref handler);
    }

    /// <summary>The upstream body ended: finishes the message if a finish reason was seen; otherwise writes an error event and returns false.</summary>
    public bool Complete(IBufferWriter<byte> output)
    {
        if (_done || _errored)
        {
            return _done;
        }
        if (_finishReason is not null)
        {
            Finish(output);
            return true;
        }
        WriteEvent(output, "error", w =>
        {
            w.WriteStartObject("error");
            w.WriteString("type", "api_error");
            w.WriteString("message", "upstream stream ended before a finish_reason");
            w.WriteEndObject();
        });
        _errored = true;
        return false;
    }

    private readonly struct Handler(OpenAIToAnthropicStream owner, IBufferWriter<byte> output) : ISseEventHandler
    {
        public void OnEvent(in SseEvent e) => owner.OnEvent(e.Data, output);
    }

    private void OnEvent(ReadOnlySpan<byte> data, IBufferWriter<byte> output)
    {
        if (_done || _errored)
        {
            return;
        }
        if (data.SequenceEqual("[DONE]"u8))
        {
            Finish(output);
            return;
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(data.ToArray());
        }
        catch (JsonException)
        {
            return;
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.TryGet("error", out var error))
            {
                WriteEvent(output, "error", w =>
                {
                    w.WriteStartObject("error");
                    w.WriteString("type", error.GetString("type") ?? "api_error");
                    w.WriteString("message", error.GetString("message") ?? "upstream error");
                    w.WriteEndObject();
                });
                _errored = true;
                return;
            }
            if (!_started)
            {
                _started = true;
                string id = root.GetString("id") ?? "";
                string model = root.GetString("model") ?? "";
                WriteEvent(output, "message_start", w =>
                {
                    w.WriteStartObject("message");
                    w.WriteString("id", id);
                    w.WriteString("type", "message");
                    w.WriteString("role", "assistant");
                    w.WriteString("model", model);
                    w.WriteStartArray("content");
                    w.WriteEndArray();
                    w.WriteNull("stop_reason");
                    w.WriteNull("stop_sequence");
                    w.WriteStartObject("usage");
                    w.WriteNumber("input_tokens", 0);
                    w.WriteNumber("output_tokens", 0);
                    w.WriteEndObject();
                    w.WriteEndObject();
                });
            }
            if (root.TryGet("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
            {
                _promptTokens = usage.GetLong("prompt_tokens");
                _completionTokens = usage.GetLong("completion_tokens");
                _cachedTokens = usage.TryGet("prompt_tokens_details", out var details) ? details.GetLong("cached_tokens") : 0;
            }
            if (!root.TryGet("choices", out var choices) || choices.ValueKind != JsonValueKind.Array)
            {
                return; // vLLM's usage chunk has "choices": null
            }
            foreach (var choice in choices.EnumerateArray())
            {
                if (choice.GetLong("index") != 0)
                {
                    continue; // Messages has one answer; n > 1 is refused on the request side
                }
                var delta = choice.TryGet("delta", out var d) ? d : default;
                foreach (var field in (ReadOnlySpan<string>)["content", "refusal"])
                {
                    if (delta.GetString(field) is { Length: > 0 } text)
                    {
                        if (_openBlock < 0 || !_openIsText)
                        {
                            StopOpenBlock(output);
                            StartBlock(output, text: true, null, null);
                        }
                        int index = _openBlock;
                        WriteEvent(output, "content_block_delta", w =>
                        {
                            w.WriteNumber("index", index);
                            w.WriteStartObject("delta");
                            w.WriteString("type", "text_delta");
                            w.WriteString("text", text);
                            w.WriteEndObject();
                        });
                    }
                }
                if (delta.TryGet("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array)
                {
                    foreach (var call in calls.EnumerateArray())
                    {
                        int toolIndex = (int)call.GetLong("index");
                        var function = call.TryGet("function", out var f) ? f : default;
                        if (!_blockByTool.TryGetValue(toolIndex, out int block))
                        {
                            StopOpenBlock(output);
                            StartBlock(output, text: false, call.GetString("id") ?? $"toolu_{toolIndex}", function.GetString("name") ?? "");
                            block = _openBlock;
                            _blockByTool[toolIndex] = block;
                        }
                        if (function.GetString("arguments") is { Length: > 0 } arguments)
                        {
                            WriteEvent(output, "content_block_delta", w =>
                            {
                                w.WriteNumber("index", block);
                                w.WriteStartObject("delta");
                                w.WriteString("type", "input_json_delta");
                                w.WriteString("partial_json", arguments);
                                w.WriteEndObject();
                            });
                        }
                    }
                }
                if (choice.GetString("finish_reason") is { } finish)
                {
                    _finishReason = finish;
                    StopOpenBlock(output);
                }
            }
        }
    }

    private void StartBlock(IBufferWriter<byte> output, bool text, string? id, string? name)
    {
        int index = _nextBlock++;
        _openBlock = index;
        _openIsText = text;
        WriteEvent(output, "content_block_start", w =>
        {
            w.WriteNumber("index", index);
            w.WriteStartObject("content_block");
            if (text)
            {
                w.WriteString("type", "text");
                w.WriteString("text", "");
            }
            else
            {
                w.WriteString("type", "tool_use");
                w.WriteString("id", id);
                w.WriteString("name", name);
                w.WriteStartObject("input");
                w.WriteEndObject();
            }
            w.WriteEndObject();
        });
    }

    private void StopOpenBlock(IBufferWriter<byte> output)
    {
        if (_openBlock < 0)
        {
            return;
        }
        int index = _openBlock;
        _openBlock = -1;
        WriteEvent(output, "content_block_stop", w => w.WriteNumber("index", index));
    }

    private void Finish(IBufferWriter<byte> output)
    {
        if (!_started)
        {
            _errored = true; // [DONE] with no answer at all: nothing to finish
            return;
        }
        StopOpenBlock(output);
        string stopReason = LlmTranslation.ToAnthropicStopReason(_finishReason);
        long input = Math.Max(0, _promptTokens - _cachedTokens);
        WriteEvent(output, "message_delta", w =>
        {
            w.WriteStartObject("delta");
            w.WriteString("stop_reason", stopReason);
            w.WriteNull("stop_sequence");
            w.WriteEndObject();
            w.WriteStartObject("usage");
            w.WriteNumber("input_tokens", input);
            w.WriteNumber("cache_read_input_tokens", _cachedTokens);
            w.WriteNumber("output_tokens", _completionTokens);
            w.WriteEndObject();
        });
        WriteEvent(output, "message_stop", static _ => { });
        _done = true;
    }

    private static void WriteEvent(IBufferWriter<byte> output, string type, Action<Utf8JsonWriter> body)
    {
        output.Write("event: "u8);
        output.Write(System.Text.Encoding.ASCII.GetBytes(type));
        output.Write("\ndata: "u8);
        using (var w = new Utf8JsonWriter(output, LlmTranslation.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("type", type);
            body(w);
            w.WriteEndObject();
        }
        output.Write("\n\n"u8);
    }
}
