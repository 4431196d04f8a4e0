using System.Buffers;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using ProxyCore.Http.Http2;
using ProxyCore.Http.Tests.Http1.Corpus;

namespace ProxyCore.Http.Tests.Http2.Connection;

/// <summary>
/// h2spec 2.6.0 server cases of the <c>http2</c> suite (corpus h2spec-cases.md), one test per case id,
/// each marked with <see cref="CaseAttribute"/> and named <c>Http2Spec_&lt;section&gt;_&lt;n&gt;_...</c>;
/// <see cref="Http2Spec_Coverage_EveryHttp2CaseOnce"/> fails when a case of the corpus has no test.
/// The frames are the ones h2spec sends (spec source at the corpus commit). Checks are stricter than
/// h2spec's verifiers: a stream error must be RST_STREAM with the code (h2spec also takes GOAWAY or a
/// close), a connection error GOAWAY with the code and then the close (h2spec also takes a bare close).
/// </summary>
public sealed class Http2SpecTests
{
    /// <summary>The h2spec case id (<c>http2/&lt;section&gt;/&lt;n&gt;</c>) a test implements.</summary>
    [AttributeUsage(AttributeTargets.Method)]
    private sealed class CaseAttribute(string id) : Attribute
    {
        public string Id { get; } = id;
    }

    private static Task<Http2TestClient> StartAsync() => Http2TestClient.StartAsync(new TestApplication());

    private static void RawFrame(Http2TestClient client, Http2FrameType type, Http2FrameFlags flags, int streamId, ReadOnlySpan<byte> payload)
    {
        Span<byte> header = stackalloc byte[Http2Frame.HeaderLength];
        Http2FrameWriter.WriteFrameHeader(header, payload.Length, type, flags, streamId);
        client.WriteRaw(header);
        client.WriteRaw(payload);
    }

    private static readonly byte[] s_zeroPing = new byte[8];
    private static readonly byte[] s_h2specPing = "h2spec\0\0"u8.ToArray();

    private static void Ping(Http2TestClient client, byte[] data, bool ack = false) =>
        RawFrame(client, Http2FrameType.PING, ack ? Http2FrameFlags.ACK : 0, 0, data);

    /// <summary>VerifyPingFrameWithAck: the next PING ACK carries exactly <paramref name="data"/> (no GOAWAY before it).</summary>
    private static async Task ExpectPingAckAsync(Http2TestClient client, byte[] data)
    {
        var frame = await client.ReadUntilAsync(f => (f.Type == Http2FrameType.PING && f.IsAck) || f.Type == Http2FrameType.GOAWAY);
        Assert.NotNull(frame);
        Assert.Equal(Http2FrameType.PING, frame!.Type);
        Assert.Equal(data, frame.Payload);
    }

    private static async Task PingRoundTripAsync(Http2TestClient client)
    {
        Ping(client, s_zeroPing);
        await client.FlushAsync();
        await ExpectPingAckAsync(client, s_zeroPing);
    }

    private static async Task ExpectSettingsAckAsync(Http2TestClient client)
    {
        var frame = await client.ReadUntilAsync(f => f.Type is Http2FrameType.SETTINGS or Http2FrameType.GOAWAY);
        Assert.NotNull(frame);
        Assert.Equal(Http2FrameType.SETTINGS, frame!.Type);
        Assert.True(frame.IsAck);
    }

    private static Task SendSettingsAsync(Http2TestClient client, params Http2Setting[] settings) =>
        client.SendAsync(w => Http2FrameWriter.WriteSettings(w, settings));

    private static Task SendInitialWindowAsync(Http2TestClient client, params uint[] values) =>
        SendSettingsAsync(client, [.. values.Select(v => new Http2Setting(Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE, v))]);

    /// <summary>The next DATA frame on <paramref name="streamId"/> (the response's HEADERS are skipped).</summary>
    private static async Task<ReadFrame> ExpectDataAsync(Http2TestClient client, int streamId)
    {
        var frame = await client.ReadUntilAsync(f => (f.Type == Http2FrameType.DATA && f.StreamId == streamId) || f.Type is Http2FrameType.GOAWAY or Http2FrameType.RST_STREAM);
        Assert.NotNull(frame);
        Assert.Equal(Http2FrameType.DATA, frame!.Type);
        return frame;
    }

    /// <summary>VerifyHeadersFrame: the request was served.</summary>
    private static async Task ExpectServedAsync(Http2TestClient client, int streamId) =>
        Assert.Equal(200, (await client.ReadResponseAsync(streamId)).Status);

    /// <summary>h2spec's DummyHeaders: <c>x-dummyN</c> fields of 4,000 octets each (its default --max-header-length).</summary>
    private static byte[] DummyBlock(int count)
    {
        var fields = new (string, string)[count];
        for (int i = 0; i < count; i++)
        {
            fields[i] = ($"x-dummy{i}", new string('x', 4000));
        }
        return Literals(fields);
    }

    /// <summary>RFC 7541 §6.2.2 literals without indexing, new names, raw strings, any length (the dynamic table is untouched).</summary>
    private static byte[] Literals(params (string Name, string Value)[] fields)
    {
        var buffer = new ArrayBufferWriter<byte>();
        foreach (var (name, value) in fields)
        {
            buffer.Write((ReadOnlySpan<byte>)[0x00]);
            WriteString(buffer, Encoding.ASCII.GetBytes(name));
            WriteString(buffer, Encoding.ASCII.GetBytes(value));
        }
        return buffer.WrittenSpan.ToArray();

        static void WriteString(ArrayBufferWriter<byte> buffer, byte[] s)
        {
            // §5.1 integer with a 7-bit prefix (H bit clear), then the octets.
            int n = s.Length;
            if (n < 127)
            {
                buffer.Write((ReadOnlySpan<byte>)[(byte)n]);
            }
            else
            {
                buffer.Write((ReadOnlySpan<byte>)[127]);
                n -= 127;
                while (n >= 128)
                {
                    buffer.Write((ReadOnlySpan<byte>)[(byte)((n & 0x7f) | 0x80)]);
                    n >>= 7;
                }
                buffer.Write((ReadOnlySpan<byte>)[(byte)n]);
            }
            buffer.Write(s);
        }
    }

    // ---- coverage: every http2/* case of the corpus has exactly one test here ----

