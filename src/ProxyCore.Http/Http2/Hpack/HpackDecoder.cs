using System.Buffers;
using System.Runtime.CompilerServices;

namespace ProxyCore.Http.Http2.Hpack;

/// <summary>
/// RFC 7541 header block decoder, one per HTTP/2 connection direction (its dynamic table mirrors
/// the peer's encoder). Fragments (HEADERS, then CONTINUATION) are fed as they arrive and may be
/// cut anywhere, inside an integer, a string or a Huffman code: the decoder keeps its place and
/// writes decoded strings straight into the head's arena, so nothing is buffered or copied twice.
/// </summary>
/// <remarks>
/// <para>Hardening. The decoded header list (RFC 9113 §6.5.2: names + values + 32 per field) is
/// counted as each field is decoded, so a block that expands past <see cref="MaxHeaderListSize"/>
/// (an "HPACK bomb": one large dynamic entry referenced thousands of times by one-byte indices)
/// is stopped as soon as it crosses the limit, and a string longer than what is left of the
/// limit is refused from its length prefix before any of it is read. Integers are bounded to 31
/// bits, and the dynamic table can never exceed our SETTINGS_HEADER_TABLE_SIZE.</para>
/// <para>Errors throw <see cref="HpackException"/> (always a connection error, COMPRESSION_ERROR);
/// afterwards the decoder is unusable, like the connection.</para>
/// </remarks>
public sealed class HpackDecoder
{
    // RFC 7541 §6, first byte of each field representation:
    //   1xxxxxxx  §6.1   Indexed Header Field                   7-bit index
    //   01xxxxxx  §6.2.1 Literal with Incremental Indexing      6-bit name index (0: literal name follows)
    //   001xxxxx  §6.3   Dynamic Table Size Update              5-bit max size
    //   0001xxxx  §6.2.3 Literal Never Indexed                  4-bit name index
    //   0000xxxx  §6.2.2 Literal without Indexing               4-bit name index
    private const byte IndexedBit = 0x80;
    private const byte IncrementalMask = 0xC0;
    private const byte IncrementalPattern = 0x40;
    private const byte SizeUpdateMask = 0xE0;
    private const byte SizeUpdatePattern = 0x20;
    private const byte NeverIndexedBit = 0x10;
    private const int IndexedPrefix = 7;
    private const int IncrementalPrefix = 6;
    private const int SizeUpdatePrefix = 5;
    private const int LiteralPrefix = 4;

    // RFC 7541 §5.2 string literal:
    //   +---+---+---+---+---+---+---+---+
    //   | H |    String Length (7+)     |
    //   +---+---------------------------+
    //   |  String Data (Length octets)  |
    //   +-------------------------------+
    private const byte HuffmanBit = 0x80;
    private const int StringLengthPrefix = 7;

    private enum State : byte
    {
        /// <summary>At a field boundary: the next byte starts a representation.</summary>
        FieldStart,
        /// <summary>Inside the continuation bytes of an integer whose prefix was all ones.</summary>
        Integer,
        /// <summary>The next byte starts a string literal (H bit and length prefix).</summary>
        StringLength,
        /// <summary>Inside a string literal's data.</summary>
        String,
    }

    private enum IntegerTarget : byte
    {
        Index,
        NameIndex,
        SizeUpdate,
        StringLength,
    }

    private enum Representation : byte
    {
        Incremental,
        WithoutIndexing,
        NeverIndexed,
    }

    private readonly HpackDynamicTable _table;
    private int _maxTableSizeSetting;
    private readonly int _maxHeaderListSize;

    private State _state;
    private IntegerTarget _target;
    private Representation _representation;
    private int _integer;
    private int _integerShift;

    private bool _readingName;
    private bool _huffman;
    private int _huffmanState;
    private int _stringRemaining;
    private int _stringStart;
    private int _stringWritten;

    private ByteRange _name;
    private HpackPseudoHeader _pseudo;

    /// <summary>What the current literal's strings may still add before the list is too large.</summary>
    private int _fieldBudget;
    /// <summary>RFC 9113 §6.5.2 size of the fields decoded so far in this block.</summary>
    private long _listSize;
    private bool _blockHasField;
    private bool _sizeUpdateRequired;

