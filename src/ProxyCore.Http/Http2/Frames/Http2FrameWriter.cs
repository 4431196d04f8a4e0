using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace ProxyCore.Http.Http2;

/// <summary>
/// Writes HTTP/2 frames (RFC 9113 §4, §6) into an <see cref="IBufferWriter{T}"/> without allocating.
/// Header and fixed fields go out in one span; payloads are copied once, across as many spans as the
/// writer hands out, so a frame never needs one contiguous buffer of its full size.
/// </summary>
/// <remarks>
/// <paramref name="maxFrameSize"/> parameters are the peer's SETTINGS_MAX_FRAME_SIZE (§4.2: "An
/// endpoint MUST NOT send a frame ... larger than" it). What the writer sends is what the reader
/// accepts: arguments that would make an invalid frame (stream 0 for a stream frame, a zero window
/// increment, padding over 255) throw <see cref="ArgumentOutOfRangeException"/>, since they are the
/// caller's bug and never the peer's input. Padding octets are always zero (§6.1: "Padding octets
/// MUST be set to zero when sending").
/// </remarks>
public static class Http2FrameWriter
{
    private const int MaxPadLength = byte.MaxValue;
    // Frames up to this size are asked for whole, so they go out in one span; larger ones ask only for
    // their head, so a 16 KiB DATA frame never forces the writer to find 16 KiB of contiguous space.
    private const int WholeFrameSizeHint = 1024;
    private const int PingLength = 8;
    private const int GoAwayFixedLength = 8;

    /// <summary>Writes the 9-octet frame header (§4.1) into <paramref name="destination"/>; the reserved bit is left unset.</summary>
    public static void WriteFrameHeader(Span<byte> destination, int length, Http2FrameType type, Http2FrameFlags flags, int streamId)
    {
        Debug.Assert((uint)length <= Http2Frame.MaxAllowedFrameSize);
        Debug.Assert(streamId >= 0);
        BinaryPrimitives.WriteUInt32BigEndian(destination, ((uint)length << 8) | (byte)type);
        destination[4] = (byte)flags;
        BinaryPrimitives.WriteUInt32BigEndian(destination[5..], (uint)streamId);
    }

    /// <summary>
    /// DATA (§6.1): <paramref name="data"/> in as many frames of at most <paramref name="maxFrameSize"/>
    /// octets as it takes (at least one, so an empty body with END_STREAM is one empty frame);
    /// END_STREAM goes on the last. Flow control is the caller's: it must have the window for all of it.
    /// </summary>
    public static void WriteData(IBufferWriter<byte> output, int streamId, ReadOnlySpan<byte> data, bool endStream,
        uint maxFrameSize = Http2Frame.DefaultMaxFrameSize)
    {
        CheckStreamId(streamId);
        int max = CheckMaxFrameSize(maxFrameSize);
        do
        {
            int n = Math.Min(data.Length, max);
            bool last = n == data.Length;
            WriteFrame(output, Http2FrameType.DATA, last && endStream ? Http2FrameFlags.END_STREAM : Http2FrameFlags.None,
                streamId, [], data[..n], padLength: -1);
            data = data[n..];
        }
        while (!data.IsEmpty);
    }

