using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ProxyCore.Http.Http2.Hpack;

/// <summary>
/// RFC 7541 Appendix B, the static Huffman code, and §5.2 string rules.
/// </summary>
/// <remarks>
/// The code is canonical: within one bit length, codes are consecutive in symbol order, and each
/// length starts where the previous one ended, shifted left. So the 257 bit lengths below are the
/// whole table; the codes are rebuilt from them once (and checked against Appendix B in the tests).
///
/// Decoding walks the code tree four bits at a time: a state is one of the tree's 256 inner nodes,
/// and <see cref="Transitions"/> holds, for each state and nibble, the next state, the symbol
/// completed on the way (at most one: the shortest code is 5 bits) and whether EOS was reached.
/// Two table lookups per input byte, no per-bit branching, and the state survives the end of a
/// fragment, so a string split across CONTINUATION frames decodes in place.
/// </remarks>
internal static class HpackHuffman
{
    public const int Eos = 256;
    private const int SymbolCount = 257;
    private const int StateCount = 256;

    // Transition layout: bits 0-7 next state, bits 8-15 symbol, then the flags.
    private const uint EmitFlag = 1u << 16;
    private const uint FailFlag = 1u << 17;

    /// <summary>Appendix B bit lengths, by symbol (256 is EOS).</summary>
    private static ReadOnlySpan<byte> CodeLengths =>
    [
        13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0-15
        28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16-31
        6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // 32-47   ' ' to '/'
        5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // 48-63   '0' to '?'
        13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // 64-79   '@' to 'O'
        7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 80-95   'P' to '_'
        15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // 96-111  '`' to 'o'
        6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 112-127 'p' to DEL
        20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128-143
        24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144-159
        22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160-175
        21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176-191
        26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192-207
        19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208-223
        20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224-239
        26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240-255
        30, // 256 EOS
    ];

    /// <summary>Codes right-aligned (bit length in <see cref="CodeLengths"/>).</summary>
    private static readonly uint[] Codes = BuildCodes();

    private static readonly uint[] Transitions;

    /// <summary>
    /// States where a string may end: the root (nothing pending), or up to 7 bits deep along the
    /// all-ones path. RFC 7541 §5.2: "A padding strictly longer than 7 bits MUST be treated as a
    /// decoding error. A padding not corresponding to the most significant bits of the code for
    /// the EOS symbol MUST be treated as a decoding error."
    /// </summary>
    private static readonly bool[] Accepting = new bool[StateCount];

    static HpackHuffman()
    {
        // Build the tree: inner nodes are 0..255 (0 the root); a child >= StateCount is the leaf of symbol (child - StateCount).
        var children = new int[StateCount * 2];
        children.AsSpan().Fill(-1);
        int nodes = 1;
        for (int symbol = 0; symbol < SymbolCount; symbol++)
        {
            int length = CodeLengths[symbol];
            uint code = Codes[symbol];
            int node = 0;
            for (int bit = length - 1; bit > 0; bit--)
            {
                int slot = node * 2 + (int)((code >> bit) & 1);
                if (children[slot] < 0)
                {
                    children[slot] = nodes++;
                }
                node = children[slot];
            }
            children[node * 2 + (int)(code & 1)] = StateCount + symbol;
        }

        // Accepting states: the root and the all-ones path down to depth 7.
        Accepting[0] = true;
        for (int depth = 1, node = 0; depth <= 7; depth++)
        {
            node = children[node * 2 + 1];
            Accepting[node] = true;
        }

        Transitions = new uint[StateCount * 16];
        for (int state = 0; state < StateCount; state++)
        {
            for (int nibble = 0; nibble < 16; nibble++)
            {
                int node = state;
                uint transition = 0;
                for (int bit = 3; bit >= 0; bit--)
                {
                    int child = children[node * 2 + ((nibble >> bit) & 1)];
                    if (child >= StateCount)
                    {
                        int symbol = child - StateCount;
                        if (symbol == Eos)
                        {
                            transition |= FailFlag;
                            break;
                        }
                        transition |= EmitFlag | ((uint)symbol << 8);
                        node = 0;
                    }
                    else
                    {
                        node = child;
                    }
                }
                Transitions[state * 16 + nibble] = transition | (uint)node;
            }
        }
    }

