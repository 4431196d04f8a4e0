using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using ProxyCore.Proxy.Stages.Auth;

namespace ProxyCore.Proxy.Tests.Stages.Auth;

/// <summary>
/// Keys generated once per test run and tokens signed with them, the way an issuer would: the tests
/// mint every token they validate, so nothing is a canned string whose provenance is unknown.
/// </summary>
internal sealed class TokenMint
{
    public static readonly TokenMint Shared = new();

    public const string Issuer = "https://issuer.example";
    public const string Audience = "api://orders";

    private TokenMint()
    {
        Secret = RandomNumberGenerator.GetBytes(32);
        Rsa = RSA.Create(2048);
        Rsa2 = RSA.Create(2048);
        Ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    }

    public byte[] Secret { get; }
    public RSA Rsa { get; }
    public RSA Rsa2 { get; }
    public ECDsa Ec { get; }

    /// <summary>One key of each type, kids "hs", "rs", "es".</summary>
    public JsonWebKeySet KeySet() => new([
        JsonWebKey.FromSecret(Secret, "hs"),
        JsonWebKey.FromRsa(Rsa.ExportParameters(false), "rs"),
        JsonWebKey.FromECDsa(Ec.ExportParameters(false), "es"),
    ]);

    public string KidFor(string alg) => alg switch { "HS256" => "hs", "RS256" => "rs", _ => "es" };

    /// <summary>Claims valid at <paramref name="now"/> for <see cref="Issuer"/> and <see cref="Audience"/>, plus <paramref name="extra"/>.</summary>
    public static string Claims(DateTimeOffset now, string extra = "") =>
        $"{{\"iss\":\"{Issuer}\",\"sub\":\"user-42\",\"aud\":\"{Audience}\",\"iat\":{now.ToUnixTimeSeconds()},\"exp\":{now.AddMinutes(5).ToUnixTimeSeconds()}{extra}}}";

    public string Mint(string alg, string claimsJson, string? kid = null) =>
        Sign(alg, $"{{\"alg\":\"{alg}\",\"typ\":\"JWT\",\"kid\":\"{kid ?? KidFor(alg)}\"}}", claimsJson);

    /// <summary>Signs with the key type <paramref name="signWith"/> names, whatever the header says.</summary>
    public string Sign(string signWith, string headerJson, string claimsJson)
    {
        string input = B64(Encoding.UTF8.GetBytes(headerJson)) + "." + B64(Encoding.UTF8.GetBytes(claimsJson));
        byte[] data = Encoding.ASCII.GetBytes(input);
        byte[] signature = signWith switch
        {
            "HS256" => HMACSHA256.HashData(Secret, data),
            "RS256" => Rsa.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
            "RS256-second" => Rsa2.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
            "ES256" => Ec.SignData(data, HashAlgorithmName.SHA256), // IEEE P1363 (r||s), as JWS wants
            "none" => [],
            _ => throw new ArgumentOutOfRangeException(nameof(signWith)),
        };
        return input + "." + B64(signature);
    }

    public static string B64(byte[] bytes) => Base64Url.EncodeToString(bytes);
}
