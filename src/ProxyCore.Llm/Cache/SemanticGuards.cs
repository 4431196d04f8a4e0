using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;

namespace ProxyCore.Llm.Cache;

/// <summary>Which guard told two questions apart (flags: several may).</summary>
[Flags]
public enum GuardConflict : byte
{
    None = 0,

    /// <summary>Different numbers or arithmetic (<c>2+2</c> vs <c>2+3</c>, "10 GB" vs "20 GB").</summary>
    Numbers = 1,

    /// <summary>A different count of negations (<c>not</c>, <c>never</c>, <c>without</c>, <c>-n't</c>…).</summary>
    Negation = 2,

    /// <summary>Opposite sides of an antonym pair (<c>enable</c>/<c>disable</c>, <c>before</c>/<c>after</c>…).</summary>
    Antonym = 4,

    /// <summary>Different named entities, or the same ones in another order (capitalized words, acronyms, identifiers).</summary>
    Entities = 8,

    /// <summary>Different quoted or code spans.</summary>
    Quoted = 16,
}

/// <summary>
/// What embeddings blur, fingerprinted: a semantic hit needs the fingerprints of the two questions to
/// agree (<see cref="Compare"/>). 40 bytes, stored beside each vector of the index.
/// </summary>
/// <remarks>Each part is a 64-bit hash of a canonical list, so comparing two signatures is five compares.</remarks>
public readonly record struct GuardSignature(ulong Numbers, ulong Antonyms, ulong Entities, ulong Quoted, int Negations)
{
    /// <summary>The guards that disagree; <see cref="GuardConflict.None"/> means a semantic hit is allowed.</summary>
    public GuardConflict Compare(in GuardSignature other)
    {
        var conflict = GuardConflict.None;
        if (Numbers != other.Numbers)
        {
            conflict |= GuardConflict.Numbers;
        }
        if (Negations != other.Negations)
        {
            conflict |= GuardConflict.Negation;
        }
        if (Antonyms != other.Antonyms)
        {
            conflict |= GuardConflict.Antonym;
        }
        if (Entities != other.Entities)
        {
            conflict |= GuardConflict.Entities;
        }
        if (Quoted != other.Quoted)
        {
            conflict |= GuardConflict.Quoted;
        }
        return conflict;
    }
}

/// <summary>
/// Computes <see cref="GuardSignature"/>s. English word lists; text in other languages gets numbers,
/// entities and quoted spans guarded, and its negations and antonyms unguarded (the embedding alone).
/// </summary>
/// <remarks>
/// <para>Why each guard (DESIGN.md, "LLM stage"): measured with MiniLM, questions differing only by a
/// negation or antonym scored a median cosine of 0.88 and only by a number 0.89, against 0.90 for
/// paraphrases — no threshold separates them, so these differences are checked literally.</para>
/// <list type="bullet">
/// <item>Numbers: digit runs and arithmetic with operators (spaces dropped: "2 + 2" = "2+2"); number
/// words (two, twenty, hundred…) and "plus/minus/times/divided by" are read as digits and operators
/// first, so "two plus two" = "2+2". Ordered: "10 to 20" ≠ "20 to 10".</item>
/// <item>Negations: the count of negating words, including every <c>-n't</c> contraction; "never" and
/// "without" count.</item>
/// <item>Antonyms: for each pair group (with synonyms and inflections on each side: enable, enabled,
/// activate, turn on…) which side(s) the text uses; "turn on"/"turn off", "log in"/"log out" read as
/// phrases. A side used in one text and absent in the other also conflicts (precision first).</item>
/// <item>Entities: capitalized words that are not common words, acronyms, words mixing letters and
/// digits (2FA, S3, GPT-4) and identifiers (snake_case, dotted.names, camelCase), lowercased, in
/// order: "English to French" ≠ "French to English".</item>
/// <item>Quoted and code spans: text in "…", “…”, `…` and ```…```, exact, in order.</item>
/// </list>
/// </remarks>
public static class SemanticGuards
{
    private static readonly Dictionary<string, (int Group, int Side)> AntonymWords = BuildAntonyms(out AntonymPhrases);
    private static readonly Dictionary<string, (int Group, int Side)> AntonymPhrases;
    private static readonly Dictionary<string, (int, int)>.AlternateLookup<ReadOnlySpan<char>> AntonymLookup = AntonymWords.GetAlternateLookup<ReadOnlySpan<char>>();

