using System.Text.Json.Serialization;

namespace ProxyCore.Routing.Config;

/// <summary>
/// A route's <c>llm</c> block (DESIGN.md "LLM config"): the route speaks the OpenAI and Anthropic
/// APIs, with virtual keys, budgets, token metering and fallback across providers.
/// </summary>
public sealed class LlmConfig
{
    /// <summary>Providers in fallback order (the first is tried first). At least one.</summary>
    public IReadOnlyList<LlmProviderConfig> Providers { get; set; } = [];

    /// <summary>Virtual keys clients present instead of a provider key. Absent: the route is open (any or no bearer token).</summary>
    public IReadOnlyList<LlmKeyConfig>? Keys { get; set; }

    /// <summary>Price per model (the name the provider answers with, or the one asked for), USD per million tokens.</summary>
    public IReadOnlyDictionary<string, LlmPricingConfig> Pricing { get; set; } = new Dictionary<string, LlmPricingConfig>();

    /// <summary>
    /// Largest request body the stage reads to inspect (model, stream, max_tokens); default 4MB, then 413.
    /// Requests are buffered (they are small JSON); answers never are.
    /// </summary>
    [JsonConverter(typeof(SizeJsonConverter))]
    public long MaxRequestBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// How providers share traffic: "fallback" (default: in order, the next on failure) or "weighted"
    /// (the first try is chosen by <see cref="LlmProviderConfig.Weight"/>, the others stay fallbacks).
    /// </summary>
    public string Strategy { get; set; } = "fallback";

    /// <summary>A request header naming the provider to try first (A/B tests, canaries); absent: no override.</summary>
    public string? ProviderHeader { get; set; }

    /// <summary>Answer caching (exact and semantic). Absent: nothing is cached.</summary>
    public LlmCacheConfig? Cache { get; set; }

    /// <summary>PII redaction on prompts and outputs. Absent: none.</summary>
    public LlmRedactConfig? Redact { get; set; }

    /// <summary>
    /// Prompt templates by id, each with numbered versions held here: a request names one in its
    /// <c>template</c> field (<c>{"id":…,"version":…,"variables":{…}}</c>) or the
    /// <c>proxycore-template</c> header (<c>id</c> or <c>id@version</c>), and its messages, with
    /// <c>{{variable}}</c> filled in, go before the request's own. Absent: none.
    /// </summary>
    public IReadOnlyDictionary<string, LlmTemplateConfig>? Templates { get; set; }
}

public sealed class LlmTemplateConfig
{
    /// <summary>Versions by name ("1", "2", "2025-06-01"…). At least one.</summary>
    public IReadOnlyDictionary<string, LlmTemplateVersionConfig> Versions { get; set; } = new Dictionary<string, LlmTemplateVersionConfig>();

    /// <summary>The version a request gets when it names none; required when there are several versions.</summary>
    public string? Default { get; set; }
}

public sealed class LlmTemplateVersionConfig
{
    /// <summary>The model when the request names none; absent: the request must name one.</summary>
    public string? Model { get; set; }

    /// <summary>The messages, in order, put before the request's own; <c>{{name}}</c> is replaced by the request's variable <c>name</c>.</summary>
    public IReadOnlyList<LlmTemplateMessageConfig> Messages { get; set; } = [];
}

public sealed class LlmTemplateMessageConfig
{
    /// <summary>"system", "developer", "user" or "assistant". System (and developer) messages become the system prompt on Anthropic Messages and the instructions on Responses.</summary>
    public string Role { get; set; } = "user";

    public string Content { get; set; } = "";
}

/// <summary>
/// The placeholder syntax of prompt templates: <c>{{name}}</c> (spaces inside the braces allowed),
/// names of letters, digits, <c>_</c>, <c>-</c> and <c>.</c>, starting with a letter or <c>_</c>.
/// Every <c>{{</c> opens a placeholder; single braces are text. Shared by the config validator and
/// the stage, so what validates is exactly what fills.
/// </summary>
public static class LlmTemplateText
{
    /// <summary>A piece of template text: literal text, or a variable when <see cref="Variable"/> is set.</summary>
    public readonly record struct Part(string? Literal, string? Variable);

    /// <summary>Splits <paramref name="text"/> into parts; the error says what is wrong, or null.</summary>
    public static string? TryParse(string text, List<Part> parts)
    {
        int at = 0;
        while (at < text.Length)
        {
            int open = text.IndexOf("{{", at, StringComparison.Ordinal);
            if (open < 0)
            {
                parts.Add(new Part(text[at..], null));
                break;
            }
            if (open > at)
            {
                parts.Add(new Part(text[at..open], null));
            }
            int close = text.IndexOf("}}", open + 2, StringComparison.Ordinal);
            if (close < 0)
            {
                return $"'{{{{' at offset {open} has no closing '}}}}'";
            }
            string name = text[(open + 2)..close].Trim();
            if (!IsName(name))
            {
                return $"'{text[open..(close + 2)]}' at offset {open} is not a variable name (letters, digits, _ - ., starting with a letter or _)";
            }
            parts.Add(new Part(null, name));
            at = close + 2;
        }
        return null;
    }

    private static bool IsName(string name)
    {
        if (name.Length == 0 || name.Length > 64 || !(char.IsAsciiLetter(name[0]) || name[0] == '_'))
        {
            return false;
        }
        foreach (char c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
            {
                return false;
            }
        }
        return true;
    }
}

public sealed class LlmProviderConfig
{
    /// <summary>Name in metrics, logs and the <c>proxycore-provider</c> answer header.</summary>
    public string Name { get; set; } = "";

