using System.Text;
using static ProxyCore.Http.Http1.HttpChars;

namespace ProxyCore.Http.Http1;

public static partial class Http1Parser
{
    /// <summary>
    /// One pass over a request head: finds its lines, enforces the limits and validates as it goes,
    /// recording offsets as they will be in the arena once <c>h[start..end]</c> is copied there at
    /// <paramref name="arenaBase"/>. Incomplete when the empty line has not arrived (the lines seen so
    /// far were still validated: a broken head fails before it is finished). The caller copies the
    /// bytes on Complete, and resets the head on Incomplete.
    /// </summary>
    private static Http1ParseResult ParseRequestHead(RequestHead head, ReadOnlySpan<byte> h, int arenaBase, Http1Limits limits,
        out int start, out int end, out bool emptyAbsolutePath, out HttpParseError error)
    {
        end = 0;
        emptyAbsolutePath = false;
        var result = FindStartLine(h, limits, isRequest: true, out start, out int lineLength, out error);
        if (result != Http1ParseResult.Complete)
        {
            return result;
        }
        int shift = arenaBase - start;
        error = ParseRequestLine(head, h.Slice(start, lineLength), arenaBase, out emptyAbsolutePath);
        if (error != HttpParseError.None)
        {
            return Http1ParseResult.Error;
        }

        int hostCount = 0;
        ByteRange host = default;
        bool hasContentLength = false;
        bool hasTransferEncoding = false;
        bool hasUpgrade = false;
        bool expectContinue = false;
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
            error = ParseFieldLine(line, tolerateSpaceBeforeColon: false, out int nameLength, out int valueStart, out int valueLength);
            if (error != HttpParseError.None)
            {
                return Http1ParseResult.Error;
            }
            var name = line.Slice(0, nameLength);
            var value = line.Slice(valueStart, valueLength);
            var id = KnownHeaders.Classify(name);
            if (id == KnownHeader.Other && LooksLikeFramingHeader(name))
            {
                error = HttpParseError.InvalidHeaderName;
                return Http1ParseResult.Error;
            }
            var valueRange = new ByteRange(shift + pos + valueStart, valueLength);
            head.AddHeader(new ByteRange(shift + pos, nameLength), valueRange, id);

            switch (id)
            {
                case KnownHeader.Host:
                    // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
                    // HTTP/1.1 request message that lacks a Host header field and to any request
                    // message that contains more than one Host header field line or a Host header
                    // field with an invalid field value."
                    if (++hostCount > 1)
                    {
                        error = HttpParseError.MultipleHost;
                        return Http1ParseResult.Error;
                    }
                    if (!IsValidAuthority(value, allowEmpty: true))
                    {
                        error = HttpParseError.InvalidHost;
                        return Http1ParseResult.Error;
                    }
                    host = valueRange;
                    break;
                case KnownHeader.ContentLength:
                    // RFC 9112 §6.3 (5): "If a message is received without Transfer-Encoding and with
                    // an invalid Content-Length header field, then the message framing is invalid and
                    // the recipient MUST treat it as an unrecoverable error ... the server MUST
                    // respond with a 400". A repeated field (even with equal values, even as a comma
                    // list) is treated as invalid: what a downstream makes of it is not ours to guess.
                    if (hasContentLength)
                    {
                        error = HttpParseError.MultipleContentLength;
                        return Http1ParseResult.Error;
                    }
                    hasContentLength = true;
                    if (hasTransferEncoding)
                    {
                        // Decided here rather than at the end of the head, so an unfinished head fails at
                        // once; the rule and its RFC text are in FinishRequestHead.
                        error = HttpParseError.ContentLengthWithTransferEncoding;
                        return Http1ParseResult.Error;
                    }
                    error = ParseContentLength(value, allowList: false, out long contentLength);
                    if (error != HttpParseError.None)
                    {
                        return Http1ParseResult.Error;
                    }
                    head.ContentLength = contentLength;
                    break;
                case KnownHeader.TransferEncoding:
                    // RFC 9112 §6.3 (4): "If a Transfer-Encoding header field is present in a request
                    // and the chunked transfer coding is not the final encoding, the message body
                    // length cannot be determined reliably; the server MUST respond with the 400".
                    // RFC 9112 §6.1: a sender MUST NOT apply chunked more than once. We go further
                    // and accept only the single coding "chunked": the proxy does not decode other
                    // codings, and every other spelling is a known desync gadget.
                    if (hasTransferEncoding || !Ascii.EqualsIgnoreCase(value, "chunked"u8))
                    {
                        error = HttpParseError.UnsupportedTransferEncoding;
                        return Http1ParseResult.Error;
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
                case KnownHeader.Expect:
                    // RFC 9110 §10.1.1: the only expectation defined is "100-continue" (case-insensitive).
                    expectContinue |= Ascii.EqualsIgnoreCase(value, "100-continue"u8);
                    break;
                case KnownHeader.Upgrade:
                    hasUpgrade = true;
                    break;
            }
            pos += lineLength + 2;
        }

        error = FinishRequestHead(head, hostCount, host, hasContentLength, hasTransferEncoding, hasUpgrade, expectContinue, connection);
        return error == HttpParseError.None ? Http1ParseResult.Complete : Http1ParseResult.Error;
    }

