using System.Buffers;
using System.Buffers.Text;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;

namespace ProxyCore.Http.Http1;

/// <summary>
/// Writes small pieces (a status line, header fields) into an <see cref="IBufferWriter{T}"/>
/// through one cached span, advancing the writer only when the span is full or on <see cref="Commit"/>:
/// a head becomes a handful of memcpys and usually a single Advance.
/// </summary>
public ref struct HeadWriter : IByteSink
{
    private const int MinimumSpanSize = 512;

    private readonly IBufferWriter<byte> _output;
    private Span<byte> _span;
    private int _buffered;

    public HeadWriter(IBufferWriter<byte> output)
    {
        _output = output;
        _span = output.GetSpan(MinimumSpanSize);
        _buffered = 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Write(scoped ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length <= _span.Length - _buffered)
        {
            bytes.CopyTo(_span.Slice(_buffered));
            _buffered += bytes.Length;
            return;
        }
        WriteSlow(bytes);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WriteSlow(scoped ReadOnlySpan<byte> bytes)
    {
        while (bytes.Length > 0)
        {
            if (_buffered == _span.Length)
            {
                _output.Advance(_buffered);
                _buffered = 0;
                _span = _output.GetSpan(Math.Max(MinimumSpanSize, Math.Min(bytes.Length, 4096)));
            }
            int n = Math.Min(bytes.Length, _span.Length - _buffered);
            bytes.Slice(0, n).CopyTo(_span.Slice(_buffered));
            _buffered += n;
            bytes = bytes.Slice(n);
        }
    }

    public void WriteHeader(scoped ReadOnlySpan<byte> name, scoped ReadOnlySpan<byte> value)
    {
        Write(name);
        Write(": "u8);
        Write(value);
        Write("\r\n"u8);
    }

    /// <summary>Every field of <paramref name="head"/>, in order.</summary>
    public void WriteHeaders(HttpHead head)
    {
        var headers = head.Headers;
        for (int i = 0; i < headers.Length; i++)
        {
            WriteHeader(head.Get(headers[i].Name), head.Get(headers[i].Value));
        }
    }

    public void WriteDecimal(long value)
    {
        Span<byte> digits = stackalloc byte[20];
        Utf8Formatter.TryFormat(value, digits, out int written);
        Write(digits.Slice(0, written));
    }

    public void WriteHex(long value)
    {
        Span<byte> digits = stackalloc byte[16];
        value.TryFormat(digits, out int written, "x");
        Write(digits.Slice(0, written));
    }

    /// <summary>Advances the output past everything written; the writer must not be used after.</summary>
    public void Commit()
    {
        if (_buffered > 0)
        {
            _output.Advance(_buffered);
            _buffered = 0;
        }
        _span = default;
    }
}

/// <summary>Status lines and reason phrases, precomputed as bytes (RFC 9110 §15).</summary>
public static class StatusLines
{
    private static readonly byte[]?[] s_lines = BuildLines();

    public static ReadOnlySpan<byte> ReasonPhrase(int status) => status switch
    {
        100 => "Continue"u8,
        101 => "Switching Protocols"u8,
        103 => "Early Hints"u8,
        200 => "OK"u8,
        201 => "Created"u8,
        202 => "Accepted"u8,
        204 => "No Content"u8,
        206 => "Partial Content"u8,
        301 => "Moved Permanently"u8,
        302 => "Found"u8,
        303 => "See Other"u8,
        304 => "Not Modified"u8,
        307 => "Temporary Redirect"u8,
        308 => "Permanent Redirect"u8,
        400 => "Bad Request"u8,
        401 => "Unauthorized"u8,
        403 => "Forbidden"u8,
        404 => "Not Found"u8,
        405 => "Method Not Allowed"u8,
        408 => "Request Timeout"u8,
        409 => "Conflict"u8,
        411 => "Length Required"u8,
        413 => "Content Too Large"u8,
        414 => "URI Too Long"u8,
        415 => "Unsupported Media Type"u8,
        417 => "Expectation Failed"u8,
        422 => "Unprocessable Content"u8,
        429 => "Too Many Requests"u8,
        431 => "Request Header Fields Too Large"u8,
        500 => "Internal Server Error"u8,
        501 => "Not Implemented"u8,
        502 => "Bad Gateway"u8,
        503 => "Service Unavailable"u8,
        504 => "Gateway Timeout"u8,
        505 => "HTTP Version Not Supported"u8,
        _ => default,
    };

    /// <summary>"HTTP/1.1 NNN Reason\r\n" for a status with a known phrase, else empty.</summary>
    public static ReadOnlySpan<byte> Http11(int status)
        => (uint)(status - 100) < (uint)s_lines.Length && s_lines[status - 100] is { } line ? line : default;

    private static byte[]?[] BuildLines()
    {
        var lines = new byte[]?[500];
        for (int status = 100; status < 600; status++)
        {
            var reason = ReasonPhrase(status);
            if (!reason.IsEmpty)
            {
                lines[status - 100] = [.. "HTTP/1.1 "u8, (byte)('0' + status / 100), (byte)('0' + status / 10 % 10), (byte)('0' + status % 10), (byte)' ', .. reason, .. "\r\n"u8];
            }
        }
        return lines;
    }
}

/// <summary>HTTP/1.1 body framing on the way out (RFC 9112 §7.1): the one place chunks are written.</summary>
public static class Http1BodyWriter
{
    /// <summary>Copies <paramref name="data"/> to <paramref name="output"/>, as one chunk when <paramref name="chunked"/>.</summary>
    public static void Write(PipeWriter output, in ReadOnlySequence<byte> data, bool chunked)
    {
        if (data.IsEmpty)
        {
            return; // an empty chunk would read as the last one
        }
        if (chunked)
        {
            var writer = new HeadWriter(output);
            writer.WriteHex(data.Length);
            writer.Write("\r\n"u8);
            writer.Commit();
        }
        foreach (var segment in data)
        {
            output.Write(segment.Span);
        }
        if (chunked)
        {
            output.Write("\r\n"u8);
        }
    }

    /// <summary>The last chunk, the trailer section (if any) and the final CRLF.</summary>
    public static void WriteLastChunk(PipeWriter output, HttpHead? trailers)
    {
        var writer = new HeadWriter(output);
        writer.Write("0\r\n"u8);
        if (trailers is not null)
        {
            writer.WriteHeaders(trailers);
        }
        writer.Write("\r\n"u8);
        writer.Commit();
    }
}
