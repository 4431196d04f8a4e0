using System.Buffers;
using System.Text;
using System.Text.RegularExpressions;
using ProxyCore.Llm.Sse;

namespace ProxyCore.Llm.Safety;

/// <summary>A deny pattern matched (or could not be evaluated in time).</summary>
/// <param name="PatternIndex">Which pattern, in config order.</param>
/// <param name="TimedOut">The match timed out: the caller fails closed (treats it as a match).</param>
/// <param name="TooManyChoices">
/// A stream's text came for a choice the stream check does not follow (index at or past
/// <see cref="DenyStreamMatcher.MaxChoices"/>, or not a number): unchecked text, so the caller fails closed.
/// </param>
public readonly record struct DenyMatch(int PatternIndex, bool TimedOut, bool TooManyChoices = false);

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
/// <remarks>
/// <para>
/// Each choice of the stream has its own window (<see cref="IStreamTextObserver.OnText"/>'s choice):
/// with <c>n</c> &gt; 1 the choices' deltas interleave, and one shared window would both hide a match
/// (another choice's text pushes the first half out) and fake one (the end of one choice's delta
/// followed by the start of another's). At most <see cref="MaxChoices"/> choices are followed; text of
/// a choice past that (or with an index that is not a number) is a match with
/// <see cref="DenyMatch.TooManyChoices"/>: unchecked text must not reach the client.
/// </para>
/// <para>One matcher per stream; text is fed in order. Work per delta is O(delta + window); memory is
/// 4 × <see cref="WindowChars"/> bytes per choice that sent text (choice 0's made up front).</para>
/// </remarks>
public sealed class DenyStreamMatcher : IStreamTextObserver
{
    /// <summary>The default carry-over: longer than any sensible deny phrase, short enough to rescan per delta.</summary>
    public const int DefaultWindowChars = 256;

    /// <summary>
    /// Choices followed per stream (indexes 0 to 15). OpenAI accepts <c>n</c> up to 128, but each choice
    /// costs its own window; a stream with more choices is cut at the first text past the cap (tune.md).
    /// </summary>
    public const int MaxChoices = 16;

    private readonly DenyPatterns _patterns;
    private readonly Window _first;
    private Window?[]? _others; // choices 1..MaxChoices-1, each made when its first text comes

    public DenyStreamMatcher(DenyPatterns patterns, int windowChars = DefaultWindowChars)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(windowChars, 1);
        _patterns = patterns;
        WindowChars = windowChars;
        _first = new Window(windowChars);
    }

    public int WindowChars { get; }

    /// <summary>Set once a delta matched: the stage cuts the stream; later calls keep returning it.</summary>
    public DenyMatch? Matched { get; private set; }

    /// <summary>Feeds the next piece of choice 0's answer text; returns the match when this piece completes one.</summary>
    public DenyMatch? Feed(ReadOnlySpan<char> delta) => Feed(0, delta);

    /// <summary>Feeds the next piece of <paramref name="choice"/>'s answer text; returns the match when this piece completes one.</summary>
    public DenyMatch? Feed(int choice, ReadOnlySpan<char> delta)
    {
        if (Matched is null && WindowOf(choice) is { } window)
        {
            Search(window, delta);
        }
        return Matched;
    }

    /// <summary>Feeds choice 0's UTF-8 text (see <see cref="FeedUtf8(int, ReadOnlySpan{byte})"/>).</summary>
    public DenyMatch? FeedUtf8(ReadOnlySpan<byte> utf8) => FeedUtf8(0, utf8);

    /// <summary>
    /// Feeds UTF-8 text (what <see cref="LlmStreamMeter"/> reads from the stream): decoded in stack-sized
    /// pieces, a sequence cut between two calls carried by the choice's decoder, so nothing is allocated per delta.
    /// </summary>
    public DenyMatch? FeedUtf8(int choice, ReadOnlySpan<byte> utf8)
    {
        if (Matched is not null || WindowOf(choice) is not { } window)
        {
            return Matched;
        }
        Span<char> chars = stackalloc char[256];
        while (!utf8.IsEmpty && Matched is null)
        {
            window.Utf8.Convert(utf8, chars, flush: false, out int bytesUsed, out int charsUsed, out _);
            Search(window, chars[..charsUsed]);
            utf8 = utf8[bytesUsed..];
        }
        return Matched;
    }

    void IStreamTextObserver.OnText(int choice, ReadOnlySpan<byte> utf8) => FeedUtf8(choice, utf8);

    /// <summary>Readies the matcher for another stream (windows of other choices are kept for reuse).</summary>
    public void Reset()
    {
        _first.Clear();
        if (_others is not null)
        {
            foreach (var window in _others)
            {
                window?.Clear();
            }
        }
        Matched = null;
    }

    /// <summary>The choice's window; null (and <see cref="Matched"/> set) for a choice past the cap.</summary>
    private Window? WindowOf(int choice)
    {
        if (choice == 0)
        {
            return _first;
        }
        if ((uint)choice >= MaxChoices)
        {
            Matched = new DenyMatch(-1, TimedOut: false, TooManyChoices: true);
            return null;
        }
        _others ??= new Window?[MaxChoices];
        return _others[choice] ??= new Window(WindowChars);
    }

    private void Search(Window window, ReadOnlySpan<char> delta)
    {
        var buffer = window.Buffer;
        while (!delta.IsEmpty)
        {
            // Search carry + as much of the delta as fits; then slide the window.
            int take = Math.Min(delta.Length, buffer.Length - window.Carry);
            delta[..take].CopyTo(buffer.AsSpan(window.Carry));
            int length = window.Carry + take;
            if (_patterns.Match(buffer.AsSpan(0, length)) is { } match)
            {
                Matched = match;
                return;
            }
            int keep = Math.Min(WindowChars, length);
            buffer.AsSpan(length - keep, keep).CopyTo(buffer);
            window.Carry = keep;
            delta = delta[take..];
        }
    }

    /// <summary>One choice's carry-over: the last <see cref="WindowChars"/> chars and a UTF-8 sequence cut between deltas.</summary>
    private sealed class Window(int windowChars)
    {
        public readonly char[] Buffer = new char[windowChars * 2];
        public readonly Decoder Utf8 = Encoding.UTF8.GetDecoder();
        public int Carry;

        public void Clear()
        {
            Carry = 0;
            Utf8.Reset();
        }
    }
}
