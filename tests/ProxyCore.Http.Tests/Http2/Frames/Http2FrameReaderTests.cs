using System.Buffers;
using ProxyCore.Http.Http2;
using ProxyCore.Http.Tests.Http1;
using static ProxyCore.Http.Tests.Http2.Frames.FrameTestHelpers;

namespace ProxyCore.Http.Tests.Http2.Frames;

public class Http2FrameReaderTests
{
    private const Http2ErrorScope Conn = Http2ErrorScope.Connection;
    private const Http2ErrorScope Strm = Http2ErrorScope.Stream;

    /// <summary>Valid frames of every type, with the edge values of each field (header first, then payload).</summary>
    public static readonly TheoryData<string> ValidFrames = new()
    {
        "000005 00 01 00000001 68656C6C6F",                          // DATA END_STREAM "hello"
        "000000 00 01 00000003",                                      // DATA, empty, END_STREAM
        "000004 00 08 00000001 03 000000",                            // DATA padded, pad = length - 1: no data
        "000002 00 08 00000001 00 41",                                // DATA padded with pad 0
        "000003 01 05 00000001 828487",                               // HEADERS END_STREAM|END_HEADERS
        "000009 01 2C 00000003 02 80000001 FF 41 0000",               // HEADERS PRIORITY|PADDED|END_HEADERS
        "000005 01 24 00000003 00000000 00",                          // HEADERS PRIORITY|END_HEADERS, empty block
        "000005 02 00 00000003 80000001 0F",                          // PRIORITY exclusive on 1, weight 16
        "000004 03 00 00000001 00000008",                             // RST_STREAM CANCEL
        "000004 03 00 00000001 000000FF",                             // RST_STREAM, unknown code (§7: no special behaviour)
        "000000 04 00 00000000",                                      // SETTINGS, empty
        "000000 04 01 00000000",                                      // SETTINGS ACK
        "000024 04 00 00000000 0002 00000000 0002 00000001 0004 7FFFFFFF 0005 00004000 0005 00FFFFFF 00FF FFFFFFFF", // edges
        "000004 05 04 00000001 00000002",                             // PUSH_PROMISE, empty block
        "000006 05 0C 00000001 01 00000002 00",                       // PUSH_PROMISE padded, pad fills what is left
        "000003 01 0C 00000001 02 0000",                              // HEADERS padded, pad fills what is left
        "000008 06 00 00000000 0102030405060708",                     // PING
        "000008 06 01 00000000 FFFFFFFFFFFFFFFF",                     // PING ACK
        "000008 07 00 00000000 7FFFFFFF 00000000",                    // GOAWAY, no debug data
        "00000A 07 00 00000000 00000001 00000001 6869",               // GOAWAY with debug data
        "000004 08 00 00000000 7FFFFFFF",                             // WINDOW_UPDATE connection, max increment
        "000004 08 00 00000007 00000001",                             // WINDOW_UPDATE stream, increment 1
        "000002 09 04 00000001 8284",                                 // CONTINUATION END_HEADERS
    };

    [Theory]
    [MemberData(nameof(ValidFrames))]
    public void TryReadFrame_ValidFrame_ReturnsFrameAndConsumesIt(string hex)
    {
        var wire = Hex(hex);

        var result = Read(wire);

        Assert.Equal(Http2ReadStatus.Frame, result.Status);
        Assert.Equal(wire.Length, result.Consumed);
        Assert.Equal(wire.Length - Http2Frame.HeaderLength, result.Frame.PayloadLength);
        Assert.Equal(Convert.ToHexString(wire.AsSpan(Http2Frame.HeaderLength)), Convert.ToHexString(result.Frame.Payload.ToArray()));
    }

    [Theory]
    [MemberData(nameof(ValidFrames))]
    public void TryReadFrame_ValidFrameWriter_RoundTripsByteForByte(string hex)
    {
        var wire = Hex(hex);
        var frame = Read(wire).Frame;
        if (frame.IsPadded)
        {
            wire = WithZeroPadding(wire, frame.PadLength);
        }

        Assert.Equal(Convert.ToHexString(wire), Convert.ToHexString(Reencode(frame)));
    }

