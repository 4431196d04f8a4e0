using System.Buffers;
using System.Globalization;
using ProxyCore.Http.Http2;
using ProxyCore.Transport;

namespace ProxyCore.Http.Tests.Http2.Connection;

/// <summary>
/// Each known way to knock an HTTP/2 server over, mounted with the raw frame client: the victim
/// connection must end with GOAWAY and the right code (or a reset stream), and a neighbouring
/// connection of the same server (same application, options and clock) must keep serving.
/// </summary>
public sealed class Http2AttackTests
{
    private static Http2ConnectionOptions Options(FakeTimeProvider clock, int maxRapidResets = 200, int maxControlFrames = 5000) => new()
    {
        TimeProvider = clock,
        MaxRapidResets = maxRapidResets,
        MaxControlFrames = maxControlFrames,
    };

    private static void RawFrame(Http2TestClient client, Http2FrameType type, Http2FrameFlags flags, int streamId, ReadOnlySpan<byte> payload)
    {
        Span<byte> header = stackalloc byte[Http2Frame.HeaderLength];
        Http2FrameWriter.WriteFrameHeader(header, payload.Length, type, flags, streamId);
        client.WriteRaw(header);
        client.WriteRaw(payload);
    }

    /// <summary>The neighbour still answers a plain GET.</summary>
    private static async Task AssertServesAsync(Http2TestClient client, int streamId)
    {
        await client.SendRequestAsync(streamId);
        var response = await client.ReadResponseAsync(streamId);
        Assert.Equal(200, response.Status);
        Assert.Equal("ok", System.Text.Encoding.ASCII.GetString(response.Body));
    }

    /// <summary>
    /// A GET retried on REFUSED_STREAM as §8.7 allows a client (reset streams hold their slot until
    /// their work ends); returns the next free stream identifier.
    /// </summary>
    private static async Task<int> AssertServesRetryingAsync(Http2TestClient client, int streamId)
    {
        for (int attempt = 0; attempt < 200; attempt++, streamId += 2)
        {
            await client.SendRequestAsync(streamId);
            var response = await client.ReadResponseAsync(streamId);
            if (response.Reset == Http2ErrorCode.REFUSED_STREAM)
            {
                await Task.Delay(10);
                continue;
            }
            Assert.Equal(200, response.Status);
            return streamId + 2;
        }
        Assert.Fail("every retry was refused");
        return streamId;
    }

    /// <summary>Waits (bounded) until some timer on the fake clock is due within <paramref name="within"/>.</summary>
    private static async Task WaitForTimerDueAsync(FakeTimeProvider clock, TimeSpan within)
    {
        for (int i = 0; i < 1000 && !(clock.NextDueIn <= within); i++)
        {
            await Task.Delay(10);
        }
        Assert.True(clock.NextDueIn <= within, $"no timer due within {within} (next: {clock.NextDueIn})");
    }

    // ---- 1. Rapid Reset (CVE-2023-44487) ----

