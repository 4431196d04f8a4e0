using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
    // Names by length, for Classify. Each entry keeps the name as the same (overlapping) 8-byte words Classify
    // loads from the input, and a mask with 0x20 on every letter byte: (input | mask) == name holds exactly when the
    // input is the name in any letter case (a non-letter byte must match as is, so '\r' cannot pass for '-').
    private static readonly Entry[][] s_byLength = Build(
        ("host", KnownHeader.Host), ("date", KnownHeader.Date),
        ("expect", KnownHeader.Expect), ("cookie", KnownHeader.Cookie), ("server", KnownHeader.Server),
        ("trailer", KnownHeader.Trailer), ("upgrade", KnownHeader.Upgrade),
        ("forwarded", KnownHeader.Forwarded),
        ("connection", KnownHeader.Connection), ("keep-alive", KnownHeader.KeepAlive),
        ("traceparent", KnownHeader.TraceParent),
        ("content-type", KnownHeader.ContentType),
        ("authorization", KnownHeader.Authorization),
        ("content-length", KnownHeader.ContentLength),
        ("x-forwarded-for", KnownHeader.XForwardedFor), ("accept-encoding", KnownHeader.AcceptEncoding),
        ("x-forwarded-host", KnownHeader.XForwardedHost), ("proxy-connection", KnownHeader.ProxyConnection),
        ("content-encoding", KnownHeader.ContentEncoding),
        ("transfer-encoding", KnownHeader.TransferEncoding), ("x-forwarded-proto", KnownHeader.XForwardedProto),
        ("proxy-authenticate", KnownHeader.ProxyAuthenticate),
        ("proxy-authorization", KnownHeader.ProxyAuthorization));

    private const int MaxLength = 19;

    /// <summary>Classifies a header name (ASCII case-insensitive, RFC 9110 §5.1).</summary>
    public static KnownHeader Classify(ReadOnlySpan<byte> name)
    {
        int length = name.Length;
        if (length < 4)
        {
            // The two short ones, "te" and "via", byte by byte.
            if (length == 2 && (name[0] | 0x20) == 't' && (name[1] | 0x20) == 'e')
            {
                return KnownHeader.TE;
            }
            if (length == 3 && (name[0] | 0x20) == 'v' && (name[1] | 0x20) == 'i' && (name[2] | 0x20) == 'a')
            {
                return KnownHeader.Via;
            }
            return KnownHeader.Other;
        }
        if (length > MaxLength)
        {
            return KnownHeader.Other;
        }
        var candidates = s_byLength[length];
        if (candidates.Length == 0)
        {
            return KnownHeader.Other;
        }
        Load(name, out ulong a, out ulong b, out ulong c);
        foreach (ref readonly var entry in candidates.AsSpan())
        {
            if (((a | entry.MaskA) == entry.A) & ((b | entry.MaskB) == entry.B) & ((c | entry.MaskC) == entry.C))
            {
                return entry.Id;
            }
        }
        return KnownHeader.Other;
    }

    // 4–7 bytes: two overlapping 4-byte words; 8–16: two overlapping 8-byte words; 17–24: three. Every byte is covered.
    private static void Load(ReadOnlySpan<byte> name, out ulong a, out ulong b, out ulong c)
    {
        ref byte first = ref MemoryMarshal.GetReference(name);
        int length = name.Length;
        if (length < 8)
        {
            a = Unsafe.ReadUnaligned<uint>(ref first);
            b = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref first, length - 4));
            c = 0;
        }
        else
        {
            a = Unsafe.ReadUnaligned<ulong>(ref first);
            b = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref first, length - 8));
            c = length > 16 ? Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref first, 8)) : 0;
        }
    }

    private static Entry[][] Build(params (string Name, KnownHeader Id)[] names)
    {
        var byLength = new List<Entry>[MaxLength + 1];
        for (int i = 0; i < byLength.Length; i++)
        {
            byLength[i] = [];
        }
        foreach (var (name, id) in names)
        {
            byte[] bytes = Encoding.ASCII.GetBytes(name);
            byte[] mask = new byte[bytes.Length];
            for (int i = 0; i < bytes.Length; i++)
            {
                mask[i] = bytes[i] is >= (byte)'a' and <= (byte)'z' ? (byte)0x20 : (byte)0;
            }
            Load(bytes, out ulong a, out ulong b, out ulong c);
            Load(mask, out ulong ma, out ulong mb, out ulong mc);
            byLength[bytes.Length].Add(new Entry(a, b, c, ma, mb, mc, id));
        }
        var result = new Entry[MaxLength + 1][];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = [.. byLength[i]];
        }
        return result;
    }

    private readonly record struct Entry(ulong A, ulong B, ulong C, ulong MaskA, ulong MaskB, ulong MaskC, KnownHeader Id);

    /// <summary>
    /// RFC 9110 §7.6.1: hop-by-hop fields a proxy must not forward (plus the de-facto ones
    /// that clients still send: Keep-Alive, Proxy-Connection). Fields named in Connection
    /// are removed too, by the relay.
    /// </summary>
    public static bool IsHopByHop(KnownHeader id) => id is KnownHeader.Connection or KnownHeader.KeepAlive
        or KnownHeader.ProxyConnection or KnownHeader.TE or KnownHeader.Trailer or KnownHeader.TransferEncoding
        or KnownHeader.Upgrade or KnownHeader.ProxyAuthenticate or KnownHeader.ProxyAuthorization;
}
