using System.Buffers;
using ProxyCore.Http.Http2.Hpack;

namespace ProxyCore.Http.Tests.Http2.Hpack;

/// <summary>Decoding and encoding allocate nothing once the arena, header list and output buffer have grown.</summary>
public class HpackAllocationTests
{
    // Warm-up (JIT, tiering, buffer growth), then the fewest bytes of several windows: see Allocations.
    private static long AllocatedBy(Action action) => Allocations.SteadyState(action, 50, warmUps: 3);

    /// <summary>A whole raw story encoded and decoded in step, over and over: both tables keep evolving, so indexing, eviction and lookups all run.</summary>
    [Fact]
    public void EncodeDecode_RawStory_AllocatesNothing()
    {
        var cases = HpackStories.Load("raw-data", "story_20");
        var heads = cases.Select(c =>
        {
            var h = new RequestHead();
            foreach (var (name, value) in c.Headers)
            {
                h.AddHeader(name, value);
            }
            return h;
        }).ToArray();
        var encoder = new HpackEncoder();
        var decoder = new HpackDecoder();
        var output = new ArrayBufferWriter<byte>(64 * 1024);
        var head = new RequestHead();
        var handler = new HpackHeaderListHandler();

        long bytes = AllocatedBy(() =>
        {
            foreach (var source in heads)
            {
                output.ResetWrittenCount();
                encoder.Encode(source, output);
                head.Reset();
                var wire = output.WrittenSpan;
                int half = wire.Length / 2;
                decoder.Decode(wire.Slice(0, half), false, head, ref handler);
                decoder.Decode(wire.Slice(half), true, head, ref handler);
            }
        });

        Assert.Equal(0, bytes);
        Assert.Equal(cases[^1].Headers.Length, head.HeaderCount);
    }

    [Fact]
    public void Decode_HuffmanStoryBytewise_AllocatesNothing()
    {
        var cases = HpackStories.Load("swift-nio-hpack-huffman", "story_05");
        var head = new RequestHead();
        var handler = new HpackHeaderListHandler();
        var decoders = new HpackDecoder[3 + Allocations.Windows * 50]; // a fresh decoder per call, every window included
        for (int i = 0; i < decoders.Length; i++)
        {
            decoders[i] = new HpackDecoder();
        }
        int next = 0;

        long bytes = AllocatedBy(() =>
        {
            var decoder = decoders[next++];
            foreach (var c in cases)
            {
                head.Reset();
                for (int i = 0; i < c.Wire.Length; i++)
                {
                    decoder.Decode(c.Wire.AsSpan(i, 1), i == c.Wire.Length - 1, head, ref handler);
                }
            }
        });

        Assert.Equal(0, bytes);
        Assert.True(HpackStories.Matches(cases[^1], head));
    }
}
