using ProxyCore.Http.Http1;

namespace ProxyCore.Http.Tests.Http1;

/// <summary>
/// The parser's hand-written scans must answer exactly what the SearchValues scans they replace answer: every byte
/// value at every position of spans from 0 to 48 bytes (so the vector path, its overlapping last load and the scalar
/// tail all see every byte), on a background of valid bytes.
/// </summary>
public class HttpCharsTests
{
    [Fact]
    public void IndexOfInvalidFieldValue_MatchesTheSearchValuesScan()
    {
        for (int length = 0; length <= 48; length++)
        {
            var span = new byte[length];
            for (int position = 0; position < length; position++)
            {
                for (int value = 0; value < 256; value++)
                {
                    Array.Fill(span, (byte)'a');
                    span[position] = (byte)value;
                    if (position + 1 < length)
                    {
                        span[^1] = 0x01; // a later invalid byte must not win over an earlier one
                    }
                    int expected = span.AsSpan().IndexOfAny(HttpChars.InvalidFieldValue);
                    Assert.True(expected == HttpChars.IndexOfInvalidFieldValue(span), $"length {length}, byte 0x{value:X2} at {position}");
                }
            }
            Array.Fill(span, (byte)'\t');
            Assert.Equal(-1, HttpChars.IndexOfInvalidFieldValue(span));
        }
    }

    [Fact]
    public void IndexOfNonTChar_MatchesTheSearchValuesScan()
    {
        for (int length = 0; length <= 24; length++)
        {
            var span = new byte[length];
            for (int position = 0; position < length; position++)
            {
                for (int value = 0; value < 256; value++)
                {
                    Array.Fill(span, (byte)'x');
                    span[position] = (byte)value;
                    int expected = span.AsSpan().IndexOfAnyExcept(HttpChars.TChar);
                    Assert.True(expected == HttpChars.IndexOfNonTChar(span), $"length {length}, byte 0x{value:X2} at {position}");
                }
            }
        }
    }
}
