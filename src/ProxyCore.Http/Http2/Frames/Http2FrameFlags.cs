namespace ProxyCore.Http.Http2;

/// <summary>
/// The frame flags of RFC 9113 §6. A flag's meaning depends on the frame type: 0x1 is END_STREAM on
/// DATA and HEADERS and ACK on SETTINGS and PING, hence two names for one bit.
/// </summary>
[Flags]
public enum Http2FrameFlags : byte
{
    None = 0,
    END_STREAM = 0x1,
    ACK = 0x1,
    END_HEADERS = 0x4,
    PADDED = 0x8,
    PRIORITY = 0x20,
}
