using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ProxyCore.Http;

namespace ProxyCore.Server.Mock;

/// <summary>
/// The mock LLM provider of `proxycore mock` and of the embedded default (under <c>/v1/</c>):
///   POST /v1/chat/completions   OpenAI Chat Completions, JSON or SSE (`stream`, `stream_options.include_usage`)
///   POST /v1/responses          OpenAI Responses, JSON or SSE
///   POST /v1/embeddings         OpenAI Embeddings: deterministic unit vectors (SHA-256 of each input)
///   POST /v1/messages           Anthropic Messages, JSON or SSE
/// The answer is derived from the last user turn, and every usage figure is the count of
/// <see cref="MockTokens"/> pieces, so a test can predict it: a streamed answer sends one delta per
/// completion token. Knobs, as request headers or query parameters (or a destination path prefix
/// <c>/_mock/NAME/VALUE</c>, so a cluster can be made to fail): <c>x-mock-latency-ms</c> (wait before
/// the head), <c>x-mock-tokens-per-second</c> (pace the deltas), <c>x-mock-status</c> (answer that
/// status with the API's error JSON), <c>x-mock-cut-after</c> (drop the connection after N deltas),
/// <c>x-mock-cached-tokens</c> (report N prompt tokens as cached). Echoes, for tests of what a gateway
/// forwards: <c>x-mock-credential-sha256</c> (a digest of the credential it got) and
/// <c>x-mock-proxycore-headers</c> (the names of any <c>proxycore-*</c> request headers that reached it).
/// </summary>
internal static class MockLlm
{
    private const int MaxBodyBytes = 4 * 1024 * 1024;
    /// <summary>The LLM endpoints, also under a path prefix (a route or destination prefix in front of /v1/).</summary>
    public static bool Handles(ReadOnlySpan<byte> path)
    {
        if (path.StartsWith("/_mock/"u8))
        {
            return true;
        }
        int v1 = path.IndexOf("/v1/"u8);
        if (v1 < 0)
        {
            return false;
        }
        path = path[v1..];
        return path.SequenceEqual("/v1/chat/completions"u8) || path.SequenceEqual("/v1/responses"u8) ||
            path.SequenceEqual("/v1/embeddings"u8) || path.SequenceEqual("/v1/messages"u8);
    }

    public static async ValueTask ProcessAsync(HttpExchange exchange)
    {
        var knobs = MockKnobs.Read(exchange.Request, out string path);
        byte[] body = await ReadBodyAsync(exchange).ConfigureAwait(false);
        if (knobs.LatencyMs > 0)
        {
            await Task.Delay(Math.Min(knobs.LatencyMs, 600_000), exchange.Aborted).ConfigureAwait(false);
        }
        bool anthropic = path == "/v1/messages";
        // Which credential reached the provider, as a digest (tests check the gateway swapped keys; the key itself is never echoed).
        if (exchange.Request.TryGetValue(anthropic ? "x-api-key"u8 : "authorization"u8, out var credential))
        {
            exchange.Response.AddHeader("x-mock-credential-sha256"u8, Encoding.ASCII.GetBytes(Convert.ToHexStringLower(SHA256.HashData(credential)).AsSpan(0, 16).ToString()));
        }
        // Which of the gateway's own request headers (proxycore-*) reached the provider, by name: none should.
        string? own = null;
        for (int i = 0; i < exchange.Request.HeaderCount; i++)
        {
            var name = exchange.Request.GetName(i);
            if (name.Length > 10 && System.Text.Ascii.EqualsIgnoreCase(name[..10], "proxycore-"u8))
            {
                own = own is null ? Encoding.ASCII.GetString(name) : own + "," + Encoding.ASCII.GetString(name);
            }
        }
        if (own is not null)
        {
            exchange.Response.AddHeader("x-mock-proxycore-headers"u8, Encoding.ASCII.GetBytes(own));
        }
        if (exchange.Request.Method != HttpMethod.Post)
        {
            await ErrorAsync(exchange, anthropic, 405, "invalid_request_error", "Use POST.").ConfigureAwait(false);
            return;
        }
        if (knobs.Status is >= 400 and < 600)
        {
            await ErrorAsync(exchange, anthropic, knobs.Status, ErrorType(knobs.Status, anthropic), $"mock status {knobs.Status} (x-mock-status)").ConfigureAwait(false);
            return;
        }
        MockRequest request;
        try
        {
            using var doc = JsonDocument.Parse(body);
            request = MockRequest.From(doc.RootElement, path);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            await ErrorAsync(exchange, anthropic, 400, "invalid_request_error", "The body is not a valid request: " + e.Message).ConfigureAwait(false);
            return;
        }
        switch (path)
        {
            case "/v1/embeddings":
                await JsonAsync(exchange, MockLlmJson.Embeddings(request)).ConfigureAwait(false);
                break;
            case "/v1/chat/completions" when request.Stream:
                await StreamAsync(exchange, knobs, MockLlmJson.ChatEvents(request, knobs)).ConfigureAwait(false);
                break;
            case "/v1/chat/completions":
                await JsonAsync(exchange, MockLlmJson.Chat(request, knobs)).ConfigureAwait(false);
                break;
            case "/v1/responses" when request.Stream:
                await StreamAsync(exchange, knobs, MockLlmJson.ResponsesEvents(request, knobs)).ConfigureAwait(false);
                break;
            case "/v1/responses":
                await JsonAsync(exchange, MockLlmJson.Responses(request, knobs)).ConfigureAwait(false);
                break;
            case "/v1/messages" when request.Stream:
                await StreamAsync(exchange, knobs, MockLlmJson.MessagesEvents(request, knobs)).ConfigureAwait(false);
                break;
            case "/v1/messages":
                await JsonAsync(exchange, MockLlmJson.Messages(request, knobs)).ConfigureAwait(false);
                break;
            default:
                await ErrorAsync(exchange, anthropic, 404, "not_found_error", $"The mock has no endpoint {path}.").ConfigureAwait(false);
                break;
        }
    }

