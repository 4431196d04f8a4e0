using System.Net.ServerSentEvents;
using BenchmarkDotNet.Attributes;
using ProxyCore.Llm.Sse;

namespace ProxyCore.Benchmarks;

/// <summary>
/// Our <see cref="SseReader"/>, alone and under the <see cref="LlmStreamMeter"/>, against the runtime's
/// <see cref="SseParser"/> on the recorded streams of shared/corpus/llm-streams, each repeated to about
/// 1 MB and handed over in 4 KB chunks (what a socket read gives). SseParser pulls from a Stream and
/// is given an item parser that only measures the data span (no string), so both sides do the same
/// work: find events, hand out their data. The meter adds one Utf8JsonReader pass over the data of
/// every event it needs (all of Chat's chunks; Responses skips its bookkeeping events unparsed), and
/// since one body here holds hundreds of repeated answers, its text window also reaches the tokenizer.
/// </summary>
[Config(typeof(BenchmarkConfig))]
public class SseBenchmarks
{
    private const int TargetBytes = 1 << 20;
    private const int ChunkBytes = 4096;

    private byte[] _body = [];
    private readonly SseReader _reader = new();
    private LlmStreamMeter _meter = null!;

    [Params("openai-chat-usage.sse", "anthropic-messages.sse", "openai-responses.sse")]
    public string Stream { get; set; } = "";

    private LlmStreamFormat Format => Stream switch
    {
        "anthropic-messages.sse" => LlmStreamFormat.AnthropicMessages,
        "openai-responses.sse" => LlmStreamFormat.OpenAIResponses,
        _ => LlmStreamFormat.OpenAIChat,
    };

    [GlobalSetup]
    public void Setup()
    {
        var one = File.ReadAllBytes(Path.Combine(CorpusRoot(), "llm-streams", Stream));
        var body = new List<byte>(TargetBytes + one.Length);
        while (body.Count < TargetBytes)
        {
            body.AddRange(one);
        }
        _body = body.ToArray();
        _meter = new LlmStreamMeter(Format);
    }

    /// <summary>The runtime's parser over the same bytes, as a stream read in 4 KB reads.</summary>
    [Benchmark(Baseline = true)]
    public int SseParser_Runtime()
    {
        int events = 0;
        var parser = SseParser.Create(new ChunkedStream(_body, ChunkBytes), static (type, data) => data.Length);
        foreach (var item in parser.Enumerate())
        {
            events += item.Data;
        }
        return events;
    }

    [Benchmark]
    public int SseReader_Alone()
    {
        _reader.Reset();
        var handler = new CountingHandler();
        var body = _body.AsSpan();
        for (int i = 0; i < body.Length; i += ChunkBytes)
        {
            _reader.Read(body.Slice(i, Math.Min(ChunkBytes, body.Length - i)), ref handler);
        }
        return handler.Bytes;
    }

    [Benchmark]
    public long SseReader_WithMeter()
    {
        _meter.Reset(Format);
        var body = _body.AsSpan();
        for (int i = 0; i < body.Length; i += ChunkBytes)
        {
            _meter.Observe(body.Slice(i, Math.Min(ChunkBytes, body.Length - i)));
        }
        _meter.Complete();
        return _meter.Usage.CompletionTokens;
    }

    private struct CountingHandler : ISseEventHandler
    {
        public int Bytes;

        public void OnEvent(in SseEvent sseEvent) => Bytes += sseEvent.Data.Length;
    }

    /// <summary>A read-only stream over an array that returns at most <c>chunk</c> bytes a read, as a socket would.</summary>
    private sealed class ChunkedStream(byte[] data, int chunk) : Stream
    {
        private int _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => data.Length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int n = Math.Min(Math.Min(buffer.Length, chunk), data.Length - _position);
            data.AsSpan(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>../shared/corpus beside the repository root (the folder holding ProxyCore.sln).</summary>
    private static string CorpusRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ProxyCore.sln")))
        {
            dir = dir.Parent;
        }
        return dir?.Parent is null
            ? throw new InvalidOperationException($"ProxyCore.sln not found above {AppContext.BaseDirectory}")
            : Path.Combine(dir.Parent.FullName, "shared", "corpus");
    }
}
