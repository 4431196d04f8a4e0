namespace ProxyCore.Http.Http2;

/// <summary>The SETTINGS parameters of RFC 9113 §6.5.2 (and the two later RFCs that ProxyCore meets in the wild).</summary>
/// <remarks>
/// §6.5.2: "An endpoint that receives a SETTINGS frame with any unknown or unsupported identifier MUST
/// ignore that setting." The reader therefore enumerates identifiers not listed here too.
/// </remarks>
public enum Http2SettingsParameter : ushort
{
    SETTINGS_HEADER_TABLE_SIZE = 0x1,
    SETTINGS_ENABLE_PUSH = 0x2,
    SETTINGS_MAX_CONCURRENT_STREAMS = 0x3,
    SETTINGS_INITIAL_WINDOW_SIZE = 0x4,
    SETTINGS_MAX_FRAME_SIZE = 0x5,
    SETTINGS_MAX_HEADER_LIST_SIZE = 0x6,
    /// <summary>RFC 8441 §3: extended CONNECT (WebSockets over HTTP/2).</summary>
    SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x8,
    /// <summary>RFC 9218 §2.1: the sender does not use RFC 7540 priority signals.</summary>
    SETTINGS_NO_RFC7540_PRIORITIES = 0x9,
}

/// <summary>One SETTINGS entry: an identifier and its 32-bit value (RFC 9113 §6.5.1).</summary>
public readonly record struct Http2Setting(Http2SettingsParameter Parameter, uint Value);