    private static readonly HashSet<string> Negations = new(StringComparer.Ordinal)
    {
        "not", "no", "never", "none", "nobody", "nothing", "nowhere", "neither", "nor", "without", "cannot", "cant", "dont",
        "doesnt", "isnt", "arent", "wasnt", "werent", "wont", "wouldnt", "shouldnt", "couldnt", "didnt", "hasnt", "havent",
        "hadnt", "mustnt", "neednt", "aint", "except", "excluding", "lacking", "non",
    };

    private static readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> NegationLookup = Negations.GetAlternateLookup<ReadOnlySpan<char>>();

    private static readonly Dictionary<string, string> NumberWords = new(StringComparer.Ordinal)
    {
        ["zero"] = "0", ["one"] = "1", ["two"] = "2", ["three"] = "3", ["four"] = "4", ["five"] = "5", ["six"] = "6",
        ["seven"] = "7", ["eight"] = "8", ["nine"] = "9", ["ten"] = "10", ["eleven"] = "11", ["twelve"] = "12",
        ["thirteen"] = "13", ["fourteen"] = "14", ["fifteen"] = "15", ["sixteen"] = "16", ["seventeen"] = "17",
        ["eighteen"] = "18", ["nineteen"] = "19", ["twenty"] = "20", ["thirty"] = "30", ["forty"] = "40", ["fifty"] = "50",
        ["sixty"] = "60", ["seventy"] = "70", ["eighty"] = "80", ["ninety"] = "90", ["hundred"] = "100",
        ["thousand"] = "1000", ["million"] = "1000000", ["billion"] = "1000000000", ["dozen"] = "12", ["half"] = "0.5",
        ["plus"] = "+", ["minus"] = "-", ["times"] = "*", ["multiplied"] = "*", ["divided"] = "/", ["squared"] = "^2", ["cubed"] = "^3",
        ["percent"] = "%",
    };

    private static readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> NumberWordLookup = NumberWords.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>Capitalized words that are not names: sentence starters, pronouns, question words, common verbs.</summary>
    private static readonly HashSet<string> CommonWords = new(StringComparer.Ordinal)
    {
        "i", "a", "an", "the", "how", "what", "why", "when", "where", "which", "who", "whom", "whose", "is", "are", "was",
        "were", "do", "does", "did", "can", "could", "would", "should", "will", "shall", "may", "might", "must", "please",
        "tell", "give", "show", "explain", "describe", "list", "write", "make", "help", "find", "get", "let", "lets", "in",
        "on", "at", "for", "to", "of", "and", "or", "but", "if", "so", "my", "me", "we", "our", "you", "your", "it", "its",
        "this", "that", "these", "those", "there", "here", "hi", "hello", "hey", "thanks", "thank", "ok", "okay", "yes",
        "no", "not", "is", "be", "any", "some", "all", "best", "good", "quick", "simple", "steps", "step", "ways", "way",
        "guide", "instructions", "question", "compare", "convert", "translate", "summarize", "define", "calculate",
        "create", "set", "use", "using", "with", "without", "from", "by", "about", "into", "after", "before", "also",
        "now", "then", "again", "just", "really", "very", "much", "many", "more", "most", "less", "one", "two", "new",
        "old", "am", "has", "have", "had", "need", "want", "know", "see", "like", "work", "works", "fix", "add",
        "remove", "delete", "enable", "disable", "turn", "change", "update", "install", "run", "start", "stop", "open",
        "close", "check", "recommend", "suggest", "name", "pick", "choose", "difference", "between", "vs", "versus",
        "whats", "hows", "wheres", "whos", "whys", "whens", "im", "ive", "id", "ill", "thats", "theres", "heres", "its",
    };

