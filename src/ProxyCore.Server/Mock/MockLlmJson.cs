using System.Buffers;
using System.Text.Json;

namespace ProxyCore.Server.Mock;

/// <summary>The mock's answers in each API's wire shape (as the providers document them), written with Utf8JsonWriter.</summary>
internal static class MockLlmJson
{
    private const long Created = 1_764_115_200;

    private delegate void Body(Utf8JsonWriter json);

    private static byte[] Write(Body body)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            body(json);
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static MockEvent Sse(string? eventName, Body body, bool delta = false)
    {
        var data = Write(body);
        var prefix = eventName is null ? "data: "u8.ToArray() : System.Text.Encoding.ASCII.GetBytes("event: " + eventName + "\ndata: ");
        return new MockEvent([.. prefix, .. data, (byte)'\n', (byte)'\n'], delta);
    }

    public static byte[] Error(bool anthropic, string type, string message) => Write(json =>
    {
        json.WriteStartObject();
        if (anthropic)
        {
            json.WriteString("type", "error");
        }
        json.WriteStartObject("error");
        json.WriteString("type", type);
        json.WriteString("message", message);
        if (!anthropic)
        {
            json.WriteNull("param");
            json.WriteString("code", type);
        }
        json.WriteEndObject();
        json.WriteEndObject();
    });

    private static int Cached(MockRequest request, MockKnobs knobs) => Math.Clamp(knobs.CachedTokens, 0, request.PromptTokens);

