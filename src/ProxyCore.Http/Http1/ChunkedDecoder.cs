using System.Buffers;
using System.Runtime.CompilerServices;
using static ProxyCore.Http.Http1.HttpChars;

namespace ProxyCore.Http.Http1;

/// <summary>
/// Decoder for the chunked transfer coding (RFC 9112 §7.1), one call at a time over whatever the
/// pipe holds: it survives any split of the input between calls, consumes framing bytes as soon as
/// a whole framing element (a chunk-size line, a CRLF, a trailer line) is there, and hands payload
/// out as slices of the input, never copied.
/// </summary>
/// <remarks>
/// <code>
/// chunked-body   = *chunk last-chunk trailer-section CRLF
/// chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
/// chunk-size     = 1*HEXDIG
/// last-chunk     = 1*("0") [ chunk-ext ] CRLF
/// chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
/// chunk-ext-val  = token / quoted-string
/// trailer-section = *( field-line CRLF )
/// </code>
/// A mutable struct: keep it in a field and call it through that field (not a copy).
/// </remarks>
public struct ChunkedDecoder
{
    private const int StackLineBytes = 256;

    private enum State : byte
    {
        ChunkSize,
        ChunkData,
        ChunkDataEnd,
        Trailer,
        Done,
    }

    private State _state;
    private long _remaining;
    private int _trailerBytes;

    /// <summary>Readies the decoder for the next body.</summary>
    public void Reset() => this = default;

    /// <summary>True once the last chunk and the trailer section were read.</summary>
    public readonly bool IsComplete => _state == State.Done;

    /// <summary>
    /// Decodes from the start of <paramref name="buffer"/>.
    /// <see cref="ChunkedReadResult.Data"/>: <paramref name="data"/> holds payload (non-empty,
    /// within the current chunk) and <paramref name="consumed"/> is its end; forward it, advance,
    /// call again with the rest. <see cref="ChunkedReadResult.Incomplete"/>: more input is needed;
    /// framing up to <paramref name="consumed"/> was used (examine to the end).
    /// <see cref="ChunkedReadResult.Complete"/>: trailers were added to <paramref name="trailers"/>
    /// (validated and dropped when it is null); <paramref name="consumed"/> is after the final CRLF.
    /// </summary>
    public ChunkedReadResult Read(in ReadOnlySequence<byte> buffer, HttpHead? trailers, Http1Limits limits,
        out ReadOnlySequence<byte> data, out SequencePosition consumed, out HttpParseError error)
    {
        data = default;
        error = HttpParseError.None;
        var rest = buffer;
        while (true)
        {
            switch (_state)
            {
                case State.ChunkData:
                {
                    if (rest.IsEmpty)
                    {
                        consumed = rest.Start;
                        return ChunkedReadResult.Incomplete;
                    }
                    long n = Math.Min(rest.Length, _remaining);
                    data = rest.Slice(0, n);
                    _remaining -= n;
                    if (_remaining == 0)
                    {
                        _state = State.ChunkDataEnd;
                    }
                    consumed = data.End;
                    return ChunkedReadResult.Data;
                }
                case State.ChunkSize:
                {
                    var line = FindLine(rest, out SequencePosition next, out bool found);
                    if (!found)
                    {
                        consumed = rest.Start;
                        // The pending line (and its CR) must still be able to fit.
                        if (rest.Length > limits.MaxChunkLineBytes + 1)
                        {
                            error = HttpParseError.ChunkLineTooLong;
                            return ChunkedReadResult.Error;
                        }
                        return ChunkedReadResult.Incomplete;
                    }
                    if (line.Length - 1 > limits.MaxChunkLineBytes)
                    {
                        consumed = rest.Start;
                        error = HttpParseError.ChunkLineTooLong;
                        return ChunkedReadResult.Error;
                    }
                    error = ParseChunkSizeLine(line, out long size);
                    if (error != HttpParseError.None)
                    {
                        consumed = rest.Start;
                        return ChunkedReadResult.Error;
                    }
                    rest = rest.Slice(next);
                    if (size == 0)
                    {
                        _state = State.Trailer;
                    }
                    else
                    {
                        _remaining = size;
                        _state = State.ChunkData;
                    }
                    break;
                }
                case State.ChunkDataEnd:
                {
                    // RFC 9112 §7.1: chunk-data is followed by CRLF; anything else means the sender
                    // and we disagree about where the chunk ended.
                    if (rest.Length < 2)
                    {
                        consumed = rest.Start;
                        if (!rest.IsEmpty && rest.FirstSpan[0] != CR)
                        {
                            error = rest.FirstSpan[0] == LF ? HttpParseError.BareLF : HttpParseError.InvalidChunkTerminator;
                            return ChunkedReadResult.Error;
                        }
                        return ChunkedReadResult.Incomplete;
                    }
                    Span<byte> crlf = stackalloc byte[2];
                    rest.Slice(0, 2).CopyTo(crlf);
                    if (crlf[0] != CR || crlf[1] != LF)
                    {
                        consumed = rest.Start;
                        error = crlf[0] == LF ? HttpParseError.BareLF : HttpParseError.InvalidChunkTerminator;
                        return ChunkedReadResult.Error;
                    }
                    rest = rest.Slice(2);
                    _state = State.ChunkSize;
                    break;
                }
                case State.Trailer:
                {
                    var line = FindLine(rest, out SequencePosition next, out bool found);
                    if (!found)
                    {
                        consumed = rest.Start;
                        if (rest.Length > 2 && _trailerBytes + rest.Length + 1 > limits.MaxTrailerBytes)
                        {
                            error = HttpParseError.TrailersTooLarge;
                            return ChunkedReadResult.Error;
                        }
                        return ChunkedReadResult.Incomplete;
                    }
                    if (!EndsWithCR(line))
                    {
                        consumed = rest.Start;
                        error = HttpParseError.BareLF;
                        return ChunkedReadResult.Error;
                    }
                    if (line.Length == 1)
                    {
                        rest = rest.Slice(next);
                        _state = State.Done;
                        consumed = rest.Start;
                        return ChunkedReadResult.Complete;
                    }
                    _trailerBytes += (int)Math.Min(line.Length + 1, int.MaxValue - _trailerBytes);
                    if (_trailerBytes > limits.MaxTrailerBytes)
                    {
                        consumed = rest.Start;
                        error = HttpParseError.TrailersTooLarge;
                        return ChunkedReadResult.Error;
                    }
                    error = ReadTrailerLine(line.Slice(0, line.Length - 1), trailers);
                    if (error != HttpParseError.None)
                    {
                        consumed = rest.Start;
                        return ChunkedReadResult.Error;
                    }
                    rest = rest.Slice(next);
                    break;
                }
                default:
                    consumed = buffer.Start;
                    return ChunkedReadResult.Complete;
            }
        }
    }

