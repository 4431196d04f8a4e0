using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;

namespace ProxyCore.Routing.Config;

/// <summary>
/// Loads config JSON in three passes, collecting every error with its JSON path:
/// 1. parse to a <see cref="JsonDocument"/> (comments and trailing commas allowed); a syntax error
///    stops here since nothing after it can be trusted;
/// 2. walk it against the source-generated metadata of the config classes: unknown properties
///    (and policy blocks we do not implement yet), duplicates, wrong types, bad durations/sizes.
///    The walk re-writes only the well-formed parts (a bad value is dropped, a bad array element
///    becomes an empty placeholder so indices stay true), which the source-generated serializer
///    then binds without reflection;
/// 3. <see cref="Validate"/> the bound config for meaning (ids, references, addresses, ranges),
///    skipping paths already reported so one mistake yields one error.
/// </summary>
public static class ProxyConfigLoader
{
    private static readonly JsonDocumentOptions s_documentOptions = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    public static ConfigResult Parse(string json)
    {
        var errors = new List<ConfigError>();
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, s_documentOptions);
        }
        catch (JsonException ex)
        {
            errors.Add(new ConfigError(PathAtSyntaxError(json),
                $"invalid JSON at line {(ex.LineNumber ?? 0) + 1}, column {(ex.BytePositionInLine ?? 0) + 1}: {FirstSentence(ex.Message)}"));
            return new ConfigResult(null, errors);
        }

        ProxyConfig? config;
        using (document)
        {
            var context = ProxyConfigJsonContext.Default;
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                errors.Add(new ConfigError("$", "the config must be a JSON object"));
                return new ConfigResult(null, errors);
            }
            var buffer = new ArrayBufferWriter<byte>(json.Length + 64);
            using (var writer = new Utf8JsonWriter(buffer))
            {
                new SchemaWalker(context, errors).WriteObject(root, context.ProxyConfig, "$", writer);
            }
            try
            {
                config = JsonSerializer.Deserialize(buffer.WrittenSpan, context.ProxyConfig);
            }
            catch (JsonException ex)
            {
                // The walker should have caught everything the binder rejects; report rather than throw.
                errors.Add(new ConfigError(PathAtSyntaxError(json), FirstSentence(ex.Message)));
                return new ConfigResult(null, errors);
            }
        }
        if (config is null)
        {
            errors.Add(new ConfigError("$", "the config must be a JSON object"));
            return new ConfigResult(null, errors);
        }

        var structural = errors.Count;
        foreach (var error in Validate(config))
        {
            if (!IsCoveredBy(error.Path, errors, structural))
            {
                errors.Add(error);
            }
        }
        return new ConfigResult(config, errors);
    }

    public static ConfigResult LoadFile(string path)
    {
        string json;
        try
        {
            json = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return new ConfigResult(null, [new ConfigError("$", $"cannot read config file '{path}': {ex.Message}")]);
        }
        return Parse(json);
    }

    /// <summary>Semantic checks of a bound config (also for configs built in code, e.g. <see cref="ProxyConfig.ForUpstream"/>).</summary>
    public static IReadOnlyList<ConfigError> Validate(ProxyConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new ConfigValidator(config).Run();
    }

    /// <summary>
    /// The effective config as JSON for /config: defaults filled in, "env:NAME" references shown as
    /// written (their values are never read here), and inline values of secret-named properties masked.
    /// </summary>
    public static string ToRedactedJson(ProxyConfig config)
    {
        var node = JsonSerializer.SerializeToNode(config, ProxyConfigJsonContext.Default.ProxyConfig);
        Redact(node);
        return node?.ToJsonString(new JsonSerializerOptions(ProxyConfigJsonContext.Default.Options)) ?? "null";
    }

    private static readonly HashSet<string> s_secretNames = new(StringComparer.OrdinalIgnoreCase)
    {
        "key", "apiKey", "password", "secret", "token", "clientSecret",
    };

    private static void Redact(JsonNode? node)
    {
        if (node is JsonObject obj)
        {
            List<string>? mask = null;
            foreach (var (name, value) in obj)
            {
                if (value is JsonValue v && v.TryGetValue(out string? s) && s_secretNames.Contains(name)
                    && !ConfigSecrets.IsReference(s) && !(obj.Parent is JsonObject && IsTlsFilePath(obj, name)))
                {
                    (mask ??= []).Add(name);
                }
                else
                {
                    Redact(value);
                }
            }
            if (mask is not null)
            {
                foreach (var name in mask)
                {
                    obj[name] = "[redacted]";
                }
            }
        }
        else if (node is JsonArray array)
        {
            foreach (var item in array)
            {
                Redact(item);
            }
        }
    }

    // tls.key is a file path, not a secret value: showing it helps operators and leaks nothing.
    private static bool IsTlsFilePath(JsonObject obj, string name)
        => name == "key" && obj.ContainsKey("certificate");

    private static bool IsCoveredBy(string path, List<ConfigError> errors, int count)
    {
        for (int i = 0; i < count; i++)
        {
            var p = errors[i].Path;
            if (path.StartsWith(p, StringComparison.Ordinal)
                && (path.Length == p.Length || path[p.Length] is '.' or '['))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// JsonDocument reports line and column but no path; re-read with a reader that tracks the
    /// path so the error names the property being written when the syntax broke.
    /// </summary>
    private static string PathAtSyntaxError(string json)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(json);
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        // Each frame: the path of a container, and for arrays the index of the next element.
        var stack = new Stack<(string Path, bool IsArray, int Index)>();
        string? property = null;
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName:
                        property = SchemaWalker.Append(stack.Peek().Path, reader.GetString()!);
                        break;
                    case JsonTokenType.StartObject or JsonTokenType.StartArray:
                        stack.Push((NextValuePath(stack, ref property), reader.TokenType == JsonTokenType.StartArray, 0));
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        stack.Pop();
                        property = null;
                        break;
                    default:
                        NextValuePath(stack, ref property);
                        break;
                }
            }
        }
        catch (JsonException)
        {
            if (property is not null)
            {
                return property;
            }
            if (stack.Count > 0)
            {
                var top = stack.Peek();
                return top.IsArray ? $"{top.Path}[{top.Index}]" : top.Path;
            }
        }
        return "$";
    }

    private static string NextValuePath(Stack<(string Path, bool IsArray, int Index)> stack, ref string? property)
    {
        if (stack.Count == 0)
        {
            return "$";
        }
        if (property is { } p)
        {
            property = null;
            return p;
        }
        var top = stack.Pop();
        stack.Push((top.Path, top.IsArray, top.Index + 1));
        return $"{top.Path}[{top.Index}]";
    }

    private static string FirstSentence(string message)
    {
        int cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }
}