    private static void ChatUsage(Utf8JsonWriter json, MockRequest request, MockKnobs knobs, int completion)
    {
        json.WriteStartObject("usage");
        json.WriteNumber("prompt_tokens", request.PromptTokens);
        json.WriteNumber("completion_tokens", completion);
        json.WriteNumber("total_tokens", request.PromptTokens + completion);
        json.WriteStartObject("prompt_tokens_details");
        json.WriteNumber("cached_tokens", Cached(request, knobs));
        json.WriteEndObject();
        json.WriteStartObject("completion_tokens_details");
        json.WriteNumber("reasoning_tokens", 0);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    public static byte[] Chat(MockRequest request, MockKnobs knobs)
    {
        var pieces = request.AnswerPieces(out bool truncated);
        return Write(json =>
        {
            json.WriteStartObject();
            json.WriteString("id", "chatcmpl-mock" + request.Id);
            json.WriteString("object", "chat.completion");
            json.WriteNumber("created", Created);
            json.WriteString("model", request.Model);
            json.WriteStartArray("choices");
            json.WriteStartObject();
            json.WriteNumber("index", 0);
            json.WriteStartObject("message");
            json.WriteString("role", "assistant");
            json.WriteString("content", string.Concat(pieces));
            json.WriteNull("refusal");
            json.WriteEndObject();
            json.WriteNull("logprobs");
            json.WriteString("finish_reason", truncated ? "length" : "stop");
            json.WriteEndObject();
            json.WriteEndArray();
            ChatUsage(json, request, knobs, pieces.Count);
            json.WriteEndObject();
        });
    }

    public static IEnumerable<MockEvent> ChatEvents(MockRequest request, MockKnobs knobs)
    {
        var pieces = request.AnswerPieces(out bool truncated);
        Body Chunk(string? role, string? content, string? finish) => json =>
        {
            json.WriteStartObject();
            json.WriteString("id", "chatcmpl-mock" + request.Id);
            json.WriteString("object", "chat.completion.chunk");
            json.WriteNumber("created", Created);
            json.WriteString("model", request.Model);
            json.WriteStartArray("choices");
            json.WriteStartObject();
            json.WriteNumber("index", 0);
            json.WriteStartObject("delta");
            if (role is not null)
            {
                json.WriteString("role", role);
            }
            if (content is not null)
            {
                json.WriteString("content", content);
            }
            json.WriteEndObject();
            json.WriteNull("logprobs");
            if (finish is null)
            {
                json.WriteNull("finish_reason");
            }
            else
            {
                json.WriteString("finish_reason", finish);
            }
            json.WriteEndObject();
            json.WriteEndArray();
            if (request.IncludeUsage)
            {
                json.WriteNull("usage");
            }
            json.WriteEndObject();
        };
        yield return Sse(null, Chunk("assistant", "", null));
        foreach (var piece in pieces)
        {
            yield return Sse(null, Chunk(null, piece, null), delta: true);
        }
        yield return Sse(null, Chunk(null, null, truncated ? "length" : "stop"));
        if (request.IncludeUsage)
        {
            yield return Sse(null, json =>
            {
                json.WriteStartObject();
                json.WriteString("id", "chatcmpl-mock" + request.Id);
                json.WriteString("object", "chat.completion.chunk");
                json.WriteNumber("created", Created);
                json.WriteString("model", request.Model);
                json.WriteStartArray("choices");
                json.WriteEndArray();
                ChatUsage(json, request, knobs, pieces.Count);
                json.WriteEndObject();
            });
        }
        yield return new MockEvent("data: [DONE]\n\n"u8.ToArray(), false);
    }

    public static byte[] Embeddings(MockRequest request) => Write(json =>
    {
        json.WriteStartObject();
        json.WriteString("object", "list");
        json.WriteStartArray("data");
        for (int i = 0; i < request.Inputs.Count; i++)
        {
            json.WriteStartObject();
            json.WriteString("object", "embedding");
            json.WriteNumber("index", i);
            json.WriteStartArray("embedding");
            foreach (float v in MockLlm.Embed(request.Inputs[i], request.Dimensions))
            {
                json.WriteNumberValue(v);
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteString("model", request.Model);
        json.WriteStartObject("usage");
        json.WriteNumber("prompt_tokens", request.PromptTokens);
        json.WriteNumber("total_tokens", request.PromptTokens);
        json.WriteEndObject();
        json.WriteEndObject();
    });

    private static void ResponseObject(Utf8JsonWriter json, MockRequest request, MockKnobs knobs, List<string>? pieces, bool truncated, string status)
    {
        json.WriteStartObject();
        json.WriteString("id", "resp_mock" + request.Id);
        json.WriteString("object", "response");
        json.WriteNumber("created_at", Created);
        json.WriteString("status", status);
        json.WriteString("model", request.Model);
        json.WriteStartArray("output");
        if (pieces is not null)
        {
            json.WriteStartObject();
            json.WriteString("type", "message");
            json.WriteString("id", "msg_mock" + request.Id);
            json.WriteString("status", "completed");
            json.WriteString("role", "assistant");
            json.WriteStartArray("content");
            json.WriteStartObject();
            json.WriteString("type", "output_text");
            json.WriteString("text", string.Concat(pieces));
            json.WriteStartArray("annotations");
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
        }
        json.WriteEndArray();
        if (truncated)
        {
            json.WriteStartObject("incomplete_details");
            json.WriteString("reason", "max_output_tokens");
            json.WriteEndObject();
        }
        if (pieces is not null)
        {
            json.WriteStartObject("usage");
            json.WriteNumber("input_tokens", request.PromptTokens);
            json.WriteStartObject("input_tokens_details");
            json.WriteNumber("cached_tokens", Cached(request, knobs));
            json.WriteEndObject();
            json.WriteNumber("output_tokens", pieces.Count);
            json.WriteStartObject("output_tokens_details");
            json.WriteNumber("reasoning_tokens", 0);
            json.WriteEndObject();
            json.WriteNumber("total_tokens", request.PromptTokens + pieces.Count);
            json.WriteEndObject();
        }
        else
        {
            json.WriteNull("usage");
        }
        json.WriteEndObject();
    }

    public static byte[] Responses(MockRequest request, MockKnobs knobs)
    {
        var pieces = request.AnswerPieces(out bool truncated);
        return Write(json => ResponseObject(json, request, knobs, pieces, truncated, truncated ? "incomplete" : "completed"));
    }

    public static IEnumerable<MockEvent> ResponsesEvents(MockRequest request, MockKnobs knobs)
    {
        var pieces = request.AnswerPieces(out bool truncated);
        int sequence = 0;
        string itemId = "msg_mock" + request.Id;
        MockEvent Event(string type, Action<Utf8JsonWriter> fields, bool delta = false)
        {
            int n = sequence++;
            return Sse(type, json =>
            {
                json.WriteStartObject();
                json.WriteString("type", type);
                json.WriteNumber("sequence_number", n);
                fields(json);
                json.WriteEndObject();
            }, delta);
        }
        yield return Event("response.created", json => { json.WritePropertyName("response"); ResponseObject(json, request, knobs, null, false, "in_progress"); });
        yield return Event("response.in_progress", json => { json.WritePropertyName("response"); ResponseObject(json, request, knobs, null, false, "in_progress"); });
        yield return Event("response.output_item.added", json =>
        {
            json.WriteNumber("output_index", 0);
            json.WriteStartObject("item");
            json.WriteString("type", "message");
            json.WriteString("id", itemId);
            json.WriteString("status", "in_progress");
            json.WriteString("role", "assistant");
            json.WriteStartArray("content");
            json.WriteEndArray();
            json.WriteEndObject();
        });
        yield return Event("response.content_part.added", json =>
        {
            json.WriteString("item_id", itemId);
            json.WriteNumber("output_index", 0);
            json.WriteNumber("content_index", 0);
            json.WriteStartObject("part");
            json.WriteString("type", "output_text");
            json.WriteString("text", "");
            json.WriteStartArray("annotations");
            json.WriteEndArray();
            json.WriteEndObject();
        });
        foreach (var piece in pieces)
        {
            yield return Event("response.output_text.delta", json =>
            {
                json.WriteString("item_id", itemId);
                json.WriteNumber("output_index", 0);
                json.WriteNumber("content_index", 0);
                json.WriteString("delta", piece);
            }, delta: true);
        }
        string text = string.Concat(pieces);
        yield return Event("response.output_text.done", json =>
        {
            json.WriteString("item_id", itemId);
            json.WriteNumber("output_index", 0);
            json.WriteNumber("content_index", 0);
            json.WriteString("text", text);
        });
        yield return Event(truncated ? "response.incomplete" : "response.completed", json =>
        {
            json.WritePropertyName("response");
            ResponseObject(json, request, knobs, pieces, truncated, truncated ? "incomplete" : "completed");
        });
    }

    private static void MessageObject(Utf8JsonWriter json, MockRequest request, MockKnobs knobs, List<string>? pieces, bool truncated)
    {
        json.WriteStartObject();
        json.WriteString("id", "msg_mock" + request.Id);
        json.WriteString("type", "message");
        json.WriteString("role", "assistant");
        json.WriteString("model", request.Model);
        json.WriteStartArray("content");
        if (pieces is not null)
        {
            json.WriteStartObject();
            json.WriteString("type", "text");
            json.WriteString("text", string.Concat(pieces));
            json.WriteEndObject();
        }
        json.WriteEndArray();
        if (pieces is null)
        {
            json.WriteNull("stop_reason");
        }
        else
        {
            json.WriteString("stop_reason", truncated ? "max_tokens" : "end_turn");
        }
        json.WriteNull("stop_sequence");
        json.WriteStartObject("usage");
        int cached = Cached(request, knobs);
        // Anthropic's input_tokens excludes what was read from its prompt cache.
        json.WriteNumber("input_tokens", request.PromptTokens - cached);
        json.WriteNumber("cache_creation_input_tokens", 0);
        json.WriteNumber("cache_read_input_tokens", cached);
        json.WriteNumber("output_tokens", pieces?.Count ?? 1);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    public static byte[] Messages(MockRequest request, MockKnobs knobs)
    {
        var pieces = request.AnswerPieces(out bool truncated);
        return Write(json => MessageObject(json, request, knobs, pieces, truncated));
    }

    public static IEnumerable<MockEvent> MessagesEvents(MockRequest request, MockKnobs knobs)
    {
        var pieces = request.AnswerPieces(out bool truncated);
        yield return Sse("message_start", json =>
        {
            json.WriteStartObject();
            json.WriteString("type", "message_start");
            json.WritePropertyName("message");
            MessageObject(json, request, knobs, null, false);
            json.WriteEndObject();
        });
        yield return Sse("content_block_start", json =>
        {
            json.WriteStartObject();
            json.WriteString("type", "content_block_start");
            json.WriteNumber("index", 0);
            json.WriteStartObject("content_block");
            json.WriteString("type", "text");
            json.WriteString("text", "");
            json.WriteEndObject();
            json.WriteEndObject();
        });
        yield return new MockEvent("event: ping\ndata: {\"type\": \"ping\"}\n\n"u8.ToArray(), false);
        foreach (var piece in pieces)
        {
            yield return Sse("content_block_delta", json =>
            {
                json.WriteStartObject();
                json.WriteString("type", "content_block_delta");
                json.WriteNumber("index", 0);
                json.WriteStartObject("delta");
                json.WriteString("type", "text_delta");
                json.WriteString("text", piece);
                json.WriteEndObject();
                json.WriteEndObject();
            }, delta: true);
        }
        yield return Sse("content_block_stop", json =>
        {
            json.WriteStartObject();
            json.WriteString("type", "content_block_stop");
            json.WriteNumber("index", 0);
            json.WriteEndObject();
        });
        yield return Sse("message_delta", json =>
        {
            json.WriteStartObject();
            json.WriteString("type", "message_delta");
            json.WriteStartObject("delta");
            json.WriteString("stop_reason", truncated ? "max_tokens" : "end_turn");
            json.WriteNull("stop_sequence");
            json.WriteEndObject();
            json.WriteStartObject("usage");
            json.WriteNumber("output_tokens", pieces.Count);
            json.WriteEndObject();
            json.WriteEndObject();
        });
        yield return Sse("message_stop", json =>
        {
            json.WriteStartObject();
            json.WriteString("type", "message_stop");
            json.WriteEndObject();
        });
    }
}
