using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ProxyCore.Llm.Sse;

/// <summary>
/// An incremental reader of the <c>text/event-stream</c> format (WHATWG HTML §9.2, "Server-sent
/// events") that watches a response body pass through the proxy without holding it: it takes in every
/// byte of every chunk it is handed, whatever the split (inside a field name, inside a UTF-8 sequence,
/// between CR and LF), and reports each complete event to a handler.
/// </summary>
/// <remarks>
/// <para>The grammar (§9.2.5 "Parsing an event stream"):</para>
/// <code>
/// stream        = [ bom ] *event
/// event         = *( comment / field ) end-of-line
/// comment       = colon *any-char end-of-line
/// field         = 1*name-char [ colon [ space ] *any-char ] end-of-line
/// end-of-line   = ( cr lf / cr / lf )
/// bom           = %xFEFF ; U+FEFF BYTE ORDER MARK
/// </code>
/// <para>
/// The caller forwards and releases its bytes as usual: the reader never asks for them again. An
/// event whose lines all lie in one span is reported as slices of that span (no copy). Only what is
/// cut by the end of a span (a partial line, the fields of an unfinished event) and data of several
/// lines (which must be joined with LF) are copied, into buffers reused for the life of the reader
/// and bounded by <see cref="MaxEventBytes"/>.
/// </para>
/// <para>
/// Bytes are not decoded: CR, LF and ':' never occur inside a multi-byte UTF-8 sequence, so splitting
/// on them is the same as splitting the decoded text, and invalid UTF-8 reaches the handler as sent
/// (the spec would show U+FFFD; the JSON reader behind us rejects it instead).
/// </para>
/// </remarks>
public sealed class SseReader
{
    /// <summary>
    /// 1 MiB. The largest events providers send are the final ones that echo the whole answer
    /// (Responses' <c>response.completed</c>, a cached Chat completion replayed in one chunk); a long
    /// answer is well under this, and a peer that never sends a blank line cannot make us hold more.
    /// </summary>
    public const int DefaultMaxEventBytes = 1 << 20;

    private const byte CR = (byte)'\r';
    private const byte LF = (byte)'\n';
    private const byte Colon = (byte)':';
    private const byte Space = (byte)' ';
    private const byte Nul = 0;

    /// <summary>U+FEFF in UTF-8.</summary>
    private static ReadOnlySpan<byte> Bom => [0xEF, 0xBB, 0xBF];

    private static ReadOnlySpan<byte> DataField => "data"u8;
    private static ReadOnlySpan<byte> EventField => "event"u8;
    private static ReadOnlySpan<byte> IdField => "id"u8;
    private static ReadOnlySpan<byte> RetryField => "retry"u8;

    private readonly int _maxEventBytes;

    // Owned copies, used only when the bytes cannot be handed out as a slice of the caller's span.
    private SseByteBuffer _line;   // a line cut by the end of a span
    private SseByteBuffer _type;   // the event type buffer, once it had to outlive its span
    private SseByteBuffer _data;   // the data buffer, once it had to outlive its span or join lines
    private SseByteBuffer _id;     // the last event ID buffer: it persists across events

    // The event being built. While a field's bytes lie in the current span it is kept as offsets
    // into it; at the end of each span whatever is still referenced is copied ("spilled").
    private int _typeStart;
    private int _typeLength;
    private bool _typeOwned;
    private int _dataStart;
    private int _dataLength;
    private int _dataLines;
    private bool _dataOwned;
    private long _retry = -1;

    private long _reconnectionTime = -1;
    private long _eventBytes;       // bytes of the current event's lines so far, end-of-lines not counted
    private byte _bomMatched;
    private bool _bomDone;
    private bool _afterCR;          // the last span ended with CR: an LF first in the next one ends nothing
    private bool _tooLarge;

