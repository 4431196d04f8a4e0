using System.Text;

namespace ProxyCore.Http.Http2.Hpack;

/// <summary>
/// RFC 7541 Appendix A, the static table: indices 1 to 61. Entries sharing a name sit next to each
/// other, so a name lookup yields a run of candidates for a full (name and value) match.
/// </summary>
internal static class HpackStaticTable
{
    public const int Count = 61;

    // Indices the decoder and the encoder's policy act on, named as the table spells them.
    public const int Authority = 1;
    public const int MethodGet = 2;
    public const int MethodPost = 3;
    public const int PathRoot = 4;
    public const int PathIndexHtml = 5;
    public const int SchemeHttp = 6;
    public const int SchemeHttps = 7;
    public const int Status200 = 8;
    public const int Status500 = 14;
    public const int Age = 21;
    public const int Authorization = 23;
    public const int ContentLength = 28;
    public const int Cookie = 32;
    public const int Etag = 34;
    public const int IfModifiedSince = 40;
    public const int IfNoneMatch = 41;
    public const int LastModified = 44;
    public const int Location = 46;
    public const int ProxyAuthorization = 49;
    public const int SetCookie = 55;

    private static readonly (string Name, string Value)[] Table =
    [
        (":authority", ""),
        (":method", "GET"),
        (":method", "POST"),
        (":path", "/"),
        (":path", "/index.html"),
        (":scheme", "http"),
        (":scheme", "https"),
        (":status", "200"),
        (":status", "204"),
        (":status", "206"),
        (":status", "304"),
        (":status", "400"),
        (":status", "404"),
        (":status", "500"),
        ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"),
        ("accept-language", ""),
        ("accept-ranges", ""),
        ("accept", ""),
        ("access-control-allow-origin", ""),
        ("age", ""),
        ("allow", ""),
        ("authorization", ""),
        ("cache-control", ""),
        ("content-disposition", ""),
        ("content-encoding", ""),
        ("content-language", ""),
        ("content-length", ""),
        ("content-location", ""),
        ("content-range", ""),
        ("content-type", ""),
        ("cookie", ""),
        ("date", ""),
        ("etag", ""),
        ("expect", ""),
        ("expires", ""),
        ("from", ""),
        ("host", ""),
        ("if-match", ""),
        ("if-modified-since", ""),
        ("if-none-match", ""),
        ("if-range", ""),
        ("if-unmodified-since", ""),
        ("last-modified", ""),
        ("link", ""),
        ("location", ""),
        ("max-forwards", ""),
        ("proxy-authenticate", ""),
        ("proxy-authorization", ""),
        ("range", ""),
        ("referer", ""),
        ("refresh", ""),
        ("retry-after", ""),
        ("server", ""),
        ("set-cookie", ""),
        ("strict-transport-security", ""),
        ("transfer-encoding", ""),
        ("user-agent", ""),
        ("vary", ""),
        ("via", ""),
        ("www-authenticate", ""),
    ];

    // Index 0 is unused (RFC 7541 §6.1), so arrays are indexed by the HPACK index itself.
    private static readonly byte[][] Names = new byte[Count + 1][];
    private static readonly byte[][] Values = new byte[Count + 1][];

    /// <summary>One past the last index with the same name as index i.</summary>
    private static readonly byte[] RunEnd = new byte[Count + 1];

    /// <summary>By name length: the first index of each distinct name of that length.</summary>
    private static readonly byte[][] FirstIndexByLength;

    private static readonly HpackPseudoHeader[] Pseudo = new HpackPseudoHeader[Count + 1];

    static HpackStaticTable()
    {
        Names[0] = Values[0] = [];
        int maxLength = 0;
        for (int i = 1; i <= Count; i++)
        {
            Names[i] = Encoding.ASCII.GetBytes(Table[i - 1].Name);
            Values[i] = Encoding.ASCII.GetBytes(Table[i - 1].Value);
            maxLength = Math.Max(maxLength, Names[i].Length);
            Pseudo[i] = HpackPseudoHeaders.Classify(Names[i]);
        }
        var buckets = new List<byte>[maxLength + 1];
        for (int i = Count; i >= 1; i--)
        {
            bool sameAsNext = i < Count && Names[i].AsSpan().SequenceEqual(Names[i + 1]);
            RunEnd[i] = sameAsNext ? RunEnd[i + 1] : (byte)(i + 1);
        }
        for (int i = 1; i <= Count; i++)
        {
            if (i > 1 && Names[i].AsSpan().SequenceEqual(Names[i - 1]))
            {
                continue;
            }
            (buckets[Names[i].Length] ??= []).Add((byte)i);
        }
        FirstIndexByLength = new byte[maxLength + 1][];
        for (int length = 0; length <= maxLength; length++)
        {
            FirstIndexByLength[length] = buckets[length]?.ToArray() ?? [];
        }
    }

    public static ReadOnlySpan<byte> Name(int index) => Names[index];

    public static ReadOnlySpan<byte> Value(int index) => Values[index];

    public static HpackPseudoHeader PseudoOf(int index) => Pseudo[index];

    /// <summary>The first index whose name equals <paramref name="name"/> (ASCII case-insensitive, the encoder lowercases), or 0.</summary>
    public static int FindName(ReadOnlySpan<byte> name)
    {
        var firstIndexByLength = FirstIndexByLength;
        if ((uint)name.Length >= (uint)firstIndexByLength.Length)
        {
            return 0;
        }
        foreach (byte index in firstIndexByLength[name.Length])
        {
            if (Ascii.EqualsIgnoreCase(Names[index], name))
            {
                return index;
            }
        }
        return 0;
    }

    /// <summary>Given the first index of a name, the index of the entry with that value too, or 0.</summary>
    public static int FindValue(int nameIndex, ReadOnlySpan<byte> value)
    {
        for (int i = nameIndex, end = RunEnd[nameIndex]; i < end; i++)
        {
            if (value.SequenceEqual(Values[i]))
            {
                return i;
            }
        }
        return 0;
    }
}
