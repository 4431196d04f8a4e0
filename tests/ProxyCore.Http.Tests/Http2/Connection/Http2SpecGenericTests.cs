using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Reflection;
using System.Text.RegularExpressions;
using ProxyCore.Http.Http2;
using ProxyCore.Http.Tests.Http1.Corpus;

namespace ProxyCore.Http.Tests.Http2.Connection;

/// <summary>
/// Every h2spec 2.6.0 <c>generic/*</c> and <c>hpack/*</c> server case (corpus <c>h2spec-cases.md</c>), one table row
/// per case id, the id as first argument; <see cref="Cases_CoverEveryGenericAndHpackIdInCorpus"/> fails when a row is
/// missing. The frames are the ones h2spec sends (same HPACK bytes, paddings, priorities). The checks are stricter
/// than h2spec's verifier: a "request processed" case needs a 200 that ends with END_STREAM (and the body or
/// fields we sent where the route echoes them), an "accept" case needs the PING ACK with our 8 bytes and no
/// RST_STREAM or GOAWAY before it, and a decoding error needs GOAWAY(COMPRESSION_ERROR) and then a close, not a bare close.
/// </summary>
public sealed class Http2SpecGenericTests
{
    private static readonly byte[] PingData = "h2spec\0\0"u8.ToArray();

    // ---- generic/1 Starting HTTP/2 ----

    [Theory]
    [InlineData("generic/1/1")]
    public async Task Generic_1_ClientPreface_ServerSettingsFirst(string caseId)
    {
        Assert.StartsWith("generic/1/", caseId);
        await using var client = await Http2TestClient.StartAsync(new TestApplication(), handshake: false);
        client.WritePreface();
        client.Write(w => Http2FrameWriter.WriteSettings(w, [new(Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE, 65_535)]));
        await client.FlushAsync();
        var first = await client.ReadFrameAsync();
        Assert.Equal(Http2FrameType.SETTINGS, first.Type);
        Assert.False(first.IsAck);
        Assert.Equal(0, first.StreamId);
    }

    // ---- generic/2 Streams and Multiplexing ----

