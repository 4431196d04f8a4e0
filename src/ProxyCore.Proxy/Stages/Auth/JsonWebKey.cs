using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace ProxyCore.Proxy.Stages.Auth;

/// <summary>JWS algorithms we verify, in RFC 7518 §3.1 spelling.</summary>
public enum JwsAlgorithm : byte
{
    /// <summary>HMAC with SHA-256 (RFC 7518 §3.2): a shared secret of at least 32 bytes.</summary>
    HS256 = 1,
    /// <summary>RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3): an RSA public key of at least 2048 bits.</summary>
    RS256,
    /// <summary>ECDSA on P-256 with SHA-256 (RFC 7518 §3.4).</summary>
    ES256,
}

/// <summary>
/// A verification key, bound to exactly one algorithm by its type: a shared secret can only check HS256,
/// an RSA key only RS256, a P-256 key only ES256. That is what makes algorithm confusion impossible by
/// construction — the classic attack signs HS256 with an RSA public key as the HMAC secret, but an RSA
/// key here has no bytes an HMAC could use, and a token's <c>alg</c> must equal its key's
/// <see cref="Algorithm"/> before any verification runs.
/// </summary>
/// <remarks>Only public (or shared-secret) material is kept; private parts of a PEM or JWK are dropped.</remarks>
public abstract class JsonWebKey
{
    private protected JsonWebKey(string? keyId, JwsAlgorithm algorithm)
    {
        KeyId = keyId;
        KeyIdUtf8 = keyId is null ? null : Encoding.UTF8.GetBytes(keyId);
        Algorithm = algorithm;
    }

    /// <summary>The <c>kid</c> tokens name this key by (RFC 7515 §4.1.4), or null.</summary>
    public string? KeyId { get; }

    /// <summary>The one algorithm this key verifies.</summary>
    public JwsAlgorithm Algorithm { get; }

    internal byte[]? KeyIdUtf8 { get; }

    /// <summary>Verifies <paramref name="signature"/> over <paramref name="signingInput"/> (the ASCII <c>header.payload</c>).</summary>
    internal abstract bool Verify(ReadOnlySpan<byte> signingInput, ReadOnlySpan<byte> signature);

    /// <summary>An HS256 key. RFC 7518 §3.2: "A key of the same size as the hash output (for instance, 256 bits for "HS256") or larger MUST be used".</summary>
    public static JsonWebKey FromSecret(ReadOnlySpan<byte> secret, string? keyId = null) => new HmacSha256Key(secret, keyId);

    /// <summary>An RS256 key from its public parameters (modulus and exponent).</summary>
    public static JsonWebKey FromRsa(RSAParameters publicKey, string? keyId = null) => new RsaSha256Key(publicKey, keyId);

    /// <summary>An ES256 key from its public parameters (P-256 curve, point Q).</summary>
    public static JsonWebKey FromECDsa(ECParameters publicKey, string? keyId = null) => new ECDsaSha256Key(publicKey, keyId);

    /// <summary>
    /// An RS256 or ES256 key from PEM text: <c>PUBLIC KEY</c> (SubjectPublicKeyInfo), <c>RSA PUBLIC KEY</c>,
    /// or <c>CERTIFICATE</c> (its public key). The key type decides the algorithm.
    /// </summary>
    /// <exception cref="FormatException">No PEM block, or a key that is neither RSA nor P-256.</exception>
    public static JsonWebKey FromPem(ReadOnlySpan<char> pem, string? keyId = null)
    {
        if (!PemEncoding.TryFind(pem, out var fields))
        {
            throw new FormatException("No PEM block found.");
        }
        var label = pem[fields.Label];
        byte[] der = Convert.FromBase64String(pem[fields.Base64Data].ToString());
        try
        {
            if (label.SequenceEqual("CERTIFICATE"))
            {
                using var certificate = X509CertificateLoader.LoadCertificate(der);
                using var certificateRsa = certificate.GetRSAPublicKey();
                if (certificateRsa is not null)
                {
                    return FromRsa(certificateRsa.ExportParameters(false), keyId);
                }
                using var certificateEc = certificate.GetECDsaPublicKey();
                if (certificateEc is not null)
                {
                    return FromECDsa(certificateEc.ExportParameters(false), keyId);
                }
                throw new FormatException("The certificate's key is neither RSA nor ECDSA.");
            }
            if (label.SequenceEqual("RSA PUBLIC KEY"))
            {
                using var pkcs1 = RSA.Create();
                pkcs1.ImportRSAPublicKey(der, out _);
                return FromRsa(pkcs1.ExportParameters(false), keyId);
            }
            if (label.SequenceEqual("PUBLIC KEY"))
            {
                using var rsa = RSA.Create();
                try
                {
                    rsa.ImportSubjectPublicKeyInfo(der, out _);
                    return FromRsa(rsa.ExportParameters(false), keyId);
                }
                catch (CryptographicException)
                {
                    // Not an RSA key: the other type we know.
                }
                using var ec = ECDsa.Create();
                ec.ImportSubjectPublicKeyInfo(der, out _);
                return FromECDsa(ec.ExportParameters(false), keyId);
            }
        }
        catch (CryptographicException e)
        {
            throw new FormatException($"The PEM '{label}' block is not a key we can read: {e.Message}", e);
        }
        throw new FormatException($"PEM label '{label}' is not a public key or certificate.");
    }
}

