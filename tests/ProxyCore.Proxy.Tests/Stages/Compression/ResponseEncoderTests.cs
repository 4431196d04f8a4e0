using System.Buffers;
using System.IO.Compression;
using System.Text;
using ProxyCore.Proxy.Stages.Compression;
using ProxyCore.Routing.Config;
using Xunit.Abstractions;

namespace ProxyCore.Proxy.Tests.Stages.Compression;

public sealed class ResponseEncoderTests(ITestOutputHelper output)
{
    private static readonly byte[] s_text = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 4000).Select(i => $"{{\"id\":{i},\"v\":\"{i * 31 % 977}\"}}\n")));

    private static byte[] Decode(ContentCoding coding, byte[] data)
    {
        using Stream decoder = coding == ContentCoding.Brotli ? new BrotliStream(new MemoryStream(data), CompressionMode.Decompress) : new GZipStream(new MemoryStream(data), CompressionMode.Decompress);
        var result = new MemoryStream();
        decoder.CopyTo(result);
        return result.ToArray();
    }

    [Theory]
    [InlineData(ContentCoding.Gzip, "fastest", 1)]
    [InlineData(ContentCoding.Gzip, "optimal", 7)]
    [InlineData(ContentCoding.Brotli, "fastest", 1)]
    [InlineData(ContentCoding.Brotli, "smallest", 4096)]
    [InlineData(ContentCoding.Brotli, "optimal", 100_000)]
    public void EncodeFinish_SplitAnywhere_DecodesByteExact_AndEveryPrefixIsDecodable(ContentCoding coding, string level, int piece)
    {
        var settings = new ResponseCompression(new CompressionConfig { Level = level });
        var encoder = new ResponseEncoder();
        // Reused across responses, as on a keep-alive connection.
        for (int round = 0; round < 2; round++)
        {
            encoder.Start(coding, settings);
            var wire = new MemoryStream();
            int sent = 0;
            for (int offset = 0; offset < s_text.Length; offset += piece * (round + 1))
            {
                var chunk = s_text.AsMemory(offset, Math.Min(piece * (round + 1), s_text.Length - offset));
                wire.Write(encoder.Encode(new ReadOnlySequence<byte>(chunk)).Span);
                sent = offset + chunk.Length;
                if (offset == 0 || sent == s_text.Length)
                {
                    // Flushed: what went out so far decodes to what came in so far.
                    Assert.Equal(s_text.AsSpan(0, sent).ToArray(), DecodePrefix(coding, wire.ToArray(), sent));
                }
            }
            wire.Write(encoder.Finish().Span);
            encoder.Reset();
            Assert.Equal(s_text, Decode(coding, wire.ToArray()));
        }
    }

    private static byte[] DecodePrefix(ContentCoding coding, byte[] data, int expected)
    {
        using Stream decoder = coding == ContentCoding.Brotli ? new BrotliStream(new MemoryStream(data), CompressionMode.Decompress) : new GZipStream(new MemoryStream(data), CompressionMode.Decompress);
        var result = new byte[expected];
        int total = 0;
        while (total < expected)
        {
            int n = decoder.Read(result, total, expected - total);
            if (n == 0)
            {
                break;
            }
            total += n;
        }
        return result[..total];
    }

    [Theory]
    [InlineData(ContentCoding.Gzip)]
    [InlineData(ContentCoding.Brotli)]
    public void ManagedAllocationPerCompressedResponse_IsBounded(ContentCoding coding)
    {
        var settings = new ResponseCompression(new CompressionConfig());
        var encoder = new ResponseEncoder();
        var body = new ReadOnlySequence<byte>(s_text.AsMemory(0, 16 * 1024));
        for (int i = 0; i < 50; i++)
        {
            Round();
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 200; i++)
        {
            Round();
        }
        long perResponse = (GC.GetAllocatedBytesForCurrentThread() - before) / 200;
        output.WriteLine($"{coding}: {perResponse} B managed per compressed 16 KB response (4 reads)");
        // Measured 2026-12 (Debug, x64): gzip 232 B (GZipStream, DeflateStream, Deflater, handle), Brotli 32 B (SafeHandle).
        Assert.True(perResponse < 2048, $"{perResponse} B per response");

        void Round()
        {
            encoder.Start(coding, settings);
            for (int r = 0; r < 4; r++)
            {
                encoder.Encode(body.Slice(r * 4096, 4096));
            }
            encoder.Finish();
            encoder.Reset();
        }
    }
}