    private static uint[] BuildCodes()
    {
        var codes = new uint[SymbolCount];
        uint code = 0;
        int previousLength = 0;
        for (int length = 1; length <= 30; length++)
        {
            for (int symbol = 0; symbol < SymbolCount; symbol++)
            {
                if (CodeLengths[symbol] != length)
                {
                    continue;
                }
                code <<= length - previousLength;
                previousLength = length;
                codes[symbol] = code++;
            }
        }
        return codes;
    }

    public static uint Code(int symbol) => Codes[symbol];

    public static int BitLength(int symbol) => CodeLengths[symbol];

    /// <summary>The most symbols <paramref name="inputLength"/> bytes can decode to, counting up to 29 bits left pending by an earlier fragment.</summary>
    public static int MaxDecodedLength(int inputLength) => (int)(((long)inputLength * 8 + 29) / 5);

    /// <summary>The fewest symbols a whole string of <paramref name="inputLength"/> bytes decodes to: up to 7 bits are padding, and no code is longer than 30 bits.</summary>
    public static int MinDecodedLength(int inputLength) => (int)(((long)inputLength * 8 - 7) / 30);

    /// <summary>
    /// Decodes a piece of a Huffman string into <paramref name="destination"/>. <paramref name="state"/>
    /// carries the position in the code tree from one piece to the next (start at 0). Returns the
    /// number of bytes written, or -1 when <paramref name="destination"/> is full and another symbol
    /// completes (the caller's size limit).
    /// </summary>
    public static int Decode(ReadOnlySpan<byte> source, Span<byte> destination, ref int state)
    {
        ref uint transitions = ref MemoryMarshal.GetArrayDataReference(Transitions);
        uint current = (uint)state;
        int written = 0;
        for (int i = 0; i < source.Length; i++)
        {
            uint b = source[i];
            uint t = Unsafe.Add(ref transitions, (nint)((current << 4) | (b >> 4)));
            if ((t & (EmitFlag | FailFlag)) != 0)
            {
                if (!Emit(t, destination, ref written))
                {
                    return -1;
                }
            }
            current = t & 0xFF;
            t = Unsafe.Add(ref transitions, (nint)((current << 4) | (b & 0xF)));
            if ((t & (EmitFlag | FailFlag)) != 0)
            {
                if (!Emit(t, destination, ref written))
                {
                    return -1;
                }
            }
            current = t & 0xFF;
        }
        state = (int)current;
        return written;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Emit(uint transition, Span<byte> destination, ref int written)
    {
        if ((transition & FailFlag) != 0)
        {
            // RFC 7541 §5.2: "A Huffman-encoded string literal containing the EOS symbol MUST be
            // treated as a decoding error."
            HpackThrow.Error(HpackError.HuffmanEos);
        }
        if ((uint)written >= (uint)destination.Length)
        {
            return false;
        }
        destination[written++] = (byte)(transition >> 8);
        return true;
    }

    /// <summary>Whether a string may end in <paramref name="state"/> (padding of at most 7 one bits).</summary>
    public static bool IsValidEnd(int state) => Accepting[state];

    /// <summary>Bytes the Huffman encoding of <paramref name="source"/> takes.</summary>
    public static int EncodedLength(ReadOnlySpan<byte> source)
    {
        ref byte lengths = ref MemoryMarshal.GetReference(CodeLengths);
        long bits = 0;
        foreach (byte b in source)
        {
            bits += Unsafe.Add(ref lengths, b);
        }
        return (int)((bits + 7) >> 3);
    }

    /// <summary>Encodes <paramref name="source"/>; <paramref name="destination"/> holds at least <see cref="EncodedLength"/> bytes. Returns the bytes written.</summary>
    public static int Encode(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        ref byte lengths = ref MemoryMarshal.GetReference(CodeLengths);
        ref uint codes = ref MemoryMarshal.GetArrayDataReference(Codes);
        ulong pending = 0;
        int bits = 0;
        int written = 0;
        foreach (byte b in source)
        {
            int length = Unsafe.Add(ref lengths, b);
            pending = (pending << length) | Unsafe.Add(ref codes, b);
            bits += length;
            while (bits >= 8)
            {
                bits -= 8;
                destination[written++] = (byte)(pending >> bits);
            }
        }
        if (bits > 0)
        {
            // RFC 7541 §5.2: pad with the most significant bits of EOS (all ones).
            destination[written++] = (byte)((pending << (8 - bits)) | (0xFFu >> bits));
        }
        return written;
    }
}
