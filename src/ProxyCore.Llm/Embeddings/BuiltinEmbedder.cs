using System.Buffers;
using System.IO.Hashing;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace ProxyCore.Llm.Embeddings;

/// <summary>
/// The zero-dependency embedder of the lean binary: a deterministic bag of hashed features, L2-normalized.
/// No model, no I/O, a few microseconds per question.
/// </summary>
/// <remarks>
/// <para>
/// Features (the "hashing trick": each feature's XxHash3 picks a dimension and a sign, so unrelated
/// features cancel rather than pile up):
/// word stems (weight 1; common function words 0.25), adjacent stem bigrams (0.6, they carry word
/// order: "from A to B"), and character trigrams of each word with boundary marks (0.3 split over the
/// word's trigrams, so typos and inflections still overlap).
/// </para>
/// <para>
/// It measures lexical overlap, not meaning: paraphrases with different words score lower than with a
/// neural model, and near-misses score high. Hence the guards (<see cref="Cache.SemanticGuards"/>) and
/// a threshold from the measured quality table (perf-results/*-semantic-cache-quality.md).
/// </para>
/// </remarks>
public sealed class BuiltinEmbedder : ITextEmbedder
{
    public const int DefaultDimensions = 256;

    private const float UnigramWeight = 1.0f;
    private const float StopwordWeight = 0.25f;
    private const float BigramWeight = 0.6f;
    private const float TrigramWeightPerWord = 0.3f;

    private static readonly HashSet<string> Stopwords = new(StringComparer.Ordinal)
    {
        "a", "an", "the", "is", "are", "was", "were", "be", "been", "am", "do", "does", "did", "i", "me", "my", "we", "our", "you",
        "your", "it", "its", "to", "of", "in", "on", "at", "for", "with", "by", "and", "or", "that", "this", "there", "what",
        "how", "which", "who", "can", "could", "would", "should", "will", "please", "tell", "some", "any", "about", "way",
        "so", "if", "as", "from", "into", "get", "go", "some", "just", "explain", "show", "give", "need", "want", "know",
    };

    public BuiltinEmbedder(int dimensions = DefaultDimensions)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 16);
        Dimensions = dimensions;
    }

    public string Name => "builtin";

    public int Dimensions { get; }

    public ValueTask EmbedAsync(string text, Memory<float> destination, CancellationToken cancellationToken = default)
    {
        Embed(text, destination.Span);
        return ValueTask.CompletedTask;
    }

    /// <summary>Embeds synchronously (the builtin embedder never waits).</summary>
    public void Embed(ReadOnlySpan<char> text, Span<float> destination)
    {
        if (destination.Length != Dimensions)
        {
            throw new ArgumentException($"destination must hold {Dimensions} floats", nameof(destination));
        }
        destination.Clear();
        char[]? rented = null;
        Span<char> lower = text.Length <= 1024 ? stackalloc char[text.Length] : (rented = ArrayPool<char>.Shared.Rent(text.Length));
        try
        {
            int n = text.ToLowerInvariant(lower);
            lower = lower[..n];
            Span<char> previous = stackalloc char[64];
            int previousLength = 0;
            Span<char> pair = stackalloc char[130];
            int i = 0;
            while (i < lower.Length)
            {
                if (!IsWordChar(lower[i]))
                {
                    i++;
                    continue;
                }
                int start = i;
                while (i < lower.Length && (IsWordChar(lower[i]) || (lower[i] is '\'' or '’' && i + 1 < lower.Length && char.IsLetter(lower[i + 1]))))
                {
                    i++;
                }
                var word = lower[start..i];
                if (word.Length > 63)
                {
                    word = word[..63];
                }
                var stem = Stem(word);
                bool stop = Stopwords.GetAlternateLookup<ReadOnlySpan<char>>().Contains(word);
                Add(destination, 'u', stem, stop ? StopwordWeight : UnigramWeight);
                if (!stop)
                {
                    if (previousLength > 0)
                    {
                        previous[..previousLength].CopyTo(pair);
                        pair[previousLength] = ' ';
                        stem.CopyTo(pair[(previousLength + 1)..]);
                        Add(destination, 'b', pair[..(previousLength + 1 + stem.Length)], BigramWeight);
                    }
                    stem.CopyTo(previous);
                    previousLength = stem.Length;
                    AddTrigrams(destination, word);
                }
            }
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<char>.Shared.Return(rented);
            }
        }
        float norm = TensorPrimitives.Norm(destination);
        if (norm > 0)
        {
            TensorPrimitives.Divide(destination, norm, destination);
        }
        else
        {
            destination[0] = 1; // empty text: a fixed unit vector, still a valid cosine
        }
    }

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';

    /// <summary>A light suffix stripper (enough for "enabled"/"enables"/"enabling" to share a stem; not Porter).</summary>
    private static ReadOnlySpan<char> Stem(ReadOnlySpan<char> word)
    {
        if (word.Length > 5 && word.EndsWith("ing"))
        {
            return word[..^3];
        }
        if (word.Length > 4 && word.EndsWith("ied"))
        {
            return word[..^3];
        }
        if (word.Length > 4 && word.EndsWith("ed"))
        {
            return word[..^2];
        }
        if (word.Length > 4 && word.EndsWith("es"))
        {
            return word[..^2];
        }
        if (word.Length > 3 && word[^1] == 's' && word[^2] != 's')
        {
            return word[..^1];
        }
        if (word.Length > 4 && word[^1] == 'e')
        {
            return word[..^1];
        }
        return word;
    }

    private static void AddTrigrams(Span<float> destination, ReadOnlySpan<char> word)
    {
        Span<char> marked = stackalloc char[word.Length + 2];
        marked[0] = '#';
        word.CopyTo(marked[1..]);
        marked[^1] = '#';
        int count = marked.Length - 2;
        if (count <= 0)
        {
            return;
        }
        float weight = TrigramWeightPerWord / MathF.Sqrt(count);
        for (int i = 0; i + 3 <= marked.Length; i++)
        {
            Add(destination, 't', marked.Slice(i, 3), weight);
        }
    }

    private static void Add(Span<float> destination, char kind, ReadOnlySpan<char> feature, float weight)
    {
        ulong h = XxHash3.HashToUInt64(MemoryMarshal.AsBytes(feature), kind);
        int index = (int)((h & 0xFFFF_FFFF) % (uint)destination.Length);
        destination[index] += (h & (1UL << 63)) != 0 ? -weight : weight;
    }
}
