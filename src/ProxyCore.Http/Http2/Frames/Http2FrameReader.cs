using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ProxyCore.Http.Http2;

/// <summary>
/// Reads and validates one HTTP/2 frame (RFC 9113 §4, §6) from the start of a buffer. It does no I/O
/// and keeps no state: incomplete input consumes nothing, and only the connection loop advances the pipe.
/// </summary>
/// <remarks>
/// Every rule of §4.2 and §6 that a frame can break on its own is checked here, each next to the
/// sentence that makes it a rule; rules that need connection or stream state (a CONTINUATION after
/// the right HEADERS, flow-control windows, stream states) belong to the connection. A rule that the
/// 9-octet header alone breaks fails at once, before the payload arrives, so an oversized frame is
/// never waited for. Stream errors (§5.4.2) are reported only once the whole frame is there, so the
/// connection can step over it and carry on.
/// </remarks>
public static class Http2FrameReader
{
    /// <summary>RFC 9113 §6.5.1: each setting is a 16-bit identifier and a 32-bit value.</summary>
    internal const int SettingLength = 6;

    // Fixed lengths and fixed-field sizes of RFC 9113 §6.
    private const int PadLengthFieldLength = 1;
    private const int PriorityFieldsLength = 5;      // E + Stream Dependency (32) + Weight (8)
    private const int PriorityFrameLength = 5;
    private const int RstStreamFrameLength = 4;
    private const int PingFrameLength = 8;
    private const int GoAwayMinimumLength = 8;       // Last-Stream-ID (32) + Error Code (32)
    private const int WindowUpdateFrameLength = 4;
    private const int PromisedStreamIdLength = 4;
    private const int MaxFixedFieldsLength = 8;

    /// <summary>
    /// RFC 9113 §4.1: "Flags that have no defined semantics for a particular frame type MUST be
    /// ignored". The flags each known type defines, indexed by type.
    /// </summary>
    private static ReadOnlySpan<byte> DefinedFlags =>
    [
        0x09, // DATA: END_STREAM | PADDED
        0x2D, // HEADERS: END_STREAM | END_HEADERS | PADDED | PRIORITY
        0x00, // PRIORITY
        0x00, // RST_STREAM
        0x01, // SETTINGS: ACK
        0x0C, // PUSH_PROMISE: END_HEADERS | PADDED
        0x01, // PING: ACK
        0x00, // GOAWAY
        0x00, // WINDOW_UPDATE
        0x04, // CONTINUATION: END_HEADERS
    ];