    [Theory]
    [MemberData(nameof(ValidFrames))]
    public void TryReadFrame_EveryTruncation_IncompleteAndConsumesNothing(string hex)
    {
        var wire = Hex(hex);
        for (int length = 0; length < wire.Length; length++)
        {
            var prefix = wire.AsSpan(0, length).ToArray();
            foreach (var buffer in new[] { TestBuffers.Single(prefix), TestBuffers.Bytewise(prefix) })
            {
                var result = Read(buffer);
                Assert.True(result.Status == Http2ReadStatus.Incomplete, $"prefix {length}: {result.Status} {result.Error}");
                Assert.Equal(0, result.Consumed);
            }
        }
    }

    [Theory]
    [MemberData(nameof(ValidFrames))]
    public void TryReadFrame_SplitAtEveryOffset_SameFrame(string hex)
    {
        var wire = Hex(hex);
        string expected = Describe(Read(wire).Frame);
        for (int cut = 0; cut <= wire.Length; cut++)
        {
            var result = Read(TestBuffers.Split(wire, cut));
            Assert.Equal(Http2ReadStatus.Frame, result.Status);
            Assert.Equal(wire.Length, result.Consumed);
            Assert.Equal(expected, Describe(result.Frame));
            for (int cut2 = cut; cut2 <= wire.Length; cut2 += 3)
            {
                Assert.Equal(expected, Describe(Read(TestBuffers.Split(wire, cut, cut2)).Frame));
            }
        }
        Assert.Equal(expected, Describe(Read(TestBuffers.Bytewise(wire)).Frame));
    }

    [Theory]
    [MemberData(nameof(ValidFrames))]
    public void TryReadFrame_FollowedByMoreBytes_ConsumesExactlyOneFrame(string hex)
    {
        var wire = Hex(hex);
        var twice = wire.Concat(wire).Concat(new byte[] { 0, 0 }).ToArray();

        var result = Read(twice);

        Assert.Equal(Http2ReadStatus.Frame, result.Status);
        Assert.Equal(wire.Length, result.Consumed);
        Assert.Equal(Describe(Read(wire).Frame), Describe(result.Frame));
    }

