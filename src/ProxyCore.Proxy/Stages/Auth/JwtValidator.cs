using System.Buffers;
using System.Buffers.Text;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace ProxyCore.Proxy.Stages.Auth;

/// <summary>
/// Validates a JWT in JWS compact serialization (RFC 7519 §7.2, RFC 7515 §5.2) signed with HS256, RS256
/// or ES256, against a fixed key set, options and clock. Thread-safe; build one per route and reuse it.
/// </summary>
/// <remarks>
/// The order of the checks, and why:
/// <list type="number">
/// <item>Size, then shape: exactly two dots, only base64url characters — before decoding a byte.</item>
/// <item>Header: <c>alg</c> must be one we verify (<c>none</c> never is); a <c>crit</c> header is refused
/// since we understand no extensions; the key is chosen by <c>kid</c>, and <c>alg</c> must equal the
/// key's own algorithm.</item>
/// <item>Signature over the bytes as received. Only then are the claims read: nothing an attacker wrote
/// unsigned steers the decision.</item>
/// <item>Claims: <c>exp</c>, <c>nbf</c> (with <see cref="JwtValidationOptions.ClockSkew"/>), <c>iss</c>,
/// <c>aud</c>.</item>
/// </list>
/// Segments are decoded into the stack (tokens up to 2 KiB) or a pooled buffer; the HS256 path allocates
/// nothing. Malformed JSON is detected by <see cref="Utf8JsonReader"/>, which throws: that failure path
/// costs an exception per bad token.
/// </remarks>
public sealed class JwtValidator
{
    private const byte Dot = (byte)'.';
    private const int StackScratchBytes = 1536; // enough for every segment of a token up to 2 KiB, decoded
    private const int MaxTokenBytesLimit = 1024 * 1024;
    private static readonly long UnixEpochTicks = DateTimeOffset.UnixEpoch.UtcTicks;
    private static readonly long MaxNumericDateSeconds = long.MaxValue / TimeSpan.TicksPerSecond;

    // RFC 7515 §2: "Base64url Encoding ... with all trailing '=' characters omitted ... and without the
    // inclusion of any line breaks, whitespace, or other additional characters." Plus the two dots.
    private static readonly SearchValues<byte> s_tokenBytes =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."u8);

    private static readonly JsonReaderOptions s_jsonOptions = new() { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 32 };

    private readonly JsonWebKeySet _keys;
    private readonly TimeProvider _time;
    private readonly byte[]? _issuer;
    private readonly byte[]? _audience;
    private readonly long _skewTicks;
    private readonly bool _requireExpiration;
    private readonly int _maxTokenBytes;
    private readonly VerifiedToken?[] _cache; // direct-mapped by a hash of the token's tail; empty when disabled
    private readonly int _cacheMask;
    private readonly byte[]? _consumerClaim;
    private long _cacheHits;

