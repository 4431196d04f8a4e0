using System.Buffers;

namespace ProxyCore.Http.Http2;

/// <summary>Outcome of <see cref="Http2Preface.Check"/>.</summary>
public enum Http2PrefaceStatus : byte
{
    /// <summary>What has arrived matches the preface so far; wait for more (nothing consumed).</summary>
    Incomplete,
    /// <summary>The whole preface is there; advance to <c>consumed</c>, where the client's SETTINGS frame starts.</summary>
    Match,
    /// <summary>Not the HTTP/2 client preface: not h2c prior knowledge, or a broken client.</summary>
    Mismatch,
}

/// <summary>The client connection preface (RFC 9113 §3.4).</summary>
public static class Http2Preface
{
    /// <summary>
    /// §3.4: "the connection preface starts with the string "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n". This
    /// sequence MUST be followed by a SETTINGS frame".
    /// </summary>
    public static ReadOnlySpan<byte> ClientPreface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    /// <summary>24 octets: 0x505249202a20485454502f322e300d0a0d0a534d0d0a0d0a.</summary>
    public const int Length = 24;

    /// <summary>
    /// Checks the start of <paramref name="buffer"/> against the client preface. A mismatch is
    /// reported as soon as one byte differs, so an HTTP/1.1 request line fails at its first byte and
    /// the connection can be handed to the HTTP/1.1 parser (h2c by prior knowledge, RFC 9113 §3.3).
    /// </summary>
    /// <remarks>
    /// §3.4: "Clients and servers MUST treat an invalid connection preface as a connection error
    /// (Section 5.4.1) of type PROTOCOL_ERROR." The caller decides between that and falling back to
    /// HTTP/1.1; on a connection chosen by ALPN "h2" only the former is right.
    /// </remarks>
    public static Http2PrefaceStatus Check(in ReadOnlySequence<byte> buffer, out SequencePosition consumed)
    {
        consumed = buffer.Start;
        var preface = ClientPreface;
        var first = buffer.FirstSpan;
        if (first.Length >= Length)
        {
            if (!first.StartsWith(preface))
            {
                return Http2PrefaceStatus.Mismatch;
            }
            consumed = buffer.GetPosition(Length);
            return Http2PrefaceStatus.Match;
        }

        // Across segments (or short): compare piece by piece.
        int matched = 0;
        foreach (var memory in buffer)
        {
            var span = memory.Span;
            int n = Math.Min(span.Length, Length - matched);
            if (!span[..n].SequenceEqual(preface.Slice(matched, n)))
            {
                return Http2PrefaceStatus.Mismatch;
            }
            matched += n;
            if (matched == Length)
            {
                consumed = buffer.GetPosition(Length);
                return Http2PrefaceStatus.Match;
            }
        }
        return Http2PrefaceStatus.Incomplete;
    }
}
