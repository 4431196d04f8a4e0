using System.Buffers;
using ProxyCore.Http.Http2.Hpack;

namespace ProxyCore.Http.Http2;

/// <summary>Why a request's field block is malformed (RFC 9113 §8.1.1): each is a stream error of type PROTOCOL_ERROR.</summary>
internal enum Http2FieldError : byte
{
    None,
    /// <summary>§8.2.1: a name with uppercase, control, space or non-ASCII characters.</summary>
    InvalidName,
    /// <summary>§8.2.1: a value with NUL, CR or LF, or starting or ending with whitespace.</summary>
    InvalidValue,
    /// <summary>§8.2.2: connection, keep-alive, proxy-connection, transfer-encoding, upgrade, or TE other than "trailers".</summary>
    ConnectionSpecific,
    /// <summary>§8.3: a pseudo-header after a regular field, or in trailers.</summary>
    PseudoHeaderMisplaced,
    /// <summary>§8.3: an unknown pseudo-header, or one defined for responses.</summary>
    PseudoHeaderInvalid,
    /// <summary>§8.3.1: a pseudo-header twice.</summary>
    PseudoHeaderDuplicate,
    /// <summary>§8.3.1: :method, :scheme or :path missing, or :path empty.</summary>
    PseudoHeaderMissing,
    /// <summary>§8.1.1: content-length is not a number, or two disagree.</summary>
    InvalidContentLength,
}

/// <summary>
/// Routes the decoded fields of a request (or its trailers) into a <see cref="RequestHead"/> and
/// checks the field rules of RFC 9113 §8.2 and §8.3 as each field arrives. A struct, kept by the
/// connection across the HEADERS and CONTINUATION frames of one block, so the decoder's generic
/// call is specialized for it. The first violation is kept; later fields are dropped.
/// </summary>
internal struct Http2RequestFieldHandler : IHpackFieldHandler
{
    private const byte Colon = (byte)':';
    private const byte Question = (byte)'?';
    private const byte Slash = (byte)'/';
    private const byte Asterisk = (byte)'*';

    // §8.2.1: "A field name MUST NOT contain characters in the ranges 0x00-0x20, 0x41-0x5a, or
    // 0x7f-0xff (all ranges inclusive)."
    private static readonly SearchValues<byte> s_invalidNameBytes = SearchValues.Create(BuildInvalidNameBytes());
    // §8.2.1: "A field value MUST NOT contain the zero value (0x00), line feed (0x0a), or carriage
    // return (0x0d) at any position."
    private static readonly SearchValues<byte> s_invalidValueBytes = SearchValues.Create([0x00, 0x0a, 0x0d]);

    private const byte SeenMethod = 1, SeenScheme = 2, SeenAuthority = 4, SeenPath = 8;

    private bool _trailers;
    private bool _regularSeen;
    private byte _pseudoSeen;

    public Http2FieldError Error;

    /// <summary>Starts a block: a request head (<paramref name="trailers"/> false) or trailers.</summary>
    public void Begin(bool trailers)
    {
        this = default;
        _trailers = trailers;
    }

    public void OnField(HttpHead head, in HpackField field)
    {
        if (Error != Http2FieldError.None)
        {
            return;
        }
        if (field.Pseudo != HpackPseudoHeader.None)
        {
            OnPseudoHeader(head, field);
            return;
        }

        _regularSeen = true;
        var name = head.Get(field.Name);
        var value = head.Get(field.Value);
        if (name.IsEmpty || name.IndexOfAny(s_invalidNameBytes) >= 0)
        {
            Error = Http2FieldError.InvalidName;
            return;
        }
        // §8.2.1: "A field value MUST NOT start or end with an ASCII whitespace character (ASCII SP or
        // HTAB, 0x20 or 0x09)."
        if (value.IndexOfAny(s_invalidValueBytes) >= 0
            || (!value.IsEmpty && (IsWhitespace(value[0]) || IsWhitespace(value[^1]))))
        {
            Error = Http2FieldError.InvalidValue;
            return;
        }

        var id = KnownHeaders.Classify(name);
        switch (id)
        {
            case KnownHeader.Connection:
            case KnownHeader.KeepAlive:
            case KnownHeader.ProxyConnection:
            case KnownHeader.TransferEncoding:
            case KnownHeader.Upgrade:
                // §8.2.2: "An endpoint MUST NOT generate an HTTP/2 message containing connection-specific
                // header fields. ... Any message containing connection-specific header fields MUST be
                // treated as malformed."
                Error = Http2FieldError.ConnectionSpecific;
                return;
            case KnownHeader.TE:
                // §8.2.2: "The only exception to this is the TE header field, which MAY be present in an
                // HTTP/2 request; when it is, it MUST NOT contain any value other than "trailers"."
                if (!value.SequenceEqual("trailers"u8))
                {
                    Error = Http2FieldError.ConnectionSpecific;
                    return;
                }
                break;
            case KnownHeader.ContentLength when !_trailers:
                if (!TryParseContentLength(value, out long length) || (head.ContentLength >= 0 && head.ContentLength != length))
                {
                    Error = Http2FieldError.InvalidContentLength;
                    return;
                }
                head.ContentLength = length;
                break;
        }
        head.AddHeader(field.Name, field.Value, id);
    }

