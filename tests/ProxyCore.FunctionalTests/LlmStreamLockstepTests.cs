using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ProxyCore.Routing.Config;
using ProxyCore.Server;
using Xunit.Abstractions;

namespace ProxyCore.FunctionalTests;

/// <summary>
/// "Each event is forwarded at once; the stream is never held": an upstream that writes one SSE event,
/// then waits until the client behind ProxyCore has read that event before it writes the next. A proxy
/// that held events (whole stream, or a batch, or until a buffer fills) deadlocks this lockstep, and the
/// upstream's bounded wait turns that into a failure naming the event. No timing assertion (a loaded CI
/// box is slow); the upstream-write → client-read latency per event is printed as the measured figure.
/// </summary>
public sealed class LlmStreamLockstepTests(ITestOutputHelper output)
{
    private static readonly TimeSpan HeldTimeout = TimeSpan.FromSeconds(15);

    private static readonly string[] ChatEvents =
    [
        """data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}""",
        """data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"The secret"},"finish_reason":null}],"usage":null}""",
        """data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" is"},"finish_reason":null}],"usage":null}""",
        """data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" patience."},"finish_reason":null}],"usage":null}""",
        """data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}""",
        """data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":8,"completion_tokens":5,"total_tokens":13}}""",
        "data: [DONE]",
    ];

