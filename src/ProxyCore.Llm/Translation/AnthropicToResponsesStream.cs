using System.Buffers;
using System.Text;
using System.Text.Json;
using ProxyCore.Llm.Sse;

namespace ProxyCore.Llm.Translation;

/// <summary>
/// Translates an Anthropic Messages event stream into the OpenAI Responses event stream, event by event.
/// </summary>
/// <remarks>
/// <code>
/// message_start        → response.created, response.in_progress (id, model kept; input usage kept)
/// content_block_start  → text: (a message item opened: response.output_item.added) response.content_part.added;
///                        tool_use: (the open message item done) response.output_item.added function_call
/// content_block_delta  → text_delta: response.output_text.delta; input_json_delta: response.function_call_arguments.delta;
///                        thinking/signature deltas: dropped
/// content_block_stop   → text: response.output_text.done, response.content_part.done;
///                        tool_use: response.function_call_arguments.done, response.output_item.done
/// message_delta        → stop reason and output usage kept
/// message_stop         → the open message item done; response.completed (response.incomplete for max_tokens/refusal) with output and usage
/// error                → event: error, and the stream ends without response.completed
/// </code>
/// Every event carries its <c>type</c> and a <c>sequence_number</c>, as OpenAI's do. Only the items of
/// the answer are held (for the final <c>response.completed</c>, which repeats them whole).
/// </remarks>
public sealed class AnthropicToResponsesStream : AnthropicStreamTranslator
{
    private sealed class Item(bool function, int outputIndex, string id)
    {
        public bool Function { get; } = function;
        public int OutputIndex { get; } = outputIndex;
        public string Id { get; } = id;
        public string CallId { get; init; } = "";
        public string Name { get; init; } = "";
        public StringBuilder Arguments { get; } = new();
        public List<StringBuilder> Parts { get; } = [];
        public bool Done { get; set; }
    }

    private readonly long _createdAt;
    private readonly List<Item> _items = [];
    private readonly Dictionary<int, Item> _itemByBlock = [];
    private Item? _openMessage;
    private string _id = "", _bare = "", _model = "";
    private string? _stopReason;
    private long _sequence;

    /// <param name="createdAt">The <c>created_at</c> Unix time of the response (Messages has none).</param>
    public AnthropicToResponsesStream(long createdAt) => _createdAt = createdAt;