    /// <summary>Each rule the reader enforces, with the code, scope and reason it must report.</summary>
    public static readonly TheoryData<string, Http2ErrorCode, Http2ErrorScope, Http2FrameErrorReason> InvalidFrames = new()
    {
        // §4.2 SETTINGS_MAX_FRAME_SIZE: decided by the header alone, before the payload arrives.
        { "004001 00 00 00000001", Http2ErrorCode.FRAME_SIZE_ERROR, Conn, Http2FrameErrorReason.FrameTooLarge },
        { "FFFFFF 04 00 00000000", Http2ErrorCode.FRAME_SIZE_ERROR, Conn, Http2FrameErrorReason.FrameTooLarge },
        { "004001 0A 00 00000000", Http2ErrorCode.FRAME_SIZE_ERROR, Conn, Http2FrameErrorReason.FrameTooLarge }, // unknown type too
        // Stream frames on stream 0 (§6.1, §6.2, §6.3, §6.4, §6.6, §6.10).
        { "000001 00 00 00000000 AA", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.StreamIdRequired },
        { "000001 01 04 00000000 82", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.StreamIdRequired },
        { "000005 02 00 00000000 00000001 10", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.StreamIdRequired },
        { "000004 03 00 00000000 00000008", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.StreamIdRequired },
        { "000004 05 04 00000000 00000002", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.StreamIdRequired },
        { "000001 09 04 00000000 82", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.StreamIdRequired },
        { "000001 00 00 80000000 AA", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.StreamIdRequired }, // reserved bit only
        // Connection frames on a stream (§6.5, §6.7, §6.8).
        { "000000 04 00 00000001", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.StreamIdNotZero },
        { "000008 06 00 00000003 0000000000000000", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.StreamIdNotZero },
        { "000008 07 00 00000001 00000000 00000000", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.StreamIdNotZero },
        // Fixed and minimum lengths.
        { "000003 03 00 00000001 000000", Http2ErrorCode.FRAME_SIZE_ERROR, Conn, Http2FrameErrorReason.InvalidLength },
        { "000005 03 00 00000001 0000000000", Http2ErrorCode.FRAME_SIZE_ERROR, Conn, Http2FrameErrorReason.InvalidLength },
        { "000007 06 00 00000000 00000000000000", Http2ErrorCode.FRAME_SIZE_ERROR, Conn, Http2FrameErrorReason.InvalidLength },
        { "000009 06 00 00000000 000000000000000000", Http2ErrorCode.FRAME_SIZE_ERROR, Conn, Http2FrameErrorReason.InvalidLength },
        { "000003 08 00 00000001 000001", Http2ErrorCode.FRAME_SIZE_ERROR, Conn, Http2FrameErrorReason.InvalidLength },
        { "000005 08 00 00000000 0000000100", Http2ErrorCode.FRAME_SIZE_ERROR, Conn, Http2FrameErrorReason.InvalidLength },
        { "000005 04 00 00000000 0001000010", Http2ErrorCode.FRAME_SIZE_ERROR, Conn, Http2FrameErrorReason.InvalidLength },
        { "000007 07 00 00000000 00000000 000000", Http2ErrorCode.FRAME_SIZE_ERROR, Conn, Http2FrameErrorReason.InvalidLength },
        { "000000 00 08 00000001", Http2ErrorCode.FRAME_SIZE_ERROR, Conn, Http2FrameErrorReason.InvalidLength },        // PADDED, no Pad Length
        { "000005 01 28 00000001 0000000010", Http2ErrorCode.FRAME_SIZE_ERROR, Conn, Http2FrameErrorReason.InvalidLength }, // PADDED|PRIORITY needs 6
        { "000004 01 20 00000001 00000000", Http2ErrorCode.FRAME_SIZE_ERROR, Conn, Http2FrameErrorReason.InvalidLength },   // PRIORITY needs 5
        { "000003 05 04 00000001 000002", Http2ErrorCode.FRAME_SIZE_ERROR, Conn, Http2FrameErrorReason.InvalidLength },
        { "000006 04 01 00000000 000100001000", Http2ErrorCode.FRAME_SIZE_ERROR, Conn, Http2FrameErrorReason.SettingsAckWithPayload },
        // §6.3: a PRIORITY of the wrong length is only a stream error.
        { "000004 02 00 00000003 00000001", Http2ErrorCode.FRAME_SIZE_ERROR, Strm, Http2FrameErrorReason.InvalidLength },
        { "000006 02 00 00000003 000000010F00", Http2ErrorCode.FRAME_SIZE_ERROR, Strm, Http2FrameErrorReason.InvalidLength },
        // Padding as long as (or longer than) what is left of the payload (§6.1, §6.2, §6.6).
        { "000001 00 08 00000001 01", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.PaddingTooLong },
        { "000004 00 08 00000001 04 000000", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.PaddingTooLong },
        { "000004 00 08 00000001 FF 000000", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.PaddingTooLong },
        { "000003 01 0C 00000001 03 8200", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.PaddingTooLong },
        { "000007 01 2C 00000001 02 00000003 10 00", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.PaddingTooLong },
        { "000006 05 0C 00000001 02 00000002 00", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.PaddingTooLong },
        // §6.9 zero increment: a stream error on a stream, a connection error on the connection.
        { "000004 08 00 00000000 00000000", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.ZeroWindowIncrement },
        { "000004 08 00 00000005 00000000", Http2ErrorCode.PROTOCOL_ERROR, Strm, Http2FrameErrorReason.ZeroWindowIncrement },
        { "000004 08 00 00000005 80000000", Http2ErrorCode.PROTOCOL_ERROR, Strm, Http2FrameErrorReason.ZeroWindowIncrement }, // reserved bit is not increment
        // §6.5.2 value ranges.
        { "000006 04 00 00000000 0002 00000002", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.InvalidEnablePush },
        { "000006 04 00 00000000 0004 80000000", Http2ErrorCode.FLOW_CONTROL_ERROR, Conn, Http2FrameErrorReason.InitialWindowSizeTooLarge },
        { "000006 04 00 00000000 0004 FFFFFFFF", Http2ErrorCode.FLOW_CONTROL_ERROR, Conn, Http2FrameErrorReason.InitialWindowSizeTooLarge },
        { "000006 04 00 00000000 0005 00003FFF", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.InvalidMaxFrameSize },
        { "000006 04 00 00000000 0005 01000000", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.InvalidMaxFrameSize },
        { "00000C 04 00 00000000 0003 00000064 0005 00000000", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.InvalidMaxFrameSize }, // second entry
        // §6.6 / §5.1.1 promised stream identifiers.
        { "000004 05 04 00000001 00000000", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.InvalidPromisedStreamId },
        { "000004 05 04 00000001 00000003", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.InvalidPromisedStreamId },
        { "000004 05 04 00000001 80000000", Http2ErrorCode.PROTOCOL_ERROR, Conn, Http2FrameErrorReason.InvalidPromisedStreamId },
        // RFC 7540 §5.3.1 (h2spec http2/5.3.1): a stream cannot depend on itself.
        { "000006 01 24 00000003 00000003 10 82", Http2ErrorCode.PROTOCOL_ERROR, Strm, Http2FrameErrorReason.SelfDependency },
        { "000005 02 00 00000005 80000005 10", Http2ErrorCode.PROTOCOL_ERROR, Strm, Http2FrameErrorReason.SelfDependency },
    };