    [Theory]
    [InlineData(120, false, false)]  // within the budget: a client that cancels a lot is still served
    [InlineData(201, false, true)]   // past it within one window: GOAWAY ENHANCE_YOUR_CALM
    [InlineData(240, true, false)]   // 120 + 120 with the window passing between: served
    public async Task RapidReset_OpenAndCancelStreams_GoAwayOnlyPastTheBudget(int streams, bool windowPassesHalfway, bool expectGoAway)
    {
        var clock = new FakeTimeProvider();
        var app = new AttackApplication();
        var options = Options(clock);
        var transport = new InMemoryTransport();
        await using var victim = await Http2TestClient.StartAsync(app, options, transport: transport);
        await using var neighbour = await Http2TestClient.StartAsync(app, options, transport: transport);

        int streamId = 1;
        for (int i = 0; i < streams; i++)
        {
            if (windowPassesHalfway && i == streams / 2)
            {
                await victim.FlushAsync();
                streamId = await AssertServesRetryingAsync(victim, streamId); // a round trip: the first half was all read
                clock.Advance(options.RapidResetWindow);
            }
            // HEADERS and RST_STREAM back to back: the attack's whole point is the stream costs us
            // work (the application starts) while the client pays nothing.
            var id = streamId;
            victim.Write(w => Http2FrameWriter.WriteHeaders(w, id, victim.RequestBlock(path: "/hold"), endStream: true));
            victim.Write(w => Http2FrameWriter.WriteRstStream(w, id, Http2ErrorCode.CANCEL));
            streamId += 2;
        }
        await victim.FlushAsync();

        if (expectGoAway)
        {
            Assert.StartsWith("rapid-reset:", await victim.ExpectConnectionErrorAsync(Http2ErrorCode.ENHANCE_YOUR_CALM));
        }
        else
        {
            await AssertServesRetryingAsync(victim, streamId);
        }
        await AssertServesAsync(neighbour, 1);
        // Every stream whose application started was cancelled: its work (an upstream request) ends.
        await app.WaitForAllHoldsCancelledAsync();
        Assert.True(app.HoldsStarted <= streams);
    }

    [Fact]
    public async Task RapidReset_ResetOfAStartedExchange_CancelsItsWork()
    {
        var app = new AttackApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        await client.SendRequestAsync(1, path: "/hold");
        await app.FirstHold.Task.WaitAsync(Http2TestClient.Timeout);
        await client.SendAsync(w => Http2FrameWriter.WriteRstStream(w, 1, Http2ErrorCode.CANCEL));
        await app.WaitForAllHoldsCancelledAsync();
        Assert.Equal(1, app.HoldsCancelled);
        await AssertServesAsync(client, 3);
    }

    [Fact]
    public async Task RapidReset_StreamsPastMaxConcurrent_RefusedThenGoAway()
    {
        // Opening past SETTINGS_MAX_CONCURRENT_STREAMS over and over (each refused) counts too: the
        // held streams are never reset, so only the refusals spend the budget.
        var clock = new FakeTimeProvider();
        var app = new AttackApplication();
        await using var client = await Http2TestClient.StartAsync(app, new Http2ConnectionOptions { TimeProvider = clock, MaxRapidResets = 20, MaxConcurrentStreams = 2 });
        for (int id = 1; id <= 2 * 25 + 3; id += 2)
        {
            var streamId = id;
            client.Write(w => Http2FrameWriter.WriteHeaders(w, streamId, client.RequestBlock(path: "/hold"), endStream: true));
        }
        await client.FlushAsync();
        var refused = await client.ReadUntilAsync(f => f.Type == Http2FrameType.RST_STREAM);
        Assert.Equal(Http2ErrorCode.REFUSED_STREAM, refused!.ErrorCode);
        Assert.StartsWith("rapid-reset:", await client.ExpectConnectionErrorAsync(Http2ErrorCode.ENHANCE_YOUR_CALM));
        await app.WaitForAllHoldsCancelledAsync();
    }

    // ---- 2. CONTINUATION flood (CVE-2024-27316 family) ----