    /// <summary>DATA (§6.1) from a sequence (a pipe's segments, as the relay forwards them), split like the span overload.</summary>
    public static void WriteData(IBufferWriter<byte> output, int streamId, in ReadOnlySequence<byte> data, bool endStream,
        uint maxFrameSize = Http2Frame.DefaultMaxFrameSize)
    {
        if (data.IsSingleSegment)
        {
            WriteData(output, streamId, data.FirstSpan, endStream, maxFrameSize);
            return;
        }
        WriteDataMultiSegment(output, streamId, data, endStream, maxFrameSize);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void WriteDataMultiSegment(IBufferWriter<byte> output, int streamId, in ReadOnlySequence<byte> data, bool endStream, uint maxFrameSize)
    {
        CheckStreamId(streamId);
        int max = CheckMaxFrameSize(maxFrameSize);
        var rest = data;
        do
        {
            int n = (int)Math.Min(rest.Length, max);
            bool last = n == rest.Length;
            Span<byte> header = output.GetSpan(Http2Frame.HeaderLength);
            WriteFrameHeader(header, n, Http2FrameType.DATA, last && endStream ? Http2FrameFlags.END_STREAM : Http2FrameFlags.None, streamId);
            output.Advance(Http2Frame.HeaderLength);
            var chunk = rest.Slice(0, n);
            foreach (var segment in chunk)
            {
                output.Write(segment.Span);
            }
            rest = rest.Slice(chunk.End);
        }
        while (rest.Length > 0);
    }

    /// <summary>
    /// One padded DATA frame (§6.1): Pad Length, <paramref name="data"/>, then <paramref name="padLength"/>
    /// zero octets. Padding hides the size of a message (§10.7); the whole of it counts against flow control.
    /// </summary>
    public static void WritePaddedData(IBufferWriter<byte> output, int streamId, ReadOnlySpan<byte> data, int padLength, bool endStream,
        uint maxFrameSize = Http2Frame.DefaultMaxFrameSize)
    {
        CheckStreamId(streamId);
        CheckPadLength(padLength);
        if (1 + data.Length + padLength > CheckMaxFrameSize(maxFrameSize))
        {
            ThrowFrameTooLarge();
        }
        WriteFrame(output, Http2FrameType.DATA, endStream ? Http2FrameFlags.END_STREAM : Http2FrameFlags.None,
            streamId, [], data, padLength);
    }

    /// <summary>
    /// HEADERS (§6.2), followed by as many CONTINUATION frames (§6.10) as the field block needs to
    /// keep each frame within <paramref name="maxFrameSize"/>. END_HEADERS goes on the last of them;
    /// END_STREAM on the HEADERS frame (§8.1: it ends the stream for the whole field block). The
    /// optional priority and padding belong to the HEADERS frame only.
    /// </summary>
    /// <remarks>
    /// §4.3: "Field blocks MUST be transmitted as a contiguous sequence of frames, with no
    /// interleaved frames of any other type or from any other stream", which is why the whole block
    /// is written in one call: the caller must not put another frame between these.
    /// </remarks>
    public static void WriteHeaders(IBufferWriter<byte> output, int streamId, ReadOnlySpan<byte> headerBlock, bool endStream,
        uint maxFrameSize = Http2Frame.DefaultMaxFrameSize, Http2Priority? priority = null, int padLength = -1)
    {
        CheckStreamId(streamId);
        int max = CheckMaxFrameSize(maxFrameSize);
        if (padLength != -1)
        {
            CheckPadLength(padLength);
        }

        // §6.2: [Pad Length (8)], [Exclusive (1)], [Stream Dependency (31)], [Weight (8)].
        Span<byte> prefix = stackalloc byte[5];
        int prefixLength = 0;
        var flags = endStream ? Http2FrameFlags.END_STREAM : Http2FrameFlags.None;
        if (priority is { } p)
        {
            WritePriorityFields(prefix, p);
            prefixLength = 5;
            flags |= Http2FrameFlags.PRIORITY;
        }
        int room = max - prefixLength - (padLength >= 0 ? 1 + padLength : 0);
        if (room < 0)
        {
            ThrowFrameTooLarge();
        }
        int n = Math.Min(room, headerBlock.Length);
        if (n == headerBlock.Length)
        {
            flags |= Http2FrameFlags.END_HEADERS;
        }
        WriteFrame(output, Http2FrameType.HEADERS, flags, streamId, prefix[..prefixLength], headerBlock[..n], padLength);
        WriteContinuations(output, streamId, headerBlock[n..], max);
    }

    /// <summary>
    /// PUSH_PROMISE (§6.6) and the CONTINUATION frames its field block needs. ProxyCore never pushes
    /// (it sends SETTINGS_ENABLE_PUSH 0 upstream and ignores pushes downstream); this exists so the
    /// frame layer can write everything it reads, which the tests rely on.
    /// </summary>
    public static void WritePushPromise(IBufferWriter<byte> output, int streamId, int promisedStreamId, ReadOnlySpan<byte> headerBlock,
        uint maxFrameSize = Http2Frame.DefaultMaxFrameSize, int padLength = -1)
    {
        CheckStreamId(streamId);
        CheckStreamId(promisedStreamId);
        int max = CheckMaxFrameSize(maxFrameSize);
        if (padLength != -1)
        {
            CheckPadLength(padLength);
        }
        Span<byte> prefix = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(prefix, (uint)promisedStreamId);
        int room = max - prefix.Length - (padLength >= 0 ? 1 + padLength : 0);
        if (room < 0)
        {
            ThrowFrameTooLarge();
        }
        int n = Math.Min(room, headerBlock.Length);
        var flags = n == headerBlock.Length ? Http2FrameFlags.END_HEADERS : Http2FrameFlags.None;
        WriteFrame(output, Http2FrameType.PUSH_PROMISE, flags, streamId, prefix, headerBlock[..n], padLength);
        WriteContinuations(output, streamId, headerBlock[n..], max);
    }

    /// <summary>One CONTINUATION frame (§6.10), for a caller that produces a field block piece by piece.</summary>
    public static void WriteContinuation(IBufferWriter<byte> output, int streamId, ReadOnlySpan<byte> fragment, bool endHeaders)
    {
        CheckStreamId(streamId);
        WriteFrame(output, Http2FrameType.CONTINUATION, endHeaders ? Http2FrameFlags.END_HEADERS : Http2FrameFlags.None,
            streamId, [], fragment, padLength: -1);
    }

    private static void WriteContinuations(IBufferWriter<byte> output, int streamId, ReadOnlySpan<byte> rest, int max)
    {
        while (!rest.IsEmpty)
        {
            int n = Math.Min(rest.Length, max);
            WriteContinuation(output, streamId, rest[..n], endHeaders: n == rest.Length);
            rest = rest[n..];
        }
    }

    /// <summary>PRIORITY (§6.3). Deprecated by RFC 9113 §5.3.2, written only to relay a peer's signal.</summary>
    public static void WritePriority(IBufferWriter<byte> output, int streamId, Http2Priority priority)
    {
        CheckStreamId(streamId);
        Span<byte> frame = output.GetSpan(Http2Frame.HeaderLength + 5);
        WriteFrameHeader(frame, 5, Http2FrameType.PRIORITY, Http2FrameFlags.None, streamId);
        WritePriorityFields(frame[Http2Frame.HeaderLength..], priority);
        output.Advance(Http2Frame.HeaderLength + 5);
    }

    /// <summary>RST_STREAM (§6.4): ends one stream with <paramref name="errorCode"/>.</summary>
    public static void WriteRstStream(IBufferWriter<byte> output, int streamId, Http2ErrorCode errorCode)
    {
        CheckStreamId(streamId);
        Span<byte> frame = output.GetSpan(Http2Frame.HeaderLength + 4);
        WriteFrameHeader(frame, 4, Http2FrameType.RST_STREAM, Http2FrameFlags.None, streamId);
        BinaryPrimitives.WriteUInt32BigEndian(frame[Http2Frame.HeaderLength..], (uint)errorCode);
        output.Advance(Http2Frame.HeaderLength + 4);
    }

    /// <summary>SETTINGS (§6.5) with <paramref name="settings"/> in order (an empty list is valid: all defaults).</summary>
    public static void WriteSettings(IBufferWriter<byte> output, ReadOnlySpan<Http2Setting> settings)
    {
        int length = settings.Length * Http2FrameReader.SettingLength;
        Span<byte> frame = output.GetSpan(Http2Frame.HeaderLength + length);
        WriteFrameHeader(frame, length, Http2FrameType.SETTINGS, Http2FrameFlags.None, 0);
        var entry = frame[Http2Frame.HeaderLength..];
        foreach (var setting in settings)
        {
            BinaryPrimitives.WriteUInt16BigEndian(entry, (ushort)setting.Parameter);
            BinaryPrimitives.WriteUInt32BigEndian(entry[2..], setting.Value);
            entry = entry[Http2FrameReader.SettingLength..];
        }
        output.Advance(Http2Frame.HeaderLength + length);
    }

    /// <summary>
    /// SETTINGS with ACK (§6.5): "Upon receiving a SETTINGS frame with the ACK flag set, the sender of
    /// the altered settings can rely on the values ... having been applied." No payload.
    /// </summary>
    public static void WriteSettingsAck(IBufferWriter<byte> output)
    {
        Span<byte> frame = output.GetSpan(Http2Frame.HeaderLength);
        WriteFrameHeader(frame, 0, Http2FrameType.SETTINGS, Http2FrameFlags.ACK, 0);
        output.Advance(Http2Frame.HeaderLength);
    }

    /// <summary>
    /// PING (§6.7) with the 8 opaque octets as one big-endian number. An answer sets
    /// <paramref name="ack"/> and echoes the data: "PING responses MUST be given higher priority than any other frame".
    /// </summary>
    public static void WritePing(IBufferWriter<byte> output, ulong opaqueData, bool ack)
    {
        Span<byte> frame = output.GetSpan(Http2Frame.HeaderLength + PingLength);
        WriteFrameHeader(frame, PingLength, Http2FrameType.PING, ack ? Http2FrameFlags.ACK : Http2FrameFlags.None, 0);
        BinaryPrimitives.WriteUInt64BigEndian(frame[Http2Frame.HeaderLength..], opaqueData);
        output.Advance(Http2Frame.HeaderLength + PingLength);
    }

    /// <summary>
    /// GOAWAY (§6.8): the last stream this endpoint processed or may still process, why, and
    /// optional debug data (§6.8: it "MUST NOT" carry anything security- or privacy-sensitive).
    /// </summary>
    public static void WriteGoAway(IBufferWriter<byte> output, int lastStreamId, Http2ErrorCode errorCode, ReadOnlySpan<byte> debugData = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(lastStreamId);
        Span<byte> fixedFields = stackalloc byte[GoAwayFixedLength];
        BinaryPrimitives.WriteUInt32BigEndian(fixedFields, (uint)lastStreamId);
        BinaryPrimitives.WriteUInt32BigEndian(fixedFields[4..], (uint)errorCode);
        WriteFrame(output, Http2FrameType.GOAWAY, Http2FrameFlags.None, 0, fixedFields, debugData, padLength: -1);
    }

    /// <summary>
    /// WINDOW_UPDATE (§6.9) for a stream, or for the connection with <paramref name="streamId"/> 0.
    /// <paramref name="increment"/> is 1..2^31-1 (§6.9: the receiver treats 0 as an error).
    /// </summary>
    public static void WriteWindowUpdate(IBufferWriter<byte> output, int streamId, int increment)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(streamId);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(increment);
        Span<byte> frame = output.GetSpan(Http2Frame.HeaderLength + 4);
        WriteFrameHeader(frame, 4, Http2FrameType.WINDOW_UPDATE, Http2FrameFlags.None, streamId);
        BinaryPrimitives.WriteUInt32BigEndian(frame[Http2Frame.HeaderLength..], (uint)increment);
        output.Advance(Http2Frame.HeaderLength + 4);
    }

