using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace ProxyCore.Routing.Config;

/// <summary>
/// Pass 2 of <see cref="ProxyConfigLoader"/>: checks a JSON tree against the source-generated
/// metadata of the config classes (so the schema cannot drift from the classes) and writes out
/// only what is well-formed.
/// </summary>
internal sealed class SchemaWalker(JsonSerializerContext context, List<ConfigError> errors)
{
    // Blocks from DESIGN.md that are not implemented yet. Ignoring them would let an operator
    // believe a route is authenticated, rate limited or health checked when it is not, so they are
    // refused by name until the code behind them exists (then they become real properties).
    private static readonly Dictionary<Type, string[]> s_notSupportedYet = new()
    {
        [typeof(ProxyConfig)] = ["llm"],
    };

    public void WriteObject(JsonElement element, JsonTypeInfo typeInfo, string path, Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        HashSet<string>? seen = null;
        foreach (var property in element.EnumerateObject())
        {
            string name = property.Name;
            string propertyPath = Append(path, name);
            if (!(seen ??= new HashSet<string>(StringComparer.Ordinal)).Add(name))
            {
                errors.Add(new ConfigError(propertyPath, "duplicate property (only one value can apply)"));
                continue;
            }
            var info = Find(typeInfo, name);
            if (info is null)
            {
                errors.Add(new ConfigError(propertyPath, UnknownMessage(typeInfo, name)));
                continue;
            }
            var value = property.Value;
            if (value.ValueKind == JsonValueKind.Null)
            {
                if (info.IsSetNullable)
                {
                    writer.WriteNull(name);
                }
                else
                {
                    errors.Add(new ConfigError(propertyPath, "must not be null (leave it out to use the default)"));
                }
                continue;
            }
            if (CheckValue(value, info.PropertyType, info.CustomConverter, propertyPath))
            {
                writer.WritePropertyName(name);
                WriteValue(value, info.PropertyType, info.CustomConverter, propertyPath, writer);
            }
        }
        writer.WriteEndObject();
    }

