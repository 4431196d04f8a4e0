using System.Buffers;
using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using ProxyCore.Http;
using ProxyCore.Http.Http2.Hpack;

namespace ProxyCore.Benchmarks;

/// <summary>
/// HPACK on the hpack-test-case raw-data stories (real request and response heads, read from the
/// shared corpus at ../shared/corpus): ns per header block for decode and encode, with the
/// dynamic table evolving as on a connection (reset per story). The runtime's HPACK decoder is
/// internal, so there is no peer baseline; the long-value pair compares our raw-literal path
/// (a copy) with our Huffman path on the same 1,000-byte value.
/// </summary>
[Config(typeof(BenchmarkConfig))]
public class HpackBenchmarks
{
    private const int BlockCount = 3384; // raw-data blocks; checked in GlobalSetup

    private RequestHead[][] _stories = [];
    private byte[][][] _encoded = [];
    private readonly HpackEncoder _encoder = new();
    private readonly HpackDecoder _decoder = new();
    private readonly RequestHead _head = new();
    private readonly ArrayBufferWriter<byte> _output = new(64 * 1024);
    private byte[] _longHuffman = [];
    private byte[] _longRaw = [];

    [GlobalSetup]
    public void Setup()
    {
        var folder = Path.Combine(FindCorpus(), "hpack-test-case", "raw-data");
        _stories = Directory.GetFiles(folder, "story_*.json").Order(StringComparer.Ordinal).Select(LoadStory).ToArray();
        int blocks = _stories.Sum(s => s.Length);
        if (blocks != BlockCount)
        {
            throw new InvalidOperationException($"raw-data holds {blocks} blocks; update {nameof(BlockCount)}");
        }
        _encoded = _stories.Select(story =>
        {
            var encoder = new HpackEncoder();
            return story.Select(head =>
            {
                var output = new ArrayBufferWriter<byte>();
                encoder.Encode(head, output);
                return output.WrittenSpan.ToArray();
            }).ToArray();
        }).ToArray();

        // A long user-agent-like value: letters, digits and punctuation, as real long values are.
        var value = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 ", 20))[..1000]);
        _longHuffman = Encode(new HpackEncoder(), value);
        // The same field as a raw literal: without indexing, name index 58 (user-agent) = 15 + 43
        // in the 4-bit prefix, then the value's length (H bit clear) and its bytes.
        var raw = new List<byte> { 0x0F, 43 };
        var length = new byte[HpackInteger.MaxEncodedLength];
        raw.AddRange(length.AsSpan(0, HpackInteger.Write(length, value.Length, 7, 0)).ToArray());
        raw.AddRange(value);
        _longRaw = raw.ToArray();
    }

    private static byte[] Encode(HpackEncoder encoder, byte[] value)
    {
        var output = new ArrayBufferWriter<byte>();
        encoder.Encode("user-agent"u8, value, output, HpackIndexing.WithoutIndexing);
        return output.WrittenSpan.ToArray();
    }

    [Benchmark(OperationsPerInvoke = BlockCount)]
    public int DecodeStoryBlock()
    {
        int fields = 0;
        var handler = new HpackHeaderListHandler();
        foreach (var story in _encoded)
        {
            _decoder.Reset();
            foreach (var block in story)
            {
                _head.Reset();
                _decoder.Decode(block, endHeaders: true, _head, ref handler);
                fields += _head.HeaderCount;
            }
        }
        return fields;
    }

    [Benchmark(OperationsPerInvoke = BlockCount)]
    public int EncodeStoryBlock()
    {
        int bytes = 0;
        foreach (var story in _stories)
        {
            _encoder.Reset();
            foreach (var head in story)
            {
                _output.ResetWrittenCount();
                _encoder.Encode(head, _output);
                bytes += _output.WrittenCount;
            }
        }
        return bytes;
    }

    [Benchmark]
    public int DecodeLongValueHuffman()
    {
        _head.Reset();
        _decoder.Decode(_longHuffman, endHeaders: true, _head);
        return _head.ArenaUsed;
    }

    [Benchmark]
    public int DecodeLongValueRaw()
    {
        _head.Reset();
        _decoder.Decode(_longRaw, endHeaders: true, _head);
        return _head.ArenaUsed;
    }

    private static RequestHead[] LoadStory(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var heads = new List<RequestHead>();
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            var head = new RequestHead();
            foreach (var pair in c.GetProperty("headers").EnumerateArray())
            {
                foreach (var property in pair.EnumerateObject())
                {
                    head.AddHeader(Encoding.UTF8.GetBytes(property.Name), Encoding.UTF8.GetBytes(property.Value.GetString()!));
                }
            }
            heads.Add(head);
        }
        return heads.ToArray();
    }

    /// <summary>../shared/corpus from the repository root (the folder with ProxyCore.sln), as the tests find it.</summary>
    private static string FindCorpus()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ProxyCore.sln")))
        {
            dir = dir.Parent;
        }
        return dir?.Parent is null
            ? throw new InvalidOperationException("ProxyCore.sln not found")
            : Path.Combine(dir.Parent.FullName, "shared", "corpus");
    }
}
