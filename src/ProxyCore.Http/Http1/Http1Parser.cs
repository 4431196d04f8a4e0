using System.Buffers;
using System.Runtime.CompilerServices;
using static ProxyCore.Http.Http1.HttpChars;

namespace ProxyCore.Http.Http1;

/// <summary>
/// Strict HTTP/1.1 head parser (RFC 9112). It does no I/O: it reads a <see cref="ReadOnlySequence{T}"/>,
/// and only the connection loop advances the pipe.
/// </summary>
/// <remarks>
/// The common case, a head in one segment, is one pass over the pipe's span: each line is found
/// with one vectorized LF search, checked against the limits and validated, offsets are recorded
/// as they will be in the head's arena, and the head bytes are then copied there once (the pipe
/// is advanced before the body is read, so they must move anyway). A head split across segments
/// (out of line) is first located with a line scan, copied, and parsed from the copy. An
/// incomplete head is validated as far as its lines go, so a malformed one fails at once.
/// </remarks>
public static partial class Http1Parser
{
    /// <summary>
    /// Parses one request head from the start of <paramref name="buffer"/>. The caller resets
    /// <paramref name="head"/> first. On <see cref="Http1ParseResult.Complete"/>, <paramref name="consumed"/>
    /// is just after the empty line that ends the head; on <see cref="Http1ParseResult.Incomplete"/>
    /// it is <c>buffer.Start</c> and the head is left reset; on <see cref="Http1ParseResult.Error"/> the
    /// caller answers with <see cref="HttpParseErrors.StatusCode"/> and closes the connection
    /// (<paramref name="consumed"/> is <c>buffer.Start</c>, and the head may be partly filled).
    /// </summary>
    public static Http1ParseResult TryParseRequest(in ReadOnlySequence<byte> buffer, RequestHead head, Http1Limits limits,
        out SequencePosition consumed, out HttpParseError error)
    {
        if (!buffer.IsSingleSegment)
        {
            return TryParseRequestMultiSegment(buffer, head, limits, out consumed, out error);
        }

        // Fast path: parse the pipe's own span in one pass, then copy the head bytes once.
        var span = buffer.FirstSpan;
        int arenaBase = head.ArenaUsed;
        var result = ParseRequestHead(head, span, arenaBase, limits, out int start, out int end, out bool emptyAbsolutePath, out error);
        if (result == Http1ParseResult.Complete)
        {
            span.Slice(start, end - start).CopyTo(head.Reserve(end - start, out _));
            if (emptyAbsolutePath)
            {
                // RFC 9112 §3.2.1: an empty path is sent as "/"; the arena has no such byte yet.
                head.Path = head.Append("/"u8);
            }
            consumed = buffer.GetPosition(end);
            return result;
        }
        if (result == Http1ParseResult.Incomplete)
        {
            head.Reset();
        }
        consumed = buffer.Start;
        return result;
    }

