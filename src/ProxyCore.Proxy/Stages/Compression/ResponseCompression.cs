using System.IO.Compression;
using System.Text;
using ProxyCore.Http;
using ProxyCore.Routing.Config;
using HttpMethod = ProxyCore.Http.HttpMethod;

namespace ProxyCore.Proxy.Stages.Compression;

/// <summary>A content coding the proxy can apply (RFC 9110 §8.4.1).</summary>
public enum ContentCoding : byte
{
    /// <summary>Relay the body as it came.</summary>
    None,
    Gzip,
    /// <summary>Brotli, RFC 7932.</summary>
    Brotli,
}

/// <summary>
/// A route's `compression` block, built once per snapshot: decides per response whether to compress
/// and with what, and rewrites the head to say so. Reads spans only; allocates nothing.
/// </summary>
/// <remarks>
/// Negotiation (RFC 9110 §12.5.3): each coding's weight is its own q-value in Accept-Encoding, else the
/// weight of "*", else 0 (not acceptable). The heavier of br and gzip wins; on a tie br, which is
/// smaller at the same speed for text. A q of 0 refuses a coding, so does its absence.
/// </remarks>
public sealed class ResponseCompression
{
    private const int QOne = 1000;
    private static readonly byte[] s_vary = "vary"u8.ToArray();
    private static readonly byte[] s_etag = "etag"u8.ToArray();
    private static readonly byte[] s_cacheControl = "cache-control"u8.ToArray();
    private static readonly byte[] s_contentRange = "content-range"u8.ToArray();

    private readonly bool _gzip;
    private readonly bool _brotli;
    private readonly long _minBytes;
    private readonly byte[][] _exactTypes;
    private readonly byte[][] _typePrefixes; // "text/" for "text/*"

    public ResponseCompression(CompressionConfig config)
    {
        _gzip = config.Gzip;
        _brotli = config.Brotli;
        _minBytes = config.MinBytes;
        _exactTypes = [.. config.ContentTypes.Where(t => !t.EndsWith("/*", StringComparison.Ordinal)).Select(t => Encoding.ASCII.GetBytes(t.ToLowerInvariant()))];
        _typePrefixes = [.. config.ContentTypes.Where(t => t.EndsWith("/*", StringComparison.Ordinal)).Select(t => Encoding.ASCII.GetBytes(t[..^1].ToLowerInvariant()))];
        (GzipLevel, BrotliQuality) = config.Level switch
        {
            "smallest" => (CompressionLevel.SmallestSize, 11),
            "optimal" => (CompressionLevel.Optimal, 5),
            _ => (CompressionLevel.Fastest, 1),
        };
    }

    public CompressionLevel GzipLevel { get; }

    /// <summary>Brotli quality 0–11.</summary>
    public int BrotliQuality { get; }

    /// <summary>
    /// Decides the coding for this response and, when it compresses, rewrites the head: adds
    /// Content-Encoding, weakens a strong ETag (the bytes differ from the upstream's representation).
    /// Adds `Vary: accept-encoding` whenever the answer depends on the client's Accept-Encoding, also
    /// when this client gets it uncompressed, so a shared cache keeps the two apart.
    /// </summary>
    /// <param name="framing">The upstream's body framing (Content-Length already removed from the head).</param>
    public ContentCoding Apply(RequestHead request, ResponseHead response, BodyFraming framing, long contentLength)
    {
        int status = response.StatusCode;
        // No body, or one a coding must not touch: 204/304 have none, 206 is a byte range of the
        // unencoded representation (RFC 9110 §14.4), HEAD describes a body we would not send. An
        // HTTP/1.0 client has no chunked coding: an encoded body of unknown length would have to end
        // with the connection, so it keeps its Content-Length and keep-alive instead (nginx's
        // gzip_http_version 1.1 default makes the same call).
        if (request.Method == HttpMethod.Head || request.Version == HttpVersion.Http10 || status is < 200 or 204 or 206 or 304 || framing == BodyFraming.None ||
            (framing == BodyFraming.ContentLength && contentLength < Math.Max(1, _minBytes)))
        {
            return ContentCoding.None;
        }
        if (response.IndexOf(KnownHeader.ContentEncoding) >= 0 || response.IndexOf(s_contentRange) >= 0 ||
            !IsCompressibleType(response) || HasNoTransform(response))
        {
            return ContentCoding.None;
        }
        AddVary(response);
        var coding = Negotiate(request);
        if (coding == ContentCoding.None)
        {
            return coding;
        }
        response.AddHeader("content-encoding"u8, coding == ContentCoding.Brotli ? "br"u8 : "gzip"u8);
        WeakenETag(response);
        return coding;
    }