internal sealed class HmacSha256Key : JsonWebKey
{
    private const int MacLength = 32; // SHA-256 output
    private readonly byte[] _secret;

    public HmacSha256Key(ReadOnlySpan<byte> secret, string? keyId) : base(keyId, JwsAlgorithm.HS256)
    {
        if (secret.Length < MacLength)
        {
            throw new ArgumentException($"An HS256 secret must be at least {MacLength} bytes (RFC 7518 §3.2); this one is {secret.Length}.", nameof(secret));
        }
        _secret = secret.ToArray();
    }

    internal override bool Verify(ReadOnlySpan<byte> signingInput, ReadOnlySpan<byte> signature)
    {
        if (signature.Length != MacLength)
        {
            return false;
        }
        Span<byte> mac = stackalloc byte[MacLength];
        HMACSHA256.HashData(_secret, signingInput, mac);
        // A comparison that stops at the first differing byte tells an attacker how much of a forged MAC is right.
        return CryptographicOperations.FixedTimeEquals(mac, signature);
    }
}

internal sealed class RsaSha256Key : JsonWebKey
{
    private const int MinimumKeySizeBits = 2048;
    private readonly RSA _rsa;
    private readonly int _signatureLength;

    public RsaSha256Key(RSAParameters publicKey, string? keyId) : base(keyId, JwsAlgorithm.RS256)
    {
        // Only the public half: never hold a private key we were handed by mistake.
        var rsa = RSA.Create(new RSAParameters { Modulus = publicKey.Modulus, Exponent = publicKey.Exponent });
        // RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used with these algorithms."
        if (rsa.KeySize < MinimumKeySizeBits)
        {
            int size = rsa.KeySize;
            rsa.Dispose();
            throw new ArgumentException($"An RS256 key must have at least {MinimumKeySizeBits} bits (RFC 7518 §3.3); this one has {size}.", nameof(publicKey));
        }
        _rsa = rsa;
        _signatureLength = (rsa.KeySize + 7) / 8;
    }

    internal override bool Verify(ReadOnlySpan<byte> signingInput, ReadOnlySpan<byte> signature) =>
        // RFC 7518 §3.3 / RFC 8017 §8.2.2: the signature is exactly as long as the modulus.
        signature.Length == _signatureLength
        && _rsa.VerifyData(signingInput, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
}

internal sealed class ECDsaSha256Key : JsonWebKey
{
    // RFC 7518 §3.4: the JWS signature is R and S, each a 32-byte big-endian integer for P-256,
    // concatenated — IEEE P1363 format, not DER.
    private const int SignatureLength = 64;
    private const string P256Oid = "1.2.840.10045.3.1.7";
    private readonly ECDsa _ecdsa;

    public ECDsaSha256Key(ECParameters publicKey, string? keyId) : base(keyId, JwsAlgorithm.ES256)
    {
        if (publicKey.Curve.Oid?.Value != P256Oid && publicKey.Curve.Oid?.FriendlyName is not ("nistP256" or "ECDSA_P256" or "secp256r1"))
        {
            throw new ArgumentException("An ES256 key must be on P-256 (RFC 7518 §3.4).", nameof(publicKey));
        }
        _ecdsa = ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, Q = publicKey.Q });
    }

    // Measured on .NET 10 / OpenSSL 3: the BCL's ECDSA verify allocates about 1.2 KB per call inside its
    // OpenSSL binding, whatever the signature format or span overload (RSA's allocates nothing). Our own
    // part of the ES256 path allocates nothing; JwtValidatorTests holds both facts.
    internal override bool Verify(ReadOnlySpan<byte> signingInput, ReadOnlySpan<byte> signature) =>
        signature.Length == SignatureLength
        // Without a format argument the span overload takes IEEE P1363 (r || s), JWS's format, and skips
        // a conversion step that the overload with DSASignatureFormat pays for in another 144 bytes.
        && _ecdsa.VerifyData(signingInput, signature, HashAlgorithmName.SHA256);
}
