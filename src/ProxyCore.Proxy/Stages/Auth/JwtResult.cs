namespace ProxyCore.Proxy.Stages.Auth;

/// <summary>Why a token was refused — each maps to a 401 with its own <c>error_description</c> (see <see cref="BearerChallenge"/>).</summary>
public enum JwtError : byte
{
    /// <summary>The token is valid.</summary>
    None,
    /// <summary>No token was presented. RFC 6750 §3.1: the challenge then carries no error code.</summary>
    MissingToken,
    /// <summary>Longer than <see cref="JwtValidationOptions.MaxTokenBytes"/>; nothing was decoded.</summary>
    TooLarge,
    /// <summary>Not three base64url segments of a JSON header and claims set, or a header or claim of the wrong type.</summary>
    Malformed,
    /// <summary><c>alg</c> is not HS256, RS256 or ES256 — including <c>none</c>, which is never accepted.</summary>
    UnsupportedAlgorithm,
    /// <summary>No key with the token's <c>kid</c> (or no <c>kid</c> and more than one key to choose from).</summary>
    UnknownKey,
    /// <summary><c>alg</c> names a different algorithm than the one the chosen key is for.</summary>
    AlgorithmMismatch,
    /// <summary>The signature does not verify with the chosen key.</summary>
    BadSignature,
    /// <summary>The <c>exp</c> claim is past, by more than the clock skew.</summary>
    Expired,
    /// <summary>The <c>nbf</c> claim is in the future, by more than the clock skew.</summary>
    NotYetValid,
    /// <summary>No <c>exp</c> claim while <see cref="JwtValidationOptions.RequireExpirationTime"/> is set.</summary>
    MissingExpiration,
    /// <summary><c>iss</c> is missing or not the configured issuer.</summary>
    WrongIssuer,
    /// <summary><c>aud</c> is missing or does not contain the configured audience.</summary>
    WrongAudience,
}

/// <summary>The outcome of <see cref="JwtValidator.Validate(ReadOnlySpan{byte})"/>.</summary>
public readonly struct JwtResult
{
    internal JwtResult(JwtError error, JsonWebKey? key = null, int payloadLength = 0)
    {
        Error = error;
        Key = key;
        PayloadLength = payloadLength;
    }

    public JwtError Error { get; }

    public bool IsValid => Error == JwtError.None;

    /// <summary>The key that verified the signature (valid tokens only): its <see cref="JsonWebKey.KeyId"/> can name the consumer.</summary>
    public JsonWebKey? Key { get; }

    /// <summary>
    /// Bytes of claims-set JSON written to the caller's buffer by
    /// <see cref="JwtValidator.Validate(ReadOnlySpan{byte}, Span{byte})"/>; 0 unless the token is valid,
    /// so claims of a token that failed are never read by mistake.
    /// </summary>
    public int PayloadLength { get; }
}
