namespace ProxyCore.Llm.Sse;

/// <summary>The wire format of a streamed answer: which provider API produced the event stream.</summary>
public enum LlmStreamFormat : byte
{
    /// <summary>OpenAI Chat Completions (<c>/v1/chat/completions</c>, <c>stream: true</c>) and the OpenAI-compatible servers (vLLM, Ollama, Azure OpenAI): unnamed events, JSON chunks, then <c>data: [DONE]</c>.</summary>
    OpenAIChat,

    /// <summary>OpenAI Responses (<c>/v1/responses</c>): named events with a <c>sequence_number</c>, ending with <c>response.completed</c> (or <c>.incomplete</c>/<c>.failed</c>), no <c>[DONE]</c>.</summary>
    OpenAIResponses,

    /// <summary>Anthropic Messages (<c>/v1/messages</c>): <c>message_start</c> … <c>message_delta</c>, <c>message_stop</c>.</summary>
    AnthropicMessages,

    /// <summary>Gemini <c>streamGenerateContent?alt=sse</c>: unnamed events, the last carrying <c>finishReason</c> and complete <c>usageMetadata</c>, no <c>[DONE]</c>.</summary>
    Gemini,
}

/// <summary>How a streamed answer ended, as far as the stream itself says.</summary>
public enum LlmStreamOutcome : byte
{
    /// <summary>The body has not ended yet (<see cref="LlmStreamMeter.Complete"/> not called) and no error event came.</summary>
    InProgress,

    /// <summary>The format's terminal event arrived (<c>[DONE]</c>, <c>response.completed</c>/<c>response.incomplete</c>, <c>message_stop</c>, a Gemini <c>finishReason</c>) and no error event.</summary>
    Completed,

    /// <summary>The provider sent an error event (Anthropic <c>error</c>, Responses <c>error</c>/<c>response.failed</c>, an <c>error</c> object in a chunk); <see cref="LlmStreamMeter.ErrorType"/> says which.</summary>
    Error,

    /// <summary>The body ended without the terminal event (the upstream dropped, or the stream could not be read): the client must see an error ending, and the answer must not be cached.</summary>
    Cut,
}

/// <summary>Where a token figure came from.</summary>
public enum LlmTokenSource : byte
{
    /// <summary>Not known.</summary>
    None,

    /// <summary>The provider's own usage report in the stream.</summary>
    Provider,

    /// <summary>Counted by an <see cref="ITokenEstimator"/> over the streamed text, because the provider's figure was absent.</summary>
    Estimated,
}

/// <summary>Token counts of one streamed answer; -1 where unknown.</summary>
/// <param name="PromptTokens">Input tokens as the provider counts them. OpenAI includes cached tokens in it; Anthropic's <c>input_tokens</c> excludes cache reads and writes.</param>
/// <param name="CompletionTokens">Output tokens (reasoning/thinking included where the provider reports them).</param>
/// <param name="CachedTokens">Input tokens served from the provider's prompt cache: OpenAI <c>prompt_tokens_details.cached_tokens</c> / <c>input_tokens_details.cached_tokens</c>, Anthropic <c>cache_read_input_tokens</c>, Gemini <c>cachedContentTokenCount</c>.</param>
/// <param name="PromptSource">Where <paramref name="PromptTokens"/> came from (never estimated here: the prompt is not in the response).</param>
/// <param name="CompletionSource">Where <paramref name="CompletionTokens"/> came from.</param>
public readonly record struct LlmUsage(
    long PromptTokens,
    long CompletionTokens,
    long CachedTokens,
    LlmTokenSource PromptSource,
    LlmTokenSource CompletionSource);

/// <summary>Receives the answer text of a stream as <see cref="LlmStreamMeter"/> reads it (see <see cref="LlmStreamMeter.TextObserver"/>).</summary>
public interface IStreamTextObserver
{
    /// <summary>The next piece of text (content, refusal, reasoning, tool-call name or arguments), unescaped UTF-8; valid only during the call.</summary>
    /// <param name="choice">
    /// Which answer of the stream the text belongs to: Chat's <c>choices[].index</c> and Gemini's
    /// <c>candidates[].index</c> (absent: 0), since with <c>n</c> &gt; 1 the choices' deltas interleave; 0 for
    /// formats with one answer (Responses, Anthropic); -1 when a choice's index is not a non-negative integer.
    /// </param>
    void OnText(int choice, ReadOnlySpan<byte> utf8);
}
