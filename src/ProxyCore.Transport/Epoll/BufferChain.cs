using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ProxyCore.Transport.Epoll;

/// <summary>One pooled buffer in a chain of them: the bytes written into it are what the chain's sequence shows.</summary>
internal sealed class BufferSegment : ReadOnlySequenceSegment<byte>
{
    private IMemoryOwner<byte>? _owner;
    private Memory<byte> _buffer;
    private int _length;

    /// <summary>Bytes written so far.</summary>
    public int Length => _length;

    public int Free => _buffer.Length - _length;

    public Memory<byte> FreeMemory => _buffer.Slice(_length);

    public Span<byte> FreeSpan => _buffer.Span.Slice(_length);

    public BufferSegment? NextSegment => Unsafe.As<BufferSegment?>(Next);

    public ReadOnlySpan<byte> Written(int start) => _buffer.Span.Slice(start, _length - start);

    /// <summary>Pins bytes from <paramref name="start"/> on (the pool's blocks are pinned already: no GC handle).</summary>
    public MemoryHandle Pin(int start) => _owner!.Memory.Slice(start).Pin();

    public void Attach(IMemoryOwner<byte> owner, long runningIndex)
    {
        _owner = owner;

        // An array-backed Memory makes each Span a field read; the pool's block would make it a virtual call.
        if (owner is BlockMemoryPool.Block block)
        {
            _buffer = block.ArrayMemory;
        }
        else
        {
            var memory = owner.Memory;
            _buffer = MemoryMarshal.TryGetArray<byte>(memory, out var array) ? array.AsMemory() : memory;
        }
        _length = 0;
        RunningIndex = runningIndex;
        Memory = default;
        Next = null;
    }

    public void Commit(int count)
    {
        _length += count;
        Memory = _buffer.Slice(0, _length);
    }

    public void SetNext(BufferSegment? next) => Next = next;

    /// <summary>Gives the buffer back to its pool.</summary>
    public void Release()
    {
        var owner = _owner;
        _owner = null;
        _buffer = default;
        _length = 0;
        Memory = default;
        Next = null;
        owner?.Dispose();
    }
}

/// <summary>
/// The buffers of one direction of one connection, oldest first, and a few spare segment objects (their buffers
/// go back to the pool as soon as they are done with, so an idle connection holds no buffer, only these).
/// Not thread-safe: one reader or one writer owns it.
/// </summary>
internal struct BufferChain
{
    private const int MaxSpares = 4;

    public BufferSegment? Head;
    public BufferSegment? Tail;

    /// <summary>Where the chain's unread (or unsent) bytes start in <see cref="Head"/>.</summary>
    public int HeadStart;

    private BufferSegment? _spare;
    private int _spares;

    /// <summary>A new last buffer of at least <paramref name="size"/> bytes.</summary>
    public BufferSegment Append(MemoryPool<byte> pool, int size)
    {
        var segment = _spare;
        if (segment is not null)
        {
            _spare = segment.NextSegment;
            _spares--;
        }
        else
        {
            segment = new BufferSegment();
        }
        var tail = Tail;
        segment.Attach(pool.Rent(size), tail is null ? 0 : tail.RunningIndex + tail.Length);
        if (tail is null)
        {
            Head = segment;
            HeadStart = 0;
        }
        else
        {
            tail.SetNext(segment);
        }
        Tail = segment;
        return segment;
    }

    /// <summary>The chain's bytes from <see cref="HeadStart"/> on (default when empty).</summary>
    public readonly ReadOnlySequence<byte> Sequence => Head is null ? default : new ReadOnlySequence<byte>(Head, HeadStart, Tail!, Tail!.Length);

    /// <summary>Drops the buffers before <paramref name="segment"/>, which then starts at <paramref name="index"/>.</summary>
    public void TrimTo(BufferSegment segment, int index)
    {
        var head = Head;
        while (head != segment)
        {
            if (head is null)
            {
                Tail = null;
                throw new InvalidOperationException("The position is not in the buffer.");
            }
            var next = head.NextSegment;
            Recycle(head);
            Head = head = next;
            HeadStart = 0;
        }
        if ((uint)index > (uint)head.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(index));
        }
        if (index == head.Length && (head == Tail || head.NextSegment is null))
        {
            Clear(); // all of it: the buffers go back to the pool
            return;
        }
        if (index == head.Length)
        {
            var next = head.NextSegment!;
            Recycle(head);
            head = next;
            index = 0;
        }
        Head = head;
        HeadStart = index;
    }

    /// <summary>Gives every buffer back.</summary>
    public void Clear()
    {
        var segment = Head;
        while (segment is not null)
        {
            var next = segment.NextSegment;
            Recycle(segment);
            segment = next;
        }
        Head = Tail = null;
        HeadStart = 0;
    }

    /// <summary>Gives back a segment that was appended but never written to (it must be the tail).</summary>
    public void DropEmptyTail(BufferSegment tail)
    {
        if (Head == tail)
        {
            Head = Tail = null;
            HeadStart = 0;
        }
        else
        {
            var before = Head!;
            while (before.NextSegment != tail)
            {
                before = before.NextSegment!;
            }
            before.SetNext(null);
            Tail = before;
        }
        Recycle(tail);
    }

    private void Recycle(BufferSegment segment)
    {
        segment.Release();
        if (_spares < MaxSpares)
        {
            segment.SetNext(_spare);
            _spare = segment;
            _spares++;
        }
    }
}