    [Theory]
    [MemberData(nameof(InvalidFrames))]
    public void TryReadFrame_InvalidFrame_ReportsCodeScopeAndReason(string hex, Http2ErrorCode code, Http2ErrorScope scope, Http2FrameErrorReason reason)
    {
        var wire = Hex(hex);

        var result = Read(wire);

        Assert.Equal(Http2ReadStatus.Error, result.Status);
        Assert.Equal(code, result.Error.Code);
        Assert.Equal(scope, result.Error.Scope);
        Assert.Equal(reason, result.Error.Reason);
        if (scope == Http2ErrorScope.Stream)
        {
            // The connection carries on after RST_STREAM: the frame is stepped over and handed out.
            Assert.Equal(wire.Length, result.Consumed);
            Assert.Equal(BitConverter.ToInt32([wire[8], wire[7], wire[6], wire[5]]), result.Error.StreamId);
            Assert.Equal(result.Error.StreamId, result.Frame.StreamId);
        }
        else
        {
            Assert.Equal(0, result.Consumed);
            Assert.True(result.Error.IsConnectionError);
        }
    }

    [Theory]
    [MemberData(nameof(InvalidFrames))]
    public void TryReadFrame_InvalidFrameBytewise_SameError(string hex, Http2ErrorCode code, Http2ErrorScope scope, Http2FrameErrorReason reason)
    {
        var wire = Hex(hex);

        var result = Read(TestBuffers.Bytewise(wire));

        Assert.Equal(new Http2FrameError(code, scope, result.Error.StreamId, reason), result.Error);
        Assert.Equal(scope == Http2ErrorScope.Stream ? wire.Length : 0, result.Consumed);
    }

    [Theory]
    [InlineData("004001 00 00 00000001")]       // DATA larger than 2^14
    [InlineData("000005 00 00 00000000")]       // DATA on stream 0
    [InlineData("000005 03 00 00000001")]       // RST_STREAM of length 5
    [InlineData("000006 04 01 00000000")]       // SETTINGS ACK with a payload
    public void TryReadFrame_ConnectionErrorInHeader_FailsBeforeThePayloadArrives(string hex)
    {
        var result = Read(Hex(hex));

        Assert.Equal(Http2ReadStatus.Error, result.Status);
        Assert.Equal(0, result.Consumed);
    }

    [Theory]
    [InlineData("000004 02 00 00000003 000000")]          // PRIORITY of length 4: a stream error, reported once whole
    [InlineData("000004 08 00 00000005 000000")]          // zero WINDOW_UPDATE on a stream, not yet whole
    public void TryReadFrame_StreamErrorNotYetWhole_Incomplete(string hex)
    {
        Assert.Equal(Http2ReadStatus.Incomplete, Read(Hex(hex)).Status);
    }

    [Fact]
    public void TryReadFrame_LargerMaxFrameSize_AcceptsLargerFrame()
    {
        var wire = new byte[Http2Frame.HeaderLength + 16_385];
        Hex("004001 00 00 00000001").CopyTo(wire, 0);

        Assert.Equal(Http2ReadStatus.Error, Read(wire, 16_384).Status);
        var result = Read(wire, 16_385);
        Assert.Equal(Http2ReadStatus.Frame, result.Status);
        Assert.Equal(16_385, result.Frame.Data.Length);
        Assert.Equal(Http2ReadStatus.Incomplete, Read(wire.AsSpan(0, wire.Length - 1).ToArray(), Http2Frame.MaxAllowedFrameSize).Status);
    }

