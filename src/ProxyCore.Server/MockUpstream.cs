using System.Buffers;
using System.Buffers.Text;
using System.IO.Pipelines;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using ProxyCore.Http;

namespace ProxyCore.Server;

/// <summary>
/// The demo and test upstream (`proxycore mock`, and the in-process upstream of the no-argument run).
/// Deterministic answers, so tests and benchmarks can check what passed through the proxy:
///   GET  /                 a greeting with what the upstream saw (JSON)
///   GET  /headers          the request head as JSON (method, target, headers)
///   GET  /bytes/N          N bytes of a known pattern (Content-Length); ?chunked=1 streams them chunked
///   POST /echo             the request body back, streamed as it arrives
///   POST /sink             reads the body and answers {"bytes":N}
///   GET  /status/N         an empty answer with status N
///   GET  /delay/MS         answers after MS milliseconds
///   GET  /trailers         a chunked body followed by trailer fields
///   GET  /ws               WebSocket echo (RFC 6455 handshake, then every message sent back)
///   POST /v1/...           a mock LLM provider: OpenAI chat, Responses, embeddings, Anthropic messages (<see cref="Mock.MockLlm"/>)
/// </summary>
internal sealed class MockUpstream : IHttpApplication
{
    private const int PieceSize = 64 * 1024;
    private static readonly byte[] s_pattern = BuildPattern();

    public async ValueTask ProcessAsync(HttpExchange exchange)
    {
        var request = exchange.Request;
        if (Mock.MockLlm.Handles(request.PathSpan))
        {
            await Mock.MockLlm.ProcessAsync(exchange).ConfigureAwait(false);
            return;
        }
        string path = Encoding.UTF8.GetString(request.PathSpan);
        if (path.StartsWith("/bytes/", StringComparison.Ordinal) && long.TryParse(path.AsSpan(7), out long count) && count >= 0)
        {
            await SendBytesAsync(exchange, count, Encoding.ASCII.GetString(request.QuerySpan).Contains("chunked=1", StringComparison.Ordinal)).ConfigureAwait(false);
        }
        else if (path == "/echo")
        {
            await EchoAsync(exchange).ConfigureAwait(false);
        }
        else if (path == "/sink")
        {
            long total = await DrainAsync(exchange).ConfigureAwait(false);
            await RespondAsync(exchange, 200, "application/json", "{\"bytes\":" + total + "}").ConfigureAwait(false);
        }
        else if (path.StartsWith("/status/", StringComparison.Ordinal) && int.TryParse(path.AsSpan(8), out int status) && status is >= 200 and < 600)
        {
            await DrainAsync(exchange).ConfigureAwait(false);
            await RespondAsync(exchange, status, "text/plain", status is 204 or 304 ? "" : "status " + status + "\n").ConfigureAwait(false);
        }
        else if (path.StartsWith("/delay/", StringComparison.Ordinal) && int.TryParse(path.AsSpan(7), out int ms) && ms >= 0)
        {
            await Task.Delay(Math.Min(ms, 600_000)).ConfigureAwait(false);
            await RespondAsync(exchange, 200, "text/plain", "delayed " + ms + " ms\n").ConfigureAwait(false);
        }
        else if (path == "/trailers")
        {
            await SendWithTrailersAsync(exchange).ConfigureAwait(false);
        }
        else if (path == "/ws" && request.IsUpgrade)
        {
            await WebSocketEchoAsync(exchange).ConfigureAwait(false);
        }
        else if (path == "/headers")
        {
            await DrainAsync(exchange).ConfigureAwait(false);
            await RespondAsync(exchange, 200, "application/json", DescribeRequest(exchange)).ConfigureAwait(false);
        }
        else
        {
            await DrainAsync(exchange).ConfigureAwait(false);
            await RespondAsync(exchange, 200, "application/json",
                "{\"message\":\"Hello from the ProxyCore demo upstream\",\"request\":" + DescribeRequest(exchange) + "}").ConfigureAwait(false);
        }
    }