    /// <summary>
    /// Reads one frame from the start of <paramref name="buffer"/>.
    /// </summary>
    /// <param name="buffer">The received bytes; the frame starts at its first byte.</param>
    /// <param name="maxFrameSize">The SETTINGS_MAX_FRAME_SIZE this endpoint advertised (2^14..2^24-1).</param>
    /// <param name="frame">On <see cref="Http2ReadStatus.Frame"/>, <see cref="Http2ReadStatus.UnknownFrame"/> and a stream error: the frame, its payload a slice of <paramref name="buffer"/>.</param>
    /// <param name="consumed">Just after the frame; <c>buffer.Start</c> when incomplete or on a connection error.</param>
    /// <param name="error">On <see cref="Http2ReadStatus.Error"/>: the code, scope and reason.</param>
    public static Http2ReadStatus TryReadFrame(in ReadOnlySequence<byte> buffer, uint maxFrameSize,
        out Http2Frame frame, out SequencePosition consumed, out Http2FrameError error)
    {
        Debug.Assert(maxFrameSize is >= Http2Frame.DefaultMaxFrameSize and <= Http2Frame.MaxAllowedFrameSize);
        frame = default;
        consumed = buffer.Start;
        error = default;

        // RFC 9113 §4.1:
        // HTTP Frame {
        //   Length (24),
        //   Type (8),
        //   Flags (8),
        //   Reserved (1),
        //   Stream Identifier (31),
        //   Frame Payload (..),
        // }
        ReadOnlySpan<byte> first = buffer.FirstSpan;
        uint lengthAndType;
        byte rawFlags;
        uint rawStreamId;
        if (first.Length >= Http2Frame.HeaderLength)
        {
            lengthAndType = BinaryPrimitives.ReadUInt32BigEndian(first);
            rawFlags = first[4];
            rawStreamId = BinaryPrimitives.ReadUInt32BigEndian(first[5..]);
        }
        else if (!TryReadHeaderMultiSegment(buffer, out lengthAndType, out rawFlags, out rawStreamId))
        {
            return Http2ReadStatus.Incomplete;
        }

        int length = (int)(lengthAndType >> 8);
        var type = (Http2FrameType)(byte)lengthAndType;
        // §4.1: "The semantics of this bit are undefined, and the bit MUST remain unset (0x00) when
        // sending and MUST be ignored when receiving."
        int streamId = (int)(rawStreamId & Http2Frame.StreamIdMask);

        // §4.2: "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame exceeds the size
        // defined in SETTINGS_MAX_FRAME_SIZE". A DATA frame could be a stream error, but skipping one
        // would mean waiting for up to 16 MiB we said we would not take; §5.4.1 lets an endpoint
        // "treat a stream error as a connection error", and this one always is.
        if ((uint)length > maxFrameSize)
        {
            return ConnectionError(Http2ErrorCode.FRAME_SIZE_ERROR, Http2FrameErrorReason.FrameTooLarge, out error);
        }

        if (type > Http2FrameType.CONTINUATION)
        {
            // §5.5: "Implementations MUST ignore and discard frames of unknown types." Nothing about
            // them is checked, not even the stream identifier.
            if (buffer.Length - Http2Frame.HeaderLength < length)
            {
                return Http2ReadStatus.Incomplete;
            }
            var unknownPayload = buffer.Slice(Http2Frame.HeaderLength, length);
            frame = new Http2Frame(type, (Http2FrameFlags)rawFlags, streamId, unknownPayload, 0, length, 0, 0, 0);
            consumed = unknownPayload.End;
            return Http2ReadStatus.UnknownFrame;
        }

        var flags = (Http2FrameFlags)(rawFlags & DefinedFlags[(int)type]);
        if (!CheckHeader(type, flags, streamId, length, out error))
        {
            return Http2ReadStatus.Error;
        }

        if (buffer.Length - Http2Frame.HeaderLength < length)
        {
            return Http2ReadStatus.Incomplete;
        }

        // The fixed fields at the payload's start (at most 8 octets: GOAWAY's and PING's), read from
        // the first segment when they are in it.
        int fixedLength = Math.Min(length, MaxFixedFieldsLength);
        ReadOnlySpan<byte> fields = first.Length >= Http2Frame.HeaderLength + fixedLength
            ? first.Slice(Http2Frame.HeaderLength, fixedLength)
            : CopyFixedFields(buffer, stackalloc byte[MaxFixedFieldsLength].Slice(0, fixedLength));

        // A slice keeps the buffer's own segments (no new sequence object to inspect), and its end
        // is where the next frame starts.
        var payload = buffer.Slice(Http2Frame.HeaderLength, length);

        var status = ReadPayload(type, flags, streamId, payload, fields, out frame, out error);
        if (status != Http2ReadStatus.Error || error.Scope == Http2ErrorScope.Stream)
        {
            consumed = payload.End;
        }
        return status;
    }

