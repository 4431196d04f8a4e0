using System.Runtime.CompilerServices;

namespace ProxyCore.Http.Http2.Hpack;

/// <summary>
/// RFC 7541 §5.1 prefixed integers.
/// <code>
///   0   1   2   3   4   5   6   7
/// +---+---+---+---+---+---+---+---+
/// | ? | ? | ? |       Value       |      value &lt; 2^N - 1: fits in the N-bit prefix
/// +---+---+---+-------------------+
///
/// +---+---+---+---+---+---+---+---+
/// | ? | ? | ? | 1   1   1   1   1 |      otherwise: prefix all ones, then
/// +---+---+---+-------------------+
/// | 1 |    Value-(2^N-1) LSB      |      7 bits per byte, least significant first,
/// +---+---------------------------+
///                ...
/// +---+---------------------------+
/// | 0 |    Value-(2^N-1) MSB      |      high bit clear on the last byte
/// +---+---------------------------+
/// </code>
/// </summary>
internal static class HpackInteger
{
    private const byte ContinuationBit = 0x80;
    private const byte PayloadMask = 0x7F;

    /// <summary>
    /// 31 bits of value take at most five continuation bytes (shifts 0, 7, 14, 21, 28). RFC 7541 §5.1:
    /// "Integer encodings that exceed implementation limits ... MUST be treated as decoding errors";
    /// bounding the shift also stops an endless run of 0x80 bytes.
    /// </summary>
    private const int MaxShift = 28;

    /// <summary>The largest integer a representation of <paramref name="prefixBits"/> bits can write into <paramref name="destination"/>.</summary>
    public const int MaxEncodedLength = 6;

    /// <summary>
    /// Adds continuation bytes from <paramref name="source"/> at <paramref name="position"/> to a
    /// value whose prefix was all ones. Resumable: <paramref name="value"/> and <paramref name="shift"/>
    /// carry the partial value when the fragment ends first (returns false).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryContinue(ReadOnlySpan<byte> source, ref int position, ref int value, ref int shift)
    {
        while ((uint)position < (uint)source.Length)
        {
            byte b = source[position++];
            long next = value + ((long)(b & PayloadMask) << shift);
            if (next > int.MaxValue || shift > MaxShift)
            {
                HpackThrow.Error(HpackError.IntegerOverflow);
            }
            value = (int)next;
            if ((b & ContinuationBit) == 0)
            {
                return true;
            }
            shift += 7;
        }
        return false;
    }

    /// <summary>Writes <paramref name="value"/> with an N-bit prefix; <paramref name="firstByte"/> holds the representation's pattern bits above the prefix.</summary>
    public static int Write(Span<byte> destination, int value, int prefixBits, byte firstByte)
    {
        int max = (1 << prefixBits) - 1;
        if (value < max)
        {
            destination[0] = (byte)(firstByte | value);
            return 1;
        }
        destination[0] = (byte)(firstByte | max);
        value -= max;
        int i = 1;
        while (value >= ContinuationBit)
        {
            destination[i++] = (byte)((value & PayloadMask) | ContinuationBit);
            value >>= 7;
        }
        destination[i++] = (byte)value;
        return i;
    }

    /// <summary>How many bytes <see cref="Write"/> takes for <paramref name="value"/>.</summary>
    public static int Length(int value, int prefixBits)
    {
        int max = (1 << prefixBits) - 1;
        if (value < max)
        {
            return 1;
        }
        value -= max;
        int n = 2;
        while (value >= ContinuationBit)
        {
            value >>= 7;
            n++;
        }
        return n;
    }
}
