namespace ProxyCore.Http.Http2.Hpack;

/// <summary>
/// Receives each decoded field, in order. The HTTP/2 connection implements it as a struct so the
/// decoder's generic call is specialized and inlined: it routes pseudo-headers into
/// <see cref="RequestHead"/>/<see cref="ResponseHead"/> fields, checks RFC 9113 §8.3 (pseudo-headers
/// first, no duplicates, none unknown) and adds regular fields with <see cref="HttpHead.AddHeader(ByteRange, ByteRange, KnownHeader)"/>.
/// </summary>
public interface IHpackFieldHandler
{
    /// <summary>
    /// One field. Its name and value are already in <paramref name="head"/>'s arena (no copy needed
    /// to keep them); a handler that drops the field may leave them there until the head is reset.
    /// </summary>
    void OnField(HttpHead head, in HpackField field);
}

/// <summary>A decoded field: ranges of the head's arena, and what the decoder already knows about it.</summary>
/// <param name="Name">The name as sent (HTTP/2 requires lowercase; RFC 9113 §8.2.1 leaves the check to the connection).</param>
/// <param name="Value">The value as sent (RFC 9113 §8.2.1 character checks are the connection's too).</param>
/// <param name="Pseudo">Which pseudo-header the name is, or <see cref="HpackPseudoHeader.None"/> for a regular field.</param>
/// <param name="NeverIndexed">
/// Sent as "literal never indexed" (RFC 7541 §6.2.3). An intermediary "MUST use the same
/// representation" when it forwards the field: pass <see cref="HpackIndexing.NeverIndexed"/> to the encoder.
/// </param>
public readonly record struct HpackField(ByteRange Name, ByteRange Value, HpackPseudoHeader Pseudo, bool NeverIndexed);

/// <summary>RFC 9113 §8.3 pseudo-header fields (and RFC 8441's <c>:protocol</c>).</summary>
public enum HpackPseudoHeader : byte
{
    /// <summary>A regular field.</summary>
    None,
    Method,
    Scheme,
    Authority,
    Path,
    Status,
    /// <summary>RFC 8441 extended CONNECT.</summary>
    Protocol,
    /// <summary>Starts with ':' but is none of the above: RFC 9113 §8.3 makes the message malformed.</summary>
    Unknown,
}

public static class HpackPseudoHeaders
{
    private const byte Colon = (byte)':';

    public static HpackPseudoHeader Classify(ReadOnlySpan<byte> name)
    {
        if (name.IsEmpty || name[0] != Colon)
        {
            return HpackPseudoHeader.None;
        }
        return name.Length switch
        {
            5 when name.SequenceEqual(":path"u8) => HpackPseudoHeader.Path,
            7 when name.SequenceEqual(":method"u8) => HpackPseudoHeader.Method,
            7 when name.SequenceEqual(":scheme"u8) => HpackPseudoHeader.Scheme,
            7 when name.SequenceEqual(":status"u8) => HpackPseudoHeader.Status,
            9 when name.SequenceEqual(":protocol"u8) => HpackPseudoHeader.Protocol,
            10 when name.SequenceEqual(":authority"u8) => HpackPseudoHeader.Authority,
            _ => HpackPseudoHeader.Unknown,
        };
    }
}

/// <summary>
/// The plain handler: every field, pseudo-headers included, goes into the head's header list in
/// order (regular fields classified with <see cref="KnownHeaders.Classify"/>). For tests, trailers,
/// and anywhere the pseudo-headers need no routing.
/// </summary>
public struct HpackHeaderListHandler : IHpackFieldHandler
{
    public readonly void OnField(HttpHead head, in HpackField field)
    {
        var id = field.Pseudo == HpackPseudoHeader.None ? KnownHeaders.Classify(head.Get(field.Name)) : KnownHeader.Other;
        head.AddHeader(field.Name, field.Value, id);
    }
}
