using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ProxyCore.Http;

/// <summary>A slice of a head's byte arena: offsets, not strings, so nothing is allocated per request.</summary>
public readonly record struct ByteRange(int Offset, int Length)
{
    public static readonly ByteRange Empty = default;
    public bool IsEmpty => Length == 0;
}

/// <summary>One header field: name and value as ranges of the owning head's arena.</summary>
public readonly record struct HeaderEntry(ByteRange Name, ByteRange Value, KnownHeader Id);

/// <summary>
/// The protocol-neutral part shared by request and response heads: a byte arena holding every
/// byte the head refers to (the raw HTTP/1.1 head copied once, or HPACK-decoded strings), and the
/// ordered header list as ranges of it. Instances are pooled per connection and <see cref="Reset"/>
/// between messages; the arena grows by renting a larger array and keeps offsets valid.
/// </summary>
public abstract class HttpHead
{
    private const int InitialArenaSize = 1024;
    private const int InitialHeaderCapacity = 16;

    private byte[] _arena = Array.Empty<byte>();
    private int _arenaUsed;
    // Rented on the first header and returned by ReleaseMemory, like the arena: a head that is never
    // used (trailers, the HTTP/2 upstream field list of an HTTP/1.1 route) or an idle connection's
    // heads hold no array.
    private HeaderEntry[] _headers = Array.Empty<HeaderEntry>();
    private static readonly HeadArrayPool<byte> s_arenas = new(InitialArenaSize);
    private static readonly HeadArrayPool<HeaderEntry> s_headerLists = new(InitialHeaderCapacity);
    private int _headerCount;

    /// <summary>Everything written to the arena so far.</summary>
    public ReadOnlySpan<byte> ArenaSpan => _arena.AsSpan(0, _arenaUsed);

    public int ArenaUsed => _arenaUsed;

    public int HeaderCount => _headerCount;

    public ReadOnlySpan<HeaderEntry> Headers => _headers.AsSpan(0, _headerCount);

    /// <summary>Body framing as the head declares it (set by the protocol parser).</summary>
    public BodyFraming Framing { get; set; }

    /// <summary>Declared Content-Length, or -1 when absent.</summary>
    public long ContentLength { get; set; } = -1;

    public HttpVersion Version { get; set; } = HttpVersion.Http11;

    /// <summary>True when the connection may carry another message after this one.</summary>
    public bool KeepAlive { get; set; } = true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> Get(ByteRange range) => _arena.AsSpan(range.Offset, range.Length);

    public ReadOnlySpan<byte> GetName(int index) => Get(_headers[index].Name);

    public ReadOnlySpan<byte> GetValue(int index) => Get(_headers[index].Value);

    /// <summary>Copies <paramref name="bytes"/> to the arena and returns where they are.</summary>
    public ByteRange Append(ReadOnlySpan<byte> bytes)
    {
        var span = Reserve(bytes.Length, out var range);
        bytes.CopyTo(span);
        return range;
    }

    /// <summary>Copies a (possibly multi-segment) sequence to the arena.</summary>
    public ByteRange Append(in ReadOnlySequence<byte> bytes)
    {
        var span = Reserve(checked((int)bytes.Length), out var range);
        bytes.CopyTo(span);
        return range;
    }

    /// <summary>Reserves <paramref name="length"/> bytes of arena for the caller to fill.</summary>
    public Span<byte> Reserve(int length, out ByteRange range)
    {
        if (_arena.Length - _arenaUsed < length)
        {
            Grow(length);
        }
        range = new ByteRange(_arenaUsed, length);
        var span = _arena.AsSpan(_arenaUsed, length);
        _arenaUsed += length;
        return span;
    }

