namespace ProxyCore.Http.Http2;

/// <summary>Outcome of <see cref="Http2FrameReader.TryReadFrame"/>.</summary>
public enum Http2ReadStatus : byte
{
    /// <summary>More bytes are needed; nothing was consumed (<c>consumed</c> is the buffer's start).</summary>
    Incomplete,

    /// <summary>A valid frame of a known type; advance to <c>consumed</c>, just after it.</summary>
    Frame,

    /// <summary>
    /// A frame of a type this reader does not know. RFC 9113 §5.5: "Implementations MUST ignore and
    /// discard frames of unknown types." Advance to <c>consumed</c> and drop it; it is still handed
    /// out because one arriving inside a field block breaks that block (§4.3, §6.10).
    /// </summary>
    UnknownFrame,

    /// <summary>
    /// The frame breaks a rule of RFC 9113; <c>error</c> says which, with what code and scope. On a
    /// connection error send GOAWAY and close (<c>consumed</c> is the buffer's start). On a stream
    /// error <c>consumed</c> is just after the frame and <c>frame</c> is filled: send RST_STREAM and
    /// carry on with the next frame (a HEADERS frame's field block must still go through HPACK, §4.3).
    /// </summary>
    Error,
}

/// <summary>Whether an error ends the connection (§5.4.1) or only a stream (§5.4.2).</summary>
public enum Http2ErrorScope : byte
{
    Connection,
    Stream,
}

/// <summary>Which rule a frame broke; the RFC section is on each check in the reader.</summary>
public enum Http2FrameErrorReason : byte
{
    None,
    /// <summary>§4.2: the length exceeds SETTINGS_MAX_FRAME_SIZE.</summary>
    FrameTooLarge,
    /// <summary>§6: a stream frame (DATA, HEADERS, PRIORITY, RST_STREAM, PUSH_PROMISE, CONTINUATION) on stream 0.</summary>
    StreamIdRequired,
    /// <summary>§6: a connection frame (SETTINGS, PING, GOAWAY) on a stream other than 0.</summary>
    StreamIdNotZero,
    /// <summary>§4.2, §6: the length is wrong for the type (fixed-length frames, too short for mandatory fields, SETTINGS not a multiple of 6).</summary>
    InvalidLength,
    /// <summary>§6.5: a SETTINGS frame with ACK carries a payload.</summary>
    SettingsAckWithPayload,
    /// <summary>§6.1, §6.2, §6.6: the padding is not shorter than what is left of the payload.</summary>
    PaddingTooLong,
    /// <summary>§6.9: a WINDOW_UPDATE increment of 0.</summary>
    ZeroWindowIncrement,
    /// <summary>§6.5.2: SETTINGS_ENABLE_PUSH other than 0 or 1.</summary>
    InvalidEnablePush,
    /// <summary>§6.5.2: SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1.</summary>
    InitialWindowSizeTooLarge,
    /// <summary>§6.5.2: SETTINGS_MAX_FRAME_SIZE outside 2^14..2^24-1.</summary>
    InvalidMaxFrameSize,
    /// <summary>§6.6, §5.1.1: a promised stream id of 0 or of a client-initiated (odd) stream.</summary>
    InvalidPromisedStreamId,
    /// <summary>§5.3.1 of RFC 7540 (kept by h2spec): a stream that depends on itself.</summary>
    SelfDependency,
}

/// <summary>A frame-level protocol error: the code to send, whether it ends the connection or a stream, and why.</summary>
public readonly record struct Http2FrameError(Http2ErrorCode Code, Http2ErrorScope Scope, int StreamId, Http2FrameErrorReason Reason)
{
    public bool IsConnectionError => Scope == Http2ErrorScope.Connection;
}

/// <summary>
/// A priority signal as HEADERS (with PRIORITY) and PRIORITY frames carry it (RFC 9113 §5.3.2, §6.3).
/// RFC 9113 deprecates this scheme; ProxyCore reads and relays it but never acts on it.
/// </summary>
/// <param name="StreamDependency">The stream this one depends on (31 bits).</param>
/// <param name="Exclusive">The E bit.</param>
/// <param name="Weight">The weight, 1..256: the wire carries it minus one (§6.2: "Add one to the value to obtain a weight between 1 and 256").</param>
public readonly record struct Http2Priority(int StreamDependency, bool Exclusive, int Weight);
