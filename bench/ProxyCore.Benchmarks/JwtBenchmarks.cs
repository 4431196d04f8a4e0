using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using ProxyCore.Proxy.Stages.Auth;
using JsonWebKey = ProxyCore.Proxy.Stages.Auth.JsonWebKey;
using JsonWebKeySet = ProxyCore.Proxy.Stages.Auth.JsonWebKeySet;

namespace ProxyCore.Benchmarks;

/// <summary>
/// Validating one access token (signature, exp, iss, aud) per algorithm: our <see cref="JwtValidator"/>
/// against Microsoft.IdentityModel's <c>JsonWebTokenHandler.ValidateTokenAsync</c>, which ASP.NET Core's
/// JwtBearer runs. Same keys, same tokens (a typical ~10-claim access token), same checks. IdentityModel
/// also builds a claims identity for the caller; we hand back the claims JSON instead, which is what a
/// proxy needs — that difference is part of what is measured.
/// </summary>
[Config(typeof(BenchmarkConfig))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class JwtBenchmarks
{
    private const string Issuer = "https://login.example.com/tenant-1/v2.0";
    private const string Audience = "api://orders";

    private JwtValidator _ours = null!;
    private JwtValidator _oursCached = null!;
    private JsonWebTokenHandler _handler = null!;
    private TokenValidationParameters _parameters = null!;
    private readonly Dictionary<string, (string Text, byte[] Bytes)> _tokens = [];

    [GlobalSetup]
    public void Setup()
    {
        byte[] secret = RandomNumberGenerator.GetBytes(32);
        var rsa = RSA.Create(2048);
        var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);

        var keys = new JsonWebKeySet([JsonWebKey.FromSecret(secret, "hs"), JsonWebKey.FromRsa(rsa.ExportParameters(false), "rs"), JsonWebKey.FromECDsa(ec.ExportParameters(false), "es")]);
        // Cache off: every call verifies, like IdentityModel does. The _Cached rows are what a route sees when
        // a client sends the same token again (the verified-token cache, on by default).
        _ours = new JwtValidator(new JwtValidationOptions { Issuer = Issuer, Audience = Audience, CacheEntries = 0 }, keys, TimeProvider.System);
        _oursCached = new JwtValidator(new JwtValidationOptions { Issuer = Issuer, Audience = Audience }, keys, TimeProvider.System);

        _handler = new JsonWebTokenHandler();
        _parameters = new TokenValidationParameters
        {
            ValidIssuer = Issuer,
            ValidAudience = Audience,
            ClockSkew = TimeSpan.FromSeconds(60),
            IssuerSigningKeys =
            [
                new SymmetricSecurityKey(secret) { KeyId = "hs" },
                new RsaSecurityKey(rsa.ExportParameters(false)) { KeyId = "rs" },
                new ECDsaSecurityKey(ECDsa.Create(ec.ExportParameters(false))) { KeyId = "es" },
            ],
        };

        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string claims = $"{{\"iss\":\"{Issuer}\",\"aud\":\"{Audience}\",\"sub\":\"8f2c1e0a-5b7d-4c1f-9a3e-2d6b0c4e7f91\",\"iat\":{now},\"nbf\":{now}," +
            $"\"exp\":{now + 3600},\"scope\":\"orders:read orders:write\",\"azp\":\"mobile-app\",\"tid\":\"tenant-1\",\"ver\":\"2.0\"}}";
        foreach (var (alg, kid) in new[] { ("HS256", "hs"), ("RS256", "rs"), ("ES256", "es") })
        {
            string input = B64($"{{\"alg\":\"{alg}\",\"kid\":\"{kid}\",\"typ\":\"JWT\"}}") + "." + B64(claims);
            byte[] data = Encoding.ASCII.GetBytes(input);
            byte[] signature = alg switch
            {
                "HS256" => HMACSHA256.HashData(secret, data),
                "RS256" => rsa.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
                _ => ec.SignData(data, HashAlgorithmName.SHA256),
            };
            string token = input + "." + Base64UrlEncoder.Encode(signature);
            _tokens[alg] = (token, Encoding.ASCII.GetBytes(token));
            if (!_ours.Validate(_tokens[alg].Bytes).IsValid || !_oursCached.Validate(_tokens[alg].Bytes).IsValid || !_handler.ValidateTokenAsync(token, _parameters).GetAwaiter().GetResult().IsValid)
            {
                throw new InvalidOperationException($"The {alg} token must be valid for both validators.");
            }
        }
    }

    private static string B64(string json) => Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(json));

    [Benchmark(Baseline = true), BenchmarkCategory("HS256")]
    public async Task<bool> IdentityModel_HS256() => (await _handler.ValidateTokenAsync(_tokens["HS256"].Text, _parameters)).IsValid;

    [Benchmark, BenchmarkCategory("HS256")]
    public bool ProxyCore_HS256() => _ours.Validate(_tokens["HS256"].Bytes).IsValid;

    [Benchmark, BenchmarkCategory("HS256")]
    public bool ProxyCore_HS256_Cached() => _oursCached.Validate(_tokens["HS256"].Bytes).IsValid;

    [Benchmark(Baseline = true), BenchmarkCategory("RS256")]
    public async Task<bool> IdentityModel_RS256() => (await _handler.ValidateTokenAsync(_tokens["RS256"].Text, _parameters)).IsValid;

    [Benchmark, BenchmarkCategory("RS256")]
    public bool ProxyCore_RS256() => _ours.Validate(_tokens["RS256"].Bytes).IsValid;

    [Benchmark, BenchmarkCategory("RS256")]
    public bool ProxyCore_RS256_Cached() => _oursCached.Validate(_tokens["RS256"].Bytes).IsValid;

    [Benchmark(Baseline = true), BenchmarkCategory("ES256")]
    public async Task<bool> IdentityModel_ES256() => (await _handler.ValidateTokenAsync(_tokens["ES256"].Text, _parameters)).IsValid;

    [Benchmark, BenchmarkCategory("ES256")]
    public bool ProxyCore_ES256() => _ours.Validate(_tokens["ES256"].Bytes).IsValid;

    [Benchmark, BenchmarkCategory("ES256")]
    public bool ProxyCore_ES256_Cached() => _oursCached.Validate(_tokens["ES256"].Bytes).IsValid;
}
