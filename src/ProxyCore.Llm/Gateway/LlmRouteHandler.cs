using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using ProxyCore.Http;
using ProxyCore.Llm.Cache;
using ProxyCore.Llm.Embeddings;
using ProxyCore.Llm.Safety;
using ProxyCore.Llm.Translation;
using ProxyCore.Proxy.Relay;
using ProxyCore.Proxy.Stages;
using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;

namespace ProxyCore.Llm.Gateway;

/// <summary>
/// The LLM stage of one route, built once per snapshot.
///
/// Lifecycle (the `// Step N` markers below follow it):
///   1. Virtual key: the client's bearer token or x-api-key against the route's keys (none = open).
///   2. Read the request body, bounded by <c>maxRequestBytes</c> (requests are small JSON; answers are never held).
///   3. Inspect it: model, stream, stream_options, max_tokens.
///   4. Budgets: requests/min, tokens/min (reserve prompt estimate + max_tokens), spend.
///   5. Providers in order (weighted or header-chosen first): map the model, inject include_usage,
///      send with the provider's own key; 429, 5xx, connect failures and timeouts before anything
///      reached the client move on to the next provider (<see cref="LlmUpstreamCall"/>).
///   6. Relay the answer, metering SSE events inline as they pass.
///   7. Record tokens and cost (metrics, access log), reconcile the key's reservation.
/// </summary>
internal sealed class LlmRouteHandler : IRouteHandler
{
    private const string OpenKeyLabel = "open";
    private static readonly byte[] s_bearer = "Bearer "u8.ToArray();

    private readonly string _routeId;
    private readonly LlmStage _stage;
    private readonly LlmProvider[] _providers;
    private readonly LlmVirtualKey[]? _keys;
    private readonly Dictionary<string, LlmPricingConfig> _pricing;
    private readonly long _maxRequestBytes;
    private readonly bool _weighted;
    private readonly int _totalWeight;
    private readonly byte[]? _providerHeader;
    private readonly LlmResponseCache? _cache;
    private readonly TimeSpan _cacheTtl;
    private readonly bool _exactLookup;
    private readonly RequestCoalescer<UInt128, bool> _coalescer = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<UInt128, StreamBroadcast> _streams = new();
    private readonly SemanticCache? _semantic;
    private readonly ITextEmbedder? _embedder;
    private readonly float _threshold;
    private readonly TimeSpan _semanticTtl;
    private readonly PiiRedactor? _pii;
    private readonly PiiMode _piiMode;
    private readonly DenyPatterns? _deny;
    private readonly DenyPatterns? _denyOutput;
    private readonly PromptTemplates? _templates;
    private readonly int _denyOutputWindow = DenyStreamMatcher.DefaultWindowChars;
    private static readonly BuiltinEmbedder s_builtinEmbedder = new();

    /// <summary>text-embedding-3-small's length when the config asks for none.</summary>
    private const int OpenAIDefaultDimensions = 1536;
    private static readonly byte[][] s_cacheHeader = [.. new[] { "hit-exact", "hit-semantic", "miss", "bypass" }.Select(Encoding.ASCII.GetBytes)];

    public LlmRouteHandler(string routeId, LlmConfig config, ProxySnapshot snapshot, LlmStage stage)
    {
        _routeId = routeId;
        _stage = stage;
        _providers = [.. config.Providers.Select(p => new LlmProvider(p, snapshot.Clusters.TryGetValue(p.Cluster, out var cluster) ? cluster
            : throw new InvalidOperationException($"route '{routeId}': llm provider '{p.Name}' names unknown cluster '{p.Cluster}'")))];
        _keys = config.Keys is { } keys
            ? [.. keys.Select(k => new LlmVirtualKey(k, Encoding.UTF8.GetBytes(ConfigSecrets.Resolve(k.Key) ?? ""), stage.Budget(routeId, k.Name)))]
            : null;
        _pricing = new Dictionary<string, LlmPricingConfig>(config.Pricing, StringComparer.Ordinal);
        _maxRequestBytes = config.MaxRequestBytes;
        _weighted = config.Strategy == "weighted";
        _totalWeight = _providers.Sum(p => p.Weight);
        _providerHeader = config.ProviderHeader is { } header ? Encoding.ASCII.GetBytes(header) : null;
        if (config.Redact is { } redact)
        {
            var kinds = PiiKind.None;
            foreach (var name in redact.Pii)
            {
                kinds |= PiiRedactor.TryParseKind(name, out var kind) ? kind : PiiKind.None;
            }
            _pii = kinds != PiiKind.None ? new PiiRedactor(kinds) : null;
            _piiMode = redact.Mode == "block" ? PiiMode.Block : PiiMode.Mask;
            _deny = redact.Deny is { Count: > 0 } deny ? new DenyPatterns(deny) : null;
            _denyOutput = redact.DenyOutput is { Count: > 0 } denyOutput ? new DenyPatterns(denyOutput) : null;
            _denyOutputWindow = redact.DenyOutputWindow;
        }
        _templates = config.Templates is { Count: > 0 } templates ? new PromptTemplates(templates) : null;
        if (config.Cache is { } cache)
        {
            // The answer store serves both lookups: the semantic index only points into it.
            var semantic = cache.Semantic;
            if (cache.Exact is not null || semantic is not null)
            {
                _cache = stage.Cache(routeId, cache.MaxBytes);
                _exactLookup = cache.Exact is not null;
                _cacheTtl = TimeSpan.FromTicks(Math.Max(cache.Exact?.Ttl.Ticks ?? 0, semantic?.Ttl.Ticks ?? 0));
            }
            if (semantic is not null)
            {
                (_embedder, float threshold) = semantic.Embedder switch
                {
                    "openai" => (new OpenAIEmbedder(new Uri(semantic.Endpoint!), semantic.Model, semantic.Dimensions ?? OpenAIDefaultDimensions,
                        ConfigSecrets.Resolve(semantic.ApiKey), sendDimensions: semantic.Dimensions is not null, semantic.Timeout, stage.EmbeddingsHttp), SemanticCacheDefaults.MiniLMThreshold),
                    "local" => (stage.LocalEmbedder ?? throw new InvalidOperationException($"route '{routeId}': the local embedder is not in this binary"), SemanticCacheDefaults.MiniLMThreshold),
                    _ => ((ITextEmbedder)s_builtinEmbedder, SemanticCacheDefaults.BuiltinThreshold),
                };
                _semantic = stage.Semantic(routeId, _embedder.Dimensions);
                _threshold = (float)(semantic.Threshold ?? threshold);
                _semanticTtl = semantic.Ttl;
            }
        }
    }

