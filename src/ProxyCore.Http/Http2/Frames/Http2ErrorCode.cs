namespace ProxyCore.Http.Http2;

/// <summary>The error codes of RFC 9113 §7, carried by RST_STREAM and GOAWAY.</summary>
/// <remarks>
/// §7: "Unknown or unsupported error codes MUST NOT trigger any special behavior. These MAY be treated
/// by an implementation as being equivalent to INTERNAL_ERROR." A code read off the wire may therefore
/// hold a value not listed here.
/// </remarks>
public enum Http2ErrorCode : uint
{
    NO_ERROR = 0x0,
    PROTOCOL_ERROR = 0x1,
    INTERNAL_ERROR = 0x2,
    FLOW_CONTROL_ERROR = 0x3,
    SETTINGS_TIMEOUT = 0x4,
    STREAM_CLOSED = 0x5,
    FRAME_SIZE_ERROR = 0x6,
    REFUSED_STREAM = 0x7,
    CANCEL = 0x8,
    COMPRESSION_ERROR = 0x9,
    CONNECT_ERROR = 0xa,
    ENHANCE_YOUR_CALM = 0xb,
    INADEQUATE_SECURITY = 0xc,
    HTTP_1_1_REQUIRED = 0xd,
}