    /// <summary>The checks the 9-octet header alone decides: stream identifier 0 or not, fixed lengths (connection-error ones only).</summary>
    private static bool CheckHeader(Http2FrameType type, Http2FrameFlags flags, int streamId, int length, out Http2FrameError error)
    {
        error = default;
        switch (type)
        {
            case Http2FrameType.DATA:
            case Http2FrameType.HEADERS:
            case Http2FrameType.PRIORITY:
            case Http2FrameType.RST_STREAM:
            case Http2FrameType.PUSH_PROMISE:
            case Http2FrameType.CONTINUATION:
                // §6.1: "If a DATA frame is received whose Stream Identifier field is 0x00, the
                // recipient MUST respond with a connection error (Section 5.4.1) of type
                // PROTOCOL_ERROR." §6.2 (HEADERS), §6.3 (PRIORITY), §6.4 (RST_STREAM), §6.6
                // (PUSH_PROMISE) and §6.10 (CONTINUATION) say the same of their type.
                if (streamId == 0)
                {
                    return Fail(Http2ErrorCode.PROTOCOL_ERROR, Http2FrameErrorReason.StreamIdRequired, out error);
                }
                break;
            case Http2FrameType.SETTINGS:
            case Http2FrameType.PING:
            case Http2FrameType.GOAWAY:
                // §6.5: "If an endpoint receives a SETTINGS frame whose Stream Identifier field is
                // anything other than 0x00, the endpoint MUST respond with a connection error
                // (Section 5.4.1) of type PROTOCOL_ERROR." §6.7 (PING) and §6.8 (GOAWAY) likewise.
                if (streamId != 0)
                {
                    return Fail(Http2ErrorCode.PROTOCOL_ERROR, Http2FrameErrorReason.StreamIdNotZero, out error);
                }
                break;
        }

        switch (type)
        {
            case Http2FrameType.DATA:
                // §4.2: a frame "too small to contain mandatory frame data" is a FRAME_SIZE_ERROR.
                if (length < RequiredLength(flags, 0))
                {
                    return Fail(Http2ErrorCode.FRAME_SIZE_ERROR, Http2FrameErrorReason.InvalidLength, out error);
                }
                break;
            case Http2FrameType.HEADERS:
                // §4.2: a frame size error in a frame carrying a field block "MUST be treated as a
                // connection error".
                if (length < RequiredLength(flags, (flags & Http2FrameFlags.PRIORITY) != 0 ? PriorityFieldsLength : 0))
                {
                    return Fail(Http2ErrorCode.FRAME_SIZE_ERROR, Http2FrameErrorReason.InvalidLength, out error);
                }
                break;
            case Http2FrameType.PUSH_PROMISE:
                if (length < RequiredLength(flags, PromisedStreamIdLength))
                {
                    return Fail(Http2ErrorCode.FRAME_SIZE_ERROR, Http2FrameErrorReason.InvalidLength, out error);
                }
                break;
            case Http2FrameType.RST_STREAM:
                // §6.4: "A RST_STREAM frame with a length other than 4 octets MUST be treated as a
                // connection error (Section 5.4.1) of type FRAME_SIZE_ERROR."
                if (length != RstStreamFrameLength)
                {
                    return Fail(Http2ErrorCode.FRAME_SIZE_ERROR, Http2FrameErrorReason.InvalidLength, out error);
                }
                break;
            case Http2FrameType.SETTINGS:
                // §6.5: "Receipt of a SETTINGS frame with the ACK flag set and a length field value
                // other than 0 MUST be treated as a connection error (Section 5.4.1) of type
                // FRAME_SIZE_ERROR."
                if ((flags & Http2FrameFlags.ACK) != 0 && length != 0)
                {
                    return Fail(Http2ErrorCode.FRAME_SIZE_ERROR, Http2FrameErrorReason.SettingsAckWithPayload, out error);
                }
                // §6.5: "A SETTINGS frame with a length other than a multiple of 6 octets MUST be
                // treated as a connection error (Section 5.4.1) of type FRAME_SIZE_ERROR."
                if (length % SettingLength != 0)
                {
                    return Fail(Http2ErrorCode.FRAME_SIZE_ERROR, Http2FrameErrorReason.InvalidLength, out error);
                }
                break;
            case Http2FrameType.PING:
                // §6.7: "Receipt of a PING frame with a length field value other than 8 MUST be
                // treated as a connection error (Section 5.4.1) of type FRAME_SIZE_ERROR."
                if (length != PingFrameLength)
                {
                    return Fail(Http2ErrorCode.FRAME_SIZE_ERROR, Http2FrameErrorReason.InvalidLength, out error);
                }
                break;
            case Http2FrameType.GOAWAY:
                // §4.2: too small for Last-Stream-ID and Error Code; on stream 0, so a connection error.
                if (length < GoAwayMinimumLength)
                {
                    return Fail(Http2ErrorCode.FRAME_SIZE_ERROR, Http2FrameErrorReason.InvalidLength, out error);
                }
                break;
            case Http2FrameType.WINDOW_UPDATE:
                // §6.9: "A WINDOW_UPDATE frame with a length other than 4 octets MUST be treated as a
                // connection error (Section 5.4.1) of type FRAME_SIZE_ERROR."
                if (length != WindowUpdateFrameLength)
                {
                    return Fail(Http2ErrorCode.FRAME_SIZE_ERROR, Http2FrameErrorReason.InvalidLength, out error);
                }
                break;
        }
        return true;

        static bool Fail(Http2ErrorCode code, Http2FrameErrorReason reason, out Http2FrameError error)
        {
            error = new Http2FrameError(code, Http2ErrorScope.Connection, 0, reason);
            return false;
        }
    }