    protected override void OnEvent(JsonElement root, IBufferWriter<byte> output)
    {
        switch (root.GetString("type"))
        {
            case "message_start":
                {
                    var message = root.TryGet("message", out var m) ? m : default;
                    _id = message.GetString("id") ?? "";
                    _bare = _id.StartsWith("msg_", StringComparison.Ordinal) ? _id[4..] : _id;
                    _model = message.GetString("model") ?? "";
                    ReadUsage(message.TryGet("usage", out var u) ? u : default);
                    WriteEvent(output, "response.created", w => WriteResponse(w, "in_progress", final: false));
                    WriteEvent(output, "response.in_progress", w => WriteResponse(w, "in_progress", final: false));
                    break;
                }
            case "content_block_start":
                {
                    var block = root.TryGet("content_block", out var b) ? b : default;
                    int blockIndex = (int)root.GetLong("index");
                    switch (block.GetString("type"))
                    {
                        case "text":
                            {
                                var item = _openMessage ?? OpenMessage(output);
                                var part = new StringBuilder(block.GetString("text") ?? "");
                                item.Parts.Add(part);
                                _itemByBlock[blockIndex] = item;
                                int contentIndex = item.Parts.Count - 1;
                                WriteEvent(output, "response.content_part.added", w =>
                                {
                                    WriteItemRef(w, item);
                                    w.WriteNumber("content_index", contentIndex);
                                    w.WritePropertyName("part");
                                    WriteTextPart(w, "");
                                });
                                if (part.Length > 0)
                                {
                                    string text = part.ToString();
                                    WriteEvent(output, "response.output_text.delta", w => { WriteItemRef(w, item); w.WriteNumber("content_index", contentIndex); w.WriteString("delta", text); });
                                }
                                break;
                            }
                        case "tool_use":
                            {
                                CloseMessage(output);
                                string callId = block.GetString("id") ?? "";
                                var item = new Item(function: true, _items.Count, "fc_" + callId) { CallId = callId, Name = block.GetString("name") ?? "" };
                                _items.Add(item);
                                _itemByBlock[blockIndex] = item;
                                WriteEvent(output, "response.output_item.added", w =>
                                {
                                    w.WriteNumber("output_index", item.OutputIndex);
                                    w.WritePropertyName("item");
                                    WriteItem(w, item);
                                });
                                break;
                            }
                    }
                    break;
                }
            case "content_block_delta":
                {
                    var delta = root.TryGet("delta", out var d) ? d : default;
                    if (!_itemByBlock.TryGetValue((int)root.GetLong("index"), out var item))
                    {
                        break; // thinking and other blocks Responses has no event for here
                    }
                    switch (delta.GetString("type"))
                    {
                        case "text_delta" when !item.Function:
                            {
                                string text = delta.GetString("text") ?? "";
                                int contentIndex = item.Parts.Count - 1;
                                item.Parts[contentIndex].Append(text);
                                WriteEvent(output, "response.output_text.delta", w => { WriteItemRef(w, item); w.WriteNumber("content_index", contentIndex); w.WriteString("delta", text); });
                                break;
                            }
                        case "input_json_delta" when item.Function:
                            {
                                string json = delta.GetString("partial_json") ?? "";
                                item.Arguments.Append(json);
                                WriteEvent(output, "response.function_call_arguments.delta", w => { WriteItemRef(w, item); w.WriteString("delta", json); });
                                break;
                            }
                    }
                    break;
                }
            case "content_block_stop":
                {
                    int blockIndex = (int)root.GetLong("index");
                    if (!_itemByBlock.Remove(blockIndex, out var item))
                    {
                        break;
                    }
                    if (item.Function)
                    {
                        if (item.Arguments.Length == 0)
                        {
                            item.Arguments.Append("{}"); // a call without input still has JSON arguments
                        }
                        string arguments = item.Arguments.ToString();
                        WriteEvent(output, "response.function_call_arguments.done", w => { WriteItemRef(w, item); w.WriteString("arguments", arguments); });
                        item.Done = true;
                        WriteItemDone(output, item);
                    }
                    else
                    {
                        int contentIndex = item.Parts.Count - 1;
                        string text = item.Parts[contentIndex].ToString();
                        WriteEvent(output, "response.output_text.done", w => { WriteItemRef(w, item); w.WriteNumber("content_index", contentIndex); w.WriteString("text", text); });
                        WriteEvent(output, "response.content_part.done", w =>
                        {
                            WriteItemRef(w, item);
                            w.WriteNumber("content_index", contentIndex);
                            w.WritePropertyName("part");
                            WriteTextPart(w, text);
                        });
                    }
                    break;
                }
            case "message_delta":
                if (root.TryGet("usage", out var usage))
                {
                    ReadUsage(usage);
                }
                _stopReason = root.TryGet("delta", out var md) ? md.GetString("stop_reason") ?? _stopReason : _stopReason;
                break;
            case "message_stop":
                {
                    CloseMessage(output);
                    string status = Incomplete is null ? "completed" : "incomplete";
                    WriteEvent(output, status == "completed" ? "response.completed" : "response.incomplete", w => WriteResponse(w, status, final: true));
                    _done = true;
                    break;
                }
        }
    }

    private string? Incomplete => _stopReason switch
    {
        "max_tokens" or "model_context_window_exceeded" => "max_output_tokens",
        "refusal" => "content_filter",
        _ => null,
    };

    private Item OpenMessage(IBufferWriter<byte> output)
    {
        int outputIndex = _items.Count;
        var item = new Item(function: false, outputIndex, outputIndex == 0 ? "msg_" + _bare : $"msg_{_bare}_{outputIndex}");
        _items.Add(item);
        _openMessage = item;
        WriteEvent(output, "response.output_item.added", w =>
        {
            w.WriteNumber("output_index", outputIndex);
            w.WritePropertyName("item");
            WriteItem(w, item);
        });
        return item;
    }

    private void CloseMessage(IBufferWriter<byte> output)
    {
        if (_openMessage is not { } item)
        {
            return;
        }
        _openMessage = null;
        item.Done = true;
        WriteItemDone(output, item);
    }