    private static string DescribeRequest(HttpExchange exchange)
    {
        var request = exchange.Request;
        var sb = new StringBuilder();
        sb.Append("{\"method\":\"").Append(Json(request.MethodSpan)).Append("\",\"path\":\"").Append(Json(request.PathSpan))
            .Append("\",\"query\":\"").Append(Json(request.QuerySpan)).Append("\",\"headers\":[");
        for (int i = 0; i < request.HeaderCount; i++)
        {
            sb.Append(i == 0 ? "" : ",").Append("[\"").Append(Json(request.GetName(i))).Append("\",\"").Append(Json(request.GetValue(i))).Append("\"]");
        }
        return sb.Append("]}").ToString();
    }

    private static string Json(ReadOnlySpan<byte> value)
    {
        var text = Encoding.UTF8.GetString(value);
        return System.Text.Encodings.Web.JavaScriptEncoder.Default.Encode(text);
    }

    private static async ValueTask<long> DrainAsync(HttpExchange exchange)
    {
        long total = 0;
        while (exchange.HasRequestBody && !exchange.RequestBodyCompleted)
        {
            var read = await exchange.ReadRequestBodyAsync().ConfigureAwait(false);
            total += read.Data.Length;
            exchange.AdvanceRequestBody();
            if (read.IsCompleted)
            {
                break;
            }
        }
        return total;
    }

