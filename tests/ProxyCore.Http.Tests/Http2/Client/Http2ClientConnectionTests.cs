using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using ProxyCore.Http.Http2;
using ProxyCore.Http.Http2.Client;
using ProxyCore.Http.Http2.Hpack;
using ProxyCore.Http.Tests.Http2.Connection;
using ProxyCore.Transport;

namespace ProxyCore.Http.Tests.Http2.Client;

/// <summary>
/// <see cref="Http2ClientConnection"/> against a scripted HTTP/2 server on an in-memory transport:
/// every frame the client sends is read and checked, every frame it gets is written by hand.
/// </summary>
public sealed class Http2ClientConnectionTests
{
    [Fact]
    public async Task Exchange_HeadSplitOverContinuationBodyAndTrailers_RoundTrip()
    {
        await using var peer = await ScriptedUpstream.StartAsync();
        var (stream, head, trailers) = peer.Rent();
        Assert.True(await peer.Client.SendHeadersAsync(stream, ScriptedUpstream.RequestHead("POST", "/items?x=1"), endStream: false, default));
        await peer.Client.SendDataAsync(stream, new ReadOnlySequence<byte>("hello"u8.ToArray()), endStream: true, default);

        var headers = await peer.ReadUntilAsync(f => f.Type == Http2FrameType.HEADERS);
        Assert.Equal(1, headers.StreamId);
        var fields = peer.Decode(headers.Payload);
        Assert.Equal([(":method", "POST"), (":scheme", "http"), (":authority", "upstream.test"), (":path", "/items?x=1")], fields.Take(4));
        var data = await peer.ReadUntilAsync(f => f.Type == Http2FrameType.DATA);
        Assert.Equal("hello", Encoding.ASCII.GetString(data.Payload));
        Assert.True(data.EndStream);

        // The response head in two frames (§6.10), a body, then trailers (§8.1).
        var block = peer.Block((":status", "200"), ("content-type", "application/grpc"), ("x-long", new string('v', 100)));
        await peer.SendAsync(w =>
        {
            WriteRawFrame(w, Http2FrameType.HEADERS, Http2FrameFlags.None, 1, block.AsSpan(0, 10));
            Http2FrameWriter.WriteContinuation(w, 1, block.AsSpan(10), endHeaders: true);
            Http2FrameWriter.WriteData(w, 1, "world"u8, endStream: false);
            Http2FrameWriter.WriteHeaders(w, 1, peer.Block(("grpc-status", "0")), endStream: true);
        });

        Assert.Equal(Http2StreamOutcome.Head, await stream.WaitForHeadAsync(default).AsTask().WaitAsync(ScriptedUpstream.Timeout));
        Assert.Equal(200, head.StatusCode);
        Assert.Equal(BodyFraming.Stream, head.Framing);
        Assert.True(head.TryGetValue("content-type"u8, out var contentType));
        Assert.Equal("application/grpc", Encoding.ASCII.GetString(contentType));
        Assert.Equal("world", Encoding.ASCII.GetString(await ReadBodyAsync(peer.Client, stream)));
        Assert.True(trailers.TryGetValue("grpc-status"u8, out var grpcStatus));
        Assert.Equal("0", Encoding.ASCII.GetString(grpcStatus));
        peer.Client.Release(stream);
        Assert.Equal(0, peer.Client.ActiveStreams);
    }