    /// <summary>The bytes before the next LF (CR included), and the position after the LF.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ReadOnlySequence<byte> FindLine(in ReadOnlySequence<byte> rest, out SequencePosition next, out bool found)
    {
        if (rest.IsSingleSegment)
        {
            int lf = rest.FirstSpan.IndexOf(LF);
            found = lf >= 0;
            next = found ? rest.GetPosition(lf + 1) : default;
            return found ? rest.Slice(0, lf) : default;
        }
        var position = rest.PositionOf(LF);
        found = position.HasValue;
        if (!found)
        {
            next = default;
            return default;
        }
        next = rest.GetPosition(1, position!.Value);
        return rest.Slice(rest.Start, position.Value);
    }

    private static bool EndsWithCR(in ReadOnlySequence<byte> line)
    {
        if (line.IsEmpty)
        {
            return false;
        }
        return line.IsSingleSegment ? line.FirstSpan[^1] == CR : line.Slice(line.Length - 1).FirstSpan[0] == CR;
    }

    private static HttpParseError ParseChunkSizeLine(in ReadOnlySequence<byte> line, out long size)
    {
        if (line.IsSingleSegment)
        {
            return ParseChunkSizeLine(line.FirstSpan, out size);
        }
        return ParseChunkSizeLineMultiSegment(line, out size);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static HttpParseError ParseChunkSizeLineMultiSegment(in ReadOnlySequence<byte> line, out long size)
    {
        int length = (int)line.Length;
        byte[]? rented = null;
        Span<byte> copy = length <= StackLineBytes ? stackalloc byte[StackLineBytes] : (rented = ArrayPool<byte>.Shared.Rent(length));
        copy = copy.Slice(0, length);
        line.CopyTo(copy);
        var error = ParseChunkSizeLine(copy, out size);
        if (rented is not null)
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
        return error;
    }

    /// <summary>chunk-size [ chunk-ext ] CR (the LF already removed).</summary>
    internal static HttpParseError ParseChunkSizeLine(ReadOnlySpan<byte> line, out long size)
    {
        size = 0;
        // RFC 9112 §7.1: the line ends in CRLF; a bare LF is not a line end here either.
        if (line.IsEmpty || line[^1] != CR)
        {
            return HttpParseError.BareLF;
        }
        line = line.Slice(0, line.Length - 1);

        int i = 0;
        for (; i < line.Length; i++)
        {
            int digit = HexValue(line[i]);
            if (digit < 0)
            {
                break;
            }
            // RFC 9112 §7.1: "Recipients MUST anticipate potentially large hexadecimal numerals and
            // prevent parsing errors due to integer conversion overflows or precision loss".
            if (size > (long.MaxValue >> 4))
            {
                return HttpParseError.InvalidChunkSize;
            }
            size = (size << 4) | (uint)digit;
        }
        if (i == 0)
        {
            return HttpParseError.InvalidChunkSize;
        }
        if (i == line.Length)
        {
            return HttpParseError.None;
        }
        if (line[i] != Semicolon && !IsOws(line[i]))
        {
            return line[i] == CR ? HttpParseError.BareCR : HttpParseError.InvalidChunkSize;
        }
        return ValidateChunkExtensions(line.Slice(i));
    }

    /// <summary>chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ).</summary>
    private static HttpParseError ValidateChunkExtensions(ReadOnlySpan<byte> ext)
    {
        int i = 0;
        while (i < ext.Length)
        {
            i = SkipOws(ext, i);
            if (i == ext.Length || ext[i] != Semicolon)
            {
                return i < ext.Length && ext[i] == CR ? HttpParseError.BareCR : HttpParseError.InvalidChunkExtension;
            }
            i = SkipOws(ext, i + 1);
            int nameLength = ext.Slice(i).IndexOfAnyExcept(TChar);
            nameLength = nameLength < 0 ? ext.Length - i : nameLength;
            if (nameLength == 0)
            {
                return HttpParseError.InvalidChunkExtension;
            }
            i += nameLength;
            int afterName = SkipOws(ext, i);
            if (afterName == ext.Length || ext[afterName] != (byte)'=')
            {
                continue;
            }
            i = SkipOws(ext, afterName + 1);
            if (i == ext.Length)
            {
                return HttpParseError.InvalidChunkExtension;
            }
            if (ext[i] == (byte)'"')
            {
                int end = QuotedStringEnd(ext, i);
                if (end < 0)
                {
                    return HttpParseError.InvalidChunkExtension;
                }
                i = end;
            }
            else
            {
                int valueLength = ext.Slice(i).IndexOfAnyExcept(TChar);
                valueLength = valueLength < 0 ? ext.Length - i : valueLength;
                if (valueLength == 0)
                {
                    return HttpParseError.InvalidChunkExtension;
                }
                i += valueLength;
            }
        }
        return HttpParseError.None;
    }

    /// <summary>
    /// RFC 9110 §5.6.4: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE;
    /// qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text; quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ).
    /// Returns the index after the closing quote, or -1.
    /// </summary>
    private static int QuotedStringEnd(ReadOnlySpan<byte> s, int open)
    {
        for (int i = open + 1; i < s.Length; i++)
        {
            byte b = s[i];
            if (b == (byte)'"')
            {
                return i + 1;
            }
            if (b == (byte)'\\')
            {
                i++;
                if (i == s.Length || (s[i] < 0x20 && s[i] != HTAB) || s[i] == 0x7F)
                {
                    return -1;
                }
            }
            else if ((b < 0x20 && b != HTAB) || b == 0x7F)
            {
                return -1;
            }
        }
        return -1;
    }

    private static int SkipOws(ReadOnlySpan<byte> s, int i)
    {
        while (i < s.Length && IsOws(s[i]))
        {
            i++;
        }
        return i;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int HexValue(byte b)
    {
        uint d = (uint)(b - '0');
        if (d <= 9)
        {
            return (int)d;
        }
        uint l = (uint)((b | 0x20) - 'a');
        return l <= 5 ? (int)l + 10 : -1;
    }

    /// <summary>One trailer field line (CRLF removed): validated like a header field, added when <paramref name="trailers"/> is given.</summary>
    private static HttpParseError ReadTrailerLine(in ReadOnlySequence<byte> line, HttpHead? trailers)
    {
        int length = (int)line.Length;
        if (trailers is not null)
        {
            // Copy into the arena first (needed anyway to keep the field), then validate in place.
            int arenaBase = trailers.ArenaUsed;
            var dst = trailers.Reserve(length, out _);
            line.CopyTo(dst);
            var error = Http1Parser.ParseFieldLine(dst, tolerateSpaceBeforeColon: false, out int nameLength, out int valueStart, out int valueLength);
            if (error != HttpParseError.None)
            {
                trailers.Unreserve(length);
                return error;
            }
            trailers.AddHeader(new ByteRange(arenaBase, nameLength), new ByteRange(arenaBase + valueStart, valueLength),
                KnownHeaders.Classify(dst.Slice(0, nameLength)));
            return HttpParseError.None;
        }
        if (line.IsSingleSegment)
        {
            return Http1Parser.ParseFieldLine(line.FirstSpan, tolerateSpaceBeforeColon: false, out _, out _, out _);
        }
        byte[] rented = ArrayPool<byte>.Shared.Rent(length);
        line.CopyTo(rented);
        var result = Http1Parser.ParseFieldLine(rented.AsSpan(0, length), tolerateSpaceBeforeColon: false, out _, out _, out _);
        ArrayPool<byte>.Shared.Return(rented);
        return result;
    }
}
