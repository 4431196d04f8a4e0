using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Server.Kestrel.Core.Internal.Http;
using ProxyCore.Http;
using ProxyCore.Http.Http1;

namespace ProxyCore.Benchmarks;

/// <summary>
/// Our strict HTTP/1.1 head parser against Kestrel's <c>HttpParser&lt;T&gt;</c> on three real heads.
/// The comparison is not quite like for like, and in Kestrel's favour: Kestrel hands spans to a
/// no-op handler, while ours also copies the head into the request's arena, records offsets,
/// classifies known headers and applies the framing/Host/Connection rules.
/// </summary>
[Config(typeof(BenchmarkConfig))]
public class Http1ParserBenchmarks
{
    /// <summary>The TechEmpower plaintext request.</summary>
    private const string Plaintext =
        "GET /plaintext HTTP/1.1\r\n" +
        "Host: localhost\r\n" +
        "Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n" +
        "Connection: keep-alive\r\n\r\n";

    /// <summary>A Chrome navigation (12 fields as Chrome 131 sends them).</summary>
    private const string Chrome =
        "GET /docs/getting-started?tab=linux HTTP/1.1\r\n" +
        "Host: www.example.com\r\n" +
        "Connection: keep-alive\r\n" +
        "sec-ch-ua: \"Google Chrome\";v=\"131\", \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\n" +
        "sec-ch-ua-mobile: ?0\r\n" +
        "sec-ch-ua-platform: \"Windows\"\r\n" +
        "Upgrade-Insecure-Requests: 1\r\n" +
        "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n" +
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n" +
        "Sec-Fetch-Site: same-origin\r\n" +
        "Sec-Fetch-Mode: navigate\r\n" +
        "Accept-Encoding: gzip, deflate, br, zstd\r\n" +
        "Accept-Language: en-US,en;q=0.9\r\n" +
        "Cookie: session=3f2a9c1e8b7d4a6f; theme=dark; _ga=GA1.1.123456789.1700000000\r\n\r\n";

    private static readonly string ThirtyHeaders = BuildThirtyHeaders();

    private static string BuildThirtyHeaders()
    {
        var sb = new StringBuilder("POST /api/v2/orders/12345/items?expand=prices HTTP/1.1\r\nHost: api.internal.example:8443\r\n");
        sb.Append("Content-Type: application/json\r\nContent-Length: 512\r\nAuthorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl\r\n");
        sb.Append("X-Forwarded-For: 203.0.113.7, 10.0.0.12\r\nX-Forwarded-Proto: https\r\nX-Request-Id: 7f3c2a1b-9e8d-4c6b-a5f4-3e2d1c0b9a87\r\n");
        for (int i = sb.ToString().Split("\r\n").Length - 2; i < 30; i++)
        {
            sb.Append("X-Custom-Header-").Append(i).Append(": value-").Append(i).Append("-abcdefghijklmnopqrstuvwxyz\r\n");
        }
        return sb.Append("\r\n").ToString();
    }

    private readonly HttpParser<NullHandler> _kestrel = new();
    private readonly RequestHead _head = new();
    private ReadOnlySequence<byte> _buffer;

    [Params("plaintext", "chrome", "30-headers")]
    public string Request { get; set; } = "plaintext";

    [GlobalSetup]
    public void Setup()
    {
        var text = Request switch
        {
            "plaintext" => Plaintext,
            "chrome" => Chrome,
            _ => ThirtyHeaders,
        };
        _buffer = new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(text));
        _head.Reset();
        if (Http1Parser.TryParseRequest(_buffer, _head, Http1Limits.Default, out _, out var error) != Http1ParseResult.Complete)
        {
            throw new InvalidOperationException($"benchmark request does not parse: {error}");
        }
        var reader = new SequenceReader<byte>(_buffer);
        if (!_kestrel.ParseRequestLine(default, ref reader) || !_kestrel.ParseHeaders(default, ref reader))
        {
            throw new InvalidOperationException("Kestrel does not parse the benchmark request");
        }
    }

    [Benchmark(Baseline = true)]
    public bool Kestrel()
    {
        var reader = new SequenceReader<byte>(_buffer);
        var handler = new NullHandler();
        return _kestrel.ParseRequestLine(handler, ref reader) && _kestrel.ParseHeaders(handler, ref reader);
    }

    [Benchmark]
    public bool ProxyCore()
    {
        _head.Reset();
        return Http1Parser.TryParseRequest(_buffer, _head, Http1Limits.Default, out _, out _) == Http1ParseResult.Complete;
    }

    /// <summary>Kestrel's callbacks with nothing behind them: the parser's own cost only.</summary>
    private struct NullHandler : IHttpRequestLineHandler, IHttpHeadersHandler
    {
        public readonly void OnStartLine(HttpVersionAndMethod versionAndMethod, TargetOffsetPathLength targetPath, Span<byte> startLine)
        {
        }

        public readonly void OnHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
        {
        }

        public readonly void OnHeadersComplete(bool endStream)
        {
        }

        public readonly void OnStaticIndexedHeader(int index)
        {
        }

        public readonly void OnStaticIndexedHeader(int index, ReadOnlySpan<byte> value)
        {
        }
    }
}