    [Fact]
    public async Task SendHeadersAndData_WhileWriterHeld_QueueThenGoOutInCallOrder()
    {
        await using var peer = await ScriptedUpstream.StartAsync();
        const int count = 8;
        var streams = new Http2ClientStream[count];
        for (int i = 0; i < count; i++)
        {
            streams[i] = peer.Rent().Stream;
        }
        var writeLock = peer.Client.WriteLock;

        // Every HEADERS waits behind the held writer (the stream's queued write, no async method).
        Assert.True(writeLock.TryEnter());
        var heads = new ValueTask<bool>[count];
        for (int i = 0; i < count; i++)
        {
            heads[i] = peer.Client.SendHeadersAsync(streams[i], ScriptedUpstream.RequestHead("POST", $"/{i}"), endStream: false, default);
        }
        Assert.All(heads, h => Assert.False(h.IsCompleted));
        Assert.Equal(1 + count, writeLock.Contenders);
        writeLock.Release();
        for (int i = 0; i < count; i++)
        {
            Assert.True(await heads[i].AsTask().WaitAsync(ScriptedUpstream.Timeout));
        }
        // §5.1.1: identifiers in the order the blocks reach the wire, which is the order of the calls.
        for (int i = 0; i < count; i++)
        {
            var frame = await peer.ReadUntilAsync(f => f.Type == Http2FrameType.HEADERS);   // past the start's WINDOW_UPDATE
            Assert.True((frame.Flags & Http2FrameFlags.END_HEADERS) != 0);
            Assert.Equal(2 * i + 1, frame.StreamId);
            Assert.Equal(2 * i + 1, streams[i].StreamId);
            Assert.Contains((":path", $"/{i}"), peer.Decode(frame.Payload));
        }

        // DATA within window queues the same way; a write cancelled while queued fails and sends nothing.
        using var cancelled = new CancellationTokenSource();
        Assert.True(writeLock.TryEnter());
        var bodies = new ValueTask[count];
        for (int i = 0; i < count; i++)
        {
            bodies[i] = peer.Client.SendDataAsync(streams[i], new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes($"body{i}")), endStream: true,
                i == 3 ? cancelled.Token : default);
        }
        Assert.All(bodies, b => Assert.False(b.IsCompleted));
        cancelled.Cancel();
        writeLock.Release();
        for (int i = 0; i < count; i++)
        {
            if (i == 3)
            {
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => bodies[i].AsTask().WaitAsync(ScriptedUpstream.Timeout));
            }
            else
            {
                await bodies[i].AsTask().WaitAsync(ScriptedUpstream.Timeout);
            }
        }
        for (int i = 0; i < count; i++)
        {
            if (i == 3)
            {
                continue;
            }
            var frame = await peer.ReadFrameAsync();
            Assert.Equal(Http2FrameType.DATA, frame.Type);   // nothing but DATA: stream 7's cancelled write sent no frame
            Assert.Equal(2 * i + 1, frame.StreamId);
            Assert.True(frame.EndStream);
            Assert.Equal($"body{i}", Encoding.ASCII.GetString(frame.Payload));
        }
        for (int i = 0; i < count; i++)
        {
            peer.Client.Release(streams[i]);
        }
        Assert.Equal(0, peer.Client.ActiveStreams);
    }

    [Fact]
    public async Task GoAway_StreamsAboveLastStreamId_RefusedOthersFinish()
    {
        await using var peer = await ScriptedUpstream.StartAsync();
        var streams = new Http2ClientStream[3];
        for (int i = 0; i < 3; i++)
        {
            (streams[i], _, _) = peer.Rent();
            Assert.True(await peer.Client.SendHeadersAsync(streams[i], ScriptedUpstream.RequestHead("GET", "/"), endStream: true, default));
        }
        Assert.Equal([1, 3, 5], streams.Select(s => s.StreamId));

        await peer.SendAsync(w => Http2FrameWriter.WriteGoAway(w, 3, Http2ErrorCode.NO_ERROR));
        Assert.Equal(Http2StreamOutcome.Refused, await streams[2].WaitForHeadAsync(default).AsTask().WaitAsync(ScriptedUpstream.Timeout));
        Assert.False(peer.Client.IsOpen);
        Assert.False(peer.Client.TryRent(new ResponseHead(), new ResponseHead(), out _));

        await peer.SendAsync(w =>
        {
            Http2FrameWriter.WriteHeaders(w, 1, peer.Block((":status", "204")), endStream: true);
            Http2FrameWriter.WriteHeaders(w, 3, peer.Block((":status", "200"), ("content-length", "0")), endStream: true);
        });
        Assert.Equal(Http2StreamOutcome.Head, await streams[0].WaitForHeadAsync(default).AsTask().WaitAsync(ScriptedUpstream.Timeout));
        Assert.Equal(Http2StreamOutcome.Head, await streams[1].WaitForHeadAsync(default).AsTask().WaitAsync(ScriptedUpstream.Timeout));
        foreach (var stream in streams)
        {
            peer.Client.Release(stream);
        }
        // Drained after GOAWAY: the client says goodbye itself.
        var goAway = await peer.ReadUntilAsync(f => f.Type == Http2FrameType.GOAWAY);
        Assert.Equal(Http2ErrorCode.NO_ERROR, goAway.ErrorCode);
    }

    [Theory]
    [InlineData(Http2ErrorCode.REFUSED_STREAM, Http2StreamOutcome.Refused)]
    [InlineData(Http2ErrorCode.INTERNAL_ERROR, Http2StreamOutcome.Reset)]
    public async Task RstStream_BeforeHead_OutcomeByCode(Http2ErrorCode code, Http2StreamOutcome expected)
    {
        await using var peer = await ScriptedUpstream.StartAsync();
        var (stream, _, _) = peer.Rent();
        Assert.True(await peer.Client.SendHeadersAsync(stream, ScriptedUpstream.RequestHead("GET", "/"), endStream: true, default));
        await peer.SendAsync(w => Http2FrameWriter.WriteRstStream(w, 1, code));
        Assert.Equal(expected, await stream.WaitForHeadAsync(default).AsTask().WaitAsync(ScriptedUpstream.Timeout));
        peer.Client.Release(stream);
        Assert.True(peer.Client.IsOpen); // a stream error leaves the connection alone
    }

    [Fact]
    public async Task Release_OpenStream_SendsRstStreamCancel()
    {
        await using var peer = await ScriptedUpstream.StartAsync();
        var (stream, _, _) = peer.Rent();
        Assert.True(await peer.Client.SendHeadersAsync(stream, ScriptedUpstream.RequestHead("GET", "/"), endStream: true, default));
        peer.Client.Release(stream, Http2ErrorCode.CANCEL);
        var reset = await peer.ReadUntilAsync(f => f.Type == Http2FrameType.RST_STREAM);
        Assert.Equal((1, Http2ErrorCode.CANCEL), (reset.StreamId, reset.ErrorCode));
    }

    [Theory]
    [InlineData(1_000, 5_000, 1_000)]        // the stream window binds
    [InlineData(1_000_000, 70_000, 65_535)]  // the connection window binds
    public async Task SendData_PeerWindows_NeverExceeded(int peerInitialWindow, int bodySize, int firstBurst)
    {
        await using var peer = await ScriptedUpstream.StartAsync(settings: [new(Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE, (uint)peerInitialWindow)]);
        var (stream, _, _) = peer.Rent();
        Assert.True(await peer.Client.SendHeadersAsync(stream, ScriptedUpstream.RequestHead("POST", "/"), endStream: false, default));
        var send = peer.Client.SendDataAsync(stream, new ReadOnlySequence<byte>(new byte[bodySize]), endStream: true, default).AsTask();

        int received = 0;
        while (received < firstBurst)
        {
            var frame = await peer.ReadUntilAsync(f => f.Type == Http2FrameType.DATA);
            received += frame.Payload.Length;
        }
        Assert.Equal(firstBurst, received);
        // Anything past the window would already be on the wire: a PING round trip proves nothing followed.
        await peer.SendAsync(w => Http2FrameWriter.WritePing(w, 42, ack: false));
        var next = await peer.ReadUntilAsync(f => f.Type is Http2FrameType.DATA or Http2FrameType.PING);
        Assert.Equal(Http2FrameType.PING, next.Type);
        Assert.False(send.IsCompleted);

        await peer.SendAsync(w =>
        {
            Http2FrameWriter.WriteWindowUpdate(w, 0, bodySize);
            Http2FrameWriter.WriteWindowUpdate(w, 1, bodySize);
        });
        bool ended = false;
        while (!ended)
        {
            var frame = await peer.ReadUntilAsync(f => f.Type == Http2FrameType.DATA);
            received += frame.Payload.Length;
            ended = frame.EndStream;
        }
        Assert.Equal(bodySize, received);
        await send.WaitAsync(ScriptedUpstream.Timeout);
    }

    [Fact]
    public async Task ReceiveWindow_GivenBackOnlyAsTheRelayConsumes()
    {
        const int Sent = 600_000; // over half the 1 MiB stream window
        await using var peer = await ScriptedUpstream.StartAsync();
        var (stream, _, _) = peer.Rent();
        Assert.True(await peer.Client.SendHeadersAsync(stream, ScriptedUpstream.RequestHead("GET", "/"), endStream: true, default));
        await peer.SendAsync(w =>
        {
            Http2FrameWriter.WriteHeaders(w, 1, peer.Block((":status", "200")), endStream: false);
            Http2FrameWriter.WriteData(w, 1, new byte[Sent], endStream: false);
            Http2FrameWriter.WritePing(w, 7, ack: false);
        });
        Assert.Equal(Http2StreamOutcome.Head, await stream.WaitForHeadAsync(default).AsTask().WaitAsync(ScriptedUpstream.Timeout));
        // Nothing consumed yet: no WINDOW_UPDATE for the stream may come before the PING's answer.
        var beforeConsume = await peer.ReadUntilAsync(f => f.Type == Http2FrameType.PING || (f.Type == Http2FrameType.WINDOW_UPDATE && f.StreamId == 1));
        Assert.Equal(Http2FrameType.PING, beforeConsume.Type);

        int consumed = 0;
        while (consumed < Sent)
        {
            var read = await stream.Body.ReadAsync().AsTask().WaitAsync(ScriptedUpstream.Timeout);
            int n = (int)read.Buffer.Length;
            stream.Body.AdvanceTo(read.Buffer.End);
            await peer.Client.ConsumedAsync(stream, n);
            consumed += n;
        }
        var update = await peer.ReadUntilAsync(f => f.Type == Http2FrameType.WINDOW_UPDATE && f.StreamId == 1);
        Assert.InRange(update.WindowIncrement, 1024 * 1024 / 2, Sent);
        peer.Client.Release(stream);
    }

    [Fact]
    public async Task ReceiveWindow_PeerOverruns_StreamResetWithFlowControlError()
    {
        await using var peer = await ScriptedUpstream.StartAsync(new Http2ClientOptions { StreamWindowSize = 65_535 });
        var (stream, _, _) = peer.Rent();
        Assert.True(await peer.Client.SendHeadersAsync(stream, ScriptedUpstream.RequestHead("GET", "/"), endStream: true, default));
        await peer.SendAsync(w =>
        {
            Http2FrameWriter.WriteHeaders(w, 1, peer.Block((":status", "200")), endStream: false);
            Http2FrameWriter.WriteData(w, 1, new byte[65_535], endStream: false);
            Http2FrameWriter.WriteData(w, 1, new byte[10], endStream: false);
        });
        var reset = await peer.ReadUntilAsync(f => f.Type == Http2FrameType.RST_STREAM);
        Assert.Equal((1, Http2ErrorCode.FLOW_CONTROL_ERROR), (reset.StreamId, reset.ErrorCode));
        await Assert.ThrowsAnyAsync<IOException>(async () => await ReadBodyAsync(peer.Client, stream));
        peer.Client.Release(stream);
    }

    [Theory]
    [InlineData("connection", "close")]
    [InlineData("transfer-encoding", "chunked")]
    [InlineData(":path", "/late-pseudo")]
    public async Task MalformedResponseHead_StreamResetAsProtocolError(string name, string value)
    {
        await using var peer = await ScriptedUpstream.StartAsync();
        var (stream, _, _) = peer.Rent();
        Assert.True(await peer.Client.SendHeadersAsync(stream, ScriptedUpstream.RequestHead("GET", "/"), endStream: true, default));
        await peer.SendAsync(w => Http2FrameWriter.WriteHeaders(w, 1, peer.Block((":status", "200"), (name, value)), endStream: true));
        Assert.Equal(Http2StreamOutcome.ProtocolError, await stream.WaitForHeadAsync(default).AsTask().WaitAsync(ScriptedUpstream.Timeout));
        var reset = await peer.ReadUntilAsync(f => f.Type == Http2FrameType.RST_STREAM);
        Assert.Equal(Http2ErrorCode.PROTOCOL_ERROR, reset.ErrorCode);
        peer.Client.Release(stream);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Ping_SilentConnection_ProbedAndClosedOnlyWhenUnanswered(bool answer)
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var options = new Http2ClientOptions { PingInterval = TimeSpan.FromSeconds(10), PingTimeout = TimeSpan.FromSeconds(5), IdleTimeout = Timeout.InfiniteTimeSpan };
        await using var peer = await ScriptedUpstream.StartAsync(options, time: time);
        var (stream, _, _) = peer.Rent(); // a stream in flight: health, not idleness, is what closes
        Assert.True(await peer.Client.SendHeadersAsync(stream, ScriptedUpstream.RequestHead("GET", "/"), endStream: true, default));

        time.Advance(TimeSpan.FromSeconds(11));
        peer.Client.OnTimer();
        var ping = await peer.ReadUntilAsync(f => f.Type == Http2FrameType.PING);
        Assert.False(ping.IsAck);
        if (answer)
        {
            await peer.SendAsync(w => Http2FrameWriter.WritePing(w, BinaryPrimitives.ReadUInt64BigEndian(ping.Payload), ack: true));
            await peer.SendAsync(w => Http2FrameWriter.WritePing(w, 1, ack: false)); // a round trip: our ACK was read
            await peer.ReadUntilAsync(f => f.Type == Http2FrameType.PING && f.IsAck);
        }
        time.Advance(TimeSpan.FromSeconds(6));
        peer.Client.OnTimer();
        if (answer)
        {
            Assert.True(peer.Client.IsOpen);
            peer.Client.Release(stream);
        }
        else
        {
            Assert.Equal(Http2StreamOutcome.ConnectionClosed, await stream.WaitForHeadAsync(default).AsTask().WaitAsync(ScriptedUpstream.Timeout));
            await peer.Client.Completion!.WaitAsync(ScriptedUpstream.Timeout);
            Assert.False(peer.Client.IsOpen);
            peer.Client.Release(stream);
        }
    }

    [Fact]
    public async Task IdleTimeout_NoStreams_SendsGoAwayAndCloses()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UnixEpoch);
        await using var peer = await ScriptedUpstream.StartAsync(new Http2ClientOptions { IdleTimeout = TimeSpan.FromSeconds(30), PingInterval = Timeout.InfiniteTimeSpan }, time: time);
        time.Advance(TimeSpan.FromSeconds(31));
        peer.Client.OnTimer();
        var goAway = await peer.ReadUntilAsync(f => f.Type == Http2FrameType.GOAWAY);
        Assert.Equal(Http2ErrorCode.NO_ERROR, goAway.ErrorCode);
        Assert.False(peer.Client.IsOpen);
    }

    [Fact]
    public async Task Start_PeerIsNotHttp2_FailsFast()
    {
        var transport = new InMemoryTransport();
        var client = await transport.ConnectAsync(transport.EndPoint);
        var server = (await transport.AcceptAsync())!;
        var connection = new Http2ClientConnection(client, Http2ClientOptions.Default);
        var start = connection.StartAsync(TimeSpan.FromSeconds(10), default);
        // An HTTP/1.1 server answers the preface with a 400 and closes.
        await server.Transport.Output.WriteAsync("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"u8.ToArray());
        await server.Transport.Output.CompleteAsync();
        await Assert.ThrowsAsync<IOException>(() => start.WaitAsync(ScriptedUpstream.Timeout));
        await server.DisposeAsync();
    }

    private static async Task<byte[]> ReadBodyAsync(Http2ClientConnection connection, Http2ClientStream stream)
    {
        var body = new MemoryStream();
        while (true)
        {
            var read = await stream.Body.ReadAsync().AsTask().WaitAsync(ScriptedUpstream.Timeout);
            foreach (var segment in read.Buffer)
            {
                body.Write(segment.Span);
            }
            int n = (int)read.Buffer.Length;
            stream.Body.AdvanceTo(read.Buffer.End);
            await connection.ConsumedAsync(stream, n);
            if (read.IsCompleted)
            {
                return body.ToArray();
            }
        }
    }

    private static void WriteRawFrame(IBufferWriter<byte> output, Http2FrameType type, Http2FrameFlags flags, int streamId, ReadOnlySpan<byte> payload)
    {
        var span = output.GetSpan(Http2Frame.HeaderLength + payload.Length);
        Http2FrameWriter.WriteFrameHeader(span, payload.Length, type, flags, streamId);
        payload.CopyTo(span[Http2Frame.HeaderLength..]);
        output.Advance(Http2Frame.HeaderLength + payload.Length);
    }
}

