using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using ProxyCore.Http.Http2;
using ProxyCore.Http.Http2.Hpack;
using ProxyCore.Transport;

namespace ProxyCore.Http.Tests.Http2.Connection;

/// <summary>A frame as the test client read it: header fields and a copy of the payload.</summary>
internal sealed record ReadFrame(Http2FrameType Type, Http2FrameFlags Flags, int StreamId, byte[] Payload)
{
    public bool EndStream => (Flags & Http2FrameFlags.END_STREAM) != 0;

    public bool IsAck => (Flags & Http2FrameFlags.ACK) != 0;

    /// <summary>RST_STREAM's code, or GOAWAY's.</summary>
    public Http2ErrorCode ErrorCode => (Http2ErrorCode)BinaryPrimitives.ReadUInt32BigEndian(Type == Http2FrameType.GOAWAY ? Payload.AsSpan(4) : Payload);

    public int GoAwayLastStreamId => (int)BinaryPrimitives.ReadUInt32BigEndian(Payload);

    /// <summary>GOAWAY's debug data (§6.8), as ASCII.</summary>
    public string GoAwayDebug => System.Text.Encoding.ASCII.GetString(Payload.AsSpan(8));

    public int WindowIncrement => (int)BinaryPrimitives.ReadUInt32BigEndian(Payload);
}

