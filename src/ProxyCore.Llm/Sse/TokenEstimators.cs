using System.Buffers;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace ProxyCore.Llm.Sse;

/// <summary>
/// Counts the tokens of text, for when a provider did not report usage. Implementations are shared by
/// every stream: they must be thread-safe.
/// </summary>
public interface ITokenEstimator
{
    /// <summary>The token count of <paramref name="utf8Text"/> (UTF-8, unescaped).</summary>
    int CountTokens(ReadOnlySpan<byte> utf8Text);
}

/// <summary>
/// The documented fallback when no real tokenizer is wanted or available: one token per four UTF-8
/// bytes, rounded up. It is OpenAI's own rule of thumb for English; it undercounts CJK text (about
/// one token per character, three bytes each) and overcounts code with long identifiers.
/// </summary>
public sealed class Utf8LengthEstimator : ITokenEstimator
{
    public static Utf8LengthEstimator Instance { get; } = new();

    private Utf8LengthEstimator()
    {
    }

    public int CountTokens(ReadOnlySpan<byte> utf8Text) => (utf8Text.Length + 3) / 4;
}

/// <summary>
/// A real BPE count with OpenAI's tiktoken vocabularies (Microsoft.ML.Tokenizers and its o200k_base and
/// cl100k_base data packages, trim- and Native-AOT-clean). Each vocabulary loads once per process, on
/// first use (tens of milliseconds and a few MB): streams that carry usage never pay for it.
/// </summary>
public sealed class TiktokenEstimator : ITokenEstimator
{
    private const int StackChars = 256;

    private static readonly Lazy<TiktokenEstimator> O200k =
        new(() => new TiktokenEstimator(TiktokenTokenizer.CreateForEncoding("o200k_base")));
    private static readonly Lazy<TiktokenEstimator> Cl100k =
        new(() => new TiktokenEstimator(TiktokenTokenizer.CreateForEncoding("cl100k_base")));

    private readonly Tokenizer _tokenizer;

    private TiktokenEstimator(Tokenizer tokenizer) => _tokenizer = tokenizer;

    /// <summary>o200k_base: gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o1, o3, o4 families.</summary>
    public static TiktokenEstimator O200kBase => O200k.Value;

    /// <summary>cl100k_base: gpt-4, gpt-3.5-turbo, text-embedding-3 and ada-002.</summary>
    public static TiktokenEstimator Cl100kBase => Cl100k.Value;

    /// <summary>
    /// The vocabulary of an OpenAI model by its name prefix (no string made). Claude, Gemini, Llama and
    /// the rest have tokenizers that are not published for .NET: they get o200k_base, the largest
    /// general vocabulary here and so the nearest to theirs, and the count is an estimate.
    /// </summary>
    public static TiktokenEstimator ForModel(ReadOnlySpan<byte> model)
    {
        if (model.StartsWith("gpt-4o"u8) || model.StartsWith("gpt-4.1"u8) || model.StartsWith("gpt-4.5"u8)
            || model.StartsWith("chatgpt-4o"u8))
        {
            return O200kBase;
        }
        if (model.StartsWith("gpt-4"u8) || model.StartsWith("gpt-3.5"u8) || model.StartsWith("text-embedding-"u8))
        {
            return Cl100kBase;
        }
        return O200kBase;
    }

    public int CountTokens(ReadOnlySpan<byte> utf8Text)
    {
        if (utf8Text.IsEmpty)
        {
            return 0;
        }
        int max = Encoding.UTF8.GetMaxCharCount(utf8Text.Length);
        char[]? rented = null;
        Span<char> chars = max <= StackChars ? stackalloc char[StackChars] : (rented = ArrayPool<char>.Shared.Rent(max));
        try
        {
            int count = Encoding.UTF8.GetChars(utf8Text, chars);
            return _tokenizer.CountTokens(chars.Slice(0, count));
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