    [Fact]
    public void Http2Spec_Coverage_EveryHttp2CaseOnce()
    {
        var corpus = File.ReadAllText(CorpusFiles.PathOf("h2spec-cases.md"));
        var listed = Regex.Matches(corpus, @"^- \*\*(http2/[0-9.]+/[0-9]+)\*\*", RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToList();
        // The corpus says "http2 95": a parse that finds nothing must not pass as "nothing to cover".
        var count = Regex.Match(corpus, @"\bhttp2 (\d+)\b");
        Assert.True(count.Success);
        Assert.Equal(int.Parse(count.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), listed.Count);
        Assert.Equal(listed.Count, listed.Distinct().Count());

        var tests = typeof(Http2SpecTests).GetMethods(BindingFlags.Public | BindingFlags.Instance)
            .Select(m => (Method: m, Case: m.GetCustomAttribute<CaseAttribute>()))
            .Where(t => t.Case is not null)
            .ToList();
        foreach (var (method, @case) in tests)
        {
            Assert.True(method.GetCustomAttribute<FactAttribute>() is not null, $"{method.Name} is marked {@case!.Id} but is no test");
            var prefix = "Http2Spec_" + @case!.Id["http2/".Length..].Replace('.', '_').Replace('/', '_') + "_";
            Assert.True(method.Name.StartsWith(prefix, StringComparison.Ordinal), $"{method.Name} is marked {@case.Id}: its name must start with {prefix}");
        }
        var implemented = tests.Select(t => t.Case!.Id).ToList();
        var duplicated = implemented.GroupBy(id => id).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(duplicated.Count == 0, "more than one test for " + string.Join(", ", duplicated));
        var missing = listed.Except(implemented).ToList();
        Assert.True(missing.Count == 0, "no test for " + string.Join(", ", missing));
        var unknown = implemented.Except(listed).ToList();
        Assert.True(unknown.Count == 0, "not in the corpus: " + string.Join(", ", unknown));
    }

    // ---- http2/3.5 HTTP/2 Connection Preface ----

    [Fact, Case("http2/3.5/1")]
    public async Task Http2Spec_3_5_1_ClientPreface_ServerSettingsFirst()
    {
        await using var client = await Http2TestClient.StartAsync(new TestApplication(), handshake: false);
        client.WritePreface();
        client.Write(w => Http2FrameWriter.WriteSettings(w, [new(Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE, 65_535)]));
        await client.FlushAsync();
        var first = await client.ReadFrameAsync();
        Assert.Equal(Http2FrameType.SETTINGS, first.Type);
        Assert.False(first.IsAck);
    }

    [Fact, Case("http2/3.5/2")]
    public async Task Http2Spec_3_5_2_InvalidPreface_ProtocolError()
    {
        await using var client = await Http2TestClient.StartAsync(new TestApplication(), handshake: false);
        client.WriteRaw("INVALID CONNECTION PREFACE\r\n\r\n"u8);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    // ---- http2/4.1 Frame Format ----

    [Fact, Case("http2/4.1/1")]
    public async Task Http2Spec_4_1_1_UnknownFrameType_Ignored()
    {
        await using var client = await StartAsync();
        RawFrame(client, (Http2FrameType)0x16, 0, 0, new byte[8]);
        await PingRoundTripAsync(client);
    }

    [Fact, Case("http2/4.1/2")]
    public async Task Http2Spec_4_1_2_UndefinedFlags_Ignored()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.PING, (Http2FrameFlags)0x16, 0, s_h2specPing); // 0x16: no ACK among them
        await client.FlushAsync();
        await ExpectPingAckAsync(client, s_h2specPing);
    }

    [Fact, Case("http2/4.1/3")]
    public async Task Http2Spec_4_1_3_ReservedBitSet_Ignored()
    {
        await using var client = await StartAsync();
        client.WriteRaw([0, 0, 8, (byte)Http2FrameType.PING, 0x16, 0x80, 0, 0, 0]); // stream 0 with the R bit
        client.WriteRaw(s_h2specPing);
        await client.FlushAsync();
        await ExpectPingAckAsync(client, s_h2specPing);
    }

    // ---- http2/4.2 Frame Size ----

