using System.Buffers;

namespace ProxyCore.Http.Http2;

// The typed accessors, one group per frame type of RFC 9113 §6. Each says which of the frame's
// fixed-field slots (_field0, _field1) holds what.
public readonly partial struct Http2Frame
{
    /// <summary>DATA (§6.1): the application data, padding removed.</summary>
    public ReadOnlySequence<byte> Data
    {
        get
        {
            Require(Http2FrameType.DATA);
            return Content;
        }
    }

    /// <summary>DATA: the flow-controlled size, which per §6.9.1 is the whole payload, padding included.</summary>
    public int FlowControlledLength
    {
        get
        {
            Require(Http2FrameType.DATA);
            return _length;
        }
    }

    /// <summary>HEADERS (§6.2), PUSH_PROMISE (§6.6) or CONTINUATION (§6.10): the field block fragment, padding and priority removed.</summary>
    public ReadOnlySequence<byte> HeaderBlockFragment
    {
        get
        {
            if (_type is not (Http2FrameType.HEADERS or Http2FrameType.PUSH_PROMISE or Http2FrameType.CONTINUATION))
            {
                ThrowWrongType(Http2FrameType.HEADERS);
            }
            return Content;
        }
    }

    /// <summary>
    /// PRIORITY (§6.3), or HEADERS with the PRIORITY flag (§6.2): the dependency, E bit and weight.
    /// (_field0 = the 32 bits of E + Stream Dependency, _field1 = the Weight octet.)
    /// </summary>
    public Http2Priority Priority
    {
        get
        {
            if (!HasPriority)
            {
                ThrowWrongType(Http2FrameType.PRIORITY);
            }
            return new Http2Priority((int)(_field0 & StreamIdMask), (_field0 & ExclusiveBit) != 0, (int)_field1 + 1);
        }
    }

    /// <summary>RST_STREAM (§6.4) or GOAWAY (§6.8): the error code, possibly one not in the enum (§7). (_field1.)</summary>
    public Http2ErrorCode ErrorCode
    {
        get
        {
            Require(Http2FrameType.RST_STREAM, Http2FrameType.GOAWAY);
            return (Http2ErrorCode)_field1;
        }
    }

    /// <summary>SETTINGS (§6.5): how many entries the frame holds.</summary>
    public int SettingsCount
    {
        get
        {
            Require(Http2FrameType.SETTINGS);
            return _contentLength / Http2FrameReader.SettingLength;
        }
    }

    /// <summary>SETTINGS (§6.5): the entries in wire order (§6.5.3: "MUST be processed in the order they appear"), without allocating.</summary>
    public Http2SettingsEnumerator Settings
    {
        get
        {
            Require(Http2FrameType.SETTINGS);
            return new Http2SettingsEnumerator(Content);
        }
    }

    /// <summary>PING (§6.7): the 8 opaque octets as one big-endian number (_field0 high half, _field1 low half).</summary>
    public ulong PingOpaqueData
    {
        get
        {
            Require(Http2FrameType.PING);
            return ((ulong)_field0 << 32) | _field1;
        }
    }

    /// <summary>GOAWAY (§6.8): the last stream identifier, reserved bit cleared. (_field0.)</summary>
    public int LastStreamId
    {
        get
        {
            Require(Http2FrameType.GOAWAY);
            return (int)(_field0 & StreamIdMask);
        }
    }

    /// <summary>GOAWAY (§6.8): the additional debug data (opaque; never logged raw).</summary>
    public ReadOnlySequence<byte> DebugData
    {
        get
        {
            Require(Http2FrameType.GOAWAY);
            return Content;
        }
    }

    /// <summary>WINDOW_UPDATE (§6.9): the increment, 1..2^31-1, reserved bit cleared. (_field0.)</summary>
    public int WindowSizeIncrement
    {
        get
        {
            Require(Http2FrameType.WINDOW_UPDATE);
            return (int)_field0;
        }
    }

    /// <summary>PUSH_PROMISE (§6.6): the promised stream identifier, reserved bit cleared. (_field0.)</summary>
    public int PromisedStreamId
    {
        get
        {
            Require(Http2FrameType.PUSH_PROMISE);
            return (int)_field0;
        }
    }
}