    // Returns true when the value has the right JSON shape (containers are then checked inside).
    private bool CheckValue(JsonElement value, Type type, JsonConverter? converter, string path)
    {
        if (converter is DurationJsonConverter or NullableDurationJsonConverter)
        {
            bool ok = value.ValueKind switch
            {
                JsonValueKind.Number => value.TryGetDouble(out double seconds) && seconds >= 0 && seconds <= TimeSpan.MaxValue.TotalSeconds,
                JsonValueKind.String => ConfigValues.TryParseDuration(value.GetString(), out _),
                _ => false,
            };
            return ok || Fail(path, $"expected a duration such as \"250ms\", \"5s\", \"1m\", \"1h\" or a number of seconds, got {Describe(value)}");
        }
        if (converter is SizeJsonConverter)
        {
            bool ok = value.ValueKind switch
            {
                JsonValueKind.Number => value.TryGetInt64(out long bytes) && bytes >= 0,
                JsonValueKind.String => ConfigValues.TryParseSize(value.GetString(), out _),
                _ => false,
            };
            return ok || Fail(path, $"expected a size such as \"512KB\", \"64MB\", \"1GB\" or a number of bytes, got {Describe(value)}");
        }
        if (type == typeof(string))
        {
            return value.ValueKind == JsonValueKind.String || Fail(path, $"expected a string, got {Describe(value)}");
        }
        if (type == typeof(bool))
        {
            return value.ValueKind is JsonValueKind.True or JsonValueKind.False || Fail(path, $"expected true or false, got {Describe(value)}");
        }
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(JsonElement))
        {
            return true; // free-form (mixed strings and numbers): the semantic validator checks it
        }
        if (type == typeof(int))
        {
            return (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out _)) || Fail(path, $"expected an integer, got {Describe(value)}");
        }
        if (type == typeof(double))
        {
            return (value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out double d) && double.IsFinite(d)) || Fail(path, $"expected a number, got {Describe(value)}");
        }
        var typeInfo = context.GetTypeInfo(type);
        if (typeInfo?.Kind == JsonTypeInfoKind.Enumerable)
        {
            return value.ValueKind == JsonValueKind.Array || Fail(path, $"expected an array, got {Describe(value)}");
        }
        if (typeInfo?.Kind is JsonTypeInfoKind.Object or JsonTypeInfoKind.Dictionary)
        {
            return value.ValueKind == JsonValueKind.Object || Fail(path, $"expected an object, got {Describe(value)}");
        }
        return Fail(path, "this value cannot be configured");
    }

    private void WriteValue(JsonElement value, Type type, JsonConverter? converter, string path, Utf8JsonWriter writer)
    {
        var typeInfo = converter is null ? context.GetTypeInfo(type) : null;
        if (typeInfo?.Kind == JsonTypeInfoKind.Object)
        {
            WriteObject(value, typeInfo, path, writer);
        }
        else if (typeInfo?.Kind == JsonTypeInfoKind.Dictionary)
        {
            // A map with names the user chooses (header name → value): check each value's shape.
            var elementType = typeInfo.ElementType!;
            writer.WriteStartObject();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in value.EnumerateObject())
            {
                string itemPath = Append(path, property.Name);
                if (!seen.Add(property.Name))
                {
                    Fail(itemPath, "duplicate property (only one value can apply)");
                }
                else if (property.Value.ValueKind == JsonValueKind.Null)
                {
                    Fail(itemPath, "must not be null");
                }
                else if (CheckValue(property.Value, elementType, null, itemPath))
                {
                    writer.WritePropertyName(property.Name);
                    WriteValue(property.Value, elementType, null, itemPath, writer);
                }
            }
            writer.WriteEndObject();
        }
        else if (typeInfo?.Kind == JsonTypeInfoKind.Enumerable)
        {
            var elementType = typeInfo.ElementType!;
            var elementInfo = context.GetTypeInfo(elementType);
            writer.WriteStartArray();
            int index = 0;
            foreach (var item in value.EnumerateArray())
            {
                string itemPath = path + "[" + index++ + "]";
                if (item.ValueKind != JsonValueKind.Null && CheckValue(item, elementType, null, itemPath))
                {
                    WriteValue(item, elementType, null, itemPath, writer);
                }
                else
                {
                    if (item.ValueKind == JsonValueKind.Null)
                    {
                        Fail(itemPath, "must not be null");
                    }
                    // A placeholder keeps later indices (and so their error paths) true.
                    if (elementInfo?.Kind == JsonTypeInfoKind.Object)
                    {
                        writer.WriteStartObject();
                        writer.WriteEndObject();
                    }
                    else
                    {
                        writer.WriteStringValue("");
                    }
                }
            }
            writer.WriteEndArray();
        }
        else
        {
            value.WriteTo(writer);
        }
    }

    private static JsonPropertyInfo? Find(JsonTypeInfo typeInfo, string name)
    {
        foreach (var property in typeInfo.Properties)
        {
            if (property.Name == name && property.Set is not null)
            {
                return property;
            }
        }
        return null;
    }

    private static string UnknownMessage(JsonTypeInfo typeInfo, string name)
    {
        if (s_notSupportedYet.TryGetValue(typeInfo.Type, out var notYet) && Array.IndexOf(notYet, name) >= 0)
        {
            return $"'{name}' is not supported yet: refusing to start rather than run without it";
        }
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (var property in typeInfo.Properties)
        {
            int distance = string.Equals(property.Name, name, StringComparison.OrdinalIgnoreCase) ? 0 : Distance(property.Name, name);
            if (distance < bestDistance)
            {
                bestDistance = distance;
                best = property.Name;
            }
        }
        return best is not null && bestDistance <= 2
            ? $"unknown property '{name}' (did you mean '{best}'?)"
            : $"unknown property '{name}'";
    }

    // Levenshtein distance, for "did you mean" hints on typos.
    private static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = char.ToLowerInvariant(a[i - 1]) == char.ToLowerInvariant(b[j - 1]) ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }

    internal static string Append(string path, string name)
    {
        foreach (char c in name)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c != '_')
            {
                return path + "['" + name.Replace("'", "\\'", StringComparison.Ordinal) + "']";
            }
        }
        return name.Length == 0 ? path + "['']" : path + "." + name;
    }

    private static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => "\"" + value.GetString() + "\"",
        JsonValueKind.Number => value.GetRawText(),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "null",
    };

    private bool Fail(string path, string message)
    {
        errors.Add(new ConfigError(path, message));
        return false;
    }
}