    public JwtValidator(JwtValidationOptions options, JsonWebKeySet keys, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ClockSkew, TimeSpan.Zero, nameof(options.ClockSkew));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.ClockSkew, TimeSpan.FromDays(1), nameof(options.ClockSkew));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxTokenBytes, 16, nameof(options.MaxTokenBytes));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.MaxTokenBytes, MaxTokenBytesLimit, nameof(options.MaxTokenBytes));
        _keys = keys;
        _time = time;
        _issuer = options.Issuer is null ? null : Encoding.UTF8.GetBytes(options.Issuer);
        _audience = options.Audience is null ? null : Encoding.UTF8.GetBytes(options.Audience);
        _skewTicks = options.ClockSkew.Ticks;
        _requireExpiration = options.RequireExpirationTime;
        _maxTokenBytes = options.MaxTokenBytes;
        ArgumentOutOfRangeException.ThrowIfNegative(options.CacheEntries, nameof(options.CacheEntries));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.CacheEntries, 1 << 20, nameof(options.CacheEntries));
        _cache = options.CacheEntries == 0 ? [] : new VerifiedToken?[(int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)options.CacheEntries)];
        _cacheMask = _cache.Length - 1;
        _consumerClaim = options.ConsumerClaim is null ? null : Encoding.UTF8.GetBytes(options.ConsumerClaim);
    }

    /// <summary>
    /// A token verified before and still current (exp/nbf against the clock now): its cached claims and consumer.
    /// Looked for before any shape check: the cached bytes passed all of them, and a hit compares the whole
    /// token, so only the clock can have changed the answer. False: validate it (<see cref="ValidateCached"/>).
    /// </summary>
    public bool TryGetCached(ReadOnlySpan<byte> token, out ReadOnlySpan<byte> claims, out ReadOnlySpan<byte> consumer, out JsonWebKey? key)
    {
        if (_cache.Length > 0 && token.Length is > 0 and <= JwtValidationOptions.MaxCachedTokenBytes && token.Length <= _maxTokenBytes
            && Volatile.Read(ref _cache[SlotOf(token)]) is { } cached && token.SequenceEqual(cached.Token) && cached.IsCurrent(Now(), _skewTicks))
        {
            Interlocked.Increment(ref _cacheHits);
            claims = cached.Claims;
            consumer = cached.Consumer;
            key = cached.Key;
            return true;
        }
        claims = default;
        consumer = default;
        key = null;
        return false;
    }

    /// <summary>
    /// As <see cref="Validate(ReadOnlySpan{byte}, Span{byte})"/>, for a caller that only reads the claims: a token
    /// answered from the cache hands back the cached claims and consumer (no copy, no JSON read; they are never
    /// written after they are cached), any other valid token its claims in <paramref name="payload"/> and the
    /// consumer read from them. <paramref name="consumer"/> is empty when <see cref="JwtValidationOptions.ConsumerClaim"/>
    /// is unset or the token does not carry it.
    /// </summary>
    public JwtResult ValidateCached(ReadOnlySpan<byte> token, Span<byte> payload, out ReadOnlySpan<byte> claims, out ReadOnlySpan<byte> consumer)
    {
        if (TryGetCached(token, out claims, out consumer, out var key))
        {
            return new(JwtError.None, key, claims.Length);
        }
        var result = Validate(token, payload, keepPayload: true);
        claims = payload.Slice(0, result.PayloadLength);
        consumer = result.IsValid && _consumerClaim is not null && JwtClaims.TryGetRawValue(claims, _consumerClaim, out var value) ? value : default;
        return result;
    }

    /// <summary>Validations answered from the cache of verified tokens.</summary>
    public long CacheHits => Interlocked.Read(ref _cacheHits);

    /// <summary>Bytes a claims buffer needs for a token of <paramref name="tokenLength"/> bytes.</summary>
    public static int MaxPayloadBytes(int tokenLength) => Base64Url.GetMaxDecodedLength(tokenLength);

    /// <summary>Validates <paramref name="token"/> (the bytes after <c>Bearer </c>).</summary>
    public JwtResult Validate(ReadOnlySpan<byte> token) => Validate(token, Span<byte>.Empty, keepPayload: false);

    /// <summary>
    /// Validates <paramref name="token"/> and, when it is valid, leaves its claims-set JSON in
    /// <paramref name="payload"/> (<see cref="JwtResult.PayloadLength"/> bytes) for <see cref="JwtClaims"/>.
    /// </summary>
    /// <param name="payload">At least <see cref="MaxPayloadBytes"/>(<c>token.Length</c>) bytes.</param>
    public JwtResult Validate(ReadOnlySpan<byte> token, Span<byte> payload) => Validate(token, payload, keepPayload: true);

    [SkipLocalsInit] // the stack scratch is written before it is read; zeroing it would cost more than HS256's hash
    private JwtResult Validate(ReadOnlySpan<byte> token, Span<byte> payloadDestination, bool keepPayload)
    {
        // Step 1: size and shape, before decoding anything.
        if (token.IsEmpty)
        {
            return new(JwtError.MissingToken);
        }
        if (token.Length > _maxTokenBytes)
        {
            return new(JwtError.TooLarge);
        }
        // RFC 7519 §7.2 step 1: "Verify that the JWT contains at least one period ('.') character."
        // A JWS has exactly two (RFC 7515 §7.1); five parts would be a JWE, which we do not accept.
        if (token.IndexOfAnyExcept(s_tokenBytes) >= 0 || token.Count(Dot) != 2)
        {
            return new(JwtError.Malformed);
        }
        int headerEnd = token.IndexOf(Dot);
        int payloadEnd = headerEnd + 1 + token.Slice(headerEnd + 1).IndexOf(Dot);
        var headerText = token.Slice(0, headerEnd);
        var payloadText = token.Slice(headerEnd + 1, payloadEnd - headerEnd - 1);
        var signatureText = token.Slice(payloadEnd + 1);
        if (headerText.IsEmpty || payloadText.IsEmpty)
        {
            return new(JwtError.Malformed);
        }
        if (keepPayload && payloadDestination.Length < Base64Url.GetMaxDecodedLength(payloadText.Length))
        {
            ThrowPayloadBufferTooSmall();
        }

        // The same bytes verified before under this key set: only the clock can have changed the answer.
        int slot = -1;
        if (_cache.Length > 0 && token.Length <= JwtValidationOptions.MaxCachedTokenBytes)
        {
            slot = SlotOf(token);
            if (Volatile.Read(ref _cache[slot]) is { } cached && token.SequenceEqual(cached.Token) && cached.IsCurrent(Now(), _skewTicks))
            {
                Interlocked.Increment(ref _cacheHits);
                if (keepPayload)
                {
                    cached.Claims.CopyTo(payloadDestination);
                }
                return new(JwtError.None, cached.Key, keepPayload ? cached.Claims.Length : 0);
            }
        }

        int scratchBytes = Base64Url.GetMaxDecodedLength(headerText.Length) + Base64Url.GetMaxDecodedLength(signatureText.Length)
            + (keepPayload ? 0 : Base64Url.GetMaxDecodedLength(payloadText.Length));
        byte[]? rented = null;
        Span<byte> scratch = scratchBytes <= StackScratchBytes
            ? stackalloc byte[StackScratchBytes]
            : (rented = ArrayPool<byte>.Shared.Rent(scratchBytes));
        try
        {
            // Step 2: the header chooses the key, and the key fixes the algorithm.
            if (!TryDecode(headerText, scratch, out int headerLength))
            {
                return new(JwtError.Malformed);
            }
            var headerError = ReadHeader(scratch.Slice(0, headerLength), out var algorithm, out var key);
            if (headerError != JwtError.None)
            {
                return new(headerError);
            }
            if (key is null)
            {
                return new(JwtError.UnknownKey);
            }
            if (key.Algorithm != algorithm)
            {
                return new(JwtError.AlgorithmMismatch);
            }

            // Step 3: the signature, over "header.payload" exactly as received (RFC 7515 §5.2 step 8).
            var signature = scratch.Slice(headerLength);
            if (signatureText.IsEmpty || !TryDecode(signatureText, signature, out int signatureLength))
            {
                return new(JwtError.Malformed);
            }
            if (!key.Verify(token.Slice(0, payloadEnd), signature.Slice(0, signatureLength)))
            {
                return new(JwtError.BadSignature);
            }

            // Step 4: the claims.
            var payload = keepPayload ? payloadDestination : scratch.Slice(headerLength);
            if (!TryDecode(payloadText, payload, out int payloadLength))
            {
                return new(JwtError.Malformed);
            }
            var claimsError = CheckClaims(payload.Slice(0, payloadLength), out long expires, out long notBefore);
            if (claimsError != JwtError.None)
            {
                if (keepPayload)
                {
                    payload.Slice(0, payloadLength).Clear(); // claims of a refused token must not be read by mistake
                }
                return new(claimsError);
            }
            if (slot >= 0)
            {
                // Allocates once per distinct token; a racing writer of the same slot simply wins or loses.
                var cachedClaims = payload.Slice(0, payloadLength).ToArray();
                // The consumer's place in the cached claims (the raw value is a slice of them), read once per token.
                (int consumerStart, int consumerLength) = _consumerClaim is not null && JwtClaims.TryGetRawValue(cachedClaims, _consumerClaim, out var value)
                    && ((ReadOnlySpan<byte>)cachedClaims).Overlaps(value, out int offset) ? (offset, value.Length) : (0, 0);
                Volatile.Write(ref _cache[slot], new VerifiedToken(token.ToArray(), cachedClaims, consumerStart, consumerLength, expires, notBefore, key));
            }
            return new(JwtError.None, key, keepPayload ? payloadLength : 0);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// Decodes one segment, refusing non-canonical encodings: the unused low bits of the last character
    /// must be zero (RFC 4648 §3.5), so one signature has exactly one spelling and a token string can be
    /// used as an identity (a revocation list, a cache key).
    /// </summary>
    private static bool TryDecode(ReadOnlySpan<byte> text, Span<byte> destination, out int written)
    {
        int remainder = text.Length & 3;
        if (remainder == 1)
        {
            written = 0;
            return false;
        }
        if (remainder != 0)
        {
            int last = SextetOf(text[^1]);
            int unusedBitsMask = remainder == 2 ? 0b1111 : 0b11;
            if ((last & unusedBitsMask) != 0)
            {
                written = 0;
                return false;
            }
        }
        return Base64Url.DecodeFromUtf8(text, destination, out _, out written) == OperationStatus.Done;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int SextetOf(byte c) => c switch
    {
        >= (byte)'A' and <= (byte)'Z' => c - 'A',
        >= (byte)'a' and <= (byte)'z' => c - 'a' + 26,
        >= (byte)'0' and <= (byte)'9' => c - '0' + 52,
        (byte)'-' => 62,
        _ => 63, // '_' — the alphabet was checked already
    };

    /// <summary>Reads <c>alg</c>, <c>kid</c> and <c>crit</c> from the JOSE header (RFC 7515 §4.1).</summary>
    private JwtError ReadHeader(ReadOnlySpan<byte> json, out JwsAlgorithm algorithm, out JsonWebKey? key)
    {
        algorithm = default;
        key = null;
        bool sawAlgorithm = false, sawKeyId = false, algorithmKnown = false;
        try
        {
            var reader = new Utf8JsonReader(json, s_jsonOptions);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return JwtError.Malformed;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("alg"u8))
                {
                    // RFC 7515 §5.2 step 4: duplicate member names are refused, not resolved.
                    if (sawAlgorithm || !reader.Read() || reader.TokenType != JsonTokenType.String)
                    {
                        return JwtError.Malformed;
                    }
                    sawAlgorithm = true;
                    algorithmKnown = TryReadAlgorithm(ref reader, out algorithm);
                }
                else if (reader.ValueTextEquals("kid"u8))
                {
                    if (sawKeyId || !reader.Read() || reader.TokenType != JsonTokenType.String)
                    {
                        return JwtError.Malformed;
                    }
                    sawKeyId = true;
                    key = FindKey(ref reader);
                }
                else if (reader.ValueTextEquals("crit"u8))
                {
                    // RFC 7515 §4.1.11: "If any of the listed extension Header Parameters are not understood
                    // and supported by the recipient, then the JWS is invalid." We support none.
                    return JwtError.Malformed;
                }
                else
                {
                    reader.Read();
                    reader.Skip(); // typ, cty, and jku/jwk/x5u: keys never come from the token itself
                }
            }
            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
            {
                return JwtError.Malformed;
            }
        }
        catch (JsonException)
        {
            return JwtError.Malformed;
        }
        if (!sawAlgorithm)
        {
            return JwtError.Malformed;
        }
        if (!algorithmKnown)
        {
            return JwtError.UnsupportedAlgorithm;
        }
        if (!sawKeyId)
        {
            // No kid: unambiguous only when there is a single key to try.
            var keys = _keys.KeySpan;
            key = keys.Length == 1 ? keys[0] : null;
        }
        return JwtError.None;
    }

    /// <summary>
    /// RFC 7515 §4.1.1: "The "alg" value is a case-sensitive ASCII string". <c>none</c> (RFC 7518 §3.6) is not
    /// in this list, so an unsigned token is refused whatever the key set holds.
    /// </summary>
    private static bool TryReadAlgorithm(ref Utf8JsonReader reader, out JwsAlgorithm algorithm)
    {
        algorithm = reader.ValueTextEquals("HS256"u8) ? JwsAlgorithm.HS256
            : reader.ValueTextEquals("RS256"u8) ? JwsAlgorithm.RS256
            : reader.ValueTextEquals("ES256"u8) ? JwsAlgorithm.ES256
            : default;
        return algorithm != default;
    }

    private JsonWebKey? FindKey(ref Utf8JsonReader reader)
    {
        foreach (var candidate in _keys.KeySpan)
        {
            // ValueTextEquals compares the unescaped text, so "k\u0031" finds "k1".
            if (candidate.KeyIdUtf8 is { } kid && reader.ValueTextEquals(kid))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>
    /// The cache slot of a token: a hash of its last bytes (the signature, which differs between any two tokens of
    /// a key), seeded per process by <see cref="HashCode"/>. A collision only evicts: a hit compares the whole token.
    /// </summary>
    private int SlotOf(ReadOnlySpan<byte> token)
    {
        var hash = new HashCode();
        hash.AddBytes(token.Length > 32 ? token[^32..] : token);
        hash.Add(token.Length);
        return hash.ToHashCode() & _cacheMask;
    }

    private long Now() => _time.GetUtcNow().UtcTicks - UnixEpochTicks;

    /// <summary>
    /// RFC 7519 §4.1: <c>exp</c>, <c>nbf</c>, <c>iss</c>, <c>aud</c>, once each; other claims are skipped.
    /// <paramref name="expires"/> / <paramref name="notBefore"/>: ticks since the epoch, long.MaxValue / long.MinValue when absent.
    /// </summary>
    private JwtError CheckClaims(ReadOnlySpan<byte> json, out long expires, out long notBefore)
    {
        expires = long.MaxValue;
        notBefore = long.MinValue;
        bool sawExpires = false, sawNotBefore = false, sawIssuer = false, sawAudience = false;
        bool issuerMatches = false, audienceMatches = false;
        try
        {
            var reader = new Utf8JsonReader(json, s_jsonOptions);
            // RFC 7519 §7.2 step 10: the claims set must be a JSON object.
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return JwtError.Malformed;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                // RFC 7519 §4: "The Claim Names within a JWT Claims Set MUST be unique; JWT parsers MUST either
                // reject JWTs with duplicate Claim Names or use a JSON parser that returns only the lexically
                // last duplicate member name". We reject, for the claims we act on.
                if (reader.ValueTextEquals("exp"u8))
                {
                    if (sawExpires || !ReadNumericDate(ref reader, out expires))
                    {
                        return JwtError.Malformed;
                    }
                    sawExpires = true;
                }
                else if (reader.ValueTextEquals("nbf"u8))
                {
                    if (sawNotBefore || !ReadNumericDate(ref reader, out notBefore))
                    {
                        return JwtError.Malformed;
                    }
                    sawNotBefore = true;
                }
                else if (reader.ValueTextEquals("iss"u8))
                {
                    if (sawIssuer || !reader.Read() || reader.TokenType != JsonTokenType.String)
                    {
                        return JwtError.Malformed;
                    }
                    sawIssuer = true;
                    // RFC 7519 §4.1.1: a StringOrURI, compared case-sensitively (§2, no normalization).
                    issuerMatches = _issuer is not null && reader.ValueTextEquals(_issuer);
                }
                else if (reader.ValueTextEquals("aud"u8))
                {
                    if (sawAudience || !ReadAudience(ref reader, out audienceMatches))
                    {
                        return JwtError.Malformed;
                    }
                    sawAudience = true;
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
            {
                return JwtError.Malformed;
            }
        }
        catch (JsonException)
        {
            return JwtError.Malformed;
        }

        long now = Now();
        if (!sawExpires)
        {
            expires = long.MaxValue;
        }
        if (!sawNotBefore)
        {
            notBefore = long.MinValue;
        }
        if (sawExpires)
        {
            // RFC 7519 §4.1.4: "the current date/time MUST be before the expiration date/time listed in the
            // "exp" claim. Implementers MAY provide for some small leeway".
            if (now >= SaturatingAdd(expires, _skewTicks))
            {
                return JwtError.Expired;
            }
        }
        else if (_requireExpiration)
        {
            return JwtError.MissingExpiration;
        }
        // RFC 7519 §4.1.5: "the current date/time MUST be after or equal to the not-before date/time".
        if (sawNotBefore && SaturatingAdd(now, _skewTicks) < notBefore)
        {
            return JwtError.NotYetValid;
        }
        if (_issuer is not null && !issuerMatches)
        {
            return JwtError.WrongIssuer;
        }
        if (_audience is not null && !audienceMatches)
        {
            return JwtError.WrongAudience;
        }
        return JwtError.None;
    }

    /// <summary>
    /// RFC 7519 §4.1.3: "In the general case, the "aud" value is an array of case-sensitive strings ...
    /// In the special case when the JWT has one audience, the "aud" value MAY be a single case-sensitive string".
    /// </summary>
    private bool ReadAudience(ref Utf8JsonReader reader, out bool matches)
    {
        matches = false;
        if (!reader.Read())
        {
            return false;
        }
        if (reader.TokenType == JsonTokenType.String)
        {
            matches = _audience is not null && reader.ValueTextEquals(_audience);
            return true;
        }
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            return false;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.String)
        {
            matches |= _audience is not null && reader.ValueTextEquals(_audience);
        }
        return reader.TokenType == JsonTokenType.EndArray;
    }

    /// <summary>
    /// RFC 7519 §2 NumericDate: seconds since the epoch, "non-integer values can be represented".
    /// Kept as .NET ticks since the epoch, saturating far outside any real date.
    /// </summary>
    private static bool ReadNumericDate(ref Utf8JsonReader reader, out long ticks)
    {
        ticks = 0;
        if (!reader.Read() || reader.TokenType != JsonTokenType.Number)
        {
            return false;
        }
        if (reader.TryGetInt64(out long seconds))
        {
            ticks = seconds > MaxNumericDateSeconds ? long.MaxValue
                : seconds < -MaxNumericDateSeconds ? long.MinValue
                : seconds * TimeSpan.TicksPerSecond;
            return true;
        }
        if (reader.TryGetDouble(out double fractional))
        {
            double scaled = Math.Floor(fractional * TimeSpan.TicksPerSecond);
            ticks = scaled >= long.MaxValue ? long.MaxValue : scaled <= long.MinValue ? long.MinValue : (long)scaled;
            return true;
        }
        return false;
    }

    private static long SaturatingAdd(long a, long b)
    {
        long sum = unchecked(a + b);
        // Overflow only when both have the same sign and the sum's sign differs.
        return ((a ^ sum) & (b ^ sum)) < 0 ? (a < 0 ? long.MinValue : long.MaxValue) : sum;
    }

    /// <summary>A token that passed every check, with its claims and the window in which it stays valid.</summary>
    private sealed class VerifiedToken(byte[] token, byte[] claims, int consumerStart, int consumerLength, long expires, long notBefore, JsonWebKey key)
    {
        public byte[] Token { get; } = token;

        public byte[] Claims { get; } = claims;

        /// <summary>The consumer claim's raw value, a slice of <see cref="Claims"/> (empty without one).</summary>
        public ReadOnlySpan<byte> Consumer => Claims.AsSpan(consumerStart, consumerLength);

        public JsonWebKey Key { get; } = key;

        /// <summary>The same tests as <see cref="CheckClaims"/> makes of exp and nbf (a missing claim never fails).</summary>
        public bool IsCurrent(long now, long skew) => now < SaturatingAdd(expires, skew) && SaturatingAdd(now, skew) >= notBefore;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowPayloadBufferTooSmall() =>
        throw new ArgumentException("The payload buffer must hold JwtValidator.MaxPayloadBytes(token.Length) bytes.", "payload");
}
