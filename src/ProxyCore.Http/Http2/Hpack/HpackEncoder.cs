using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;

namespace ProxyCore.Http.Http2.Hpack;

/// <summary>How the encoder may represent a field (RFC 7541 §6.2).</summary>
public enum HpackIndexing : byte
{
    /// <summary>The encoder's policy (see <see cref="HpackEncoder"/>).</summary>
    Auto,
    /// <summary>§6.2.1: add the field to the dynamic table.</summary>
    Incremental,
    /// <summary>§6.2.2: a literal that leaves the table alone (a hop may re-index it).</summary>
    WithoutIndexing,
    /// <summary>§6.2.3: never indexed, by us or any later hop (for secrets; forward fields that arrived so).</summary>
    NeverIndexed,
}

/// <summary>
/// RFC 7541 header block encoder, one per HTTP/2 connection direction. Fields go out as an index
/// when a table holds them whole, else as a literal with the name indexed when a table holds the
/// name, and each string in Huffman when that is shorter than raw.
/// </summary>
/// <remarks>
/// <para>Policy for <see cref="HpackIndexing.Auto"/>:</para>
/// <list type="bullet">
/// <item><c>authorization</c>, <c>proxy-authorization</c>, and <c>cookie</c> values shorter than
/// <see cref="ShortCookieLength"/> bytes are never indexed: RFC 7541 §7.1 shows how an attacker
/// who can add fields to a shared connection probes the table to guess a secret one guess at a
/// time, and short values are the ones that are cheap to guess (§7.1.3 suggests exactly this).</item>
/// <item>Fields whose values rarely repeat on a connection (<c>content-length</c>, <c>age</c>,
/// <c>etag</c>, <c>if-modified-since</c>, <c>if-none-match</c>, <c>last-modified</c>,
/// <c>location</c>, <c>set-cookie</c>) go without indexing: they would only evict useful entries.</item>
/// <item>A field bigger than three quarters of the table goes without indexing: it would flush the table.</item>
/// <item>Everything else is indexed incrementally.</item>
/// </list>
/// <para>Names are lowercased on the way out (RFC 9113 §8.2.1: uppercase names are malformed in
/// HTTP/2), so an HTTP/1.1 head can be encoded as it is.</para>
/// </remarks>
public sealed class HpackEncoder
{
    /// <summary>Cookies shorter than this are never indexed (RFC 7541 §7.1.3).</summary>
    public const int ShortCookieLength = 20;

    // RFC 7541 §6 representation patterns (see HpackDecoder for the layouts).
    private const byte IndexedPattern = 0x80;
    private const byte IncrementalPattern = 0x40;
    private const byte SizeUpdatePattern = 0x20;
    private const byte NeverIndexedPattern = 0x10;
    private const byte WithoutIndexingPattern = 0x00;
    private const byte HuffmanBit = 0x80;
    private const int IndexedPrefix = 7;
    private const int IncrementalPrefix = 6;
    private const int SizeUpdatePrefix = 5;
    private const int LiteralPrefix = 4;
    private const int StringLengthPrefix = 7;

    /// <summary>Names longer than this are lowercased through a rented buffer instead of the stack.</summary>
    private const int StackNameLength = 256;

    private readonly HpackDynamicTable _table;
    private readonly int _maxTableSizeLimit;
    private bool _sizeUpdatePending;
    private int _pendingMinSize;
    private int _pendingSize;

