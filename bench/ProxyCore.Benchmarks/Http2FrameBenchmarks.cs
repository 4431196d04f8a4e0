using System.Buffers;
using BenchmarkDotNet.Attributes;
using ProxyCore.Http.Http2;

namespace ProxyCore.Benchmarks;

/// <summary>
/// The HTTP/2 frame reader on a realistic connection mix: SETTINGS, a request HEADERS block, a 16 KiB
/// DATA frame, WINDOW_UPDATE and PING, repeated. Results are per frame (OperationsPerInvoke). The
/// multi-segment case cuts the same bytes into 4 KiB segments, the size a Pipe hands out, so most
/// DATA frames straddle segments. There is no peer baseline: Kestrel's frame reader is internal, so
/// the single-segment case is the baseline for the multi-segment one.
/// </summary>
[Config(typeof(BenchmarkConfig))]
public class Http2FrameBenchmarks
{
    private const int Rounds = 16;
    private const int FramesPerRound = 5;
    private const int FrameCount = Rounds * FramesPerRound;
    private const int PipeSegmentSize = 4096;

    private ReadOnlySequence<byte> _single;
    private ReadOnlySequence<byte> _multi;
    private readonly ArrayBufferWriter<byte> _output = new(Rounds * 17 * 1024);
    private readonly byte[] _body = new byte[16_384];
    private readonly byte[] _headerBlock = new byte[64];

    [GlobalSetup]
    public void Setup()
    {
        var writer = new ArrayBufferWriter<byte>();
        WriteMix(writer);
        var bytes = writer.WrittenSpan.ToArray();
        _single = new ReadOnlySequence<byte>(bytes);
        _multi = Segment(bytes, PipeSegmentSize);
        if (Read(_single) != FrameCount || Read(_multi) != FrameCount)
        {
            throw new InvalidOperationException("the mix must read back as valid frames");
        }
    }

    private void WriteMix(IBufferWriter<byte> output)
    {
        // An HPACK-sized request block (a Chrome GET with a warm dynamic table is ~60 bytes).
        for (int i = 0; i < _headerBlock.Length; i++)
        {
            _headerBlock[i] = (byte)(0x80 | i);
        }
        for (int round = 0; round < Rounds; round++)
        {
            int stream = 2 * round + 1;
            Http2FrameWriter.WriteSettings(output, [new(Http2SettingsParameter.SETTINGS_MAX_CONCURRENT_STREAMS, 100),
                new(Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20), new(Http2SettingsParameter.SETTINGS_MAX_FRAME_SIZE, 16_384)]);
            Http2FrameWriter.WriteHeaders(output, stream, _headerBlock, endStream: false);
            Http2FrameWriter.WriteData(output, stream, _body, endStream: true);
            Http2FrameWriter.WriteWindowUpdate(output, stream, 16_384);
            Http2FrameWriter.WritePing(output, (ulong)round, ack: false);
        }
    }

    private static int Read(ReadOnlySequence<byte> buffer)
    {
        int frames = 0;
        while (Http2FrameReader.TryReadFrame(buffer, Http2Frame.DefaultMaxFrameSize, out var frame, out var consumed, out _) == Http2ReadStatus.Frame)
        {
            // Touch what a connection would: the settings, the block, the data length, the increment.
            switch (frame.Type)
            {
                case Http2FrameType.SETTINGS:
                    foreach (var setting in frame.Settings)
                    {
                        frames += (int)(setting.Value & 0);
                    }
                    break;
                case Http2FrameType.HEADERS:
                    frames += (int)(frame.HeaderBlockFragment.Length & 0);
                    break;
                case Http2FrameType.DATA:
                    frames += (int)(frame.Data.Length & 0);
                    break;
                case Http2FrameType.WINDOW_UPDATE:
                    frames += frame.WindowSizeIncrement & 0;
                    break;
            }
            frames++;
            buffer = buffer.Slice(consumed);
        }
        return frames;
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = FrameCount)]
    public int ReadMix_SingleSegment() => Read(_single);

    [Benchmark(OperationsPerInvoke = FrameCount)]
    public int ReadMix_MultiSegment4K() => Read(_multi);

    [Benchmark(OperationsPerInvoke = FrameCount)]
    public int WriteMix()
    {
        _output.ResetWrittenCount();
        WriteMix(_output);
        return _output.WrittenCount;
    }

    private sealed class Chunk : ReadOnlySequenceSegment<byte>
    {
        public Chunk(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Chunk Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Chunk(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }

    private static ReadOnlySequence<byte> Segment(byte[] bytes, int size)
    {
        var first = new Chunk(bytes.AsMemory(0, Math.Min(size, bytes.Length)), 0);
        var last = first;
        for (int at = size; at < bytes.Length; at += size)
        {
            last = last.Append(bytes.AsMemory(at, Math.Min(size, bytes.Length - at)));
        }
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }
}
