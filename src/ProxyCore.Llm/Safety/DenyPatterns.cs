using System.Buffers;
using System.Text;
using System.Text.RegularExpressions;
using ProxyCore.Llm.Sse;

namespace ProxyCore.Llm.Safety;

/// <summary>A deny pattern matched (or could not be evaluated in time).</summary>
/// <param name="PatternIndex">Which pattern, in config order.</param>
/// <param name="TimedOut">The match timed out: the caller fails closed (treats it as a match).</param>
public readonly record struct DenyMatch(int PatternIndex, bool TimedOut);

/// <summary>
/// The deny patterns of a route: regular expressions a prompt or an answer must not match. Compiled
/// with <see cref="RegexOptions.NonBacktracking"/> (linear time in the input, whatever the pattern — a
/// config cannot plant a catastrophic backtracker) and a match timeout as a second bound.
/// </summary>
public sealed class DenyPatterns
{
    private readonly Regex[] _patterns;

    /// <param name="patterns">.NET regex syntax; constructs NonBacktracking lacks (backreferences, lookarounds, atomic groups) are refused.</param>
    /// <param name="ignoreCase">Match case-insensitively (invariant culture).</param>
    /// <param name="timeout">Per match; default 200 ms (linear-time matching takes microseconds; the bound is for a starved CPU, where a tighter one refused answers that were fine).</param>
    /// <exception cref="ArgumentException">A pattern is invalid; the message names its index (the config validator maps it to the JSON path).</exception>
    public DenyPatterns(IReadOnlyList<string> patterns, bool ignoreCase = true, TimeSpan? timeout = null)
    {
        var options = RegexOptions.NonBacktracking | RegexOptions.CultureInvariant | (ignoreCase ? RegexOptions.IgnoreCase : 0);
        _patterns = new Regex[patterns.Count];
        for (int i = 0; i < patterns.Count; i++)
        {
            try
            {
                _patterns[i] = new Regex(patterns[i], options, timeout ?? TimeSpan.FromMilliseconds(200));
                // The automaton is built lazily: pay for its first states here, at config load, not on the first request.
                _ = _patterns[i].IsMatch("The quick brown fox jumps over the lazy dog. 0123456789 {\"a\":[1,2]}");
            }
            catch (Exception ex) when (ex is ArgumentException or NotSupportedException)
            {
                throw new ArgumentException($"deny pattern {i} is not a valid non-backtracking regex: {ex.Message}", nameof(patterns), ex);
            }
        }
    }

    public int Count => _patterns.Length;

    /// <summary>The first pattern matching <paramref name="text"/>, or null.</summary>
    public DenyMatch? Match(ReadOnlySpan<char> text)
    {
        for (int i = 0; i < _patterns.Length; i++)
        {
            try
            {
                if (_patterns[i].IsMatch(text))
                {
                    return new DenyMatch(i, TimedOut: false);
                }
            }
            catch (RegexMatchTimeoutException)
            {
                return new DenyMatch(i, TimedOut: true);
            }
        }
        return null;
    }

    /// <summary>The first pattern matching UTF-8 <paramref name="utf8"/> (decoded on the stack, or in a pooled buffer when long), or null.</summary>
    public DenyMatch? MatchUtf8(ReadOnlySpan<byte> utf8)
    {
        const int StackChars = 256;
        char[]? rented = null;
        Span<char> chars = utf8.Length <= StackChars ? stackalloc char[StackChars] : (rented = ArrayPool<char>.Shared.Rent(utf8.Length));
        try
        {
            int n = Encoding.UTF8.GetChars(utf8, chars);
            return Match(chars[..n]);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<char>.Shared.Return(rented);
            }
        }
    }
}

/// <summary>
/// Checks streamed answer text against <see cref="DenyPatterns"/> as it arrives, without holding the
/// answer: each delta is searched together with the last <see cref="WindowChars"/> chars before it,
/// so a match cut across deltas is still found as long as it is at most <see cref="WindowChars"/> + 1
/// chars long (longer matches may be missed across a cut — keep deny patterns short and specific).
/// </summary>
/// <remarks>One matcher per stream; text is fed in order. Work per delta is O(delta + window).</remarks>
public sealed class DenyStreamMatcher : IStreamTextObserver
{
    /// <summary>The default carry-over: longer than any sensible deny phrase, short enough to rescan per delta.</summary>
    public const int DefaultWindowChars = 256;

    private readonly DenyPatterns _patterns;
    private readonly char[] _buffer;
    private readonly Decoder _utf8 = Encoding.UTF8.GetDecoder();
    private int _carry;

    public DenyStreamMatcher(DenyPatterns patterns, int windowChars = DefaultWindowChars)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(windowChars, 1);
        _patterns = patterns;
        WindowChars = windowChars;
        _buffer = new char[windowChars * 2];
    }

    public int WindowChars { get; }

    /// <summary>Set once a delta matched: the stage cuts the stream; later calls keep returning it.</summary>
    public DenyMatch? Matched { get; private set; }

    /// <summary>Feeds the next piece of answer text; returns the match when this piece completes one.</summary>
    public DenyMatch? Feed(ReadOnlySpan<char> delta)
    {
        if (Matched is not null)
        {
            return Matched;
        }
        while (!delta.IsEmpty)
        {
            // Search carry + as much of the delta as fits; then slide the window.
            int take = Math.Min(delta.Length, _buffer.Length - _carry);
            delta[..take].CopyTo(_buffer.AsSpan(_carry));
            int length = _carry + take;
            if (_patterns.Match(_buffer.AsSpan(0, length)) is { } match)
            {
                Matched = match;
                return match;
            }
            int keep = Math.Min(WindowChars, length);
            _buffer.AsSpan(length - keep, keep).CopyTo(_buffer);
            _carry = keep;
            delta = delta[take..];
        }
        return null;
    }

    /// <summary>
    /// Feeds UTF-8 text (what <see cref="LlmStreamMeter"/> reads from the stream): decoded in stack-sized
    /// pieces, a sequence cut between two calls carried by the decoder, so nothing is allocated per delta.
    /// </summary>
    public DenyMatch? FeedUtf8(ReadOnlySpan<byte> utf8)
    {
        Span<char> chars = stackalloc char[256];
        while (!utf8.IsEmpty && Matched is null)
        {
            _utf8.Convert(utf8, chars, flush: false, out int bytesUsed, out int charsUsed, out _);
            Feed(chars[..charsUsed]);
            utf8 = utf8[bytesUsed..];
        }
        return Matched;
    }

    void IStreamTextObserver.OnText(ReadOnlySpan<byte> utf8) => FeedUtf8(utf8);

    /// <summary>Readies the matcher for another stream.</summary>
    public void Reset()
    {
        _carry = 0;
        _utf8.Reset();
        Matched = null;
    }
}