    public async ValueTask HandleAsync(HttpExchange exchange, RouteModel route, IExchangeRecorder recorder)
    {
        var request = exchange.Request;
        var api = LlmApis.FromPath(request.PathSpan);
        bool anthropic = api == LlmApi.AnthropicMessages;
        DestinationModel? destination = null;
        long upstreamTicks = 0;
        LlmLogFields? log = null;
        byte[]? rented = null;
        float[]? vector = null;
        TaskCompletionSource<bool>? leading = null;
        StreamBroadcast? broadcasting = null;
        UInt128 broadcastKey = default;
        try
        {
            // Step 1: virtual key.
            LlmVirtualKey? key = null;
            if (_keys is not null)
            {
                key = FindKey(request);
                if (key is null)
                {
                    bool presented = request.IndexOf(KnownHeader.Authorization) >= 0 || request.IndexOf("x-api-key"u8) >= 0;
                    await RespondAsync(exchange, anthropic, 401, presented ? "invalid-api-key" : "missing-api-key",
                        presented ? "The API key presented is not a key of this gateway route." : "This route needs an API key (Authorization: Bearer, or x-api-key).").ConfigureAwait(false);
                    return;
                }
            }
            string keyLabel = key?.Name ?? OpenKeyLabel;

            // Step 2: the request body, bounded.
            if (request.Framing == BodyFraming.ContentLength && request.ContentLength > _maxRequestBytes)
            {
                await RespondAsync(exchange, anthropic, 413, "request-body-too-large", $"The request body is over this route's limit of {_maxRequestBytes} bytes.").ConfigureAwait(false);
                return;
            }
            var (body, length, readError) = await ReadBodyAsync(exchange).ConfigureAwait(false);
            rented = body;
            if (readError is not null)
            {
                if (readError == "too-large")
                {
                    await RespondAsync(exchange, anthropic, 413, "request-body-too-large", $"The request body is over this route's limit of {_maxRequestBytes} bytes.").ConfigureAwait(false);
                }
                else
                {
                    exchange.Abort("request-body-cut");
                }
                return;
            }

            // Step 3: what is asked.
            var info = new LlmRequestBody { MaxTokens = -1 };
            bool metered = api != LlmApi.Other;
            if (metered && !LlmRequestBody.TryRead(body.AsSpan(0, length), out info, out var parseError))
            {
                await RespondAsync(exchange, anthropic, 400, "invalid-request-body", parseError!).ConfigureAwait(false);
                return;
            }

            // Step 3a: a prompt template, filled before anything else reads the prompt (safety and the cache key see what the provider will).
            bool templateHeader = request.TryGetValue(PromptTemplates.HeaderName, out var templateSelector);
            if (metered && (info.HasTemplate || templateHeader))
            {
                if (_templates is null)
                {
                    await RespondAsync(exchange, anthropic, 404, "template-not-found", "This route has no prompt templates.").ConfigureAwait(false);
                    return;
                }
                if (_templates.TryApply(body.AsSpan(0, length), api, templateHeader ? templateSelector : default, out var filled) is { } failure)
                {
                    await RespondAsync(exchange, anthropic, failure.Status, failure.Reason, failure.Message).ConfigureAwait(false);
                    return;
                }
                var replaced = ArrayPool<byte>.Shared.Rent(Math.Max(16, filled.Length));
                filled.CopyTo(replaced, 0);
                ArrayPool<byte>.Shared.Return(body);
                rented = body = replaced;
                length = filled.Length;
                if (!LlmRequestBody.TryRead(body.AsSpan(0, length), out info, out parseError))
                {
                    await RespondAsync(exchange, anthropic, 400, "invalid-request-body", parseError!).ConfigureAwait(false);
                    return;
                }
            }

            // Step 3b: safety. Deny patterns and PII on the prompt, before it leaves (and before it is hashed:
            // masked prompts that differ only in their personal data share a cache entry, as the provider saw them alike).
            if (metered && (_pii is not null || _deny is not null))
            {
                var screen = Screen(body.AsSpan(0, length));
                if (screen.Reason is not null)
                {
                    await RespondAsync(exchange, anthropic, 400, screen.Reason, screen.Message!).ConfigureAwait(false);
                    return;
                }
                if (screen.Redacted is { } redacted)
                {
                    var replaced = ArrayPool<byte>.Shared.Rent(Math.Max(16, redacted.WrittenCount));
                    redacted.WrittenSpan.CopyTo(replaced);
                    ArrayPool<byte>.Shared.Return(body);
                    rented = body = replaced;
                    length = redacted.WrittenCount;
                    if (!LlmRequestBody.TryRead(body.AsSpan(0, length), out info, out parseError))
                    {
                        await RespondAsync(exchange, anthropic, 400, "invalid-request-body", parseError!).ConfigureAwait(false);
                        return;
                    }
                }
            }

            // Step 4: budgets.
            long reserved = metered ? length / 4 + Math.Max(0, info.MaxTokens) : 0;
            long windowId = 0;
            if (key is not null && !key.Budget.TryReserve(key.Config.RequestsPerMinute, key.Config.TokensPerMinute, key.Config.BudgetUsd, reserved, out windowId, out var retryAfter, out var limit))
            {
                string message = limit switch
                {
                    "budget-exceeded" => $"Key '{key.Name}' has used its budget of ${key.Config.BudgetUsd}.",
                    "requests-per-minute" => $"Key '{key.Name}' is over {key.Config.RequestsPerMinute} requests per minute.",
                    _ => $"Key '{key.Name}' is over {key.Config.TokensPerMinute} tokens per minute (this request reserves {reserved}).",
                };
                if (exchange.BeginErrorResponse(429, limit))
                {
                    Span<byte> seconds = stackalloc byte[16];
                    Encoding.ASCII.TryGetBytes(((long)Math.Ceiling(Math.Max(1, retryAfter.TotalSeconds))).ToString(System.Globalization.CultureInfo.InvariantCulture), seconds, out int n);
                    exchange.Response.AddHeader("retry-after"u8, seconds[..n]);
                    await FinishErrorAsync(exchange, 429, limit, message).ConfigureAwait(false);
                }
                return;
            }

            // Step 4b: the cache, exact then semantic (a hit answers here; the provider is not called and nothing is billed).
            LlmRequestKeys cacheKeys = default;
            var directives = LlmCacheDirectives.Default;
            LlmCacheResult cacheResult = LlmCacheResult.Bypass;
            bool store = false;
            GuardSignature guards = default;
            if (_cache is not null)
            {
                if (request.TryGetValue("cache-control"u8, out var cacheControl))
                {
                    directives = CacheControl.Parse(cacheControl);
                }
                bool hashed = metered && api != LlmApi.Other &&
                    LlmRequestHasher.TryHash(key?.Tenant ?? [], RequestApi(api), body.AsSpan(0, length), extractLastUserText: _semantic is not null, out cacheKeys);
                LlmCacheEntry? entry = null;
                var hit = LlmCacheResult.HitExact;
                if (hashed && directives.Read && _exactLookup && !_cache.TryGet(cacheKeys.Exact, out entry, directives.MaxAge))
                {
                    entry = null;
                }
                // Embed only when the exact key did not answer: an exact hit needs no vector, and the
                // embedder may be a model (milliseconds of CPU) or an HTTP call. A miss needs it for the
                // semantic lookup and for the entry stored after the answer (no-cache still stores).
                if (entry is null && hashed && _semantic is not null && cacheKeys.LastUserText is { } question && (directives.Read || directives.Write))
                {
                    vector = ArrayPool<float>.Shared.Rent(_embedder!.Dimensions);
                    if (_embedder is BuiltinEmbedder builtin)
                    {
                        builtin.Embed(question, vector.AsSpan(0, builtin.Dimensions)); // no I/O: no await
                    }
                    else
                    {
                        try
                        {
                            await _embedder.EmbedAsync(question, vector.AsMemory(0, _embedder.Dimensions), exchange.Aborted).ConfigureAwait(false);
                        }
                        catch (EmbedderException)
                        {
                            // The embedder is down or slow: this request skips the semantic cache (exact still applies).
                            ArrayPool<float>.Shared.Return(vector);
                            vector = null;
                            _stage.Metrics.RecordEmbedderFailure();
                        }
                    }
                    guards = SemanticGuards.Compute(question);
                    if (directives.Read && vector is not null && _semantic.TryFind(cacheKeys.Partition, vector.AsSpan(0, _embedder.Dimensions), guards, _threshold, out var match, out _) &&
                        _cache.TryGet(match.ExactKey, out var similar, directives.MaxAge))
                    {
                        entry = similar;
                        hit = LlmCacheResult.HitSemantic;
                    }
                }
                if (entry is not null && await TryServeCachedAsync(exchange, entry, api, info.Stream, info.IncludeUsage, hit).ConfigureAwait(false))
                {
                    key?.Budget.Reconcile(windowId, reserved, 0, 0);
                    log = new LlmLogFields(keyLabel, "cache", info.Model ?? "", 0, 0, 0, 0, hit == LlmCacheResult.HitExact ? "cache-hit-exact" : "cache-hit-semantic");
                    return;
                }
                // no-store: neither read nor write; no-cache / max-age=0: not read, but the fresh answer is stored.
                cacheResult = hashed && directives.Read ? LlmCacheResult.Miss : LlmCacheResult.Bypass;
                store = hashed && directives.Write;

                // Identical stream misses in flight at once: one goes to the provider, the others copy
                // its live output (what its client got so far at once, then each piece as it is relayed).
                if (cacheResult == LlmCacheResult.Miss && store && info.Stream)
                {
                    var mine = new StreamBroadcast(_cache.MaxEntryBytes, info.IncludeUsage);
                    var shared = _streams.GetOrAdd(cacheKeys.Exact, mine);
                    if (ReferenceEquals(shared, mine))
                    {
                        broadcasting = mine;
                        broadcastKey = cacheKeys.Exact;
                    }
                    else if (shared.IncludeUsage == info.IncludeUsage && await shared.WaitAttachAsync(route.Timeout, exchange.Aborted).ConfigureAwait(false))
                    {
                        // Counted before the first byte: a client that has the answer finds it counted.
                        _stage.Metrics.RecordCache(LlmCacheResult.HitExact);
                        key?.Budget.Reconcile(windowId, reserved, 0, 0);
                        log = new LlmLogFields(keyLabel, "cache", info.Model ?? "", 0, 0, 0, 0, "cache-hit-coalesced");
                        await ServeSharedStreamAsync(exchange, shared).ConfigureAwait(false);
                        return;
                    }
                    // Else: a leader that failed before answering, a slow or overgrown one, or a different
                    // include_usage (other bytes): this request asks the provider itself, unshared.
                }

                // Identical non-stream misses in flight at once: one goes to the provider, the others wait
                // for its stored answer.
                if (cacheResult == LlmCacheResult.Miss && store && !info.Stream)
                {
                    bool leader = false;
                    var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                    var run = _coalescer.RunAsync(cacheKeys.Exact, _ => { leader = true; return done.Task; }, route.Timeout, exchange.Aborted);
                    if (leader)
                    {
                        leading = done;
                    }
                    else
                    {
                        bool stored;
                        try
                        {
                            stored = (await run.ConfigureAwait(false)).Value;
                        }
                        catch (TimeoutException)
                        {
                            stored = false; // the leader is slow: ask the provider ourselves
                        }
                        if (stored && _cache.TryGet(cacheKeys.Exact, out var led) &&
                            await TryServeCachedAsync(exchange, led, api, info.Stream, info.IncludeUsage, LlmCacheResult.HitExact).ConfigureAwait(false))
                        {
                            key?.Budget.Reconcile(windowId, reserved, 0, 0);
                            log = new LlmLogFields(keyLabel, "cache", info.Model ?? "", 0, 0, 0, 0, "cache-hit-coalesced");
                            return;
                        }
                    }
                }
                _stage.Metrics.RecordCache(cacheResult);
            }

            // Step 5 and 6: providers in order, the answer relayed and metered.
            var call = new LlmUpstreamCall(_stage, exchange, route, recorder, api);
            if (_cache is not null)
            {
                call.CacheHeader = s_cacheHeader[(int)cacheResult];
                call.CaptureLimit = store ? _cache.MaxEntryBytes : 0;
            }
            call.DenyOutput = _denyOutput;
            call.Broadcast = broadcasting;
            call.DenyWindowChars = _denyOutputWindow;
            int first = FirstProvider(request);
            bool anyServes = false;
            // Providers that speak the client's API first, in order; then those reached by translation.
            int triesLeft = 0;
            foreach (var p in _providers)
            {
                triesLeft += LlmApis.Reachable(api, p.Anthropic) ? 1 : 0;
            }
            for (int n = 0; n < 2 * _providers.Length && !call.Finished; n++)
            {
                var provider = _providers[(first + n) % _providers.Length];
                bool native = n < _providers.Length;
                if (native ? !LlmApis.ServedBy(api, provider.Anthropic) : !LlmApis.Translates(api, provider.Anthropic))
                {
                    continue;
                }
                anyServes = true;
                bool last = --triesLeft == 0;
                string? mapped = info.Model is not null && provider.Models.TryGetValue(info.Model, out var m) ? m : null;
                bool translating = LlmApis.Translates(api, provider.Anthropic);
                bool inject = !translating && api == LlmApi.ChatCompletions && info.Stream && !info.IncludeUsage;
                int payloadLength = length;
                byte[] payload;
                if (translating)
                {
                    try
                    {
                        payload = api switch
                        {
                            LlmApi.ChatCompletions => LlmTranslation.OpenAIToAnthropicRequest(body.AsSpan(0, length), mapped ?? info.Model),
                            LlmApi.Responses => LlmTranslation.ResponsesToAnthropicRequest(body.AsSpan(0, length), mapped ?? info.Model),
                            _ => LlmTranslation.AnthropicToOpenAIRequest(body.AsSpan(0, length), mapped ?? info.Model, includeUsageInStream: true),
                        };
                    }
                    catch (LlmTranslationException e)
                    {
                        await RespondAsync(exchange, anthropic, 400, "untranslatable-request",
                            $"Provider '{provider.Name}' speaks the other API and this request cannot be translated: {e.Message}").ConfigureAwait(false);
                        key?.Budget.Reconcile(windowId, reserved, 0, 0);
                        return;
                    }
                    payloadLength = payload.Length;
                }
                else
                {
                    payload = metered ? info.Rewrite(body, length, mapped, inject, out payloadLength) : body;
                }
                call.Translating = translating;
                call.ClientIncludeUsage = info.IncludeUsage;
                string meteredModel = mapped ?? info.Model ?? "";
                call.Settle = () =>
                {
                    if (metered)
                    {
                        log = Account(key, keyLabel, provider, meteredModel, call, windowId, reserved);
                    }
                    if (call.Captured is { } captured)
                    {
                        var format = call.CapturedStream ? LlmCachedFormat.EventStream
                            : api switch { LlmApi.ChatCompletions => LlmCachedFormat.OpenAIChatJson, LlmApi.AnthropicMessages => LlmCachedFormat.AnthropicMessageJson, _ => LlmCachedFormat.OtherJson };
                        bool stored = _cache!.Store(cacheKeys.Exact, format, captured.WrittenSpan, _cacheTtl) == LlmCacheStoreResult.Stored;
                        if (stored && vector is not null)
                        {
                            _semantic!.Add(cacheKeys.Partition, vector.AsSpan(0, _embedder!.Dimensions), guards, cacheKeys.Exact, _semanticTtl);
                        }
                        leading?.TrySetResult(stored);
                    }
                };
                await call.TryAsync(provider, payload, payloadLength, hasBody: exchange.HasRequestBody, stripUsageChunk: inject, last).ConfigureAwait(false);
                destination = call.Destination ?? destination;
                upstreamTicks += call.UpstreamTicks;
                if (call.Finished)
                {
                    call.SettleNow(); // the client left before the end of the answer: count what was relayed
                }
                call.Settle = null;
            }
            if (!anyServes)
            {
                await RespondAsync(exchange, anthropic, 400, "no-provider-for-api",
                    anthropic ? "No provider of this route speaks the Anthropic Messages API." : "No provider of this route speaks the OpenAI API.").ConfigureAwait(false);
                key?.Budget.Reconcile(windowId, reserved, 0, 0);
                return;
            }
            if (!call.Finished)
            {
                // Every provider failed before answering: the last failure is the answer.
                var error = call.LastError;
                await RespondAsync(exchange, anthropic, ForwarderErrors.StatusCode(error), ForwarderErrors.Reason(error),
                    "No provider could answer: " + ForwarderErrors.Message(error)).ConfigureAwait(false);
                key?.Budget.Reconcile(windowId, reserved, 0, 0);
            }
        }
        catch (Exception) when (exchange.Aborted.IsCancellationRequested)
        {
            // The client went away; nothing to answer.
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
            if (vector is not null)
            {
                ArrayPool<float>.Shared.Return(vector);
            }
            leading?.TrySetResult(false); // followers of a leader that stored nothing go upstream themselves
            if (broadcasting is not null)
            {
                // The leader's client left mid-stream (its upstream read stops with it): the followers end
                // with the cut event a broken stream gets. Pending (nothing answered): they go upstream.
                if (broadcasting.State == StreamBroadcastState.Live)
                {
                    broadcasting.Fail(LlmErrors.StreamCut(api, "The stream this answer was shared from ended before the answer was complete."));
                }
                broadcasting.Fail(default);
                _streams.TryRemove(new KeyValuePair<UInt128, StreamBroadcast>(broadcastKey, broadcasting));
            }
            recorder.RecordExchange(exchange, route, destination, upstreamTicks, log);
        }
    }

