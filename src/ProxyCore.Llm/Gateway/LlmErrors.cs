using System.Buffers;
using System.Text.Json;

namespace ProxyCore.Llm.Gateway;

/// <summary>
/// The proxy's own answers on LLM routes, in the error shape the route's clients parse: OpenAI's
/// <c>{"error":{"message","type","param","code"}}</c>, or Anthropic's
/// <c>{"type":"error","error":{"type","message"}}</c> on <c>/v1/messages</c>, so an SDK raises its
/// usual exception with our message instead of failing to read a text body.
/// </summary>
internal static class LlmErrors
{
    public static byte[] Json(bool anthropic, int status, string reason, string message)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (anthropic)
            {
                json.WriteString("type"u8, "error"u8);
            }
            json.WriteStartObject("error"u8);
            json.WriteString("message"u8, message);
            json.WriteString("type"u8, anthropic ? AnthropicType(status) : OpenAIType(status));
            if (!anthropic)
            {
                json.WriteNull("param"u8);
                json.WriteString("code"u8, reason);
            }
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static string OpenAIType(int status) => status switch
    {
        401 or 403 => "invalid_request_error",
        429 => "rate_limit_error",
        >= 500 => "server_error",
        _ => "invalid_request_error",
    };

    private static string AnthropicType(int status) => status switch
    {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        >= 500 => "api_error",
        _ => "invalid_request_error",
    };

    /// <summary>
    /// The event that ends a stream the upstream cut, in the stream's own format, so a client reading
    /// events learns the answer is incomplete (then the body ends without its terminal framing).
    /// </summary>
    public static byte[] StreamCut(LlmApi api, string message) => StreamError(api, "upstream_stream_cut", "api_error", message);

    /// <summary>
    /// The event that ends a stream the proxy stops itself (an answer that matched a deny pattern):
    /// same shape as <see cref="StreamCut"/>, its own code.
    /// </summary>
    public static byte[] StreamDenied(LlmApi api, string message) => StreamError(api, "output_denied", "invalid_request_error", message);

    private static byte[] StreamError(LlmApi api, string code, string anthropicType, string message)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        buffer.Write(api switch
        {
            LlmApi.Responses => "event: error\ndata: "u8,
            LlmApi.AnthropicMessages => "event: error\ndata: "u8,
            _ => "data: "u8,
        });
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            switch (api)
            {
                case LlmApi.AnthropicMessages:
                    json.WriteString("type"u8, "error"u8);
                    json.WriteStartObject("error"u8);
                    json.WriteString("type"u8, anthropicType);
                    json.WriteString("message"u8, message);
                    json.WriteEndObject();
                    break;
                case LlmApi.Responses:
                    json.WriteString("type"u8, "error"u8);
                    json.WriteString("code"u8, code);
                    json.WriteString("message"u8, message);
                    json.WriteNull("param"u8);
                    break;
                default:
                    json.WriteStartObject("error"u8);
                    json.WriteString("message"u8, message);
                    json.WriteString("type"u8, "server_error"u8);
                    json.WriteNull("param"u8);
                    json.WriteString("code"u8, code);
                    json.WriteEndObject();
                    break;
            }
            json.WriteEndObject();
        }
        buffer.Write("\n\n"u8);
        return buffer.WrittenSpan.ToArray();
    }
}
