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

    // Both digits of every byte value as one little-endian pair: a load and a 2-byte store per byte.
    private static readonly ushort[] s_hexPairs = BuildHexPairs();

    /// <summary>Lowercase hex (the spec's HEXDIGLC) of <paramref name="bytes"/>, two digits each, into <paramref name="destination"/>.</summary>
    public static void Hex(ReadOnlySpan<byte> bytes, Span<byte> destination)
    {
        // Callgrind: the indexed per-digit loop took ~21 instructions a byte, Convert.TryToHexStringLower ~57 (the AOT
        // build's x86-64 baseline has no SSSE3 shuffle, so its vector path is emulated); this about 5.
        if (destination.Length < 2 * bytes.Length)
        {
            throw new ArgumentException("The destination is shorter than two digits per byte.", nameof(destination));
        }
        ref ushort pairs = ref MemoryMarshal.GetArrayDataReference(s_hexPairs);
        ref byte to = ref MemoryMarshal.GetReference(destination);
        for (int i = 0; i < bytes.Length; i++)
        {
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref to, 2 * i), Unsafe.Add(ref pairs, bytes[i]));
        }
    }

    private static ushort[] BuildHexPairs()
    {
        var pairs = new ushort[256];
        ReadOnlySpan<byte> digits = "0123456789abcdef"u8;
        for (int b = 0; b < 256; b++)
        {
            // The first digit at the lower address: low byte on little-endian, high byte on big-endian.
            pairs[b] = BitConverter.IsLittleEndian
                ? (ushort)(digits[b >> 4] | (digits[b & 0xF] << 8))
                : (ushort)((digits[b >> 4] << 8) | digits[b & 0xF]);
        }
        return pairs;
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