    private void OnPseudoHeader(HttpHead head, in HpackField field)
    {
        // §8.3: "Pseudo-header fields MUST NOT appear in a trailer section." ... "All pseudo-header
        // fields MUST appear in a field block before all regular field lines."
        if (_trailers || _regularSeen)
        {
            Error = Http2FieldError.PseudoHeaderMisplaced;
            return;
        }
        byte bit = field.Pseudo switch
        {
            HpackPseudoHeader.Method => SeenMethod,
            HpackPseudoHeader.Scheme => SeenScheme,
            HpackPseudoHeader.Authority => SeenAuthority,
            HpackPseudoHeader.Path => SeenPath,
            // §8.3: "Endpoints MUST treat a request or response that contains undefined or invalid
            // pseudo-header fields as malformed"; :status is for responses, and :protocol needs
            // SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3), which we do not send.
            _ => 0,
        };
        if (bit == 0)
        {
            Error = Http2FieldError.PseudoHeaderInvalid;
            return;
        }
        // §8.3.1: "The same pseudo-header field name MUST NOT appear more than once in a field block."
        if ((_pseudoSeen & bit) != 0)
        {
            Error = Http2FieldError.PseudoHeaderDuplicate;
            return;
        }
        _pseudoSeen |= bit;

        var request = (RequestHead)head;
        switch (field.Pseudo)
        {
            case HpackPseudoHeader.Method:
                request.MethodBytes = field.Value;
                request.Method = HttpMethods.Parse(head.Get(field.Value));
                break;
            case HpackPseudoHeader.Scheme:
                request.Scheme = field.Value;
                break;
            case HpackPseudoHeader.Authority:
                request.Authority = field.Value;
                break;
            default:
                SplitPath(request, field.Value);
                break;
        }
    }

    /// <summary>
    /// After END_HEADERS: §8.3.1 "All HTTP/2 requests MUST include exactly one valid value for the
    /// ":method", ":scheme", and ":path" pseudo-header fields, unless they are CONNECT requests".
    /// </summary>
    public readonly Http2FieldError Complete(RequestHead request)
    {
        if (Error != Http2FieldError.None || _trailers)
        {
            return Error;
        }
        if ((_pseudoSeen & SeenMethod) == 0)
        {
            return Http2FieldError.PseudoHeaderMissing;
        }
        if (request.Method == HttpMethod.Connect)
        {
            // §8.5: "The ":scheme" and ":path" pseudo-header fields MUST be omitted"; ":authority" is required.
            return (_pseudoSeen & (SeenScheme | SeenPath)) != 0 || (_pseudoSeen & SeenAuthority) == 0
                ? Http2FieldError.PseudoHeaderMissing
                : Http2FieldError.None;
        }
        if ((_pseudoSeen & (SeenScheme | SeenPath)) != (SeenScheme | SeenPath) || request.Path.IsEmpty)
        {
            // §8.3.1: ":path" "MUST NOT be empty for "http" or "https" URIs".
            return Http2FieldError.PseudoHeaderMissing;
        }
        return Http2FieldError.None;
    }

    /// <summary>":path" is origin-form (with its query) or "*" (§8.3.1); RequestHead keeps path and query apart.</summary>
    private static void SplitPath(RequestHead request, ByteRange value)
    {
        var path = request.Get(value);
        if (path.IsEmpty)
        {
            request.Path = default;
            return;
        }
        if (path.Length == 1 && path[0] == Asterisk)
        {
            request.TargetForm = RequestTargetForm.Asterisk;
            request.Path = value;
            return;
        }
        if (path[0] != Slash)
        {
            // Neither origin-form nor "*": leave Path empty so Complete reports the block malformed.
            request.Path = default;
            return;
        }
        int question = path.IndexOf(Question);
        if (question < 0)
        {
            request.Path = value;
            request.Query = default;
            return;
        }
        request.Path = new ByteRange(value.Offset, question);
        request.Query = new ByteRange(value.Offset + question, value.Length - question);
    }

    private static bool TryParseContentLength(ReadOnlySpan<byte> value, out long length)
    {
        length = 0;
        if (value.IsEmpty || value.Length > 18)
        {
            return false;
        }
        foreach (byte b in value)
        {
            uint digit = (uint)(b - '0');
            if (digit > 9)
            {
                return false;
            }
            length = (length * 10) + digit;
        }
        return true;
    }

    private static bool IsWhitespace(byte b) => b is (byte)' ' or (byte)'\t';

    private static byte[] BuildInvalidNameBytes()
    {
        var bytes = new List<byte>();
        for (int b = 0x00; b <= 0x20; b++)
        {
            bytes.Add((byte)b);
        }
        for (int b = 'A'; b <= 'Z'; b++)
        {
            bytes.Add((byte)b);
        }
        for (int b = 0x7f; b <= 0xff; b++)
        {
            bytes.Add((byte)b);
        }
        return bytes.ToArray();
    }
}
