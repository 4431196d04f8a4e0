namespace ProxyCore.Llm.Gateway;

/// <summary>Which client-facing API a request on an LLM route speaks, by its path.</summary>
internal enum LlmApi : byte
{
    /// <summary>OpenAI Chat Completions (<c>…/chat/completions</c>).</summary>
    ChatCompletions,
    /// <summary>OpenAI Responses (<c>…/responses</c>).</summary>
    Responses,
    /// <summary>OpenAI Embeddings (<c>…/embeddings</c>).</summary>
    Embeddings,
    /// <summary>Anthropic Messages (<c>…/messages</c>).</summary>
    AnthropicMessages,
    /// <summary>Anything else (<c>GET /v1/models</c>…): relayed to an OpenAI-type provider, keyed, not metered.</summary>
    Other,
}

internal static class LlmApis
{
    public static LlmApi FromPath(ReadOnlySpan<byte> path)
    {
        if (path.EndsWith("/chat/completions"u8))
        {
            return LlmApi.ChatCompletions;
        }
        if (path.EndsWith("/responses"u8))
        {
            return LlmApi.Responses;
        }
        if (path.EndsWith("/embeddings"u8))
        {
            return LlmApi.Embeddings;
        }
        if (path.EndsWith("/messages"u8))
        {
            return LlmApi.AnthropicMessages;
        }
        return LlmApi.Other;
    }

    /// <summary>True when a provider of this type serves the API as is (translation between the shapes is a separate library).</summary>
    public static bool ServedBy(LlmApi api, bool anthropicProvider) => api == LlmApi.AnthropicMessages ? anthropicProvider : !anthropicProvider;

    /// <summary>
    /// True when the provider speaks another API the stage translates to: Chat Completions ↔ Messages both
    /// ways, and Responses → Messages (requests, answers and streams).
    /// </summary>
    public static bool Translates(LlmApi api, bool anthropicProvider) =>
        ((api is LlmApi.ChatCompletions or LlmApi.Responses) && anthropicProvider) || (api == LlmApi.AnthropicMessages && !anthropicProvider);

    /// <summary>The API a translating provider is spoken to in.</summary>
    public static LlmApi TranslatedTo(LlmApi api) => api == LlmApi.AnthropicMessages ? LlmApi.ChatCompletions : LlmApi.AnthropicMessages;

    /// <summary>A provider of this type can answer the API, as is or translated.</summary>
    public static bool Reachable(LlmApi api, bool anthropicProvider) => ServedBy(api, anthropicProvider) || Translates(api, anthropicProvider);

    public static Sse.LlmStreamFormat StreamFormat(LlmApi api) => api switch
    {
        LlmApi.Responses => Sse.LlmStreamFormat.OpenAIResponses,
        LlmApi.AnthropicMessages => Sse.LlmStreamFormat.AnthropicMessages,
        _ => Sse.LlmStreamFormat.OpenAIChat,
    };
}
