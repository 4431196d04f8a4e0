using System.Buffers;
using ProxyCore.Http.Http2;

namespace ProxyCore.Http.Tests.Http2.Connection;

public sealed class Http2ConnectionTests
{
    [Fact]
    public async Task Handshake_PrefaceAndSettings_ServerAnnouncesItsLimits()
    {
        await using var client = await Http2TestClient.StartAsync(new TestApplication());
        Assert.Equal(100u, client.ServerSettings[Http2SettingsParameter.SETTINGS_MAX_CONCURRENT_STREAMS]);
        Assert.Equal(65_535u, client.ServerSettings[Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE]);
        Assert.Equal(16_384u, client.ServerSettings[Http2SettingsParameter.SETTINGS_MAX_FRAME_SIZE]);
        Assert.Equal(32u * 1024, client.ServerSettings[Http2SettingsParameter.SETTINGS_MAX_HEADER_LIST_SIZE]);
        Assert.Equal((1024 * 1024) - 65_535, client.ServerConnectionWindowIncrement);
    }

    [Fact]
    public async Task Get_Answered_WithStatusBodyAndNoConnectionHeader()
    {
        var app = new TestApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        await client.SendRequestAsync(1, path: "/a/b?x=1", extra: [("cookie", "a=1"), ("cookie", "b=2")]);
        var response = await client.ReadResponseAsync(1);
        Assert.Equal(200, response.Status);
        Assert.Equal("ok", System.Text.Encoding.ASCII.GetString(response.Body));
        Assert.Equal("2", response.Header("content-length"));
        Assert.Null(response.Header("connection"));
        Assert.Equal("/a/b", app.LastPath);
        Assert.Equal("?x=1", app.LastQuery);
        Assert.Equal("example.test", app.LastAuthority);
        Assert.Equal("a=1; b=2", app.LastCookie);
        Assert.Equal(HttpVersion.Http2, app.LastVersion);
        Assert.Equal(BodyFraming.None, app.LastFraming);
    }

    [Fact]
    public async Task Post_BodyLargerThanTheStreamWindow_NeedsOurWindowUpdates()
    {
        var app = new TestApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        var body = new byte[200_000];
        new Random(3).NextBytes(body);
        await client.SendRequestAsync(1, "POST", "/echo", endStream: false, ("content-length", body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)));

