using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace ProxyCore.Http.Http2;

/// <summary>
/// One frame as <see cref="Http2FrameReader"/> read it: the header fields, the payload as a slice of
/// the input (valid until the caller advances its pipe), and typed accessors for each type's fields.
/// </summary>
/// <remarks>
/// The reader validates the whole frame before handing it out, so the accessors only decode and
/// never fail on a frame it produced; each throws <see cref="InvalidOperationException"/> when asked
/// for a field its frame type does not have. Fixed fields were read once during validation and are
/// kept here, so an accessor never touches the payload again except to slice it.
/// </remarks>
public readonly partial struct Http2Frame
{
    /// <summary>RFC 9113 §4.1: every frame begins with a fixed 9-octet header.</summary>
    public const int HeaderLength = 9;

    /// <summary>RFC 9113 §4.2: SETTINGS_MAX_FRAME_SIZE starts at 2^14 and a receiver must accept that much.</summary>
    public const uint DefaultMaxFrameSize = 16_384;

    /// <summary>RFC 9113 §6.5.2: SETTINGS_MAX_FRAME_SIZE cannot exceed 2^24-1, the largest 24-bit length.</summary>
    public const uint MaxAllowedFrameSize = 16_777_215;

    /// <summary>RFC 9113 §6.9.1: "A sender MUST NOT allow a flow-control window to exceed 2^31-1 octets."</summary>
    public const int MaxWindowSize = int.MaxValue;

    /// <summary>RFC 9113 §4.1: stream identifiers are 31 bits; the high bit is reserved.</summary>
    internal const uint StreamIdMask = 0x7FFF_FFFF;

    /// <summary>RFC 9113 §6.2/§6.3: the E (exclusive) bit in front of a stream dependency.</summary>
    internal const uint ExclusiveBit = 0x8000_0000;

    private readonly ReadOnlySequence<byte> _payload;
    private readonly int _streamId;
    private readonly int _length;
    // Where the type's variable part (data, field block fragment, debug data, settings) starts and how long it is.
    private readonly int _contentOffset;
    private readonly int _contentLength;
    // The fixed fields, read during validation: see each accessor for which type keeps what here.
    private readonly uint _field0;
    private readonly uint _field1;
    private readonly byte _padLength;
    private readonly Http2FrameType _type;
    private readonly Http2FrameFlags _flags;

    internal Http2Frame(Http2FrameType type, Http2FrameFlags flags, int streamId, in ReadOnlySequence<byte> payload,
        int contentOffset, int contentLength, byte padLength, uint field0, uint field1)
    {
        Debug.Assert(contentOffset >= 0 && contentLength >= 0 && contentOffset + contentLength <= payload.Length);
        _type = type;
        _flags = flags;
        _streamId = streamId;
        _payload = payload;
        _length = (int)payload.Length;
        _contentOffset = contentOffset;
        _contentLength = contentLength;
        _padLength = padLength;
        _field0 = field0;
        _field1 = field1;
    }

    /// <summary>The frame type; on <see cref="Http2ReadStatus.UnknownFrame"/> a value outside the enum.</summary>
    public Http2FrameType Type => _type;

    /// <summary>
    /// The flags defined for this type. RFC 9113 §4.1: "Flags that have no defined semantics for a
    /// particular frame type MUST be ignored", so the reader drops them here (an unknown type keeps its byte).
    /// </summary>
    public Http2FrameFlags Flags => _flags;

    /// <summary>The stream identifier, with the reserved bit cleared (§4.1: "MUST be ignored when receiving").</summary>
    public int StreamId => _streamId;

    /// <summary>The Length field: the payload's size, padding and fixed fields included.</summary>
    public int PayloadLength => _length;

    /// <summary>The raw payload (padding and fixed fields included), a slice of the reader's input.</summary>
    public ReadOnlySequence<byte> Payload => _payload;

    /// <summary>True for the frame types of RFC 9113 §6.</summary>
    public bool IsKnownType => _type <= Http2FrameType.CONTINUATION;

    /// <summary>END_STREAM on DATA or HEADERS.</summary>
    public bool EndStream => (_flags & Http2FrameFlags.END_STREAM) != 0 && _type is Http2FrameType.DATA or Http2FrameType.HEADERS;

    /// <summary>END_HEADERS on HEADERS, PUSH_PROMISE or CONTINUATION.</summary>
    public bool EndHeaders => (_flags & Http2FrameFlags.END_HEADERS) != 0
        && _type is Http2FrameType.HEADERS or Http2FrameType.PUSH_PROMISE or Http2FrameType.CONTINUATION;

    /// <summary>ACK on SETTINGS or PING.</summary>
    public bool IsAck => (_flags & Http2FrameFlags.ACK) != 0 && _type is Http2FrameType.SETTINGS or Http2FrameType.PING;

    /// <summary>PADDED on DATA, HEADERS or PUSH_PROMISE.</summary>
    public bool IsPadded => (_flags & Http2FrameFlags.PADDED) != 0
        && _type is Http2FrameType.DATA or Http2FrameType.HEADERS or Http2FrameType.PUSH_PROMISE;

    /// <summary>The Pad Length field (0 when not padded). The padding itself is removed from every accessor.</summary>
    public int PadLength => _padLength;

    /// <summary>The padding octets: the last <see cref="PadLength"/> bytes of the payload.</summary>
    public ReadOnlySequence<byte> Padding => _payload.Slice(_length - _padLength);

    /// <summary>True for a PRIORITY frame and for HEADERS with the PRIORITY flag.</summary>
    public bool HasPriority => _type == Http2FrameType.PRIORITY
        || (_type == Http2FrameType.HEADERS && (_flags & Http2FrameFlags.PRIORITY) != 0);

    private ReadOnlySequence<byte> Content => _payload.Slice(_contentOffset, _contentLength);

    private void Require(Http2FrameType type)
    {
        if (_type != type)
        {
            ThrowWrongType(type);
        }
    }

    private void Require(Http2FrameType type1, Http2FrameType type2)
    {
        if (_type != type1 && _type != type2)
        {
            ThrowWrongType(type1);
        }
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowWrongType(Http2FrameType expected) =>
        throw new InvalidOperationException($"This accessor is for {expected} frames (and its kin); the frame is {_type}.");

    internal static uint ReadUInt32(ReadOnlySpan<byte> source) => BinaryPrimitives.ReadUInt32BigEndian(source);
}
