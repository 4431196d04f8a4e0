using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace ProxyCore.Transport.Tls;

/// <summary>
/// How the upstream pool speaks TLS to one cluster's destinations (https:// addresses). Value-equal:
/// two snapshots with the same settings (same CA certificates) share pooled connections, so a reload
/// does not drop warm TLS sessions; different settings (another SNI, another trust) never share one.
/// </summary>
public sealed class UpstreamTlsOptions : IEquatable<UpstreamTlsOptions>
{
    private readonly X509ChainPolicy? _chainPolicy;
    private readonly List<SslApplicationProtocol> _alpn;
    private readonly string _identity;

    /// <param name="serverName">SNI sent and name the certificate must carry; null: each destination's host (no SNI for IP literals).</param>
    /// <param name="trustedRoots">Trust these CAs instead of the system store (a private PKI, self-signed test certificates); null: system store.</param>
    /// <param name="insecureSkipVerify">Accept any certificate. Dangerous: anyone on the path can impersonate the upstream.</param>
    /// <param name="applicationProtocols">ALPN ids offered, preferred first; default "http/1.1" only.</param>
    public UpstreamTlsOptions(string? serverName = null, X509Certificate2Collection? trustedRoots = null, bool insecureSkipVerify = false,
        IReadOnlyList<SslApplicationProtocol>? applicationProtocols = null)
    {
        ServerName = string.IsNullOrEmpty(serverName) ? null : serverName;
        InsecureSkipVerify = insecureSkipVerify;
        _alpn = applicationProtocols is null ? [SslApplicationProtocol.Http11] : [.. applicationProtocols];
        var identity = new StringBuilder().Append(ServerName).Append('|').Append(insecureSkipVerify ? '1' : '0').Append('|');
        foreach (var protocol in _alpn)
        {
            identity.Append(protocol.ToString()).Append(',');
        }
        identity.Append('|');
        if (trustedRoots is { Count: > 0 })
        {
            // Revocation is not checked against a private CA: such CAs rarely publish CRLs, and a check
            // that cannot reach one would fail every handshake.
            _chainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
            foreach (var root in trustedRoots)
            {
                _chainPolicy.CustomTrustStore.Add(root);
                identity.Append(root.Thumbprint).Append(',');
            }
        }
        _identity = identity.ToString();
    }

    public string? ServerName { get; }

    public bool InsecureSkipVerify { get; }

    /// <summary>ALPN ids offered. The negotiated one is <see cref="ConnectionContext.NegotiatedProtocol"/> on the dialled connection.</summary>
    public IReadOnlyList<SslApplicationProtocol> ApplicationProtocols => _alpn;

    /// <summary>TLS versions offered; 1.2 and 1.3.</summary>
    public static SslProtocols EnabledProtocols => SslProtocols.Tls12 | SslProtocols.Tls13;

    /// <summary>The name put in SNI and checked against the certificate when dialling <paramref name="endPoint"/>.</summary>
    public string TargetHost(EndPoint endPoint) => ServerName ?? endPoint switch
    {
        DnsEndPoint dns => dns.Host,
        IPEndPoint ip => ip.Address.ToString(),
        _ => endPoint.ToString() ?? "",
    };

    internal SslClientAuthenticationOptions CreateClientOptions(EndPoint endPoint)
    {
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = TargetHost(endPoint),
            ApplicationProtocols = _alpn,
            EnabledSslProtocols = EnabledProtocols,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        if (InsecureSkipVerify)
        {
            options.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
        }
        else if (_chainPolicy is not null)
        {
            options.CertificateChainPolicy = _chainPolicy.Clone();
        }
        return options;
    }

    /// <summary>
    /// Runs the client handshake over a freshly dialled <paramref name="inner"/> connection and returns the
    /// TLS connection in its place. On failure <paramref name="inner"/> is aborted and the failure is an
    /// <see cref="UpstreamConnectException"/> with <see cref="UpstreamConnectFailure.Tls"/> (nothing of a
    /// request was sent, so another destination may be tried); cancellation passes through as it is.
    /// </summary>
    public async ValueTask<ConnectionContext> AuthenticateAsync(ConnectionContext inner, EndPoint endPoint, CancellationToken cancellationToken)
    {
        try
        {
            return await TlsConnection.AuthenticateAsClientAsync(inner, CreateClientOptions(endPoint), s_settings, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            inner.Abort();
            await inner.DisposeAsync().ConfigureAwait(false);
            if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            throw new UpstreamConnectException(endPoint, UpstreamConnectFailure.Tls, ex);
        }
    }

    private static readonly SocketPipeSettings s_settings = new(SocketTransportOptions.Default);

    public bool Equals(UpstreamTlsOptions? other) => other is not null && _identity == other._identity;

    public override bool Equals(object? obj) => Equals(obj as UpstreamTlsOptions);

    public override int GetHashCode() => _identity.GetHashCode(StringComparison.Ordinal);
}