    [Fact]
    public void TryReadFrame_ExactlyMaxFrameSize_Accepted()
    {
        var wire = new byte[Http2Frame.HeaderLength + 16_384];
        Hex("004000 00 01 00000001").CopyTo(wire, 0);

        var result = Read(wire);

        Assert.Equal(Http2ReadStatus.Frame, result.Status);
        Assert.True(result.Frame.EndStream);
        Assert.Equal(16_384, result.Frame.FlowControlledLength);
    }

    [Theory]
    [InlineData("00000A FF 00 00000001 00000000000000000000")] // unknown type on a stream
    [InlineData("000003 0A FF 00000000 414243")]                 // unknown type, every flag, stream 0
    [InlineData("000000 10 00 80000005")]                        // unknown type, empty, reserved bit
    public void TryReadFrame_UnknownType_ReturnedAsUnknownFrameAndStepsOver(string hex)
    {
        var wire = Hex(hex);

        var result = Read(wire);

        Assert.Equal(Http2ReadStatus.UnknownFrame, result.Status);
        Assert.Equal(wire.Length, result.Consumed);
        Assert.False(result.Frame.IsKnownType);
        Assert.Equal(wire[3], (byte)result.Frame.Type);
        Assert.Equal(wire[4], (byte)result.Frame.Flags);
        Assert.Equal(wire.Length - Http2Frame.HeaderLength, result.Frame.PayloadLength);
        Assert.Equal(Http2ReadStatus.Incomplete, Read(wire.AsSpan(0, wire.Length - 1).ToArray()).Status);
    }

    [Theory]
    [InlineData("000008 06 FE 00000000 0000000000000000", Http2FrameFlags.None)]             // PING: only ACK is defined
    [InlineData("000008 06 FF 00000000 0000000000000000", Http2FrameFlags.ACK)]
    [InlineData("000004 08 FF 00000001 00000001", Http2FrameFlags.None)]                      // WINDOW_UPDATE has no flags
    [InlineData("000001 00 F6 00000001 00", Http2FrameFlags.None)]                            // DATA: PRIORITY/END_HEADERS mean nothing
    [InlineData("000001 09 FB 00000001 00", Http2FrameFlags.None)]                            // CONTINUATION: only END_HEADERS
    [InlineData("000001 01 D2 00000001 00", Http2FrameFlags.None)]                            // HEADERS: 0x2 0x10 0x40 0x80 undefined
    public void TryReadFrame_UndefinedFlags_Ignored(string hex, Http2FrameFlags expected)
    {
        var result = Read(Hex(hex));

        Assert.Equal(Http2ReadStatus.Frame, result.Status);
        Assert.Equal(expected, result.Frame.Flags);
    }

    [Fact]
    public void TryReadFrame_ReservedBitsSet_Ignored()
    {
        // §4.1 (stream identifier), §6.8 (Last-Stream-ID), §6.9 (increment), §6.6 (promised stream).
        Assert.Equal(5, Read(Hex("000001 00 00 80000005 41")).Frame.StreamId);
        Assert.Equal(7, Read(Hex("000008 07 00 00000000 80000007 00000000")).Frame.LastStreamId);
        Assert.Equal(1, Read(Hex("000004 08 00 80000000 80000001")).Frame.WindowSizeIncrement);
        Assert.Equal(2, Read(Hex("000004 05 04 00000001 80000002")).Frame.PromisedStreamId);
    }

    [Fact]
    public void TryReadFrame_Priority_DecodesExclusiveDependencyAndWeight()
    {
        Assert.Equal(new Http2Priority(0x7FFFFFFF, true, 256), Read(Hex("000005 02 00 00000001 FFFFFFFF FF")).Frame.Priority);
        Assert.Equal(new Http2Priority(0, false, 1), Read(Hex("000005 02 00 00000001 00000000 00")).Frame.Priority);
        var headers = Read(Hex("000008 01 2D 00000009 01 00000007 2A 82 00")).Frame;
        Assert.Equal(new Http2Priority(7, false, 43), headers.Priority);
        Assert.Equal("82", Convert.ToHexString(headers.HeaderBlockFragment.ToArray()));
        Assert.True(headers.EndStream);
        Assert.True(headers.EndHeaders);
    }