    private static string ErrorType(int status, bool anthropic) => status switch
    {
        401 => anthropic ? "authentication_error" : "invalid_api_key",
        429 => anthropic ? "rate_limit_error" : "rate_limit_exceeded",
        529 => "overloaded_error",
        >= 500 => anthropic ? "api_error" : "server_error",
        _ => "invalid_request_error",
    };

    private static async ValueTask<byte[]> ReadBodyAsync(HttpExchange exchange)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        while (exchange.HasRequestBody && !exchange.RequestBodyCompleted)
        {
            var read = await exchange.ReadRequestBodyAsync(exchange.Aborted).ConfigureAwait(false);
            if (buffer.WrittenCount + read.Data.Length <= MaxBodyBytes)
            {
                foreach (var segment in read.Data)
                {
                    buffer.Write(segment.Span);
                }
            }
            exchange.AdvanceRequestBody();
            if (read.IsCompleted)
            {
                break;
            }
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static async ValueTask ErrorAsync(HttpExchange exchange, bool anthropic, int status, string type, string message)
    {
        if (status == 429)
        {
            exchange.Response.AddHeader("retry-after"u8, "1"u8);
        }
        await JsonAsync(exchange, MockLlmJson.Error(anthropic, type, message), status).ConfigureAwait(false);
    }

    private static async ValueTask JsonAsync(HttpExchange exchange, byte[] json, int status = 200)
    {
        exchange.Response.StatusCode = status;
        exchange.Response.AddHeader("content-type"u8, "application/json"u8);
        await exchange.StartResponseAsync(BodyFraming.ContentLength, json.Length, exchange.Aborted).ConfigureAwait(false);
        await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(json), flush: false, exchange.Aborted).ConfigureAwait(false);
        await exchange.CompleteResponseAsync(null, exchange.Aborted).ConfigureAwait(false);
    }

    private static async ValueTask StreamAsync(HttpExchange exchange, MockKnobs knobs, IEnumerable<MockEvent> events)
    {
        exchange.Response.StatusCode = 200;
        exchange.Response.AddHeader("content-type"u8, "text/event-stream; charset=utf-8"u8);
        exchange.Response.AddHeader("cache-control"u8, "no-cache"u8);
        await exchange.StartResponseAsync(BodyFraming.Stream, -1, exchange.Aborted).ConfigureAwait(false);
        var pace = knobs.TokensPerSecond > 0 ? TimeSpan.FromSeconds(1.0 / knobs.TokensPerSecond) : TimeSpan.Zero;
        int deltas = 0;
        foreach (var e in events)
        {
            if (e.IsDelta)
            {
                if (knobs.CutAfter >= 0 && deltas == knobs.CutAfter)
                {
                    // A provider that drops mid-answer: no terminal event, no last chunk. The connection
                    // closes after what was sent (FIN, not RST: a reset could discard those bytes unread).
                    var pipe = exchange.DetachForTunnel();
                    await pipe.Output.CompleteAsync().ConfigureAwait(false);
                    await pipe.Input.CompleteAsync().ConfigureAwait(false);
                    return;
                }
                deltas++;
                if (pace > TimeSpan.Zero)
                {
                    await Task.Delay(pace, exchange.Aborted).ConfigureAwait(false);
                }
            }
            await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(e.Bytes), flush: true, exchange.Aborted).ConfigureAwait(false);
        }
        await exchange.CompleteResponseAsync(null, exchange.Aborted).ConfigureAwait(false);
    }

    /// <summary>A deterministic unit vector for <paramref name="text"/>: SHA-256 in counter mode, mapped to [-1, 1].</summary>
    public static float[] Embed(string text, int dimensions)
    {
        var vector = new float[dimensions];
        Span<byte> block = stackalloc byte[32];
        byte[] input = Encoding.UTF8.GetBytes("\0\0\0\0" + text);
        double norm = 0;
        for (int i = 0; i < dimensions; i++)
        {
            if (i % 16 == 0)
            {
                System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(input, i / 16);
                SHA256.HashData(input, block);
            }
            short raw = System.Buffers.Binary.BinaryPrimitives.ReadInt16LittleEndian(block.Slice(i % 16 * 2, 2));
            vector[i] = raw / 32768f;
            norm += vector[i] * (double)vector[i];
        }
        float scale = norm > 0 ? (float)(1 / Math.Sqrt(norm)) : 0;
        for (int i = 0; i < dimensions; i++)
        {
            vector[i] *= scale;
        }
        return vector;
    }
}