    /// <summary>
    /// One frame: header, [Pad Length], <paramref name="prefix"/> fixed fields, <paramref name="content"/>,
    /// padding. <paramref name="padLength"/> -1 means not padded (0 means PADDED with no padding octets).
    /// </summary>
    private static void WriteFrame(IBufferWriter<byte> output, Http2FrameType type, Http2FrameFlags flags, int streamId,
        ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> content, int padLength)
    {
        bool padded = padLength >= 0;
        int head = Http2Frame.HeaderLength + (padded ? 1 : 0) + prefix.Length;
        int length = head - Http2Frame.HeaderLength + content.Length + (padded ? padLength : 0);
        if (padded)
        {
            flags |= Http2FrameFlags.PADDED;
        }

        int total = Http2Frame.HeaderLength + length;
        Span<byte> span = output.GetSpan(total <= WholeFrameSizeHint ? total : head);
        if (span.Length >= total)
        {
            // The common case: the whole frame in the span the writer handed out.
            WriteHead(span, length, type, flags, streamId, prefix, padLength);
            content.CopyTo(span[head..]);
            if (padded)
            {
                span.Slice(head + content.Length, padLength).Clear();
            }
            output.Advance(total);
            return;
        }

        WriteHead(span, length, type, flags, streamId, prefix, padLength);
        output.Advance(head);
        output.Write(content);
        if (padded)
        {
            WriteZeros(output, padLength);
        }
    }

