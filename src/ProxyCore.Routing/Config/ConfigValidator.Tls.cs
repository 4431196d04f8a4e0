using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ProxyCore.Transport.Tls;

namespace ProxyCore.Routing.Config;

/// <summary>
/// Validation of <c>listeners[].tls</c> and <c>clusters[].tls</c>. The files are read here, as they will
/// be at start, so `proxycore validate` finds a missing file, an unreadable PEM or a key that belongs to
/// another certificate before a deploy does.
/// </summary>
internal sealed partial class ConfigValidator
{
    internal static readonly string[] TlsVersions = ["1.2", "1.3"];

    private void ValidateListenerTls(TlsConfig tls, string path)
    {
        bool hasDefault = !string.IsNullOrWhiteSpace(tls.Certificate) || !string.IsNullOrWhiteSpace(tls.Key);
        if (hasDefault || tls.Certificates.Count == 0)
        {
            CheckCertificate(tls.Certificate, tls.Key, path);
        }
        var hosts = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (int i = 0; i < tls.Certificates.Count; i++)
        {
            var entry = tls.Certificates[i];
            string epath = $"{path}.certificates[{i}]";
            CheckCertificate(entry.Certificate, entry.Key, epath);
            if (entry.Hosts.Count == 0)
            {
                Error(epath + ".hosts", "list the SNI host names this certificate serves (\"a.example\", \"*.b.example\")");
            }
            for (int h = 0; h < entry.Hosts.Count; h++)
            {
                string host = entry.Hosts[h];
                if (!IsValidHostPattern(host, out var why) || host.StartsWith('['))
                {
                    Error($"{epath}.hosts[{h}]", host.StartsWith('[') ? $"'{host}': clients send no SNI for IP addresses; such connections get the default certificate" : why);
                }
                else if (!hosts.Add(host.TrimEnd('.')))
                {
                    Error($"{epath}.hosts[{h}]", $"'{host}' is already served by another certificate of this listener");
                }
            }
        }
        Positive(path + ".handshakeTimeout", tls.HandshakeTimeout);
        if (Array.IndexOf(TlsVersions, tls.MinVersion) < 0)
        {
            Error(path + ".minVersion", $"unknown TLS version '{tls.MinVersion}' (expected \"1.2\" or \"1.3\")");
        }
    }

    private void CheckCertificate(string certificate, string key, string path)
    {
        if (string.IsNullOrWhiteSpace(certificate))
        {
            Error(path + ".certificate", "a PEM certificate file is required");
        }
        if (string.IsNullOrWhiteSpace(key))
        {
            Error(path + ".key", "a PEM private key file is required");
        }
        if (string.IsNullOrWhiteSpace(certificate) || string.IsNullOrWhiteSpace(key))
        {
            return;
        }
        var loaded = TlsCertificate.TryLoad(certificate, key, out var file, out var error);
        if (loaded is null)
        {
            Error(path + (file == TlsFileKind.Certificate ? ".certificate" : ".key"), error!);
            return;
        }
        loaded.Leaf.Dispose();
    }

    private void ValidateClusterTls(ClusterConfig cluster, string path)
    {
        if (cluster.Tls is not { } tls)
        {
            return;
        }
        path += ".tls";
        bool anyHttps = false;
        foreach (var destination in cluster.Destinations)
        {
            anyHttps |= Addresses.TryParseDestination(destination.Address, out var parsed, out _) && parsed.IsHttps;
        }
        if (!anyHttps && cluster.Destinations.Count > 0)
        {
            Error(path, "only applies to https:// destinations, and this cluster has none");
        }
        if (tls.ServerName is { } name && !Addresses.IsHostName(name.TrimEnd('.')))
        {
            Error(path + ".serverName", $"'{name}' is not a host name");
        }
        if (tls.CaFile is { } caFile)
        {
            if (tls.InsecureSkipVerify)
            {
                Error(path + ".insecureSkipVerify", "contradicts caFile: verify against the CA file, or skip verification, not both");
            }
            else if (TryLoadCaFile(caFile, out var error) is { } roots)
            {
                foreach (var root in roots)
                {
                    root.Dispose();
                }
            }
            else
            {
                Error(path + ".caFile", error!);
            }
        }
    }

    /// <summary>Reads a PEM bundle of CA certificates (every CERTIFICATE block in the file).</summary>
    internal static X509Certificate2Collection? TryLoadCaFile(string path, out string? error)
    {
        error = null;
        if (string.IsNullOrWhiteSpace(path))
        {
            error = "must name a PEM file of CA certificates";
            return null;
        }
        if (!File.Exists(path))
        {
            error = $"file '{path}' not found";
            return null;
        }
        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPemFile(path);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException)
        {
            error = $"'{path}' is not a readable PEM file of CA certificates: {ex.Message}";
            return null;
        }
        if (roots.Count == 0)
        {
            error = File.ReadAllText(path).Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal)
                ? $"'{path}' is not a readable PEM file of CA certificates: its CERTIFICATE block does not decode"
                : $"'{path}' holds no -----BEGIN CERTIFICATE----- block";
            return null;
        }
        return roots;
    }
}