    private static readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> CommonLookup = CommonWords.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>The signature of <paramref name="text"/>.</summary>
    public static GuardSignature Compute(string text)
    {
        var numbers = new XxHash3(1);
        var antonyms = new List<int>();
        var entities = new XxHash3(2);
        var quoted = new XxHash3(3);
        int negations = 0;

        QuotedSpans(text, quoted);

        var numeric = new StringBuilder(text.Length);
        Span<char> lower = stackalloc char[64];
        Span<char> folded = stackalloc char[64];
        int i = 0;
        bool sentenceStart = true;
        string previousLower = "";
        while (i < text.Length)
        {
            char c = text[i];
            if (!IsWordChar(c))
            {
                if (c is '.' or '?' or '!' or '\n')
                {
                    sentenceStart = true;
                }
                numeric.Append(c);
                i++;
                continue;
            }
            int start = i;
            while (i < text.Length && (IsWordChar(text[i]) || IsInnerJoiner(text, i)))
            {
                i++;
            }
            var word = text.AsSpan(start, i - start);
            int lowerLength = Math.Min(word.Length, lower.Length);
            word[..lowerLength].ToLowerInvariant(lower);
            var lw = lower[..lowerLength];
            int foldedLength = 0;
            foreach (char ch in lw)
            {
                if (ch is not ('\'' or '’'))
                {
                    folded[foldedLength++] = ch;
                }
            }
            var key = folded[..foldedLength];

            // Negations: listed words and every -n't contraction.
            if (NegationLookup.Contains(key) || lw.EndsWith("n't") || lw.EndsWith("n’t"))
            {
                negations++;
            }

            // Antonyms: single words, then two-word phrases ("turn on").
            if (AntonymLookup.TryGetValue(key, out var side))
            {
                antonyms.Add(side.Item1 * 2 + side.Item2);
            }
            if (previousLower.Length > 0 && AntonymPhrases.TryGetValue(previousLower + " " + key.ToString(), out var phrase))
            {
                antonyms.Add(phrase.Group * 2 + phrase.Side);
            }

            // Numbers: digits as they are; number words and operator words as digits and symbols.
            if (NumberWordLookup.TryGetValue(key, out var digits))
            {
                numeric.Append(digits);
            }
            else if (ContainsDigit(word) && !ContainsLetter(word))
            {
                numeric.Append(word);
            }
            else
            {
                numeric.Append(' ').Append('a').Append(' '); // a word breaks an arithmetic run ("2 apples 3" is 2, 3)
            }

            if (IsEntity(word, key, sentenceStart))
            {
                entities.Append(MemoryMarshal.AsBytes(key));
                entities.Append([0]);
            }

            sentenceStart = false;
            previousLower = key.ToString();
        }

        NumericRuns(numeric.ToString(), numbers);

        antonyms.Sort();
        var antonymHash = new XxHash3(4);
        int last = -1;
        foreach (int a in antonyms)
        {
            if (a != last)
            {
                antonymHash.Append(MemoryMarshal.AsBytes(new ReadOnlySpan<int>(in a)));
                last = a;
            }
        }

        return new GuardSignature(numbers.GetCurrentHashAsUInt64(), antonymHash.GetCurrentHashAsUInt64(),
            entities.GetCurrentHashAsUInt64(), quoted.GetCurrentHashAsUInt64(), negations);
    }

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';

    /// <summary>Apostrophes inside words (don't), and dots, hyphens and slashes between word characters (v1.2, GPT-4, a/b) keep one token.</summary>
    private static bool IsInnerJoiner(string text, int i) =>
        text[i] is '\'' or '’' or '.' or '-' or '/'
        && i > 0 && i + 1 < text.Length && IsWordChar(text[i - 1]) && IsWordChar(text[i + 1])
        && !(text[i] is '-' or '/' && char.IsDigit(text[i - 1]) && char.IsDigit(text[i + 1])); // 10-20, 3/4 stay arithmetic

    private static bool ContainsDigit(ReadOnlySpan<char> s) => s.IndexOfAnyInRange('0', '9') >= 0;

    private static bool ContainsLetter(ReadOnlySpan<char> s)
    {
        foreach (char c in s)
        {
            if (char.IsLetter(c))
            {
                return true;
            }
        }
        return false;
    }

