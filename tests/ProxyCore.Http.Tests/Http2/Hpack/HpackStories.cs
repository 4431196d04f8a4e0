using System.Text;
using System.Text.Json;
using ProxyCore.Http.Tests.Http1.Corpus;

namespace ProxyCore.Http.Tests.Http2.Hpack;

/// <summary>One case of an hpack-test-case story: the SETTINGS table size before it, the block, and the fields it decodes to.</summary>
internal sealed record HpackCase(int Seqno, int HeaderTableSize, byte[] Wire, (byte[] Name, byte[] Value)[] Headers);

/// <summary>
/// Reads <c>hpack-test-case/&lt;encoder&gt;/story_NN.json</c> from the shared corpus (see its README):
/// all cases of a story share one decoder; <c>header_table_size</c> absent or null means 4096.
/// </summary>
internal static class HpackStories
{
    public const string Folder = "hpack-test-case";

    /// <summary>Every encoder folder (all but raw-data, which has no wire).</summary>
    public static readonly string[] Encoders =
    [
        "go-hpack",
        "haskell-http2-linear-huffman",
        "nghttp2",
        "nghttp2-change-table-size",
        "node-http2-hpack",
        "python-hpack",
        "swift-nio-hpack-huffman",
    ];

    private static readonly Dictionary<string, HpackCase[]> Cache = [];

    public static IEnumerable<string> StoryNames(string encoder) =>
        Directory.EnumerateFiles(CorpusFiles.PathOf(Path.Combine(Folder, encoder)), "story_*.json")
            .Select(Path.GetFileNameWithoutExtension)
            .Order(StringComparer.Ordinal)!;

    /// <summary>Theory rows: (encoder, story) for every story of every encoder.</summary>
    public static TheoryData<string, string> AllEncodedStories()
    {
        var data = new TheoryData<string, string>();
        foreach (var encoder in Encoders)
        {
            foreach (var story in StoryNames(encoder))
            {
                data.Add(encoder, story);
            }
        }
        return data;
    }

    /// <summary>The sample for the quadratic split-at-every-offset test: stories 00 to 11 (about ten cases each) of every encoder.</summary>
    public static TheoryData<string, string> SmallEncodedStories()
    {
        var data = new TheoryData<string, string>();
        foreach (var encoder in Encoders)
        {
            foreach (var story in StoryNames(encoder).Where(s => string.CompareOrdinal(s, "story_12") < 0))
            {
                data.Add(encoder, story);
            }
        }
        return data;
    }

    public static TheoryData<string> RawStories()
    {
        var data = new TheoryData<string>();
        foreach (var story in StoryNames("raw-data"))
        {
            data.Add(story);
        }
        return data;
    }

    public static HpackCase[] Load(string encoder, string story)
    {
        string key = encoder + "/" + story;
        lock (Cache)
        {
            if (!Cache.TryGetValue(key, out var cases))
            {
                cases = Parse(File.ReadAllBytes(CorpusFiles.PathOf(Path.Combine(Folder, encoder, story + ".json"))));
                Cache[key] = cases;
            }
            return cases;
        }
    }

    private static HpackCase[] Parse(byte[] json)
    {
        using var doc = JsonDocument.Parse(json);
        var result = new List<HpackCase>();
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            int tableSize = 4096;
            if (c.TryGetProperty("header_table_size", out var size) && size.ValueKind == JsonValueKind.Number)
            {
                tableSize = size.GetInt32();
            }
            byte[] wire = c.TryGetProperty("wire", out var w) ? Convert.FromHexString(w.GetString()!) : [];
            var headers = new List<(byte[], byte[])>();
            foreach (var pair in c.GetProperty("headers").EnumerateArray())
            {
                foreach (var property in pair.EnumerateObject())
                {
                    headers.Add((Encoding.UTF8.GetBytes(property.Name), Encoding.UTF8.GetBytes(property.Value.GetString()!)));
                }
            }
            result.Add(new HpackCase(c.TryGetProperty("seqno", out var seqno) ? seqno.GetInt32() : result.Count, tableSize, wire, headers.ToArray()));
        }
        return result.ToArray();
    }

    public static string Show((byte[] Name, byte[] Value) field) =>
        Encoding.UTF8.GetString(field.Name) + ": " + Encoding.UTF8.GetString(field.Value);

    /// <summary>The head's header list as "name: value" lines, for exact, ordered comparison.</summary>
    public static string[] Fields(HttpHead head)
    {
        var lines = new string[head.HeaderCount];
        for (int i = 0; i < lines.Length; i++)
        {
            lines[i] = Encoding.UTF8.GetString(head.GetName(i)) + ": " + Encoding.UTF8.GetString(head.GetValue(i));
        }
        return lines;
    }

    /// <summary>Byte-exact, ordered comparison (cheap enough for the split tests' hundreds of thousands of cases).</summary>
    public static bool Matches(HpackCase c, HttpHead head)
    {
        if (head.HeaderCount != c.Headers.Length)
        {
            return false;
        }
        for (int i = 0; i < c.Headers.Length; i++)
        {
            if (!head.GetName(i).SequenceEqual(c.Headers[i].Name) || !head.GetValue(i).SequenceEqual(c.Headers[i].Value))
            {
                return false;
            }
        }
        return true;
    }

    public static string[] Expected(HpackCase c) => c.Headers.Select(Show).ToArray();
}