    private static HttpParseError FinishRequestHead(RequestHead head, int hostCount, ByteRange host, bool hasContentLength,
        bool hasTransferEncoding, bool hasUpgrade, bool expectContinue, ConnectionOptions connection)
    {
        bool http11 = head.Version == HttpVersion.Http11;
        if (hasTransferEncoding)
        {
            // RFC 9112 §6.1: "A server or client that receives an HTTP/1.0 message containing a
            // Transfer-Encoding header field MUST treat the message as if the framing is faulty".
            if (!http11)
            {
                return HttpParseError.TransferEncodingInHttp10;
            }
            // RFC 9112 §6.1: "A server MAY reject a request that contains both Content-Length and
            // Transfer-Encoding or process such a request in accordance with the Transfer-Encoding
            // alone. Regardless, the server MUST close the connection after responding". We reject:
            // forwarding either reading is how CL.TE / TE.CL smuggling works.
            if (hasContentLength)
            {
                return HttpParseError.ContentLengthWithTransferEncoding;
            }
        }
        // Checked last: it is the only error that a later field line could still cure, which the
        // early validation of incomplete heads relies on.
        if (http11 && hostCount == 0)
        {
            return HttpParseError.MissingHost;
        }

        if (head.Method == HttpMethod.Connect)
        {
            // RFC 9110 §9.3.6: "A CONNECT request message does not have content. The interpretation
            // of data following the header section of a CONNECT request message is specific to the
            // version of HTTP in use." In HTTP/1.1 it is tunnel data: no body framing, whatever
            // Content-Length says (it stays in ContentLength for the record).
            head.Framing = BodyFraming.None;
        }
        else if (hasTransferEncoding)
        {
            head.Framing = BodyFraming.Chunked;
        }
        else if (hasContentLength)
        {
            head.Framing = head.ContentLength > 0 ? BodyFraming.ContentLength : BodyFraming.None;
        }
        else
        {
            // RFC 9112 §6.3 (7): a request without either has a zero-length body.
            head.Framing = BodyFraming.None;
        }

        // RFC 9112 §3.2.2: "When an origin server receives a request with an absolute-form of
        // request-target, the origin server MUST ignore the received Host header field (if any)
        // and instead use the host information of the request-target." The same holds for CONNECT.
        if (head.TargetForm is RequestTargetForm.Origin or RequestTargetForm.Asterisk)
        {
            head.Authority = host;
        }

        // RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
        head.KeepAlive = (connection & ConnectionOptions.Close) == 0
            && (http11 || (connection & ConnectionOptions.KeepAlive) != 0);
        // RFC 9110 §10.1.1: "A server that receives a 100-continue expectation in an HTTP/1.0
        // request MUST ignore that expectation."
        head.ExpectContinue = http11 && expectContinue;
        // RFC 9110 §7.8: Upgrade is only acted on when listed in Connection.
        head.IsUpgrade = hasUpgrade && (connection & ConnectionOptions.Upgrade) != 0;

        return HttpParseError.None;
    }