    [Theory]
    [InlineData("empty", 1000)]       // HEADERS then a thousand empty CONTINUATION frames
    [InlineData("one-byte", 1000)]    // a block dribbled out one octet per frame
    [InlineData("big", 50)]           // 50 frames of 1,500 octets: within the frame cap, past twice MaxHeaderListSize
    public async Task ContinuationFlood_NeverEndingBlock_GoAwayEnhanceYourCalm(string shape, int frames)
    {
        var app = new AttackApplication();
        var transport = new InMemoryTransport();
        var options = new Http2ConnectionOptions { MaxHeaderListSize = 32 * 1024 };
        await using var victim = await Http2TestClient.StartAsync(app, options, transport: transport);
        await using var neighbour = await Http2TestClient.StartAsync(app, options, transport: transport);

        var block = victim.RequestBlock(path: "/");
        // Dynamic table size updates to 4,096 (RFC 7541 §6.3), allowed any number of times at the
        // start of a block: octets the decoder takes without the header list growing, so only the
        // raw cap can stop them.
        var filler = new byte[1500];
        for (int i = 0; i < filler.Length; i += 3)
        {
            filler[i] = 0x3F;
            filler[i + 1] = 0xE1;
            filler[i + 2] = 0x1F;
        }
        RawFrame(victim, Http2FrameType.HEADERS, Http2FrameFlags.END_STREAM, 1, shape == "big" ? filler.AsSpan(0, 3) : block.AsSpan(0, 1));
        for (int i = 0; i < frames; i++)
        {
            ReadOnlySpan<byte> fragment = shape switch
            {
                "empty" => [],
                "one-byte" => block.AsSpan(1 + (i % (block.Length - 1)), 1),
                _ => filler,
            };
            RawFrame(victim, Http2FrameType.CONTINUATION, 0, 1, fragment);
        }
        await victim.FlushAsync();

        Assert.StartsWith("header-block-too-large:", await victim.ExpectConnectionErrorAsync(Http2ErrorCode.ENHANCE_YOUR_CALM));
        Assert.Equal(0, app.Requests);
        await AssertServesAsync(neighbour, 1);
    }

    [Fact]
    public async Task Continuation_BlockInTenPieces_Served()
    {
        var app = new AttackApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        var block = client.RequestBlock("GET", "/", ("x-a", new string('a', 100)), ("x-b", new string('b', 100)));
        int piece = (block.Length + 9) / 10;
        RawFrame(client, Http2FrameType.HEADERS, Http2FrameFlags.END_STREAM, 1, block.AsSpan(0, piece));
        for (int at = piece; at < block.Length; at += piece)
        {
            int n = Math.Min(piece, block.Length - at);
            RawFrame(client, Http2FrameType.CONTINUATION, at + n == block.Length ? Http2FrameFlags.END_HEADERS : 0, 1, block.AsSpan(at, n));
        }
        await client.FlushAsync();
        var response = await client.ReadResponseAsync(1);
        Assert.Equal(200, response.Status);
    }

    [Theory]
    [InlineData(false)] // HEADERS without END_HEADERS, then silence: the connection is blocked (§6.2)
    [InlineData(true)]  // a CONTINUATION every 3 s: each frame must not buy more time
    public async Task HeaderBlock_NotFinishedInTheTimeout_GoAwayEnhanceYourCalm(bool dribble)
    {
        var clock = new FakeTimeProvider();
        var app = new AttackApplication();
        var options = new Http2ConnectionOptions { TimeProvider = clock, HeaderBlockTimeout = TimeSpan.FromSeconds(10) };
        var transport = new InMemoryTransport();
        await using var victim = await Http2TestClient.StartAsync(app, options, transport: transport);
        await using var neighbour = await Http2TestClient.StartAsync(app, options, transport: transport);

        var block = victim.RequestBlock(path: "/");
        RawFrame(victim, Http2FrameType.HEADERS, Http2FrameFlags.END_STREAM, 1, block.AsSpan(0, 1));
        await victim.FlushAsync();
        // The block's deadline is armed (the idle timers are a minute away): from here on it is
        // absolute, so when the server takes each later frame does not matter.
        await WaitForTimerDueAsync(clock, options.HeaderBlockTimeout);
        for (int i = 1; i <= 3; i++)
        {
            clock.Advance(TimeSpan.FromSeconds(3));
            if (dribble)
            {
                RawFrame(victim, Http2FrameType.CONTINUATION, 0, 1, block.AsSpan(i, 1));
                await victim.FlushAsync();
            }
        }
        clock.Advance(TimeSpan.FromSeconds(1));

        Assert.StartsWith("header-block-timeout:", await victim.ExpectConnectionErrorAsync(Http2ErrorCode.ENHANCE_YOUR_CALM));
        Assert.Equal(0, app.Requests);
        await AssertServesAsync(neighbour, 1);
    }

    // ---- 3. HPACK bomb ----