    private static bool IsEntity(ReadOnlySpan<char> word, ReadOnlySpan<char> key, bool sentenceStart)
    {
        bool hasLetter = ContainsLetter(word);
        if (!hasLetter)
        {
            return false; // pure numbers are the numbers guard's
        }
        if (ContainsDigit(word) || word.IndexOfAny('_', '.') >= 0 || (word.IndexOfAny('-', '/') >= 0 && char.IsUpper(word[0])))
        {
            return true; // 2FA, S3, GPT-4, snake_case, file.txt
        }
        int uppers = 0;
        for (int i = 0; i < word.Length; i++)
        {
            if (char.IsUpper(word[i]))
            {
                uppers++;
                if (i > 0)
                {
                    return true; // camelCase, iPhone, API, PostgreSQL
                }
            }
        }
        if (uppers == 0)
        {
            return false;
        }
        // Capitalized at a sentence start: English capitalizes every first word, so only a possessive
        // ("France's") marks a name there; elsewhere a capitalized word is a name unless it is common.
        if (sentenceStart && !(key.EndsWith("s") && word.IndexOfAny('\'', '’') >= 0))
        {
            return false;
        }
        return !CommonLookup.Contains(key) && !NegationLookup.Contains(key) && !AntonymLookup.ContainsKey(key) && !NumberWordLookup.ContainsKey(key);
    }

    /// <summary>Runs of digits, operators and spaces, spaces removed: each run one entry.</summary>
    private static void NumericRuns(string text, XxHash3 hash)
    {
        const string Operators = "+-*/^%=×÷().,x";
        int i = 0;
        var run = new StringBuilder();
        while (i < text.Length)
        {
            if (!char.IsDigit(text[i]))
            {
                i++;
                continue;
            }
            // Back up over a leading sign or opening parenthesis directly before the digit.
            int start = i;
            while (start > 0 && text[start - 1] is '-' or '(' or '.')
            {
                start--;
            }
            int end = i;
            int lastGood = i;
            while (end < text.Length && (char.IsDigit(text[end]) || Operators.Contains(text[end]) || text[end] == ' '))
            {
                if (char.IsDigit(text[end]) || text[end] is ')' or '%')
                {
                    lastGood = end;
                }
                end++;
            }
            run.Clear();
            for (int k = start; k <= lastGood; k++)
            {
                char ch = text[k];
                if (ch == ' ')
                {
                    continue;
                }
                // Thousands separators: 1,000 = 1000 (a comma followed by exactly three digits).
                if (ch == ',' && k + 3 <= lastGood && char.IsDigit(text[k + 1]) && char.IsDigit(text[k + 2]) && char.IsDigit(text[k + 3]) && (k + 4 > lastGood || !char.IsDigit(text[k + 4])))
                {
                    continue;
                }
                run.Append(ch == '×' || ch == 'x' ? '*' : ch == '÷' ? '/' : ch);
            }
            string entry = run.ToString().Trim(',', '.');
            hash.Append(MemoryMarshal.AsBytes(entry.AsSpan()));
            hash.Append([0]);
            i = lastGood + 1;
        }
    }

    private static void QuotedSpans(string text, XxHash3 hash)
    {
        int i = 0;
        while (i < text.Length)
        {
            char open = text[i];
            string? close = open switch
            {
                '"' => "\"",
                '“' => "”",
                '`' => text.AsSpan(i).StartsWith("```") ? "```" : "`",
                '\'' when i == 0 || !char.IsLetterOrDigit(text[i - 1]) => "'",
                _ => null,
            };
            if (close is null)
            {
                i++;
                continue;
            }
            int contentStart = i + (close == "```" ? 3 : 1);
            int end = text.IndexOf(close, contentStart, StringComparison.Ordinal);
            if (end < 0 || (close == "'" && end + 1 < text.Length && char.IsLetterOrDigit(text[end + 1])))
            {
                i++;
                continue; // an apostrophe, not a quote
            }
            hash.Append(MemoryMarshal.AsBytes(text.AsSpan(contentStart, end - contentStart)));
            hash.Append([0]);
            i = end + close.Length;
        }
    }