    /// <summary>Gives back the tail of the arena that <see cref="Reserve"/> took but the caller did not use.</summary>
    public void Unreserve(int length)
    {
        Debug.Assert(length >= 0 && length <= _arenaUsed);
        _arenaUsed -= length;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Grow(int needed)
    {
        if (_arena.Length == 0 && needed <= InitialArenaSize)
        {
            _arena = s_arenas.Rent(); // the first rent of a message (heads give their arrays back while idle): nothing to copy
            return;
        }
        int size = Math.Max(InitialArenaSize, _arena.Length * 2);
        while (size - _arenaUsed < needed)
        {
            size *= 2;
        }
        var bigger = size == InitialArenaSize ? s_arenas.Rent() : ArrayPool<byte>.Shared.Rent(size);
        _arena.AsSpan(0, _arenaUsed).CopyTo(bigger);
        ReturnArena(_arena);
        _arena = bigger;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void GrowHeaders()
    {
        if (_headers.Length == 0)
        {
            _headers = s_headerLists.Rent();
            return;
        }
        var bigger = _headers.Length == 0 ? s_headerLists.Rent() : ArrayPool<HeaderEntry>.Shared.Rent(_headers.Length * 2);
        _headers.AsSpan(0, _headerCount).CopyTo(bigger);
        ReturnHeaders(_headers);
        _headers = bigger;
    }

    /// <summary>Adds a header whose bytes are already in the arena.</summary>
    public void AddHeader(ByteRange name, ByteRange value, KnownHeader id)
    {
        if (_headerCount == _headers.Length)
        {
            GrowHeaders();
        }
        _headers[_headerCount++] = new HeaderEntry(name, value, id);
    }

    /// <summary>Copies a header into the arena and adds it (transforms, HPACK, X-Forwarded-*).</summary>
    public void AddHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        var n = Append(name);
        var v = Append(value);
        AddHeader(n, v, KnownHeaders.Classify(name));
    }

    public void RemoveHeaderAt(int index)
    {
        Debug.Assert((uint)index < (uint)_headerCount);
        Array.Copy(_headers, index + 1, _headers, index, _headerCount - index - 1);
        _headerCount--;
    }

    /// <summary>Removes every header with this id; returns how many were removed.</summary>
    public int RemoveHeaders(KnownHeader id)
    {
        int removed = 0;
        for (int i = _headerCount - 1; i >= 0; i--)
        {
            if (_headers[i].Id == id)
            {
                RemoveHeaderAt(i);
                removed++;
            }
        }
        return removed;
    }

    /// <summary>Index of the first header with this id, or -1.</summary>
    public int IndexOf(KnownHeader id)
    {
        var headers = Headers;
        for (int i = 0; i < headers.Length; i++)
        {
            if (headers[i].Id == id)
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>Index of the first header whose name equals <paramref name="name"/> ignoring ASCII case, or -1.</summary>
    public int IndexOf(ReadOnlySpan<byte> name)
    {
        var headers = Headers;
        for (int i = 0; i < headers.Length; i++)
        {
            if (System.Text.Ascii.EqualsIgnoreCase(Get(headers[i].Name), name))
            {
                return i;
            }
        }
        return -1;
    }

    public bool TryGetValue(KnownHeader id, out ReadOnlySpan<byte> value)
    {
        int i = IndexOf(id);
        value = i >= 0 ? Get(_headers[i].Value) : default;
        return i >= 0;
    }

    public bool TryGetValue(ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value)
    {
        int i = IndexOf(name);
        value = i >= 0 ? Get(_headers[i].Value) : default;
        return i >= 0;
    }

    /// <summary>Clears the head for the next message; the arena is kept for reuse.</summary>
    public virtual void Reset()
    {
        _arenaUsed = 0;
        _headerCount = 0;
        Framing = BodyFraming.None;
        ContentLength = -1;
        Version = HttpVersion.Http11;
        KeepAlive = true;
    }

    /// <summary>Returns the arena and the header list to their pools (an idle connection holds no buffers).</summary>
    public void ReleaseMemory()
    {
        Reset();
        ReturnArena(_arena);
        _arena = Array.Empty<byte>();
        ReturnHeaders(_headers);
        _headers = Array.Empty<HeaderEntry>();
    }

    private static void ReturnArena(byte[] arena)
    {
        if (arena.Length == InitialArenaSize)
        {
            s_arenas.Return(arena);
        }
        else if (arena.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(arena);
        }
    }

    private static void ReturnHeaders(HeaderEntry[] headers)
    {
        if (headers.Length == InitialHeaderCapacity)
        {
            s_headerLists.Return(headers);
        }
        else if (headers.Length > 0)
        {
            ArrayPool<HeaderEntry>.Shared.Return(headers);
        }
    }
}

/// <summary>How a message body is delimited (RFC 9112 §6).</summary>
public enum BodyFraming : byte
{
    /// <summary>No body (or a zero Content-Length).</summary>
    None,
    /// <summary>Exactly <see cref="HttpHead.ContentLength"/> bytes.</summary>
    ContentLength,
    /// <summary>Transfer-Encoding: chunked, possibly with trailers.</summary>
    Chunked,
    /// <summary>Response body that ends when the connection closes (HTTP/1.x responses only).</summary>
    CloseDelimited,
    /// <summary>HTTP/2 DATA frames until END_STREAM.</summary>
    Stream,
}

public enum HttpVersion : byte
{
    Http10,
    Http11,
    Http2,
}
