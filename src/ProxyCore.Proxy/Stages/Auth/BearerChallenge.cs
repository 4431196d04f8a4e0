using System.Buffers;
using System.Diagnostics.CodeAnalysis;

namespace ProxyCore.Proxy.Stages.Auth;

/// <summary>
/// The Bearer scheme's two edges (RFC 6750): the token out of an <c>Authorization</c> field value, and the
/// <c>WWW-Authenticate</c> challenge a 401 carries, formatted as bytes without allocating.
/// </summary>
public static class BearerChallenge
{
    public static ReadOnlySpan<byte> HeaderName => "WWW-Authenticate"u8;

    private static ReadOnlySpan<byte> Scheme => "Bearer"u8;

    // RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    private static readonly SearchValues<byte> s_b64token =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/="u8);

    /// <summary>
    /// RFC 6750 §3: quoted values must not hold characters outside %x20-21 / %x23-5B / %x5D-7E — printable
    /// ASCII without <c>"</c> and <c>\</c>, so they need no escaping.
    /// </summary>
    private static readonly SearchValues<byte> s_quotable = SearchValues.Create(BuildQuotable());

    /// <summary>
    /// Takes the token from an <c>Authorization</c> value. RFC 6750 §2.1: <c>credentials = "Bearer" 1*SP b64token</c>;
    /// RFC 9110 §11.1: the scheme "is case-insensitive".
    /// </summary>
    public static bool TryGetToken(ReadOnlySpan<byte> authorization, out ReadOnlySpan<byte> token)
    {
        if (TryGetCandidate(authorization, out token) && IsToken68(token))
        {
            return true;
        }
        token = default;
        return false;
    }

    /// <summary>
    /// The credentials after <c>Bearer</c> and its spaces, not yet checked for token68 syntax: a caller that can
    /// match them byte for byte against a token it accepted before (the verified-token cache) skips that scan;
    /// any other must check <see cref="IsToken68"/>.
    /// </summary>
    public static bool TryGetCandidate(ReadOnlySpan<byte> authorization, out ReadOnlySpan<byte> token)
    {
        token = default;
        if (authorization.Length <= Scheme.Length || !System.Text.Ascii.EqualsIgnoreCase(authorization.Slice(0, Scheme.Length), Scheme)
            || authorization[Scheme.Length] != (byte)' ')
        {
            return false;
        }
        token = authorization.Slice(Scheme.Length).TrimStart((byte)' ').TrimEnd((byte)' ');
        return true;
    }

    /// <summary>RFC 6750 §2.1 b64token (token68): its characters, '=' only as trailing padding, something before it.</summary>
    public static bool IsToken68(ReadOnlySpan<byte> rest)
    {
        int padding = rest.Length - rest.TrimEnd((byte)'=').Length;
        // '=' only as trailing padding, and something before it.
        return !(rest.Length == padding || rest.Slice(0, rest.Length - padding).Contains((byte)'=') || rest.IndexOfAnyExcept(s_b64token) >= 0);
    }

    /// <summary>The <c>error_description</c> for <paramref name="error"/> (RFC 6750 §3); empty for <see cref="JwtError.None"/> and <see cref="JwtError.MissingToken"/>.</summary>
    public static ReadOnlySpan<byte> Description(JwtError error) => error switch
    {
        JwtError.TooLarge => "The access token is too large"u8,
        JwtError.Malformed => "The access token is malformed"u8,
        JwtError.UnsupportedAlgorithm => "The access token's signing algorithm is not accepted"u8,
        JwtError.UnknownKey => "The access token's signing key is unknown"u8,
        JwtError.AlgorithmMismatch => "The access token's algorithm does not match its key"u8,
        JwtError.BadSignature => "The access token's signature is invalid"u8,
        JwtError.Expired => "The access token expired"u8,
        JwtError.NotYetValid => "The access token is not valid yet"u8,
        JwtError.MissingExpiration => "The access token has no expiration time"u8,
        JwtError.WrongIssuer => "The access token's issuer is not accepted"u8,
        JwtError.WrongAudience => "The access token is not meant for this audience"u8,
        _ => default,
    };

    /// <summary>Bytes <see cref="Format"/> needs at most for a realm of <paramref name="realmLength"/> bytes.</summary>
    public static int MaxLength(int realmLength) => 128 + realmLength;

    /// <summary>
    /// Writes the <c>WWW-Authenticate</c> value for a 401: <c>Bearer realm="…", error="invalid_token",
    /// error_description="…"</c>. RFC 6750 §3.1: a request that "lacks any authentication information"
    /// (<see cref="JwtError.MissingToken"/>) gets no error code, only the scheme and realm; every token
    /// that fails is <c>invalid_token</c> ("expired, revoked, malformed, or invalid for other reasons").
    /// </summary>
    /// <param name="realm">Empty for none; otherwise printable ASCII without <c>"</c> or <c>\</c>.</param>
    /// <returns>Bytes written.</returns>
    public static int Format(JwtError error, ReadOnlySpan<byte> realm, Span<byte> destination)
    {
        if (realm.IndexOfAnyExcept(s_quotable) >= 0)
        {
            ThrowBadRealm();
        }
        if (destination.Length < MaxLength(realm.Length))
        {
            ThrowTooSmall();
        }
        int written = Append(destination, 0, Scheme);
        bool first = true;
        if (!realm.IsEmpty)
        {
            written = AppendParameter(destination, written, "realm"u8, realm, ref first);
        }
        var description = Description(error);
        if (!description.IsEmpty)
        {
            written = AppendParameter(destination, written, "error"u8, "invalid_token"u8, ref first);
            written = AppendParameter(destination, written, "error_description"u8, description, ref first);
        }
        return written;
    }

    private static int AppendParameter(Span<byte> destination, int at, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, ref bool first)
    {
        at = Append(destination, at, first ? " "u8 : ", "u8);
        first = false;
        at = Append(destination, at, name);
        at = Append(destination, at, "=\""u8);
        at = Append(destination, at, value);
        return Append(destination, at, "\""u8);
    }

    private static int Append(Span<byte> destination, int at, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(destination.Slice(at));
        return at + bytes.Length;
    }

    private static byte[] BuildQuotable()
    {
        var bytes = new List<byte>();
        for (int c = 0x20; c <= 0x7E; c++)
        {
            if (c is not ('"' or '\\'))
            {
                bytes.Add((byte)c);
            }
        }
        return bytes.ToArray();
    }

    [DoesNotReturn]
    private static void ThrowBadRealm() =>
        throw new ArgumentException("A realm must be printable ASCII without '\"' or '\\' (RFC 6750 §3).", "realm");

    [DoesNotReturn]
    private static void ThrowTooSmall() =>
        throw new ArgumentException("The destination must hold BearerChallenge.MaxLength(realm.Length) bytes.", "destination");
}