/// <summary>
/// A raw HTTP/2 client over <see cref="InMemoryTransport"/>: frames written with
/// <see cref="Http2FrameWriter"/> and <see cref="HpackEncoder"/>, read with <see cref="Http2FrameReader"/>
/// and <see cref="HpackDecoder"/>, against a real <see cref="Http2Connection"/>. Every wait is bounded.
/// </summary>
internal sealed class Http2TestClient : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly ConnectionContext _client;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly HpackEncoder _encoder = new();
    private readonly HpackDecoder _decoder = new();
    private readonly CancellationTokenSource _stopping = new();

    private Http2TestClient(ConnectionContext client, Task server)
    {
        _client = client;
        _input = client.Transport.Input;
        _output = client.Transport.Output;
        ServerTask = server;
    }

    public Task ServerTask { get; }

    /// <summary>The server's SETTINGS, as sent in its preface.</summary>
    public Dictionary<Http2SettingsParameter, uint> ServerSettings { get; } = [];

    public int ServerConnectionWindowIncrement { get; private set; }

    /// <summary>
    /// A connection to a new <see cref="Http2Connection"/>; several started with the same
    /// <paramref name="transport"/>, application and options are neighbours on one server.
    /// </summary>
    public static async Task<Http2TestClient> StartAsync(IHttpApplication application, Http2ConnectionOptions? options = null, bool handshake = true,
        InMemoryTransport? transport = null)
    {
        transport ??= new InMemoryTransport();
        var client = await transport.ConnectAsync(transport.EndPoint);
        var server = (await transport.AcceptAsync())!;
        var stopping = new CancellationTokenSource();
        var connection = new Http2Connection(server, application, options ?? Http2ConnectionOptions.Default, stopping.Token);
        var run = Task.Run(async () =>
        {
            await connection.RunAsync();
            await server.DisposeAsync();
        });
        var testClient = new Http2TestClient(client, run);
        testClient._stopping.Token.Register(() => stopping.Cancel());
        if (handshake)
        {
            await testClient.HandshakeAsync();
        }
        return testClient;
    }

    /// <summary>Preface + empty SETTINGS; reads the server's SETTINGS (and WINDOW_UPDATE), ACKs it, waits for our ACK.</summary>
    public async Task HandshakeAsync()
    {
        WritePreface();
        Write(w => Http2FrameWriter.WriteSettings(w, []));
        await FlushAsync();
        var settings = await ReadFrameAsync();
        Assert.Equal(Http2FrameType.SETTINGS, settings.Type);
        Assert.False(settings.IsAck);
        for (int i = 0; i < settings.Payload.Length; i += 6)
        {
            ServerSettings[(Http2SettingsParameter)BinaryPrimitives.ReadUInt16BigEndian(settings.Payload.AsSpan(i))] =
                BinaryPrimitives.ReadUInt32BigEndian(settings.Payload.AsSpan(i + 2));
        }
        Write(Http2FrameWriter.WriteSettingsAck);
        await FlushAsync();
        while (true)
        {
            var frame = await ReadFrameAsync();
            if (frame.Type == Http2FrameType.WINDOW_UPDATE && frame.StreamId == 0)
            {
                ServerConnectionWindowIncrement = frame.WindowIncrement;
                continue;
            }
            Assert.Equal(Http2FrameType.SETTINGS, frame.Type);
            Assert.True(frame.IsAck);
            return;
        }
    }

    public void WritePreface() => Write(w => w.Write(Http2Preface.ClientPreface));

    public void Write(Action<IBufferWriter<byte>> write) => write(_output);

    public void WriteRaw(ReadOnlySpan<byte> bytes) => _output.Write(bytes);

    public async Task FlushAsync() => await _output.FlushAsync().AsTask().WaitAsync(Timeout);

    /// <summary>A flush without a timeout: it stays pending while the server does not read (backpressure).</summary>
    public Task StartFlush() => _output.FlushAsync().AsTask();

    public Task SendAsync(Action<IBufferWriter<byte>> write)
    {
        write(_output);
        return FlushAsync();
    }

    /// <summary>An HPACK block: the request pseudo-headers for <paramref name="method"/> and <paramref name="path"/>, then <paramref name="extra"/>.</summary>
    public byte[] RequestBlock(string method = "GET", string path = "/", params (string Name, string Value)[] extra)
    {
        var fields = new List<(string, string)> { (":method", method), (":scheme", "http"), (":path", path), (":authority", "example.test") };
        fields.AddRange(extra);
        return Block([.. fields]);
    }

    /// <summary>An HPACK block of exactly these fields, in order (no pseudo-headers added).</summary>
    public byte[] Block(params (string Name, string Value)[] fields)
    {
        var buffer = new ArrayBufferWriter<byte>();
        _encoder.BeginBlock(buffer);
        foreach (var (name, value) in fields)
        {
            // Raw literal without indexing, so uppercase names go out as written (the encoder would lowercase them).
            WriteLiteral(buffer, name, value);
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteLiteral(ArrayBufferWriter<byte> buffer, string name, string value)
    {
        // RFC 7541 §6.2.2 literal without indexing, new name: 0x00, name length, name, value length, value.
        var n = System.Text.Encoding.ASCII.GetBytes(name);
        var v = System.Text.Encoding.ASCII.GetBytes(value);
        Assert.True(n.Length < 127 && v.Length < 127);
        buffer.Write((ReadOnlySpan<byte>)[0x00, (byte)n.Length]);
        buffer.Write(n);
        buffer.Write((ReadOnlySpan<byte>)[(byte)v.Length]);
        buffer.Write(v);
    }

    public Task SendHeadersAsync(int streamId, byte[] block, bool endStream) =>
        SendAsync(w => Http2FrameWriter.WriteHeaders(w, streamId, block, endStream));

    public Task SendRequestAsync(int streamId, string method = "GET", string path = "/", bool endStream = true, params (string, string)[] extra) =>
        SendHeadersAsync(streamId, RequestBlock(method, path, extra), endStream);

    /// <summary>The next frame, or null when the server closed the connection.</summary>
    public async Task<ReadFrame?> TryReadFrameAsync()
    {
        using var cts = new CancellationTokenSource(Timeout);
        while (true)
        {
            ReadResult result;
            try
            {
                result = await _input.ReadAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException("No frame from the server in time.");
            }
            catch (Exception)
            {
                return null; // reset
            }
            var buffer = result.Buffer;
            var status = Http2FrameReader.TryReadFrame(buffer, Http2Frame.MaxAllowedFrameSize, out var frame, out var consumed, out var error);
            if (status is Http2ReadStatus.Frame or Http2ReadStatus.UnknownFrame)
            {
                var read = new ReadFrame(frame.Type, frame.Flags, frame.StreamId, frame.Payload.ToArray());
                _input.AdvanceTo(consumed);
                return read;
            }
            Assert.NotEqual(Http2ReadStatus.Error, status);
            if (result.IsCompleted)
            {
                _input.AdvanceTo(buffer.End);
                return null;
            }
            _input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    public async Task<ReadFrame> ReadFrameAsync() =>
        await TryReadFrameAsync() ?? throw new InvalidOperationException("The server closed the connection.");

    /// <summary>Reads until a frame matching <paramref name="match"/>; null when the connection closed first.</summary>
    public async Task<ReadFrame?> ReadUntilAsync(Func<ReadFrame, bool> match)
    {
        while (true)
        {
            var frame = await TryReadFrameAsync();
            if (frame is null || match(frame))
            {
                return frame;
            }
        }
    }

    /// <summary>h2spec's VerifyConnectionError: GOAWAY with the code (then close), or a bare close.</summary>
    public async Task<string> ExpectConnectionErrorAsync(Http2ErrorCode code)
    {
        var frame = await ReadUntilAsync(f => f.Type == Http2FrameType.GOAWAY);
        Assert.NotNull(frame); // we always send GOAWAY before closing
        Assert.Equal(code, frame!.ErrorCode);
        Assert.Null(await ReadUntilAsync(_ => false)); // then the connection closes
        return frame.GoAwayDebug;
    }

    /// <summary>h2spec's VerifyStreamError, strictly: RST_STREAM for the stream with the code.</summary>
    public async Task ExpectStreamErrorAsync(int streamId, Http2ErrorCode code)
    {
        var frame = await ReadUntilAsync(f => (f.Type == Http2FrameType.RST_STREAM && f.StreamId == streamId) || f.Type == Http2FrameType.GOAWAY);
        Assert.NotNull(frame);
        Assert.Equal(Http2FrameType.RST_STREAM, frame!.Type);
        Assert.Equal(code, frame.ErrorCode);
    }

    /// <summary>Reads a whole response on <paramref name="streamId"/>: status, headers, body, trailers.</summary>
    public async Task<TestResponse> ReadResponseAsync(int streamId)
    {
        var response = new TestResponse();
        var body = new MemoryStream();
        while (true)
        {
            var frame = await ReadFrameAsync();
            if (frame.StreamId != streamId)
            {
                continue;
            }
            switch (frame.Type)
            {
                case Http2FrameType.HEADERS:
                    var head = new ResponseHead();
                    _decoder.Decode(frame.Payload, (frame.Flags & Http2FrameFlags.END_HEADERS) != 0, head);
                    var fields = new List<(string, string)>();
                    for (int i = 0; i < head.HeaderCount; i++)
                    {
                        fields.Add((System.Text.Encoding.ASCII.GetString(head.GetName(i)), System.Text.Encoding.ASCII.GetString(head.GetValue(i))));
                    }
                    if (response.Status == 0 || (response.Status < 200 && fields.Any(f => f.Item1 == ":status")))
                    {
                        response.Status = int.Parse(fields.First(f => f.Item1 == ":status").Item2, System.Globalization.CultureInfo.InvariantCulture);
                        response.Headers = fields;
                    }
                    else
                    {
                        response.Trailers = fields;
                    }
                    break;
                case Http2FrameType.DATA:
                    body.Write(frame.Payload);
                    if (frame.Payload.Length > 0)
                    {
                        // Keep the server's windows open, like a real client.
                        await SendAsync(w =>
                        {
                            Http2FrameWriter.WriteWindowUpdate(w, 0, frame.Payload.Length);
                            Http2FrameWriter.WriteWindowUpdate(w, streamId, frame.Payload.Length);
                        });
                    }
                    break;
                case Http2FrameType.RST_STREAM:
                    response.Reset = frame.ErrorCode;
                    response.Body = body.ToArray();
                    return response;
            }
            if (frame.EndStream)
            {
                response.Body = body.ToArray();
                return response;
            }
        }
    }

    public void StopServer() => _stopping.Cancel();

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        _output.Complete();
        await _client.DisposeAsync();
        await ServerTask.WaitAsync(Timeout);
    }
}

internal sealed class TestResponse
{
    public int Status { get; set; }

    public List<(string Name, string Value)> Headers { get; set; } = [];

    public List<(string Name, string Value)> Trailers { get; set; } = [];

    public byte[] Body { get; set; } = [];

    public Http2ErrorCode? Reset { get; set; }

    public string? Header(string name) => Headers.FirstOrDefault(h => h.Name == name).Value;
}

/// <summary>
/// The application the connection tests run: "/" answers "ok", "/echo" echoes the body (and request
/// trailers as response trailers), "/wait" holds the stream until it is aborted, "/ignore-body"
/// answers without reading the body. Records what it saw.
/// </summary>
internal sealed class TestApplication : IHttpApplication
{
    public TaskCompletionSource<HttpExchange> Waiting { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource Aborted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Requests;

    public string? LastPath;
    public string? LastQuery;
    public string? LastAuthority;
    public string? LastCookie;
    public HttpVersion LastVersion;
    public BodyFraming LastFraming;

    public async ValueTask ProcessAsync(HttpExchange exchange)
    {
        Interlocked.Increment(ref Requests);
        var request = exchange.Request;
        LastPath = System.Text.Encoding.ASCII.GetString(request.PathSpan);
        LastQuery = System.Text.Encoding.ASCII.GetString(request.QuerySpan);
        LastAuthority = System.Text.Encoding.ASCII.GetString(request.AuthoritySpan);
        LastCookie = request.TryGetValue(KnownHeader.Cookie, out var cookie) ? System.Text.Encoding.ASCII.GetString(cookie) : null;
        LastVersion = request.Version;
        LastFraming = request.Framing;
        switch (LastPath)
        {
            case "/wait":
                Waiting.TrySetResult(exchange);
                try
                {
                    await Task.Delay(Http2TestClient.Timeout, exchange.Aborted);
                }
                catch (OperationCanceledException)
                {
                    Aborted.TrySetResult();
                    return;
                }
                break;
            case "/echo":
            {
                var body = new MemoryStream();
                while (true)
                {
                    var read = await exchange.ReadRequestBodyAsync();
                    foreach (var segment in read.Data)
                    {
                        body.Write(segment.Span);
                    }
                    exchange.AdvanceRequestBody();
                    if (read.IsCompleted)
                    {
                        break;
                    }
                }
                exchange.Response.StatusCode = 200;
                await exchange.StartResponseAsync(BodyFraming.Stream, -1);
                await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(body.ToArray()), flush: true);
                await exchange.CompleteResponseAsync(exchange.RequestTrailers.HeaderCount > 0 ? exchange.RequestTrailers : null);
                return;
            }
            case "/ignore-body":
                break;
            default:
                while (true)
                {
                    var read = await exchange.ReadRequestBodyAsync();
                    exchange.AdvanceRequestBody();
                    if (read.IsCompleted)
                    {
                        break;
                    }
                }
                break;
        }
        exchange.Response.StatusCode = 200;
        exchange.Response.AddHeader("content-type"u8, "text/plain"u8);
        exchange.Response.AddHeader("connection"u8, "close"u8); // must not reach an HTTP/2 client
        await exchange.StartResponseAsync(BodyFraming.ContentLength, 2);
        await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>("ok"u8.ToArray()), flush: false);
        await exchange.CompleteResponseAsync();
    }
}
