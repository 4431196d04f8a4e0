using System.Buffers;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ProxyCore.Http.Http1;

/// <summary>Byte names and character classes of RFC 9110/9112, as vectorizable <see cref="SearchValues{T}"/>.</summary>
internal static class HttpChars
{
    public const byte CR = (byte)'\r';
    public const byte LF = (byte)'\n';
    public const byte SP = (byte)' ';
    public const byte HTAB = (byte)'\t';
    public const byte Colon = (byte)':';
    public const byte Comma = (byte)',';
    public const byte Semicolon = (byte)';';
    public const byte Question = (byte)'?';
    public const byte Slash = (byte)'/';

    // RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
    //                          "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    public static readonly SearchValues<byte> TChar = SearchValues.Create(
        "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"u8);

    // RFC 9110 §5.5: field-value = *field-content; field-vchar = VCHAR / obs-text, plus SP and HTAB
    // inside. What is left over is the CTLs other than HTAB, and DEL.
    public static readonly SearchValues<byte> InvalidFieldValue = SearchValues.Create(
        "\0\x01\x02\x03\x04\x05\x06\x07\x08\x0A\x0B\x0C\x0D\x0E\x0F\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1A\x1B\x1C\x1D\x1E\x1F\x7F"u8);

    // RFC 9110 §7.2 / RFC 3986 §3.2.2: Host = uri-host [ ":" port ]; uri-host = IP-literal / IPv4address / reg-name;
    // reg-name = *( unreserved / pct-encoded / sub-delims ); IP-literal adds "[" ":" "]" and hex digits.
    public static readonly SearchValues<byte> HostChar = SearchValues.Create(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=%:[]"u8);

    /// <summary>
    /// Index of the first byte that is not a tchar, or -1: what <c>IndexOfAnyExcept(TChar)</c> answers, by table. Field
    /// names are short (a dozen bytes), where the SearchValues scan costs more in setup than it saves: under Native AOT's
    /// default x86-64 baseline (no SSSE3) it takes its scalar fallback, ~3× the instructions of this loop (callgrind).
    /// </summary>
    public static int IndexOfNonTChar(ReadOnlySpan<byte> s)
    {
        ReadOnlySpan<byte> table = TCharTable;
        for (int i = 0; i < s.Length; i++)
        {
            if (table[s[i]] == 0)
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>
    /// Index of the first byte a field value may not hold (the CTLs other than HTAB, and DEL), or -1: what
    /// <c>IndexOfAny(InvalidFieldValue)</c> answers, 16 bytes at a time with SSE2-only operations (the SearchValues scan
    /// needs SSSE3 to vectorize, which the default AOT baseline lacks).
    /// </summary>
    public static int IndexOfInvalidFieldValue(ReadOnlySpan<byte> s)
    {
        int i = 0;
        if (Vector128.IsHardwareAccelerated && s.Length >= Vector128<byte>.Count)
        {
            ref byte start = ref MemoryMarshal.GetReference(s);
            int last = s.Length - Vector128<byte>.Count;
            while (true)
            {
                var v = Vector128.LoadUnsafe(ref start, (nuint)i);
                var control = Vector128.Equals(Vector128.Min(v, Vector128.Create((byte)0x1F)), v); // v <= 0x1F
                var bad = Vector128.AndNot(control, Vector128.Equals(v, Vector128.Create(HTAB))) | Vector128.Equals(v, Vector128.Create((byte)0x7F));
                uint mask = bad.ExtractMostSignificantBits();
                if (mask != 0)
                {
                    return i + BitOperations.TrailingZeroCount(mask);
                }
                if (i == last)
                {
                    return -1;
                }
                i = Math.Min(i + Vector128<byte>.Count, last); // the last load overlaps bytes already found clean
            }
        }
        for (; i < s.Length; i++)
        {
            byte b = s[i];
            if (b < 0x20 ? b != HTAB : b == 0x7F)
            {
                return i;
            }
        }
        return -1;
    }

    // 1 where the byte is a tchar (the TChar set above).
    private static ReadOnlySpan<byte> TCharTable =>
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
        0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    // RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ): the same set as a field value.

    public static bool IsOws(byte b) => b == SP || b == HTAB;

    public static ReadOnlySpan<byte> TrimOws(ReadOnlySpan<byte> s)
    {
        int start = 0;
        while (start < s.Length && IsOws(s[start]))
        {
            start++;
        }
        int end = s.Length;
        while (end > start && IsOws(s[end - 1]))
        {
            end--;
        }
        return s.Slice(start, end - start);
    }
}
