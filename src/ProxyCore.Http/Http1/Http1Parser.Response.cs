using System.Text;
using static ProxyCore.Http.Http1.HttpChars;

namespace ProxyCore.Http.Http1;

public static partial class Http1Parser
{
    /// <summary>The response counterpart of <see cref="ParseRequestHead"/>: one pass, offsets for the arena.</summary>
    private static Http1ParseResult ParseResponseHead(ResponseHead head, ReadOnlySpan<byte> h, int arenaBase, HttpMethod requestMethod,
        Http1Limits limits, out int start, out int end, out HttpParseError error)
    {
        end = 0;
        var result = FindStartLine(h, limits, isRequest: false, out start, out int lineLength, out error);
        if (result != Http1ParseResult.Complete)
        {
            return result;
        }
        int shift = arenaBase - start;
        error = ParseStatusLine(head, h.Slice(start, lineLength), arenaBase);
        if (error != HttpParseError.None)
        {
            return Http1ParseResult.Error;
        }

        bool hasContentLength = false;
        bool hasTransferEncoding = false;
        bool chunkedLast = false;
        var connection = ConnectionOptions.None;

        int headerBytes = 0;
        int headerCount = 0;
        int pos = start + lineLength + 2;
        while (true)
        {
            result = NextFieldLine(h, pos, ref headerBytes, ref headerCount, limits, out lineLength, out error);
            if (result != Http1ParseResult.Complete)
            {
                return result;
            }
            if (lineLength == 0)
            {
                end = pos + 2;
                break;
            }
            var line = h.Slice(pos, lineLength);
            error = ParseFieldLine(line, tolerateSpaceBeforeColon: true, out int nameLength, out int valueStart, out int valueLength);
            if (error != HttpParseError.None)
            {
                return Http1ParseResult.Error;
            }
            var name = line.Slice(0, nameLength);
            var value = line.Slice(valueStart, valueLength);
            var id = KnownHeaders.Classify(name);
            head.AddHeader(new ByteRange(shift + pos, nameLength), new ByteRange(shift + pos + valueStart, valueLength), id);

            switch (id)
            {
                case KnownHeader.ContentLength:
                    // RFC 9110 §8.6: "a recipient MAY either reject the message as invalid or replace
                    // the duplicated field values with a single valid Content-Length field" when
                    // the values are identical; different values are always invalid (RFC 9112 §6.3 (5)).
                    error = ParseContentLength(value, allowList: true, out long contentLength);
                    if (error != HttpParseError.None)
                    {
                        return Http1ParseResult.Error;
                    }
                    if (hasContentLength && contentLength != head.ContentLength)
                    {
                        error = HttpParseError.MultipleContentLength;
                        return Http1ParseResult.Error;
                    }
                    if (hasTransferEncoding)
                    {
                        // Decided at once (see FinishResponseHead for the rule).
                        error = HttpParseError.ContentLengthWithTransferEncoding;
                        return Http1ParseResult.Error;
                    }
                    hasContentLength = true;
                    head.ContentLength = contentLength;
                    break;
                case KnownHeader.TransferEncoding:
                    // RFC 9112 §6.3 (4): for a response, chunked as the final coding frames the
                    // body; any other final coding means the body runs until the close. Several
                    // field lines form one list (RFC 9110 §5.3), so the last line's last coding decides.
                    var last = LastCoding(value);
                    if (!last.IsEmpty)
                    {
                        chunkedLast = Ascii.EqualsIgnoreCase(last, "chunked"u8);
                    }
                    if (head.Version == HttpVersion.Http10)
                    {
                        error = HttpParseError.TransferEncodingInHttp10;
                        return Http1ParseResult.Error;
                    }
                    if (hasContentLength)
                    {
                        error = HttpParseError.ContentLengthWithTransferEncoding;
                        return Http1ParseResult.Error;
                    }
                    hasTransferEncoding = true;
                    break;
                case KnownHeader.Connection:
                    connection |= ParseConnection(value);
                    break;
            }
            pos += lineLength + 2;
        }

        error = FinishResponseHead(head, requestMethod, hasContentLength, hasTransferEncoding, chunkedLast, connection);
        return error == HttpParseError.None ? Http1ParseResult.Complete : Http1ParseResult.Error;
    }