    [Theory]
    [InlineData("generic/2/1")]
    public async Task Generic_2_1_PriorityOnIdleStream_Accepted(string caseId)
    {
        Assert.Equal("generic/2/1", caseId);
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WritePriority(w, 1, new Http2Priority(0, false, 256)));
        await ExpectPingAckAsync(client);
    }

    [Theory]
    [InlineData("generic/2/2", false)]
    [InlineData("generic/2/3", true)]
    public async Task Generic_2_WindowUpdateOnHalfClosedRemote_DataFollows(string caseId, bool priorityFirst)
    {
        Assert.StartsWith("generic/2/", caseId);
        await using var client = await StartAsync();
        // A zero stream window holds the response body until our WINDOW_UPDATE: the DATA frame is its answer.
        await client.SendAsync(w => Http2FrameWriter.WriteSettings(w, [new(Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE, 0)]));
        await client.SendRequestAsync(1);
        var headers = await client.ReadUntilAsync(f => f.Type is Http2FrameType.HEADERS or Http2FrameType.DATA or Http2FrameType.RST_STREAM or Http2FrameType.GOAWAY);
        Assert.Equal(Http2FrameType.HEADERS, headers!.Type);
        Assert.False(headers.EndStream); // "ok" is still to come
        await client.SendAsync(w =>
        {
            if (priorityFirst)
            {
                Http2FrameWriter.WritePriority(w, 1, new Http2Priority(0, false, 256));
            }
            Http2FrameWriter.WriteWindowUpdate(w, 1, 1);
        });
        var data = await ReadStreamFrameAsync(client, 1);
        Assert.Equal(Http2FrameType.DATA, data.Type);
        Assert.Equal("o"u8.ToArray(), data.Payload); // exactly the one octet the window allowed
        Assert.False(data.EndStream);
        await client.SendAsync(w => Http2FrameWriter.WriteWindowUpdate(w, 1, 1));
        var last = await ReadStreamFrameAsync(client, 1);
        Assert.Equal(Http2FrameType.DATA, last.Type);
        Assert.Equal("k"u8.ToArray(), last.Payload);
        if (!last.EndStream)
        {
            // The body may end with an empty DATA frame carrying END_STREAM (it needs no window).
            var end = await ReadStreamFrameAsync(client, 1);
            Assert.Equal(Http2FrameType.DATA, end.Type);
            Assert.Empty(end.Payload);
            Assert.True(end.EndStream);
        }
        await ExpectPingAckAsync(client);
    }

    [Theory]
    [InlineData("generic/2/4")]
    public async Task Generic_2_4_RstStreamOnHalfClosedRemote_Accepted(string caseId)
    {
        Assert.Equal("generic/2/4", caseId);
        await using var client = await StartAsync();
        await client.SendRequestAsync(1);
        await client.SendAsync(w => Http2FrameWriter.WriteRstStream(w, 1, Http2ErrorCode.CANCEL));
        // h2spec also takes a close; we keep the connection: a client's reset is no connection error.
        await ExpectPingAckAsync(client);
    }

    [Theory]
    [InlineData("generic/2/5")]
    public async Task Generic_2_5_PriorityOnClosedStream_Accepted(string caseId)
    {
        Assert.Equal("generic/2/5", caseId);
        await using var client = await StartAsync();
        await client.SendRequestAsync(1);
        await ExpectOkAsync(client, 1);
        await client.SendAsync(w => Http2FrameWriter.WritePriority(w, 1, new Http2Priority(0, false, 256)));
        await ExpectPingAckAsync(client);
    }

    // ---- generic/3.1 DATA ----

    [Theory]
    [InlineData("generic/3.1/1", 1, -1)]
    [InlineData("generic/3.1/2", 2, -1)]
    [InlineData("generic/3.1/3", 1, 5)]
    public async Task Generic_3_1_DataFrames_RequestProcessed(string caseId, int frames, int padLength)
    {
        Assert.StartsWith("generic/3.1/", caseId);
        await using var client = await StartAsync();
        await client.SendRequestAsync(1, "POST", "/echo", endStream: false);
        for (int i = 0; i < frames; i++)
        {
            bool last = i == frames - 1;
            await client.SendAsync(w =>
            {
                if (padLength >= 0)
                {
                    Http2FrameWriter.WritePaddedData(w, 1, "test"u8, padLength, endStream: last);
                }
                else
                {
                    Http2FrameWriter.WriteData(w, 1, "test"u8, endStream: last);
                }
            });
        }
        var response = await ExpectOkAsync(client, 1);
        Assert.Equal(string.Concat(Enumerable.Repeat("test", frames)), System.Text.Encoding.ASCII.GetString(response.Body));
    }

    // ---- generic/3.2 HEADERS ----

    [Theory]
    [InlineData("generic/3.2/1", -1, false)]
    [InlineData("generic/3.2/2", 8, false)]
    [InlineData("generic/3.2/3", -1, true)]
    public async Task Generic_3_2_HeadersFrame_RequestProcessed(string caseId, int padLength, bool withPriority)
    {
        Assert.StartsWith("generic/3.2/", caseId);
        await using var client = await StartAsync();
        Http2Priority? priority = withPriority ? new Http2Priority(0, false, 256) : null;
        await client.SendAsync(w => Http2FrameWriter.WriteHeaders(w, 1, client.RequestBlock(), true, priority: priority, padLength: padLength));
        await ExpectOkAsync(client, 1);
    }

    // ---- generic/3.3 PRIORITY ----

    [Theory]
    [InlineData("generic/3.3/1", 1, 0, false, 1)]   // weight 1 (wire octet 0)
    [InlineData("generic/3.3/2", 1, 0, false, 256)] // weight 256 (wire octet 255)
    [InlineData("generic/3.3/3", 3, 1, false, 1)]   // idle stream 3 depends on stream 1
    [InlineData("generic/3.3/4", 1, 0, true, 1)]    // exclusive
    [InlineData("generic/3.3/5", 3, 0, false, 256)] // PRIORITY on idle 3, then HEADERS on the lower 1
    public async Task Generic_3_3_PriorityThenHeaders_RequestProcessed(string caseId, int priorityStream, int dependency, bool exclusive, int weight)
    {
        Assert.StartsWith("generic/3.3/", caseId);
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WritePriority(w, priorityStream, new Http2Priority(dependency, exclusive, weight)));
        await client.SendRequestAsync(1);
        await ExpectOkAsync(client, 1);
    }

    // ---- generic/3.4 RST_STREAM ----

    [Theory]
    [InlineData("generic/3.4/1")]
    public async Task Generic_3_4_RstStreamOnOpenStream_Accepted(string caseId)
    {
        Assert.Equal("generic/3.4/1", caseId);
        var app = new TestApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        await client.SendRequestAsync(1, endStream: false);
        await client.SendAsync(w => Http2FrameWriter.WriteRstStream(w, 1, Http2ErrorCode.CANCEL));
        await ExpectPingAckAsync(client);
        // The connection still serves requests after the reset.
        await client.SendRequestAsync(3);
        await ExpectOkAsync(client, 3);
    }

    // ---- generic/3.5 SETTINGS ----

    [Theory]
    [InlineData("generic/3.5/1")]
    public async Task Generic_3_5_SettingsFrame_Acknowledged(string caseId)
    {
        Assert.Equal("generic/3.5/1", caseId);
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WriteSettings(w,
        [
            new(Http2SettingsParameter.SETTINGS_HEADER_TABLE_SIZE, 4096),
            new(Http2SettingsParameter.SETTINGS_ENABLE_PUSH, 1),
            new(Http2SettingsParameter.SETTINGS_MAX_CONCURRENT_STREAMS, 100),
            new(Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE, 65_535),
            new(Http2SettingsParameter.SETTINGS_MAX_FRAME_SIZE, 16_384),
            new(Http2SettingsParameter.SETTINGS_MAX_HEADER_LIST_SIZE, 100),
        ]));
        var frame = await client.ReadUntilAsync(f => f.Type is Http2FrameType.SETTINGS or Http2FrameType.GOAWAY);
        Assert.NotNull(frame);
        Assert.Equal(Http2FrameType.SETTINGS, frame!.Type);
        Assert.True(frame.IsAck);
        Assert.Empty(frame.Payload);
        await ExpectPingAckAsync(client);
    }

    // ---- generic/3.7 PING ----

    [Theory]
    [InlineData("generic/3.7/1")]
    public async Task Generic_3_7_Ping_AckedWithSameData(string caseId)
    {
        Assert.Equal("generic/3.7/1", caseId);
        await using var client = await StartAsync();
        await ExpectPingAckAsync(client);
    }

    // ---- generic/3.8 GOAWAY ----

    [Theory]
    [InlineData("generic/3.8/1")]
    public async Task Generic_3_8_GoAway_PingAckedOrClosedCleanly(string caseId)
    {
        Assert.Equal("generic/3.8/1", caseId);
        await using var client = await StartAsync();
        await client.SendAsync(w =>
        {
            Http2FrameWriter.WriteGoAway(w, 0, Http2ErrorCode.NO_ERROR, "h2spec"u8);
            RawFrame(w, Http2FrameType.PING, 0, 0, PingData);
        });
        // VerifyPingFrameOrConnectionClose: our PING's ACK, or a close; a GOAWAY on the way must say NO_ERROR.
        while (true)
        {
            var frame = await client.TryReadFrameAsync();
            if (frame is null)
            {
                return;
            }
            Assert.NotEqual(Http2FrameType.RST_STREAM, frame.Type);
            if (frame.Type == Http2FrameType.GOAWAY)
            {
                Assert.Equal(Http2ErrorCode.NO_ERROR, frame.ErrorCode);
            }
            if (frame.Type == Http2FrameType.PING && frame.IsAck)
            {
                Assert.Equal(PingData, frame.Payload);
                return;
            }
        }
    }

    // ---- generic/3.9 WINDOW_UPDATE ----

    [Theory]
    [InlineData("generic/3.9/1")]
    public async Task Generic_3_9_1_WindowUpdateOnConnection_Accepted(string caseId)
    {
        Assert.Equal("generic/3.9/1", caseId);
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WriteWindowUpdate(w, 0, 1));
        await ExpectPingAckAsync(client);
    }

    [Theory]
    [InlineData("generic/3.9/2")]
    public async Task Generic_3_9_2_WindowUpdateOnStream_RequestProcessed(string caseId)
    {
        Assert.Equal("generic/3.9/2", caseId);
        await using var client = await StartAsync();
        await client.SendAsync(w =>
        {
            Http2FrameWriter.WriteHeaders(w, 1, client.RequestBlock(), endStream: true);
            Http2FrameWriter.WriteWindowUpdate(w, 1, 1);
        });
        await ExpectOkAsync(client, 1);
        // The update may land after the stream closed: still no error for it.
        await ExpectPingAckAsync(client);
    }

    // ---- generic/3.10 CONTINUATION ----

    [Theory]
    [InlineData("generic/3.10/1", new[] { 5 })]
    [InlineData("generic/3.10/2", new[] { 5, 10 })]
    public async Task Generic_3_10_Continuation_RequestProcessed(string caseId, int[] cuts)
    {
        Assert.StartsWith("generic/3.10/", caseId);
        await using var client = await StartAsync();
        var block = client.RequestBlock();
        RawFrame(client, Http2FrameType.HEADERS, Http2FrameFlags.END_STREAM, 1, block.AsSpan(0, cuts[0]));
        for (int i = 0; i < cuts.Length; i++)
        {
            int end = i + 1 < cuts.Length ? cuts[i + 1] : block.Length;
            bool last = end == block.Length;
            RawFrame(client, Http2FrameType.CONTINUATION, last ? Http2FrameFlags.END_HEADERS : 0, 1, block.AsSpan(cuts[i], end - cuts[i]));
        }
        await client.FlushAsync();
        await ExpectOkAsync(client, 1);
    }

    // ---- generic/4 HTTP Message Exchanges ----

    [Theory]
    [InlineData("generic/4/1", "GET", false, false)]
    [InlineData("generic/4/2", "HEAD", false, false)]
    [InlineData("generic/4/3", "POST", true, false)]
    [InlineData("generic/4/4", "POST", true, true)]
    public async Task Generic_4_Request_Answered(string caseId, string method, bool body, bool trailers)
    {
        Assert.StartsWith("generic/4/", caseId);
        var app = new RecordingApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        string path = body ? "/echo" : "/";
        (string, string)[] extra = trailers ? [("trailer", "x-test")] : [];
        await client.SendRequestAsync(1, method, path, endStream: !body, extra);
        if (body)
        {
            await client.SendAsync(w => Http2FrameWriter.WriteData(w, 1, "test"u8, endStream: !trailers));
        }
        if (trailers)
        {
            await client.SendHeadersAsync(1, client.Block(("x-test", "ok")), endStream: true);
        }
        var response = await ExpectOkAsync(client, 1);
        Assert.Equal(method, app.Methods.Single());
        if (method == "HEAD")
        {
            Assert.Empty(response.Body); // a HEAD answer carries no body, though the route wrote "ok"
            Assert.Equal("2", response.Header("content-length"));
        }
        else
        {
            Assert.Equal(body ? "test" : "ok", System.Text.Encoding.ASCII.GetString(response.Body));
        }
        if (trailers)
        {
            Assert.Contains(("x-test", "ok"), response.Trailers); // /echo answers the request's trailers
        }
    }

    // ---- generic/5 HPACK ----

    /// <summary>
    /// h2spec's representation bytes, appended to (or, for size updates, put before) the request block, and the
    /// field the application must see; <c>indexed</c> says whether the field entered the dynamic table.
    /// </summary>
    [Theory]
    [InlineData("generic/5/1", "", "ba", "user-agent", "", false)]
    [InlineData("generic/5/2", "", "4087b505b161cc5a93849c48aca4", "user-agent", "h2spec", true)]
    [InlineData("generic/5/3", "", "400a757365722d6167656e7406683273706563", "user-agent", "h2spec", true)]
    [InlineData("generic/5/4", "", "4006782d7465737406683273706563", "x-test", "h2spec", true)]
    [InlineData("generic/5/5", "", "4085f2b24a84ff849c48aca4", "x-test", "h2spec", true)]
    [InlineData("generic/5/6", "", "000a757365722d6167656e7406683273706563", "user-agent", "h2spec", false)]
    [InlineData("generic/5/7", "", "0087b505b161cc5a93849c48aca4", "user-agent", "h2spec", false)]
    [InlineData("generic/5/8", "", "0006782d7465737406683273706563", "x-test", "h2spec", false)]
    [InlineData("generic/5/9", "", "0085f2b24a84ff849c48aca4", "x-test", "h2spec", false)]
    [InlineData("generic/5/10", "", "100a757365722d6167656e7406683273706563", "user-agent", "h2spec", false)]
    [InlineData("generic/5/11", "", "1087b505b161cc5a93849c48aca4", "user-agent", "h2spec", false)]
    [InlineData("generic/5/12", "", "1006782d7465737406683273706563", "x-test", "h2spec", false)]
    [InlineData("generic/5/13", "", "1085f2b24a84ff849c48aca4", "x-test", "h2spec", false)]
    [InlineData("generic/5/14", "3f61", "", null, null, false)]       // table size update to 128
    [InlineData("generic/5/15", "3f613fe11f", "", null, null, false)] // updates to 128, then 4096
    public async Task Generic_5_HpackRepresentation_RequestProcessed(string caseId, string prefixHex, string suffixHex, string? name, string? value, bool indexed)
    {
        Assert.StartsWith("generic/5/", caseId);
        var app = new RecordingApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        await client.SendHeadersAsync(1, [.. Hex(prefixHex), .. H2specCommonBlock(), .. Hex(suffixHex)], endStream: true);
        await ExpectOkAsync(client, 1);
        if (name is null)
        {
            return;
        }
        Assert.Contains((name, value!), app.Headers.Single());
        // The dynamic table now holds :authority, and the field before it if it was indexed: index 62 (newest)
        // must then be the field, and index 63 a decoding error if it was not.
        if (indexed)
        {
            await client.SendHeadersAsync(3, [.. client.RequestBlock(), 0xbe], endStream: true);
            await ExpectOkAsync(client, 3);
            Assert.Contains((name, value!), app.Headers.Last());
        }
        else
        {
            await client.SendHeadersAsync(3, [.. client.RequestBlock(), 0xbf], endStream: true);
            await client.ExpectConnectionErrorAsync(Http2ErrorCode.COMPRESSION_ERROR);
        }
    }

    // ---- hpack/* (RFC 7541): every case is a decoding error, a connection error of type COMPRESSION_ERROR ----

    [Theory]
    [InlineData("hpack/2.3.3/1", "", "c6")]          // indexed field, index 70 (past both tables)
    [InlineData("hpack/2.3.3/2", "", "7f0700")]      // literal with incremental indexing, name index 70
    [InlineData("hpack/4.2/1", "", "21")]            // table size update at the end of the block
    [InlineData("hpack/5.2/1", "", "0085f2b24a84ff8449509fff")] // Huffman padding longer than 7 bits
    [InlineData("hpack/5.2/2", "", "0085f2b24a84ff83495090")]   // Huffman padding of zeros, not EOS bits
    [InlineData("hpack/5.2/3", "", "0085f2b24a84ff874951fffffffa7f")] // EOS inside the string
    [InlineData("hpack/6.1/1", "", "80")]            // indexed field, index 0
    [InlineData("hpack/6.3/1", "table+1", "")]       // size update above SETTINGS_HEADER_TABLE_SIZE
    public async Task Hpack_DecodingError_CompressionError(string caseId, string prefixHex, string suffixHex)
    {
        Assert.StartsWith("hpack/", caseId);
        var app = new RecordingApplication();
        await using var client = await StartAsync(app);
        byte[] prefix = prefixHex == "table+1" ? SizeUpdate(TableSize(client) + 1) : Hex(prefixHex);
        await client.SendHeadersAsync(1, [.. prefix, .. H2specCommonBlock(), .. Hex(suffixHex)], endStream: true);
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.COMPRESSION_ERROR);
        Assert.Empty(app.Headers); // the broken block never became a request
    }

    // ---- coverage: the tables above hold every generic/* and hpack/* id of the corpus ----

    [Fact]
    public void Cases_CoverEveryGenericAndHpackIdInCorpus()
    {
        var text = File.ReadAllText(CorpusFiles.PathOf("h2spec-cases.md"));
        var listed = Regex.Matches(text, @"^- \*\*((?:generic|hpack)/[0-9.]+/[0-9]+)\*\*", RegexOptions.Multiline)
            .Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(44, listed.Count(id => id.StartsWith("generic/", StringComparison.Ordinal)));
        Assert.Equal(8, listed.Count(id => id.StartsWith("hpack/", StringComparison.Ordinal)));
        var ours = typeof(Http2SpecGenericTests).GetMethods()
            .SelectMany(m => m.GetCustomAttributes<InlineDataAttribute>())
            .SelectMany(a => a.GetData(null!))
            .Select(row => (string)row[0])
            .ToList();
        Assert.Equal(ours.Count, ours.Distinct().Count()); // one row per case
        Assert.Equal(listed.Order(StringComparer.Ordinal), ours.Order(StringComparer.Ordinal));
    }

    // ---- helpers ----

    private static Task<Http2TestClient> StartAsync(IHttpApplication? app = null) => Http2TestClient.StartAsync(app ?? new TestApplication());

    private static void RawFrame(Http2TestClient client, Http2FrameType type, Http2FrameFlags flags, int streamId, ReadOnlySpan<byte> payload)
    {
        Span<byte> header = stackalloc byte[Http2Frame.HeaderLength];
        Http2FrameWriter.WriteFrameHeader(header, payload.Length, type, flags, streamId);
        client.WriteRaw(header);
        client.WriteRaw(payload);
    }

    private static void RawFrame(System.Buffers.IBufferWriter<byte> w, Http2FrameType type, Http2FrameFlags flags, int streamId, ReadOnlySpan<byte> payload)
    {
        var span = w.GetSpan(Http2Frame.HeaderLength + payload.Length);
        Http2FrameWriter.WriteFrameHeader(span, payload.Length, type, flags, streamId);
        payload.CopyTo(span[Http2Frame.HeaderLength..]);
        w.Advance(Http2Frame.HeaderLength + payload.Length);
    }

    /// <summary>
    /// VerifyPingFrameWithAck, strictly: the ACK carries our 8 octets, and no RST_STREAM or GOAWAY comes before it
    /// (frames of a response still in flight are skipped).
    /// </summary>
    private static async Task ExpectPingAckAsync(Http2TestClient client)
    {
        await client.SendAsync(w => RawFrame(w, Http2FrameType.PING, 0, 0, PingData));
        while (true)
        {
            var frame = await client.TryReadFrameAsync();
            Assert.NotNull(frame); // the connection must stay open
            Assert.NotEqual(Http2FrameType.GOAWAY, frame!.Type);
            Assert.NotEqual(Http2FrameType.RST_STREAM, frame.Type);
            if (frame.Type == Http2FrameType.PING && frame.IsAck)
            {
                Assert.Equal(PingData, frame.Payload);
                return;
            }
        }
    }

    /// <summary>VerifyHeadersFrame, strictly: a 200 on the stream that ends with END_STREAM, not a reset.</summary>
    private static async Task<TestResponse> ExpectOkAsync(Http2TestClient client, int streamId)
    {
        var response = await client.ReadResponseAsync(streamId);
        Assert.Null(response.Reset);
        Assert.Equal(200, response.Status);
        return response;
    }

    /// <summary>The next frame on <paramref name="streamId"/>; a GOAWAY in between fails.</summary>
    private static async Task<ReadFrame> ReadStreamFrameAsync(Http2TestClient client, int streamId)
    {
        var frame = await client.ReadUntilAsync(f => f.StreamId == streamId || f.Type == Http2FrameType.GOAWAY);
        Assert.NotNull(frame);
        Assert.NotEqual(Http2FrameType.GOAWAY, frame!.Type);
        return frame;
    }

    /// <summary>
    /// h2spec's CommonHeaders as its (Go) HPACK encoder writes them: static-table hits as indexed fields and
    /// :authority as a literal with incremental indexing, so the block leaves one entry in the server's dynamic table.
    /// </summary>
    private static byte[] H2specCommonBlock()
    {
        byte[] authority = "example.test"u8.ToArray();
        return [0x82, 0x86, 0x84, 0x41, (byte)authority.Length, .. authority]; // :method GET, :scheme http, :path /
    }

    private static uint TableSize(Http2TestClient client) =>
        client.ServerSettings.TryGetValue(Http2SettingsParameter.SETTINGS_HEADER_TABLE_SIZE, out var size) ? size : 4096;

    /// <summary>An RFC 7541 §6.3 dynamic table size update (001 prefix, 5-bit integer).</summary>
    private static byte[] SizeUpdate(uint size)
    {
        var bytes = new List<byte>();
        if (size < 31)
        {
            bytes.Add((byte)(0x20 | size));
            return [.. bytes];
        }
        bytes.Add(0x3f);
        size -= 31;
        for (; size >= 128; size >>= 7)
        {
            bytes.Add((byte)(0x80 | (size & 0x7f)));
        }
        bytes.Add((byte)size);
        return [.. bytes];
    }

    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

    /// <summary>The connection tests' routes, recording each request's method and regular fields first.</summary>
    private sealed class RecordingApplication : IHttpApplication
    {
        private readonly TestApplication _inner = new();

        public ConcurrentQueue<string> Methods { get; } = new();

        public ConcurrentQueue<List<(string Name, string Value)>> Headers { get; } = new();

        public ValueTask ProcessAsync(HttpExchange exchange)
        {
            var request = exchange.Request;
            Methods.Enqueue(System.Text.Encoding.ASCII.GetString(request.MethodSpan));
            var fields = new List<(string, string)>();
            for (int i = 0; i < request.HeaderCount; i++)
            {
                fields.Add((System.Text.Encoding.ASCII.GetString(request.GetName(i)), System.Text.Encoding.ASCII.GetString(request.GetValue(i))));
            }
            Headers.Enqueue(fields);
            return _inner.ProcessAsync(exchange);
        }
    }
}