    /// <summary>
    /// Step 3b: a refusal (reason, message: the kinds or the pattern's index, never the matched text),
    /// or the masked body when masking changed it, or nothing to do. Checks that time out fail closed.
    /// </summary>
    private (string? Reason, string? Message, ArrayBufferWriter<byte>? Redacted) Screen(ReadOnlySpan<byte> body)
    {
        try
        {
            if (_deny is not null && DeniedPattern(body) is { } denied)
            {
                _stage.Metrics.RecordDenied(_routeId, "prompt");
                return denied.TimedOut
                    ? ("prompt-check-failed", "The prompt could not be checked against this route's deny patterns in time.", null)
                    : ("prompt-denied", $"The prompt matches deny pattern {denied.PatternIndex} of this route.", null);
            }
            if (_pii is null)
            {
                return (null, null, null);
            }
            var output = _piiMode == PiiMode.Mask ? new ArrayBufferWriter<byte>(body.Length + 64) : null;
            if (!PiiJsonRedactor.TryRedact(body, _pii, _piiMode, output, out var found))
            {
                return ("invalid-request-body", "The request body is not valid JSON.", null);
            }
            if (found == PiiKind.None)
            {
                return (null, null, null);
            }
            return _piiMode == PiiMode.Block
                ? ("pii-detected", $"The prompt contains personal data ({KindNames(found)}); this route refuses such prompts.", null)
                : (null, null, output);
        }
        catch (System.Text.RegularExpressions.RegexMatchTimeoutException)
        {
            return ("prompt-check-failed", "The prompt could not be checked for personal data in time.", null);
        }
    }