    private static void WriteHead(Span<byte> span, int length, Http2FrameType type, Http2FrameFlags flags, int streamId,
        ReadOnlySpan<byte> prefix, int padLength)
    {
        WriteFrameHeader(span, length, type, flags, streamId);
        int at = Http2Frame.HeaderLength;
        if (padLength >= 0)
        {
            span[at++] = (byte)padLength;
        }
        prefix.CopyTo(span[at..]);
    }

    private static void WriteZeros(IBufferWriter<byte> output, int count)
    {
        while (count > 0)
        {
            var span = output.GetSpan(1);
            int n = Math.Min(span.Length, count);
            span[..n].Clear();
            output.Advance(n);
            count -= n;
        }
    }

    /// <summary>§6.3: Exclusive (1), Stream Dependency (31), Weight (8), the weight on the wire being one less.</summary>
    private static void WritePriorityFields(Span<byte> destination, Http2Priority priority)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(priority.StreamDependency);
        if (priority.Weight is < 1 or > 256)
        {
            ThrowWeightOutOfRange(priority.Weight);
        }
        uint dependency = (uint)priority.StreamDependency | (priority.Exclusive ? Http2Frame.ExclusiveBit : 0);
        BinaryPrimitives.WriteUInt32BigEndian(destination, dependency);
        destination[4] = (byte)(priority.Weight - 1);
    }

    private static void CheckStreamId(int streamId)
    {
        // Stream frames need a stream: the reader rejects them on stream 0 (§6.1-§6.4, §6.6, §6.10).
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(streamId);
    }

    private static int CheckMaxFrameSize(uint maxFrameSize)
    {
        if (maxFrameSize is < Http2Frame.DefaultMaxFrameSize or > Http2Frame.MaxAllowedFrameSize)
        {
            ThrowMaxFrameSizeOutOfRange(maxFrameSize);
        }
        return (int)maxFrameSize;
    }

    private static void CheckPadLength(int padLength)
    {
        if ((uint)padLength > MaxPadLength)
        {
            ThrowPadLengthOutOfRange(padLength);
        }
    }

    [DoesNotReturn]
    private static void ThrowMaxFrameSizeOutOfRange(uint maxFrameSize) =>
        throw new ArgumentOutOfRangeException(nameof(maxFrameSize), maxFrameSize, "SETTINGS_MAX_FRAME_SIZE is 16384..16777215 (RFC 9113 §6.5.2).");

    [DoesNotReturn]
    private static void ThrowPadLengthOutOfRange(int padLength) =>
        throw new ArgumentOutOfRangeException(nameof(padLength), padLength, "The Pad Length field is one octet.");

    [DoesNotReturn]
    private static void ThrowWeightOutOfRange(int weight) =>
        throw new ArgumentOutOfRangeException(nameof(weight), weight, "A priority weight is 1..256 (RFC 9113 §6.3).");

    [DoesNotReturn]
    private static void ThrowFrameTooLarge() =>
        throw new ArgumentOutOfRangeException("padLength", "The fixed fields and padding do not fit in one frame of the maximum size.");
}
