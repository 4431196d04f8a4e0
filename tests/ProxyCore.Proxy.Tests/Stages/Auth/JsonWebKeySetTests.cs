using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using ProxyCore.Proxy.Stages.Auth;

namespace ProxyCore.Proxy.Tests.Stages.Auth;

public sealed class JsonWebKeySetTests
{
    private static readonly TokenMint Mint = TokenMint.Shared;
    private readonly ManualTimeProvider _time = new(start: DateTimeOffset.UtcNow);

    private static string RsaJwk(RSA rsa, string kid, string extra = "")
    {
        var p = rsa.ExportParameters(false);
        return $"{{\"kty\":\"RSA\",\"kid\":\"{kid}\",\"n\":\"{TokenMint.B64(p.Modulus!)}\",\"e\":\"{TokenMint.B64(p.Exponent!)}\"{extra}}}";
    }

    private static string EcJwk(ECDsa ec, string kid, string extra = "")
    {
        var p = ec.ExportParameters(false);
        return $"{{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"{kid}\",\"x\":\"{TokenMint.B64(p.Q.X!)}\",\"y\":\"{TokenMint.B64(p.Q.Y!)}\"{extra}}}";
    }

    private static string OctJwk(byte[] secret, string kid) => $"{{\"kty\":\"oct\",\"kid\":\"{kid}\",\"k\":\"{TokenMint.B64(secret)}\"}}";

    private static JsonWebKeySet Parse(string json) => JsonWebKeySet.Parse(Encoding.UTF8.GetBytes(json));

    private JwtError Check(JsonWebKeySet keys, string token) =>
        new JwtValidator(new JwtValidationOptions { Issuer = TokenMint.Issuer, Audience = TokenMint.Audience }, keys, _time)
            .Validate(Encoding.ASCII.GetBytes(token)).Error;

