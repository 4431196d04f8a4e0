namespace ProxyCore.Llm.Embeddings;

/// <summary>
/// Turns text into a vector for the semantic cache. Vectors are L2-normalized (unit length), so cosine
/// similarity is a dot product; <see cref="Dimensions"/> is fixed for the life of the embedder (the
/// semantic index of a route is built for one embedder and never mixes two).
/// </summary>
public interface ITextEmbedder
{
    /// <summary>The name in config and metrics (<c>builtin</c>, <c>openai</c>, <c>minilm</c>).</summary>
    string Name { get; }

    /// <summary>The length of every vector.</summary>
    int Dimensions { get; }

    /// <summary>Embeds <paramref name="text"/> into <paramref name="destination"/> (exactly <see cref="Dimensions"/> floats, unit length).</summary>
    /// <exception cref="EmbedderException">The embedder could not produce a vector (endpoint down, bad answer): the caller skips the semantic cache for this request.</exception>
    ValueTask EmbedAsync(string text, Memory<float> destination, CancellationToken cancellationToken = default);
}

/// <summary>An embedder failed; the message says why (for logs). Never fatal for a request: the semantic lookup is skipped.</summary>
public sealed class EmbedderException(string message, Exception? inner = null) : Exception(message, inner);
