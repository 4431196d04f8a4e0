using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;
using ProxyCore.Tests.Shared;

namespace ProxyCore.Routing.Tests.Config;

/// <summary>listeners[].tls and clusters[].tls: files are read at validation, and every mistake names its JSON path.</summary>
public sealed class TlsConfigTests : IDisposable
{
    private readonly TestCertificates _pki = new();
    private readonly (string Certificate, string Key) _a;
    private readonly (string Certificate, string Key) _b;

    public TlsConfigTests()
    {
        _a = _pki.Issue("a", "a.example");
        _b = _pki.Issue("b", "*.b.example");
        _pki.Write("garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n");
        _pki.Write("empty.pem", "just text, no PEM here\n");
        _pki.Write("encrypted.key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n");
        _pki.Write("badkey.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    }

    public void Dispose() => _pki.Dispose();

    private string P(string name) => Path.Combine(_pki.Directory, name).Replace("\\", "\\\\");

    private string Listener(string tls, string protocols = "") => $$"""
        { "listeners": [ { "address": "127.0.0.1:8443"{{protocols}}, "tls": {{tls}} } ],
          "routes": [ { "id": "r", "match": { "path": "/" }, "cluster": "c" } ],
          "clusters": [ { "id": "c", "destinations": [ { "address": "http://127.0.0.1:9000" } ] } ] }
        """;

    private static string Cluster(string destinations, string tls) => $$"""
        { "listeners": [ { "address": "127.0.0.1:8080" } ],
          "routes": [ { "id": "r", "match": { "path": "/" }, "cluster": "c" } ],
          "clusters": [ { "id": "c", "destinations": [ {{destinations}} ]{{tls}} } ] }
        """;

    [Fact]
    public void Parse_SimpleAndSniForms_AreValidAndBuildTheCertificateSet()
    {
        var json = Listener($$"""
            { "certificate": "{{P("a.pem")}}", "key": "{{P("a.key")}}", "handshakeTimeout": "3s", "minVersion": "1.3",
              "certificates": [ { "certificate": "{{P("b.pem")}}", "key": "{{P("b.key")}}", "hosts": ["*.b.example", "b.example"] } ] }
            """);
        var result = ProxyConfigLoader.Parse(json);

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var tls = result.Config!.Listeners[0].Tls!;
        Assert.Equal(TimeSpan.FromSeconds(3), tls.HandshakeTimeout);
        Assert.Equal("1.3", tls.MinVersion);
        var set = TlsModel.BuildServerCertificates(tls, ["http1", "http2"]);
        Assert.Equal("CN=a.example", set.Select(null).ServerCertificateContext!.TargetCertificate.Subject);
        Assert.Equal("CN=*.b.example", set.Select("x.b.example").ServerCertificateContext!.TargetCertificate.Subject);
        Assert.Equal("CN=*.b.example", set.Select("deep.x.B.EXAMPLE").ServerCertificateContext!.TargetCertificate.Subject);
        Assert.Equal("CN=*.b.example", set.Select("b.example").ServerCertificateContext!.TargetCertificate.Subject);
        Assert.Equal("CN=a.example", set.Select("unknown.example").ServerCertificateContext!.TargetCertificate.Subject);
        Assert.Equal(["h2", "http/1.1"], set.ApplicationProtocols.Select(p => p.ToString()));
    }

    [Fact]
    public void Parse_CertificatesOnly_FirstEntryIsTheDefault()
    {
        var json = Listener($$"""{ "certificates": [ { "certificate": "{{P("b.pem")}}", "key": "{{P("b.key")}}", "hosts": ["*.b.example"] } ] }""", """, "protocols": ["http1"]""");
        var result = ProxyConfigLoader.Parse(json);

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var set = TlsModel.BuildServerCertificates(result.Config!.Listeners[0].Tls!, result.Config.Listeners[0].Protocols);
        Assert.Equal("CN=*.b.example", set.Select("other.example").ServerCertificateContext!.TargetCertificate.Subject);
        Assert.Equal(["http/1.1"], set.ApplicationProtocols.Select(p => p.ToString()));
    }

    [Theory]
    [InlineData("""{ "certificate": "{dir}/missing.pem", "key": "{dir}/a.key" }""", "$.listeners[0].tls.certificate", "not found")]
    [InlineData("""{ "certificate": "{dir}/a.pem", "key": "{dir}/missing.key" }""", "$.listeners[0].tls.key", "not found")]
    [InlineData("""{ "certificate": "{dir}/garbage.pem", "key": "{dir}/a.key" }""", "$.listeners[0].tls.certificate", "not a readable PEM certificate")]
    [InlineData("""{ "certificate": "{dir}/empty.pem", "key": "{dir}/a.key" }""", "$.listeners[0].tls.certificate", "no -----BEGIN CERTIFICATE-----")]
    [InlineData("""{ "certificate": "{dir}/a.pem", "key": "{dir}/empty.pem" }""", "$.listeners[0].tls.key", "no -----BEGIN PRIVATE KEY-----")]
    [InlineData("""{ "certificate": "{dir}/a.pem", "key": "{dir}/encrypted.key" }""", "$.listeners[0].tls.key", "encrypted")]
    [InlineData("""{ "certificate": "{dir}/a.pem", "key": "{dir}/badkey.key" }""", "$.listeners[0].tls.key", "not a readable private key")]
    [InlineData("""{ "certificate": "{dir}/a.pem", "key": "{dir}/b.key" }""", "$.listeners[0].tls.key", "does not belong to the certificate")]
    [InlineData("""{ "key": "{dir}/a.key" }""", "$.listeners[0].tls.certificate", "certificate file is required")]
    [InlineData("""{ }""", "$.listeners[0].tls.certificate", "certificate file is required")]
    [InlineData("""{ "certificate": "{dir}/a.pem", "key": "{dir}/a.key", "handshakeTimeout": "0s" }""", "$.listeners[0].tls.handshakeTimeout", "greater than 0")]
    [InlineData("""{ "certificate": "{dir}/a.pem", "key": "{dir}/a.key", "minVersion": "1.1" }""", "$.listeners[0].tls.minVersion", "unknown TLS version '1.1'")]
    [InlineData("""{ "certificate": "{dir}/a.pem", "key": "{dir}/a.key", "certs": [] }""", "$.listeners[0].tls.certs", "unknown property 'certs'")]
    [InlineData("""{ "certificates": [ { "certificate": "{dir}/b.pem", "key": "{dir}/b.key" } ] }""", "$.listeners[0].tls.certificates[0].hosts", "SNI host names")]
    [InlineData("""{ "certificates": [ { "certificate": "{dir}/b.pem", "key": "{dir}/b.key", "hosts": ["b.*.example"] } ] }""", "$.listeners[0].tls.certificates[0].hosts[0]", "wildcard")]
    [InlineData("""{ "certificates": [ { "certificate": "{dir}/b.pem", "key": "{dir}/b.key", "hosts": ["b.example:443"] } ] }""", "$.listeners[0].tls.certificates[0].hosts[0]", "without the port")]
    [InlineData("""{ "certificates": [ { "certificate": "{dir}/b.pem", "key": "{dir}/b.key", "hosts": ["[::1]"] } ] }""", "$.listeners[0].tls.certificates[0].hosts[0]", "no SNI for IP")]
    [InlineData("""{ "certificates": [ { "certificate": "{dir}/a.pem", "key": "{dir}/a.key", "hosts": ["a.example"] }, { "certificate": "{dir}/b.pem", "key": "{dir}/b.key", "hosts": ["A.example"] } ] }""", "$.listeners[0].tls.certificates[1].hosts[0]", "already served")]
    [InlineData("""{ "certificates": [ { "certificate": "{dir}/b.pem", "key": "{dir}/missing.key", "hosts": ["b.example"] } ] }""", "$.listeners[0].tls.certificates[0].key", "not found")]
    public void Parse_BadListenerTls_ReportsErrorAtExactPath(string tls, string expectedPath, string expectedMessagePart)
    {
        var result = ProxyConfigLoader.Parse(Listener(tls.Replace("{dir}", P("").TrimEnd('/'), StringComparison.Ordinal)));

        Assert.False(result.IsValid);
        var error = Assert.Single(result.Errors, e => e.Path == expectedPath);
        Assert.Contains(expectedMessagePart, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_UnknownProtocolOnTlsListener_ReportsIt()
    {
        var result = ProxyConfigLoader.Parse(Listener($$"""{ "certificate": "{{P("a.pem")}}", "key": "{{P("a.key")}}" }""", """, "protocols": ["h2"]"""));

        var error = Assert.Single(result.Errors);
        Assert.Equal("$.listeners[0].protocols[0]", error.Path);
        Assert.Contains("unknown protocol 'h2'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_HttpsCluster_BuildsUpstreamTlsOptions()
    {
        var result = ProxyConfigLoader.Parse(Cluster("""{ "address": "https://upstream.example:8443" }""",
            $$""", "tls": { "serverName": "api.internal", "caFile": "{{P("ca.pem")}}" }"""));

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var tls = TlsModel.BuildUpstream(result.Config!.Clusters[0])!;
        Assert.Equal("api.internal", tls.ServerName);
        var snapshot = ProxySnapshot.Build(result.Config);
        Assert.Equal(tls, snapshot.Clusters["c"].PoolOptions.Tls);
    }

    [Fact]
    public void Parse_HttpsClusterWithoutTlsBlock_VerifiesWithSystemTrustAndDestinationHost()
    {
        var result = ProxyConfigLoader.Parse(Cluster("""{ "address": "https://upstream.example" }""", ""));

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var tls = ProxySnapshot.Build(result.Config!).Clusters["c"].PoolOptions.Tls!;
        Assert.Null(tls.ServerName);
        Assert.False(tls.InsecureSkipVerify);
        Assert.Equal("upstream.example", tls.TargetHost(new System.Net.DnsEndPoint("upstream.example", 443)));
    }

    [Theory]
    [InlineData("""{ "address": "http://h:1" }""", """, "tls": { "serverName": "h" }""", "$.clusters[0].tls", "only applies to https://")]
    [InlineData("""{ "address": "https://h:1" }, { "address": "http://h:2" }""", "", "$.clusters[0].destinations[1].address", "mixes http:// and https://")]
    [InlineData("""{ "address": "https://h:1" }""", """, "tls": { "serverName": "not a host" }""", "$.clusters[0].tls.serverName", "not a host name")]
    [InlineData("""{ "address": "https://h:1" }""", """, "tls": { "caFile": "{dir}/missing.pem" }""", "$.clusters[0].tls.caFile", "not found")]
    [InlineData("""{ "address": "https://h:1" }""", """, "tls": { "caFile": "{dir}/empty.pem" }""", "$.clusters[0].tls.caFile", "no -----BEGIN CERTIFICATE-----")]
    [InlineData("""{ "address": "https://h:1" }""", """, "tls": { "caFile": "{dir}/garbage.pem" }""", "$.clusters[0].tls.caFile", "not a readable PEM")]
    [InlineData("""{ "address": "https://h:1" }""", """, "tls": { "caFile": "{dir}/ca.pem", "insecureSkipVerify": true }""", "$.clusters[0].tls.insecureSkipVerify", "not both")]
    [InlineData("""{ "address": "https://h:1" }""", """, "tls": { "insecureSkipVerify": "yes" }""", "$.clusters[0].tls.insecureSkipVerify", "expected true or false")]
    [InlineData("""{ "address": "https://h:1" }""", """, "tls": { "sni": "h" }""", "$.clusters[0].tls.sni", "unknown property")]
    public void Parse_BadClusterTls_ReportsErrorAtExactPath(string destinations, string tls, string expectedPath, string expectedMessagePart)
    {
        var result = ProxyConfigLoader.Parse(Cluster(destinations, tls.Replace("{dir}", P("").TrimEnd('/'), StringComparison.Ordinal)));

        Assert.False(result.IsValid);
        var error = Assert.Single(result.Errors, e => e.Path == expectedPath);
        Assert.Contains(expectedMessagePart, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UpstreamTlsOptions_SameSettings_AreEqualSoReloadsKeepPooledConnections()
    {
        var result = ProxyConfigLoader.Parse(Cluster("""{ "address": "https://h:1" }""", $$""", "tls": { "caFile": "{{P("ca.pem")}}" }"""));
        var first = TlsModel.BuildUpstream(result.Config!.Clusters[0]);
        var second = TlsModel.BuildUpstream(result.Config.Clusters[0]);
        var other = new ProxyCore.Transport.Tls.UpstreamTlsOptions(serverName: "x");

        Assert.Equal(first, second);
        Assert.Equal(first!.GetHashCode(), second!.GetHashCode());
        Assert.NotEqual(first, other);
    }
}
