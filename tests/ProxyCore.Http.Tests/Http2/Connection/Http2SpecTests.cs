using ProxyCore.Http.Http2;

namespace ProxyCore.Http.Tests.Http2.Connection;

/// <summary>
/// h2spec 2.6.0 server cases (/work/shared/corpus/h2spec-cases.md), one test each, named by case id.
/// Stream errors are checked strictly (RST_STREAM with the code), connection errors as GOAWAY with
/// the code and then a close: stricter than h2spec, which also accepts a bare close.
/// </summary>
public sealed class Http2SpecTests
{
    private static Task<Http2TestClient> StartAsync() => Http2TestClient.StartAsync(new TestApplication());

    private static void RawFrame(Http2TestClient client, Http2FrameType type, Http2FrameFlags flags, int streamId, ReadOnlySpan<byte> payload)
    {
        Span<byte> header = stackalloc byte[Http2Frame.HeaderLength];
        Http2FrameWriter.WriteFrameHeader(header, payload.Length, type, flags, streamId);
        client.WriteRaw(header);
        client.WriteRaw(payload);
    }

    private static async Task ExpectPingAckAsync(Http2TestClient client)
    {
        await client.SendAsync(w => Http2FrameWriter.WritePing(w, 42, ack: false));
        var frame = await client.ReadUntilAsync(f => f.Type == Http2FrameType.PING && f.IsAck || f.Type == Http2FrameType.GOAWAY);
        Assert.Equal(Http2FrameType.PING, frame!.Type);
    }

    [Fact]
    public async Task Http2Spec_3_5_2_InvalidPreface_ProtocolError()
    {
        await using var client = await Http2TestClient.StartAsync(new TestApplication(), handshake: false);
        client.WriteRaw("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"u8);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact]
    public async Task Http2Spec_4_1_1_UnknownFrameType_Ignored()
    {
        await using var client = await StartAsync();
        RawFrame(client, (Http2FrameType)0x20, 0, 0, [1, 2, 3]);
        await ExpectPingAckAsync(client);
    }

