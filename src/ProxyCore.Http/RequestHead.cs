namespace ProxyCore.Http;

/// <summary>
/// A request head as every protocol produces it: HTTP/1.1 from the request line and Host, HTTP/2
/// from the pseudo-headers. The router, stages and relay read only this, never the wire format.
/// </summary>
public sealed class RequestHead : HttpHead
{
    public HttpMethod Method { get; set; }

    /// <summary>The method's bytes as sent (also for <see cref="HttpMethod.Custom"/>).</summary>
    public ByteRange MethodBytes { get; set; }

    public RequestTargetForm TargetForm { get; set; }

    /// <summary>"http" or "https": from an absolute-form target, else set by the connection (TLS or not).</summary>
    public ByteRange Scheme { get; set; }

    /// <summary>host[:port] — from the absolute/authority-form target or :authority, else the Host header.</summary>
    public ByteRange Authority { get; set; }

    /// <summary>The path without the query (origin-form "/a/b"); "*" for asterisk-form.</summary>
    public ByteRange Path { get; set; }

    /// <summary>The query including its leading '?', or empty.</summary>
    public ByteRange Query { get; set; }

    /// <summary>True when the request carries Expect: 100-continue.</summary>
    public bool ExpectContinue { get; set; }

    /// <summary>True when the client asked to switch protocols (Connection: upgrade + Upgrade).</summary>
    public bool IsUpgrade { get; set; }

    public ReadOnlySpan<byte> MethodSpan => Get(MethodBytes);

    public ReadOnlySpan<byte> AuthoritySpan => Get(Authority);

    public ReadOnlySpan<byte> PathSpan => Get(Path);

    public ReadOnlySpan<byte> QuerySpan => Get(Query);

    /// <summary>Authority without the port: what host routing matches on.</summary>
    public ReadOnlySpan<byte> HostSpan
    {
        get
        {
            var authority = AuthoritySpan;
            if (authority.Length > 0 && authority[0] == (byte)'[')
            {
                int end = authority.IndexOf((byte)']');
                return end > 0 ? authority.Slice(0, end + 1) : authority;
            }
            int colon = authority.LastIndexOf((byte)':');
            return colon >= 0 ? authority.Slice(0, colon) : authority;
        }
    }

    public override void Reset()
    {
        base.Reset();
        Method = HttpMethod.Get;
        MethodBytes = default;
        TargetForm = RequestTargetForm.Origin;
        Scheme = default;
        Authority = default;
        Path = default;
        Query = default;
        ExpectContinue = false;
        IsUpgrade = false;
    }
}

/// <summary>A response head: status and headers; framing decided with the request it answers.</summary>
public sealed class ResponseHead : HttpHead
{
    public int StatusCode { get; set; }

    /// <summary>Reason phrase as received (HTTP/1.x), may be empty.</summary>
    public ByteRange Reason { get; set; }

    public override void Reset()
    {
        base.Reset();
        StatusCode = 0;
        Reason = default;
    }
}

/// <summary>RFC 9112 §3.2 request-target forms.</summary>
public enum RequestTargetForm : byte
{
    Origin,
    Absolute,
    Authority,
    Asterisk,
}

/// <summary>Known methods; anything else is <see cref="Custom"/> with its bytes in <see cref="RequestHead.MethodBytes"/>.</summary>
public enum HttpMethod : byte
{
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Trace,
    Connect,
    Custom,
}

public static class HttpMethods
{
    /// <summary>RFC 9110 §9.2.2: a retry of these cannot change the outcome.</summary>
    public static bool IsIdempotent(HttpMethod method) => method is HttpMethod.Get or HttpMethod.Head
        or HttpMethod.Put or HttpMethod.Delete or HttpMethod.Options or HttpMethod.Trace;

    public static ReadOnlySpan<byte> ToBytes(HttpMethod method) => method switch
    {
        HttpMethod.Get => "GET"u8,
        HttpMethod.Head => "HEAD"u8,
        HttpMethod.Post => "POST"u8,
        HttpMethod.Put => "PUT"u8,
        HttpMethod.Delete => "DELETE"u8,
        HttpMethod.Options => "OPTIONS"u8,
        HttpMethod.Patch => "PATCH"u8,
        HttpMethod.Trace => "TRACE"u8,
        HttpMethod.Connect => "CONNECT"u8,
        _ => default,
    };

    /// <summary>Maps method bytes (case-sensitive, RFC 9110 §9.1) to the enum.</summary>
    public static HttpMethod Parse(ReadOnlySpan<byte> method) => method.Length switch
    {
        3 when method.SequenceEqual("GET"u8) => HttpMethod.Get,
        3 when method.SequenceEqual("PUT"u8) => HttpMethod.Put,
        4 when method.SequenceEqual("POST"u8) => HttpMethod.Post,
        4 when method.SequenceEqual("HEAD"u8) => HttpMethod.Head,
        5 when method.SequenceEqual("PATCH"u8) => HttpMethod.Patch,
        5 when method.SequenceEqual("TRACE"u8) => HttpMethod.Trace,
        6 when method.SequenceEqual("DELETE"u8) => HttpMethod.Delete,
        7 when method.SequenceEqual("OPTIONS"u8) => HttpMethod.Options,
        7 when method.SequenceEqual("CONNECT"u8) => HttpMethod.Connect,
        _ => HttpMethod.Custom,
    };
}
