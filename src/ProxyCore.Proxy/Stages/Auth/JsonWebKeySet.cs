using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.Json;

namespace ProxyCore.Proxy.Stages.Auth;

/// <summary>
/// The keys a <see cref="JwtValidator"/> may verify with, found by <c>kid</c>. Immutable: key rotation
/// builds a new set (and a new validator) and swaps it in.
/// </summary>
public sealed class JsonWebKeySet
{
    private readonly JsonWebKey[] _keys;

    /// <exception cref="ArgumentException">Two keys share a <c>kid</c>: a token naming it would be ambiguous.</exception>
    public JsonWebKeySet(IEnumerable<JsonWebKey> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        _keys = keys.ToArray();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var key in _keys)
        {
            if (key.KeyId is not null && !seen.Add(key.KeyId))
            {
                throw new ArgumentException($"Two keys have kid '{key.KeyId}'.", nameof(keys));
            }
        }
    }

    public IReadOnlyList<JsonWebKey> Keys => _keys;

    internal ReadOnlySpan<JsonWebKey> KeySpan => _keys;

    /// <summary>
    /// Reads a JWK Set document (RFC 7517 §5): <c>{"keys":[…]}</c>. Keys we cannot use are skipped, as
    /// RFC 7517 §5 asks ("Implementations SHOULD ignore JWKs within a JWK Set that use "kty" (key type)
    /// values that are not understood by them"): other key types, <c>"use"</c> other than <c>"sig"</c>,
    /// an <c>"alg"</c> other than HS256/RS256/ES256, curves other than P-256. A key we would use but
    /// cannot read is an error, not a silent skip.
    /// </summary>
    /// <exception cref="FormatException">Not a JWK Set, or a usable key with missing or invalid members.</exception>
    public static JsonWebKeySet Parse(ReadOnlySpan<byte> utf8Json)
    {
        var keys = new List<JsonWebKey>();
        var reader = new Utf8JsonReader(utf8Json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        try
        {
            Expect(ref reader, JsonTokenType.StartObject);
            bool sawKeys = false;
            while (Read(ref reader) == JsonTokenType.PropertyName)
            {
                if (!reader.ValueTextEquals("keys"u8))
                {
                    reader.Read();
                    reader.Skip();
                    continue;
                }
                sawKeys = true;
                Expect(ref reader, JsonTokenType.StartArray);
                while (Read(ref reader) == JsonTokenType.StartObject)
                {
                    var key = ReadKey(ref reader, keys.Count);
                    if (key is not null)
                    {
                        keys.Add(key);
                    }
                }
                if (reader.TokenType != JsonTokenType.EndArray)
                {
                    throw new FormatException("Each member of \"keys\" must be a JSON object.");
                }
            }
            if (!sawKeys)
            {
                throw new FormatException("A JWK Set needs a \"keys\" array (RFC 7517 §5).");
            }
        }
        catch (JsonException e)
        {
            throw new FormatException($"The JWK Set is not valid JSON: {e.Message}", e);
        }
        try
        {
            return new JsonWebKeySet(keys);
        }
        catch (ArgumentException e)
        {
            throw new FormatException(e.Message, e);
        }
    }

    private static JsonWebKey? ReadKey(ref Utf8JsonReader reader, int index)
    {
        string? kty = null, kid = null, use = null, alg = null, n = null, e = null, crv = null, x = null, y = null, k = null;
        while (Read(ref reader) == JsonTokenType.PropertyName)
        {
            string name = reader.GetString()!;
            Read(ref reader);
            if (reader.TokenType != JsonTokenType.String)
            {
                reader.Skip(); // key_ops, x5c and friends: not needed to verify
                continue;
            }
            string value = reader.GetString()!;
            switch (name)
            {
                case "kty": kty = value; break;
                case "kid": kid = value; break;
                case "use": use = value; break;
                case "alg": alg = value; break;
                case "n": n = value; break;
                case "e": e = value; break;
                case "crv": crv = value; break;
                case "x": x = value; break;
                case "y": y = value; break;
                case "k": k = value; break;
            }
        }

        // RFC 7517 §4.2: "use" is "sig" or "enc"; a key for encryption must not verify signatures.
        if (use is not null && use != "sig")
        {
            return null;
        }
        try
        {
            switch (kty)
            {
                case "RSA" when alg is null or "RS256":
                    // RFC 7518 §6.3.1: n and e are base64urlUInt — big-endian, no leading zeros.
                    return JsonWebKey.FromRsa(new RSAParameters
                    {
                        Modulus = TrimLeadingZeros(Decode(n, "n", index)),
                        Exponent = TrimLeadingZeros(Decode(e, "e", index)),
                    }, kid);
                case "EC" when crv == "P-256" && alg is null or "ES256":
                    // RFC 7518 §6.2.1.2: x and y are the full 32-byte coordinates for P-256.
                    byte[] qx = Decode(x, "x", index), qy = Decode(y, "y", index);
                    if (qx.Length != 32 || qy.Length != 32)
                    {
                        throw new FormatException($"keys[{index}]: P-256 coordinates must be 32 bytes each.");
                    }
                    return JsonWebKey.FromECDsa(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, Q = new ECPoint { X = qx, Y = qy } }, kid);
                case "oct" when alg is null or "HS256":
                    return JsonWebKey.FromSecret(Decode(k, "k", index), kid);
                default:
                    return null;
            }
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            throw new FormatException($"keys[{index}] ({kid ?? "no kid"}): {ex.Message}", ex);
        }
    }

    private static byte[] Decode(string? value, string member, int index)
    {
        if (value is null)
        {
            throw new FormatException($"keys[{index}] lacks \"{member}\".");
        }
        try
        {
            return Base64Url.DecodeFromChars(value);
        }
        catch (FormatException)
        {
            throw new FormatException($"keys[{index}].{member} is not base64url.");
        }
    }

    private static byte[] TrimLeadingZeros(byte[] value)
    {
        int start = 0;
        while (start < value.Length - 1 && value[start] == 0)
        {
            start++;
        }
        return start == 0 ? value : value[start..];
    }

    private static JsonTokenType Read(ref Utf8JsonReader reader)
    {
        if (!reader.Read())
        {
            throw new FormatException("The JWK Set ends early.");
        }
        return reader.TokenType;
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType type)
    {
        if (Read(ref reader) != type)
        {
            throw new FormatException($"Expected {type} at byte {reader.TokenStartIndex} of the JWK Set.");
        }
    }
}
