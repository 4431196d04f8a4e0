using System.Buffers;
using ProxyCore.Http.Http2;
using ProxyCore.Http.Tests.Http1;
using static ProxyCore.Http.Tests.Http2.Frames.FrameTestHelpers;

namespace ProxyCore.Http.Tests.Http2.Frames;

public class Http2FrameWriterTests
{
    private static byte[] Pattern(int length)
    {
        var bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)(i * 7 + i / 251);
        }
        return bytes;
    }

    private static byte[] Written(Action<IBufferWriter<byte>> write)
    {
        var output = new ArrayBufferWriter<byte>();
        write(output);
        return output.WrittenSpan.ToArray();
    }

    public static readonly TheoryData<int, uint> BlockSizes = new()
    {
        { 0, 16_384 }, { 1, 16_384 }, { 16_383, 16_384 }, { 16_384, 16_384 }, { 16_385, 16_384 },
        { 3 * 16_384 + 7, 16_384 }, { 40_000, 20_000 }, { 40_000, 16_777_215 },
    };

    [Theory]
    [MemberData(nameof(BlockSizes))]
    public void WriteHeaders_AnyBlockSize_SplitsIntoHeadersAndContinuationsThatReassemble(int size, uint maxFrameSize)
    {
        var block = Pattern(size);
        foreach (var (priority, pad) in new (Http2Priority?, int)[] { (null, -1), (new Http2Priority(1, true, 200), -1), (null, 255), (new Http2Priority(3, false, 16), 0) })
        {
            var frames = ReadAll(Written(o => Http2FrameWriter.WriteHeaders(o, 5, block, endStream: true, maxFrameSize, priority, pad)), maxFrameSize);

            // The first frame takes as much as fits after its fixed fields and padding.
            int room = (int)maxFrameSize - (priority is null ? 0 : 5) - (pad >= 0 ? 1 + pad : 0);
            int expectedFrames = size <= room ? 1 : 1 + (int)Math.Ceiling((size - room) / (double)maxFrameSize);
            Assert.Equal(expectedFrames, frames.Count);
            Assert.Equal(Http2FrameType.HEADERS, frames[0].Type);
            Assert.True(frames[0].EndStream);
            Assert.Equal(priority is not null, frames[0].HasPriority);
            if (priority is not null)
            {
                Assert.Equal(priority, frames[0].Priority);
            }
            Assert.Equal(pad >= 0, frames[0].IsPadded);
            Assert.Equal(Math.Max(pad, 0), frames[0].PadLength);
            Assert.All(frames.Skip(1), f => Assert.Equal(Http2FrameType.CONTINUATION, f.Type));
            Assert.All(frames, f => Assert.Equal(5, f.StreamId));
            Assert.All(frames, f => Assert.True(f.PayloadLength <= maxFrameSize));
            Assert.All(frames.SkipLast(1), f => Assert.False(f.EndHeaders));
            Assert.True(frames[^1].EndHeaders);
            var reassembled = frames.SelectMany(f => f.HeaderBlockFragment.ToArray()).ToArray();
            Assert.Equal(block, reassembled);
            if (frames.Count > 1)
            {
                Assert.Equal((int)maxFrameSize, frames[0].PayloadLength);
            }
        }
    }

    [Theory]
    [MemberData(nameof(BlockSizes))]
    public void WritePushPromise_AnyBlockSize_SplitsAndReassembles(int size, uint maxFrameSize)
    {
        var block = Pattern(size);

        var frames = ReadAll(Written(o => Http2FrameWriter.WritePushPromise(o, 1, 2, block, maxFrameSize)), maxFrameSize);

        Assert.Equal(Http2FrameType.PUSH_PROMISE, frames[0].Type);
        Assert.Equal(2, frames[0].PromisedStreamId);
        Assert.True(frames[^1].EndHeaders);
        Assert.Equal(block, frames.SelectMany(f => f.HeaderBlockFragment.ToArray()).ToArray());
    }

    public static readonly TheoryData<int, uint> DataSizes = new()
    {
        { 0, 16_384 }, { 1, 16_384 }, { 16_384, 16_384 }, { 16_385, 16_384 }, { 100_000, 16_384 }, { 100_000, 65_536 },
    };

    [Theory]
    [MemberData(nameof(DataSizes))]
    public void WriteData_AnySize_SplitsAtMaxFrameSizeWithEndStreamOnLast(int size, uint maxFrameSize)
    {
        var data = Pattern(size);
        foreach (bool endStream in new[] { true, false })
        {
            var fromSpan = Written(o => Http2FrameWriter.WriteData(o, 3, data, endStream, maxFrameSize));
            // The same body as pipe segments of awkward sizes: same bytes on the wire.
            var cuts = Enumerable.Range(1, 9).Select(i => i * size / 10).Distinct().Where(c => c > 0 && c < size).ToArray();
            var sequence = cuts.Length == 0 ? TestBuffers.Single(data) : TestBuffers.Split(data, cuts);
            var fromSequence = Written(o => Http2FrameWriter.WriteData(o, 3, sequence, endStream, maxFrameSize));
            Assert.Equal(fromSpan, fromSequence);

            var frames = ReadAll(fromSpan, maxFrameSize);
            Assert.Equal(Math.Max(1, (int)Math.Ceiling(size / (double)maxFrameSize)), frames.Count);
            Assert.All(frames, f => Assert.Equal(Http2FrameType.DATA, f.Type));
            Assert.All(frames.SkipLast(1), f => Assert.Equal((int)maxFrameSize, f.PayloadLength));
            Assert.All(frames.SkipLast(1), f => Assert.False(f.EndStream));
            Assert.Equal(endStream, frames[^1].EndStream);
            Assert.Equal(data, frames.SelectMany(f => f.Data.ToArray()).ToArray());
        }
    }

    [Fact]
    public void WritePaddedData_Padding_IsZerosAndCountsAsPayload()
    {
        var wire = Written(o => Http2FrameWriter.WritePaddedData(o, 1, "hi"u8, 3, endStream: true));

        Assert.Equal("000006 00 09 00000001 03 6869 000000".Replace(" ", ""), Convert.ToHexString(wire));
        var frame = Read(wire).Frame;
        Assert.Equal("hi"u8.ToArray(), frame.Data.ToArray());
        Assert.Equal(6, frame.FlowControlledLength);
    }

    [Fact]
    public void WriteFrames_EveryType_ExactWire()
    {
        Assert.Equal("000004030000000001" + "00000008",
            Convert.ToHexString(Written(o => Http2FrameWriter.WriteRstStream(o, 1, Http2ErrorCode.CANCEL))));
        Assert.Equal("000000040100000000", Convert.ToHexString(Written(Http2FrameWriter.WriteSettingsAck)));
        Assert.Equal("00000C040000000000000300000064000400FFFFFF",
            Convert.ToHexString(Written(o => Http2FrameWriter.WriteSettings(o,
            [
                new(Http2SettingsParameter.SETTINGS_MAX_CONCURRENT_STREAMS, 100),
                new(Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE, 0xFFFFFF),
            ]))));
        Assert.Equal("000008060100000000" + "0102030405060708",
            Convert.ToHexString(Written(o => Http2FrameWriter.WritePing(o, 0x0102030405060708, ack: true))));
        Assert.Equal("00000A0700000000000000000300000001" + "6869",
            Convert.ToHexString(Written(o => Http2FrameWriter.WriteGoAway(o, 3, Http2ErrorCode.PROTOCOL_ERROR, "hi"u8))));
        Assert.Equal("0000040800000000007FFFFFFF",
            Convert.ToHexString(Written(o => Http2FrameWriter.WriteWindowUpdate(o, 0, int.MaxValue))));
        Assert.Equal("00000502000000000380000001FF",
            Convert.ToHexString(Written(o => Http2FrameWriter.WritePriority(o, 3, new Http2Priority(1, true, 256)))));
        Assert.Equal("000001090000000005" + "82",
            Convert.ToHexString(Written(o => Http2FrameWriter.WriteContinuation(o, 5, [0x82], endHeaders: false))));
    }

    [Fact]
    public void WriteFrames_IntoTinySpans_SameBytes()
    {
        // A writer that hands out a few bytes at a time must see the same frames (no contiguous-span assumption).
        var data = Pattern(1_000);
        var expected = Written(Write);
        var tiny = new TinyBufferWriter(16);
        Write(tiny);
        Assert.Equal(expected, tiny.Written.ToArray());

        void Write(IBufferWriter<byte> o)
        {
            Http2FrameWriter.WriteData(o, 1, data, endStream: false);
            Http2FrameWriter.WritePaddedData(o, 1, data, 200, endStream: true);
            Http2FrameWriter.WriteHeaders(o, 3, data, endStream: false, priority: new Http2Priority(1, false, 5), padLength: 100);
            Http2FrameWriter.WriteGoAway(o, 3, Http2ErrorCode.NO_ERROR, data);
        }
    }

    [Fact]
    public void Writer_InvalidArguments_Throw()
    {
        var o = new ArrayBufferWriter<byte>();
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WriteData(o, 0, "x"u8, true));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WriteHeaders(o, 0, "x"u8, true));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WriteRstStream(o, 0, Http2ErrorCode.CANCEL));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WriteWindowUpdate(o, 1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WriteWindowUpdate(o, -1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WritePaddedData(o, 1, "x"u8, 256, true));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WritePaddedData(o, 1, new byte[16_384], 0, true));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WriteData(o, 1, "x"u8, true, 16_383));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WritePriority(o, 1, new Http2Priority(0, false, 0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http2FrameWriter.WritePriority(o, 1, new Http2Priority(0, false, 257)));
        Assert.Equal(0, o.WrittenCount);
    }

    /// <summary>An <see cref="IBufferWriter{T}"/> that never hands out more than a few bytes (unless asked for more).</summary>
    private sealed class TinyBufferWriter(int chunk) : IBufferWriter<byte>
    {
        private readonly ArrayBufferWriter<byte> _inner = new();

        public ReadOnlySpan<byte> Written => _inner.WrittenSpan;

        public void Advance(int count) => _inner.Advance(count);

        public Memory<byte> GetMemory(int sizeHint = 0)
        {
            var memory = _inner.GetMemory(sizeHint);
            return memory[..Math.Min(memory.Length, Math.Max(sizeHint, chunk))];
        }

        public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;
    }
}
