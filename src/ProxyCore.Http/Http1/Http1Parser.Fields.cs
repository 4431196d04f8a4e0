using System.Text;
using static ProxyCore.Http.Http1.HttpChars;

namespace ProxyCore.Http.Http1;

public static partial class Http1Parser
{
    [Flags]
    private enum ConnectionOptions : byte
    {
        None = 0,
        Close = 1,
        KeepAlive = 2,
        Upgrade = 4,
    }

    /// <summary>
    /// Splits one field line (CRLF already removed) into name and trimmed value.
    /// <paramref name="tolerateSpaceBeforeColon"/> is for responses only (see below).
    /// </summary>
    internal static HttpParseError ParseFieldLine(ReadOnlySpan<byte> line, bool tolerateSpaceBeforeColon,
        out int nameLength, out int valueStart, out int valueLength)
    {
        nameLength = 0;
        valueStart = 0;
        valueLength = 0;

        // RFC 9112 §5.2: "A server that receives an obs-fold in a request message ... MUST either
        // reject the message by sending a 400 (Bad Request) ... or replace each received obs-fold
        // with one or more SP octets". A proxy on a response: "MUST either reject the message by
        // sending a 502 (Bad Gateway) response ... or replace". We reject on both sides. (A leading
        // space on the first field line is RFC 9112 §2.2's whitespace after the start line: rejected too.)
        if (IsOws(line[0]))
        {
            return HttpParseError.ObsFold;
        }

        // RFC 9110 §5.1: field-name = token.
        int colon = IndexOfNonTChar(line);
        if (colon < 0)
        {
            return HttpParseError.InvalidHeaderName;
        }
        nameLength = colon;
        if (line[colon] != Colon)
        {
            if (IsOws(line[colon]))
            {
                // RFC 9112 §5.1: "No whitespace is allowed between the field name and colon. ... A
                // server MUST reject, with a response status code of 400 (Bad Request), any
                // received request message that contains whitespace between a header field name
                // and colon. A proxy MUST remove any such whitespace from a response message
                // before forwarding the message downstream."
                if (!tolerateSpaceBeforeColon)
                {
                    return HttpParseError.WhitespaceBeforeColon;
                }
                while (colon < line.Length && IsOws(line[colon]))
                {
                    colon++;
                }
                if (colon == line.Length || line[colon] != Colon)
                {
                    return HttpParseError.InvalidHeaderName;
                }
            }
            else
            {
                return line[colon] == CR ? HttpParseError.BareCR : HttpParseError.InvalidHeaderName;
            }
        }
        if (nameLength == 0)
        {
            return HttpParseError.InvalidHeaderName;
        }

        // RFC 9110 §5.5: field-value = *field-content, field-vchar = VCHAR / obs-text. A field
        // value does not include leading or trailing whitespace (RFC 9112 §5.1: OWS around it).
        // "Field values containing CR, LF, or NUL characters are invalid and dangerous".
        var rest = line.Slice(colon + 1);
        int bad = IndexOfInvalidFieldValue(rest);
        if (bad >= 0)
        {
            return rest[bad] == CR ? HttpParseError.BareCR : HttpParseError.InvalidHeaderValue;
        }
        int s = 0;
        while (s < rest.Length && IsOws(rest[s]))
        {
            s++;
        }
        int e = rest.Length;
        while (e > s && IsOws(rest[e - 1]))
        {
            e--;
        }
        valueStart = colon + 1 + s;
        valueLength = e - s;
        return HttpParseError.None;
    }

    /// <summary>Connection = #connection-option (RFC 9110 §7.6.1), tokens compared case-insensitively.</summary>
    private static ConnectionOptions ParseConnection(ReadOnlySpan<byte> value)
    {
        var options = ConnectionOptions.None;
        while (!value.IsEmpty)
        {
            int comma = value.IndexOf(Comma);
            var token = TrimOws(comma < 0 ? value : value.Slice(0, comma));
            value = comma < 0 ? default : value.Slice(comma + 1);
            if (Ascii.EqualsIgnoreCase(token, "close"u8))
            {
                options |= ConnectionOptions.Close;
            }
            else if (Ascii.EqualsIgnoreCase(token, "keep-alive"u8))
            {
                options |= ConnectionOptions.KeepAlive;
            }
            else if (Ascii.EqualsIgnoreCase(token, "upgrade"u8))
            {
                options |= ConnectionOptions.Upgrade;
            }
        }
        return options;
    }

    /// <summary>
    /// RFC 9112 §6.3 / RFC 9110 §8.6: Content-Length = 1*DIGIT. With <paramref name="allowList"/>
    /// (responses) a list of identical values is accepted as one, as §8.6 lets a recipient do.
    /// </summary>
    private static HttpParseError ParseContentLength(ReadOnlySpan<byte> value, bool allowList, out long length)
    {
        length = -1;
        if (value.IsEmpty)
        {
            return HttpParseError.InvalidContentLength;
        }
        while (true)
        {
            int comma = value.IndexOf(Comma);
            if (comma >= 0 && !allowList)
            {
                return HttpParseError.MultipleContentLength;
            }
            var item = comma < 0 ? value : TrimOws(value.Slice(0, comma));
            if (!TryParseDecimal(item, out long n))
            {
                return HttpParseError.InvalidContentLength;
            }
            if (length >= 0 && n != length)
            {
                return HttpParseError.MultipleContentLength;
            }
            length = n;
            if (comma < 0)
            {
                return HttpParseError.None;
            }
            value = TrimOws(value.Slice(comma + 1));
        }
    }

    private static bool TryParseDecimal(ReadOnlySpan<byte> digits, out long value)
    {
        value = 0;
        if (digits.IsEmpty)
        {
            return false;
        }
        foreach (byte b in digits)
        {
            uint d = (uint)(b - '0');
            if (d > 9)
            {
                return false;
            }
            // Overflow is an invalid length, never a wrapped one.
            if (value > (long.MaxValue - d) / 10)
            {
                return false;
            }
            value = value * 10 + d;
        }
        return true;
    }

    /// <summary>The last transfer coding of a Transfer-Encoding value (empty when there is none).</summary>
    private static ReadOnlySpan<byte> LastCoding(ReadOnlySpan<byte> value)
    {
        ReadOnlySpan<byte> last = default;
        while (true)
        {
            int comma = value.IndexOf(Comma);
            var token = TrimOws(comma < 0 ? value : value.Slice(0, comma));
            if (!token.IsEmpty)
            {
                last = token;
            }
            if (comma < 0)
            {
                return last;
            }
            value = value.Slice(comma + 1);
        }
    }
}
