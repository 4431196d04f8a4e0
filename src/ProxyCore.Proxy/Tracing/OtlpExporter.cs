using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Threading.Channels;
using ProxyCore.Http;

namespace ProxyCore.Proxy.Tracing;

/// <summary>
/// Exports one server span per forwarded request to an OpenTelemetry collector as OTLP/HTTP JSON
/// (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding). Off the hot path, as the
/// access log: the request copies a few fields into a pooled record; one background task batches
/// (up to 512 spans or 1 s) and posts. A full queue drops spans and counts them; a collector that
/// is down costs a failed post per batch, never a request.
/// </summary>
public sealed class OtlpExporter : IAsyncDisposable
{
    private const int QueueCapacity = 4096;
    private const int BatchSize = 512;
    private static readonly TimeSpan s_flushInterval = TimeSpan.FromSeconds(1);

    private readonly Channel<SpanRecord> _queue = Channel.CreateBounded<SpanRecord>(new BoundedChannelOptions(QueueCapacity) { SingleReader = true });
    private readonly ConcurrentQueue<SpanRecord> _free = new();
    private readonly System.Net.Http.HttpClient _http;
    private readonly Uri _endpoint;
    private readonly string _serviceName;
    private readonly Task _loop;
    private long _dropped;
    private long _exported;
    private long _failedBatches;

    public OtlpExporter(string endpoint, string serviceName)
    {
        _endpoint = new Uri(endpoint);
        _serviceName = serviceName;
        _http = new System.Net.Http.HttpClient(new System.Net.Http.SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(5) };
        _loop = Task.Run(ExportLoopAsync);
    }

    public long Exported => Interlocked.Read(ref _exported);

    public long Dropped => Interlocked.Read(ref _dropped);

    public long FailedBatches => Interlocked.Read(ref _failedBatches);

    internal void Export(HttpExchange exchange, in TraceContext trace, string route, string? upstream, int status, long elapsedTicks)
    {
        if (!_free.TryDequeue(out var record))
        {
            record = new SpanRecord();
        }
        long endNanos = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;
        record.EndUnixNanos = endNanos;
        record.StartUnixNanos = endNanos - elapsedTicks * 1_000_000_000 / Stopwatch.Frequency;
        TraceContext.Hex(trace.TraceId, record.TraceId);
        TraceContext.Hex(trace.SpanId, record.SpanId);
        record.HasParent = trace.HasParent;
        if (trace.HasParent)
        {
            TraceContext.Hex(trace.ParentSpanId, record.ParentSpanId);
        }
        record.Route = route;
        record.Upstream = upstream;
        record.Status = status;
        record.Method = exchange.Request.Method == HttpMethod.Custom ? "OTHER" : exchange.Request.Method.ToString().ToUpperInvariant();
        var path = exchange.Request.PathSpan;
        record.PathLength = Math.Min(path.Length, record.Path.Length);
        path[..record.PathLength].CopyTo(record.Path);
        if (!_queue.Writer.TryWrite(record))
        {
            Interlocked.Increment(ref _dropped);
            _free.Enqueue(record);
        }
    }

    private async Task ExportLoopAsync()
    {
        var batch = new List<SpanRecord>(BatchSize);
        var body = new MemoryStream(64 * 1024);
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            // Gather what arrives within the flush interval, up to a batch.
            using (var window = new CancellationTokenSource(s_flushInterval))
            {
                try
                {
                    while (batch.Count < BatchSize)
                    {
                        if (reader.TryRead(out var record))
                        {
                            batch.Add(record);
                        }
                        else if (!await reader.WaitToReadAsync(window.Token).ConfigureAwait(false))
                        {
                            break;
                        }
                    }
                }
                catch (OperationCanceledException)
                {
                }
            }
            if (batch.Count == 0)
            {
                continue;
            }
            body.SetLength(0);
            Write(body, batch);
            try
            {
                using var content = new System.Net.Http.ByteArrayContent(body.GetBuffer(), 0, (int)body.Length);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                using var response = await _http.PostAsync(_endpoint, content).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    Interlocked.Add(ref _exported, batch.Count);
                }
                else
                {
                    Interlocked.Increment(ref _failedBatches);
                }
            }
            catch (Exception)
            {
                Interlocked.Increment(ref _failedBatches);
            }
            foreach (var record in batch)
            {
                _free.Enqueue(record);
            }
            batch.Clear();
        }
    }

    private void Write(Stream output, List<SpanRecord> batch)
    {
        using var json = new Utf8JsonWriter(output);
        json.WriteStartObject();
        json.WriteStartArray("resourceSpans"u8);
        json.WriteStartObject();
        json.WriteStartObject("resource"u8);
        json.WriteStartArray("attributes"u8);
        WriteAttribute(json, "service.name"u8, _serviceName);
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteStartArray("scopeSpans"u8);
        json.WriteStartObject();
        json.WriteStartObject("scope"u8);
        json.WriteString("name"u8, "proxycore"u8);
        json.WriteEndObject();
        json.WriteStartArray("spans"u8);
        foreach (var span in batch)
        {
            json.WriteStartObject();
            json.WriteString("traceId"u8, span.TraceId);
            json.WriteString("spanId"u8, span.SpanId);
            if (span.HasParent)
            {
                json.WriteString("parentSpanId"u8, span.ParentSpanId);
            }
            json.WriteString("name"u8, span.Method + " " + span.Route);
            json.WriteNumber("kind"u8, 2); // SPAN_KIND_SERVER
            json.WriteString("startTimeUnixNano"u8, span.StartUnixNanos.ToString(System.Globalization.CultureInfo.InvariantCulture));
            json.WriteString("endTimeUnixNano"u8, span.EndUnixNanos.ToString(System.Globalization.CultureInfo.InvariantCulture));
            json.WriteStartArray("attributes"u8);
            WriteAttribute(json, "http.request.method"u8, span.Method);
            WriteAttribute(json, "url.path"u8, System.Text.Encoding.UTF8.GetString(span.Path, 0, span.PathLength));
            WriteAttribute(json, "http.route"u8, span.Route);
            json.WriteStartObject();
            json.WriteString("key"u8, "http.response.status_code"u8);
            json.WriteStartObject("value"u8);
            json.WriteString("intValue"u8, span.Status.ToString(System.Globalization.CultureInfo.InvariantCulture));
            json.WriteEndObject();
            json.WriteEndObject();
            if (span.Upstream is not null)
            {
                WriteAttribute(json, "proxycore.upstream"u8, span.Upstream);
            }
            json.WriteEndArray();
            json.WriteStartObject("status"u8);
            json.WriteNumber("code"u8, span.Status is 0 or >= 500 ? 2 : 0); // ERROR for server errors, else UNSET
            json.WriteEndObject();
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteAttribute(Utf8JsonWriter json, ReadOnlySpan<byte> key, string value)
    {
        json.WriteStartObject();
        json.WriteString("key"u8, key);
        json.WriteStartObject("value"u8);
        json.WriteString("stringValue"u8, value);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await Task.WhenAny(_loop, Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false);
        _http.Dispose();
    }

    private sealed class SpanRecord
    {
        public byte[] TraceId = new byte[32];
        public byte[] SpanId = new byte[16];
        public byte[] ParentSpanId = new byte[16];
        public bool HasParent;
        public long StartUnixNanos;
        public long EndUnixNanos;
        public string Route = "";
        public string? Upstream;
        public string Method = "";
        public int Status;
        public byte[] Path = new byte[512];
        public int PathLength;
    }
}