    [Fact]
    public async Task HpackBomb_OneBigEntryReferencedAThousandTimes_GoAwayCompressionError()
    {
        var app = new AttackApplication();
        var transport = new InMemoryTransport();
        await using var victim = await Http2TestClient.StartAsync(app, transport: transport);
        await using var neighbour = await Http2TestClient.StartAsync(app, transport: transport);

        // Stream 1: a 4,000-octet value, literal with incremental indexing (RFC 7541 §6.2.1): it
        // becomes dynamic entry 62 and fits the 4,096-octet table, and the request is served.
        var big = new ArrayBufferWriter<byte>();
        big.Write(victim.RequestBlock(path: "/"));
        big.Write((ReadOnlySpan<byte>)[0x40, 0x05, (byte)'x', (byte)'-', (byte)'b', (byte)'i', (byte)'g']);
        WriteLength(big, 4000);
        big.Write(Enumerable.Repeat((byte)'v', 4000).ToArray());
        await victim.SendHeadersAsync(1, big.WrittenSpan.ToArray(), endStream: true);
        Assert.Equal(200, (await victim.ReadResponseAsync(1)).Status);

        // Stream 3: 1,000 one-octet references to it, 4 MB decoded from 1 KB on the wire. The header
        // list cap (32 KiB) stops the decoder at the ninth: a connection error (§4.3), no request.
        var bomb = new ArrayBufferWriter<byte>();
        bomb.Write(victim.RequestBlock(path: "/"));
        bomb.Write(Enumerable.Repeat((byte)0xBE, 1000).ToArray()); // indexed field, index 62
        await victim.SendHeadersAsync(3, bomb.WrittenSpan.ToArray(), endStream: true);
        await victim.ExpectConnectionErrorAsync(Http2ErrorCode.COMPRESSION_ERROR);
        Assert.Equal(1, app.Requests);
        await AssertServesAsync(neighbour, 1);
    }