    /// <summary>"openai" (OpenAI and compatible servers: Azure OpenAI, vLLM, Ollama) or "anthropic".</summary>
    public string Type { get; set; } = "openai";

    /// <summary>The cluster the provider's requests go to (TLS, pooling, health and timeouts come from it).</summary>
    public string Cluster { get; set; } = "";

    /// <summary>The provider's own key, normally "env:NAME". Sent as a bearer token (openai) or x-api-key (anthropic); absent: none is sent.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Model names asked for → the names this provider knows them by. Unmapped names pass unchanged.</summary>
    public IReadOnlyDictionary<string, string> Models { get; set; } = new Dictionary<string, string>();

    /// <summary>Share of first tries under the "weighted" strategy; default 1.</summary>
    public int Weight { get; set; } = 1;

    /// <summary>The anthropic-version header sent to anthropic providers; default "2023-06-01".</summary>
    public string AnthropicVersion { get; set; } = "2023-06-01";
}

public sealed class LlmKeyConfig
{
    /// <summary>Who the key belongs to: the <c>key</c> label of the LLM metrics.</summary>
    public string Name { get; set; } = "";

    /// <summary>The key clients send (Authorization: Bearer, or x-api-key), normally "env:NAME".</summary>
    public string Key { get; set; } = "";

    /// <summary>Requests per minute; absent: unlimited.</summary>
    public int? RequestsPerMinute { get; set; }

    /// <summary>Prompt + completion tokens per minute (reserved before, reconciled after); absent: unlimited.</summary>
    public int? TokensPerMinute { get; set; }

    /// <summary>Spend limit in USD over the life of the process (priced by <see cref="LlmConfig.Pricing"/>); absent: unlimited.</summary>
    public double? BudgetUsd { get; set; }
}

public sealed class LlmPricingConfig
{
    public double InputPer1M { get; set; }

    public double OutputPer1M { get; set; }

    /// <summary>Price of cached prompt tokens; absent: the same as <see cref="InputPer1M"/>.</summary>
    public double? CachedInputPer1M { get; set; }
}

public sealed class LlmCacheConfig
{
    public LlmExactCacheConfig? Exact { get; set; }

    public LlmSemanticCacheConfig? Semantic { get; set; }

    /// <summary>Bound on cached bytes; default 256MB.</summary>
    [JsonConverter(typeof(SizeJsonConverter))]
    public long MaxBytes { get; set; } = 256 * 1024 * 1024;
}

public sealed class LlmExactCacheConfig
{
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan Ttl { get; set; } = TimeSpan.FromHours(1);
}

public sealed class LlmSemanticCacheConfig
{
    /// <summary>Cosine similarity a hit needs, in (0, 1]; absent: the embedder's measured default (builtin 0.80, local 0.90).</summary>
    public double? Threshold { get; set; }

    /// <summary>
    /// "builtin" (zero dependency), "openai" (an OpenAI-compatible embeddings endpoint: <see cref="Endpoint"/>)
    /// or "local" (MiniLM on ONNX Runtime: only in a binary built with <c>-p:ProxyCoreMiniLM=true</c>).
    /// </summary>
    public string Embedder { get; set; } = "builtin";

    /// <summary>For "openai": the server (<c>https://api.openai.com</c>, <c>http://127.0.0.1:11434</c>…); <c>/v1/embeddings</c> is appended unless given.</summary>
    public string? Endpoint { get; set; }

    /// <summary>For "openai": the embeddings model; default "text-embedding-3-small".</summary>
    public string Model { get; set; } = "text-embedding-3-small";

    /// <summary>For "openai": the endpoint's key, normally "env:NAME", sent as a bearer token; absent: none.</summary>
    public string? ApiKey { get; set; }

    /// <summary>For "openai": the vector length. Set: sent as <c>dimensions</c> (text-embedding-3 models shorten their vectors); absent: 1536, not sent.</summary>
    public int? Dimensions { get; set; }

    /// <summary>For "openai": the longest wait for one embedding before the lookup is skipped (a miss); default 2s.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(2);

    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan Ttl { get; set; } = TimeSpan.FromHours(1);
}

public sealed class LlmRedactConfig
{
    /// <summary>Kinds of PII: "email", "phone", "credit-card", "ssn", "ip", "iban".</summary>
    public IReadOnlyList<string> Pii { get; set; } = [];

    /// <summary>"mask" (replace) or "block" (refuse the request with 400).</summary>
    public string Mode { get; set; } = "mask";

    /// <summary>
    /// Regexes (.NET syntax, matched case-insensitively in linear time: no backreferences or
    /// lookarounds) refused in the prompt text with 400; absent: none.
    /// </summary>
    public IReadOnlyList<string>? Deny { get; set; }

    /// <summary>
    /// Regexes (same syntax and matching as <see cref="Deny"/>) the answers must not match; absent:
    /// answers are not checked. JSON answers are checked whole before they are sent (a match: 400
    /// <c>output-denied</c>); streams delta by delta as they pass (a match: what passed stays sent,
    /// the stream ends with an error event and no clean finish).
    /// </summary>
    public IReadOnlyList<string>? DenyOutput { get; set; }

    /// <summary>
    /// Characters of streamed answer text kept from one delta to the next so a match cut across deltas
    /// is found; default 256, 16 to 4096. A denyOutput match longer than this may be missed in a stream.
    /// </summary>
    public int DenyOutputWindow { get; set; } = 256;
}