    [Fact]
    public void TryReadFrame_HeadersStreamError_StillHandsOutTheFieldBlock()
    {
        // HPACK state is per connection: even a reset stream's field block must be decoded (§4.3).
        var result = Read(Hex("000007 01 24 00000003 00000003 10 8284"));

        Assert.Equal(Http2ReadStatus.Error, result.Status);
        Assert.Equal(Http2ErrorScope.Stream, result.Error.Scope);
        Assert.Equal("8284", Convert.ToHexString(result.Frame.HeaderBlockFragment.ToArray()));
    }

    [Fact]
    public void Settings_Enumerate_YieldsEveryEntryInWireOrderIncludingUnknownAndRepeats()
    {
        // §6.5.3: "Values in the SETTINGS frame MUST be processed in the order they appear".
        var wire = Hex("00001E 04 00 00000000 0004 00000001 00FF 12345678 0004 0000FFFF 0001 00001000 0009 00000001");
        Http2Setting[] expected =
        [
            new(Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE, 1),
            new((Http2SettingsParameter)0xFF, 0x12345678),
            new(Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE, 0xFFFF),
            new(Http2SettingsParameter.SETTINGS_HEADER_TABLE_SIZE, 4096),
            new(Http2SettingsParameter.SETTINGS_NO_RFC7540_PRIORITIES, 1),
        ];
        foreach (var buffer in new[] { TestBuffers.Single(wire), TestBuffers.Bytewise(wire), TestBuffers.Split(wire, 12, 20) })
        {
            var frame = Read(buffer).Frame;
            var actual = new List<Http2Setting>();
            foreach (var setting in frame.Settings)
            {
                actual.Add(setting);
            }
            Assert.Equal(expected, actual);
            Assert.Equal(5, frame.SettingsCount);
        }
    }

    [Fact]
    public void Settings_Ack_HasNoEntries()
    {
        var frame = Read(Hex("000000 04 01 00000000")).Frame;

        Assert.True(frame.IsAck);
        Assert.Equal(0, frame.SettingsCount);
        Assert.False(frame.Settings.MoveNext());
    }

    [Fact]
    public void Accessor_WrongFrameType_Throws()
    {
        var ping = Read(Hex("000008 06 00 00000000 0000000000000000")).Frame;
        var data = Read(Hex("000001 00 00 00000001 41")).Frame;

        Assert.Throws<InvalidOperationException>(() => ping.Data);
        Assert.Throws<InvalidOperationException>(() => ping.WindowSizeIncrement);
        Assert.Throws<InvalidOperationException>(() => ping.Priority);
        Assert.Throws<InvalidOperationException>(() => data.HeaderBlockFragment);
        Assert.Throws<InvalidOperationException>(() => data.PingOpaqueData);
        Assert.Throws<InvalidOperationException>(() => data.ErrorCode);
        Assert.Throws<InvalidOperationException>(() => data.Settings);
        Assert.Throws<InvalidOperationException>(() => data.LastStreamId);
        Assert.Throws<InvalidOperationException>(() => data.PromisedStreamId);
    }

    [Fact]
    public void TryReadFrame_ConnectionLoop_ReadsAMixedStreamFrameByFrame()
    {
        var wire = Hex(
            "000000 04 00 00000000" +
            "000004 08 00 00000000 00010000" +
            "000003 01 05 00000001 828487" +
            "000003 BB 00 00000000 010203" +   // unknown: discarded
            "000002 00 01 00000001 6869" +
            "000008 06 00 00000000 0102030405060708");
        var seen = new List<string>();
        for (int cut = 0; cut <= wire.Length; cut += 7)
        {
            seen.Clear();
            var buffer = TestBuffers.Split(wire, cut);
            while (true)
            {
                var status = Http2FrameReader.TryReadFrame(buffer, Http2Frame.DefaultMaxFrameSize, out var frame, out var consumed, out _);
                if (status == Http2ReadStatus.Incomplete)
                {
                    break;
                }
                Assert.NotEqual(Http2ReadStatus.Error, status);
                seen.Add(status == Http2ReadStatus.UnknownFrame ? "unknown" : frame.Type.ToString());
                buffer = buffer.Slice(consumed);
            }
            Assert.Equal(0, buffer.Length);
            Assert.Equal(["SETTINGS", "WINDOW_UPDATE", "HEADERS", "unknown", "DATA", "PING"], seen);
        }
    }
}