    [Fact]
    public async Task Http2Spec_4_2_2_DataLargerThanMaxFrameSize_FrameSizeError()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1, "POST", "/", endStream: false);
        RawFrame(client, Http2FrameType.DATA, 0, 1, new byte[16_385]);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.FRAME_SIZE_ERROR);
    }

    [Fact]
    public async Task Http2Spec_4_3_1_InvalidHeaderBlock_CompressionError()
    {
        await using var client = await StartAsync();
        await client.SendHeadersAsync(1, [0x80], endStream: true); // indexed field, index 0
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.COMPRESSION_ERROR);
    }

    [Fact]
    public async Task Http2Spec_4_3_2_PriorityInsideHeaderBlock_ProtocolError()
    {
        await using var client = await StartAsync();
        var block = client.RequestBlock();
        RawFrame(client, Http2FrameType.HEADERS, Http2FrameFlags.END_STREAM, 1, block.AsSpan(0, 5));
        await client.SendAsync(w => Http2FrameWriter.WritePriority(w, 1, new Http2Priority(0, false, 16)));
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact]
    public async Task Http2Spec_5_1_1_IdleData_ProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WriteData(w, 1, "x"u8, endStream: true));
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact]
    public async Task Http2Spec_5_1_2_IdleRstStream_ProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WriteRstStream(w, 1, Http2ErrorCode.CANCEL));
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact]
    public async Task Http2Spec_5_1_3_IdleWindowUpdate_ProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WriteWindowUpdate(w, 1, 100));
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact]
    public async Task Http2Spec_5_1_4_IdleContinuation_ProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WriteContinuation(w, 1, client.RequestBlock(), endHeaders: true));
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact]
    public async Task Http2Spec_5_1_5_HalfClosedRemoteData_StreamClosed()
    {
        var app = new TestApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        await client.SendRequestAsync(1, path: "/wait");
        await app.Waiting.Task.WaitAsync(Http2TestClient.Timeout);
        await client.SendAsync(w => Http2FrameWriter.WriteData(w, 1, "x"u8, endStream: true));
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.STREAM_CLOSED);
    }

    [Fact]
    public async Task Http2Spec_5_1_6_HalfClosedRemoteHeaders_StreamClosed()
    {
        var app = new TestApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        await client.SendRequestAsync(1, path: "/wait");
        await app.Waiting.Task.WaitAsync(Http2TestClient.Timeout);
        await client.SendRequestAsync(1, endStream: false);
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.STREAM_CLOSED);
    }

    [Fact]
    public async Task Http2Spec_5_1_8_ClosedByClientRstThenData_StreamClosed()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1, "POST", "/", endStream: false);
        await client.SendAsync(w => Http2FrameWriter.WriteRstStream(w, 1, Http2ErrorCode.CANCEL));
        await Task.Delay(100); // let the stream retire
        await client.SendAsync(w => Http2FrameWriter.WriteData(w, 1, "x"u8, endStream: true));
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.STREAM_CLOSED);
    }

    [Fact]
    public async Task Http2Spec_5_1_11_ClosedData_StreamClosed()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1);
        await client.ReadResponseAsync(1);
        await client.SendAsync(w => Http2FrameWriter.WriteData(w, 1, "x"u8, endStream: true));
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.STREAM_CLOSED);
    }

    [Fact]
    public async Task Http2Spec_5_1_12_ClosedHeaders_StreamClosedConnectionError()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1);
        await client.ReadResponseAsync(1);
        await client.SendRequestAsync(1);
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.STREAM_CLOSED);
    }

    [Fact]
    public async Task Http2Spec_5_1_1_1_EvenStreamId_ProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(2);
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact]
    public async Task Http2Spec_5_1_1_2_SmallerStreamId_ProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(5);
        await client.ReadResponseAsync(5);
        await client.SendRequestAsync(3);
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact]
    public async Task Http2Spec_5_3_1_1_HeadersDependingOnItself_StreamProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WriteHeaders(w, 1, client.RequestBlock(), true, priority: new Http2Priority(1, false, 16)));
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact]
    public async Task Http2Spec_5_5_2_UnknownFrameInsideHeaderBlock_ProtocolError()
    {
        await using var client = await StartAsync();
        var block = client.RequestBlock();
        RawFrame(client, Http2FrameType.HEADERS, Http2FrameFlags.END_STREAM, 1, block);
        RawFrame(client, (Http2FrameType)0x20, 0, 1, [1]);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact]
    public async Task Http2Spec_6_2_2_HeadersForAnotherStreamInsideBlock_ProtocolError()
    {
        await using var client = await StartAsync();
        var block = client.RequestBlock();
        RawFrame(client, Http2FrameType.HEADERS, Http2FrameFlags.END_STREAM, 1, block);
        RawFrame(client, Http2FrameType.HEADERS, Http2FrameFlags.END_STREAM | Http2FrameFlags.END_HEADERS, 3, block);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact]
    public async Task Http2Spec_6_3_2_PriorityWrongLength_StreamFrameSizeError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.PRIORITY, 0, 1, [0, 0, 0, 0]);
        await client.FlushAsync();
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.FRAME_SIZE_ERROR);
    }

    [Fact]
    public async Task Http2Spec_6_5_1_SettingsAckWithPayload_FrameSizeError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.SETTINGS, Http2FrameFlags.ACK, 0, [0, 4, 0, 0, 0, 1]);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.FRAME_SIZE_ERROR);
    }

    [Fact]
    public async Task Http2Spec_6_5_3_2_Settings_Acknowledged()
    {
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WriteSettings(w, [new(Http2SettingsParameter.SETTINGS_HEADER_TABLE_SIZE, 0)]));
        var frame = await client.ReadUntilAsync(f => f.Type == Http2FrameType.SETTINGS);
        Assert.True(frame!.IsAck);
        // The smaller table is honoured: the next response still decodes.
        await client.SendRequestAsync(1);
        Assert.Equal(200, (await client.ReadResponseAsync(1)).Status);
    }

    [Fact]
    public async Task Http2Spec_6_5_2_2_InitialWindowTooLarge_FlowControlError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.SETTINGS, 0, 0, [0, 4, 0x80, 0, 0, 0]);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.FLOW_CONTROL_ERROR);
    }

    [Fact]
    public async Task Http2Spec_6_9_1_ZeroIncrementOnConnection_ProtocolError()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.WINDOW_UPDATE, 0, 0, [0, 0, 0, 0]);
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact]
    public async Task Http2Spec_6_9_2_ZeroIncrementOnStream_StreamProtocolError()
    {
        var app = new TestApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        await client.SendRequestAsync(1, path: "/wait");
        RawFrame(client, Http2FrameType.WINDOW_UPDATE, 0, 1, [0, 0, 0, 0]);
        await client.FlushAsync();
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact]
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

    [Fact]
    public async Task Http2Spec_6_9_1_3_StreamWindowOverflow_StreamFlowControlError()
    {
        var app = new TestApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        await client.SendRequestAsync(1, path: "/wait");
        await client.SendAsync(w =>
        {
            Http2FrameWriter.WriteWindowUpdate(w, 1, int.MaxValue);
            Http2FrameWriter.WriteWindowUpdate(w, 1, int.MaxValue);
        });
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.FLOW_CONTROL_ERROR);
    }

    [Fact]
    public async Task Http2Spec_6_10_1_MultipleContinuations_Answered()
    {
        await using var client = await StartAsync();
        var block = client.RequestBlock(extra: [("x-a", "1"), ("x-b", "2")]);
        RawFrame(client, Http2FrameType.HEADERS, Http2FrameFlags.END_STREAM, 1, block.AsSpan(0, 4));
        RawFrame(client, Http2FrameType.CONTINUATION, 0, 1, block.AsSpan(4, 10));
        RawFrame(client, Http2FrameType.CONTINUATION, Http2FrameFlags.END_HEADERS, 1, block.AsSpan(14));
        await client.FlushAsync();
        Assert.Equal(200, (await client.ReadResponseAsync(1)).Status);
    }

    [Fact]
    public async Task Http2Spec_6_10_4_ContinuationAfterEndHeaders_ProtocolError()
    {
        await using var client = await StartAsync();
        var block = client.RequestBlock();
        RawFrame(client, Http2FrameType.HEADERS, Http2FrameFlags.END_HEADERS, 1, block);
        RawFrame(client, Http2FrameType.CONTINUATION, Http2FrameFlags.END_HEADERS, 1, client.Block(("x-a", "1")));
        await client.FlushAsync();
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact]
    public async Task Http2Spec_8_1_1_SecondHeadersWithoutEndStream_StreamProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1, "POST", "/", endStream: false);
        await client.SendHeadersAsync(1, client.Block(("x-trailer", "1")), endStream: false);
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.PROTOCOL_ERROR);
    }

    public static TheoryData<string, (string, string)[]> MalformedRequests => new()
    {
        // http2/8.1.2/1: uppercase field name.
        { "8_1_2_1", [(":method", "GET"), (":scheme", "http"), (":path", "/"), ("X-Upper", "1")] },
        // http2/8.1.2.1/1: unknown pseudo-header.
        { "8_1_2_1_1", [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":foo", "bar")] },
        // http2/8.1.2.1/2: response pseudo-header in a request.
        { "8_1_2_1_2", [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":status", "200")] },
        // http2/8.1.2.1/4: pseudo-header after a regular field.
        { "8_1_2_1_4", [(":method", "GET"), (":scheme", "http"), ("x-a", "1"), (":path", "/")] },
        // http2/8.1.2.2/1: connection-specific field.
        { "8_1_2_2_1", [(":method", "GET"), (":scheme", "http"), (":path", "/"), ("connection", "keep-alive")] },
        // http2/8.1.2.2/2: TE other than trailers.
        { "8_1_2_2_2", [(":method", "GET"), (":scheme", "http"), (":path", "/"), ("te", "trailers, deflate")] },
        // http2/8.1.2.3/1: empty :path.
        { "8_1_2_3_1", [(":method", "GET"), (":scheme", "http"), (":path", "")] },
        // http2/8.1.2.3/2..4: :method, :scheme, :path missing.
        { "8_1_2_3_2", [(":scheme", "http"), (":path", "/")] },
        { "8_1_2_3_3", [(":method", "GET"), (":path", "/")] },
        { "8_1_2_3_4", [(":method", "GET"), (":scheme", "http")] },
        // http2/8.1.2.3/5..7: duplicated pseudo-headers.
        { "8_1_2_3_5", [(":method", "GET"), (":method", "GET"), (":scheme", "http"), (":path", "/")] },
        { "8_1_2_3_6", [(":method", "GET"), (":scheme", "http"), (":scheme", "http"), (":path", "/")] },
        { "8_1_2_3_7", [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":path", "/")] },
        // §8.2.1 values: CR or LF inside, whitespace at the ends.
        { "8_2_1_Value", [(":method", "GET"), (":scheme", "http"), (":path", "/"), ("x-a", "a\nb")] },
    };

    [Theory]
    [MemberData(nameof(MalformedRequests))]
    public async Task Http2Spec_8_1_2_MalformedRequest_StreamProtocolError(string caseId, (string, string)[] fields)
    {
        Assert.NotEmpty(caseId);
        var app = new TestApplication();
        await using var client = await Http2TestClient.StartAsync(app);
        await client.SendHeadersAsync(1, client.Block(fields), endStream: true);
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.PROTOCOL_ERROR);
        // A stream error leaves the connection usable, and the application never saw the request.
        await client.SendRequestAsync(3);
        Assert.Equal(200, (await client.ReadResponseAsync(3)).Status);
        Assert.Equal(1, app.Requests);
    }

    [Fact]
    public async Task Http2Spec_8_1_2_1_3_PseudoHeaderInTrailers_StreamProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1, "POST", "/", endStream: false);
        await client.SendAsync(w => Http2FrameWriter.WriteData(w, 1, "x"u8, endStream: false));
        await client.SendHeadersAsync(1, client.Block((":method", "GET")), endStream: true);
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Theory]
    [InlineData(new[] { 3 })]
    [InlineData(new[] { 1, 1 })]
    [InlineData(new[] { 5 })]
    public async Task Http2Spec_8_1_2_6_ContentLengthMismatch_StreamProtocolError(int[] dataLengths)
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1, "POST", "/", endStream: false, ("content-length", "4"));
        for (int i = 0; i < dataLengths.Length; i++)
        {
            var data = new byte[dataLengths[i]];
            bool last = i == dataLengths.Length - 1;
            await client.SendAsync(w => Http2FrameWriter.WriteData(w, 1, data, endStream: last));
        }
        await client.ExpectStreamErrorAsync(1, Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact]
    public async Task Http2Spec_8_2_1_PushPromiseFromClient_ProtocolError()
    {
        await using var client = await StartAsync();
        await client.SendRequestAsync(1, path: "/wait");
        await client.SendAsync(w => Http2FrameWriter.WritePushPromise(w, 1, 2, client.RequestBlock()));
        await client.ExpectConnectionErrorAsync(Http2ErrorCode.PROTOCOL_ERROR);
    }

    [Fact]
    public async Task Http2Spec_Generic_3_1_3_PaddedDataAndHeaders_Answered()
    {
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WriteHeaders(w, 1, client.RequestBlock("POST", "/echo"), false, padLength: 8));
        await client.SendAsync(w => Http2FrameWriter.WritePaddedData(w, 1, "abc"u8, padLength: 10, endStream: true));
        var response = await client.ReadResponseAsync(1);
        Assert.Equal("abc", System.Text.Encoding.ASCII.GetString(response.Body));
    }

    [Fact]
    public async Task Http2Spec_Generic_3_3_5_PriorityOnIdleThenLowerHeaders_Answered()
    {
        await using var client = await StartAsync();
        await client.SendAsync(w => Http2FrameWriter.WritePriority(w, 9, new Http2Priority(0, false, 16)));
        await client.SendRequestAsync(7);
        Assert.Equal(200, (await client.ReadResponseAsync(7)).Status);
    }

    [Fact]
    public async Task Http2Spec_7_1_GoAwayWithUnknownCode_ConnectionEndsCleanly()
    {
        await using var client = await StartAsync();
        RawFrame(client, Http2FrameType.GOAWAY, 0, 0, [0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        await client.FlushAsync();
        // No stream in flight: we close (h2spec accepts a PING ack or a close).
        Assert.Null(await client.ReadUntilAsync(_ => false));
    }
}