    /// <summary>
    /// request-line = method SP request-target SP HTTP-version (RFC 9112 §3), single SPs only:
    /// "Recipients of an invalid request-line SHOULD respond with either a 400 (Bad Request)
    /// error or a 301 (Moved Permanently) redirect" — we do not guess at lenient splits (§3 notes
    /// the whitespace-splitting ambiguity that lets a proxy and a server disagree).
    /// </summary>
    private static HttpParseError ParseRequestLine(RequestHead head, ReadOnlySpan<byte> line, int arenaBase, out bool emptyAbsolutePath)
    {
        emptyAbsolutePath = false;

        // RFC 9110 §9.1: method = token.
        int sp = IndexOfNonTChar(line);
        if (sp < 0)
        {
            return HttpParseError.InvalidRequestLine;
        }
        if (sp == 0 || line[sp] != SP)
        {
            return line[sp] switch
            {
                CR => HttpParseError.BareCR,
                SP or HTAB => HttpParseError.InvalidRequestLine,
                _ => HttpParseError.InvalidMethod,
            };
        }
        var method = line.Slice(0, sp);
        head.MethodBytes = new ByteRange(arenaBase, sp);
        head.Method = HttpMethods.Parse(method);

        // RFC 9112 §3.2 / RFC 3986: a request-target is visible ASCII only; SP, CTLs and bytes
        // >= 0x80 never appear in it.
        int targetStart = sp + 1;
        var rest = line.Slice(targetStart);
        int targetLength = rest.IndexOfAnyExceptInRange((byte)0x21, (byte)0x7E);
        if (targetLength <= 0)
        {
            if (targetLength < 0 || rest.IsEmpty || rest[0] == SP)
            {
                return HttpParseError.InvalidRequestLine;
            }
            return rest[0] == CR ? HttpParseError.BareCR : HttpParseError.InvalidTarget;
        }
        if (rest[targetLength] != SP)
        {
            return rest[targetLength] == CR ? HttpParseError.BareCR : HttpParseError.InvalidTarget;
        }

        // RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT, case-sensitive.
        var version = rest.Slice(targetLength + 1);
        var error = ParseVersion(version, head);
        if (error != HttpParseError.None)
        {
            return error == HttpParseError.InvalidStatusLine ? HttpParseError.InvalidRequestLine : error;
        }

        return ParseTarget(head, rest.Slice(0, targetLength), arenaBase + targetStart, out emptyAbsolutePath);
    }

    private static HttpParseError ParseVersion(ReadOnlySpan<byte> version, HttpHead head)
    {
        if (version.Length == 8 && version.StartsWith("HTTP/1."u8))
        {
            if (version[7] == (byte)'1')
            {
                head.Version = HttpVersion.Http11;
                return HttpParseError.None;
            }
            if (version[7] == (byte)'0')
            {
                head.Version = HttpVersion.Http10;
                return HttpParseError.None;
            }
        }
        if (version.Length == 8 && version.StartsWith("HTTP/"u8) && char.IsAsciiDigit((char)version[5])
            && version[6] == (byte)'.' && char.IsAsciiDigit((char)version[7]))
        {
            // Well-formed but not 1.0/1.1 (HTTP/2 has its own preface; 0.9 and 1.2+ are not spoken here).
            return HttpParseError.UnsupportedVersion;
        }
        return HttpParseError.InvalidStatusLine;
    }

