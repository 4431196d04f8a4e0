using System.Buffers;

namespace ProxyCore.Llm.Gateway;

/// <summary>
/// Cuts a byte stream into whole SSE events (each ending with its blank line, WHATWG HTML §9.2.6:
/// LF LF, CR LF CR LF or CR CR), so the relay can forward, meter or drop one event at a time. Bytes
/// of an event still arriving wait here; an event larger than <see cref="MaxEventBytes"/> is
/// released as it is rather than held (the stage never buffers more than one event).
/// </summary>
internal sealed class SseEventSplitter
{
    public const int MaxEventBytes = Sse.SseReader.DefaultMaxEventBytes;

#if DEBUG
    private const int InitialSize = 16; // growth and compaction run in every test
#else
    private const int InitialSize = 4096;
#endif

    private byte[] _buffer = new byte[InitialSize];
    private int _start;   // first byte not yet handed out
    private int _end;     // end of the bytes held
    private int _scan;    // where the search for the next boundary resumes

    public int Pending => _end - _start;

    public void Append(in ReadOnlySequence<byte> data)
    {
        int needed = _end + (int)data.Length;
        if (needed > _buffer.Length)
        {
            int held = _end - _start;
            if (_start > 0 && held + data.Length <= _buffer.Length)
            {
                Compact();
            }
            else
            {
                var larger = new byte[Math.Max(_buffer.Length * 2, held + (int)data.Length)];
                _buffer.AsSpan(_start, held).CopyTo(larger);
                _scan -= _start;
                _start = 0;
                _end = held;
                _buffer = larger;
            }
        }
        data.CopyTo(_buffer.AsSpan(_end));
        _end += (int)data.Length;
    }

    /// <summary>The next complete event (with its terminating blank line), valid until <see cref="Compact"/>.</summary>
    public bool TryTakeEvent(out ReadOnlyMemory<byte> sseEvent)
    {
        var span = _buffer.AsSpan(0, _end);
        for (int i = Math.Max(_scan, _start); i < _end; i++)
        {
            byte b = span[i];
            if (b != (byte)'\n' && b != (byte)'\r')
            {
                continue;
            }
            int boundary = BoundaryEnd(span, i);
            if (boundary > 0)
            {
                sseEvent = _buffer.AsMemory(_start, boundary - _start);
                _start = boundary;
                _scan = boundary;
                return true;
            }
            if (boundary < 0)
            {
                _scan = i; // a line end at the edge of what arrived: look again with more bytes
                sseEvent = default;
                return false;
            }
        }
        _scan = _end;
        if (_end - _start > MaxEventBytes)
        {
            // Over the event bound: pass the bytes on as they are (the meter skips what it cannot hold).
            sseEvent = _buffer.AsMemory(_start, _end - _start);
            _start = _end;
            return true;
        }
        sseEvent = default;
        return false;
    }

    /// <summary>End of the blank line starting a line end at <paramref name="i"/>; 0 when it is not a blank line, -1 when more bytes are needed to tell.</summary>
    private static int BoundaryEnd(ReadOnlySpan<byte> span, int i)
    {
        // A line end: LF, CR LF or CR. A blank line follows when another line end comes right after.
        int next;
        if (span[i] == (byte)'\r')
        {
            if (i + 1 >= span.Length)
            {
                return -1;
            }
            next = span[i + 1] == (byte)'\n' ? i + 2 : i + 1;
        }
        else
        {
            next = i + 1;
        }
        if (next >= span.Length)
        {
            return -1;
        }
        if (span[next] == (byte)'\n')
        {
            return next + 1;
        }
        if (span[next] == (byte)'\r')
        {
            if (next + 1 >= span.Length)
            {
                return -1;
            }
            return span[next + 1] == (byte)'\n' ? next + 2 : next + 1;
        }
        return 0;
    }

    /// <summary>What is left after the body ended (an event without its blank line).</summary>
    public ReadOnlyMemory<byte> TakeRest()
    {
        var rest = _buffer.AsMemory(_start, _end - _start);
        _start = _end;
        return rest;
    }

    /// <summary>Moves the bytes still held to the front; events handed out before are no longer valid.</summary>
    public void Compact()
    {
        int held = _end - _start;
        if (_start > 0)
        {
            _buffer.AsSpan(_start, held).CopyTo(_buffer);
            _scan -= _start;
            _end = held;
            _start = 0;
        }
    }
}
