using System.Buffers;
using System.Runtime.CompilerServices;
using static ProxyCore.Http.Http1.HttpChars;

namespace ProxyCore.Http.Http1;

/// <summary>
/// Strict HTTP/1.1 head parser (RFC 9112). It does no I/O: it reads a <see cref="ReadOnlySequence{T}"/>,
/// and only the connection loop advances the pipe.
/// </summary>
/// <remarks>
/// Two passes. <b>Scan</b> walks the lines (one vectorized LF search per line) to find where the
/// head ends, rejects bare-LF line ends and enforces the size limits, so a head that can never
/// complete fails before it is buffered whole. <b>Parse</b> then copies the head once into the
/// head's arena (the pipe is advanced before the body is read, so the bytes must move anyway)
/// and validates it as one contiguous span, recording offsets. Only the scan has a multi-segment
/// variant; parsing always sees a single span.
/// </remarks>
public static partial class Http1Parser
{
    /// <summary>
    /// Parses one request head from the start of <paramref name="buffer"/>. The caller resets
    /// <paramref name="head"/> first. On <see cref="Http1ParseResult.Complete"/>, <paramref name="consumed"/>
    /// is just after the empty line that ends the head; on <see cref="Http1ParseResult.Incomplete"/>
    /// it is <c>buffer.Start</c>; on <see cref="Http1ParseResult.Error"/> the caller answers with
    /// <see cref="HttpParseErrors.StatusCode"/> and closes the connection (<paramref name="consumed"/> is
    /// <c>buffer.Start</c>, and the head may be partly filled).
    /// </summary>
    public static Http1ParseResult TryParseRequest(in ReadOnlySequence<byte> buffer, RequestHead head, Http1Limits limits,
        out SequencePosition consumed, out HttpParseError error)
    {
        Http1ParseResult result = buffer.IsSingleSegment
            ? ScanHead(buffer.FirstSpan, limits, isRequest: true, out int start, out int end, out error)
            : ScanHeadMultiSegment(buffer, limits, isRequest: true, out start, out end, out error);
        if (result != Http1ParseResult.Complete)
        {
            consumed = buffer.Start;
            if (result == Http1ParseResult.Incomplete && end > start)
            {
                result = ValidateIncompleteRequest(buffer, head, start, end, out error);
            }
            return result;
        }

        int arenaBase = CopyToArena(buffer, head, start, end);
        error = ParseRequestHead(head, arenaBase, end - start);
        if (error != HttpParseError.None)
        {
            consumed = buffer.Start;
            return Http1ParseResult.Error;
        }
        consumed = buffer.GetPosition(end);
        return Http1ParseResult.Complete;
    }

    /// <summary>
    /// Parses one response head from an upstream. <paramref name="requestMethod"/> decides framing
    /// (HEAD → no body). A 1xx status is returned as a complete head with <see cref="BodyFraming.None"/>:
    /// the caller forwards or skips it and parses again. Errors mean 502 for the client.
    /// </summary>
    public static Http1ParseResult TryParseResponse(in ReadOnlySequence<byte> buffer, ResponseHead head, HttpMethod requestMethod,
        Http1Limits limits, out SequencePosition consumed, out HttpParseError error)
    {
        Http1ParseResult result = buffer.IsSingleSegment
            ? ScanHead(buffer.FirstSpan, limits, isRequest: false, out int start, out int end, out error)
            : ScanHeadMultiSegment(buffer, limits, isRequest: false, out start, out end, out error);
        if (result != Http1ParseResult.Complete)
        {
            consumed = buffer.Start;
            if (result == Http1ParseResult.Incomplete && end > start)
            {
                result = ValidateIncompleteResponse(buffer, head, requestMethod, start, end, out error);
            }
            return result;
        }

        int arenaBase = CopyToArena(buffer, head, start, end);
        error = ParseResponseHead(head, arenaBase, end - start, requestMethod);
        if (error != HttpParseError.None)
        {
            consumed = buffer.Start;
            return Http1ParseResult.Error;
        }
        consumed = buffer.GetPosition(end);
        return Http1ParseResult.Complete;
    }