/// <summary>The server end of a client connection under test: reads the client's frames, writes its own.</summary>
internal sealed class ScriptedUpstream : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly ConnectionContext _server;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly HpackDecoder _decoder = new();

    private ScriptedUpstream(ConnectionContext server, Http2ClientConnection client)
    {
        _server = server;
        _input = server.Transport.Input;
        _output = server.Transport.Output;
        Client = client;
    }

    public Http2ClientConnection Client { get; }

    public static async Task<ScriptedUpstream> StartAsync(Http2ClientOptions? options = null, Http2Setting[]? settings = null, TimeProvider? time = null)
    {
        var transport = new InMemoryTransport();
        var clientTransport = await transport.ConnectAsync(transport.EndPoint);
        var server = (await transport.AcceptAsync())!;
        var client = new Http2ClientConnection(clientTransport, options ?? Http2ClientOptions.Default, time);
        var peer = new ScriptedUpstream(server, client);
        var start = client.StartAsync(TimeSpan.FromSeconds(10), default);

        // §3.4: the client preface, then its SETTINGS.
        var preface = new byte[Http2Preface.ClientPreface.Length];
        int have = 0;
        while (have < preface.Length)
        {
            var read = await peer._input.ReadAsync().AsTask().WaitAsync(Timeout);
            var take = read.Buffer.Slice(0, Math.Min(read.Buffer.Length, preface.Length - have));
            take.CopyTo(preface.AsSpan(have));
            have += (int)take.Length;
            peer._input.AdvanceTo(take.End);
        }
        Assert.True(preface.AsSpan().SequenceEqual(Http2Preface.ClientPreface));
        var clientSettings = await peer.ReadFrameAsync();
        Assert.Equal(Http2FrameType.SETTINGS, clientSettings.Type);
        await peer.SendAsync(w =>
        {
            Http2FrameWriter.WriteSettings(w, settings ?? []);
            Http2FrameWriter.WriteSettingsAck(w);
        });
        await start.WaitAsync(Timeout);
        return peer;
    }

    public (Http2ClientStream Stream, ResponseHead Head, ResponseHead Trailers) Rent()
    {
        var head = new ResponseHead();
        var trailers = new ResponseHead();
        Assert.True(Client.TryRent(head, trailers, out var stream));
        return (stream!, head, trailers);
    }

    public static HttpHead RequestHead(string method, string path)
    {
        var head = new ResponseHead();
        head.AddHeader(":method"u8, Encoding.ASCII.GetBytes(method));
        head.AddHeader(":scheme"u8, "http"u8);
        head.AddHeader(":authority"u8, "upstream.test"u8);
        head.AddHeader(":path"u8, Encoding.ASCII.GetBytes(path));
        head.AddHeader("user-agent"u8, "test"u8);
        return head;
    }

    /// <summary>An HPACK block of these fields as literals without indexing (so anything can be sent, malformed included).</summary>
    public byte[] Block(params (string Name, string Value)[] fields)
    {
        var buffer = new ArrayBufferWriter<byte>();
        foreach (var (name, value) in fields)
        {
            var n = Encoding.ASCII.GetBytes(name);
            var v = Encoding.ASCII.GetBytes(value);
            Assert.True(n.Length < 127 && v.Length < 127);
            buffer.Write((ReadOnlySpan<byte>)[0x00, (byte)n.Length]);
            buffer.Write(n);
            buffer.Write((ReadOnlySpan<byte>)[(byte)v.Length]);
            buffer.Write(v);
        }
        return buffer.WrittenSpan.ToArray();
    }

    public List<(string Name, string Value)> Decode(byte[] block)
    {
        var head = new ResponseHead();
        var handler = new HpackHeaderListHandler();
        _decoder.Decode(new ReadOnlySequence<byte>(block), true, head, ref handler);
        var fields = new List<(string, string)>();
        for (int i = 0; i < head.HeaderCount; i++)
        {
            fields.Add((Encoding.ASCII.GetString(head.GetName(i)), Encoding.ASCII.GetString(head.GetValue(i))));
        }
        return fields;
    }

    public async Task SendAsync(Action<IBufferWriter<byte>> write)
    {
        write(_output);
        await _output.FlushAsync().AsTask().WaitAsync(Timeout);
    }

    public async Task<ReadFrame> ReadFrameAsync()
    {
        using var cts = new CancellationTokenSource(Timeout);
        while (true)
        {
            var result = await _input.ReadAsync(cts.Token);
            var buffer = result.Buffer;
            var status = Http2FrameReader.TryReadFrame(buffer, Http2Frame.MaxAllowedFrameSize, out var frame, out var consumed, out _);
            if (status is Http2ReadStatus.Frame or Http2ReadStatus.UnknownFrame)
            {
                var read = new ReadFrame(frame.Type, frame.Flags, frame.StreamId, frame.Payload.ToArray());
                _input.AdvanceTo(consumed);
                return read;
            }
            Assert.NotEqual(Http2ReadStatus.Error, status);
            if (result.IsCompleted)
            {
                throw new IOException("The client closed the connection.");
            }
            _input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>Reads frames until one matches (SETTINGS ACKs, WINDOW_UPDATEs and the like are skipped).</summary>
    public async Task<ReadFrame> ReadUntilAsync(Func<ReadFrame, bool> match)
    {
        while (true)
        {
            var frame = await ReadFrameAsync();
            if (match(frame))
            {
                return frame;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        Client.Abort();
        if (Client.Completion is { } completion)
        {
            await completion.WaitAsync(Timeout);
        }
        await _server.DisposeAsync();
    }
}
