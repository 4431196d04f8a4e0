using System.Net.Security;
using System.Security.Authentication;

namespace ProxyCore.Transport.Tls;

/// <summary>
/// The certificates of one TLS listener and how SNI picks among them: an exact host name first, then
/// the longest matching "*.suffix" wildcard (as routes match hosts: "*.example.com" covers
/// "a.example.com" and "a.b.example.com"), else the default. Immutable; a reload builds a new one
/// and swaps it into <see cref="TlsServerOptions.Certificates"/>.
/// </summary>
public sealed class TlsServerCertificates
{
    private readonly Dictionary<string, SslServerAuthenticationOptions> _exact = new(StringComparer.OrdinalIgnoreCase);
    private readonly (string Suffix, SslServerAuthenticationOptions Options)[] _wildcards;
    private readonly SslServerAuthenticationOptions _default;

    /// <param name="defaultCertificate">Served when SNI names no configured host (or is absent, as for IP-literal URLs).</param>
    /// <param name="byHost">Certificates with the host patterns ("a.example", "*.b.example") they serve.</param>
    /// <param name="applicationProtocols">ALPN ids offered, in order of preference ("h2" before "http/1.1").</param>
    /// <param name="enabledProtocols">TLS versions accepted.</param>
    public TlsServerCertificates(TlsCertificate defaultCertificate, IEnumerable<(TlsCertificate Certificate, IReadOnlyList<string> Hosts)> byHost,
        IReadOnlyList<SslApplicationProtocol> applicationProtocols, SslProtocols enabledProtocols)
    {
        ArgumentNullException.ThrowIfNull(defaultCertificate);
        var alpn = new List<SslApplicationProtocol>(applicationProtocols);
        var built = new Dictionary<TlsCertificate, SslServerAuthenticationOptions>();
        SslServerAuthenticationOptions For(TlsCertificate certificate)
        {
            if (!built.TryGetValue(certificate, out var options))
            {
                // One options object per certificate, shared by every handshake: SslStream copies what it needs.
                options = new SslServerAuthenticationOptions
                {
                    ServerCertificateContext = certificate.Context,
                    ApplicationProtocols = alpn,
                    EnabledSslProtocols = enabledProtocols,
                    ClientCertificateRequired = false,
                    CertificateRevocationCheckMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
                };
                built[certificate] = options;
            }
            return options;
        }

        _default = For(defaultCertificate);
        var wildcards = new List<(string, SslServerAuthenticationOptions)>();
        foreach (var (certificate, hosts) in byHost)
        {
            foreach (var host in hosts)
            {
                if (host.StartsWith("*.", StringComparison.Ordinal))
                {
                    wildcards.Add((host[1..], For(certificate)));
                }
                else
                {
                    _exact.TryAdd(host.TrimEnd('.'), For(certificate));
                }
            }
        }
        // Longest suffix first, so "*.api.example.com" wins over "*.example.com".
        _wildcards = [.. wildcards.OrderByDescending(w => w.Item1.Length)];
        ApplicationProtocols = alpn;
    }

    /// <summary>The ALPN ids offered.</summary>
    public IReadOnlyList<SslApplicationProtocol> ApplicationProtocols { get; }

    /// <summary>The handshake options for the server name a client sent (null or empty: the default).</summary>
    public SslServerAuthenticationOptions Select(string? serverName)
    {
        if (string.IsNullOrEmpty(serverName))
        {
            return _default;
        }
        if (serverName[^1] == '.')
        {
            serverName = serverName[..^1];
        }
        if (_exact.TryGetValue(serverName, out var exact))
        {
            return exact;
        }
        foreach (var (suffix, options) in _wildcards)
        {
            if (serverName.Length > suffix.Length && serverName.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                return options;
            }
        }
        return _default;
    }
}