    private static readonly string[] AnthropicEvents =
    [
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":8,\"output_tokens\":1}}}",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
        "event: ping\ndata: {\"type\": \"ping\"}",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"The secret\"}}",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" is patience.\"}}",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":5}}",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}",
    ];

    public static TheoryData<string, string> Cases => new()
    {
        // Plain LLM route, and one with the cache, PII masking and the output deny check on (each reads every event).
        { "/plain/v1/chat/completions", "openai" },
        { "/guarded/v1/chat/completions", "openai" },
        { "/plain/v1/messages", "anthropic" },
        { "/guarded/v1/messages", "anthropic" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Stream_UpstreamWaitsForEachEvent_ClientGetsItBeforeTheNextIsSent(string path, string provider)
    {
        string[] events = provider == "anthropic" ? AnthropicEvents : ChatEvents;
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var received = new SemaphoreSlim(0);
        var sentAt = new long[events.Length];
        var upstream = Task.Run(() => ServeLockstepAsync(listener, events, sentAt, received));

        var config = ProxyConfigLoader.Parse(Config(((IPEndPoint)listener.LocalEndpoint).Port, provider));
        Assert.True(config.IsValid, string.Join("\n", config.Errors));
        await using var proxy = ProxyHost.Start(config.Config!);
        using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(60) };
        string body = provider == "anthropic"
            ? """{"model":"claude-haiku-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"What is the secret?"}]}"""
            : """{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"What is the secret?"}]}""";
        using var request = new HttpRequestMessage(HttpMethod.Post, $"http://{proxy.ListenEndPoints[0]}{path}")
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };

        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await using var stream = await response.Content.ReadAsStreamAsync();
        var gotAt = new long[events.Length];
        var got = new List<string>();
        var pending = new StringBuilder();
        var buffer = new byte[4096];
        while (got.Count < events.Length)
        {
            int n = await stream.ReadAsync(buffer).AsTask().WaitAsync(HeldTimeout);
            if (n == 0)
            {
                break;
            }
            pending.Append(Encoding.UTF8.GetString(buffer, 0, n));
            for (int end; (end = pending.ToString().IndexOf("\n\n", StringComparison.Ordinal)) >= 0;)
            {
                gotAt[got.Count] = Stopwatch.GetTimestamp();
                got.Add(pending.ToString(0, end));
                pending.Remove(0, end + 2);
                received.Release(); // the upstream may write the next event now
            }
        }
        await upstream.WaitAsync(HeldTimeout);

        Assert.Equal(events, got);
        var micros = Enumerable.Range(0, events.Length).Select(i => Stopwatch.GetElapsedTime(sentAt[i], gotAt[i]).TotalMicroseconds).ToArray();
        output.WriteLine($"{path}: upstream write → client read per event (µs): {string.Join(", ", micros.Select(m => m.ToString("0")))}; " +
            $"median {micros.Order().ElementAt(micros.Length / 2):0} µs");
    }

    /// <summary>
    /// Reads the request (head and content-length body), answers 200 text/event-stream chunked, and writes the
    /// events one at a time, each only once the client has read the one before. The last event's trailing
    /// blank line is written in a second write after a pause, so the proxy also sees an event cut across reads.
    /// </summary>
    private static async Task ServeLockstepAsync(TcpListener listener, string[] events, long[] sentAt, SemaphoreSlim received)
    {
        using var socket = await listener.AcceptSocketAsync().WaitAsync(HeldTimeout);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await ReadRequestAsync(stream);
        await WriteAsync(stream, "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n", chunk: false);
        for (int i = 0; i < events.Length; i++)
        {
            if (i == events.Length - 1)
            {
                await WriteAsync(stream, events[i] + "\n", chunk: true);
                await Task.Delay(20);
                sentAt[i] = Stopwatch.GetTimestamp();
                await WriteAsync(stream, "\n", chunk: true);
            }
            else
            {
                sentAt[i] = Stopwatch.GetTimestamp();
                await WriteAsync(stream, events[i] + "\n\n", chunk: true);
            }
            if (!await received.WaitAsync(HeldTimeout))
            {
                throw new TimeoutException($"event {i} did not reach the client: the proxy held it");
            }
        }
        await WriteAsync(stream, "0\r\n\r\n", chunk: false);
        socket.Shutdown(SocketShutdown.Send);
    }

    private static async Task ReadRequestAsync(NetworkStream stream)
    {
        var head = new List<byte>();
        var one = new byte[1];
        while (head.Count < 4 || !(head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n'))
        {
            if (await stream.ReadAsync(one).AsTask().WaitAsync(HeldTimeout) == 0)
            {
                throw new IOException("request ended inside its head");
            }
            head.Add(one[0]);
        }
        string text = Encoding.ASCII.GetString([.. head]);
        var line = text.Split("\r\n").FirstOrDefault(l => l.StartsWith("content-length:", StringComparison.OrdinalIgnoreCase))
            ?? throw new IOException("the proxy sent no content-length: " + text);
        int remaining = int.Parse(line["content-length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var body = new byte[remaining];
        await stream.ReadExactlyAsync(body).AsTask().WaitAsync(HeldTimeout);
    }

    private static async Task WriteAsync(NetworkStream stream, string text, bool chunk)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        if (chunk)
        {
            bytes = [.. Encoding.ASCII.GetBytes($"{bytes.Length:x}\r\n"), .. bytes, .. "\r\n"u8];
        }
        await stream.WriteAsync(bytes);
        await stream.FlushAsync();
    }

    private static string Config(int upstreamPort, string provider) => $$"""
        { "listeners": [ { "address": "127.0.0.1:0" } ], "admin": { "address": "127.0.0.1:0" },
          "routes": [
            { "id": "plain", "match": { "path": "/plain/" }, "cluster": "up",
              "llm": { "providers": [ { "name": "p", "type": "{{provider}}", "cluster": "up" } ] } },
            { "id": "guarded", "match": { "path": "/guarded/" }, "cluster": "up",
              "llm": { "providers": [ { "name": "p", "type": "{{provider}}", "cluster": "up" } ],
                       "cache": { "exact": { "ttl": "1h" } },
                       "redact": { "pii": ["email"], "mode": "mask", "denyOutput": ["forbidden\\s+phrase"] } } } ],
          "clusters": [ { "id": "up", "destinations": [ { "address": "http://127.0.0.1:{{upstreamPort}}" } ] } ] }
        """;
}