    [Fact]
    public async Task HpackBomb_TableSizeUpdateAboveOurSetting_GoAwayCompressionError()
    {
        // The client cannot make us keep a bigger table than SETTINGS_HEADER_TABLE_SIZE (RFC 7541 §4.2).
        await using var client = await Http2TestClient.StartAsync(new AttackApplication());
        var block = new ArrayBufferWriter<byte>();
        block.Write((ReadOnlySpan<byte>)[0x3F, 0xE2, 0x1F]); // size update to 4,097
        block.Write(client.RequestBlock(path: "/"));
        await client.SendHeadersAsync(1, block.WrittenSpan.ToArray(), endStream: true);
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.COMPRESSION_ERROR);
    }

    private static void WriteLength(ArrayBufferWriter<byte> buffer, int length)
    {
        // RFC 7541 §5.1 integer with a 7-bit prefix, no Huffman.
        if (length < 127)
        {
            buffer.Write((ReadOnlySpan<byte>)[(byte)length]);
            return;
        }
        var bytes = new List<byte> { 127 };
        length -= 127;
        while (length >= 128)
        {
            bytes.Add((byte)((length % 128) + 128));
            length /= 128;
        }
        bytes.Add((byte)length);
        buffer.Write(bytes.ToArray());
    }

    // ---- 4. Floods of frames that cost us work ----

    [Theory]
    [InlineData("ping")]
    [InlineData("settings")]
    [InlineData("priority")]
    [InlineData("empty-data")]
    [InlineData("empty-headers")]
    [InlineData("tiny-window-update")]
    [InlineData("window-update-closed-stream")]
    [InlineData("window-update-idle-connection")]
    [InlineData("rst-closed-stream")]
    [InlineData("unknown-type")]
    public async Task Flood_PastTheControlFrameBudget_GoAwayEnhanceYourCalm(string kind)
    {
        var clock = new FakeTimeProvider();
        var app = new AttackApplication();
        var options = Options(clock, maxControlFrames: 100);
        var transport = new InMemoryTransport();
        await using var victim = await Http2TestClient.StartAsync(app, options, transport: transport);
        await using var neighbour = await Http2TestClient.StartAsync(app, options, transport: transport);

        if (kind is "empty-data")
        {
            await victim.SendRequestAsync(1, "POST", "/hold", endStream: false);
        }
        if (kind is "window-update-closed-stream" or "rst-closed-stream")
        {
            await AssertServesAsync(victim, 1);
        }
        for (int i = 0; i < 101; i++)
        {
            int n = i;
            switch (kind)
            {
                case "ping":
                    victim.Write(w => Http2FrameWriter.WritePing(w, (ulong)n, ack: false));
                    break;
                case "settings":
                    victim.Write(w => Http2FrameWriter.WriteSettings(w, []));
                    break;
                case "priority":
                    RawFrame(victim, Http2FrameType.PRIORITY, 0, 1001 + (2 * n), [0, 0, 0, 0, 16]);
                    break;
                case "empty-data":
                    victim.Write(w => Http2FrameWriter.WriteData(w, 1, ReadOnlySpan<byte>.Empty, endStream: false));
                    break;
                case "empty-headers":
                    // A new stream each time, with an empty (so malformed, §8.3.1) field block: each costs a RST_STREAM.
                    RawFrame(victim, Http2FrameType.HEADERS, Http2FrameFlags.END_HEADERS | Http2FrameFlags.END_STREAM, 1 + (2 * n), []);
                    break;
                case "tiny-window-update":
                    victim.Write(w => Http2FrameWriter.WriteWindowUpdate(w, 0, 1));
                    break;
                case "window-update-idle-connection":
                    victim.Write(w => Http2FrameWriter.WriteWindowUpdate(w, 0, 4096));
                    break;
                case "window-update-closed-stream":
                    victim.Write(w => Http2FrameWriter.WriteWindowUpdate(w, 1, 65_536));
                    break;
                case "rst-closed-stream":
                    victim.Write(w => Http2FrameWriter.WriteRstStream(w, 1, Http2ErrorCode.CANCEL));
                    break;
                default:
                    RawFrame(victim, (Http2FrameType)0x42, 0, 0, [1, 2, 3]);
                    break;
            }
        }
        await victim.FlushAsync();

        Assert.StartsWith("control-frame-flood:", await victim.ExpectConnectionErrorAsync(Http2ErrorCode.ENHANCE_YOUR_CALM));
        await AssertServesAsync(neighbour, 1);
    }

    [Fact]
    public async Task Flood_PingsWithDefaults_CutOffPastFiveThousandInTheWindow()
    {
        var clock = new FakeTimeProvider();
        var options = new Http2ConnectionOptions { TimeProvider = clock };
        await using var client = await Http2TestClient.StartAsync(new AttackApplication(), options);
        // 4,998 in one window and 4,998 in the next: fine (the handshake's SETTINGS and its ACK spent two).
        for (int round = 0; round < 2; round++)
        {
            for (int i = 0; i < 4998; i++)
            {
                client.Write(w => Http2FrameWriter.WritePing(w, (ulong)i, ack: false));
            }
            var flush = client.StartFlush();
            for (int i = 0; i < 4998; i++)
            {
                var ack = await client.ReadFrameAsync();
                Assert.Equal(Http2FrameType.PING, ack.Type);
            }
            await flush.WaitAsync(Http2TestClient.Timeout);
            clock.Advance(options.ControlFrameWindow);
        }
        await AssertServesAsync(client, 1);
        for (int i = 0; i < 5001; i++)
        {
            client.Write(w => Http2FrameWriter.WritePing(w, (ulong)i, ack: false));
        }
        var last = client.StartFlush();
        Assert.StartsWith("control-frame-flood:", await client.ExpectConnectionErrorAsync(Http2ErrorCode.ENHANCE_YOUR_CALM));
        await last.WaitAsync(Http2TestClient.Timeout);
    }

    [Fact]
    public async Task Flood_PingsNeverRead_ServerStopsReadingThenAbortsAfterStallTimeout()
    {
        // A peer that sends PINGs but never reads our answers: our output must not grow without
        // bound. The transport's buffers fill, our flush waits, the read loop stops taking frames, and
        // the client's own writes back up. After the stall timeout the connection is aborted.
        var clock = new FakeTimeProvider();
        var options = new Http2ConnectionOptions { TimeProvider = clock, MaxControlFrames = int.MaxValue };
        var transport = new InMemoryTransport { MaxReadBufferSize = 64 * 1024, MaxWriteBufferSize = 64 * 1024 };
        var app = new AttackApplication();
        await using var victim = await Http2TestClient.StartAsync(app, options, transport: transport);
        await using var neighbour = await Http2TestClient.StartAsync(app, options, transport: transport);

        bool backedUp = false;
        Task? pending = null;
        long sent = 0;
        for (int round = 0; round < 500 && !backedUp; round++)
        {
            for (int i = 0; i < 1000; i++)
            {
                victim.Write(w => Http2FrameWriter.WritePing(w, 7, ack: false));
            }
            sent += 1000 * 17;
            pending = victim.StartFlush();
            backedUp = await Task.WhenAny(pending, Task.Delay(2000)) != pending; // not 500 ms: a loaded CI box can stall a flush that long
        }
        Assert.True(backedUp, $"the server kept reading after {sent} octets of PINGs whose answers nobody read");
        // Each PING costs 17 octets out; what the server could have written is bounded by the buffers
        // between us (64 KiB each way in this transport), far below what we sent.
        Assert.True(sent < 500 * 1000 * 17);

        await WaitForTimerDueAsync(clock, options.StallTimeout);
        clock.Advance(options.StallTimeout);
        await victim.ServerTask.WaitAsync(Http2TestClient.Timeout);
        await AssertServesAsync(neighbour, 1);
    }

    [Fact]
    public async Task Settings_ThousandsOfWindowChangesInOneFrame_AppliedOnceLastWins()
    {
        // 2,730 SETTINGS_INITIAL_WINDOW_SIZE entries in one 16 KiB frame: the last value stands, and
        // the streams' windows move once (§6.9.2), not once per entry.
        var app = new AttackApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        var settings = new Http2Setting[2730];
        for (int i = 0; i < settings.Length; i++)
        {
            settings[i] = new(Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE, (uint)(i % 2 == 0 ? 1_000_000 : 0));
        }
        settings[^1] = new(Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE, 10);
        await client.SendAsync(w => Http2FrameWriter.WriteSettings(w, settings));
        Assert.NotNull(await client.ReadUntilAsync(f => f.Type == Http2FrameType.SETTINGS && f.IsAck));
        await client.SendRequestAsync(1, path: "/big", extra: [("x-size", "100")]);
        var data = await client.ReadUntilAsync(f => f.Type == Http2FrameType.DATA && f.StreamId == 1);
        Assert.Equal(10, data!.Payload.Length); // the stream window is the last value: 10 octets
    }

    // ---- 5. Slow readers and idle connections ----

    [Fact]
    public async Task Stall_StreamWindowNeverOpened_StreamResetCancelConnectionServes()
    {
        var clock = new FakeTimeProvider();
        var app = new AttackApplication();
        await using var client = await Http2TestClient.StartAsync(app, new Http2ConnectionOptions { TimeProvider = clock });
        // SETTINGS_INITIAL_WINDOW_SIZE 0: every stream starts with no window to send in (§6.9.2).
        await client.SendAsync(w => Http2FrameWriter.WriteSettings(w, [new(Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE, 0)]));
        await client.SendRequestAsync(1, path: "/big", extra: [("x-size", "1000")]);
        var head = await client.ReadUntilAsync(f => f.Type == Http2FrameType.HEADERS && f.StreamId == 1);
        Assert.NotNull(head);
        await WaitForTimerDueAsync(clock, TimeSpan.FromSeconds(30));
        clock.Advance(TimeSpan.FromSeconds(30));

        var reset = await client.ReadUntilAsync(f => f.Type is Http2FrameType.RST_STREAM or Http2FrameType.GOAWAY);
        Assert.Equal(Http2FrameType.RST_STREAM, reset!.Type);
        Assert.Equal(1, reset.StreamId);
        Assert.Equal(Http2ErrorCode.CANCEL, reset.ErrorCode);

        // The connection is not stuck: a stream the client gives window to is served.
        await client.SendRequestAsync(3);
        await client.SendAsync(w => Http2FrameWriter.WriteWindowUpdate(w, 3, 100));
        var response = await client.ReadResponseAsync(3);
        Assert.Equal("ok", System.Text.Encoding.ASCII.GetString(response.Body));
    }

    [Fact]
    public async Task Stall_ConnectionWindowNeverOpened_GoAwayEnhanceYourCalm()
    {
        var clock = new FakeTimeProvider();
        var app = new AttackApplication();
        var options = new Http2ConnectionOptions { TimeProvider = clock };
        // Room for the whole window in the transport: a flush waiting on it would arm the flush's own stall timer, also due
        // in StallTimeout, and the wait below could take that one (gone once the flush ends) for the window's.
        var transport = new InMemoryTransport { MaxWriteBufferSize = 1024 * 1024 };
        await using var victim = await Http2TestClient.StartAsync(app, options, transport: transport);
        await using var neighbour = await Http2TestClient.StartAsync(app, options, transport: transport);
        // Streams may take 1 MiB, the connection stays at its initial 65,535 octets, never given back.
        await victim.SendAsync(w => Http2FrameWriter.WriteSettings(w, [new(Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE, 1024 * 1024)]));
        await victim.SendRequestAsync(1, path: "/big", extra: [("x-size", "100000")]);
        long received = 0;
        while (received < 65_535)
        {
            var frame = await victim.ReadFrameAsync();
            if (frame.Type == Http2FrameType.DATA)
            {
                received += frame.Payload.Length;
            }
        }
        Assert.Equal(65_535, received);
        await WaitForTimerDueAsync(clock, options.StallTimeout);
        clock.Advance(options.StallTimeout);

        Assert.StartsWith("flow-control-stall:", await victim.ExpectConnectionErrorAsync(Http2ErrorCode.ENHANCE_YOUR_CALM));
        await AssertServesAsync(neighbour, 1);
    }

    [Fact]
    public async Task Idle_NoStreamForTheIdleTimeout_GoAwayNoErrorThenClose()
    {
        var clock = new FakeTimeProvider();
        var options = new Http2ConnectionOptions { TimeProvider = clock, IdleTimeout = TimeSpan.FromSeconds(60) };
        await using var client = await Http2TestClient.StartAsync(new AttackApplication(), options);
        // A response read without a frame back (no WINDOW_UPDATE): the server must arm the timeout
        // when its last stream ends, not only when the client next sends something.
        await client.SendRequestAsync(1);
        Assert.NotNull(await client.ReadUntilAsync(f => f.StreamId == 1 && f.EndStream));
        await WaitForTimerDueAsync(clock, options.IdleTimeout);
        clock.Advance(TimeSpan.FromSeconds(59));
        await client.SendRequestAsync(3); // activity: still open
        Assert.NotNull(await client.ReadUntilAsync(f => f.StreamId == 3 && f.EndStream));
        await WaitForTimerDueAsync(clock, options.IdleTimeout);
        Assert.True(clock.NextDueIn > TimeSpan.FromSeconds(59), "the idle timeout restarts with activity");
        clock.Advance(TimeSpan.FromSeconds(60));

        var goAway = await client.ReadUntilAsync(f => f.Type == Http2FrameType.GOAWAY);
        Assert.NotNull(goAway);
        Assert.Equal(Http2ErrorCode.NO_ERROR, goAway!.ErrorCode);
        Assert.Equal(3, goAway.GoAwayLastStreamId);
        Assert.Null(await client.ReadUntilAsync(_ => false));
    }

    [Fact]
    public async Task Idle_StreamStillOpen_NotClosed()
    {
        var clock = new FakeTimeProvider();
        var app = new AttackApplication();
        var options = new Http2ConnectionOptions { TimeProvider = clock, IdleTimeout = TimeSpan.FromSeconds(60) };
        await using var client = await Http2TestClient.StartAsync(app, options);
        await client.SendRequestAsync(1, path: "/hold");
        await app.FirstHold.Task.WaitAsync(Http2TestClient.Timeout);
        clock.Advance(TimeSpan.FromMinutes(5));
        await client.SendAsync(w => Http2FrameWriter.WritePing(w, 9, ack: false));
        var ack = await client.ReadUntilAsync(f => f.Type is Http2FrameType.PING or Http2FrameType.GOAWAY);
        Assert.Equal(Http2FrameType.PING, ack!.Type);
    }

    // ---- 6. Defaults ----

    [Fact]
    public async Task Defaults_StreamsWindowsAndTable_AsDocumented()
    {
        var options = Http2ConnectionOptions.Default;
        Assert.Equal((100, 65_535, 1024 * 1024, 4096, 64), (options.MaxConcurrentStreams, options.InitialStreamWindowSize, options.ConnectionWindowSize, options.HeaderTableSize, options.MaxHeaderBlockFrames));
        Assert.Equal((200, 5000), (options.MaxRapidResets, options.MaxControlFrames));
        Assert.Equal((TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(60)), (options.StallTimeout, options.IdleTimeout));
        await using var client = await Http2TestClient.StartAsync(new AttackApplication());
        Assert.Equal(100u, client.ServerSettings[Http2SettingsParameter.SETTINGS_MAX_CONCURRENT_STREAMS]);
        Assert.Equal(65_535u, client.ServerSettings[Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE]);
        Assert.Equal(4096u, client.ServerSettings[Http2SettingsParameter.SETTINGS_HEADER_TABLE_SIZE]);
        Assert.Equal((1024 * 1024) - 65_535, client.ServerConnectionWindowIncrement);
    }
}