    /// <summary>Creates a reader; <paramref name="maxEventBytes"/> bounds one event (see <see cref="MaxEventBytes"/>).</summary>
    public SseReader(int maxEventBytes = DefaultMaxEventBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxEventBytes);
        _maxEventBytes = maxEventBytes;
    }

    /// <summary>
    /// The most bytes one event may take, counting the lines from the previous blank line to its own
    /// (comments and unknown fields included, end-of-line bytes not). Default <see cref="DefaultMaxEventBytes"/>.
    /// It bounds the memory the reader may hold for one stream; past it, <see cref="SseReadStatus.EventTooLarge"/>.
    /// </summary>
    public int MaxEventBytes => _maxEventBytes;

    /// <summary>
    /// True when bytes of an event (or of a line) were taken in but its blank line has not come yet.
    /// At the end of the body such an event is discarded, as §9.2.6 says; a caller that expected a
    /// terminal event reads this as a cut stream.
    /// </summary>
    public bool HasPendingEvent => _eventBytes > 0 || _line.Length > 0 || (!_bomDone && _bomMatched > 0);

    /// <summary>The reconnection time (ms) from the last valid <c>retry</c> field, or -1.</summary>
    public long ReconnectionTime => _reconnectionTime;

    /// <summary>The last event ID buffer.</summary>
    public ReadOnlySpan<byte> LastEventId => _id.Span;

    /// <summary>Readies the reader for a new stream, keeping its buffers.</summary>
    public void Reset()
    {
        _line.Clear();
        _id.Clear();
        _reconnectionTime = -1;
        _bomMatched = 0;
        _bomDone = false;
        _afterCR = false;
        _tooLarge = false;
        ResetEvent();
    }

    /// <summary>Takes in the next chunk of the body, whatever its segments.</summary>
    public SseReadStatus Read<THandler>(in ReadOnlySequence<byte> chunk, ref THandler handler)
        where THandler : ISseEventHandler, allows ref struct
    {
        if (chunk.IsSingleSegment)
        {
            return Read(chunk.FirstSpan, ref handler);
        }
        return ReadMultiSegment(chunk, ref handler);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private SseReadStatus ReadMultiSegment<THandler>(in ReadOnlySequence<byte> chunk, ref THandler handler)
        where THandler : ISseEventHandler, allows ref struct
    {
        foreach (var segment in chunk)
        {
            var status = Read(segment.Span, ref handler);
            if (status != SseReadStatus.Ok)
            {
                return status;
            }
        }
        return SseReadStatus.Ok;
    }

    /// <summary>
    /// Takes in the next chunk of the body: dispatches every event completed in it to
    /// <paramref name="handler"/>, and keeps what is left for the next call. Never holds a reference
    /// to <paramref name="chunk"/> after it returns.
    /// </summary>
    public SseReadStatus Read<THandler>(ReadOnlySpan<byte> chunk, ref THandler handler)
        where THandler : ISseEventHandler, allows ref struct
    {
        if (_tooLarge)
        {
            return SseReadStatus.EventTooLarge;
        }
        int pos = 0;
        if (!_bomDone)
        {
            // §9.2.5: "One leading U+FEFF BYTE ORDER MARK character must be ignored if any are present."
            pos = SkipBom(chunk);
            if (!_bomDone)
            {
                return SseReadStatus.Ok;
            }
        }
        if (_afterCR && pos < chunk.Length)
        {
            // "end-of-line = ( cr lf / cr / lf )": the CR already ended the line; its LF ends nothing.
            _afterCR = false;
            if (chunk[pos] == LF)
            {
                pos++;
            }
        }
        if (_line.Length > 0)
        {
            pos = FinishCutLine(chunk, pos, ref handler);
            if (pos < 0)
            {
                return _tooLarge ? SseReadStatus.EventTooLarge : SseReadStatus.Ok;
            }
        }
        while (pos < chunk.Length)
        {
            int length = chunk.Slice(pos).IndexOfAny(CR, LF);
            if (length < 0)
            {
                if (!HoldCutLine(chunk.Slice(pos)))
                {
                    return SseReadStatus.EventTooLarge;
                }
                break;
            }
            if (!ProcessLine(chunk, pos, length, transient: false, ref handler))
            {
                return SseReadStatus.EventTooLarge;
            }
            pos = SkipEndOfLine(chunk, pos + length);
        }
        Spill(chunk);
        return SseReadStatus.Ok;
    }

    /// <summary>Consumes BOM bytes at the start of the stream; returns where the stream's text begins.</summary>
    private int SkipBom(ReadOnlySpan<byte> chunk)
    {
        int pos = 0;
        while (pos < chunk.Length)
        {
            if (chunk[pos] != Bom[_bomMatched])
            {
                _bomDone = true;
                if (_bomMatched > 0)
                {
                    // Not a BOM after all: the bytes taken for one begin the first line. They were
                    // consumed already (possibly from an earlier span), so they go to the line buffer.
                    _line.Append(Bom.Slice(0, _bomMatched));
                }
                return pos;
            }
            pos++;
            if (++_bomMatched == Bom.Length)
            {
                _bomDone = true;
                return pos;
            }
        }
        return pos;
    }

    /// <summary>Completes the line held from the last span; -1 when this span does not end it either.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int FinishCutLine<THandler>(ReadOnlySpan<byte> chunk, int pos, ref THandler handler)
        where THandler : ISseEventHandler, allows ref struct
    {
        var rest = chunk.Slice(pos);
        int length = rest.IndexOfAny(CR, LF);
        if (length < 0)
        {
            HoldCutLine(rest);
            return -1;
        }
        if (!HoldCutLine(rest.Slice(0, length)))
        {
            return -1;
        }
        // The assembled line is not empty (a cut line never is), so it cannot dispatch: no slice of
        // `chunk` is referenced by the event when this returns.
        bool ok = ProcessLine(_line.Span, 0, _line.Length, transient: true, ref handler);
        _line.Clear();
        return ok ? SkipEndOfLine(chunk, pos + length) : -1;
    }

    /// <summary>Keeps bytes of a line that the span does not end; false when the event got too large.</summary>
    private bool HoldCutLine(ReadOnlySpan<byte> bytes)
    {
        if (_eventBytes + _line.Length + bytes.Length > _maxEventBytes)
        {
            _tooLarge = true;
            return false;
        }
        _line.Append(bytes);
        return true;
    }

    /// <summary><paramref name="end"/> is at a CR or LF; returns the position after the end-of-line.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int SkipEndOfLine(ReadOnlySpan<byte> chunk, int end)
    {
        Debug.Assert(chunk[end] is CR or LF);
        if (chunk[end] == CR)
        {
            if (end + 1 == chunk.Length)
            {
                _afterCR = true;
            }
            else if (chunk[end + 1] == LF)
            {
                return end + 2;
            }
        }
        return end + 1;
    }

    /// <summary>
    /// Applies one line (§9.2.6 "Interpreting an event stream"). <paramref name="transient"/>: the
    /// line lives in the reader's own line buffer, so field values must be copied, not referenced.
    /// </summary>
    private bool ProcessLine<THandler>(ReadOnlySpan<byte> buffer, int start, int length, bool transient, ref THandler handler)
        where THandler : ISseEventHandler, allows ref struct
    {
        // "If the line is empty (a blank line): Dispatch the event."
        if (length == 0)
        {
            Debug.Assert(!transient);
            Dispatch(buffer, ref handler);
            return true;
        }
        _eventBytes += length;
        if (_eventBytes > _maxEventBytes)
        {
            _tooLarge = true;
            return false;
        }
        var line = buffer.Slice(start, length);
        // "If the line starts with a U+003A COLON character (:): Ignore the line."
        if (line[0] == Colon)
        {
            return true;
        }
        // "If the line contains a U+003A COLON character: Collect the characters on the line before
        // the first U+003A COLON character, and let field be that string. Collect the characters on
        // the line after the first U+003A COLON character, and let value be that string. If value
        // starts with a U+0020 SPACE character, remove it from value."
        // "Otherwise, the string is not empty but does not contain a U+003A COLON character: use the
        // whole line as the field name, and the empty string as the field value."
        int colon = line.IndexOf(Colon);
        ReadOnlySpan<byte> name;
        int valueOffset;
        if (colon < 0)
        {
            name = line;
            valueOffset = length;
        }
        else
        {
            name = line.Slice(0, colon);
            valueOffset = colon + 1;
            if (valueOffset < length && line[valueOffset] == Space)
            {
                valueOffset++;
            }
        }
        int valueStart = start + valueOffset;
        int valueLength = length - valueOffset;

        if (name.SequenceEqual(DataField))
        {
            AppendData(buffer, valueStart, valueLength, transient);
        }
        else if (name.SequenceEqual(EventField))
        {
            // "If the field name is "event": Set the event type buffer to the field value."
            if (transient)
            {
                _type.Set(buffer.Slice(valueStart, valueLength));
                _typeOwned = true;
            }
            else
            {
                _typeStart = valueStart;
                _typeLength = valueLength;
                _typeOwned = false;
            }
        }
        else if (name.SequenceEqual(IdField))
        {
            // "If the field value does not contain U+0000 NULL, then set the last event ID buffer to
            // the field value. Otherwise, ignore the field." It outlives the event, so it is copied.
            var value = buffer.Slice(valueStart, valueLength);
            if (!value.Contains(Nul))
            {
                _id.Set(value);
            }
        }
        else if (name.SequenceEqual(RetryField))
        {
            // "If the field value consists of only ASCII digits, then interpret the field value as an
            // integer in base ten, and set the event stream's reconnection time to that integer.
            // Otherwise, ignore the field." (Empty, or too large for a long: ignored.)
            if (TryParseDigits(buffer.Slice(valueStart, valueLength), out long retry))
            {
                _retry = retry;
                _reconnectionTime = retry;
            }
        }
        // "Otherwise: The field is ignored."
        return true;
    }

    /// <summary>"If the field name is "data": Append the field value to the data buffer, then append a single U+000A LINE FEED (LF) character."</summary>
    private void AppendData(ReadOnlySpan<byte> buffer, int valueStart, int valueLength, bool transient)
    {
        if (_dataLines == 0 && !transient)
        {
            // The common case: one data line, handed out as a slice of the caller's span.
            _dataStart = valueStart;
            _dataLength = valueLength;
        }
        else
        {
            if (!_dataOwned)
            {
                _data.Clear();
                if (_dataLines > 0)
                {
                    _data.Append(buffer.Slice(_dataStart, _dataLength));
                }
                _dataOwned = true;
            }
            // The LF goes between lines rather than after each: the same as appending it after each
            // and removing the last one at dispatch.
            if (_dataLines > 0)
            {
                _data.Append(LF);
            }
            _data.Append(buffer.Slice(valueStart, valueLength));
        }
        _dataLines++;
    }

    private void Dispatch<THandler>(ReadOnlySpan<byte> buffer, ref THandler handler)
        where THandler : ISseEventHandler, allows ref struct
    {
        // §9.2.6 "Dispatch the event": "If the data buffer is an empty string, set the data buffer
        // and the event type buffer to the empty string and return." It is empty only when no data
        // line came: a lone "data:" leaves a single LF in it, and dispatches an empty string.
        if (_dataLines > 0)
        {
            var data = _dataOwned ? _data.Span : buffer.Slice(_dataStart, _dataLength);
            var type = _typeOwned ? _type.Span : buffer.Slice(_typeStart, _typeLength);
            handler.OnEvent(new SseEvent(type, data, _id.Span, _retry));
        }
        ResetEvent();
    }

    /// <summary>At the end of a span, copies the fields that still point into it.</summary>
    private void Spill(ReadOnlySpan<byte> chunk)
    {
        if (_dataLines > 0 && !_dataOwned)
        {
            _data.Set(chunk.Slice(_dataStart, _dataLength));
            _dataOwned = true;
        }
        if (!_typeOwned)
        {
            if (_typeLength > 0)
            {
                _type.Set(chunk.Slice(_typeStart, _typeLength));
                _typeOwned = true;
            }
            else
            {
                // An empty type ("event:" or none) must not keep an offset into a span now gone.
                _typeStart = 0;
            }
        }
    }

    private void ResetEvent()
    {
        _typeStart = 0;
        _typeLength = 0;
        _typeOwned = false;
        _type.Clear();
        _dataStart = 0;
        _dataLength = 0;
        _dataLines = 0;
        _dataOwned = false;
        _data.Clear();
        _retry = -1;
        _eventBytes = 0;
    }

    private static bool TryParseDigits(ReadOnlySpan<byte> value, out long result)
    {
        result = 0;
        if (value.IsEmpty)
        {
            return false;
        }
        foreach (byte b in value)
        {
            uint digit = (uint)(b - '0');
            if (digit > 9 || result > (long.MaxValue - digit) / 10)
            {
                result = 0;
                return false;
            }
            result = result * 10 + digit;
        }
        return true;
    }
}
