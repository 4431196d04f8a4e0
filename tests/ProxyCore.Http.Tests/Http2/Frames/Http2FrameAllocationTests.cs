using System.Buffers;
using ProxyCore.Http.Http2;
using ProxyCore.Http.Tests.Http1;
using static ProxyCore.Http.Tests.Http2.Frames.FrameTestHelpers;

namespace ProxyCore.Http.Tests.Http2.Frames;

/// <summary>Reading, enumerating and writing frames allocate nothing once warm.</summary>
public class Http2FrameAllocationTests
{
    private const int Iterations = 200;

    // Warm-up (JIT, tiering, buffer growth), then the fewest bytes of several windows: see Allocations.
    private static long AllocatedBy(Action action) => Allocations.SteadyState(action, Iterations);

    private static readonly byte[] Mix = Hex(
        "00000C 04 00 00000000 0003 00000064 0004 00010000" +
        "000008 01 2D 00000001 01 00000000 0F 82 00" +
        "000004 08 00 00000001 00004000" +
        "000008 06 00 00000000 0102030405060708" +
        "000008 07 00 00000000 00000001 00000000" +
        "000004 03 00 00000001 00000008" +
        "000004 05 04 00000001 00000002" +
        "000001 09 04 00000001 84" +
        "000005 02 00 00000003 00000001 10" +
        "000001 0B 00 00000000 00" +
        "000003 00 09 00000001 01 41 00");

    private static ulong ReadAllFrames(ReadOnlySequence<byte> buffer) => ReadAllFrames(buffer, out _);

    private static ulong ReadAllFrames(ReadOnlySequence<byte> buffer, out long left)
    {
        ulong checksum = 0;
        while (Http2FrameReader.TryReadFrame(buffer, Http2Frame.DefaultMaxFrameSize, out var frame, out var consumed, out _) is
            Http2ReadStatus.Frame or Http2ReadStatus.UnknownFrame)
        {
            switch (frame.Type)
            {
                case Http2FrameType.SETTINGS:
                    foreach (var setting in frame.Settings)
                    {
                        checksum += setting.Value;
                    }
                    break;
                case Http2FrameType.HEADERS:
                    checksum += (ulong)frame.HeaderBlockFragment.Length + (ulong)frame.Priority.Weight;
                    break;
                case Http2FrameType.PING:
                    checksum += frame.PingOpaqueData;
                    break;
                case Http2FrameType.DATA:
                    checksum += (ulong)frame.Data.Length;
                    break;
            }
            buffer = buffer.Slice(consumed);
        }
        left = buffer.Length;
        return checksum;
    }

    [Fact]
    public void TryReadFrame_AfterWarmUp_AllocatesNothing()
    {
        var single = TestBuffers.Single(Mix);
        var split = TestBuffers.Split(Mix, 5, 13, 30, 31, 60, 100, 101, 102, 130);
        var bytewise = TestBuffers.Bytewise(Mix);
        Assert.NotEqual(0UL, ReadAllFrames(single, out long left));
        Assert.Equal(0, left); // every frame of the mix is valid and read
        Assert.Equal(ReadAllFrames(single), ReadAllFrames(bytewise));

        long bytes = AllocatedBy(() =>
        {
            ReadAllFrames(single);
            ReadAllFrames(split);
            ReadAllFrames(bytewise);
        });

        Assert.Equal(0, bytes);
    }

    [Fact]
    public void Writer_AfterWarmUp_AllocatesNothing()
    {
        var output = new ArrayBufferWriter<byte>(256 * 1024);
        var body = new byte[40_000];
        var bodySequence = TestBuffers.Split(body, 1_000, 20_000);
        var block = new byte[20_000];
        Http2Setting[] settings = [new(Http2SettingsParameter.SETTINGS_ENABLE_PUSH, 0), new(Http2SettingsParameter.SETTINGS_MAX_CONCURRENT_STREAMS, 100)];

        long bytes = AllocatedBy(() =>
        {
            output.ResetWrittenCount();
            Http2FrameWriter.WriteSettings(output, settings);
            Http2FrameWriter.WriteSettingsAck(output);
            Http2FrameWriter.WriteHeaders(output, 1, block, endStream: false, priority: new Http2Priority(0, false, 16), padLength: 8);
            Http2FrameWriter.WriteData(output, 1, body, endStream: false);
            Http2FrameWriter.WriteData(output, 1, bodySequence, endStream: true);
            Http2FrameWriter.WritePaddedData(output, 3, body.AsSpan(0, 100), 10, endStream: true);
            Http2FrameWriter.WriteContinuation(output, 1, block.AsSpan(0, 10), endHeaders: true);
            Http2FrameWriter.WritePushPromise(output, 1, 2, block.AsSpan(0, 10));
            Http2FrameWriter.WritePing(output, 42, ack: true);
            Http2FrameWriter.WriteGoAway(output, 1, Http2ErrorCode.NO_ERROR, "bye"u8);
            Http2FrameWriter.WriteWindowUpdate(output, 0, 65_535);
            Http2FrameWriter.WriteRstStream(output, 1, Http2ErrorCode.CANCEL);
            Http2FrameWriter.WritePriority(output, 1, new Http2Priority(0, true, 1));
        });

        Assert.Equal(0, bytes);
    }

    [Fact]
    public void PrefaceCheck_AfterWarmUp_AllocatesNothing()
    {
        var single = TestBuffers.Single(Http2Preface.ClientPreface.ToArray());
        var bytewise = TestBuffers.Bytewise(Http2Preface.ClientPreface.ToArray());

        long bytes = AllocatedBy(() =>
        {
            Http2Preface.Check(single, out _);
            Http2Preface.Check(bytewise, out _);
        });

        Assert.Equal(0, bytes);
    }
}
