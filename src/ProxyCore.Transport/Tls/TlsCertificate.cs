using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ProxyCore.Transport.Tls;

/// <summary>Which of the two files a certificate load failed on, so a config error can name the right JSON path.</summary>
public enum TlsFileKind
{
    Certificate,
    Key,
}

/// <summary>A server certificate with its private key and chain, loaded from PEM files and ready for handshakes.</summary>
public sealed class TlsCertificate
{
    private TlsCertificate(X509Certificate2 leaf, SslStreamCertificateContext context)
    {
        Leaf = leaf;
        Context = context;
    }

    /// <summary>The end-entity certificate (the first one in the certificate file), with its private key.</summary>
    public X509Certificate2 Leaf { get; }

    /// <summary>Leaf plus intermediates, built once: every handshake sends the same chain without rebuilding it.</summary>
    public SslStreamCertificateContext Context { get; }

    /// <summary>
    /// Loads a PEM certificate file (leaf first, then any intermediates) and a PEM private key file
    /// (PKCS#8, RSA or EC; unencrypted). Paths are relative to the working directory.
    /// </summary>
    /// <returns>Null and <paramref name="error"/> (naming the file at fault in <paramref name="errorFile"/>) when either file is missing, unreadable, or the key does not belong to the certificate.</returns>
    public static TlsCertificate? TryLoad(string certificatePath, string keyPath, out TlsFileKind errorFile, out string? error)
    {
        errorFile = TlsFileKind.Certificate;
        if (!TryReadPem(certificatePath, "certificate", out var certificatePem, out error))
        {
            return null;
        }
        var chain = new X509Certificate2Collection();
        try
        {
            chain.ImportFromPem(certificatePem);
        }
        catch (CryptographicException ex)
        {
            error = $"'{certificatePath}' is not a readable PEM certificate: {ex.Message}";
            return null;
        }
        if (chain.Count == 0)
        {
            error = certificatePem.Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal)
                ? $"'{certificatePath}' is not a readable PEM certificate: its CERTIFICATE block does not decode"
                : $"'{certificatePath}' holds no -----BEGIN CERTIFICATE----- block";
            DisposeAll(chain);
            return null;
        }

        errorFile = TlsFileKind.Key;
        if (!TryReadPem(keyPath, "private key", out var keyPem, out error))
        {
            DisposeAll(chain);
            return null;
        }
        if (keyPem.Contains("-----BEGIN ENCRYPTED PRIVATE KEY-----", StringComparison.Ordinal))
        {
            error = $"'{keyPath}' is encrypted, which is not supported: store it decrypted with tight file permissions (openssl pkey -in key.pem -out plain.pem)";
            DisposeAll(chain);
            return null;
        }
        if (!keyPem.Contains("PRIVATE KEY-----", StringComparison.Ordinal))
        {
            error = $"'{keyPath}' holds no -----BEGIN PRIVATE KEY----- block (PKCS#8, RSA or EC)";
            DisposeAll(chain);
            return null;
        }

        X509Certificate2 leaf;
        try
        {
            // Takes the first certificate of the file and the key that matches its algorithm.
            leaf = X509Certificate2.CreateFromPem(certificatePem, keyPem);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            // ArgumentException: the key parsed but is not this certificate's.
            error = KeyReadable(keyPem)
                ? $"the private key in '{keyPath}' does not belong to the certificate in '{certificatePath}'"
                : $"'{keyPath}' is not a readable private key: {ex.Message}";
            DisposeAll(chain);
            return null;
        }

        var intermediates = new X509Certificate2Collection();
        foreach (var certificate in chain)
        {
            if (certificate.Thumbprint != leaf.Thumbprint)
            {
                intermediates.Add(certificate);
            }
            else
            {
                certificate.Dispose();
            }
        }
        // offline: never fetch missing intermediates (AIA) over the network at start; send what the file holds.
        var context = SslStreamCertificateContext.Create(leaf, intermediates, offline: true);
        error = null;
        return new TlsCertificate(leaf, context);
    }

    private static bool TryReadPem(string path, string what, out string pem, out string? error)
    {
        pem = "";
        if (string.IsNullOrWhiteSpace(path))
        {
            error = $"a PEM {what} file is required";
            return false;
        }
        if (!File.Exists(path))
        {
            error = $"file '{path}' not found";
            return false;
        }
        try
        {
            pem = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            error = $"cannot read '{path}': {ex.Message}";
            return false;
        }
        error = null;
        return true;
    }

    private static bool KeyReadable(string keyPem)
    {
        try
        {
            using var rsa = RSA.Create();
            rsa.ImportFromPem(keyPem);
            return true;
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
        }
        try
        {
            using var ecdsa = ECDsa.Create();
            ecdsa.ImportFromPem(keyPem);
            return true;
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            return false;
        }
    }

    private static void DisposeAll(X509Certificate2Collection certificates)
    {
        foreach (var certificate in certificates)
        {
            certificate.Dispose();
        }
    }
}