    private void WriteItemDone(IBufferWriter<byte> output, Item item) => WriteEvent(output, "response.output_item.done", w =>
    {
        w.WriteNumber("output_index", item.OutputIndex);
        w.WritePropertyName("item");
        WriteItem(w, item);
    });

    private static void WriteItemRef(Utf8JsonWriter w, Item item)
    {
        w.WriteString("item_id", item.Id);
        w.WriteNumber("output_index", item.OutputIndex);
    }

    private static void WriteTextPart(Utf8JsonWriter w, string text)
    {
        w.WriteStartObject();
        w.WriteString("type", "output_text");
        w.WriteString("text", text);
        w.WriteStartArray("annotations");
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteItem(Utf8JsonWriter w, Item item)
    {
        w.WriteStartObject();
        if (item.Function)
        {
            w.WriteString("type", "function_call");
            w.WriteString("id", item.Id);
            w.WriteString("call_id", item.CallId);
            w.WriteString("name", item.Name);
            w.WriteString("arguments", item.Done ? item.Arguments.ToString() : "");
            w.WriteString("status", item.Done ? "completed" : "in_progress");
        }
        else
        {
            w.WriteString("type", "message");
            w.WriteString("id", item.Id);
            w.WriteString("status", item.Done ? "completed" : "in_progress");
            w.WriteString("role", "assistant");
            w.WriteStartArray("content");
            if (item.Done)
            {
                foreach (var part in item.Parts)
                {
                    WriteTextPart(w, part.ToString());
                }
            }
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

    private void WriteResponse(Utf8JsonWriter w, string status, bool final)
    {
        w.WriteStartObject("response");
        w.WriteString("id", "resp_" + _bare);
        w.WriteString("object", "response");
        w.WriteNumber("created_at", _createdAt);
        w.WriteString("status", status);
        w.WriteNull("error");
        if (final && Incomplete is { } reason)
        {
            w.WriteStartObject("incomplete_details");
            w.WriteString("reason", reason);
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("incomplete_details");
        }
        w.WriteString("model", _model);
        w.WriteStartArray("output");
        if (final)
        {
            foreach (var item in _items)
            {
                WriteItem(w, item);
            }
        }
        w.WriteEndArray();
        if (final)
        {
            long input = _inputTokens + _cacheRead + _cacheWrite;
            w.WriteStartObject("usage");
            w.WriteNumber("input_tokens", input);
            w.WriteStartObject("input_tokens_details");
            w.WriteNumber("cached_tokens", _cacheRead);
            w.WriteEndObject();
            w.WriteNumber("output_tokens", _outputTokens);
            w.WriteStartObject("output_tokens_details");
            w.WriteNumber("reasoning_tokens", 0);
            w.WriteEndObject();
            w.WriteNumber("total_tokens", input + _outputTokens);
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("usage");
        }
        w.WriteEndObject();
    }


    /// <summary>One Responses event: <c>event:</c> line and a data object with its type and sequence number first.</summary>
    private void WriteEvent(IBufferWriter<byte> output, string type, Action<Utf8JsonWriter> body)
    {
        output.Write("event: "u8);
        output.Write(Encoding.ASCII.GetBytes(type));
        output.Write("\ndata: "u8);
        using (var w = new Utf8JsonWriter(output, LlmTranslation.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("type", type);
            w.WriteNumber("sequence_number", _sequence++);
            body(w);
            w.WriteEndObject();
        }
        output.Write("\n\n"u8);
    }

    protected override void WriteError(IBufferWriter<byte> output, string message, string code) => WriteEvent(output, "error", w =>
    {
        w.WriteString("code", code);
        w.WriteString("message", message);
        w.WriteNull("param");
    });
}

/// <summary>A stream translator the stage drives: bytes in as they arrive, whole client events out.</summary>
public interface IStreamTranslator
{
    SseReadStatus Translate(ReadOnlySpan<byte> chunk, IBufferWriter<byte> output);

    /// <summary>The upstream body ended. False (an error event written) when the stream was not complete.</summary>
    bool Complete(IBufferWriter<byte> output);
}
