namespace ProxyCore.Routing.Config;

/// <summary>Pass 3 of <see cref="ProxyConfigLoader"/>: what the config means, not its shape.</summary>
internal sealed partial class ConfigValidator(ProxyConfig config)
{
    internal static readonly string[] LoadBalancingPolicies = ["round-robin", "weighted-round-robin", "least-requests", "power-of-two", "random"];
    private static readonly string[] s_protocols = ["http1", "http2"];
    private static readonly string[] s_pathTypes = ["prefix", "exact"];
    private static readonly string[] s_headerModes = ["exact", "prefix", "present"];

    private readonly List<ConfigError> _errors = [];

    public List<ConfigError> Run()
    {
        var listenerAddresses = ValidateListeners();
        ValidateAdmin(listenerAddresses);
        var clusterIds = ValidateClusters();
        ValidateRoutes(clusterIds);
        ValidateLimits();
        if (config.Tracing.OtlpEndpoint is { } otlp &&
            !(Uri.TryCreate(otlp, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"))
        {
            Error("$.tracing.otlpEndpoint", $"'{otlp}' is not an http(s) URL");
        }
        ValidateTransport();
        if (config.AccessLog.Path is { Length: 0 })
        {
            Error("$.accessLog.path", "must not be empty (leave it out or null for stdout)");
        }
        return _errors;
    }

    private static readonly string[] s_engines = ["sockets", "epoll"];

    private void ValidateTransport()
    {
        var transport = config.Transport;
        if (Array.IndexOf(s_engines, transport.Engine) < 0)
        {
            Error("$.transport.engine", $"unknown engine '{transport.Engine}' (expected \"sockets\" or \"epoll\")");
        }
        else if (transport.Engine == "epoll" && !OperatingSystem.IsLinux())
        {
            Error("$.transport.engine", "\"epoll\" needs Linux; use \"sockets\"");
        }
        if (transport.Reactors is < 0 or > 256)
        {
            Error("$.transport.reactors", "must be between 0 (one per processor) and 256");
        }
        else if (transport.Reactors != 0 && transport.Engine != "epoll")
        {
            Error("$.transport.reactors", "only applies to the \"epoll\" engine");
        }
        if (!transport.BatchSends && transport.Engine != "epoll")
        {
            Error("$.transport.batchSends", "only applies to the \"epoll\" engine");
        }
        if (transport.InlineCompletions && transport.Engine != "sockets")
        {
            Error("$.transport.inlineCompletions", "only applies to the \"sockets\" engine (epoll always runs the app on its reactor threads)");
        }
    }

    private HashSet<string> ValidateListeners()
    {
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        if (config.Listeners.Count == 0)
        {
            Error("$.listeners", "at least one listener is required");
        }
        for (int i = 0; i < config.Listeners.Count; i++)
        {
            var listener = config.Listeners[i];
            string path = $"$.listeners[{i}]";
            if (!Addresses.TryParseListener(listener.Address, out _, out int port, out var error))
            {
                Error(path + ".address", error!);
            }
            else if (port != 0 && !seen.Add(listener.Address)) // port 0: each bind gets its own ephemeral port
            {
                Error(path + ".address", $"duplicate listener address '{listener.Address}'");
            }
            if (listener.Protocols.Count == 0)
            {
                Error(path + ".protocols", "at least one protocol is required (\"http1\", \"http2\")");
            }
            for (int p = 0; p < listener.Protocols.Count; p++)
            {
                if (Array.IndexOf(s_protocols, listener.Protocols[p]) < 0)
                {
                    Error($"{path}.protocols[{p}]", $"unknown protocol '{listener.Protocols[p]}' (expected \"http1\" or \"http2\")");
                }
            }
            if (listener.Tls is { } tls)
            {
                ValidateListenerTls(tls, path + ".tls");
            }
        }
        return seen;
    }

    private void ValidateAdmin(HashSet<string> listenerAddresses)
    {
        if (!config.Admin.Enabled)
        {
            return;
        }
        if (!Addresses.TryParseListener(config.Admin.Address, out _, out int adminPort, out var error))
        {
            Error("$.admin.address", error!);
        }
        else if (adminPort != 0 && listenerAddresses.Contains(config.Admin.Address))
        {
            Error("$.admin.address", $"'{config.Admin.Address}' is also a listener address");
        }
    }

    private HashSet<string> ValidateClusters()
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < config.Clusters.Count; i++)
        {
            var cluster = config.Clusters[i];
            string path = $"$.clusters[{i}]";
            ValidateClusterPolicies(cluster, path);
            ValidateClusterTls(cluster, path);
            if (cluster.CircuitBreaker is { } breaker)
            {
                ValidateCircuitBreaker(breaker, path + ".circuitBreaker");
            }
            if (string.IsNullOrWhiteSpace(cluster.Id))
            {
                Error(path + ".id", "id is required");
            }
            else if (!ids.Add(cluster.Id))
            {
                Error(path + ".id", $"duplicate cluster id '{cluster.Id}'");
            }
            if (Array.IndexOf(LoadBalancingPolicies, cluster.LoadBalancing) < 0)
            {
                Error(path + ".loadBalancing", $"unknown policy '{cluster.LoadBalancing}' (expected one of: {string.Join(", ", LoadBalancingPolicies)})");
            }
            if (cluster.Destinations.Count == 0)
            {
                Error(path + ".destinations", "at least one destination is required");
            }
            var addresses = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            bool anyWeight = false;
            for (int d = 0; d < cluster.Destinations.Count; d++)
            {
                var destination = cluster.Destinations[d];
                string dpath = $"{path}.destinations[{d}]";
                if (!Addresses.TryParseDestination(destination.Address, out var parsed, out var error))
                {
                    Error(dpath + ".address", error!);
                }
                else if (d > 0 && Addresses.TryParseDestination(cluster.Destinations[0].Address, out var first, out _) && first.IsHttps != parsed.IsHttps)
                {
                    Error(dpath + ".address", "mixes http:// and https:// in one cluster: TLS settings are per cluster, so split them into two clusters");
                }
                else if (!addresses.Add(destination.Address))
                {
                    Error(dpath + ".address", $"duplicate destination '{destination.Address}' in this cluster");
                }
                if (destination.Weight < 0)
                {
                    Error(dpath + ".weight", "must be 0 or more");
                }
                anyWeight |= destination.Weight > 0;
            }
            if (!anyWeight && cluster.Destinations.Count > 0 && cluster.LoadBalancing == "weighted-round-robin")
            {
                Error(path + ".destinations", "every weight is 0: no destination would get traffic");
            }
            Positive(path + ".connectTimeout", cluster.ConnectTimeout);
            if (cluster.MaxIdleConnectionsPerDestination < 0)
            {
                Error(path + ".maxIdleConnectionsPerDestination", "must be 0 or more");
            }
            if (cluster.Protocol is not ("http1" or "http2"))
            {
                Error(path + ".protocol", $"unknown protocol '{cluster.Protocol}' (expected one of: http1, http2)");
            }
            if (cluster.Http2 is { } h2)
            {
                if (cluster.Protocol != "http2")
                {
                    Error(path + ".http2", "only applies with \"protocol\": \"http2\"");
                }
                // §6.9.2 / §6.5.2: windows are 31-bit; below 64 KiB - 1 an upstream cannot even fill one frame per round trip.
                if (h2.StreamWindowSize is < 65_535 or > int.MaxValue)
                {
                    Error(path + ".http2.streamWindowSize", "must be between 65535 and 2147483647 bytes");
                }
                if (h2.ConnectionWindowSize is < 65_535 or > int.MaxValue)
                {
                    Error(path + ".http2.connectionWindowSize", "must be between 65535 and 2147483647 bytes");
                }
                else if (h2.ConnectionWindowSize < h2.StreamWindowSize)
                {
                    Error(path + ".http2.connectionWindowSize", "must be at least streamWindowSize (one stream could stall the connection)");
                }
                if (h2.MaxConnectionsPerDestination < 1)
                {
                    Error(path + ".http2.maxConnectionsPerDestination", "must be at least 1");
                }
                if (h2.PingInterval < TimeSpan.Zero)
                {
                    Error(path + ".http2.pingInterval", "must be 0 (off) or more");
                }
                Positive(path + ".http2.pingTimeout", h2.PingTimeout);
            }
        }
        return ids;
    }

    private void ValidateRoutes(HashSet<string> clusterIds)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < config.Routes.Count; i++)
        {
            var route = config.Routes[i];
            string path = $"$.routes[{i}]";
            if (string.IsNullOrWhiteSpace(route.Id))
            {
                Error(path + ".id", "id is required");
            }
            else if (!ids.Add(route.Id))
            {
                Error(path + ".id", $"duplicate route id '{route.Id}'");
            }
            if (string.IsNullOrWhiteSpace(route.Cluster))
            {
                Error(path + ".cluster", "cluster is required");
            }
            else if (!clusterIds.Contains(route.Cluster))
            {
                Error(path + ".cluster", $"unknown cluster '{route.Cluster}'");
            }
            if (route.Timeout is { } timeout)
            {
                Positive(path + ".timeout", timeout);
            }
            ValidateMatch(route.Match, path + ".match");
            if (route.Auth is { } auth)
            {
                ValidateAuth(auth, path + ".auth");
            }
            if (route.RateLimit is { } limit)
            {
                ValidateRateLimit(limit, route.Auth, path + ".rateLimit");
            }
            if (route.Retry is { } retry)
            {
                ValidateRetry(retry, path + ".retry");
            }
            if (route.Split is { } split)
            {
                ValidateSplit(split, route.Sticky, clusterIds, path);
            }
            else if (route.Sticky is not null)
            {
                Error(path + ".sticky", "only means something with a split");
            }
            ValidateRoutePolicies(route, path);
            if (route.Llm is { } llm)
            {
                ValidateLlm(llm, clusterIds, path + ".llm");
                // The LLM stage sends to its providers itself: these would be silently ignored.
                if (route.Split is not null)
                {
                    Error(path + ".split", "an llm route sends to its providers: use llm.strategy \"weighted\" with provider weights");
                }
                if (route.Retry is not null)
                {
                    Error(path + ".retry", "an llm route falls back across its providers instead of retrying: add another provider entry (its own name) on the same cluster to retry it");
                }
            }
        }
    }

    /// <summary>Cluster policy blocks each validate in their own file (ConfigValidator.*.cs).</summary>
    partial void ValidateClusterPolicies(ClusterConfig cluster, string path);

    /// <summary>Route policy blocks each validate in their own file (ConfigValidator.*.cs).</summary>
    partial void ValidateRoutePolicies(RouteConfig route, string path);

    private void ValidateSplit(IReadOnlyList<SplitConfig> split, string? sticky, HashSet<string> clusterIds, string path)
    {
        int weighted = 0;
        for (int i = 0; i < split.Count; i++)
        {
            var entry = split[i];
            string epath = $"{path}.split[{i}]";
            if (!clusterIds.Contains(entry.Cluster))
            {
                Error(epath + ".cluster", $"unknown cluster '{entry.Cluster}'");
            }
            if (entry.Weight < 0)
            {
                Error(epath + ".weight", "must be ≥ 0");
            }
            if (entry.When is { } when)
            {
                if ((when.Header is null) == (when.Cookie is null))
                {
                    Error(epath + ".when", "give exactly one of header or cookie");
                }
                else if (when.Header is not null && !IsToken(when.Header))
                {
                    Error(epath + ".when.header", $"'{when.Header}' is not a valid header name");
                }
                else if (when.Cookie is { Length: 0 })
                {
                    Error(epath + ".when.cookie", "must name a cookie");
                }
            }
            else
            {
                weighted += Math.Max(0, entry.Weight);
            }
        }
        if (split.Count == 0)
        {
            Error(path + ".split", "needs at least one entry");
        }
        else if (weighted == 0 && split.Any(e => e.When is null))
        {
            Error(path + ".split", "the weights of the entries without `when` add up to 0");
        }
        if (sticky is not null && !(sticky.StartsWith("header:", StringComparison.Ordinal) && IsToken(sticky[7..])
            || sticky.StartsWith("cookie:", StringComparison.Ordinal) && sticky.Length > 7))
        {
            Error(path + ".sticky", $"'{sticky}' is not \"header:NAME\" or \"cookie:NAME\"");
        }
    }

    private void ValidateRetry(RetryConfig retry, string path)
    {
        if (retry.Attempts is < 1 or > 10)
        {
            Error(path + ".attempts", "must be between 1 and 10");
        }
        if (retry.On.Count == 0)
        {
            Error(path + ".on", "name at least one condition: \"connect-failure\", \"timeout\", \"reset\" or a status such as 503");
        }
        for (int i = 0; i < retry.On.Count; i++)
        {
            var item = retry.On[i];
            bool ok = item.ValueKind switch
            {
                System.Text.Json.JsonValueKind.String => item.GetString() is "connect-failure" or "timeout" or "reset",
                System.Text.Json.JsonValueKind.Number => item.TryGetInt32(out int status) && status is >= 500 and <= 599 || item.TryGetInt32(out status) && status == 429,
                _ => false,
            };
            if (!ok)
            {
                Error($"{path}.on[{i}]", $"unknown retry condition {item.GetRawText()} (expected \"connect-failure\", \"timeout\", \"reset\", 429 or a 5xx status)");
            }
        }
        if (retry.PerTryTimeout is { } perTry)
        {
            Positive(path + ".perTryTimeout", perTry);
        }
        if (retry.Backoff < TimeSpan.Zero || retry.MaxBackoff < retry.Backoff)
        {
            Error(path + ".maxBackoff", "backoff must be ≥ 0 and maxBackoff ≥ backoff");
        }
        if (retry.BudgetPercent is < 1 or > 100)
        {
            Error(path + ".budgetPercent", "must be between 1 and 100");
        }
        if (retry.MinRetryConcurrency < 0)
        {
            Error(path + ".minRetryConcurrency", "must be ≥ 0");
        }
    }

    private void ValidateAuth(AuthConfig auth, string path)
    {
        if (auth.ApiKeys.Count == 0 && auth.Jwt is null)
        {
            Error(path, "needs apiKeys, jwt or both (leave auth out for an open route)");
        }
        var keys = new HashSet<string>(StringComparer.Ordinal);
        for (int k = 0; k < auth.ApiKeys.Count; k++)
        {
            var key = auth.ApiKeys[k];
            string kpath = $"{path}.apiKeys[{k}]";
            if (string.IsNullOrWhiteSpace(key.Consumer))
            {
                Error(kpath + ".consumer", "consumer is required");
            }
            string? value = ConfigSecrets.Resolve(key.Key);
            if (string.IsNullOrEmpty(key.Key))
            {
                Error(kpath + ".key", "key is required (use \"env:NAME\" to read it from the environment)");
            }
            else if (value is null)
            {
                Error(kpath + ".key", $"environment variable '{key.Key[ConfigSecrets.EnvPrefix.Length..]}' is not set");
            }
            else if (value.Length < 16)
            {
                Error(kpath + ".key", "keys shorter than 16 characters are too easy to guess");
            }
            else if (!keys.Add(value))
            {
                Error(kpath + ".key", "the same key is given twice");
            }
        }
        if (!IsToken(auth.Header))
        {
            Error(path + ".header", $"'{auth.Header}' is not a valid header name");
        }
        if (auth.Allow is { Count: 0 })
        {
            Error(path + ".allow", "an empty list admits nobody; leave it out to admit every valid consumer");
        }
        if (!IsToken(auth.ConsumerHeader))
        {
            Error(path + ".consumerHeader", $"'{auth.ConsumerHeader}' is not a valid header name");
        }
        if (auth.Query is { } query && (query.Length == 0 || query.AsSpan().IndexOfAny("&=#? ") >= 0))
        {
            Error(path + ".query", $"'{query}' is not a plain query parameter name");
        }
        if (auth.Jwt is { } jwt)
        {
            if (string.IsNullOrWhiteSpace(jwt.Jwks) == (jwt.PublicKey is null))
            {
                Error(path + ".jwt", "give exactly one of jwks (a JWKS file) or publicKey (inline PEM)");
            }
            else if (jwt.PublicKey is { } pem && ConfigSecrets.Resolve(pem) is not { } resolved)
            {
                Error(path + ".jwt.publicKey", $"environment variable '{pem[ConfigSecrets.EnvPrefix.Length..]}' is not set");
            }
            else if (jwt.PublicKey is { } inline && !(ConfigSecrets.Resolve(inline) ?? "").Contains("-----BEGIN ", StringComparison.Ordinal))
            {
                Error(path + ".jwt.publicKey", "expected a PEM block (-----BEGIN PUBLIC KEY----- …)");
            }
            else if (jwt.PublicKey is null && !File.Exists(jwt.Jwks))
            {
                Error(path + ".jwt.jwks", $"file '{jwt.Jwks}' not found");
            }
            if (jwt.ClockSkew < TimeSpan.Zero || jwt.ClockSkew > TimeSpan.FromMinutes(10))
            {
                Error(path + ".jwt.clockSkew", "must be between 0s and 10m");
            }
            if (string.IsNullOrWhiteSpace(jwt.ConsumerClaim))
            {
                Error(path + ".jwt.consumerClaim", "must name a claim");
            }
        }
    }

    private void ValidateRateLimit(RateLimitConfig limit, AuthConfig? auth, string path)
    {
        if (!(limit.RequestsPerSecond > 0) || double.IsInfinity(limit.RequestsPerSecond))
        {
            Error(path + ".requestsPerSecond", "must be a positive number");
        }
        if (limit.Burst is < 1)
        {
            Error(path + ".burst", "must be at least 1");
        }
        if (limit.MaxKeys is < 1 or > 100_000_000)
        {
            Error(path + ".maxKeys", "must be between 1 and 100000000");
        }
        string by = limit.By;
        if (by is "client-ip")
        {
            return;
        }
        if (by == "consumer")
        {
            if (auth is null)
            {
                Error(path + ".by", "\"consumer\" needs auth on the same route");
            }
        }
        else if (by.StartsWith("header:", StringComparison.Ordinal))
        {
            if (!IsToken(by["header:".Length..]))
            {
                Error(path + ".by", $"'{by}': header name is not a token");
            }
        }
        else if (by.StartsWith("claim:", StringComparison.Ordinal))
        {
            if (auth?.Jwt is null)
            {
                Error(path + ".by", $"'{by}' needs auth.jwt on the same route");
            }
            else if (by.Length == "claim:".Length)
            {
                Error(path + ".by", "claim name is missing");
            }
        }
        else
        {
            Error(path + ".by", $"unknown key '{by}' (expected \"client-ip\", \"consumer\", \"header:NAME\" or \"claim:NAME\")");
        }
    }

    private void ValidateMatch(RouteMatchConfig match, string path)
    {
        for (int h = 0; h < match.Hosts.Count; h++)
        {
            if (!IsValidHostPattern(match.Hosts[h], out var why))
            {
                Error($"{path}.hosts[{h}]", why);
            }
        }
        if (match.Path is { } routePath)
        {
            if (routePath.Length == 0 || routePath[0] != '/')
            {
                Error(path + ".path", $"must start with '/' (got '{routePath}')");
            }
            else
            {
                foreach (char c in routePath)
                {
                    // RFC 9112 §3.2: the path never carries the query or fragment, nor spaces/controls.
                    if (c is '?' or '#' || c <= ' ' || c >= 0x7F)
                    {
                        Error(path + ".path", $"must be a path without query, fragment, spaces or non-ASCII (got '{routePath}'); percent-encode as clients send it");
                        break;
                    }
                }
            }
        }
        if (match.PathType is { } pathType && Array.IndexOf(s_pathTypes, pathType) < 0)
        {
            Error(path + ".pathType", $"unknown path type '{pathType}' (expected \"prefix\" or \"exact\")");
        }
        for (int m = 0; m < match.Methods.Count; m++)
        {
            string method = match.Methods[m];
            if (!IsToken(method))
            {
                Error($"{path}.methods[{m}]", $"'{method}' is not a method token (RFC 9110 §9.1)");
            }
            else if (Http.HttpMethods.Parse(System.Text.Encoding.ASCII.GetBytes(method.ToUpperInvariant())) != Http.HttpMethod.Custom
                && method != method.ToUpperInvariant())
            {
                Error($"{path}.methods[{m}]", $"methods are case-sensitive (RFC 9110 §9.1): did you mean '{method.ToUpperInvariant()}'?");
            }
        }
        for (int h = 0; h < match.Headers.Count; h++)
        {
            var header = match.Headers[h];
            string hpath = $"{path}.headers[{h}]";
            if (!IsToken(header.Name))
            {
                Error(hpath + ".name", $"'{header.Name}' is not a header field name (RFC 9110 §5.1)");
            }
            if (Array.IndexOf(s_headerModes, header.Mode) < 0)
            {
                Error(hpath + ".mode", $"unknown mode '{header.Mode}' (expected \"exact\", \"prefix\" or \"present\")");
            }
            else if (header.Mode == "present")
            {
                if (header.Value is not null)
                {
                    Error(hpath + ".value", "mode \"present\" does not compare a value: remove it or use \"exact\"/\"prefix\"");
                }
            }
            else if (string.IsNullOrEmpty(header.Value))
            {
                Error(hpath + ".value", $"mode \"{header.Mode}\" needs a value (use \"present\" to only require the header)");
            }
            else if (header.Value.AsSpan().ContainsAnyInRange('\0', '\x1F') || header.Value.Contains('\x7F') || !System.Text.Ascii.IsValid(header.Value))
            {
                Error(hpath + ".value", "must be visible ASCII (RFC 9110 §5.5)");
            }
        }
    }

    private void ValidateLimits()
    {
        var limits = config.Limits;
        if (limits.MaxRequestLineBytes <= 0)
        {
            Error("$.limits.maxRequestLineBytes", "must be greater than 0");
        }
        if (limits.MaxHeaderBytes <= 0)
        {
            Error("$.limits.maxHeaderBytes", "must be greater than 0");
        }
        if (limits.MaxHeaderCount <= 0)
        {
            Error("$.limits.maxHeaderCount", "must be greater than 0");
        }
        if (limits.MaxConnections < 0)
        {
            Error("$.limits.maxConnections", "must be 0 (unlimited) or more");
        }
        Positive("$.limits.headerReadTimeout", limits.HeaderReadTimeout);
        Positive("$.limits.keepAliveTimeout", limits.KeepAliveTimeout);
        var h2 = limits.Http2;
        // RFC 9113 §6.5.2: windows and the table are 31/32-bit values; the stream window at least the
        // frame size so one full DATA frame fits, and the connection window at least the protocol's 65,535.
        Range("$.limits.http2.maxConcurrentStreams", h2.MaxConcurrentStreams, 1, 1_000_000);
        Range("$.limits.http2.initialStreamWindowSize", h2.InitialStreamWindowSize, 16_384, int.MaxValue);
        Range("$.limits.http2.connectionWindowSize", h2.ConnectionWindowSize, 65_535, int.MaxValue);
        Range("$.limits.http2.headerTableSize", h2.HeaderTableSize, 0, 1024 * 1024);
        Range("$.limits.http2.maxHeaderBlockFrames", h2.MaxHeaderBlockFrames, 1, 100_000);
        Range("$.limits.http2.maxRapidResets", h2.MaxRapidResets, 1, int.MaxValue);
        Range("$.limits.http2.maxControlFrames", h2.MaxControlFrames, 1, int.MaxValue);
        Positive("$.limits.http2.rapidResetWindow", h2.RapidResetWindow);
        Positive("$.limits.http2.controlFrameWindow", h2.ControlFrameWindow);
        Positive("$.limits.http2.stallTimeout", h2.StallTimeout);
        Positive("$.timeouts.upstream", config.Timeouts.Upstream);
    }

    /// <summary>"api.example.com" or "*.example.com"; no port (hosts are matched without it).</summary>
    internal static bool IsValidHostPattern(string host, out string why)
    {
        why = "";
        var name = host.StartsWith("*.", StringComparison.Ordinal) ? host.AsSpan(2) : host.AsSpan();
        if (name.Contains(':') && !name.StartsWith("["))
        {
            why = $"'{host}': hosts match without the port";
            return false;
        }
        if (name.StartsWith("[") ? !System.Net.IPAddress.TryParse(name.Trim("[]"), out _) : !Addresses.IsHostName(name.TrimEnd('.')))
        {
            why = $"'{host}' is not a host name or \"*.suffix\" wildcard";
            return false;
        }
        return true;
    }

    /// <summary>RFC 9110 §5.6.2 token = 1*tchar.</summary>
    internal static bool IsToken(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return false;
        }
        foreach (char c in value)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c)))
            {
                return false;
            }
        }
        return true;
    }

    private void Range(string path, long value, long min, long max)
    {
        if (value < min || value > max)
        {
            Error(path, value < min ? $"must be at least {min}" : $"must be at most {max}");
        }
    }

    private void Positive(string path, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            Error(path, "must be greater than 0");
        }
    }

    private void Error(string path, string message) => _errors.Add(new ConfigError(path, message));
}
