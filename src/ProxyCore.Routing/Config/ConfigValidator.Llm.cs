namespace ProxyCore.Routing.Config;

/// <summary>The <c>llm</c> block of a route.</summary>
internal sealed partial class ConfigValidator
{
    internal static readonly string[] LlmProviderTypes = ["openai", "anthropic"];
    private static readonly string[] s_llmStrategies = ["fallback", "weighted"];
    private static readonly string[] s_piiKinds = ["email", "phone", "credit-card", "ssn", "ip", "iban"];
    private static readonly string[] s_redactModes = ["mask", "block"];
    private static readonly string[] s_embedders = ["builtin", "local", "openai"];

    private void ValidateLlm(LlmConfig llm, HashSet<string> clusterIds, string path)
    {
        if (llm.Providers.Count == 0)
        {
            Error(path + ".providers", "at least one provider is required");
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        int weighted = 0;
        for (int i = 0; i < llm.Providers.Count; i++)
        {
            var provider = llm.Providers[i];
            string ppath = $"{path}.providers[{i}]";
            if (string.IsNullOrWhiteSpace(provider.Name))
            {
                Error(ppath + ".name", "name is required");
            }
            else if (!names.Add(provider.Name))
            {
                Error(ppath + ".name", $"duplicate provider name '{provider.Name}'");
            }
            else if (!System.Text.Ascii.IsValid(provider.Name) || provider.Name.AsSpan().ContainsAnyInRange('\0', ' '))
            {
                Error(ppath + ".name", "must be visible ASCII without spaces (it is sent as the proxycore-provider header)");
            }
            if (Array.IndexOf(LlmProviderTypes, provider.Type) < 0)
            {
                Error(ppath + ".type", $"unknown provider type '{provider.Type}' (expected \"openai\" or \"anthropic\")");
            }
            if (string.IsNullOrWhiteSpace(provider.Cluster))
            {
                Error(ppath + ".cluster", "cluster is required");
            }
            else if (!clusterIds.Contains(provider.Cluster))
            {
                Error(ppath + ".cluster", $"unknown cluster '{provider.Cluster}'");
            }
            if (provider.ApiKey is { } apiKey)
            {
                Secret(apiKey, ppath + ".apiKey");
            }
            foreach (var (from, to) in provider.Models)
            {
                if (from.Length == 0 || string.IsNullOrWhiteSpace(to))
                {
                    Error(SchemaWalker.Append(ppath + ".models", from), "model names must not be empty");
                }
            }
            if (provider.Weight < 0)
            {
                Error(ppath + ".weight", "must be 0 or more");
            }
            weighted += Math.Max(0, provider.Weight);
            if (string.IsNullOrWhiteSpace(provider.AnthropicVersion))
            {
                Error(ppath + ".anthropicVersion", "must not be empty");
            }
        }
        if (Array.IndexOf(s_llmStrategies, llm.Strategy) < 0)
        {
            Error(path + ".strategy", $"unknown strategy '{llm.Strategy}' (expected \"fallback\" or \"weighted\")");
        }
        else if (llm.Strategy == "weighted" && weighted == 0 && llm.Providers.Count > 0)
        {
            Error(path + ".providers", "every weight is 0: no provider would get a first try");
        }
        if (llm.ProviderHeader is { } header && !IsToken(header))
        {
            Error(path + ".providerHeader", $"'{header}' is not a valid header name");
        }
        if (llm.MaxRequestBytes <= 0)
        {
            Error(path + ".maxRequestBytes", "must be more than 0");
        }
        if (llm.Keys is { } keys)
        {
            ValidateLlmKeys(keys, path + ".keys");
        }
        foreach (var (model, price) in llm.Pricing)
        {
            string mpath = SchemaWalker.Append(path + ".pricing", model);
            if (price.InputPer1M < 0 || price.OutputPer1M < 0 || price.CachedInputPer1M < 0)
            {
                Error(mpath, "prices must be 0 or more");
            }
        }
        if (llm.Cache is { } cache)
        {
            ValidateLlmCache(cache, path + ".cache");
        }
        if (llm.Redact is { } redact)
        {
            for (int i = 0; i < redact.Pii.Count; i++)
            {
                if (Array.IndexOf(s_piiKinds, redact.Pii[i]) < 0)
                {
                    Error($"{path}.redact.pii[{i}]", $"unknown PII kind '{redact.Pii[i]}' (expected one of: {string.Join(", ", s_piiKinds)})");
                }
            }
            if (Array.IndexOf(s_redactModes, redact.Mode) < 0)
            {
                Error(path + ".redact.mode", $"unknown mode '{redact.Mode}' (expected \"mask\" or \"block\")");
            }
            if (redact.Deny is { } deny)
            {
                ValidateDenyPatterns(deny, path + ".redact.deny", "prompt");
            }
            if (redact.DenyOutput is { } denyOutput)
            {
                ValidateDenyPatterns(denyOutput, path + ".redact.denyOutput", "answer");
            }
            if (redact.DenyOutputWindow is < 16 or > 4096)
            {
                Error(path + ".redact.denyOutputWindow", "must be 16 to 4096 characters");
            }
        }
        if (llm.Templates is { } templates)
        {
            ValidateLlmTemplates(templates, path + ".templates");
        }
    }

    private static readonly string[] s_templateRoles = ["system", "developer", "user", "assistant"];

    private void ValidateLlmTemplates(IReadOnlyDictionary<string, LlmTemplateConfig> templates, string path)
    {
        var parts = new List<LlmTemplateText.Part>();
        foreach (var (id, template) in templates)
        {
            string tpath = SchemaWalker.Append(path, id);
            if (id.Length == 0 || id.Contains('@'))
            {
                Error(tpath, "a template id must not be empty or contain '@' (the header form is id@version)");
            }
            if (template.Versions.Count == 0)
            {
                Error(tpath + ".versions", "at least one version is required");
            }
            if (template.Default is { } selected)
            {
                if (!template.Versions.ContainsKey(selected))
                {
                    Error(tpath + ".default", $"names version '{selected}', which is not in versions");
                }
            }
            else if (template.Versions.Count > 1)
            {
                Error(tpath + ".default", "required when there are several versions (which one does a request that names none get?)");
            }
            foreach (var (name, version) in template.Versions)
            {
                string vpath = SchemaWalker.Append(tpath + ".versions", name);
                if (name.Length == 0)
                {
                    Error(vpath, "a version name must not be empty");
                }
                if (version.Model is { } model && string.IsNullOrWhiteSpace(model))
                {
                    Error(vpath + ".model", "must not be empty (leave it out to use the request's)");
                }
                if (version.Messages.Count == 0)
                {
                    Error(vpath + ".messages", "at least one message is required");
                }
                for (int i = 0; i < version.Messages.Count; i++)
                {
                    var message = version.Messages[i];
                    string mpath = $"{vpath}.messages[{i}]";
                    if (Array.IndexOf(s_templateRoles, message.Role) < 0)
                    {
                        Error(mpath + ".role", $"unknown role '{message.Role}' (expected one of: {string.Join(", ", s_templateRoles)})");
                    }
                    parts.Clear();
                    if (LlmTemplateText.TryParse(message.Content, parts) is { } error)
                    {
                        Error(mpath + ".content", error);
                    }
                    else if (message.Content.Length == 0)
                    {
                        Error(mpath + ".content", "must not be empty");
                    }
                }
            }
        }
    }

    private void ValidateDenyPatterns(IReadOnlyList<string> patterns, string path, string what)
    {
        for (int i = 0; i < patterns.Count; i++)
        {
            if (string.IsNullOrEmpty(patterns[i]))
            {
                Error($"{path}[{i}]", $"an empty pattern would refuse every {what}");
                continue;
            }
            try
            {
                // The stage compiles them the same way (linear time, so a prompt or an answer cannot make a pattern slow).
                var regex = new System.Text.RegularExpressions.Regex(patterns[i], System.Text.RegularExpressions.RegexOptions.NonBacktracking |
                    System.Text.RegularExpressions.RegexOptions.CultureInvariant | System.Text.RegularExpressions.RegexOptions.IgnoreCase);
                if (regex.IsMatch(""))
                {
                    Error($"{path}[{i}]", $"matches the empty text, so it would refuse every {what}");
                }
            }
            catch (Exception e) when (e is ArgumentException or NotSupportedException)
            {
                Error($"{path}[{i}]", $"not a valid non-backtracking regex: {e.Message}");
            }
        }
    }

    private void ValidateLlmKeys(IReadOnlyList<LlmKeyConfig> keys, string path)
    {
        if (keys.Count == 0)
        {
            Error(path, "an empty list would refuse every request: leave keys out for an open route");
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        var values = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < keys.Count; i++)
        {
            var key = keys[i];
            string kpath = $"{path}[{i}]";
            if (string.IsNullOrWhiteSpace(key.Name))
            {
                Error(kpath + ".name", "name is required");
            }
            else if (!names.Add(key.Name))
            {
                Error(kpath + ".name", $"duplicate key name '{key.Name}'");
            }
            if (Secret(key.Key, kpath + ".key") is { } value && !values.Add(value))
            {
                Error(kpath + ".key", "the same key is given twice: requests could not be told apart");
            }
            if (key.RequestsPerMinute is < 1)
            {
                Error(kpath + ".requestsPerMinute", "must be at least 1 (leave it out for no limit)");
            }
            if (key.TokensPerMinute is < 1)
            {
                Error(kpath + ".tokensPerMinute", "must be at least 1 (leave it out for no limit)");
            }
            if (key.BudgetUsd is { } budget && !(budget > 0))
            {
                Error(kpath + ".budgetUsd", "must be more than 0 (leave it out for no limit)");
            }
        }
    }

    private void ValidateLlmCache(LlmCacheConfig cache, string path)
    {
        if (cache.Exact is null && cache.Semantic is null)
        {
            Error(path, "needs exact, semantic or both");
        }
        if (cache.Exact is { } exact)
        {
            Positive(path + ".exact.ttl", exact.Ttl);
        }
        if (cache.Semantic is { } semantic)
        {
            if (semantic.Threshold is { } threshold && !(threshold > 0 && threshold <= 1))
            {
                Error(path + ".semantic.threshold", "must be in (0, 1]");
            }
            if (Array.IndexOf(s_embedders, semantic.Embedder) < 0)
            {
                Error(path + ".semantic.embedder", $"unknown embedder '{semantic.Embedder}' (expected one of: {string.Join(", ", s_embedders)})");
            }
#if !PROXYCORE_MINILM
            else if (semantic.Embedder == "local")
            {
                // The model (91 MB) and ONNX Runtime's native library stay out of the lean binary (DESIGN.md "Packages").
                Error(path + ".semantic.embedder", "the local MiniLM embedder is not in this binary: it was built without it (build with -p:ProxyCoreMiniLM=true), or use \"builtin\" or \"openai\"");
            }
#endif
            if (semantic.Embedder == "openai")
            {
                if (string.IsNullOrWhiteSpace(semantic.Endpoint))
                {
                    Error(path + ".semantic.endpoint", "required for the openai embedder (the embeddings server, e.g. \"https://api.openai.com\")");
                }
                else if (!Uri.TryCreate(semantic.Endpoint, UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https"))
                {
                    Error(path + ".semantic.endpoint", $"'{semantic.Endpoint}' is not an absolute http or https address");
                }
                if (string.IsNullOrWhiteSpace(semantic.Model))
                {
                    Error(path + ".semantic.model", "must not be empty");
                }
                if (semantic.ApiKey is { } apiKey)
                {
                    Secret(apiKey, path + ".semantic.apiKey");
                }
                if (semantic.Dimensions is < 1 or > 8192)
                {
                    Error(path + ".semantic.dimensions", "must be 1 to 8192");
                }
                Positive(path + ".semantic.timeout", semantic.Timeout);
            }
            else if (semantic.Endpoint is not null || semantic.ApiKey is not null || semantic.Dimensions is not null)
            {
                Error(path + ".semantic.embedder", $"endpoint, apiKey and dimensions are settings of the \"openai\" embedder, not of \"{semantic.Embedder}\"");
            }
            Positive(path + ".semantic.ttl", semantic.Ttl);
        }
        if (cache.MaxBytes <= 0)
        {
            Error(path + ".maxBytes", "must be more than 0");
        }
    }

    /// <summary>A secret (inline or "env:NAME"): its value, or null after reporting why there is none.</summary>
    private string? Secret(string reference, string path)
    {
        string? value = ConfigSecrets.Resolve(reference);
        if (string.IsNullOrEmpty(reference))
        {
            Error(path, "required (use \"env:NAME\" to read it from the environment)");
            return null;
        }
        if (string.IsNullOrEmpty(value))
        {
            Error(path, $"environment variable '{reference[ConfigSecrets.EnvPrefix.Length..]}' is not set");
            return null;
        }
        if (value.AsSpan().ContainsAnyInRange('\0', '\x1F') || value.Contains('\x7F'))
        {
            Error(path, "must not contain control characters (it is sent in a header)");
            return null;
        }
        return value;
    }
}