    /// <summary>The coding the client prefers among those enabled, by the rule in the remarks.</summary>
    public ContentCoding Negotiate(RequestHead request)
    {
        int br = -1, gzip = -1, star = -1;
        var headers = request.Headers;
        for (int i = 0; i < headers.Length; i++)
        {
            if (headers[i].Id != KnownHeader.AcceptEncoding)
            {
                continue;
            }
            var value = request.Get(headers[i].Value);
            foreach (var range in value.Split((byte)','))
            {
                var member = value[range];
                int semicolon = member.IndexOf((byte)';');
                var coding = (semicolon >= 0 ? member[..semicolon] : member).Trim(" \t"u8);
                int q = semicolon >= 0 ? ParseWeight(member[(semicolon + 1)..]) : QOne;
                if (Ascii.EqualsIgnoreCase(coding, "br"u8))
                {
                    br = Math.Max(br, q);
                }
                else if (Ascii.EqualsIgnoreCase(coding, "gzip"u8) || Ascii.EqualsIgnoreCase(coding, "x-gzip"u8))
                {
                    gzip = Math.Max(gzip, q);
                }
                else if (coding.SequenceEqual("*"u8))
                {
                    star = Math.Max(star, q);
                }
            }
        }
        int brWeight = !_brotli ? 0 : br >= 0 ? br : Math.Max(star, 0);
        int gzipWeight = !_gzip ? 0 : gzip >= 0 ? gzip : Math.Max(star, 0);
        if (brWeight == 0 && gzipWeight == 0)
        {
            return ContentCoding.None;
        }
        return brWeight >= gzipWeight ? ContentCoding.Brotli : ContentCoding.Gzip;
    }

    /// <summary>RFC 9110 §12.4.2: `q=` then 0, 0.x{1,3} or 1(.0{0,3}); in thousandths. Malformed: 0 (refuse rather than guess).</summary>
    internal static int ParseWeight(ReadOnlySpan<byte> parameters)
    {
        foreach (var range in parameters.Split((byte)';'))
        {
            var parameter = parameters[range].Trim(" \t"u8);
            if (parameter.Length < 2 || (parameter[0] | 0x20) != 'q' || parameter[1] != '=')
            {
                continue;
            }
            var number = parameter[2..];
            if (number.IsEmpty || number.Length > 5 || (number[0] != '0' && number[0] != '1'))
            {
                return 0;
            }
            int value = (number[0] - '0') * QOne;
            if (number.Length > 1)
            {
                if (number[1] != '.')
                {
                    return 0;
                }
                int scale = 100;
                for (int i = 2; i < number.Length; i++, scale /= 10)
                {
                    if (!char.IsAsciiDigit((char)number[i]))
                    {
                        return 0;
                    }
                    value += (number[i] - '0') * scale;
                }
            }
            return value > QOne ? 0 : value;
        }
        return QOne;
    }

    private bool IsCompressibleType(ResponseHead response)
    {
        if (!response.TryGetValue(KnownHeader.ContentType, out var value))
        {
            return false; // unknown content: it may already be compressed
        }
        int semicolon = value.IndexOf((byte)';');
        var type = (semicolon >= 0 ? value[..semicolon] : value).Trim(" \t"u8);
        foreach (var exact in _exactTypes)
        {
            if (Ascii.EqualsIgnoreCase(type, exact))
            {
                return true;
            }
        }
        foreach (var prefix in _typePrefixes)
        {
            if (type.Length > prefix.Length && Ascii.EqualsIgnoreCase(type[..prefix.Length], prefix))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>RFC 9111 §5.2.2.6: an intermediary must not transform the content of a no-transform response.</summary>
    private static bool HasNoTransform(ResponseHead response)
    {
        var headers = response.Headers;
        for (int i = 0; i < headers.Length; i++)
        {
            if (Ascii.EqualsIgnoreCase(response.Get(headers[i].Name), s_cacheControl) && ListContains(response.Get(headers[i].Value), "no-transform"u8))
            {
                return true;
            }
        }
        return false;
    }

    private static void AddVary(ResponseHead response)
    {
        var headers = response.Headers;
        for (int i = 0; i < headers.Length; i++)
        {
            if (Ascii.EqualsIgnoreCase(response.Get(headers[i].Name), s_vary))
            {
                var value = response.Get(headers[i].Value);
                if (ListContains(value, "accept-encoding"u8) || ListContains(value, "*"u8))
                {
                    return;
                }
            }
        }
        // RFC 9110 §5.3: another Vary line is the same as appending to the list.
        response.AddHeader("vary"u8, "accept-encoding"u8);
    }

    /// <summary>RFC 9110 §8.8.3: a strong validator names exact bytes, which we change; W/ keeps it usable for If-None-Match.</summary>
    private static void WeakenETag(ResponseHead response)
    {
        int index = response.IndexOf(s_etag);
        if (index < 0)
        {
            return;
        }
        var value = response.GetValue(index);
        if (value.StartsWith("W/"u8))
        {
            return;
        }
        Span<byte> weak = stackalloc byte[256];
        bool fits = value.Length + 2 <= weak.Length;
        if (fits)
        {
            "W/"u8.CopyTo(weak);
            value.CopyTo(weak[2..]);
        }
        response.RemoveHeaderAt(index);
        if (fits)
        {
            response.AddHeader("etag"u8, weak[..(value.Length + 2)]);
        }
    }

    private static bool ListContains(ReadOnlySpan<byte> list, ReadOnlySpan<byte> token)
    {
        foreach (var range in list.Split((byte)','))
        {
            var member = list[range].Trim(" \t"u8);
            int equals = member.IndexOf((byte)'=');
            if (Ascii.EqualsIgnoreCase(equals >= 0 ? member[..equals] : member, token))
            {
                return true;
            }
        }
        return false;
    }
}
