using System.Diagnostics;

namespace ProxyCore.Http.Http2.Hpack;

/// <summary>
/// RFC 7541 §2.3.2 / §4: the dynamic table, first in first out, newest entry at index 1 (HPACK
/// index 62). Entry bytes live in one ring of bytes; each entry costs 32 + name + value against
/// the maximum size (§4.1), so the ring never needs more than the maximum size in bytes.
/// </summary>
/// <remarks>
/// The ring is stored twice over (byte i also at i + capacity): an entry that wraps past the end
/// is still one contiguous span when read from its start, so lookups and copies never split.
/// Writes pay double, but an entry is written once and read many times.
/// </remarks>
internal sealed class HpackDynamicTable
{
    /// <summary>RFC 7541 §4.1: "The size of an entry is the sum of its name's length in octets, its value's length in octets, and 32."</summary>
    public const int EntryOverhead = 32;

    private struct Entry
    {
        public int Offset;
        public int NameLength;
        public int ValueLength;
    }

    private byte[] _bytes = [];
    private Entry[] _entries = [];
    private int _capacity;
    private int _newest;
    private int _count;
    private int _writePosition;
    private int _size;
    private int _maxSize;

    public HpackDynamicTable(int capacity)
    {
        Allocate(capacity);
        _maxSize = capacity;
    }

    public int Count => _count;

    /// <summary>Current size per RFC 7541 §4.1.</summary>
    public int Size => _size;

    /// <summary>The size the last dynamic table size update set (at most <see cref="Capacity"/>).</summary>
    public int MaxSize => _maxSize;

    /// <summary>The largest <see cref="MaxSize"/> storage is allocated for.</summary>
    public int Capacity => _capacity;

    public ReadOnlySpan<byte> Name(int index)
    {
        ref readonly Entry e = ref At(index);
        return new ReadOnlySpan<byte>(_bytes, e.Offset, e.NameLength);
    }

    public ReadOnlySpan<byte> Value(int index)
    {
        ref readonly Entry e = ref At(index);
        return new ReadOnlySpan<byte>(_bytes, e.Offset + e.NameLength, e.ValueLength);
    }

    /// <summary>RFC 7541 §4.1 size of entry <paramref name="index"/> (1 = newest).</summary>
    public int EntrySize(int index)
    {
        ref readonly Entry e = ref At(index);
        return EntryOverhead + e.NameLength + e.ValueLength;
    }

    private ref Entry At(int index)
    {
        Debug.Assert(index >= 1 && index <= _count);
        int slot = _newest - (index - 1);
        if (slot < 0)
        {
            slot += _entries.Length;
        }
        return ref _entries[slot];
    }

    /// <summary>
    /// RFC 7541 §4.3: "Whenever the maximum size for the dynamic table is reduced, entries are
    /// evicted from the end of the dynamic table until the size of the dynamic table is less than
    /// or equal to the maximum size."
    /// </summary>
    public void SetMaxSize(int maxSize)
    {
        Debug.Assert(maxSize >= 0 && maxSize <= _capacity);
        _maxSize = maxSize;
        EvictUntilFits(0);
    }

    /// <summary>Grows storage so <see cref="SetMaxSize"/> may go up to <paramref name="capacity"/> (a SETTINGS change; entries are kept).</summary>
    public void EnsureCapacity(int capacity)
    {
        if (capacity <= _capacity)
        {
            return;
        }
        var oldBytes = _bytes;
        var oldEntries = _entries;
        int oldCount = _count;
        int oldNewest = _newest;
        Allocate(capacity);
        for (int i = oldCount; i >= 1; i--)
        {
            int slot = oldNewest - (i - 1);
            if (slot < 0)
            {
                slot += oldEntries.Length;
            }
            var e = oldEntries[slot];
            Insert(oldBytes.AsSpan(e.Offset, e.NameLength), oldBytes.AsSpan(e.Offset + e.NameLength, e.ValueLength));
        }
    }

    private void Allocate(int capacity)
    {
        _capacity = capacity;
        _bytes = new byte[capacity * 2];
        _entries = new Entry[capacity / EntryOverhead + 1];
        _newest = -1;
        _count = 0;
        _size = 0;
        _writePosition = 0;
    }

    /// <summary>
    /// RFC 7541 §4.4: "Before a new entry is added to the dynamic table, entries are evicted from
    /// the end of the dynamic table until the size of the dynamic table is less than or equal to
    /// (maximum size - new entry size) or until the table is empty. If the size of the new entry
    /// is less than or equal to the maximum size, that entry is added to the table. It is not an
    /// error to attempt to add an entry that is larger than the maximum size; an attempt to add an
    /// entry larger than the maximum size causes the table to be emptied of all existing entries
    /// and results in an empty table."
    /// </summary>
    public void Insert(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        long entrySize = (long)EntryOverhead + name.Length + value.Length;
        if (entrySize > _maxSize)
        {
            Clear();
            return;
        }
        EvictUntilFits((int)entrySize);

        int offset = _writePosition;
        Write(name, offset);
        Write(value, Wrap(offset + name.Length));
        _writePosition = Wrap(offset + name.Length + value.Length);

        _newest++;
        if (_newest == _entries.Length)
        {
            _newest = 0;
        }
        _entries[_newest] = new Entry { Offset = offset, NameLength = name.Length, ValueLength = value.Length };
        _count++;
        _size += (int)entrySize;
    }

    public void Clear()
    {
        _count = 0;
        _size = 0;
        _newest = -1;
        _writePosition = 0;
    }

    private void EvictUntilFits(int incoming)
    {
        while (_count > 0 && _size + incoming > _maxSize)
        {
            _size -= EntrySize(_count);
            _count--;
        }
        if (_count == 0)
        {
            // Nothing live: start the ring over so the next entries are not split needlessly.
            _writePosition = 0;
            _newest = -1;
        }
    }

    private int Wrap(int position) => position >= _capacity ? position - _capacity : position;

    /// <summary>Writes at <paramref name="position"/> of the ring and at its mirror.</summary>
    private void Write(ReadOnlySpan<byte> source, int position)
    {
        int first = Math.Min(source.Length, _capacity - position);
        source.Slice(0, first).CopyTo(_bytes.AsSpan(position));
        source.Slice(0, first).CopyTo(_bytes.AsSpan(position + _capacity));
        if (first < source.Length)
        {
            var rest = source.Slice(first);
            rest.CopyTo(_bytes);
            rest.CopyTo(_bytes.AsSpan(_capacity));
        }
    }
}