    private static int RequiredLength(Http2FrameFlags flags, int fixedFields) =>
        ((flags & Http2FrameFlags.PADDED) != 0 ? PadLengthFieldLength : 0) + fixedFields;

    /// <summary>Decodes the fixed fields of a complete frame whose header passed <see cref="CheckHeader"/>, and checks what they say.</summary>
    private static Http2ReadStatus ReadPayload(Http2FrameType type, Http2FrameFlags flags, int streamId,
        in ReadOnlySequence<byte> payload, ReadOnlySpan<byte> fields, out Http2Frame frame, out Http2FrameError error)
    {
        error = default;
        int length = (int)payload.Length;
        switch (type)
        {
            case Http2FrameType.DATA:
            {
                // §6.1:
                // DATA Frame {
                //   Length (24),
                //   Type (8) = 0x00,
                //   Unused Flags (4),
                //   PADDED Flag (1),
                //   Unused Flags (2),
                //   END_STREAM Flag (1),
                //   Reserved (1),
                //   Stream Identifier (31),
                //   [Pad Length (8)],
                //   Data (..),
                //   Padding (..2040),
                // }
                if (!TryUnpad(flags, fields, length, 0, out int padLength, out int dataOffset, out int dataLength))
                {
                    frame = default;
                    return ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, Http2FrameErrorReason.PaddingTooLong, out error);
                }
                frame = new Http2Frame(type, flags, streamId, payload, dataOffset, dataLength, (byte)padLength, 0, 0);
                return Http2ReadStatus.Frame;
            }
            case Http2FrameType.HEADERS:
            {
                // §6.2:
                // HEADERS Frame {
                //   Length (24),
                //   Type (8) = 0x01,
                //   Unused Flags (2),
                //   PRIORITY Flag (1),
                //   Unused Flag (1),
                //   PADDED Flag (1),
                //   END_HEADERS Flag (1),
                //   Unused Flag (1),
                //   END_STREAM Flag (1),
                //   Reserved (1),
                //   Stream Identifier (31),
                //   [Pad Length (8)],
                //   [Exclusive (1)],
                //   [Stream Dependency (31)],
                //   [Weight (8)],
                //   Field Block Fragment (..),
                //   Padding (..2040),
                // }
                bool hasPriority = (flags & Http2FrameFlags.PRIORITY) != 0;
                if (!TryUnpad(flags, fields, length, hasPriority ? PriorityFieldsLength : 0, out int padLength, out int blockOffset, out int blockLength))
                {
                    frame = default;
                    return ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, Http2FrameErrorReason.PaddingTooLong, out error);
                }
                uint dependency = 0;
                uint weight = 0;
                if (hasPriority)
                {
                    int at = blockOffset - PriorityFieldsLength;
                    dependency = Http2Frame.ReadUInt32(fields[at..]);
                    weight = fields[at + 4];
                }
                frame = new Http2Frame(type, flags, streamId, payload, blockOffset, blockLength, (byte)padLength, dependency, weight);
                if (hasPriority && (int)(dependency & Http2Frame.StreamIdMask) == streamId)
                {
                    return SelfDependency(streamId, out error);
                }
                return Http2ReadStatus.Frame;
            }
            case Http2FrameType.PRIORITY:
            {
                // §6.3:
                // PRIORITY Frame {
                //   Length (24) = 0x05,
                //   Type (8) = 0x02,
                //   Unused Flags (8),
                //   Reserved (1),
                //   Stream Identifier (31),
                //   Exclusive (1),
                //   Stream Dependency (31),
                //   Weight (8),
                // }
                // §6.3: "A PRIORITY frame with a length other than 5 octets MUST be treated as a stream
                // error (Section 5.4.2) of type FRAME_SIZE_ERROR."
                if (length != PriorityFrameLength)
                {
                    frame = new Http2Frame(type, flags, streamId, payload, 0, length, 0, 0, 0);
                    error = new Http2FrameError(Http2ErrorCode.FRAME_SIZE_ERROR, Http2ErrorScope.Stream, streamId, Http2FrameErrorReason.InvalidLength);
                    return Http2ReadStatus.Error;
                }
                uint dependency = Http2Frame.ReadUInt32(fields);
                frame = new Http2Frame(type, flags, streamId, payload, length, 0, 0, dependency, fields[4]);
                if ((int)(dependency & Http2Frame.StreamIdMask) == streamId)
                {
                    return SelfDependency(streamId, out error);
                }
                return Http2ReadStatus.Frame;
            }
            case Http2FrameType.RST_STREAM:
                // §6.4:
                // RST_STREAM Frame {
                //   Length (24) = 0x04,
                //   Type (8) = 0x03,
                //   Unused Flags (8),
                //   Reserved (1),
                //   Stream Identifier (31),
                //   Error Code (32),
                // }
                frame = new Http2Frame(type, flags, streamId, payload, length, 0, 0, 0, Http2Frame.ReadUInt32(fields));
                return Http2ReadStatus.Frame;
            case Http2FrameType.SETTINGS:
                // §6.5:
                // SETTINGS Frame {
                //   Length (24),
                //   Type (8) = 0x04,
                //   Unused Flags (7),
                //   ACK Flag (1),
                //   Reserved (1),
                //   Stream Identifier (31) = 0,
                //   Setting (48) ...,
                // }
                frame = new Http2Frame(type, flags, streamId, payload, 0, length, 0, 0, 0);
                return CheckSettings(payload, out error);
            case Http2FrameType.PUSH_PROMISE:
            {
                // §6.6:
                // PUSH_PROMISE Frame {
                //   Length (24),
                //   Type (8) = 0x05,
                //   Unused Flags (4),
                //   PADDED Flag (1),
                //   END_HEADERS Flag (1),
                //   Unused Flags (2),
                //   Reserved (1),
                //   Stream Identifier (31),
                //   [Pad Length (8)],
                //   Reserved (1),
                //   Promised Stream ID (31),
                //   Field Block Fragment (..),
                //   Padding (..2040),
                // }
                if (!TryUnpad(flags, fields, length, PromisedStreamIdLength, out int padLength, out int blockOffset, out int blockLength))
                {
                    frame = default;
                    return ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, Http2FrameErrorReason.PaddingTooLong, out error);
                }
                uint promised = Http2Frame.ReadUInt32(fields[(blockOffset - PromisedStreamIdLength)..]) & Http2Frame.StreamIdMask;
                // §6.6: "The promised stream identifier MUST be a valid choice for the next stream sent
                // by the sender"; §5.1.1: "Streams initiated by a server MUST use even-numbered stream
                // identifiers", and "An endpoint that receives an unexpected stream identifier MUST
                // respond with a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
                if (promised == 0 || (promised & 1) != 0)
                {
                    frame = default;
                    return ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, Http2FrameErrorReason.InvalidPromisedStreamId, out error);
                }
                frame = new Http2Frame(type, flags, streamId, payload, blockOffset, blockLength, (byte)padLength, promised, 0);
                return Http2ReadStatus.Frame;
            }
            case Http2FrameType.PING:
                // §6.7:
                // PING Frame {
                //   Length (24) = 0x08,
                //   Type (8) = 0x06,
                //   Unused Flags (7),
                //   ACK Flag (1),
                //   Reserved (1),
                //   Stream Identifier (31) = 0,
                //   Opaque Data (64),
                // }
                frame = new Http2Frame(type, flags, streamId, payload, 0, length, 0,
                    Http2Frame.ReadUInt32(fields), Http2Frame.ReadUInt32(fields[4..]));
                return Http2ReadStatus.Frame;
            case Http2FrameType.GOAWAY:
                // §6.8:
                // GOAWAY Frame {
                //   Length (24),
                //   Type (8) = 0x07,
                //   Unused Flags (8),
                //   Reserved (1),
                //   Stream Identifier (31) = 0,
                //   Reserved (1),
                //   Last-Stream-ID (31),
                //   Error Code (32),
                //   Additional Debug Data (..),
                // }
                frame = new Http2Frame(type, flags, streamId, payload, GoAwayMinimumLength, length - GoAwayMinimumLength, 0,
                    Http2Frame.ReadUInt32(fields) & Http2Frame.StreamIdMask, Http2Frame.ReadUInt32(fields[4..]));
                return Http2ReadStatus.Frame;
            case Http2FrameType.WINDOW_UPDATE:
            {
                // §6.9:
                // WINDOW_UPDATE Frame {
                //   Length (24) = 0x04,
                //   Type (8) = 0x08,
                //   Unused Flags (8),
                //   Reserved (1),
                //   Stream Identifier (31),
                //   Reserved (1),
                //   Window Size Increment (31),
                // }
                uint increment = Http2Frame.ReadUInt32(fields) & Http2Frame.StreamIdMask;
                frame = new Http2Frame(type, flags, streamId, payload, length, 0, 0, increment, 0);
                // §6.9: "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a
                // flow-control window increment of 0 as a stream error (Section 5.4.2) of type
                // PROTOCOL_ERROR; errors on the connection flow-control window MUST be treated as a
                // connection error (Section 5.4.1)."
                if (increment == 0)
                {
                    error = new Http2FrameError(Http2ErrorCode.PROTOCOL_ERROR,
                        streamId == 0 ? Http2ErrorScope.Connection : Http2ErrorScope.Stream, streamId,
                        Http2FrameErrorReason.ZeroWindowIncrement);
                    return Http2ReadStatus.Error;
                }
                return Http2ReadStatus.Frame;
            }
            default:
                Debug.Assert(type == Http2FrameType.CONTINUATION);
                // §6.10:
                // CONTINUATION Frame {
                //   Length (24),
                //   Type (8) = 0x09,
                //   Unused Flags (5),
                //   END_HEADERS Flag (1),
                //   Unused Flags (2),
                //   Reserved (1),
                //   Stream Identifier (31),
                //   Field Block Fragment (..),
                // }
                frame = new Http2Frame(type, flags, streamId, payload, 0, length, 0, 0, 0);
                return Http2ReadStatus.Frame;
        }
    }

    /// <summary>
    /// Finds the content between the Pad Length field plus <paramref name="fixedFields"/> and the
    /// padding. False when the padding leaves no room: §6.1 "If the length of the padding is the
    /// length of the frame payload or greater, the recipient MUST treat this as a connection error
    /// (Section 5.4.1) of type PROTOCOL_ERROR"; §6.2 and §6.6: "Padding that exceeds the size
    /// remaining for the field block fragment MUST be treated as a PROTOCOL_ERROR."
    /// </summary>
    private static bool TryUnpad(Http2FrameFlags flags, ReadOnlySpan<byte> fields, int length, int fixedFields,
        out int padLength, out int contentOffset, out int contentLength)
    {
        if ((flags & Http2FrameFlags.PADDED) == 0)
        {
            padLength = 0;
            contentOffset = fixedFields;
            contentLength = length - fixedFields;
            return true;
        }
        padLength = fields[0];
        contentOffset = PadLengthFieldLength + fixedFields;
        contentLength = length - contentOffset - padLength;
        return contentLength >= 0;
    }

    /// <summary>
    /// §6.5.2 ranges: ENABLE_PUSH, INITIAL_WINDOW_SIZE and MAX_FRAME_SIZE have bounds, and a value
    /// out of them ends the connection. Other identifiers, known or not, take any value.
    /// </summary>
    private static Http2ReadStatus CheckSettings(in ReadOnlySequence<byte> payload, out Http2FrameError error)
    {
        error = default;
        if (payload.IsSingleSegment)
        {
            var entries = payload.FirstSpan;
            for (int i = 0; i < entries.Length; i += SettingLength)
            {
                if (!CheckSetting(Http2SettingsEnumerator.Decode(entries.Slice(i, SettingLength)), out error))
                {
                    return Http2ReadStatus.Error;
                }
            }
            return Http2ReadStatus.Frame;
        }
        return CheckSettingsMultiSegment(payload, out error);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Http2ReadStatus CheckSettingsMultiSegment(in ReadOnlySequence<byte> payload, out Http2FrameError error)
    {
        error = default;
        foreach (var setting in new Http2SettingsEnumerator(payload))
        {
            if (!CheckSetting(setting, out error))
            {
                return Http2ReadStatus.Error;
            }
        }
        return Http2ReadStatus.Frame;
    }

    private static bool CheckSetting(Http2Setting setting, out Http2FrameError error)
    {
        error = default;
        switch (setting.Parameter)
        {
            case Http2SettingsParameter.SETTINGS_ENABLE_PUSH:
                // §6.5.2: "Any value other than 0 or 1 MUST be treated as a connection error (Section
                // 5.4.1) of type PROTOCOL_ERROR."
                if (setting.Value > 1)
                {
                    ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, Http2FrameErrorReason.InvalidEnablePush, out error);
                    return false;
                }
                break;
            case Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE:
                // §6.5.2: "Values above the maximum flow-control window size of 2^31-1 MUST be
                // treated as a connection error (Section 5.4.1) of type FLOW_CONTROL_ERROR."
                if (setting.Value > Http2Frame.MaxWindowSize)
                {
                    ConnectionError(Http2ErrorCode.FLOW_CONTROL_ERROR, Http2FrameErrorReason.InitialWindowSizeTooLarge, out error);
                    return false;
                }
                break;
            case Http2SettingsParameter.SETTINGS_MAX_FRAME_SIZE:
                // §6.5.2: "The value advertised by an endpoint MUST be between this initial value
                // and the maximum allowed frame size (2^24-1 or 16,777,215 octets), inclusive.
                // Values outside this range MUST be treated as a connection error (Section 5.4.1)
                // of type PROTOCOL_ERROR."
                if (setting.Value is < Http2Frame.DefaultMaxFrameSize or > Http2Frame.MaxAllowedFrameSize)
                {
                    ConnectionError(Http2ErrorCode.PROTOCOL_ERROR, Http2FrameErrorReason.InvalidMaxFrameSize, out error);
                    return false;
                }
                break;
        }
        return true;
    }

    /// <summary>
    /// RFC 7540 §5.3.1: "A stream cannot depend on itself. An endpoint MUST treat this as a stream
    /// error (Section 5.4.2) of type PROTOCOL_ERROR." RFC 9113 dropped the sentence with the rest of
    /// the priority scheme, but h2spec (http2/5.3.1) still checks it and it costs one compare.
    /// </summary>
    private static Http2ReadStatus SelfDependency(int streamId, out Http2FrameError error)
    {
        error = new Http2FrameError(Http2ErrorCode.PROTOCOL_ERROR, Http2ErrorScope.Stream, streamId, Http2FrameErrorReason.SelfDependency);
        return Http2ReadStatus.Error;
    }

    private static Http2ReadStatus ConnectionError(Http2ErrorCode code, Http2FrameErrorReason reason, out Http2FrameError error)
    {
        error = new Http2FrameError(code, Http2ErrorScope.Connection, 0, reason);
        return Http2ReadStatus.Error;
    }

    /// <summary>The frame header straddles segments (or has not all arrived).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool TryReadHeaderMultiSegment(in ReadOnlySequence<byte> buffer, out uint lengthAndType, out byte flags, out uint streamId)
    {
        if (buffer.Length < Http2Frame.HeaderLength)
        {
            lengthAndType = 0;
            flags = 0;
            streamId = 0;
            return false;
        }
        Span<byte> header = stackalloc byte[Http2Frame.HeaderLength];
        buffer.Slice(0, Http2Frame.HeaderLength).CopyTo(header);
        lengthAndType = BinaryPrimitives.ReadUInt32BigEndian(header);
        flags = header[4];
        streamId = BinaryPrimitives.ReadUInt32BigEndian(header[5..]);
        return true;
    }

    /// <summary>The fixed fields straddle segments: copy them out.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ReadOnlySpan<byte> CopyFixedFields(in ReadOnlySequence<byte> buffer, Span<byte> destination)
    {
        buffer.Slice(Http2Frame.HeaderLength, destination.Length).CopyTo(destination);
        return destination;
    }
}
