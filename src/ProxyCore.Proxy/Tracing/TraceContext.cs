using System.Buffers.Text;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ProxyCore.Proxy.Tracing;

/// <summary>
/// This hop's W3C trace context (https://www.w3.org/TR/trace-context/): the trace id is kept from
/// the client's `traceparent` (or made), the span id is ours, and the client's span becomes our parent.
/// </summary>
internal struct TraceContext
{
    // traceparent = version "-" trace-id "-" parent-id "-" trace-flags  (00-<32 hex>-<16 hex>-<2 hex>)
    public const int HeaderLength = 55;

    public InlineTraceId TraceId;
    public InlineSpanId SpanId;
    public InlineSpanId ParentSpanId;
    public bool HasParent;
    public byte Flags;
    public bool Active;

    /// <summary>Continues the client's trace when its traceparent is valid, else starts one (sampled).</summary>
    public void Begin(ReadOnlySpan<byte> clientTraceParent)
    {
        Active = true;
        HasParent = TryParse(clientTraceParent, ref this);
        if (!HasParent)
        {
            Random.Shared.NextBytes(TraceId);
            Flags = 0x01; // sampled: we start the trace, so we decide
        }
        Random.Shared.NextBytes(SpanId);
    }

    /// <summary>"00-{trace}-{our span}-{flags}" for the forwarded request.</summary>
    public readonly void Format(Span<byte> destination)
    {
        "00-"u8.CopyTo(destination);
        Hex(TraceId, destination[3..35]);
        destination[35] = (byte)'-';
        Hex(SpanId, destination[36..52]);
        destination[52] = (byte)'-';
        Hex([Flags], destination[53..55]);
    }

    private static bool TryParse(ReadOnlySpan<byte> value, ref TraceContext context)
    {
        // Version 00 has exactly this length; a later version may append fields after the flags.
        if (value.Length < HeaderLength || value[2] != '-' || value[35] != '-' || value[52] != '-' ||
            (value.Length > HeaderLength && value[55] != '-') || value[..2].SequenceEqual("ff"u8))
        {
            return false;
        }
        Span<byte> flags = stackalloc byte[1];
        if (!Unhex(value[3..35], context.TraceId) || !Unhex(value[36..52], context.ParentSpanId) || !Unhex(value[53..55], flags) ||
            ((ReadOnlySpan<byte>)context.TraceId).IndexOfAnyExcept((byte)0) < 0 || ((ReadOnlySpan<byte>)context.ParentSpanId).IndexOfAnyExcept((byte)0) < 0)
        {
            return false; // all-zero ids are invalid (W3C trace context §3.2.2.3, §3.2.2.4)
        }
        context.Flags = flags[0];
        return true;
    }

    // "00".."ff" as the two bytes of each value in memory order: one load and one 2-byte store per input byte.
    private static readonly ushort[] s_hexPairs = BuildHexPairs();

    private static ushort[] BuildHexPairs()
    {
        var pairs = new ushort[256];
        ReadOnlySpan<byte> digits = "0123456789abcdef"u8;
        for (int i = 0; i < pairs.Length; i++)
        {
            Span<byte> pair = [digits[i >> 4], digits[i & 0xF]];
            pairs[i] = MemoryMarshal.Read<ushort>(pair);
        }
        return pairs;
    }

    /// <summary>Lowercase hex of <paramref name="bytes"/> into the first 2 × length bytes of <paramref name="destination"/>.</summary>
    public static void Hex(ReadOnlySpan<byte> bytes, Span<byte> destination)
    {
        if (destination.Length < 2 * bytes.Length)
        {
            throw new ArgumentException("The destination is shorter than twice the bytes.", nameof(destination));
        }
        // A pair per byte through unchecked refs: the bounds-checked nibble loop over a string was ~500 instructions per
        // proxied request (callgrind), Convert.TryToHexStringLower's Vector128 path in the AOT build ~1 400.
        ref ushort pairs = ref MemoryMarshal.GetArrayDataReference(s_hexPairs);
        ref byte source = ref MemoryMarshal.GetReference(bytes);
        ref byte target = ref MemoryMarshal.GetReference(destination);
        for (int i = 0; i < bytes.Length; i++)
        {
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref target, 2 * i), Unsafe.Add(ref pairs, Unsafe.Add(ref source, i)));
        }
    }

    private static bool Unhex(ReadOnlySpan<byte> hex, Span<byte> destination)
    {
        for (int i = 0; i < destination.Length; i++)
        {
            int hi = Nibble(hex[2 * i]), lo = Nibble(hex[2 * i + 1]);
            if ((hi | lo) < 0)
            {
                return false;
            }
            destination[i] = (byte)(hi << 4 | lo);
        }
        return true;
    }

    // Lowercase only: the spec's HEXDIGLC.
    private static int Nibble(byte c) => c is >= (byte)'0' and <= (byte)'9' ? c - '0' : c is >= (byte)'a' and <= (byte)'f' ? c - 'a' + 10 : -1;
}

[System.Runtime.CompilerServices.InlineArray(16)]
internal struct InlineTraceId
{
    private byte _element0;
}

[System.Runtime.CompilerServices.InlineArray(8)]
internal struct InlineSpanId
{
    private byte _element0;
}