    [Fact, Case("http2/4.2/1")]
    public async Task Http2Spec_4_2_1_DataOfMaxFrameSize_Served()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1, "POST", "/", endStream: false);
        int max = (int)client.ServerSettings[Http2SettingsParameter.SETTINGS_MAX_FRAME_SIZE];
        Assert.Equal(16_384, max);
        await client.SendAsync(w => Http2FrameWriter.WriteData(w, 1, new byte[max], endStream: true));
        await ExpectServedAsync(client, 1);
    }

    [Fact, Case("http2/4.2/2")]
    public async Task Http2Spec_4_2_2_DataLargerThanMaxFrameSize_FrameSizeError()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1, "POST", "/", endStream: false);
        RawFrame(client, Http2FrameType.DATA, Http2FrameFlags.END_STREAM, 1, new byte[16_385]);
        await client.FlushAsync();
        // A stream error §5.4.1 lets us treat as a connection error: we never read 16 MiB we refused.
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.FRAME_SIZE_ERROR);
    }

    [Fact, Case("http2/4.2/3")]
    public async Task Http2Spec_4_2_3_HeadersLargerThanMaxFrameSize_FrameSizeError()
    {
        await using var client = await StartAsync();
        var block = client.RequestBlock().Concat(DummyBlock(5)).ToArray();
        Assert.True(block.Length > 16_384);
        RawFrame(client, Http2FrameType.HEADERS, Http2FrameFlags.END_STREAM | Http2FrameFlags.END_HEADERS, 1, block);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.FRAME_SIZE_ERROR);
    }

    // ---- http2/4.3 Header Compression and Decompression ----

    [Fact, Case("http2/4.3/1")]
    public async Task Http2Spec_4_3_1_InvalidHeaderBlock_CompressionError()
    {
        await using var client = await StartAsync();
        // A literal with incremental indexing (0x40) cut off before its name.
        client.WriteRaw([0, 0, 1, (byte)Http2FrameType.HEADERS, 0x05, 0, 0, 0, 1, 0x40]);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.COMPRESSION_ERROR);
    }

    [Fact, Case("http2/4.3/2")]
    public async Task Http2Spec_4_3_2_PriorityInsideHeaderBlock_ProtocolError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.HEADERS, 0, 1, client.RequestBlock());
        client.Write(w => Http2FrameWriter.WritePriority(w, 1, new Http2Priority(0, false, 255)));
        client.Write(w => Http2FrameWriter.WriteContinuation(w, 1, DummyBlock(1), endHeaders: true));
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/4.3/3")]
    public async Task Http2Spec_4_3_3_HeadersForAnotherStreamInsideBlock_ProtocolError()
    {
        await using var client = await StartAsync();
        var block = client.RequestBlock();
        RawFrame(client, Http2FrameType.HEADERS, 0, 1, block);
        RawFrame(client, Http2FrameType.HEADERS, Http2FrameFlags.END_STREAM | Http2FrameFlags.END_HEADERS, 3, block);
        client.Write(w => Http2FrameWriter.WriteContinuation(w, 1, DummyBlock(1), endHeaders: true));
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    // ---- http2/5.1 Stream States ----

    [Fact, Case("http2/5.1/1")]
    public async Task Http2Spec_5_1_1_IdleData_ProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WriteData(w, 1, "test"u8, endStream: true));
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/5.1/2")]
    public async Task Http2Spec_5_1_2_IdleRstStream_ProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WriteRstStream(w, 1, Http2ErrorCode.CANCEL));
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/5.1/3")]
    public async Task Http2Spec_5_1_3_IdleWindowUpdate_ProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WriteWindowUpdate(w, 1, 100));
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/5.1/4")]
    public async Task Http2Spec_5_1_4_IdleContinuation_ProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WriteContinuation(w, 1, client.RequestBlock(), endHeaders: true));
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    // h2spec opens these streams with "/" and sends at once; "/wait" holds the response, so the stream
    // is surely half-closed (remote) and not already closed when the frame arrives.

    [Fact, Case("http2/5.1/5")]
    public async Task Http2Spec_5_1_5_HalfClosedRemoteData_StreamClosed()
    {
        var app = new TestApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        await client.SendRequestAsync(1, path: "/wait");
        await app.Waiting.Task.WaitAsync(Http2TestClient.Timeout);
        await client.SendAsync(w => Http2FrameWriter.WriteData(w, 1, "test"u8, endStream: true));
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.STREAM_CLOSED);
    }

    [Fact, Case("http2/5.1/6")]
    public async Task Http2Spec_5_1_6_HalfClosedRemoteHeaders_StreamClosed()
    {
        var app = new TestApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        await client.SendRequestAsync(1, path: "/wait");
        await app.Waiting.Task.WaitAsync(Http2TestClient.Timeout);
        await client.SendRequestAsync(1, path: "/wait");
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.STREAM_CLOSED);
    }

    [Fact, Case("http2/5.1/7")]
    public async Task Http2Spec_5_1_7_HalfClosedRemoteContinuation_ProtocolError()
    {
        await using var client = await StartAsync();
        var block = client.RequestBlock();
        client.Write(w => Http2FrameWriter.WriteHeaders(w, 1, block, endStream: true));
        client.Write(w => Http2FrameWriter.WriteContinuation(w, 1, block, endHeaders: true));
        await client.FlushAsync();
        // §6.10: a CONTINUATION after END_HEADERS is a connection error whatever the stream's state.
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/5.1/8")]
    public async Task Http2Spec_5_1_8_DataAfterClientRst_StreamClosed()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1, "POST", "/", endStream: false);
        client.Write(w => Http2FrameWriter.WriteRstStream(w, 1, Http2ErrorCode.CANCEL));
        client.Write(w => Http2FrameWriter.WriteData(w, 1, "test"u8, endStream: true));
        await client.FlushAsync();
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.STREAM_CLOSED);
    }

    [Fact, Case("http2/5.1/9")]
    public async Task Http2Spec_5_1_9_HeadersAfterClientRst_StreamClosed()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1, "POST", "/", endStream: false);
        client.Write(w => Http2FrameWriter.WriteRstStream(w, 1, Http2ErrorCode.CANCEL));
        var block = client.RequestBlock();
        client.Write(w => Http2FrameWriter.WriteHeaders(w, 1, block, endStream: true));
        await client.FlushAsync();
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.STREAM_CLOSED);
    }

    /// <summary>
    /// 5.1/9 once the reset stream's task has (in practice) let go, so the stream is only remembered
    /// as reset by the client: the answer must not change (it was GOAWAY STREAM_CLOSED). Should the
    /// task still hold it, the other path answers the same, so the test cannot flake.
    /// </summary>
    [Fact]
    public async Task HeadersAfterClientRst_StreamGone_StreamClosedStreamError()
    {
        var app = new TestApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        await client.SendRequestAsync(1, path: "/wait");
        await app.Waiting.Task.WaitAsync(Http2TestClient.Timeout);
        await client.SendAsync(w => Http2FrameWriter.WriteRstStream(w, 1, Http2ErrorCode.CANCEL));
        await app.Aborted.Task.WaitAsync(Http2TestClient.Timeout);
        await PingRoundTripAsync(client); // a round trip for the stream's task to finish
        await client.SendRequestAsync(1);
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.STREAM_CLOSED);
        await client.SendRequestAsync(3);
        await ExpectServedAsync(client, 3);
    }

    /// <summary>§5.1: HEADERS that crossed our RST_STREAM are decoded (HPACK stays in step) and ignored.</summary>
    [Fact]
    public async Task HeadersAfterOurRst_Ignored()
    {
        await using var client = await StartAsync();
        await client.SendHeadersAsync(1, client.Block((":method", "GET")), endStream: true); // malformed: we reset it
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.PROTOCOL_ERROR);
        await client.SendRequestAsync(1);
        Ping(client, s_h2specPing);
        await client.FlushAsync();
        var frame = await client.ReadFrameAsync();
        Assert.Equal(Http2FrameType.PING, frame.Type); // no RST_STREAM, no GOAWAY before it
        await client.SendRequestAsync(3);
        await ExpectServedAsync(client, 3);
    }

    /// <summary>Ignored, but not free: each such block draws on the control-frame budget.</summary>
    [Fact]
    public async Task HeadersAfterOurRst_Flood_EnhanceYourCalm()
    {
        await using var client = await Http2TestClient.StartAsync(new TestApplication(), new Http2ConnectionOptions { MaxControlFrames = 20 });
        await client.SendHeadersAsync(1, client.Block((":method", "GET")), endStream: true);
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.PROTOCOL_ERROR);
        var block = client.RequestBlock();
        for (int i = 0; i < 30; i++)
        {
            client.Write(w => Http2FrameWriter.WriteHeaders(w, 1, block, endStream: true));
        }
        await client.FlushAsync();
        Assert.StartsWith("control-frame-flood:", await client.ExpectConnectionErrorAsync(Http2ErrorCode.ENHANCE_YOUR_CALM));
    }

    [Fact, Case("http2/5.1/10")]
    public async Task Http2Spec_5_1_10_ContinuationAfterClientRst_ProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1, "POST", "/", endStream: false);
        client.Write(w => Http2FrameWriter.WriteRstStream(w, 1, Http2ErrorCode.CANCEL));
        client.Write(w => Http2FrameWriter.WriteContinuation(w, 1, DummyBlock(1), endHeaders: true));
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/5.1/11")]
    public async Task Http2Spec_5_1_11_ClosedData_StreamClosed()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1);
        await client.ReadResponseAsync(1);
        await client.SendAsync(w => Http2FrameWriter.WriteData(w, 1, "test"u8, endStream: true));
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.STREAM_CLOSED);
    }

    [Fact, Case("http2/5.1/12")]
    public async Task Http2Spec_5_1_12_ClosedHeaders_StreamClosedConnectionError()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1);
        await client.ReadResponseAsync(1);
        await client.SendRequestAsync(1);
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.STREAM_CLOSED);
    }

    [Fact, Case("http2/5.1/13")]
    public async Task Http2Spec_5_1_13_ClosedContinuation_ProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1);
        await client.ReadResponseAsync(1);
        await client.SendAsync(w => Http2FrameWriter.WriteContinuation(w, 1, DummyBlock(1), endHeaders: true));
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    // ---- http2/5.1.1 Stream Identifiers ----

    [Fact, Case("http2/5.1.1/1")]
    public async Task Http2Spec_5_1_1_1_EvenStreamId_ProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(2);
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/5.1.1/2")]
    public async Task Http2Spec_5_1_1_2_SmallerStreamId_ProtocolError()
    {
        await using var client = await StartAsync();
        var block = client.RequestBlock();
        client.Write(w => Http2FrameWriter.WriteHeaders(w, 5, block, endStream: true));
        client.Write(w => Http2FrameWriter.WriteHeaders(w, 3, block, endStream: true));
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    // ---- http2/5.1.2 Stream Concurrency ----

    [Fact, Case("http2/5.1.2/1")]
    public async Task Http2Spec_5_1_2_1_OverConcurrentStreamLimit_RefusedStream()
    {
        await using var client = await StartAsync();
        int max = (int)client.ServerSettings[Http2SettingsParameter.SETTINGS_MAX_CONCURRENT_STREAMS];
        // A zero window keeps every response from finishing, so all streams stay open.
        client.Write(w => Http2FrameWriter.WriteSettings(w, [new(Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE, 0)]));
        var block = client.RequestBlock();
        int streamId = 1;
        for (int i = 0; i <= max; i++, streamId += 2)
        {
            int id = streamId;
            client.Write(w => Http2FrameWriter.WriteHeaders(w, id, block, endStream: true));
        }
        await client.FlushAsync();
        await client.ExpectStreamErrorAsync(streamId - 2, Http2ErrorCode.REFUSED_STREAM);
    }

    // ---- http2/5.3.1 Stream Dependencies ----

    [Fact, Case("http2/5.3.1/1")]
    public async Task Http2Spec_5_3_1_1_HeadersDependingOnItself_StreamProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WriteHeaders(w, 1, client.RequestBlock(), true, priority: new Http2Priority(1, false, 255)));
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/5.3.1/2")]
    public async Task Http2Spec_5_3_1_2_PriorityDependingOnItself_StreamProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WritePriority(w, 1, new Http2Priority(1, false, 255)));
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.PROTOCOL_ERROR);
    }

    // ---- http2/5.4.1 Connection Error Handling ----

    [Fact, Case("http2/5.4.1/1")]
    public async Task Http2Spec_5_4_1_1_InvalidPing_ConnectionClosed()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.PING, 0, 3, s_zeroPing);
        await client.FlushAsync();
        Assert.Null(await client.ReadUntilAsync(_ => false));
    }

    [Fact, Case("http2/5.4.1/2")]
    public async Task Http2Spec_5_4_1_2_InvalidPing_GoAwayFirst()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.PING, 0, 3, s_zeroPing);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    // ---- http2/5.5 Extending HTTP/2 ----

    [Fact, Case("http2/5.5/1")]
    public async Task Http2Spec_5_5_1_UnknownExtensionFrame_Ignored()
    {
        await using var client = await StartAsync();
        RawFrame(client, (Http2FrameType)0x16, 0, 0, new byte[8]);
        await PingRoundTripAsync(client);
    }

    [Fact, Case("http2/5.5/2")]
    public async Task Http2Spec_5_5_2_UnknownFrameInsideHeaderBlock_ProtocolError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.HEADERS, Http2FrameFlags.END_STREAM, 1, client.RequestBlock());
        RawFrame(client, (Http2FrameType)0x16, 0, 0, new byte[8]);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    // ---- http2/6.1 DATA ----

    [Fact, Case("http2/6.1/1")]
    public async Task Http2Spec_6_1_1_DataOnStreamZero_ProtocolError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.DATA, Http2FrameFlags.END_STREAM, 0, "test"u8);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/6.1/2")]
    public async Task Http2Spec_6_1_2_DataOnHalfClosedRemote_StreamClosed()
    {
        await using var client = await StartAsync();
        var block = client.RequestBlock("POST");
        client.Write(w => Http2FrameWriter.WriteHeaders(w, 1, block, endStream: true));
        client.Write(w => Http2FrameWriter.WriteData(w, 1, "test"u8, endStream: true));
        await client.FlushAsync();
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.STREAM_CLOSED);
    }

    [Fact, Case("http2/6.1/3")]
    public async Task Http2Spec_6_1_3_DataPaddingTooLong_ProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1, "POST", "/", endStream: false, ("content-length", "4"));
        // PADDED | END_STREAM, length 5: pad length 6 and "Test".
        client.WriteRaw([0, 0, 5, (byte)Http2FrameType.DATA, 0x09, 0, 0, 0, 1, 6, (byte)'T', (byte)'e', (byte)'s', (byte)'t']);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    // ---- http2/6.2 HEADERS ----

    [Fact, Case("http2/6.2/1")]
    public async Task Http2Spec_6_2_1_PriorityBeforeEndHeaders_ProtocolError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.HEADERS, 0, 1, client.RequestBlock());
        client.Write(w => Http2FrameWriter.WritePriority(w, 1, new Http2Priority(0, false, 255)));
        client.Write(w => Http2FrameWriter.WriteContinuation(w, 1, DummyBlock(1), endHeaders: true));
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/6.2/2")]
    public async Task Http2Spec_6_2_2_HeadersForAnotherStreamBeforeEndHeaders_ProtocolError()
    {
        await using var client = await StartAsync();
        var block = client.RequestBlock();
        RawFrame(client, Http2FrameType.HEADERS, 0, 1, block);
        RawFrame(client, Http2FrameType.HEADERS, Http2FrameFlags.END_STREAM | Http2FrameFlags.END_HEADERS, 3, block);
        client.Write(w => Http2FrameWriter.WriteContinuation(w, 1, DummyBlock(1), endHeaders: true));
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/6.2/3")]
    public async Task Http2Spec_6_2_3_HeadersOnStreamZero_ProtocolError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.HEADERS, Http2FrameFlags.END_STREAM | Http2FrameFlags.END_HEADERS, 0, client.RequestBlock());
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/6.2/4")]
    public async Task Http2Spec_6_2_4_HeadersPaddingTooLong_ProtocolError()
    {
        await using var client = await StartAsync();
        var block = client.RequestBlock();
        // PADDED | END_HEADERS | END_STREAM; the pad length says two octets more than the frame holds.
        client.WriteRaw([0, 0, (byte)(block.Length + 1), (byte)Http2FrameType.HEADERS, 0x0d, 0, 0, 0, 1, (byte)(block.Length + 2)]);
        client.WriteRaw(block);
        await client.FlushAsync();
        // h2spec takes a stream error; a field block we cannot find is a connection error (§4.3, HPACK state).
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    // ---- http2/6.3 PRIORITY ----

    [Fact, Case("http2/6.3/1")]
    public async Task Http2Spec_6_3_1_PriorityOnStreamZero_ProtocolError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.PRIORITY, 0, 0, [0, 0, 0, 0, 254]);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/6.3/2")]
    public async Task Http2Spec_6_3_2_PriorityWrongLength_StreamFrameSizeError()
    {
        await using var client = await StartAsync();
        client.Write(w => Http2FrameWriter.WriteHeaders(w, 1, client.RequestBlock(), endStream: true));
        RawFrame(client, Http2FrameType.PRIORITY, 0, 1, [0x80, 0, 0, 1]);
        await client.FlushAsync();
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.FRAME_SIZE_ERROR);
    }

    // ---- http2/6.4 RST_STREAM ----

    [Fact, Case("http2/6.4/1")]
    public async Task Http2Spec_6_4_1_RstStreamOnStreamZero_ProtocolError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.RST_STREAM, 0, 0, [0, 0, 0, (byte)Http2ErrorCode.CANCEL]);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/6.4/2")]
    public async Task Http2Spec_6_4_2_RstStreamOnIdleStream_ProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WriteRstStream(w, 1, Http2ErrorCode.CANCEL));
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/6.4/3")]
    public async Task Http2Spec_6_4_3_RstStreamWrongLength_FrameSizeError()
    {
        await using var client = await StartAsync();
        client.Write(w => Http2FrameWriter.WriteHeaders(w, 1, client.RequestBlock(), endStream: true));
        RawFrame(client, Http2FrameType.RST_STREAM, 0, 1, [0, 0, 0]);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.FRAME_SIZE_ERROR);
    }

    // ---- http2/6.5 SETTINGS ----

    [Fact, Case("http2/6.5/1")]
    public async Task Http2Spec_6_5_1_SettingsAckWithPayload_FrameSizeError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.SETTINGS, Http2FrameFlags.ACK, 0, [0]);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.FRAME_SIZE_ERROR);
    }

    [Fact, Case("http2/6.5/2")]
    public async Task Http2Spec_6_5_2_SettingsOnStream_ProtocolError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.SETTINGS, 0, 1, [0, 3, 0, 0, 0, 0x64]);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/6.5/3")]
    public async Task Http2Spec_6_5_3_SettingsLengthNotMultipleOf6_FrameSizeError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.SETTINGS, 0, 0, [0, 3, 0]);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.FRAME_SIZE_ERROR);
    }

    // ---- http2/6.5.2 Defined SETTINGS Parameters ----

    [Fact, Case("http2/6.5.2/1")]
    public async Task Http2Spec_6_5_2_1_EnablePushNotZeroOrOne_ProtocolError()
    {
        await using var client = await StartAsync();
        await SendSettingsAsync(client, new Http2Setting(Http2SettingsParameter.SETTINGS_ENABLE_PUSH, 2));
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/6.5.2/2")]
    public async Task Http2Spec_6_5_2_2_InitialWindowTooLarge_FlowControlError()
    {
        await using var client = await StartAsync();
        await SendInitialWindowAsync(client, 2_147_483_648);
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.FLOW_CONTROL_ERROR);
    }

    [Fact, Case("http2/6.5.2/3")]
    public async Task Http2Spec_6_5_2_3_MaxFrameSizeBelowInitial_ProtocolError()
    {
        await using var client = await StartAsync();
        await SendSettingsAsync(client, new Http2Setting(Http2SettingsParameter.SETTINGS_MAX_FRAME_SIZE, 16_383));
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/6.5.2/4")]
    public async Task Http2Spec_6_5_2_4_MaxFrameSizeAboveMaximum_ProtocolError()
    {
        await using var client = await StartAsync();
        await SendSettingsAsync(client, new Http2Setting(Http2SettingsParameter.SETTINGS_MAX_FRAME_SIZE, 16_777_216));
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/6.5.2/5")]
    public async Task Http2Spec_6_5_2_5_UnknownSetting_Ignored()
    {
        await using var client = await StartAsync();
        await SendSettingsAsync(client, new Http2Setting((Http2SettingsParameter)0xFF, 1));
        await ExpectSettingsAckAsync(client);
        await PingRoundTripAsync(client);
    }

    // ---- http2/6.5.3 Settings Synchronization ----

    [Fact, Case("http2/6.5.3/1")]
    public async Task Http2Spec_6_5_3_1_InitialWindowTwice_LastValueApplies()
    {
        await using var client = await StartAsync();
        await SendInitialWindowAsync(client, 100, 1);
        await ExpectSettingsAckAsync(client);
        await client.SendRequestAsync(1);
        var data = await ExpectDataAsync(client, 1);
        Assert.Single(data.Payload);
        Assert.False(data.EndStream);
    }

    [Fact, Case("http2/6.5.3/2")]
    public async Task Http2Spec_6_5_3_2_Settings_Acknowledged()
    {
        await using var client = await StartAsync();
        await SendSettingsAsync(client, new Http2Setting(Http2SettingsParameter.SETTINGS_ENABLE_PUSH, 0));
        await ExpectSettingsAckAsync(client);
    }

    // ---- http2/6.7 PING ----

    [Fact, Case("http2/6.7/1")]
    public async Task Http2Spec_6_7_1_Ping_AckWithSamePayload()
    {
        await using var client = await StartAsync();
        Ping(client, s_h2specPing);
        await client.FlushAsync();
        await ExpectPingAckAsync(client, s_h2specPing);
    }

    [Fact, Case("http2/6.7/2")]
    public async Task Http2Spec_6_7_2_PingAck_NotAnswered()
    {
        await using var client = await StartAsync();
        Ping(client, "invalid\0"u8.ToArray(), ack: true);
        Ping(client, s_h2specPing);
        await client.FlushAsync();
        // The first PING ACK back is for the second frame: the ACK we sent got no answer.
        await ExpectPingAckAsync(client, s_h2specPing);
    }

    [Fact, Case("http2/6.7/3")]
    public async Task Http2Spec_6_7_3_PingOnStream_ProtocolError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.PING, 0, 1, s_zeroPing);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/6.7/4")]
    public async Task Http2Spec_6_7_4_PingWrongLength_FrameSizeError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.PING, 0, 0, new byte[6]);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.FRAME_SIZE_ERROR);
    }

    // ---- http2/6.8 GOAWAY ----

    [Fact, Case("http2/6.8/1")]
    public async Task Http2Spec_6_8_1_GoAwayOnStream_ProtocolError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.GOAWAY, 0, 1, new byte[8]);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    // ---- http2/6.9 WINDOW_UPDATE ----

    [Fact, Case("http2/6.9/1")]
    public async Task Http2Spec_6_9_1_ZeroIncrementOnConnection_ProtocolError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.WINDOW_UPDATE, 0, 0, [0, 0, 0, 0]);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/6.9/2")]
    public async Task Http2Spec_6_9_2_ZeroIncrementOnStream_StreamProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1, endStream: false);
        RawFrame(client, Http2FrameType.WINDOW_UPDATE, 0, 1, [0, 0, 0, 0]);
        await client.FlushAsync();
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/6.9/3")]
    public async Task Http2Spec_6_9_3_WindowUpdateWrongLength_FrameSizeError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.WINDOW_UPDATE, 0, 0, [0, 0, 1]);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.FRAME_SIZE_ERROR);
    }

    // ---- http2/6.9.1 The Flow-Control Window ----

    [Fact, Case("http2/6.9.1/1")]
    public async Task Http2Spec_6_9_1_1_InitialWindowOne_DataOfOneOctet()
    {
        await using var client = await StartAsync();
        await SendInitialWindowAsync(client, 1);
        await ExpectSettingsAckAsync(client);
        await client.SendRequestAsync(1);
        var data = await ExpectDataAsync(client, 1);
        Assert.Single(data.Payload);
        Assert.False(data.EndStream);
    }

    [Fact, Case("http2/6.9.1/2")]
    public async Task Http2Spec_6_9_1_2_ConnectionWindowOverflow_FlowControlError()
    {
        await using var client = await StartAsync();
        await client.SendAsync(w =>
        {
            Http2FrameWriter.WriteWindowUpdate(w, 0, int.MaxValue);
            Http2FrameWriter.WriteWindowUpdate(w, 0, int.MaxValue);
        });
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.FLOW_CONTROL_ERROR);
    }

    [Fact, Case("http2/6.9.1/3")]
    public async Task Http2Spec_6_9_1_3_StreamWindowOverflow_StreamFlowControlError()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1, endStream: false);
        await client.SendAsync(w =>
        {
            Http2FrameWriter.WriteWindowUpdate(w, 1, int.MaxValue);
            Http2FrameWriter.WriteWindowUpdate(w, 1, int.MaxValue);
        });
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.FLOW_CONTROL_ERROR);
    }

    // ---- http2/6.9.2 Initial Flow-Control Window Size ----

    [Fact, Case("http2/6.9.2/1")]
    public async Task Http2Spec_6_9_2_1_InitialWindowRaisedAfterHeaders_DataSent()
    {
        await using var client = await StartAsync();
        await SendInitialWindowAsync(client, 0);
        await ExpectSettingsAckAsync(client);
        await client.SendRequestAsync(1);
        await SendInitialWindowAsync(client, 1);
        var data = await ExpectDataAsync(client, 1);
        Assert.Single(data.Payload);
    }

    [Fact, Case("http2/6.9.2/2")]
    public async Task Http2Spec_6_9_2_2_NegativeWindow_Tracked()
    {
        await using var client = await Http2TestClient.StartAsync(new BodyApplication());
        await SendInitialWindowAsync(client, 3);
        await ExpectSettingsAckAsync(client);
        await client.SendRequestAsync(1, path: BodyApplication.Path);
        Assert.Equal(3, (await ExpectDataAsync(client, 1)).Payload.Length);
        // 3 sent of a window of 3, then the initial size drops to 2: the window is -1 ...
        await SendInitialWindowAsync(client, 2);
        await ExpectSettingsAckAsync(client);
        // ... and 2 more open one octet.
        await client.SendAsync(w => Http2FrameWriter.WriteWindowUpdate(w, 1, 2));
        var data = await ExpectDataAsync(client, 1);
        Assert.Single(data.Payload);
        Assert.False(data.EndStream);
    }

    [Fact, Case("http2/6.9.2/3")]
    public async Task Http2Spec_6_9_2_3_InitialWindowAboveMaximum_FlowControlError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.SETTINGS, 0, 0, [0, 4, 0x80, 0, 0, 0]);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.FLOW_CONTROL_ERROR);
    }

    // ---- http2/6.10 CONTINUATION ----

    [Fact, Case("http2/6.10/1")]
    public async Task Http2Spec_6_10_1_MultipleContinuations_Served()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.HEADERS, Http2FrameFlags.END_STREAM, 1, client.RequestBlock());
        client.Write(w => Http2FrameWriter.WriteContinuation(w, 1, DummyBlock(1), endHeaders: false));
        client.Write(w => Http2FrameWriter.WriteContinuation(w, 1, DummyBlock(1), endHeaders: true));
        await client.FlushAsync();
        await ExpectServedAsync(client, 1);
    }

    [Fact, Case("http2/6.10/2")]
    public async Task Http2Spec_6_10_2_ContinuationThenData_ProtocolError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.HEADERS, 0, 1, client.RequestBlock("POST"));
        client.Write(w => Http2FrameWriter.WriteContinuation(w, 1, DummyBlock(1), endHeaders: false));
        client.Write(w => Http2FrameWriter.WriteData(w, 1, "test"u8, endStream: true));
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/6.10/3")]
    public async Task Http2Spec_6_10_3_ContinuationOnStreamZero_ProtocolError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.HEADERS, Http2FrameFlags.END_STREAM, 1, client.RequestBlock());
        RawFrame(client, Http2FrameType.CONTINUATION, Http2FrameFlags.END_HEADERS, 0, DummyBlock(1));
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/6.10/4")]
    public async Task Http2Spec_6_10_4_ContinuationAfterEndHeaders_ProtocolError()
    {
        await using var client = await StartAsync();
        client.Write(w => Http2FrameWriter.WriteHeaders(w, 1, client.RequestBlock(), endStream: true));
        client.Write(w => Http2FrameWriter.WriteContinuation(w, 1, DummyBlock(1), endHeaders: true));
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/6.10/5")]
    public async Task Http2Spec_6_10_5_ContinuationAfterContinuationWithEndHeaders_ProtocolError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.HEADERS, Http2FrameFlags.END_STREAM, 1, client.RequestBlock());
        client.Write(w => Http2FrameWriter.WriteContinuation(w, 1, DummyBlock(1), endHeaders: true));
        client.Write(w => Http2FrameWriter.WriteContinuation(w, 1, DummyBlock(1), endHeaders: true));
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact, Case("http2/6.10/6")]
    public async Task Http2Spec_6_10_6_ContinuationAfterData_ProtocolError()
    {
        await using var client = await StartAsync();
        // As h2spec sends it: the HEADERS has no END_HEADERS, so the DATA already breaks the block.
        RawFrame(client, Http2FrameType.HEADERS, 0, 1, client.RequestBlock("POST"));
        client.Write(w => Http2FrameWriter.WriteData(w, 1, "test"u8, endStream: true));
        client.Write(w => Http2FrameWriter.WriteContinuation(w, 1, DummyBlock(1), endHeaders: false));
        RawFrame(client, Http2FrameType.CONTINUATION, Http2FrameFlags.END_HEADERS, 0, DummyBlock(1));
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    /// <summary>The case's title read literally: a CONTINUATION after a DATA frame of a complete head.</summary>
    [Fact]
    public async Task Continuation_AfterDataOfCompleteHead_ProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1, "POST", "/", endStream: false);
        client.Write(w => Http2FrameWriter.WriteData(w, 1, "test"u8, endStream: false));
        client.Write(w => Http2FrameWriter.WriteContinuation(w, 1, DummyBlock(1), endHeaders: true));
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    // ---- http2/7 Error Codes ----

    [Fact, Case("http2/7/1")]
    public async Task Http2Spec_7_1_GoAwayWithUnknownCode_PingAnsweredOrClosed()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.GOAWAY, 0, 0, [0, 0, 0, 0, 0, 0, 0, 0xff]);
        Ping(client, s_h2specPing);
        await client.FlushAsync();
        // No stream in flight: we may close at once (h2spec takes a PING ACK or a close), but never
        // with an error of our own.
        var frame = await client.ReadUntilAsync(f => (f.Type == Http2FrameType.PING && f.IsAck) || f.Type == Http2FrameType.GOAWAY);
        if (frame is not null)
        {
            Assert.Equal(Http2FrameType.PING, frame.Type);
            Assert.Equal(s_h2specPing, frame.Payload);
        }
        Assert.Null(await client.ReadUntilAsync(f => f.Type == Http2FrameType.GOAWAY && f.ErrorCode != Http2ErrorCode.NO_ERROR));
    }

    [Fact, Case("http2/7/2")]
    public async Task Http2Spec_7_2_RstStreamWithUnknownCode_Ignored()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1, "POST", "/", endStream: false);
        client.Write(w => Http2FrameWriter.WriteRstStream(w, 1, (Http2ErrorCode)0xff));
        await PingRoundTripAsync(client);
    }

    // ---- http2/8.1 HTTP Request/Response Exchange ----

    [Fact, Case("http2/8.1/1")]
    public async Task Http2Spec_8_1_1_SecondHeadersWithoutEndStream_StreamProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1, "POST", "/", endStream: false);
        client.Write(w => Http2FrameWriter.WriteData(w, 1, "test"u8, endStream: false));
        await client.SendHeadersAsync(1, client.Block(("x-test", "ok")), endStream: false);
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.PROTOCOL_ERROR);
    }

    // ---- http2/8.1.2 HTTP Header Fields (malformed requests: a stream error, the connection carries on) ----

    private static (string, string)[] CommonHeaders(params (string, string)[] extra) =>
        [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "example.test"), .. extra];

    private static async Task ExpectMalformedAsync(params (string, string)[] fields)
    {
        var app = new TestApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        await client.SendHeadersAsync(1, client.Block(fields), endStream: true);
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.PROTOCOL_ERROR);
        // Only the stream failed, and the application never saw it.
        await client.SendRequestAsync(3);
        await ExpectServedAsync(client, 3);
        Assert.Equal(1, app.Requests);
    }

    [Fact, Case("http2/8.1.2/1")]
    public Task Http2Spec_8_1_2_1_UppercaseFieldName_StreamProtocolError() =>
        ExpectMalformedAsync(CommonHeaders(("X-TEST", "ok")));

    [Fact, Case("http2/8.1.2.1/1")]
    public Task Http2Spec_8_1_2_1_1_UnknownPseudoHeader_StreamProtocolError() =>
        ExpectMalformedAsync(CommonHeaders((":test", "ok")));

    [Fact, Case("http2/8.1.2.1/2")]
    public Task Http2Spec_8_1_2_1_2_ResponsePseudoHeader_StreamProtocolError() =>
        ExpectMalformedAsync(CommonHeaders((":status", "200")));

    /// <summary>h2spec sends the pseudo-header trailers without END_STREAM (also 8.1/1's error); with END_STREAM the pseudo-header alone is the fault.</summary>
    [Theory, Case("http2/8.1.2.1/3")]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Http2Spec_8_1_2_1_3_PseudoHeaderInTrailers_StreamProtocolError(bool endStream)
    {
        var app = new TestApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        await client.SendRequestAsync(1, "POST", "/", endStream: false);
        client.Write(w => Http2FrameWriter.WriteData(w, 1, "test"u8, endStream: false));
        await client.SendHeadersAsync(1, client.Block((":method", "POST")), endStream);
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.PROTOCOL_ERROR);
        await client.SendRequestAsync(3);
        await ExpectServedAsync(client, 3);
    }

    [Fact, Case("http2/8.1.2.1/4")]
    public Task Http2Spec_8_1_2_1_4_PseudoHeaderAfterRegular_StreamProtocolError() =>
        ExpectMalformedAsync([("x-test", "ok"), .. CommonHeaders()]);

    [Fact, Case("http2/8.1.2.2/1")]
    public Task Http2Spec_8_1_2_2_1_ConnectionSpecificField_StreamProtocolError() =>
        ExpectMalformedAsync(CommonHeaders(("connection", "keep-alive")));

    [Fact, Case("http2/8.1.2.2/2")]
    public Task Http2Spec_8_1_2_2_2_TeNotTrailers_StreamProtocolError() =>
        ExpectMalformedAsync(CommonHeaders(("trailers", "test"), ("te", "trailers, deflate")));

    [Fact, Case("http2/8.1.2.3/1")]
    public Task Http2Spec_8_1_2_3_1_EmptyPath_StreamProtocolError() =>
        ExpectMalformedAsync((":method", "GET"), (":scheme", "http"), (":path", ""), (":authority", "example.test"));

    [Fact, Case("http2/8.1.2.3/2")]
    public Task Http2Spec_8_1_2_3_2_NoMethod_StreamProtocolError() =>
        // h2spec drops :scheme too here (it slices its list twice); :method is missing either way.
        ExpectMalformedAsync((":path", "/"), (":authority", "example.test"));

    [Fact, Case("http2/8.1.2.3/3")]
    public Task Http2Spec_8_1_2_3_3_NoScheme_StreamProtocolError() =>
        ExpectMalformedAsync((":method", "GET"), (":path", "/"), (":authority", "example.test"));

    [Fact, Case("http2/8.1.2.3/4")]
    public Task Http2Spec_8_1_2_3_4_NoPath_StreamProtocolError() =>
        ExpectMalformedAsync((":method", "GET"), (":scheme", "http"), (":authority", "example.test"));

    [Fact, Case("http2/8.1.2.3/5")]
    public Task Http2Spec_8_1_2_3_5_DuplicateMethod_StreamProtocolError() =>
        ExpectMalformedAsync(CommonHeaders((":method", "GET")));

    [Fact, Case("http2/8.1.2.3/6")]
    public Task Http2Spec_8_1_2_3_6_DuplicateScheme_StreamProtocolError() =>
        ExpectMalformedAsync(CommonHeaders((":scheme", "http")));

    [Fact, Case("http2/8.1.2.3/7")]
    public Task Http2Spec_8_1_2_3_7_DuplicatePath_StreamProtocolError() =>
        ExpectMalformedAsync(CommonHeaders((":path", "/")));

    /// <summary>RFC 9113 §8.2.1 (no h2spec case): a CR, LF or NUL in a value is malformed.</summary>
    [Fact]
    public Task FieldValueWithNewline_StreamProtocolError() =>
        ExpectMalformedAsync(CommonHeaders(("x-a", "a\nb")));

    // ---- http2/8.1.2.6 Malformed Requests and Responses ----

    private static async Task ExpectContentLengthMismatchAsync(string contentLength, params string[] data)
    {
        var app = new TestApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        await client.SendRequestAsync(1, "POST", "/", endStream: false, ("content-length", contentLength));
        for (int i = 0; i < data.Length; i++)
        {
            var bytes = Encoding.ASCII.GetBytes(data[i]);
            bool last = i == data.Length - 1;
            client.Write(w => Http2FrameWriter.WriteData(w, 1, bytes, endStream: last));
        }
        await client.FlushAsync();
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.PROTOCOL_ERROR);
        // DATA that crossed our RST_STREAM is ignored (§5.1), and the connection carries on.
        await client.SendRequestAsync(3);
        await ExpectServedAsync(client, 3);
    }

    [Fact, Case("http2/8.1.2.6/1")]
    public Task Http2Spec_8_1_2_6_1_ContentLengthBelowData_StreamProtocolError() =>
        ExpectContentLengthMismatchAsync("1", "test");

    [Fact, Case("http2/8.1.2.6/2")]
    public Task Http2Spec_8_1_2_6_2_ContentLengthBelowSumOfData_StreamProtocolError() =>
        ExpectContentLengthMismatchAsync("1", "test", "test");

    /// <summary>Beyond h2spec: a body shorter than content-length, and one over it by the last frame.</summary>
    [Theory]
    [InlineData("4", new[] { "abc" })]
    [InlineData("4", new[] { "a", "b" })]
    [InlineData("4", new[] { "abcd", "e" })]
    public Task ContentLengthMismatch_StreamProtocolError(string contentLength, string[] data) =>
        ExpectContentLengthMismatchAsync(contentLength, data);

    // ---- http2/8.2 Server Push ----

    [Fact, Case("http2/8.2/1")]
    public async Task Http2Spec_8_2_1_PushPromiseFromClient_ProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WritePushPromise(w, 1, 3, client.RequestBlock()));
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    // ---- beyond h2spec ----

    [Fact]
    public async Task Settings_HeaderTableSizeZero_AckedAndHonoured()
    {
        await using var client = await StartAsync();
        await SendSettingsAsync(client, new Http2Setting(Http2SettingsParameter.SETTINGS_HEADER_TABLE_SIZE, 0));
        await ExpectSettingsAckAsync(client);
        // The smaller table is honoured: the next response still decodes.
        await client.SendRequestAsync(1);
        await ExpectServedAsync(client, 1);
    }

    /// <summary>
    /// h2spec's window cases need a response body of at least 5 octets (its ServerDataLength); the
    /// shared <see cref="TestApplication"/> answers "ok". This one answers <see cref="Path"/> with 16.
    /// </summary>
    private sealed class BodyApplication : IHttpApplication
    {
        public const string Path = "/body";

        private static readonly byte[] s_body = "0123456789abcdef"u8.ToArray();
        private readonly TestApplication _inner = new();

        public async ValueTask ProcessAsync(HttpExchange exchange)
        {
            if (!exchange.Request.PathSpan.SequenceEqual("/body"u8))
            {
                await _inner.ProcessAsync(exchange);
                return;
            }
            exchange.Response.StatusCode = 200;
            await exchange.StartResponseAsync(BodyFraming.ContentLength, s_body.Length);
            await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(s_body), flush: true);
            await exchange.CompleteResponseAsync();
        }
    }
}
