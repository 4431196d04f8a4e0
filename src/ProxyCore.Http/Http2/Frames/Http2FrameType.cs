namespace ProxyCore.Http.Http2;

/// <summary>The frame types of RFC 9113 §6, in the spec's spelling and with their wire values.</summary>
/// <remarks>
/// A byte off the wire may hold any other value: such a frame is of an unknown type, which the reader
/// reports as <see cref="Http2ReadStatus.UnknownFrame"/> so the connection can discard it (§5.5).
/// </remarks>
public enum Http2FrameType : byte
{
    DATA = 0x0,
    HEADERS = 0x1,
    PRIORITY = 0x2,
    RST_STREAM = 0x3,
    SETTINGS = 0x4,
    PUSH_PROMISE = 0x5,
    PING = 0x6,
    GOAWAY = 0x7,
    WINDOW_UPDATE = 0x8,
    CONTINUATION = 0x9,
}