    /// <param name="maxDynamicTableSize">Our SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2; default 4096): the most the peer may make its table, and our memory for it.</param>
    /// <param name="maxHeaderListSize">Our SETTINGS_MAX_HEADER_LIST_SIZE: the decoded size one block may reach. Unbounded would let 16 KB of indices expand to gigabytes.</param>
    public HpackDecoder(int maxDynamicTableSize = 4096, int maxHeaderListSize = 64 * 1024)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxDynamicTableSize);
        ArgumentOutOfRangeException.ThrowIfNegative(maxHeaderListSize);
        _table = new HpackDynamicTable(maxDynamicTableSize);
        _maxTableSizeSetting = maxDynamicTableSize;
        _maxHeaderListSize = maxHeaderListSize;
    }

    public int MaxHeaderListSize => _maxHeaderListSize;

    /// <summary>RFC 7541 §4.1 size of the dynamic table now.</summary>
    public int DynamicTableSize => _table.Size;

    public int DynamicTableCount => _table.Count;

    /// <summary>The maximum size the peer's last size update chose.</summary>
    public int DynamicTableMaxSize => _table.MaxSize;

    /// <summary>
    /// Applies a new SETTINGS_HEADER_TABLE_SIZE of ours once the peer has acknowledged it. When it
    /// is below the table's current maximum, the peer's next block must begin with a size update.
    /// </summary>
    public void SetMaxDynamicTableSize(int maxDynamicTableSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxDynamicTableSize);
        _table.EnsureCapacity(maxDynamicTableSize);
        if (maxDynamicTableSize < _table.MaxSize)
        {
            _sizeUpdateRequired = true;
        }
        _maxTableSizeSetting = maxDynamicTableSize;
    }

    /// <summary>
    /// Returns the decoder to its state at construction (empty table, no block in progress), so a
    /// pooled decoder can serve a new connection; our SETTINGS limit stays as last set.
    /// </summary>
    public void Reset()
    {
        _table.Clear();
        _table.SetMaxSize(_maxTableSizeSetting);
        _state = State.FieldStart;
        _listSize = 0;
        _blockHasField = false;
        _sizeUpdateRequired = false;
    }

    /// <summary>Decodes a fragment into <paramref name="head"/>'s header list (pseudo-headers included, in order).</summary>
    public void Decode(ReadOnlySpan<byte> fragment, bool endHeaders, HttpHead head)
    {
        var handler = new HpackHeaderListHandler();
        Decode(fragment, endHeaders, head, ref handler);
    }

    /// <summary>Decodes a fragment held in a (possibly multi-segment) sequence.</summary>
    public void Decode<THandler>(in ReadOnlySequence<byte> fragment, bool endHeaders, HttpHead head, ref THandler handler)
        where THandler : struct, IHpackFieldHandler
    {
        if (fragment.IsSingleSegment)
        {
            Decode(fragment.FirstSpan, endHeaders, head, ref handler);
            return;
        }
        foreach (var segment in fragment)
        {
            Decode(segment.Span, endHeaders: false, head, ref handler);
        }
        if (endHeaders)
        {
            EndBlock();
        }
    }

    /// <summary>
    /// Decodes one fragment of a header block; each field goes to <paramref name="handler"/> as
    /// soon as it is complete. <paramref name="endHeaders"/> marks the block's last fragment
    /// (END_HEADERS): the block must then end on a field boundary.
    /// </summary>
    public void Decode<THandler>(ReadOnlySpan<byte> fragment, bool endHeaders, HttpHead head, ref THandler handler)
        where THandler : struct, IHpackFieldHandler
    {
        int i = 0;
        while ((uint)i < (uint)fragment.Length)
        {
            switch (_state)
            {
                case State.FieldStart:
                    StartRepresentation(fragment[i++], head, ref handler);
                    break;
                case State.Integer:
                    if (HpackInteger.TryContinue(fragment, ref i, ref _integer, ref _integerShift))
                    {
                        OnInteger(_integer, head, ref handler);
                    }
                    break;
                case State.StringLength:
                    byte b = fragment[i++];
                    _huffman = (b & HuffmanBit) != 0;
                    _target = IntegerTarget.StringLength;
                    StartInteger(b, StringLengthPrefix, head, ref handler);
                    break;
                default:
                    i = ReadString(fragment, i, head, ref handler);
                    break;
            }
        }
        if (endHeaders)
        {
            EndBlock();
        }
    }

    private void EndBlock()
    {
        if (_state != State.FieldStart)
        {
            HpackThrow.Error(HpackError.TruncatedBlock);
        }
        _listSize = 0;
        _blockHasField = false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void StartRepresentation<THandler>(byte b, HttpHead head, ref THandler handler)
        where THandler : struct, IHpackFieldHandler
    {
        int prefix;
        if ((b & IndexedBit) != 0)
        {
            _target = IntegerTarget.Index;
            prefix = IndexedPrefix;
        }
        else if ((b & IncrementalMask) == IncrementalPattern)
        {
            _target = IntegerTarget.NameIndex;
            _representation = Representation.Incremental;
            prefix = IncrementalPrefix;
        }
        else if ((b & SizeUpdateMask) == SizeUpdatePattern)
        {
            _target = IntegerTarget.SizeUpdate;
            prefix = SizeUpdatePrefix;
        }
        else
        {
            _target = IntegerTarget.NameIndex;
            _representation = (b & NeverIndexedBit) != 0 ? Representation.NeverIndexed : Representation.WithoutIndexing;
            prefix = LiteralPrefix;
        }

        if (_target != IntegerTarget.SizeUpdate)
        {
            if (_sizeUpdateRequired)
            {
                // RFC 7541 §4.2: "This dynamic table size update MUST occur at the beginning of the
                // first header block following the change to the dynamic table size."
                HpackThrow.Error(HpackError.SizeUpdateMissing);
            }
            _blockHasField = true;
        }
        StartInteger(b, prefix, head, ref handler);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void StartInteger<THandler>(byte b, int prefixBits, HttpHead head, ref THandler handler)
        where THandler : struct, IHpackFieldHandler
    {
        int max = (1 << prefixBits) - 1;
        int value = b & max;
        if (value == max)
        {
            _integer = value;
            _integerShift = 0;
            _state = State.Integer;
            return;
        }
        OnInteger(value, head, ref handler);
    }

    private void OnInteger<THandler>(int value, HttpHead head, ref THandler handler)
        where THandler : struct, IHpackFieldHandler
    {
        switch (_target)
        {
            case IntegerTarget.Index:
                EmitIndexed(value, head, ref handler);
                _state = State.FieldStart;
                break;
            case IntegerTarget.NameIndex:
                StartLiteral(value, head);
                _state = State.StringLength;
                break;
            case IntegerTarget.SizeUpdate:
                OnSizeUpdate(value);
                _state = State.FieldStart;
                break;
            default:
                StartString(value, head, ref handler);
                break;
        }
    }

    /// <summary>RFC 7541 §6.1: the whole field comes from a table.</summary>
    private void EmitIndexed<THandler>(int index, HttpHead head, ref THandler handler)
        where THandler : struct, IHpackFieldHandler
    {
        ReadOnlySpan<byte> name;
        ReadOnlySpan<byte> value;
        HpackPseudoHeader pseudo;
        if ((uint)(index - 1) < HpackStaticTable.Count)
        {
            name = HpackStaticTable.Name(index);
            value = HpackStaticTable.Value(index);
            pseudo = HpackStaticTable.PseudoOf(index);
        }
        else
        {
            int dynamic = DynamicIndex(index);
            name = _table.Name(dynamic);
            value = _table.Value(dynamic);
            pseudo = HpackPseudoHeaders.Classify(name);
        }

        // Counted before the copy: this is where a bomb of repeated one-byte indices is stopped.
        long size = _listSize + HpackDynamicTable.EntryOverhead + name.Length + value.Length;
        if (size > _maxHeaderListSize)
        {
            HpackThrow.Error(HpackError.HeaderListTooLarge);
        }
        _listSize = size;
        var nameRange = head.Append(name);
        var valueRange = head.Append(value);
        handler.OnField(head, new HpackField(nameRange, valueRange, pseudo, NeverIndexed: false));
    }

    /// <summary>RFC 7541 §6.2: a literal field; its name is indexed (copied to the arena now) or follows as a string.</summary>
    private void StartLiteral(int nameIndex, HttpHead head)
    {
        long budget = _maxHeaderListSize - _listSize - HpackDynamicTable.EntryOverhead;
        if (budget < 0)
        {
            HpackThrow.Error(HpackError.HeaderListTooLarge);
        }
        _fieldBudget = (int)budget;

        if (nameIndex == 0)
        {
            _readingName = true;
            return;
        }

        ReadOnlySpan<byte> name;
        if ((uint)(nameIndex - 1) < HpackStaticTable.Count)
        {
            name = HpackStaticTable.Name(nameIndex);
            _pseudo = HpackStaticTable.PseudoOf(nameIndex);
        }
        else
        {
            name = _table.Name(DynamicIndex(nameIndex));
            _pseudo = HpackPseudoHeaders.Classify(name);
        }
        if (name.Length > _fieldBudget)
        {
            HpackThrow.Error(HpackError.HeaderListTooLarge);
        }
        _fieldBudget -= name.Length;
        _name = head.Append(name);
        _readingName = false;
    }

    /// <summary>Maps an HPACK index past the static table to a dynamic table index (1 = newest).</summary>
    private int DynamicIndex(int index)
    {
        if (index == 0)
        {
            // RFC 7541 §6.1: "The index value of 0 is not used. It MUST be treated as a decoding
            // error if found in an indexed header field representation."
            HpackThrow.Error(HpackError.IndexZero);
        }
        int dynamic = index - HpackStaticTable.Count;
        if (dynamic > _table.Count)
        {
            // RFC 7541 §2.3.3: "Indices strictly greater than the sum of the lengths of both tables
            // MUST be treated as a decoding error."
            HpackThrow.Error(HpackError.IndexOutOfRange);
        }
        return dynamic;
    }

    private void OnSizeUpdate(int maxSize)
    {
        if (_blockHasField)
        {
            // RFC 7541 §4.2: "This dynamic table size update MUST occur at the beginning of the
            // first header block following the change to the dynamic table size."
            HpackThrow.Error(HpackError.SizeUpdateNotAtBlockStart);
        }
        if (maxSize > _maxTableSizeSetting)
        {
            // RFC 7541 §6.3: "The new maximum size MUST be lower than or equal to the limit
            // determined by the protocol using HPACK. A value that exceeds this limit MUST be
            // treated as a decoding error."
            HpackThrow.Error(HpackError.SizeUpdateTooLarge);
        }
        _table.SetMaxSize(maxSize);
        _sizeUpdateRequired = false;
    }

    private void StartString<THandler>(int length, HttpHead head, ref THandler handler)
        where THandler : struct, IHpackFieldHandler
    {
        // Refused from the length alone: a string that cannot fit what is left of the limit is
        // never read (for Huffman, even its shortest possible decoding would not fit).
        int least = _huffman ? HpackHuffman.MinDecodedLength(length) : length;
        if (least > _fieldBudget)
        {
            HpackThrow.Error(HpackError.HeaderListTooLarge);
        }
        _stringRemaining = length;
        _stringStart = head.ArenaUsed;
        _stringWritten = 0;
        _huffmanState = 0;
        _state = State.String;
        if (length == 0)
        {
            CompleteString(head, ref handler);
        }
    }

    /// <summary>Copies or Huffman-decodes as much of the current string as the fragment holds, straight into the arena.</summary>
    private int ReadString<THandler>(ReadOnlySpan<byte> fragment, int i, HttpHead head, ref THandler handler)
        where THandler : struct, IHpackFieldHandler
    {
        int take = Math.Min(_stringRemaining, fragment.Length - i);
        var chunk = fragment.Slice(i, take);
        int written;
        if (_huffman)
        {
            // Each piece reserves what it could decode to (capped by the limit) and gives back the
            // rest, so the string's pieces stay contiguous in the arena.
            int room = Math.Min(HpackHuffman.MaxDecodedLength(take), _fieldBudget);
            var destination = head.Reserve(room, out _);
            written = HpackHuffman.Decode(chunk, destination, ref _huffmanState);
            if (written < 0)
            {
                HpackThrow.Error(HpackError.HeaderListTooLarge);
            }
            head.Unreserve(room - written);
        }
        else
        {
            chunk.CopyTo(head.Reserve(take, out _));
            written = take;
        }
        _fieldBudget -= written;
        _stringWritten += written;
        _stringRemaining -= take;
        if (_stringRemaining == 0)
        {
            CompleteString(head, ref handler);
        }
        return i + take;
    }

    private void CompleteString<THandler>(HttpHead head, ref THandler handler)
        where THandler : struct, IHpackFieldHandler
    {
        if (_huffman && !HpackHuffman.IsValidEnd(_huffmanState))
        {
            HpackThrow.Error(HpackError.HuffmanBadPadding);
        }
        var range = new ByteRange(_stringStart, _stringWritten);
        if (_readingName)
        {
            _name = range;
            _pseudo = HpackPseudoHeaders.Classify(head.Get(range));
            _readingName = false;
            _state = State.StringLength;
            return;
        }

        _listSize += HpackDynamicTable.EntryOverhead + _name.Length + range.Length;
        if (_representation == Representation.Incremental)
        {
            // RFC 7541 §6.2.1: the field "is appended to the decoded header list and inserted as a
            // new entry into the dynamic table".
            _table.Insert(head.Get(_name), head.Get(range));
        }
        _state = State.FieldStart;
        handler.OnField(head, new HpackField(_name, range, _pseudo, _representation == Representation.NeverIndexed));
    }
}