    /// <summary>The first deny pattern found in a prompt string (the values of content, text, system, prompt, input, instructions).</summary>
    private DenyMatch? DeniedPattern(ReadOnlySpan<byte> body)
    {
        var reader = new System.Text.Json.Utf8JsonReader(body, new System.Text.Json.JsonReaderOptions { MaxDepth = 64 });
        bool prompt = false;
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType == System.Text.Json.JsonTokenType.PropertyName)
                {
                    prompt = reader.ValueTextEquals("content"u8) || reader.ValueTextEquals("text"u8) || reader.ValueTextEquals("system"u8)
                        || reader.ValueTextEquals("prompt"u8) || reader.ValueTextEquals("input"u8) || reader.ValueTextEquals("instructions"u8);
                }
                else if (prompt && reader.TokenType == System.Text.Json.JsonTokenType.String && _deny!.Match(reader.GetString()) is { } match)
                {
                    return match;
                }
            }
        }
        catch (System.Text.Json.JsonException)
        {
            // Invalid JSON was refused in step 3 already; a body that reads differently here is not a match.
        }
        return null;
    }

    private static string KindNames(PiiKind found)
    {
        var names = new List<string>();
        if ((found & PiiKind.Email) != 0) names.Add("email");
        if ((found & PiiKind.Phone) != 0) names.Add("phone");
        if ((found & PiiKind.CreditCard) != 0) names.Add("credit-card");
        if ((found & PiiKind.Iban) != 0) names.Add("iban");
        if ((found & PiiKind.UsSsn) != 0) names.Add("ssn");
        if ((found & (PiiKind.IPv4 | PiiKind.IPv6)) != 0) names.Add("ip");
        return string.Join(", ", names);
    }

    private static LlmRequestApi RequestApi(LlmApi api) => api switch
    {
        LlmApi.ChatCompletions => LlmRequestApi.OpenAIChat,
        LlmApi.AnthropicMessages => LlmRequestApi.AnthropicMessages,
        _ => LlmRequestApi.Other,
    };

    /// <summary>
    /// Answers from a stored entry. JSON answers serve both kinds of client (a stream client gets the
    /// replay as the provider's SSE events); a stored stream serves stream clients only. False: this
    /// entry cannot serve this client (then it is a miss).
    /// </summary>
    private async ValueTask<bool> TryServeCachedAsync(HttpExchange exchange, LlmCacheEntry entry, LlmApi api, bool stream, bool includeUsage, LlmCacheResult hit)
    {
        var stored = ArrayPool<byte>.Shared.Rent(Math.Max(1, entry.BodyLength));
        try
        {
            int length = entry.Decode(stored);
            ReadOnlyMemory<byte> payload = stored.AsMemory(0, length);
            bool sse = stream;
            ArrayBufferWriter<byte>? replay = null;
            if (!stream)
            {
                if (entry.Format == LlmCachedFormat.EventStream)
                {
                    return false;
                }
            }
            else if (entry.Format == LlmCachedFormat.EventStream)
            {
                if (api == LlmApi.ChatCompletions && !includeUsage)
                {
                    // Stored with the usage chunk (asked for by us): this client did not ask for it.
                    replay = new ArrayBufferWriter<byte>(length);
                    var events = new SseEventSplitter();
                    events.Append(new ReadOnlySequence<byte>(payload));
                    while (events.TryTakeEvent(out var sseEvent))
                    {
                        if (!LlmResponseUsage.IsUsageOnlyChunk(sseEvent.Span))
                        {
                            replay.Write(sseEvent.Span);
                        }
                    }
                    replay.Write(events.TakeRest().Span);
                }
            }
            else
            {
                replay = new ArrayBufferWriter<byte>(length * 2 + 256);
                bool replayed = entry.Format switch
                {
                    LlmCachedFormat.OpenAIChatJson => LlmStreamReplay.OpenAIChat(payload.Span, replay, includeUsage),
                    LlmCachedFormat.AnthropicMessageJson => LlmStreamReplay.Anthropic(payload.Span, replay),
                    _ => false,
                };
                if (!replayed)
                {
                    return false;
                }
            }
            if (_denyOutput is not null && StoredAnswerDenied(entry.Format, payload.Span, api))
            {
                // Stored before this route denied it (patterns changed on a reload): a miss, so the fresh answer is checked.
                return false;
            }
            if (replay is not null)
            {
                payload = replay.WrittenMemory;
            }
            var response = exchange.Response;
            response.Reset();
            response.StatusCode = 200;
            response.AddHeader("content-type"u8, sse ? "text/event-stream"u8 : "application/json"u8);
            if (sse)
            {
                response.AddHeader("cache-control"u8, "no-cache"u8);
            }
            response.AddHeader("proxycore-cache"u8, s_cacheHeader[(int)hit]);
            _stage.Metrics.RecordCache(hit); // before the answer: a client that saw it sees the count
            await exchange.StartResponseAsync(BodyFraming.ContentLength, payload.Length, exchange.Aborted).ConfigureAwait(false);
            await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(payload), flush: false, exchange.Aborted).ConfigureAwait(false);
            await exchange.CompleteResponseAsync(null, exchange.Aborted).ConfigureAwait(false);
            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(stored);
        }
    }

    /// <summary>
    /// A follower of an identical stream miss: the head a cached stream replay gets, then the leader's
    /// client-facing bytes as they come. Ends as the leader's stream did: cleanly, or cut after its error event.
    /// </summary>
    private static async ValueTask ServeSharedStreamAsync(HttpExchange exchange, StreamBroadcast shared)
    {
        var response = exchange.Response;
        response.Reset();
        response.StatusCode = 200;
        response.AddHeader("content-type"u8, "text/event-stream"u8);
        response.AddHeader("cache-control"u8, "no-cache"u8);
        response.AddHeader("proxycore-cache"u8, s_cacheHeader[(int)LlmCacheResult.HitExact]);
        await exchange.StartResponseAsync(BodyFraming.Stream, -1, exchange.Aborted).ConfigureAwait(false);
        int seen = 0;
        while (true)
        {
            var (data, state) = shared.Read(seen);
            if (!data.IsEmpty)
            {
                // No lock held: the bytes below the shared length never change. Behind: all of it at once.
                await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(data), flush: true, exchange.Aborted).ConfigureAwait(false);
                seen += data.Length;
                continue;
            }
            if (state == StreamBroadcastState.Completed)
            {
                await exchange.CompleteResponseAsync(null, exchange.Aborted).ConfigureAwait(false);
                return;
            }
            if (state == StreamBroadcastState.Failed)
            {
                await LlmUpstreamCall.EndCutStreamAsync(exchange, null).ConfigureAwait(false); // the error event was in the shared bytes
                return;
            }
            // Uncancelled on purpose (no allocation per wait): the leader ends or fails the share within
            // the route's timeout of upstream silence, and a follower whose client left fails its next write.
            await shared.WaitAsync(seen).ConfigureAwait(false);
        }
    }

    /// <summary>True when a stored answer (JSON, or the provider's events) matches the output deny patterns.</summary>
    private bool StoredAnswerDenied(LlmCachedFormat format, ReadOnlySpan<byte> stored, LlmApi api)
    {
        if (format != LlmCachedFormat.EventStream)
        {
            return DenyOutputScan.Json(stored, _denyOutput!) is not null;
        }
        var matcher = new DenyStreamMatcher(_denyOutput!, _denyOutputWindow);
        var meter = new Sse.LlmStreamMeter(LlmApis.StreamFormat(api)) { TextObserver = matcher };
        meter.Observe(stored);
        return matcher.Matched is not null;
    }

    private LlmLogFields Account(LlmVirtualKey? key, string keyLabel, LlmProvider provider, string model, LlmUpstreamCall call, long windowId, long reserved)
    {
        long prompt = call.PromptTokens, completion = call.CompletionTokens, cached = call.CachedTokens;
        double cost = Price(model, call.AnsweredModel, provider.Anthropic, prompt, completion, cached);
        _stage.Metrics.Record(_routeId, keyLabel, model, provider.Name, prompt, completion, cached, cost);
        key?.Budget.Reconcile(windowId, reserved, Math.Max(0, prompt) + Math.Max(0, completion), cost);
        return new LlmLogFields(keyLabel, provider.Name, model, prompt, completion, cached, cost, call.Outcome);
    }

    /// <summary>USD for one answer. OpenAI's prompt count includes cached tokens; Anthropic's excludes them.</summary>
    private double Price(string model, string? answered, bool anthropic, long prompt, long completion, long cached)
    {
        if (!(_pricing.TryGetValue(model, out var price) || (answered is not null && _pricing.TryGetValue(answered, out price))))
        {
            return 0;
        }
        long cachedTokens = Math.Max(0, cached);
        long uncached = Math.Max(0, prompt) - (anthropic ? 0 : cachedTokens);
        return (Math.Max(0, uncached) * price.InputPer1M + cachedTokens * (price.CachedInputPer1M ?? price.InputPer1M) + Math.Max(0, completion) * price.OutputPer1M) / 1_000_000;
    }

    /// <summary>Which provider gets the first try: the one the provider header names, a weighted pick, or the first.</summary>
    private int FirstProvider(RequestHead request)
    {
        if (_providerHeader is not null && request.TryGetValue(_providerHeader, out var wanted))
        {
            for (int i = 0; i < _providers.Length; i++)
            {
                if (wanted.SequenceEqual(_providers[i].NameBytes))
                {
                    return i;
                }
            }
        }
        if (_weighted && _totalWeight > 0)
        {
            int pick = Random.Shared.Next(_totalWeight);
            for (int i = 0; i < _providers.Length; i++)
            {
                pick -= _providers[i].Weight;
                if (pick < 0)
                {
                    return i;
                }
            }
        }
        return 0;
    }

    private LlmVirtualKey? FindKey(RequestHead request)
    {
        ReadOnlySpan<byte> presented = default;
        if (request.TryGetValue(KnownHeader.Authorization, out var authorization) && authorization.Length > s_bearer.Length &&
            Ascii.EqualsIgnoreCase(authorization[..s_bearer.Length], s_bearer))
        {
            presented = authorization[s_bearer.Length..].Trim((byte)' ');
        }
        else if (request.TryGetValue("x-api-key"u8, out var apiKey))
        {
            presented = apiKey.Trim((byte)' ');
        }
        if (presented.IsEmpty)
        {
            return null;
        }
        LlmVirtualKey? found = null;
        foreach (var key in _keys!)
        {
            // Constant time per candidate, and every candidate compared: timing tells nothing about which matched.
            if (CryptographicOperations.FixedTimeEquals(presented, key.Secret))
            {
                found = key;
            }
        }
        return found;
    }

    private async ValueTask<(byte[] Body, int Length, string? Error)> ReadBodyAsync(HttpExchange exchange)
    {
        int capacity = exchange.Request.Framing == BodyFraming.ContentLength ? (int)Math.Max(exchange.Request.ContentLength, 16) : 4096;
        var body = ArrayPool<byte>.Shared.Rent(capacity);
        int length = 0;
        while (exchange.HasRequestBody && !exchange.RequestBodyCompleted)
        {
            BodyReadResult read;
            try
            {
                read = await exchange.ReadRequestBodyAsync(exchange.Aborted).ConfigureAwait(false);
            }
            catch (Exception) when (!exchange.Aborted.IsCancellationRequested)
            {
                return (body, length, "cut");
            }
            long needed = length + read.Data.Length;
            if (needed > _maxRequestBytes)
            {
                exchange.AdvanceRequestBody();
                return (body, length, "too-large");
            }
            if (needed > body.Length)
            {
                var larger = ArrayPool<byte>.Shared.Rent((int)Math.Min(_maxRequestBytes, Math.Max(needed, body.Length * 2L)));
                body.AsSpan(0, length).CopyTo(larger);
                ArrayPool<byte>.Shared.Return(body);
                body = larger;
            }
            read.Data.CopyTo(body.AsSpan(length));
            length += (int)read.Data.Length;
            exchange.AdvanceRequestBody();
            if (read.IsCompleted)
            {
                break;
            }
        }
        return (body, length, null);
    }

    private async ValueTask RespondAsync(HttpExchange exchange, bool anthropic, int status, string reason, string message)
    {
        if (exchange.BeginErrorResponse(status, reason))
        {
            await WriteErrorBodyAsync(exchange, anthropic, status, reason, message).ConfigureAwait(false);
        }
    }

    public ValueTask FinishErrorAsync(HttpExchange exchange, int status, string reason, string message)
        => WriteErrorBodyAsync(exchange, LlmApis.FromPath(exchange.Request.PathSpan) == LlmApi.AnthropicMessages, status, reason, message);

    private static async ValueTask WriteErrorBodyAsync(HttpExchange exchange, bool anthropic, int status, string reason, string message)
    {
        var response = exchange.Response;
        response.RemoveHeaders(KnownHeader.ContentType);
        response.AddHeader("content-type"u8, "application/json"u8);
        var json = LlmErrors.Json(anthropic, status, reason, message);
        if (!exchange.RequestBodyCompleted && exchange.HasRequestBody)
        {
            exchange.CloseAfterResponse(); // an unread body would be taken for the next request
        }
        await exchange.StartResponseAsync(BodyFraming.ContentLength, json.Length, exchange.Aborted).ConfigureAwait(false);
        await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(json), flush: false, exchange.Aborted).ConfigureAwait(false);
        await exchange.CompleteResponseAsync(null, exchange.Aborted).ConfigureAwait(false);
    }
}

