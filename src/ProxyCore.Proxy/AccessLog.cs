using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using ProxyCore.Http;

namespace ProxyCore.Proxy;

/// <summary>
/// Access log as JSON lines, written off the hot path: the request thread copies a few fields into a
/// pooled record and queues it; one background task formats and writes. When the writer falls behind
/// (a full queue), records are dropped and counted rather than slowing requests down.
/// </summary>
public sealed class AccessLog : IAsyncDisposable
{
    private const int QueueCapacity = 8192;
    private const int MaxTargetBytes = 2048;

    private readonly Channel<Record> _queue = Channel.CreateBounded<Record>(new BoundedChannelOptions(QueueCapacity)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.Wait, // TryWrite fails when full: we drop, never wait
    });
    private readonly ConcurrentQueue<Record> _free = new();
    private readonly Stream _output;
    private readonly bool _ownsOutput;
    private readonly Task _writer;
    private long _dropped;

    public AccessLog(Stream output, bool ownsOutput)
    {
        _output = output;
        _ownsOutput = ownsOutput;
        _writer = Task.Run(WriteLoopAsync);
    }

    public long Dropped => Interlocked.Read(ref _dropped);

    public void Log(HttpExchange exchange, string route, string? upstream, int status, long durationTicks, long upstreamTicks, Stages.LlmLogFields? llm = null)
    {
        if (!_free.TryDequeue(out var record))
        {
            record = new Record();
        }
        var request = exchange.Request;
        record.Time = DateTime.UtcNow;
        record.Route = route;
        record.Upstream = upstream;
        record.Status = status;
        record.DurationTicks = durationTicks;
        record.UpstreamTicks = upstreamTicks;
        record.Llm = llm;
        record.Method = request.Method;
        record.SetBytes(ref record.MethodBytes, ref record.MethodLength, request.MethodSpan);
        var path = request.PathSpan;
        var query = request.QuerySpan;
        int targetLength = Math.Min(MaxTargetBytes, path.Length + query.Length);
        record.EnsureTarget(targetLength);
        int p = Math.Min(path.Length, targetLength);
        path.Slice(0, p).CopyTo(record.Target);
        query.Slice(0, targetLength - p).CopyTo(record.Target.AsSpan(p));
        record.TargetLength = targetLength;
        record.SetBytes(ref record.Client, ref record.ClientLength, exchange.ClientAddress);
        record.SetBytes(ref record.Host, ref record.HostLength, request.AuthoritySpan);
        record.Version = request.Version;
        if (!_queue.Writer.TryWrite(record))
        {
            Interlocked.Increment(ref _dropped);
            _free.Enqueue(record);
        }
    }

    private async Task WriteLoopAsync()
    {
        var buffer = new MemoryStream(64 * 1024);
        using var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true });
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                while (reader.TryRead(out var record))
                {
                    Format(json, record);
                    json.Flush();
                    json.Reset();
                    buffer.WriteByte((byte)'\n');
                    _free.Enqueue(record);
                    if (buffer.Length > 48 * 1024)
                    {
                        break;
                    }
                }
                await _output.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length)).ConfigureAwait(false);
                await _output.FlushAsync().ConfigureAwait(false);
                buffer.SetLength(0);
            }
        }
        catch (Exception)
        {
            // The log's destination failed (disk full, closed pipe): stop logging, never take requests down.
        }
    }

    private static void Format(Utf8JsonWriter json, Record r)
    {
        json.WriteStartObject();
        json.WriteString("time"u8, r.Time);
        json.WriteString("client"u8, r.Client.AsSpan(0, r.ClientLength));
        json.WriteString("method"u8, r.MethodBytes.AsSpan(0, r.MethodLength));
        json.WriteString("host"u8, r.Host.AsSpan(0, r.HostLength));
        json.WriteString("target"u8, r.Target.AsSpan(0, r.TargetLength));
        json.WriteString("protocol"u8, r.Version switch { HttpVersion.Http10 => "HTTP/1.0"u8, HttpVersion.Http2 => "HTTP/2"u8, _ => "HTTP/1.1"u8 });
        json.WriteNumber("status"u8, r.Status);
        json.WriteString("route"u8, r.Route);
        if (r.Upstream is not null)
        {
            json.WriteString("upstream"u8, r.Upstream);
        }
        json.WriteNumber("duration_us"u8, r.DurationTicks * 1_000_000 / Stopwatch.Frequency);
        json.WriteNumber("upstream_us"u8, r.UpstreamTicks * 1_000_000 / Stopwatch.Frequency);
        if (r.Llm is { } llm)
        {
            json.WriteStartObject("llm"u8);
            json.WriteString("key"u8, llm.Key);
            json.WriteString("provider"u8, llm.Provider);
            json.WriteString("model"u8, llm.Model);
            json.WriteNumber("prompt_tokens"u8, llm.PromptTokens);
            json.WriteNumber("completion_tokens"u8, llm.CompletionTokens);
            json.WriteNumber("cached_tokens"u8, llm.CachedTokens);
            json.WriteNumber("cost_usd"u8, llm.CostUsd);
            json.WriteString("outcome"u8, llm.Outcome);
            json.WriteEndObject();
        }
        json.WriteEndObject();
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
        if (_ownsOutput)
        {
            await _output.DisposeAsync().ConfigureAwait(false);
        }
    }

    private sealed class Record
    {
        public DateTime Time;
        public string Route = "";
        public string? Upstream;
        public int Status;
        public long DurationTicks;
        public long UpstreamTicks;
        public Stages.LlmLogFields? Llm;
        public HttpMethod Method;
        public HttpVersion Version;
        public byte[] MethodBytes = new byte[16];
        public int MethodLength;
        public byte[] Target = new byte[256];
        public int TargetLength;
        public byte[] Client = new byte[64];
        public int ClientLength;
        public byte[] Host = new byte[128];
        public int HostLength;

        public void EnsureTarget(int length)
        {
            if (Target.Length < length)
            {
                Target = new byte[Math.Max(length, Target.Length * 2)];
            }
        }

        public void SetBytes(ref byte[] field, ref int length, ReadOnlySpan<byte> value)
        {
            if (value.Length > 512)
            {
                value = value.Slice(0, 512);
            }
            if (field.Length < value.Length)
            {
                field = new byte[value.Length];
            }
            value.CopyTo(field);
            length = value.Length;
        }
    }
}