    /// <summary>A head split across segments: find its end, copy it once, parse the copy.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Http1ParseResult TryParseRequestMultiSegment(in ReadOnlySequence<byte> buffer, RequestHead head, Http1Limits limits,
        out SequencePosition consumed, out HttpParseError error)
    {
        consumed = buffer.Start;
        var result = ScanHeadMultiSegment(buffer, limits, isRequest: true, out int start, out int end, out error);
        if (result == Http1ParseResult.Error)
        {
            return result;
        }
        bool complete = result == Http1ParseResult.Complete;
        if (!complete && end <= start)
        {
            return result;
        }
        // Incomplete with whole lines: validate them now (see ParseRequestHead), closed by a
        // synthetic empty line; only a missing Host may still be cured by a later line.
        int arenaBase = CopyToArena(buffer, head, start, end);
        if (!complete)
        {
            head.Append("\r\n"u8);
        }
        int length = head.ArenaUsed - arenaBase;
        result = ParseRequestHead(head, head.ArenaSpan.Slice(arenaBase, length), arenaBase, limits,
            out _, out _, out bool emptyAbsolutePath, out error);
        if (!complete)
        {
            head.Reset();
            if (result == Http1ParseResult.Error && error != HttpParseError.MissingHost)
            {
                return result;
            }
            error = HttpParseError.None;
            return Http1ParseResult.Incomplete;
        }
        if (result != Http1ParseResult.Complete)
        {
            return result;
        }
        if (emptyAbsolutePath)
        {
            head.Path = head.Append("/"u8);
        }
        consumed = buffer.GetPosition(end);
        return result;
    }

    /// <summary>
    /// Parses one response head from an upstream. <paramref name="requestMethod"/> decides framing
    /// (HEAD → no body). A 1xx status is returned as a complete head with <see cref="BodyFraming.None"/>:
    /// the caller forwards or skips it and parses again. Errors mean 502 for the client.
    /// </summary>
    public static Http1ParseResult TryParseResponse(in ReadOnlySequence<byte> buffer, ResponseHead head, HttpMethod requestMethod,
        Http1Limits limits, out SequencePosition consumed, out HttpParseError error)
    {
        if (!buffer.IsSingleSegment)
        {
            return TryParseResponseMultiSegment(buffer, head, requestMethod, limits, out consumed, out error);
        }

        var span = buffer.FirstSpan;
        int arenaBase = head.ArenaUsed;
        var result = ParseResponseHead(head, span, arenaBase, requestMethod, limits, out int start, out int end, out error);
        if (result == Http1ParseResult.Complete)
        {
            span.Slice(start, end - start).CopyTo(head.Reserve(end - start, out _));
            consumed = buffer.GetPosition(end);
            return result;
        }
        if (result == Http1ParseResult.Incomplete)
        {
            head.Reset();
        }
        consumed = buffer.Start;
        return result;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Http1ParseResult TryParseResponseMultiSegment(in ReadOnlySequence<byte> buffer, ResponseHead head, HttpMethod requestMethod,
        Http1Limits limits, out SequencePosition consumed, out HttpParseError error)
    {
        consumed = buffer.Start;
        var result = ScanHeadMultiSegment(buffer, limits, isRequest: false, out int start, out int end, out error);
        if (result == Http1ParseResult.Error)
        {
            return result;
        }
        bool complete = result == Http1ParseResult.Complete;
        if (!complete && end <= start)
        {
            return result;
        }
        int arenaBase = CopyToArena(buffer, head, start, end);
        if (!complete)
        {
            head.Append("\r\n"u8);
        }
        int length = head.ArenaUsed - arenaBase;
        result = ParseResponseHead(head, head.ArenaSpan.Slice(arenaBase, length), arenaBase, requestMethod, limits, out _, out _, out error);
        if (!complete)
        {
            head.Reset();
            if (result == Http1ParseResult.Error)
            {
                return result;
            }
            error = HttpParseError.None;
            return Http1ParseResult.Incomplete;
        }
        if (result == Http1ParseResult.Complete)
        {
            consumed = buffer.GetPosition(end);
        }
        return result;
    }

    private static int CopyToArena(in ReadOnlySequence<byte> buffer, HttpHead head, int start, int end)
    {
        int arenaBase = head.ArenaUsed;
        buffer.Slice(start, end - start).CopyTo(head.Reserve(end - start, out _));
        return arenaBase;
    }

    /// <summary>
    /// The start line: skips empty lines before it, enforces its limit, rejects a bare-LF end.
    /// Complete gives where it starts and its length without CRLF.
    /// </summary>
    private static Http1ParseResult FindStartLine(ReadOnlySpan<byte> h, Http1Limits limits, bool isRequest,
        out int start, out int lineLength, out HttpParseError error)
    {
        lineLength = 0;
        int pos = 0;
        // RFC 9112 §2.2: "a server that is expecting to receive and parse a request-line SHOULD
        // ignore at least one empty line (CRLF) received prior to the request-line." We extend the
        // same robustness to status lines: upstreams that send a stray CRLF after a body exist, and
        // an empty line cannot be mistaken for anything else.
        while (pos + 1 < h.Length && h[pos] == CR && h[pos + 1] == LF)
        {
            pos += 2;
        }
        start = pos;
        if (start > limits.MaxRequestLineBytes)
        {
            // Empty lines count against the request line: they are buffered like it.
            error = isRequest ? HttpParseError.RequestLineTooLong : HttpParseError.StatusLineTooLong;
            return Http1ParseResult.Error;
        }

        int lf = h.Slice(pos).IndexOf(LF);
        if (lf < 0)
        {
            // Not even the start line yet: fail now if it can no longer fit (+1 for its CR).
            return StartLineIncomplete(h.Length - start, limits, isRequest, out error);
        }
        // RFC 9112 §2.2: a recipient MAY recognize a single LF as a line terminator — we do not:
        // a proxy that reads line ends differently from its upstream is a smuggling vector.
        if (lf == 0 || h[pos + lf - 1] != CR)
        {
            error = HttpParseError.BareLF;
            return Http1ParseResult.Error;
        }
        if (lf - 1 > limits.MaxRequestLineBytes)
        {
            error = isRequest ? HttpParseError.RequestLineTooLong : HttpParseError.StatusLineTooLong;
            return Http1ParseResult.Error;
        }
        lineLength = lf - 1;
        error = HttpParseError.None;
        return Http1ParseResult.Complete;
    }

    /// <summary>
    /// The field line at <paramref name="pos"/>: Complete with its length without CRLF (0 = the
    /// empty line that ends the head), counted against the limits; Incomplete when its LF has not
    /// arrived (with the checks its first bytes already allow); Error on a bare LF or a limit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Http1ParseResult NextFieldLine(ReadOnlySpan<byte> h, int pos, ref int headerBytes, ref int headerCount,
        Http1Limits limits, out int lineLength, out HttpParseError error)
    {
        lineLength = 0;
        int lf = h.Slice(pos).IndexOf(LF);
        if (lf < 0)
        {
            return FieldsIncomplete(headerBytes, h.Length - pos, pos < h.Length ? h[pos] : (byte)0,
                h.Length - pos > 1 ? h[pos + 1] : (byte)0, limits, out error);
        }
        if (lf == 0 || h[pos + lf - 1] != CR)
        {
            error = HttpParseError.BareLF;
            return Http1ParseResult.Error;
        }
        lineLength = lf - 1;
        if (lineLength == 0)
        {
            error = HttpParseError.None;
            return Http1ParseResult.Complete;
        }
        return CountField(ref headerBytes, ref headerCount, lf + 1, limits, out error)
            ? Http1ParseResult.Complete
            : Http1ParseResult.Error;
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