    /// <summary>RFC 9112 §3.2: request-target = origin-form / absolute-form / authority-form / asterisk-form.</summary>
    private static HttpParseError ParseTarget(RequestHead head, ReadOnlySpan<byte> target, int offset, out bool emptyAbsolutePath)
    {
        emptyAbsolutePath = false;
        bool connect = head.Method == HttpMethod.Connect;

        // RFC 9112 §3.2.3: "The authority-form of request-target is only used for CONNECT requests".
        // RFC 9110 §9.3.6: "A CONNECT request MUST use the authority-form"; uri-host ":" port.
        if (connect)
        {
            int colon = target.LastIndexOf(Colon);
            if (colon <= 0 || colon == target.Length - 1 || target.Slice(colon + 1).IndexOfAnyExceptInRange((byte)'0', (byte)'9') >= 0
                || !IsValidAuthority(target, allowEmpty: false) || target.IndexOfAny("/?#@"u8) >= 0)
            {
                return HttpParseError.InvalidTarget;
            }
            head.TargetForm = RequestTargetForm.Authority;
            head.Authority = new ByteRange(offset, target.Length);
            return HttpParseError.None;
        }

        // RFC 9112 §3.2.1: origin-form = absolute-path [ "?" query ].
        if (target[0] == Slash)
        {
            head.TargetForm = RequestTargetForm.Origin;
            SplitPathQuery(head, target, offset);
            return HttpParseError.None;
        }

        // RFC 9112 §3.2.4: asterisk-form = "*", "only used for a server-wide OPTIONS request".
        if (target.Length == 1 && target[0] == (byte)'*')
        {
            if (head.Method != HttpMethod.Options)
            {
                return HttpParseError.InvalidTarget;
            }
            head.TargetForm = RequestTargetForm.Asterisk;
            head.Path = new ByteRange(offset, 1);
            return HttpParseError.None;
        }

        // RFC 9112 §3.2.2: absolute-form = absolute-URI. We proxy http and https only.
        int schemeEnd = target.IndexOf("://"u8);
        if (schemeEnd <= 0)
        {
            return HttpParseError.InvalidTarget;
        }
        var scheme = target.Slice(0, schemeEnd);
        if (!Ascii.EqualsIgnoreCase(scheme, "http"u8) && !Ascii.EqualsIgnoreCase(scheme, "https"u8))
        {
            return HttpParseError.InvalidTarget;
        }
        int authorityStart = schemeEnd + 3;
        var afterScheme = target.Slice(authorityStart);
        int authorityLength = afterScheme.IndexOfAny("/?#"u8);
        if (authorityLength < 0)
        {
            authorityLength = afterScheme.Length;
        }
        var authority = afterScheme.Slice(0, authorityLength);
        // RFC 9110 §4.2.1: "A sender MUST NOT generate an "http" URI with an empty host identifier.
        // A recipient that processes such a URI reference MUST reject it as invalid."
        // RFC 9110 §4.2.4: "A recipient SHOULD parse for userinfo and treat its presence as an error".
        if (authority.IsEmpty || authority.IndexOf((byte)'@') >= 0 || !IsValidAuthority(authority, allowEmpty: false))
        {
            return HttpParseError.InvalidTarget;
        }
        head.TargetForm = RequestTargetForm.Absolute;
        head.Scheme = new ByteRange(offset, schemeEnd);
        head.Authority = new ByteRange(offset + authorityStart, authorityLength);
        var pathAndQuery = afterScheme.Slice(authorityLength);
        int pathOffset = offset + authorityStart + authorityLength;
        if (pathAndQuery.IsEmpty || pathAndQuery[0] != Slash)
        {
            // path-abempty is empty: the path is "/" (appended by the caller), the query is whatever follows.
            emptyAbsolutePath = true;
            int q = pathAndQuery.IndexOf(Question);
            head.Query = q < 0 ? default : new ByteRange(pathOffset + q, pathAndQuery.Length - q);
            return HttpParseError.None;
        }
        SplitPathQuery(head, pathAndQuery, pathOffset);
        return HttpParseError.None;
    }

    private static void SplitPathQuery(RequestHead head, ReadOnlySpan<byte> pathAndQuery, int offset)
    {
        int q = pathAndQuery.IndexOf(Question);
        if (q < 0)
        {
            head.Path = new ByteRange(offset, pathAndQuery.Length);
            head.Query = default;
        }
        else
        {
            head.Path = new ByteRange(offset, q);
            head.Query = new ByteRange(offset + q, pathAndQuery.Length - q);
        }
    }

    /// <summary>uri-host [ ":" port ] with only RFC 3986 host characters (RFC 9110 §7.2).</summary>
    private static bool IsValidAuthority(ReadOnlySpan<byte> authority, bool allowEmpty)
    {
        if (authority.IsEmpty)
        {
            // RFC 9112 §3.2: a client sends an empty Host when the target URI has no authority.
            return allowEmpty;
        }
        return authority.IndexOfAnyExcept(HostChar) < 0;
    }

    /// <summary>
    /// "Content_Length", "Transfer---Encoding": valid tokens, and not the framing fields to us, but
    /// CGI/WSGI-style servers map '-' and '_' to the same variable name and may frame by them. The
    /// proxy and its upstream must never disagree on framing, so such names are rejected (nginx
    /// drops underscore names by default for the same reason).
    /// </summary>
    private static bool LooksLikeFramingHeader(ReadOnlySpan<byte> name)
    {
        if (name.Length < 14 || name.Length > 40 || ((name[0] | 0x20) != 'c' && (name[0] | 0x20) != 't'))
        {
            return false;
        }
        ReadOnlySpan<byte> target = (name[0] | 0x20) == 'c' ? "contentlength"u8 : "transferencoding"u8;
        int t = 0;
        foreach (byte b in name)
        {
            if (b is (byte)'-' or (byte)'_')
            {
                continue;
            }
            if (t == target.Length || (b | 0x20) != target[t])
            {
                return false;
            }
            t++;
        }
        return t == target.Length;
    }
}
