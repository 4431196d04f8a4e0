using System.Net.Security;
using System.Security.Authentication;
using ProxyCore.Routing.Config;
using ProxyCore.Transport.Tls;

namespace ProxyCore.Routing.Model;

/// <summary>Builds the transport's TLS objects from a validated config.</summary>
public static class TlsModel
{
    /// <summary>
    /// ALPN ids for a listener's protocols, preferred first: "h2" before "http/1.1", so a client that
    /// speaks both gets HTTP/2 (one connection, multiplexed) unless the listener leaves it out.
    /// </summary>
    public static List<SslApplicationProtocol> ApplicationProtocols(IReadOnlyList<string> protocols)
    {
        var alpn = new List<SslApplicationProtocol>(2);
        if (protocols.Contains("http2"))
        {
            alpn.Add(SslApplicationProtocol.Http2);
        }
        if (protocols.Contains("http1"))
        {
            alpn.Add(SslApplicationProtocol.Http11);
        }
        return alpn;
    }

    /// <summary>TLS 1.2 and 1.3, or 1.3 alone for minVersion "1.3". SSL 3, TLS 1.0 and 1.1 are never offered (RFC 8996).</summary>
    public static SslProtocols EnabledProtocols(string minVersion)
        => minVersion == "1.3" ? SslProtocols.Tls13 : SslProtocols.Tls12 | SslProtocols.Tls13;

    /// <summary>Loads a listener's certificates (the files are read now) into the set SNI chooses from.</summary>
    /// <exception cref="InvalidOperationException">A file became unreadable since validation.</exception>
    public static TlsServerCertificates BuildServerCertificates(TlsConfig tls, IReadOnlyList<string> protocols)
    {
        var byHost = new List<(TlsCertificate, IReadOnlyList<string>)>();
        foreach (var entry in tls.Certificates)
        {
            byHost.Add((Load(entry.Certificate, entry.Key), entry.Hosts));
        }
        var defaultCertificate = !string.IsNullOrWhiteSpace(tls.Certificate) ? Load(tls.Certificate, tls.Key) : byHost[0].Item1;
        return new TlsServerCertificates(defaultCertificate, byHost, ApplicationProtocols(protocols), EnabledProtocols(tls.MinVersion));
    }

    /// <summary>The pool's TLS settings for a cluster, or null when its destinations are plain http://.</summary>
    public static UpstreamTlsOptions? BuildUpstream(ClusterConfig cluster)
    {
        bool https = cluster.Destinations.Count > 0 && Addresses.TryParseDestination(cluster.Destinations[0].Address, out var first, out _) && first.IsHttps;
        if (!https)
        {
            return null;
        }
        var tls = cluster.Tls ?? new UpstreamTlsConfig();
        System.Security.Cryptography.X509Certificates.X509Certificate2Collection? roots = null;
        if (tls.CaFile is { } caFile)
        {
            roots = ConfigValidator.TryLoadCaFile(caFile, out var error) ?? throw new InvalidOperationException($"clusters '{cluster.Id}' tls.caFile: {error}");
        }
        // An http2 cluster offers only h2 by ALPN: its connections are multiplexed, never spoken to in HTTP/1.1.
        return new UpstreamTlsOptions(tls.ServerName, roots, tls.InsecureSkipVerify,
            cluster.Protocol == "http2" ? [SslApplicationProtocol.Http2] : null);
    }

    private static TlsCertificate Load(string certificate, string key)
        => TlsCertificate.TryLoad(certificate, key, out _, out var error) ?? throw new InvalidOperationException(error);
}