    [Fact]
    public void Parse_OneKeyOfEachType_ValidatesTokensOfEachAlgorithm()
    {
        var keys = Parse($"{{\"keys\":[{RsaJwk(Mint.Rsa, "rs", ",\"use\":\"sig\",\"alg\":\"RS256\"")},{EcJwk(Mint.Ec, "es")},{OctJwk(Mint.Secret, "hs")}]}}");

        Assert.Equal(["rs", "es", "hs"], keys.Keys.Select(k => k.KeyId));
        Assert.Equal([JwsAlgorithm.RS256, JwsAlgorithm.ES256, JwsAlgorithm.HS256], keys.Keys.Select(k => k.Algorithm));
        string claims = TokenMint.Claims(_time.GetUtcNow());
        foreach (var alg in new[] { "HS256", "RS256", "ES256" })
        {
            Assert.Equal(JwtError.None, Check(keys, Mint.Mint(alg, claims)));
        }
    }

    [Theory]
    [InlineData("{\"kty\":\"RSA\",\"kid\":\"enc\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"}")]   // for encryption
    [InlineData("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AQAB\"}")]                           // a type we do not know
    [InlineData("{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AQAB\",\"y\":\"AQAB\"}")]                // a curve we do not verify
    [InlineData("{\"kty\":\"RSA\",\"alg\":\"RS512\",\"n\":\"AQAB\",\"e\":\"AQAB\"}")]              // an algorithm we do not verify
    [InlineData("{\"kty\":\"RSA\",\"alg\":\"RSA-OAEP\",\"n\":\"AQAB\",\"e\":\"AQAB\"}")]
    [InlineData("{\"kid\":\"no-type\"}")]
    public void Parse_KeyWeCannotUse_IsSkipped(string unusable)
    {
        var keys = Parse($"{{\"keys\":[{unusable},{EcJwk(Mint.Ec, "es")}],\"other\":{{\"ignored\":true}}}}");
        var key = Assert.Single(keys.Keys);
        Assert.Equal("es", key.KeyId);
    }

    [Theory]
    [InlineData("")]
    [InlineData("[]")]
    [InlineData("{}")]
    [InlineData("{\"keys\":{}}")]
    [InlineData("{\"keys\":[1]}")]
    [InlineData("{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\"}]}")]                        // no modulus
    [InlineData("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"!!\",\"e\":\"AQAB\"}]}")]            // not base64url
    [InlineData("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQAB\",\"y\":\"AQAB\"}]}")]  // short coordinates
    [InlineData("{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2hvcnQ\"}]}")]                        // a 5-byte HS256 secret
    [InlineData("{\"keys\":[{\"kty\":\"oct\"}]}")]
    [InlineData("{\"keys\":[")]
    public void Parse_NotAKeySetOrBrokenUsableKey_FormatException(string json)
    {
        Assert.Throws<FormatException>(() => Parse(json));
    }

    [Fact]
    public void Parse_DuplicateKid_FormatException()
    {
        Assert.Throws<FormatException>(() => Parse($"{{\"keys\":[{EcJwk(Mint.Ec, "same")},{RsaJwk(Mint.Rsa, "same")}]}}"));
    }

    [Fact]
    public void Parse_RsaKeyUnder2048Bits_FormatException()
    {
        using var small = RSA.Create(1024);
        Assert.Throws<FormatException>(() => Parse($"{{\"keys\":[{RsaJwk(small, "small")}]}}"));
    }

    [Fact]
    public void Parse_ModulusWithLeadingZero_StillVerifies()
    {
        var p = Mint.Rsa.ExportParameters(false);
        string jwk = $"{{\"kty\":\"RSA\",\"kid\":\"rs\",\"n\":\"{TokenMint.B64([0, .. p.Modulus!])}\",\"e\":\"{TokenMint.B64(p.Exponent!)}\"}}";
        Assert.Equal(JwtError.None, Check(Parse($"{{\"keys\":[{jwk}]}}"), Mint.Mint("RS256", TokenMint.Claims(_time.GetUtcNow()))));
    }

    [Fact]
    public void FromSecret_ShorterThanHashOutput_Throws()
    {
        Assert.Throws<ArgumentException>(() => JsonWebKey.FromSecret(new byte[31]));
    }

    [Fact]
    public void FromECDsa_OtherCurve_Throws()
    {
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        Assert.Throws<ArgumentException>(() => JsonWebKey.FromECDsa(p384.ExportParameters(false)));
    }

    public static TheoryData<string, string> PemCases() => new()
    {
        { "RS256", Mint.Rsa.ExportSubjectPublicKeyInfoPem() },
        { "RS256", Mint.Rsa.ExportRSAPublicKeyPem() },
        { "ES256", Mint.Ec.ExportSubjectPublicKeyInfoPem() },
        { "RS256", SelfSigned(rsa: true) },
        { "ES256", SelfSigned(rsa: false) },
    };

    [Theory]
    [MemberData(nameof(PemCases))]
    public void FromPem_PublicKeyOrCertificate_VerifiesItsAlgorithm(string alg, string pem)
    {
        var key = JsonWebKey.FromPem(pem, Mint.KidFor(alg));
        Assert.Equal(alg, key.Algorithm.ToString());
        Assert.Equal(JwtError.None, Check(new JsonWebKeySet([key]), Mint.Mint(alg, TokenMint.Claims(_time.GetUtcNow()))));
    }

    [Theory]
    [InlineData("no pem here")]
    [InlineData("-----BEGIN PRIVATE KEY-----\nAQAB\n-----END PRIVATE KEY-----")]
    [InlineData("-----BEGIN PUBLIC KEY-----\nAQAB\n-----END PUBLIC KEY-----")]
    public void FromPem_NotAPublicKey_FormatException(string pem)
    {
        Assert.Throws<FormatException>(() => JsonWebKey.FromPem(pem));
    }

    private static string SelfSigned(bool rsa)
    {
        X509Certificate2 certificate;
        if (rsa)
        {
            var request = new CertificateRequest("CN=issuer", Mint.Rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        }
        else
        {
            var request = new CertificateRequest("CN=issuer", Mint.Ec, HashAlgorithmName.SHA256);
            certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        }
        using (certificate)
        {
            return certificate.ExportCertificatePem();
        }
    }
}
