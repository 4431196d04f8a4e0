using System.Text;

namespace ProxyCore.Llm.Cache;

/// <summary>What a request's <c>Cache-Control</c> lets the cache do (RFC 9111 §5.2.1 request directives).</summary>
/// <param name="Read">Serve from the cache. False for <c>no-cache</c> and <c>no-store</c> (and <c>max-age=0</c>: nothing is fresh enough).</param>
/// <param name="Write">Store the answer. False for <c>no-store</c> only.</param>
/// <param name="MaxAge">From <c>max-age</c>: serve only entries at most this old; null when absent.</param>
public readonly record struct LlmCacheDirectives(bool Read, bool Write, TimeSpan? MaxAge)
{
    public static LlmCacheDirectives Default => new(true, true, null);
}

/// <summary>Parses a request's <c>Cache-Control</c> header for the LLM cache.</summary>
public static class CacheControl
{
    /// <summary>
    /// Reads the directives of one or more <c>Cache-Control</c> values (pass each header line; commas
    /// separate directives). Directive names are case-insensitive (RFC 9111 §5.2); unknown ones are
    /// ignored, as §5.2.3 requires; a malformed <c>max-age</c> is ignored rather than trusted.
    /// </summary>
    public static LlmCacheDirectives Parse(ReadOnlySpan<byte> value, LlmCacheDirectives? current = null)
    {
        var start = current ?? LlmCacheDirectives.Default;
        bool read = start.Read, write = start.Write;
        TimeSpan? maxAge = start.MaxAge;
        while (!value.IsEmpty)
        {
            int comma = IndexOfUnquotedComma(value);
            var directive = (comma < 0 ? value : value[..comma]).Trim(" \t"u8);
            value = comma < 0 ? default : value[(comma + 1)..];
            int eq = directive.IndexOf((byte)'=');
            var name = (eq < 0 ? directive : directive[..eq]).Trim(" \t"u8);
            var argument = eq < 0 ? default : directive[(eq + 1)..].Trim(" \t"u8);
            if (Ascii.EqualsIgnoreCase(name, "no-store"u8))
            {
                read = false;
                write = false;
            }
            else if (Ascii.EqualsIgnoreCase(name, "no-cache"u8))
            {
                read = false;
            }
            else if (Ascii.EqualsIgnoreCase(name, "max-age"u8))
            {
                if (argument.Length >= 2 && argument[0] == (byte)'"' && argument[^1] == (byte)'"')
                {
                    argument = argument[1..^1]; // §1.2.2: a recipient parses the quoted form too
                }
                if (TryParseDeltaSeconds(argument, out long seconds))
                {
                    maxAge = maxAge is { } prior && prior.TotalSeconds < seconds ? prior : TimeSpan.FromSeconds(seconds);
                    if (seconds == 0)
                    {
                        read = false;
                    }
                }
            }
        }
        return new LlmCacheDirectives(read, write, maxAge);
    }

    /// <summary>The string form, for callers holding the header as text.</summary>
    public static LlmCacheDirectives Parse(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return LlmCacheDirectives.Default;
        }
        Span<byte> buffer = value.Length <= 256 ? stackalloc byte[value.Length] : new byte[value.Length];
        int n = Encoding.Latin1.GetBytes(value, buffer);
        return Parse(buffer[..n]);
    }

    private static int IndexOfUnquotedComma(ReadOnlySpan<byte> value)
    {
        bool quoted = false;
        for (int i = 0; i < value.Length; i++)
        {
            byte b = value[i];
            if (b == (byte)'"')
            {
                quoted = !quoted;
            }
            else if (b == (byte)'\\' && quoted)
            {
                i++;
            }
            else if (b == (byte)',' && !quoted)
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>RFC 9111 §1.2.2: delta-seconds = 1*DIGIT; a value too large is taken as 2^31 (the RFC's "greatest integer").</summary>
    private static bool TryParseDeltaSeconds(ReadOnlySpan<byte> text, out long seconds)
    {
        seconds = 0;
        if (text.IsEmpty)
        {
            return false;
        }
        foreach (byte b in text)
        {
            if (b is < (byte)'0' or > (byte)'9')
            {
                return false;
            }
            seconds = Math.Min(seconds * 10 + (b - '0'), 2147483648L);
        }
        return true;
    }
}