    private static HttpParseError FinishResponseHead(ResponseHead head, HttpMethod requestMethod, bool hasContentLength,
        bool hasTransferEncoding, bool chunkedLast, ConnectionOptions connection)
    {
        bool http11 = head.Version == HttpVersion.Http11;
        int status = head.StatusCode;
        if (hasTransferEncoding)
        {
            // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
            if (!http11)
            {
                return HttpParseError.TransferEncodingInHttp10;
            }
            // RFC 9112 §6.3 (3): "If a message is received with both a Transfer-Encoding and a
            // Content-Length header field, the Transfer-Encoding overrides the Content-Length. Such a
            // message might indicate an attempt to perform request smuggling or response splitting
            // and ought to be handled as an error." A proxy relaying it downstream must not pick one.
            if (hasContentLength)
            {
                return HttpParseError.ContentLengthWithTransferEncoding;
            }
        }

        // RFC 9112 §6.3 (1): responses to HEAD, 1xx, 204 and 304 end at the head.
        // RFC 9112 §6.3 (2): a 2xx to CONNECT switches to a tunnel: no body framing.
        if (requestMethod == HttpMethod.Head || status < 200 || status == 204 || status == 304
            || (requestMethod == HttpMethod.Connect && status < 300))
        {
            head.Framing = BodyFraming.None;
        }
        else if (hasTransferEncoding)
        {
            // RFC 9112 §6.3 (4): chunked last → chunked; otherwise the body runs to the close.
            head.Framing = chunkedLast ? BodyFraming.Chunked : BodyFraming.CloseDelimited;
        }
        else if (hasContentLength)
        {
            head.Framing = head.ContentLength > 0 ? BodyFraming.ContentLength : BodyFraming.None;
        }
        else
        {
            // RFC 9112 §6.3 (8): otherwise "the message body length is determined by the number of
            // octets received prior to the server closing the connection".
            head.Framing = BodyFraming.CloseDelimited;
        }

        head.KeepAlive = head.Framing != BodyFraming.CloseDelimited
            && (connection & ConnectionOptions.Close) == 0
            && (http11 || (connection & ConnectionOptions.KeepAlive) != 0);
        return HttpParseError.None;
    }

    /// <summary>status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4).</summary>
    private static HttpParseError ParseStatusLine(ResponseHead head, ReadOnlySpan<byte> line, int arenaBase)
    {
        if (line.Length < 12 || line[8] != SP)
        {
            return HttpParseError.InvalidStatusLine;
        }
        var error = ParseVersion(line.Slice(0, 8), head);
        if (error != HttpParseError.None)
        {
            return error;
        }

        // RFC 9110 §15: status-code = 3DIGIT, first digit 1-5 defined; 100-999 is what a client
        // can classify (unknown codes as x00 of their class), below 100 is invalid.
        int status = 0;
        for (int i = 9; i < 12; i++)
        {
            uint d = (uint)(line[i] - '0');
            if (d > 9)
            {
                return HttpParseError.InvalidStatusCode;
            }
            status = status * 10 + (int)d;
        }
        if (status < 100)
        {
            return HttpParseError.InvalidStatusCode;
        }
        head.StatusCode = status;

        if (line.Length == 12)
        {
            // Tolerated: "HTTP/1.1 200" without the SP before the empty reason (RFC 9112 §4: a
            // client SHOULD ignore the reason-phrase content; many servers omit the space).
            head.Reason = default;
            return HttpParseError.None;
        }
        if (line[12] != SP)
        {
            return HttpParseError.InvalidStatusCode;
        }
        var reason = line.Slice(13);
        int bad = IndexOfInvalidFieldValue(reason);
        if (bad >= 0)
        {
            return reason[bad] == CR ? HttpParseError.BareCR : HttpParseError.InvalidStatusLine;
        }
        head.Reason = new ByteRange(arenaBase + 13, reason.Length);
        return HttpParseError.None;
    }
}