/// <summary>A provider of a route: its cluster, its own key as a ready header, its model map.</summary>
internal sealed class LlmProvider
{
    public LlmProvider(LlmProviderConfig config, ClusterModel cluster)
    {
        Name = config.Name;
        NameBytes = Encoding.ASCII.GetBytes(config.Name);
        Anthropic = config.Type == "anthropic";
        Cluster = cluster;
        Models = new Dictionary<string, string>(config.Models, StringComparer.Ordinal);
        Weight = config.Weight;
        AnthropicVersion = Encoding.ASCII.GetBytes(config.AnthropicVersion);
        if (ConfigSecrets.Resolve(config.ApiKey) is { Length: > 0 } secret)
        {
            AuthName = Anthropic ? "x-api-key"u8.ToArray() : "authorization"u8.ToArray();
            AuthValue = Encoding.UTF8.GetBytes(Anthropic ? secret : "Bearer " + secret);
        }
    }

    public string Name { get; }
    public byte[] NameBytes { get; }
    public bool Anthropic { get; }
    public ClusterModel Cluster { get; }
    public Dictionary<string, string> Models { get; }
    public int Weight { get; }
    public byte[] AnthropicVersion { get; }
    public byte[]? AuthName { get; }
    public byte[]? AuthValue { get; }
}

internal sealed record LlmVirtualKey(LlmKeyConfig Config, byte[] Secret, LlmKeyBudget Budget)
{
    public string Name => Config.Name;

    /// <summary>The cache tenant: answers are never shared between keys.</summary>
    public byte[] Tenant { get; } = Encoding.UTF8.GetBytes(Config.Name);
}