    private static Dictionary<string, (int, int)> BuildAntonyms(out Dictionary<string, (int, int)> phrases)
    {
        // One line a group: side A | side B. Base forms; inflections are generated below.
        string[] groups =
        [
            "enable activate | disable deactivate",
            "increase raise grow more higher bigger larger maximize | decrease reduce lower shrink less fewer smaller minimize",
            "add insert append attach include | remove delete drop erase detach exclude",
            "allow permit accept grant whitelist | deny block reject forbid refuse revoke blacklist ban",
            "before prior earlier | after later",
            "min minimum smallest lowest least | max maximum largest highest most biggest",
            "start begin launch | stop finish halt",
            "open | close shut",
            "true | false",
            "import | export",
            "upload | download",
            "encrypt encode | decrypt decode",
            "compress zip | decompress unzip extract",
            "push | pull",
            "win | lose",
            "buy purchase | sell",
            "first | last",
            "best | worst",
            "better | worse",
            "fast faster fastest quick quickly | slow slower slowest slowly",
            "cheap cheaper cheapest | expensive pricier",
            "input | output",
            "ascending | descending",
            "visible unhide | hide hidden invisible",
            "lock | unlock",
            "mount | unmount",
            "install | uninstall",
            "connect | disconnect",
            "subscribe | unsubscribe",
            "hot warm | cold cool",
            "north | south",
            "east | west",
            "upgrade | downgrade",
            "uppercase | lowercase",
            "advantage pro | disadvantage con",
            "love | hate dislike",
            "positive | negative",
            "internal inner | external outer",
            "sync synchronous | async asynchronous",
            "public | private",
            "read | write",
            "send | receive",
            "success succeed | failure fail",
            "valid | invalid",
            "legal | illegal",
            "safe | unsafe dangerous",
            "newer newest | older oldest",
            "always | sometimes rarely",
            "above | below",
            "inside | outside",
            "import | export",
            "online | offline",
            "wide | narrow",
            "long longer longest | short shorter shortest",
            "early | late",
            "join | leave",
            "merge | split",
            "forward | backward",
            "rise | fall",
            "profit | loss",
            "strong | weak",
            "expand | collapse",
            "overestimate | underestimate",
            "plural | singular",
            "male man men | female woman women",
            "day | night",
            "summer | winter",
            "tall | short",
            "deep | shallow",
            "easy | hard difficult",
            "vertical vertically | horizontal horizontally",
            "client | server",
            "source | destination target",
            "sender | recipient receiver",
            "encrypted | unencrypted plaintext",
            "static | dynamic",
            "mutable | immutable",
            "serialize | deserialize",
            "prefix | suffix",
            "head | tail",
            "top | bottom",
            "horizontal | vertical",
            "clockwise | counterclockwise anticlockwise",
            "inbound incoming | outbound outgoing",
            "ipv4 | ipv6",
        ];
        string[] phraseGroups =
        [
            "turn on|switch on|log in|sign in|opt in|power on|scale up|zoom in|check in|plug in | turn off|switch off|log out|sign out|opt out|power off|scale down|zoom out|check out|unplug",
        ];
        var words = new Dictionary<string, (int, int)>(StringComparer.Ordinal);
        for (int g = 0; g < groups.Length; g++)
        {
            var sides = groups[g].Split('|');
            for (int s = 0; s < 2; s++)
            {
                foreach (var w in sides[s].Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    foreach (var form in Inflections(w))
                    {
                        words.TryAdd(form, (g, s));
                    }
                }
            }
        }
        phrases = new Dictionary<string, (int, int)>(StringComparer.Ordinal);
        for (int g = 0; g < phraseGroups.Length; g++)
        {
            var sides = phraseGroups[g].Split(" | ");
            for (int s = 0; s < 2; s++)
            {
                foreach (var p in sides[s].Split('|'))
                {
                    var parts = p.Trim().Split(' ');
                    if (parts.Length == 2)
                    {
                        foreach (var form in Inflections(parts[0]))
                        {
                            phrases.TryAdd(form + " " + parts[1], (groups.Length + g, s));
                        }
                    }
                }
            }
        }
        return words;
    }

    /// <summary>Base, -s, -es, -ed, -d, -ing (with the silent e dropped and a final consonant doubled), -er, -ers.</summary>
    private static IEnumerable<string> Inflections(string w)
    {
        yield return w;
        yield return w + "s";
        yield return w + "es";
        if (w.EndsWith('e'))
        {
            yield return w + "d";
            yield return w[..^1] + "ing";
            yield return w + "r";
            yield return w + "rs";
        }
        else
        {
            yield return w + "ed";
            yield return w + "ing";
            yield return w + "er";
            yield return w + "ers";
            char last = w[^1];
            if (w.Length >= 3 && !"aeiouwxy".Contains(last) && "aeiou".Contains(w[^2]) && !"aeiou".Contains(w[^3]))
            {
                yield return w + last + "ed";
                yield return w + last + "ing";
            }
        }
        if (w.EndsWith('y') && w.Length > 2)
        {
            yield return w[..^1] + "ies";
            yield return w[..^1] + "ied";
        }
    }
}