    private static async ValueTask RespondAsync(HttpExchange exchange, int status, string contentType, string body)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        exchange.Response.StatusCode = status;
        if (bytes.Length > 0)
        {
            exchange.Response.AddHeader("content-type"u8, Encoding.ASCII.GetBytes(contentType));
        }
        await exchange.StartResponseAsync(bytes.Length > 0 ? BodyFraming.ContentLength : BodyFraming.None, bytes.Length).ConfigureAwait(false);
        if (bytes.Length > 0)
        {
            await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(bytes), flush: false).ConfigureAwait(false);
        }
        await exchange.CompleteResponseAsync().ConfigureAwait(false);
    }

    /// <summary>Byte i of every /bytes answer is 'a' + i % 26: tests check content, not just length.</summary>
    public static byte PatternByte(long index) => (byte)('a' + index % 26);

    private static byte[] BuildPattern()
    {
        // 26 * 2521 = 65546 ≥ PieceSize, and a multiple of 26 so every piece starts at 'a'.
        var pattern = new byte[26 * 2521];
        for (int i = 0; i < pattern.Length; i++)
        {
            pattern[i] = PatternByte(i);
        }
        return pattern;
    }

    private static async ValueTask SendBytesAsync(HttpExchange exchange, long count, bool chunked)
    {
        await DrainAsync(exchange).ConfigureAwait(false);
        exchange.Response.StatusCode = 200;
        exchange.Response.AddHeader("content-type"u8, "application/octet-stream"u8);
        await exchange.StartResponseAsync(chunked ? BodyFraming.Stream : BodyFraming.ContentLength, count).ConfigureAwait(false);
        long sent = 0;
        int piece = PieceSize / 26 * 26;
        while (sent < count)
        {
            int n = (int)Math.Min(piece, count - sent);
            await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(s_pattern, 0, n), flush: true).ConfigureAwait(false);
            sent += n;
        }
        await exchange.CompleteResponseAsync().ConfigureAwait(false);
    }

    private static async ValueTask EchoAsync(HttpExchange exchange)
    {
        var request = exchange.Request;
        exchange.Response.StatusCode = 200;
        if (request.TryGetValue(KnownHeader.ContentType, out var type))
        {
            exchange.Response.AddHeader("content-type"u8, type);
        }
        bool known = request.Framing == BodyFraming.ContentLength;
        await exchange.StartResponseAsync(known ? BodyFraming.ContentLength : BodyFraming.Stream, known ? request.ContentLength : -1).ConfigureAwait(false);
        while (exchange.HasRequestBody && !exchange.RequestBodyCompleted)
        {
            var read = await exchange.ReadRequestBodyAsync().ConfigureAwait(false);
            if (!read.Data.IsEmpty)
            {
                await exchange.WriteResponseBodyAsync(read.Data, flush: true).ConfigureAwait(false);
            }
            exchange.AdvanceRequestBody();
            if (read.IsCompleted)
            {
                break;
            }
        }
        await exchange.CompleteResponseAsync(exchange.HasRequestTrailers ? exchange.RequestTrailers : null).ConfigureAwait(false);
    }

    private static async ValueTask SendWithTrailersAsync(HttpExchange exchange)
    {
        await DrainAsync(exchange).ConfigureAwait(false);
        exchange.Response.StatusCode = 200;
        exchange.Response.AddHeader("content-type"u8, "text/plain"u8);
        exchange.Response.AddHeader("trailer"u8, "x-checksum"u8);
        await exchange.StartResponseAsync(BodyFraming.Stream, -1).ConfigureAwait(false);
        await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>("hello, "u8.ToArray()), flush: true).ConfigureAwait(false);
        await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>("trailers\n"u8.ToArray()), flush: true).ConfigureAwait(false);
        var trailers = new ResponseHead();
        trailers.AddHeader("x-checksum"u8, "c0ffee"u8);
        await exchange.CompleteResponseAsync(trailers).ConfigureAwait(false);
    }

    private static async ValueTask WebSocketEchoAsync(HttpExchange exchange)
    {
        if (!exchange.Request.TryGetValue("sec-websocket-key"u8, out var key))
        {
            await RespondAsync(exchange, 400, "text/plain", "missing Sec-WebSocket-Key\n").ConfigureAwait(false);
            return;
        }
        // RFC 6455 §4.2.2: accept = base64(SHA-1(key + GUID)).
        Span<byte> material = stackalloc byte[key.Length + 36];
        key.CopyTo(material);
        "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"u8.CopyTo(material.Slice(key.Length));
        Span<byte> hash = stackalloc byte[20];
        SHA1.HashData(material, hash);
        Span<byte> accept = stackalloc byte[28];
        Base64.EncodeToUtf8(hash, accept, out _, out int written);

        exchange.Response.StatusCode = 101;
        exchange.Response.AddHeader("connection"u8, "upgrade"u8);
        exchange.Response.AddHeader("upgrade"u8, "websocket"u8);
        exchange.Response.AddHeader("sec-websocket-accept"u8, accept.Slice(0, written));
        await exchange.StartResponseAsync(BodyFraming.None, 0).ConfigureAwait(false);
        var pipe = exchange.DetachForTunnel();
        await pipe.Output.FlushAsync().ConfigureAwait(false);

        using var socket = WebSocket.CreateFromStream(new DuplexPipeStream(pipe), new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = TimeSpan.Zero });
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, CancellationToken.None).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None).ConfigureAwait(false);
                    break;
                }
                await socket.SendAsync(buffer.AsMemory(0, result.Count), result.MessageType, result.EndOfMessage, CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception) when (exchange.Aborted.IsCancellationRequested)
        {
        }
        catch (WebSocketException)
        {
        }
        finally
        {
            await pipe.Output.CompleteAsync().ConfigureAwait(false);
            await pipe.Input.CompleteAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>A Stream over a duplex pipe, for APIs that want a Stream (WebSocket.CreateFromStream).</summary>
internal sealed class DuplexPipeStream : Stream
{
    private readonly Stream _input;
    private readonly Stream _output;

    public DuplexPipeStream(IDuplexPipe pipe)
    {
        _input = pipe.Input.AsStream(leaveOpen: true);
        _output = pipe.Output.AsStream(leaveOpen: true);
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() => _output.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => _output.FlushAsync(cancellationToken);
    public override int Read(byte[] buffer, int offset, int count) => _input.Read(buffer, offset, count);
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _input.ReadAsync(buffer, cancellationToken);
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _input.ReadAsync(buffer, offset, count, cancellationToken);
    public override void Write(byte[] buffer, int offset, int count) => _output.Write(buffer, offset, count);
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => _output.WriteAsync(buffer, cancellationToken);
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _output.WriteAsync(buffer, offset, count, cancellationToken);
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
