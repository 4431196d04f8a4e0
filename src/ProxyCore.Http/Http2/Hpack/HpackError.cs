using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace ProxyCore.Http.Http2.Hpack;

/// <summary>
/// Why a header block could not be decoded. Every value is a connection error of type
/// COMPRESSION_ERROR (RFC 9113 §4.3: "A decoding error in a field block MUST be treated as a
/// connection error of type COMPRESSION_ERROR"): once a block is abandoned half-way the dynamic
/// table is out of step with the peer's, so no later block on the connection can be trusted.
/// </summary>
public enum HpackError : byte
{
    None,
    /// <summary>RFC 7541 §6.1: "The index value of 0 is not used."</summary>
    IndexZero,
    /// <summary>RFC 7541 §2.3.3: an index past the static and dynamic tables.</summary>
    IndexOutOfRange,
    /// <summary>RFC 7541 §5.1: an integer that does not fit in 31 bits (or spends more continuation bytes than one could need).</summary>
    IntegerOverflow,
    /// <summary>RFC 7541 §5.2: the EOS symbol inside a Huffman-encoded string.</summary>
    HuffmanEos,
    /// <summary>RFC 7541 §5.2: padding longer than 7 bits, or not the most significant bits of EOS (all ones).</summary>
    HuffmanBadPadding,
    /// <summary>RFC 7541 §6.3: a dynamic table size update larger than the SETTINGS_HEADER_TABLE_SIZE limit.</summary>
    SizeUpdateTooLarge,
    /// <summary>RFC 7541 §4.2: a dynamic table size update after the first field of a block.</summary>
    SizeUpdateNotAtBlockStart,
    /// <summary>RFC 7541 §4.2: our limit was lowered, and the next block did not start with the size update that acknowledges it.</summary>
    SizeUpdateMissing,
    /// <summary>The block ended (END_HEADERS) inside a field representation.</summary>
    TruncatedBlock,
    /// <summary>RFC 9113 §6.5.2 SETTINGS_MAX_HEADER_LIST_SIZE: the decoded list (names + values + 32 per field) grew past the limit.</summary>
    HeaderListTooLarge,
}

/// <summary>A header block was malformed or too large; <see cref="Error"/> says why. Maps to COMPRESSION_ERROR (0x9).</summary>
public sealed class HpackException : Exception
{
    /// <summary>RFC 9113 §7: COMPRESSION_ERROR (0x09), the connection error every HPACK failure maps to.</summary>
    public const uint CompressionError = 0x9;

    public HpackException(HpackError error)
        : base($"HPACK decoding failed: {error}")
    {
        Error = error;
    }

    public HpackError Error { get; }

    /// <summary>The HTTP/2 error code for the GOAWAY this failure ends the connection with.</summary>
    public uint Http2ErrorCode => CompressionError;
}

internal static class HpackThrow
{
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Error(HpackError error) => throw new HpackException(error);
}