/// <summary>
/// "/" answers "ok"; "/hold" keeps the stream until it is aborted (counting starts and
/// cancellations); "/big" answers x-size octets.
/// </summary>
internal sealed class AttackApplication : IHttpApplication
{
    private int _requests;
    private int _holdsStarted;
    private int _holdsCancelled;

    public TaskCompletionSource FirstHold { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Requests => Volatile.Read(ref _requests);

    public int HoldsStarted => Volatile.Read(ref _holdsStarted);

    public int HoldsCancelled => Volatile.Read(ref _holdsCancelled);

    public async Task WaitForAllHoldsCancelledAsync()
    {
        for (int i = 0; i < 1000 && HoldsCancelled < HoldsStarted; i++)
        {
            await Task.Delay(10);
        }
        Assert.Equal(HoldsStarted, HoldsCancelled);
    }

    public async ValueTask ProcessAsync(HttpExchange exchange)
    {
        Interlocked.Increment(ref _requests);
        var path = System.Text.Encoding.ASCII.GetString(exchange.Request.PathSpan);
        if (path == "/hold")
        {
            Interlocked.Increment(ref _holdsStarted);
            FirstHold.TrySetResult();
            var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using (exchange.Aborted.Register(() => aborted.TrySetResult()))
            {
                await aborted.Task.WaitAsync(TimeSpan.FromSeconds(30));
            }
            Interlocked.Increment(ref _holdsCancelled);
            return;
        }
        byte[] body = "ok"u8.ToArray();
        if (path == "/big" && exchange.Request.TryGetValue("x-size"u8, out var size))
        {
            body = new byte[int.Parse(System.Text.Encoding.ASCII.GetString(size), CultureInfo.InvariantCulture)];
        }
        exchange.Response.StatusCode = 200;
        await exchange.StartResponseAsync(BodyFraming.ContentLength, body.Length);
        await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(body), flush: true);
        await exchange.CompleteResponseAsync();
    }
}