    /// <summary>
    /// An incomplete head whose start line and some field lines are whole: validate those now, so a
    /// malformed head (a smuggling attempt, a bad Content-Length) fails at once instead of after the
    /// client decides to finish it. The whole lines plus a synthetic empty line are parsed as a
    /// head; only <see cref="HttpParseError.MissingHost"/> can still be cured by later lines. The
    /// head is reset afterwards: Incomplete leaves it as it was.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Http1ParseResult ValidateIncompleteRequest(in ReadOnlySequence<byte> buffer, RequestHead head, int start, int end,
        out HttpParseError error)
    {
        int arenaBase = CopyToArena(buffer, head, start, end);
        head.Append("\r\n"u8);
        error = ParseRequestHead(head, arenaBase, end - start + 2);
        head.Reset();
        if (error is HttpParseError.None or HttpParseError.MissingHost)
        {
            error = HttpParseError.None;
            return Http1ParseResult.Incomplete;
        }
        return Http1ParseResult.Error;
    }

    /// <summary>The response counterpart of <see cref="ValidateIncompleteRequest"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Http1ParseResult ValidateIncompleteResponse(in ReadOnlySequence<byte> buffer, ResponseHead head, HttpMethod requestMethod,
        int start, int end, out HttpParseError error)
    {
        int arenaBase = CopyToArena(buffer, head, start, end);
        head.Append("\r\n"u8);
        error = ParseResponseHead(head, arenaBase, end - start + 2, requestMethod);
        head.Reset();
        if (error == HttpParseError.None)
        {
            return Http1ParseResult.Incomplete;
        }
        return Http1ParseResult.Error;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int CopyToArena(in ReadOnlySequence<byte> buffer, HttpHead head, int start, int end)
    {
        int arenaBase = head.ArenaUsed;
        var dst = head.Reserve(end - start, out _);
        if (buffer.IsSingleSegment)
        {
            buffer.FirstSpan.Slice(start, end - start).CopyTo(dst);
        }
        else
        {
            buffer.Slice(start, end - start).CopyTo(dst);
        }
        return arenaBase;
    }

    /// <summary>
    /// Finds the head in one span: <paramref name="start"/> is where the start line begins (after
    /// ignored empty lines), <paramref name="end"/> just after the empty line.
    /// </summary>
    private static Http1ParseResult ScanHead(ReadOnlySpan<byte> span, Http1Limits limits, bool isRequest,
        out int start, out int end, out HttpParseError error)
    {
        start = 0;
        end = 0;
        int pos = 0;
        // RFC 9112 §2.2: "a server that is expecting to receive and parse a request-line SHOULD
        // ignore at least one empty line (CRLF) received prior to the request-line." We extend the
        // same robustness to status lines: upstreams that send a stray CRLF after a body exist, and
        // an empty line cannot be mistaken for anything else.
        while (pos + 1 < span.Length && span[pos] == CR && span[pos + 1] == LF)
        {
            pos += 2;
        }
        start = pos;
        if (start > limits.MaxRequestLineBytes)
        {
            // Empty lines count against the request line: they are buffered like it.
            error = HttpParseError.RequestLineTooLong;
            return Http1ParseResult.Error;
        }

        int lf = span.Slice(pos).IndexOf(LF);
        if (lf < 0)
        {
            // Not even the start line yet: fail now if it can no longer fit (+1 for its CR).
            return StartLineIncomplete(span.Length - start, limits, isRequest, out error);
        }
        // RFC 9112 §2.2: a recipient MAY recognize a single LF as a line terminator — we do not:
        // a proxy that reads line ends differently from its upstream is a smuggling vector.
        if (lf == 0 || span[pos + lf - 1] != CR)
        {
            error = HttpParseError.BareLF;
            return Http1ParseResult.Error;
        }
        if (lf - 1 > limits.MaxRequestLineBytes)
        {
            error = isRequest ? HttpParseError.RequestLineTooLong : HttpParseError.StatusLineTooLong;
            return Http1ParseResult.Error;
        }
        pos += lf + 1;

        int headerBytes = 0;
        int headerCount = 0;
        while (true)
        {
            lf = span.Slice(pos).IndexOf(LF);
            if (lf < 0)
            {
                // end = how far whole lines go, for the early validation of an incomplete head.
                end = pos;
                return FieldsIncomplete(headerBytes, span.Length - pos, pos < span.Length ? span[pos] : (byte)0,
                    span.Length - pos > 1 ? span[pos + 1] : (byte)0, limits, out error);
            }
            if (lf == 0 || span[pos + lf - 1] != CR)
            {
                error = HttpParseError.BareLF;
                return Http1ParseResult.Error;
            }
            if (lf == 1)
            {
                end = pos + 2;
                error = HttpParseError.None;
                return Http1ParseResult.Complete;
            }
            if (!CountField(ref headerBytes, ref headerCount, lf + 1, limits, out error))
            {
                return Http1ParseResult.Error;
            }
            pos += lf + 1;
        }
    }

    /// <summary>The same scan over several segments (a head split across reads).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Http1ParseResult ScanHeadMultiSegment(in ReadOnlySequence<byte> buffer, Http1Limits limits, bool isRequest,
        out int start, out int end, out HttpParseError error)
    {
        start = 0;
        end = 0;
        var reader = new SequenceReader<byte>(buffer);
        // RFC 9112 §2.2: ignore empty lines before the start line (see ScanHead).
        while (reader.IsNext("\r\n"u8, advancePast: true))
        {
        }
        start = (int)Math.Min(reader.Consumed, int.MaxValue);
        if (start > limits.MaxRequestLineBytes)
        {
            error = HttpParseError.RequestLineTooLong;
            return Http1ParseResult.Error;
        }

        if (!reader.TryReadTo(out ReadOnlySequence<byte> line, LF))
        {
            return StartLineIncomplete(reader.Remaining, limits, isRequest, out error);
        }
        if (!EndsWithCR(line))
        {
            error = HttpParseError.BareLF;
            return Http1ParseResult.Error;
        }
        if (line.Length - 1 > limits.MaxRequestLineBytes)
        {
            error = isRequest ? HttpParseError.RequestLineTooLong : HttpParseError.StatusLineTooLong;
            return Http1ParseResult.Error;
        }

        int headerBytes = 0;
        int headerCount = 0;
        while (true)
        {
            if (!reader.TryReadTo(out line, LF))
            {
                end = (int)reader.Consumed;
                reader.TryPeek(out byte first);
                reader.TryPeek(1, out byte second);
                return FieldsIncomplete(headerBytes, reader.Remaining, first, second, limits, out error);
            }
            if (!EndsWithCR(line))
            {
                error = HttpParseError.BareLF;
                return Http1ParseResult.Error;
            }
            if (line.Length == 1)
            {
                end = (int)reader.Consumed;
                error = HttpParseError.None;
                return Http1ParseResult.Complete;
            }
            if (!CountField(ref headerBytes, ref headerCount, line.Length + 1, limits, out error))
            {
                return Http1ParseResult.Error;
            }
        }
    }

    private static bool EndsWithCR(in ReadOnlySequence<byte> line)
    {
        if (line.IsEmpty)
        {
            return false;
        }
        if (line.IsSingleSegment)
        {
            return line.FirstSpan[^1] == CR;
        }
        return line.Slice(line.Length - 1).FirstSpan[0] == CR;
    }

    private static Http1ParseResult StartLineIncomplete(long pending, Http1Limits limits, bool isRequest, out HttpParseError error)
    {
        // The pending bytes are the start line so far (no LF yet); its CR may be among them.
        if (pending > limits.MaxRequestLineBytes + 1)
        {
            error = isRequest ? HttpParseError.RequestLineTooLong : HttpParseError.StatusLineTooLong;
            return Http1ParseResult.Error;
        }
        error = HttpParseError.None;
        return Http1ParseResult.Incomplete;
    }

    private static Http1ParseResult FieldsIncomplete(int headerBytes, long pending, byte first, byte second, Http1Limits limits,
        out HttpParseError error)
    {
        // The pending line's first bytes already decide two rejections (see ParseFieldLine and
        // RFC 9112 §2.2): leading whitespace is obs-fold, and a CR must be followed by LF.
        if (IsOws(first))
        {
            error = HttpParseError.ObsFold;
            return Http1ParseResult.Error;
        }
        if (first == CR && pending > 1 && second != LF)
        {
            error = HttpParseError.BareCR;
            return Http1ParseResult.Error;
        }
        // A pending field line of n bytes will take at least n + 1 (its LF). Two pending bytes or
        // fewer may still be the final empty line, which does not count.
        if (pending > 2 && headerBytes + pending + 1 > limits.MaxHeaderBytes)
        {
            error = HttpParseError.HeadersTooLarge;
            return Http1ParseResult.Error;
        }
        error = HttpParseError.None;
        return Http1ParseResult.Incomplete;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool CountField(ref int headerBytes, ref int headerCount, long lineBytes, Http1Limits limits, out HttpParseError error)
    {
        headerBytes = (int)Math.Min(headerBytes + lineBytes, int.MaxValue);
        if (headerBytes > limits.MaxHeaderBytes)
        {
            error = HttpParseError.HeadersTooLarge;
            return false;
        }
        if (++headerCount > limits.MaxHeaderCount)
        {
            error = HttpParseError.TooManyHeaders;
            return false;
        }
        error = HttpParseError.None;
        return true;
    }
}
