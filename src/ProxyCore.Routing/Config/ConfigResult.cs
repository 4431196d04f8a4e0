namespace ProxyCore.Routing.Config;

/// <summary>One problem in a config, at a JSON path such as "$.routes[0].match.path".</summary>
public sealed record ConfigError(string Path, string Message)
{
    public override string ToString() => $"{Path}: {Message}";
}

/// <summary>The outcome of loading a config: the config when it is valid, otherwise every error found.</summary>
public sealed class ConfigResult
{
    public ConfigResult(ProxyConfig? config, IReadOnlyList<ConfigError> errors)
    {
        Errors = errors;
        // An invalid config is never handed out, so nobody can serve half of one by mistake.
        Config = errors.Count == 0 ? config : null;
    }

    public ProxyConfig? Config { get; }

    public IReadOnlyList<ConfigError> Errors { get; }

    public bool IsValid => Errors.Count == 0 && Config is not null;
}

/// <summary>
/// Secrets are never inline in config: a string "env:NAME" stands for the environment variable
/// NAME. The config keeps the reference; consumers resolve it when they use it, so the parsed
/// config (and /config) never holds a secret's value.
/// </summary>
public static class ConfigSecrets
{
    public const string EnvPrefix = "env:";

    public static bool IsReference(string? value) => value is not null && value.StartsWith(EnvPrefix, StringComparison.Ordinal);

    /// <summary>"env:NAME" → the variable's value (null when unset); any other string → itself.</summary>
    public static string? Resolve(string? value)
        => IsReference(value) ? Environment.GetEnvironmentVariable(value![EnvPrefix.Length..]) : value;
}