        // Send only what the windows allow; past 65,535 octets the server must give window back.
        int sent = 0;
        long streamWindow = 65_535;
        while (sent < body.Length)
        {
            while (streamWindow == 0)
            {
                var frame = await client.ReadFrameAsync();
                if (frame.Type == Http2FrameType.WINDOW_UPDATE && frame.StreamId == 1)
                {
                    streamWindow += frame.WindowIncrement;
                }
            }
            int n = (int)Math.Min(Math.Min(16_384, streamWindow), body.Length - sent);
            bool last = sent + n == body.Length;
            await client.SendAsync(w => Http2FrameWriter.WriteData(w, 1, body.AsSpan(sent, n), endStream: last));
            sent += n;
            streamWindow -= n;
        }
        var response = await client.ReadResponseAsync(1);
        Assert.Equal(200, response.Status);
        Assert.Equal(body, response.Body);
        Assert.Equal(BodyFraming.ContentLength, app.LastFraming);
    }

    [Fact]
    public async Task Post_WithTrailers_TrailersReachTheApplication()
    {
        await using var client = await Http2TestClient.StartAsync(new TestApplication());
        await client.SendRequestAsync(1, "POST", "/echo", endStream: false);
        await client.SendAsync(w => Http2FrameWriter.WriteData(w, 1, "hello"u8, endStream: false));
        await client.SendHeadersAsync(1, client.Block(("x-sum", "42")), endStream: true);
        var response = await client.ReadResponseAsync(1);
        Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(response.Body));
        Assert.Contains(("x-sum", "42"), response.Trailers);
    }

    [Fact]
    public async Task ConcurrentStreams_Interleaved_EachAnswered()
    {
        await using var client = await Http2TestClient.StartAsync(new TestApplication());
        await client.SendRequestAsync(1, "POST", "/echo", endStream: false);
        await client.SendRequestAsync(3, "POST", "/echo", endStream: false);
        await client.SendRequestAsync(5, "GET", "/");
        await client.SendAsync(w => Http2FrameWriter.WriteData(w, 3, "three"u8, endStream: false));
        await client.SendAsync(w => Http2FrameWriter.WriteData(w, 1, "one"u8, endStream: false));
        await client.SendAsync(w => Http2FrameWriter.WriteData(w, 3, "!"u8, endStream: true));
        await client.SendAsync(w => Http2FrameWriter.WriteData(w, 1, "!"u8, endStream: true));
        var bodies = new Dictionary<int, string>();
        for (int i = 0; i < 3; i++)
        {
            var frame = await client.ReadUntilAsync(f => f.Type == Http2FrameType.DATA && f.EndStream || f.Type == Http2FrameType.HEADERS && f.EndStream);
            Assert.NotNull(frame);
            bodies[frame!.StreamId] = System.Text.Encoding.ASCII.GetString(frame.Payload);
        }
        Assert.Equal(new[] { 1, 3, 5 }, bodies.Keys.Order());
    }

    [Fact]
    public async Task Ping_Answered_WithAckAndSameData()
    {
        await using var client = await Http2TestClient.StartAsync(new TestApplication());
        await client.SendAsync(w => Http2FrameWriter.WritePing(w, 0x0102030405060708, ack: false));
        var frame = await client.ReadUntilAsync(f => f.Type == Http2FrameType.PING);
        Assert.True(frame!.IsAck);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, frame.Payload);
    }

    [Fact]
    public async Task RstStream_FromClient_CancelsTheExchange()
    {
        var app = new TestApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        await client.SendRequestAsync(1, path: "/wait");
        await app.Waiting.Task.WaitAsync(Http2TestClient.Timeout);
        await client.SendAsync(w => Http2FrameWriter.WriteRstStream(w, 1, Http2ErrorCode.CANCEL));
        await app.Aborted.Task.WaitAsync(Http2TestClient.Timeout);
        // The connection goes on.
        await client.SendRequestAsync(3);
        Assert.Equal(200, (await client.ReadResponseAsync(3)).Status);
    }

    [Fact]
    public async Task Shutdown_WithStreamInFlight_GoAwayThenStreamFinishesThenClose()
    {
        var app = new TestApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        await client.SendRequestAsync(1, "POST", "/echo", endStream: false);
        await client.SendRequestAsync(3);
        Assert.Equal(200, (await client.ReadResponseAsync(3)).Status);
        client.StopServer();
        var goAway = await client.ReadUntilAsync(f => f.Type == Http2FrameType.GOAWAY);
        Assert.Equal(Http2ErrorCode.NO_ERROR, goAway!.ErrorCode);
        Assert.Equal(3, goAway.GoAwayLastStreamId);
        // Stream 1 is still served after GOAWAY; new streams are refused.
        await client.SendRequestAsync(5);
        await client.ExpectStreamErrorAsync(5, Http2ErrorCode.REFUSED_STREAM);
        await client.SendAsync(w => Http2FrameWriter.WriteData(w, 1, "late"u8, endStream: true));
        var response = await client.ReadResponseAsync(1);
        Assert.Equal("late", System.Text.Encoding.ASCII.GetString(response.Body));
        Assert.Null(await client.ReadUntilAsync(_ => false));
        await client.ServerTask.WaitAsync(Http2TestClient.Timeout);
    }

    [Fact]
    public async Task Response_LargerThanClientWindow_WaitsForWindowUpdate()
    {
        await using var client = await Http2TestClient.StartAsync(new TestApplication());
        var body = new byte[100_000];
        new Random(5).NextBytes(body);
        await client.SendRequestAsync(1, "POST", "/echo", endStream: false);
        // The request body fits in our window (stream 65,535): send it in two parts with a wait between.
        await client.SendAsync(w => Http2FrameWriter.WriteData(w, 1, body.AsSpan(0, 60_000), endStream: false));
        var update = await client.ReadUntilAsync(f => f.Type == Http2FrameType.WINDOW_UPDATE && f.StreamId == 1);
        Assert.NotNull(update);
        await client.SendAsync(w => Http2FrameWriter.WriteData(w, 1, body.AsSpan(60_000), endStream: true));
        // The response (100,000 octets) exceeds the client's 65,535 windows: ReadResponseAsync opens them as it reads.
        var response = await client.ReadResponseAsync(1);
        Assert.Equal(body, response.Body);
    }

    [Fact]
    public async Task MaxConcurrentStreams_Exceeded_RefusedStream()
    {
        var app = new TestApplication();
        await using var client = await Http2TestClient.StartAsync(app, new Http2ConnectionOptions { MaxConcurrentStreams = 1 });
        await client.SendRequestAsync(1, path: "/wait");
        await app.Waiting.Task.WaitAsync(Http2TestClient.Timeout);
        await client.SendRequestAsync(3);
        await client.ExpectStreamErrorAsync(3, Http2ErrorCode.REFUSED_STREAM);
    }

    [Fact]
    public async Task Connect_OverHttp2_Answered501WithoutTunnel()
    {
        await using var client = await Http2TestClient.StartAsync(new TestApplication());
        await client.SendHeadersAsync(1, client.Block((":method", "CONNECT"), (":authority", "example.test:443")), endStream: false);
        var response = await client.ReadResponseAsync(1);
        Assert.Equal(501, response.Status);
        Assert.Equal("connect-not-supported", response.Header("proxycore-error"));
    }
}