/// <summary>The mock's token rule: a run of letters or digits is one token, any other visible character is one.</summary>
internal static class MockTokens
{
    public static int Count(string text) => Split(text).Count;

    /// <summary>The text cut into pieces, each piece one token; spaces travel with the piece after them, so the pieces concatenate back to the text.</summary>
    public static List<string> Split(string text)
    {
        var pieces = new List<string>();
        int i = 0;
        while (i < text.Length)
        {
            int start = i;
            while (i < text.Length && char.IsWhiteSpace(text[i]))
            {
                i++;
            }
            if (i == text.Length)
            {
                if (pieces.Count > 0)
                {
                    pieces[^1] += text[start..];
                }
                break;
            }
            if (char.IsLetterOrDigit(text[i]))
            {
                while (i < text.Length && char.IsLetterOrDigit(text[i]))
                {
                    i++;
                }
            }
            else
            {
                i++;
            }
            pieces.Add(text[start..i]);
        }
        return pieces;
    }
}

internal readonly struct MockKnobs
{
    public int LatencyMs { get; init; }
    public double TokensPerSecond { get; init; }
    public int Status { get; init; }
    public int CutAfter { get; init; }
    public int CachedTokens { get; init; }

    public static MockKnobs Read(RequestHead request, out string path)
    {
        var values = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        path = Encoding.UTF8.GetString(request.PathSpan);
        // A destination prefix "/_mock/status/503" makes every request of a cluster carry the knob.
        while (path.StartsWith("/_mock/", StringComparison.Ordinal))
        {
            var parts = path.Split('/', 5);
            if (parts.Length < 5)
            {
                break;
            }
            values["x-mock-" + parts[2]] = parts[3];
            path = "/" + parts[4];
        }
        int v1 = path.IndexOf("/v1/", StringComparison.Ordinal);
        if (v1 > 0)
        {
            path = path[v1..];
        }
        var query = Encoding.UTF8.GetString(request.QuerySpan).TrimStart('?');
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=');
            if (eq > 0 && pair.StartsWith("x-mock-", StringComparison.OrdinalIgnoreCase))
            {
                values[pair[..eq]] = Uri.UnescapeDataString(pair[(eq + 1)..]);
            }
        }
        for (int i = 0; i < request.HeaderCount; i++)
        {
            var name = request.GetName(i);
            if (name.Length > 7 && System.Text.Ascii.EqualsIgnoreCase(name[..7], "x-mock-"u8))
            {
                values[Encoding.ASCII.GetString(name)] = Encoding.UTF8.GetString(request.GetValue(i));
            }
        }
        return new MockKnobs
        {
            LatencyMs = Int(values, "x-mock-latency-ms", 0),
            TokensPerSecond = values.TryGetValue("x-mock-tokens-per-second", out var tps) && double.TryParse(tps, System.Globalization.CultureInfo.InvariantCulture, out var t) ? t : 0,
            Status = Int(values, "x-mock-status", 0),
            CutAfter = Int(values, "x-mock-cut-after", -1),
            CachedTokens = Int(values, "x-mock-cached-tokens", 0),
        };
    }

    private static int Int(Dictionary<string, string> values, string name, int fallback)
        => values.TryGetValue(name, out var s) && int.TryParse(s, out int v) ? v : fallback;
}

/// <summary>What the mock needs of a request, whichever API it came in.</summary>
internal sealed class MockRequest
{
    public string Model { get; private init; } = "";
    public bool Stream { get; private init; }
    public bool IncludeUsage { get; private init; }
    public int? MaxTokens { get; private init; }
    public string LastUserText { get; private init; } = "";
    public int PromptTokens { get; private init; }
    public List<string> Inputs { get; } = [];
    public int Dimensions { get; private init; } = 8;
    public string Id { get; private init; } = "";