    /// <param name="maxDynamicTableSize">
    /// The most memory we give the table, whatever the peer allows (default 4096, the RFC's
    /// initial value). The table used is the smaller of this and the peer's SETTINGS_HEADER_TABLE_SIZE.
    /// </param>
    public HpackEncoder(int maxDynamicTableSize = 4096)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxDynamicTableSize);
        _maxTableSizeLimit = maxDynamicTableSize;
        _table = new HpackDynamicTable(maxDynamicTableSize);
        InitializeTableSize();
    }

    private void InitializeTableSize()
    {
        // RFC 9113 §6.5.2: the peer's table starts at 4096 until its SETTINGS say otherwise. A
        // smaller limit of ours is announced with a size update in the first block.
        const int InitialPeerTableSize = 4096;
        if (_maxTableSizeLimit < InitialPeerTableSize)
        {
            QueueSizeUpdate(_maxTableSizeLimit);
        }
        else
        {
            _table.SetMaxSize(InitialPeerTableSize);
        }
    }

    /// <summary>Returns the encoder to its state at construction, for a new connection (the peer's table starts over at 4096).</summary>
    public void Reset()
    {
        _table.Clear();
        _sizeUpdatePending = false;
        InitializeTableSize();
    }

    public int DynamicTableSize => _table.Size;

    public int DynamicTableCount => _table.Count;

    public int DynamicTableMaxSize => _table.MaxSize;

    /// <summary>
    /// The peer's SETTINGS_HEADER_TABLE_SIZE changed. The next block begins with the size update(s)
    /// (RFC 7541 §4.2: the smallest value since the last block first, so the peer sees every
    /// reduction, then the final one).
    /// </summary>
    public void SetMaxDynamicTableSize(int peerHeaderTableSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(peerHeaderTableSize);
        QueueSizeUpdate(Math.Min(peerHeaderTableSize, _maxTableSizeLimit));
    }

    private void QueueSizeUpdate(int size)
    {
        _pendingMinSize = _sizeUpdatePending ? Math.Min(_pendingMinSize, size) : size;
        _pendingSize = size;
        _sizeUpdatePending = true;
    }

    /// <summary>Starts a header block: writes any pending dynamic table size updates (at most 12 bytes).</summary>
    public bool TryBeginBlock(Span<byte> destination, out int bytesWritten)
    {
        bytesWritten = 0;
        if (!_sizeUpdatePending)
        {
            return true;
        }
        bool twoUpdates = _pendingMinSize < _pendingSize;
        int needed = (twoUpdates ? HpackInteger.Length(_pendingMinSize, SizeUpdatePrefix) : 0) + HpackInteger.Length(_pendingSize, SizeUpdatePrefix);
        if (destination.Length < needed)
        {
            return false;
        }
        if (twoUpdates)
        {
            bytesWritten += HpackInteger.Write(destination, _pendingMinSize, SizeUpdatePrefix, SizeUpdatePattern);
            _table.SetMaxSize(_pendingMinSize);
        }
        bytesWritten += HpackInteger.Write(destination.Slice(bytesWritten), _pendingSize, SizeUpdatePrefix, SizeUpdatePattern);
        _table.SetMaxSize(_pendingSize);
        _sizeUpdatePending = false;
        return true;
    }

    /// <summary>Starts a header block on <paramref name="output"/> (see <see cref="TryBeginBlock"/>).</summary>
    public void BeginBlock(IBufferWriter<byte> output)
    {
        if (!_sizeUpdatePending)
        {
            return;
        }
        bool done = TryBeginBlock(output.GetSpan(2 * HpackInteger.MaxEncodedLength), out int written);
        Debug.Assert(done);
        output.Advance(written);
    }

    /// <summary>Encodes a whole head as one block: size updates, then every header in order.</summary>
    public void Encode(HttpHead head, IBufferWriter<byte> output)
    {
        BeginBlock(output);
        var headers = head.Headers;
        for (int i = 0; i < headers.Length; i++)
        {
            Encode(head.Get(headers[i].Name), head.Get(headers[i].Value), output);
        }
    }

    /// <summary>Encodes one field to <paramref name="output"/>.</summary>
    public void Encode(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, IBufferWriter<byte> output, HpackIndexing indexing = HpackIndexing.Auto)
    {
        var span = output.GetSpan(MaxEncodedLength(name.Length, value.Length));
        bool done = TryEncode(name, value, span, out int written, indexing);
        Debug.Assert(done);
        output.Advance(written);
    }

    /// <summary>An upper bound on the bytes one field takes: a literal name and raw strings (Huffman is used only when shorter).</summary>
    public static int MaxEncodedLength(int nameLength, int valueLength) =>
        1 + (2 * HpackInteger.MaxEncodedLength) + nameLength + valueLength;

    /// <summary>
    /// Encodes one field into <paramref name="destination"/>. Returns false, with nothing written
    /// and the dynamic table unchanged, when it does not fit.
    /// </summary>
    public bool TryEncode(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, Span<byte> destination, out int bytesWritten,
        HpackIndexing indexing = HpackIndexing.Auto)
    {
        Debug.Assert(!_sizeUpdatePending, "BeginBlock must start every block");
        if (name.ContainsAnyInRange((byte)'A', (byte)'Z'))
        {
            return TryEncodeUppercaseName(name, value, destination, out bytesWritten, indexing);
        }
        return TryEncodeLowercase(name, value, destination, out bytesWritten, indexing);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool TryEncodeUppercaseName(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, Span<byte> destination, out int bytesWritten,
        HpackIndexing indexing)
    {
        byte[]? rented = null;
        Span<byte> lower = name.Length <= StackNameLength
            ? stackalloc byte[StackNameLength]
            : (rented = ArrayPool<byte>.Shared.Rent(name.Length));
        lower = lower.Slice(0, name.Length);
        Ascii.ToLower(name, lower, out _);
        bool done = TryEncodeLowercase(lower, value, destination, out bytesWritten, indexing);
        if (rented is not null)
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
        return done;
    }

    private bool TryEncodeLowercase(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, Span<byte> destination, out int bytesWritten,
        HpackIndexing indexing)
    {
        bytesWritten = 0;
        int staticName = HpackStaticTable.FindName(name);
        if (indexing == HpackIndexing.Auto)
        {
            indexing = Choose(staticName, name.Length, value.Length);
        }

        int nameIndex = staticName;
        if (indexing != HpackIndexing.NeverIndexed)
        {
            // A whole match is one indexed field, usually one byte. Never-indexed fields skip it:
            // the static table holds no secret values, and the dynamic table never gets any.
            int index = staticName != 0 ? HpackStaticTable.FindValue(staticName, value) : 0;
            if (index == 0)
            {
                index = FindDynamic(name, value, ref nameIndex);
            }
            if (index != 0)
            {
                if (destination.Length < HpackInteger.Length(index, IndexedPrefix))
                {
                    return false;
                }
                bytesWritten = HpackInteger.Write(destination, index, IndexedPrefix, IndexedPattern);
                return true;
            }
        }
        else if (nameIndex == 0)
        {
            FindDynamic(name, [], ref nameIndex, nameOnly: true);
        }

        // RFC 7541 §6.2: literal header field, name indexed or literal, then the value.
        //   +---+---+---+---+---+---+---+---+
        //   | 0 | 1 |      Index (6+)       |   with incremental indexing
        //   | 0 | 0 | 0 | 0 |  Index (4+)   |   without indexing
        //   | 0 | 0 | 0 | 1 |  Index (4+)   |   never indexed
        //   +---+---+-----------------------+
        //   | H |     Name Length (7+)      |   only when Index is 0
        //   |  Name String (Length octets)  |
        //   | H |     Value Length (7+)     |
        //   | Value String (Length octets)  |
        (byte pattern, int prefix) = indexing switch
        {
            HpackIndexing.Incremental => (IncrementalPattern, IncrementalPrefix),
            HpackIndexing.NeverIndexed => (NeverIndexedPattern, LiteralPrefix),
            _ => (WithoutIndexingPattern, LiteralPrefix),
        };
        int nameHuffman = nameIndex == 0 ? HpackHuffman.EncodedLength(name) : 0;
        int valueHuffman = HpackHuffman.EncodedLength(value);
        int nameLength = nameIndex == 0 ? StringLength(name.Length, nameHuffman) : 0;
        int needed = HpackInteger.Length(nameIndex, prefix) + nameLength + StringLength(value.Length, valueHuffman);
        if (destination.Length < needed)
        {
            return false;
        }

        int written = HpackInteger.Write(destination, nameIndex, prefix, pattern);
        if (nameIndex == 0)
        {
            written += WriteString(name, nameHuffman, destination.Slice(written));
        }
        written += WriteString(value, valueHuffman, destination.Slice(written));
        Debug.Assert(written == needed);
        bytesWritten = written;

        if (indexing == HpackIndexing.Incremental)
        {
            _table.Insert(name, value);
        }
        return true;
    }

    private HpackIndexing Choose(int staticName, int nameLength, int valueLength)
    {
        switch (staticName)
        {
            case HpackStaticTable.Authorization:
            case HpackStaticTable.ProxyAuthorization:
                return HpackIndexing.NeverIndexed;
            case HpackStaticTable.Cookie:
                if (valueLength < ShortCookieLength)
                {
                    return HpackIndexing.NeverIndexed;
                }
                break;
            case HpackStaticTable.ContentLength:
            case HpackStaticTable.Age:
            case HpackStaticTable.Etag:
            case HpackStaticTable.IfModifiedSince:
            case HpackStaticTable.IfNoneMatch:
            case HpackStaticTable.LastModified:
            case HpackStaticTable.Location:
            case HpackStaticTable.SetCookie:
                return HpackIndexing.WithoutIndexing;
        }
        long entrySize = (long)HpackDynamicTable.EntryOverhead + nameLength + valueLength;
        return entrySize * 4 > (long)_table.MaxSize * 3 ? HpackIndexing.WithoutIndexing : HpackIndexing.Incremental;
    }

    /// <summary>
    /// Looks for the field in the dynamic table: returns its HPACK index for a whole match, else
    /// 0, and sets <paramref name="nameIndex"/> to the newest name match when it is still 0.
    /// </summary>
    private int FindDynamic(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, ref int nameIndex, bool nameOnly = false)
    {
        int count = _table.Count;
        for (int i = 1; i <= count; i++)
        {
            if (!_table.Name(i).SequenceEqual(name))
            {
                continue;
            }
            if (nameIndex == 0)
            {
                nameIndex = HpackStaticTable.Count + i;
                if (nameOnly)
                {
                    return 0;
                }
            }
            if (!nameOnly && _table.Value(i).SequenceEqual(value))
            {
                return HpackStaticTable.Count + i;
            }
        }
        return 0;
    }

    private static int StringLength(int rawLength, int huffmanLength)
    {
        int length = Math.Min(rawLength, huffmanLength);
        return HpackInteger.Length(length, StringLengthPrefix) + length;
    }

    private static int WriteString(ReadOnlySpan<byte> value, int huffmanLength, Span<byte> destination)
    {
        if (huffmanLength < value.Length)
        {
            int n = HpackInteger.Write(destination, huffmanLength, StringLengthPrefix, HuffmanBit);
            int encoded = HpackHuffman.Encode(value, destination.Slice(n));
            Debug.Assert(encoded == huffmanLength);
            return n + encoded;
        }
        int m = HpackInteger.Write(destination, value.Length, StringLengthPrefix, 0);
        value.CopyTo(destination.Slice(m));
        return m + value.Length;
    }
}
