using System.Text.Json;

namespace ProxyCore.Proxy.Stages.Auth;

/// <summary>
/// Reads one claim of a validated token's claims set — the JSON <see cref="JwtValidator.Validate(ReadOnlySpan{byte}, Span{byte})"/>
/// left in the caller's buffer — without allocating: for rate limiting by claim, and for passing the
/// consumer's identity upstream.
/// </summary>
public static class JwtClaims
{
    private static readonly JsonReaderOptions s_options = new() { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 32 };

    /// <summary>
    /// Finds the top-level claim <paramref name="name"/> and returns its value as it is written in the JSON:
    /// a string without its quotes (escapes kept as written — so a value never carries a raw CR or LF into
    /// a header), a number, <c>true</c>/<c>false</c>/<c>null</c>, or an object or array as its JSON text.
    /// A repeated claim name yields the last one, as RFC 7519 §4 allows ("use a JSON parser that returns
    /// only the lexically last duplicate member name").
    /// </summary>
    /// <returns>False when the claim is absent, or <paramref name="claimsJson"/> is not a JSON object.</returns>
    public static bool TryGetRawValue(ReadOnlySpan<byte> claimsJson, ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value)
    {
        value = default;
        bool found = false;
        try
        {
            var reader = new Utf8JsonReader(claimsJson, s_options);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool match = reader.ValueTextEquals(name);
                reader.Read();
                if (!match)
                {
                    reader.Skip();
                    continue;
                }
                found = true;
                if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                {
                    int start = (int)reader.TokenStartIndex;
                    reader.Skip();
                    value = claimsJson.Slice(start, (int)reader.BytesConsumed - start);
                }
                else
                {
                    value = reader.ValueSpan; // a string's bytes between its quotes, as written
                }
            }
        }
        catch (JsonException)
        {
            return false;
        }
        return found;
    }
}