    public static MockRequest From(JsonElement root, string path)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException("expected a JSON object");
        }
        string model = root.TryGetProperty("model", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString()! : throw new FormatException("'model' is required");
        bool stream = root.TryGetProperty("stream", out var s) && s.ValueKind == JsonValueKind.True;
        bool includeUsage = root.TryGetProperty("stream_options", out var so) && so.ValueKind == JsonValueKind.Object &&
            so.TryGetProperty("include_usage", out var iu) && iu.ValueKind == JsonValueKind.True;
        int? maxTokens = null;
        foreach (var name in (ReadOnlySpan<string>)["max_tokens", "max_completion_tokens", "max_output_tokens"])
        {
            if (root.TryGetProperty(name, out var mt) && mt.ValueKind == JsonValueKind.Number && mt.TryGetInt32(out int v))
            {
                maxTokens = v;
            }
        }
        var texts = new List<(string Role, string Text)>();
        var request = new MockRequest
        {
            Model = model,
            Stream = stream,
            IncludeUsage = includeUsage,
            MaxTokens = maxTokens,
            Dimensions = root.TryGetProperty("dimensions", out var d) && d.TryGetInt32(out int dims) && dims is > 0 and <= 4096 ? dims : 8,
            Id = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(root.GetRawText())).AsSpan(0, 8)),
        };
        int prompt = 0;
        if (path == "/v1/embeddings")
        {
            var input = root.TryGetProperty("input", out var i) ? i : throw new FormatException("'input' is required");
            if (input.ValueKind == JsonValueKind.String)
            {
                request.Inputs.Add(input.GetString()!);
            }
            else if (input.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in input.EnumerateArray())
                {
                    request.Inputs.Add(item.ValueKind == JsonValueKind.String ? item.GetString()! : item.GetRawText());
                }
            }
            foreach (var text in request.Inputs)
            {
                prompt += MockTokens.Count(text);
            }
            return new MockRequest { Model = model, PromptTokens = prompt, Dimensions = request.Dimensions, Id = request.Id }.WithInputs(request.Inputs);
        }
        if (root.TryGetProperty("system", out var system))
        {
            texts.Add(("system", TextOf(system)));
        }
        if (root.TryGetProperty("instructions", out var instructions) && instructions.ValueKind == JsonValueKind.String)
        {
            texts.Add(("system", instructions.GetString()!));
        }
        if (root.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array)
        {
            foreach (var message in messages.EnumerateArray())
            {
                string role = message.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()! : "user";
                texts.Add((role, message.TryGetProperty("content", out var c) ? TextOf(c) : ""));
            }
        }
        else if (root.TryGetProperty("input", out var input))
        {
            if (input.ValueKind == JsonValueKind.String)
            {
                texts.Add(("user", input.GetString()!));
            }
            else if (input.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in input.EnumerateArray())
                {
                    string role = item.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()! : "user";
                    texts.Add((role, item.TryGetProperty("content", out var c) ? TextOf(c) : ""));
                }
            }
        }
        else if (path != "/v1/embeddings")
        {
            throw new FormatException(path == "/v1/responses" ? "'input' is required" : "'messages' is required");
        }
        string last = "";
        foreach (var (role, text) in texts)
        {
            // Three tokens of framing per turn, as OpenAI counts chat messages.
            prompt += MockTokens.Count(text) + 3;
            if (role == "user")
            {
                last = text;
            }
        }
        return new MockRequest
        {
            Model = model, Stream = stream, IncludeUsage = includeUsage, MaxTokens = maxTokens,
            LastUserText = last, PromptTokens = prompt, Id = request.Id,
        };
    }

    private MockRequest WithInputs(List<string> inputs)
    {
        Inputs.AddRange(inputs);
        return this;
    }

    private static string TextOf(JsonElement content)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString()!;
        }
        var sb = new StringBuilder();
        if (content.ValueKind == JsonValueKind.Array)
        {
            foreach (var part in content.EnumerateArray())
            {
                if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
                {
                    sb.Append(sb.Length > 0 ? " " : "").Append(t.GetString());
                }
            }
        }
        return sb.ToString();
    }

    /// <summary>The answer: what was asked, said back, cut to max_tokens pieces.</summary>
    public List<string> AnswerPieces(out bool truncated)
    {
        string asked = LastUserText.Length > 200 ? LastUserText[..200] : LastUserText;
        var pieces = MockTokens.Split($"Mock answer from {Model}: you said \"{asked.Trim()}\".");
        truncated = MaxTokens is int max && max >= 0 && pieces.Count > max;
        return truncated ? pieces.GetRange(0, MaxTokens!.Value) : pieces;
    }
}

internal readonly record struct MockEvent(byte[] Bytes, bool IsDelta);
