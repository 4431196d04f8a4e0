using System.Text;

namespace ProxyCore.Http;

/// <summary>Headers the proxy acts on, classified once when the head is parsed.</summary>
public enum KnownHeader : byte
{
    Other,
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    ProxyConnection,
    TE,
    Trailer,
    Upgrade,
    Expect,
    ProxyAuthenticate,
    ProxyAuthorization,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    Forwarded,
    Via,
    ContentType,
    Authorization,
    Cookie,
    AcceptEncoding,
    ContentEncoding,
    Date,
    Server,
    /// <summary>W3C trace context (the proxy writes its own hop's value).</summary>
    TraceParent,
}

public static class KnownHeaders
{
    /// <summary>Classifies a header name (ASCII case-insensitive, RFC 9110 §5.1).</summary>
    public static KnownHeader Classify(ReadOnlySpan<byte> name)
    {
        switch (name.Length)
        {
            case 2:
                if (Ascii.EqualsIgnoreCase(name, "te"u8)) return KnownHeader.TE;
                break;
            case 3:
                if (Ascii.EqualsIgnoreCase(name, "via"u8)) return KnownHeader.Via;
                break;
            case 4:
                if (Ascii.EqualsIgnoreCase(name, "host"u8)) return KnownHeader.Host;
                if (Ascii.EqualsIgnoreCase(name, "date"u8)) return KnownHeader.Date;
                break;
            case 6:
                if (Ascii.EqualsIgnoreCase(name, "expect"u8)) return KnownHeader.Expect;
                if (Ascii.EqualsIgnoreCase(name, "cookie"u8)) return KnownHeader.Cookie;
                if (Ascii.EqualsIgnoreCase(name, "server"u8)) return KnownHeader.Server;
                break;
            case 7:
                if (Ascii.EqualsIgnoreCase(name, "trailer"u8)) return KnownHeader.Trailer;
                if (Ascii.EqualsIgnoreCase(name, "upgrade"u8)) return KnownHeader.Upgrade;
                break;
            case 9:
                if (Ascii.EqualsIgnoreCase(name, "forwarded"u8)) return KnownHeader.Forwarded;
                break;
            case 10:
                if (Ascii.EqualsIgnoreCase(name, "connection"u8)) return KnownHeader.Connection;
                if (Ascii.EqualsIgnoreCase(name, "keep-alive"u8)) return KnownHeader.KeepAlive;
                break;
            case 11:
                if (Ascii.EqualsIgnoreCase(name, "traceparent"u8)) return KnownHeader.TraceParent;
                break;
            case 12:
                if (Ascii.EqualsIgnoreCase(name, "content-type"u8)) return KnownHeader.ContentType;
                break;
            case 13:
                if (Ascii.EqualsIgnoreCase(name, "authorization"u8)) return KnownHeader.Authorization;
                break;
            case 14:
                if (Ascii.EqualsIgnoreCase(name, "content-length"u8)) return KnownHeader.ContentLength;
                break;
            case 15:
                if (Ascii.EqualsIgnoreCase(name, "x-forwarded-for"u8)) return KnownHeader.XForwardedFor;
                if (Ascii.EqualsIgnoreCase(name, "accept-encoding"u8)) return KnownHeader.AcceptEncoding;
                break;
            case 16:
                if (Ascii.EqualsIgnoreCase(name, "x-forwarded-host"u8)) return KnownHeader.XForwardedHost;
                if (Ascii.EqualsIgnoreCase(name, "proxy-connection"u8)) return KnownHeader.ProxyConnection;
                if (Ascii.EqualsIgnoreCase(name, "content-encoding"u8)) return KnownHeader.ContentEncoding;
                break;
            case 17:
                if (Ascii.EqualsIgnoreCase(name, "transfer-encoding"u8)) return KnownHeader.TransferEncoding;
                if (Ascii.EqualsIgnoreCase(name, "x-forwarded-proto"u8)) return KnownHeader.XForwardedProto;
                break;
            case 18:
                if (Ascii.EqualsIgnoreCase(name, "proxy-authenticate"u8)) return KnownHeader.ProxyAuthenticate;
                break;
            case 19:
                if (Ascii.EqualsIgnoreCase(name, "proxy-authorization"u8)) return KnownHeader.ProxyAuthorization;
                break;
        }
        return KnownHeader.Other;
    }

    /// <summary>
    /// RFC 9110 §7.6.1: hop-by-hop fields a proxy must not forward (plus the de-facto ones
    /// that clients still send: Keep-Alive, Proxy-Connection). Fields named in Connection
    /// are removed too, by the relay.
    /// </summary>
    public static bool IsHopByHop(KnownHeader id) => id is KnownHeader.Connection or KnownHeader.KeepAlive
        or KnownHeader.ProxyConnection or KnownHeader.TE or KnownHeader.Trailer or KnownHeader.TransferEncoding
        or KnownHeader.Upgrade or KnownHeader.ProxyAuthenticate or KnownHeader.ProxyAuthorization;
}
