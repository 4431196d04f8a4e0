using System.Text.Json;
using System.Text.Json.Serialization;

namespace ProxyCore.Routing.Config;

// Converters used by the source-generated context. The loader validates every value with exact
// JSON paths before deserializing, so the throws here only guard direct misuse of the context.

internal sealed class DurationJsonConverter : JsonConverter<TimeSpan>
{
    public override TimeSpan Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Number && reader.TryGetDouble(out double seconds) && seconds >= 0)
        {
            return TimeSpan.FromSeconds(seconds);
        }
        if (reader.TokenType == JsonTokenType.String && ConfigValues.TryParseDuration(reader.GetString(), out var value))
        {
            return value;
        }
        throw new JsonException("expected a duration such as \"250ms\", \"5s\", \"1m\" or a number of seconds");
    }

    public override void Write(Utf8JsonWriter writer, TimeSpan value, JsonSerializerOptions options)
        => writer.WriteStringValue(ConfigValues.FormatDuration(value));
}

internal sealed class NullableDurationJsonConverter : JsonConverter<TimeSpan?>
{
    private static readonly DurationJsonConverter s_inner = new();

    public override bool HandleNull => true;

    public override TimeSpan? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        => reader.TokenType == JsonTokenType.Null ? null : s_inner.Read(ref reader, typeof(TimeSpan), options);

    public override void Write(Utf8JsonWriter writer, TimeSpan? value, JsonSerializerOptions options)
    {
        if (value is { } v)
        {
            s_inner.Write(writer, v, options);
        }
        else
        {
            writer.WriteNullValue();
        }
    }
}

internal sealed class SizeJsonConverter : JsonConverter<long>
{
    public override long Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out long bytes) && bytes >= 0)
        {
            return bytes;
        }
        if (reader.TokenType == JsonTokenType.String && ConfigValues.TryParseSize(reader.GetString(), out bytes))
        {
            return bytes;
        }
        throw new JsonException("expected a size such as \"512KB\", \"64MB\", \"1GB\" or a number of bytes");
    }

    public override void Write(Utf8JsonWriter writer, long value, JsonSerializerOptions options)
        => writer.WriteStringValue(ConfigValues.FormatSize(value));
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ProxyConfig))]
internal sealed partial class ProxyConfigJsonContext : JsonSerializerContext
{
}
