using System.Buffers;
using System.Text;
using ProxyCore.Http.Http2;
using ProxyCore.Http.Tests.Http1;

namespace ProxyCore.Http.Tests.Http2.Frames;

/// <summary>Reads frames from test buffers and turns them into readable snapshots and back into wire bytes.</summary>
internal static class FrameTestHelpers
{
    public static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", ""));

    public readonly record struct ReadResult(Http2ReadStatus Status, Http2Frame Frame, long Consumed, Http2FrameError Error);

    public static ReadResult Read(in ReadOnlySequence<byte> buffer, uint maxFrameSize = Http2Frame.DefaultMaxFrameSize)
    {
        var status = Http2FrameReader.TryReadFrame(buffer, maxFrameSize, out var frame, out var consumed, out var error);
        return new ReadResult(status, frame, TestBuffers.Offset(buffer, consumed), error);
    }

    public static ReadResult Read(byte[] wire, uint maxFrameSize = Http2Frame.DefaultMaxFrameSize) =>
        Read(TestBuffers.Single(wire), maxFrameSize);

    /// <summary>Every field every accessor of the frame's type gives, in one line, for equality across splits.</summary>
    public static string Describe(in Http2Frame frame)
    {
        var sb = new StringBuilder();
        sb.Append(frame.Type).Append(" flags=").Append((byte)frame.Flags).Append(" stream=").Append(frame.StreamId)
          .Append(" length=").Append(frame.PayloadLength).Append(" pad=").Append(frame.PadLength)
          .Append(" payload=").Append(Convert.ToHexString(frame.Payload.ToArray()));
        if (frame.HasPriority)
        {
            sb.Append(" priority=").Append(frame.Priority);
        }
        switch (frame.Type)
        {
            case Http2FrameType.DATA:
                sb.Append(" data=").Append(Convert.ToHexString(frame.Data.ToArray())).Append(" es=").Append(frame.EndStream);
                break;
            case Http2FrameType.HEADERS:
            case Http2FrameType.CONTINUATION:
                sb.Append(" block=").Append(Convert.ToHexString(frame.HeaderBlockFragment.ToArray()))
                  .Append(" es=").Append(frame.EndStream).Append(" eh=").Append(frame.EndHeaders);
                break;
            case Http2FrameType.PUSH_PROMISE:
                sb.Append(" promised=").Append(frame.PromisedStreamId)
                  .Append(" block=").Append(Convert.ToHexString(frame.HeaderBlockFragment.ToArray()));
                break;
            case Http2FrameType.RST_STREAM:
                sb.Append(" code=").Append(frame.ErrorCode);
                break;
            case Http2FrameType.SETTINGS:
                sb.Append(" ack=").Append(frame.IsAck).Append(" settings=");
                foreach (var setting in frame.Settings)
                {
                    sb.Append(setting).Append(';');
                }
                break;
            case Http2FrameType.PING:
                sb.Append(" ack=").Append(frame.IsAck).Append(" opaque=").Append(frame.PingOpaqueData.ToString("X16"));
                break;
            case Http2FrameType.GOAWAY:
                sb.Append(" last=").Append(frame.LastStreamId).Append(" code=").Append(frame.ErrorCode)
                  .Append(" debug=").Append(Convert.ToHexString(frame.DebugData.ToArray()));
                break;
            case Http2FrameType.WINDOW_UPDATE:
                sb.Append(" increment=").Append(frame.WindowSizeIncrement);
                break;
        }
        return sb.ToString();
    }

    /// <summary>
    /// Writes <paramref name="frame"/> again with <see cref="Http2FrameWriter"/>. Padding comes out as
    /// zeros whatever the original held (RFC 9113 §6.1: "Padding octets MUST be set to zero when sending").
    /// </summary>
    public static byte[] Reencode(in Http2Frame frame)
    {
        var output = new ArrayBufferWriter<byte>();
        int pad = frame.IsPadded ? frame.PadLength : -1;
        switch (frame.Type)
        {
            case Http2FrameType.DATA:
                if (frame.IsPadded)
                {
                    Http2FrameWriter.WritePaddedData(output, frame.StreamId, frame.Data.ToArray(), frame.PadLength, frame.EndStream);
                }
                else
                {
                    Http2FrameWriter.WriteData(output, frame.StreamId, frame.Data, frame.EndStream);
                }
                break;
            case Http2FrameType.HEADERS:
                Assert.True(frame.EndHeaders, "a lone HEADERS frame without END_HEADERS cannot be re-encoded by WriteHeaders");
                Http2FrameWriter.WriteHeaders(output, frame.StreamId, frame.HeaderBlockFragment.ToArray(), frame.EndStream,
                    priority: frame.HasPriority ? frame.Priority : null, padLength: pad);
                break;
            case Http2FrameType.PRIORITY:
                Http2FrameWriter.WritePriority(output, frame.StreamId, frame.Priority);
                break;
            case Http2FrameType.RST_STREAM:
                Http2FrameWriter.WriteRstStream(output, frame.StreamId, frame.ErrorCode);
                break;
            case Http2FrameType.SETTINGS:
                if (frame.IsAck)
                {
                    Http2FrameWriter.WriteSettingsAck(output);
                }
                else
                {
                    var settings = new List<Http2Setting>();
                    foreach (var setting in frame.Settings)
                    {
                        settings.Add(setting);
                    }
                    Http2FrameWriter.WriteSettings(output, settings.ToArray());
                }
                break;
            case Http2FrameType.PUSH_PROMISE:
                Assert.True(frame.EndHeaders);
                Http2FrameWriter.WritePushPromise(output, frame.StreamId, frame.PromisedStreamId, frame.HeaderBlockFragment.ToArray(), padLength: pad);
                break;
            case Http2FrameType.PING:
                Http2FrameWriter.WritePing(output, frame.PingOpaqueData, frame.IsAck);
                break;
            case Http2FrameType.GOAWAY:
                Http2FrameWriter.WriteGoAway(output, frame.LastStreamId, frame.ErrorCode, frame.DebugData.ToArray());
                break;
            case Http2FrameType.WINDOW_UPDATE:
                Http2FrameWriter.WriteWindowUpdate(output, frame.StreamId, frame.WindowSizeIncrement);
                break;
            case Http2FrameType.CONTINUATION:
                Http2FrameWriter.WriteContinuation(output, frame.StreamId, frame.HeaderBlockFragment.ToArray(), frame.EndHeaders);
                break;
            default:
                throw new InvalidOperationException($"No writer for {frame.Type}");
        }
        return output.WrittenSpan.ToArray();
    }

    /// <summary>The wire with its padding octets set to zero, as our writer sends them.</summary>
    public static byte[] WithZeroPadding(byte[] wire, int padLength)
    {
        var copy = (byte[])wire.Clone();
        copy.AsSpan(copy.Length - padLength).Clear();
        return copy;
    }

    /// <summary>Reads every frame of <paramref name="wire"/> in turn (the way a connection loop would).</summary>
    public static List<Http2Frame> ReadAll(byte[] wire, uint maxFrameSize = Http2Frame.DefaultMaxFrameSize)
    {
        var frames = new List<Http2Frame>();
        var buffer = new ReadOnlySequence<byte>(wire);
        while (buffer.Length > 0)
        {
            var status = Http2FrameReader.TryReadFrame(buffer, maxFrameSize, out var frame, out var consumed, out var error);
            Assert.True(status == Http2ReadStatus.Frame, $"frame {frames.Count}: {status} {error}");
            frames.Add(frame);
            buffer = buffer.Slice(consumed);
        }
        return frames;
    }
}
