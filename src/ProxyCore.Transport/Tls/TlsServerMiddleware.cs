using System.Net.Security;

namespace ProxyCore.Transport.Tls;

/// <summary>How one listener terminates TLS.</summary>
public sealed class TlsServerOptions
{
    private volatile TlsServerCertificates _certificates;

    public TlsServerOptions(TlsServerCertificates certificates)
    {
        ArgumentNullException.ThrowIfNull(certificates);
        _certificates = certificates;
    }

    /// <summary>
    /// The certificates handshakes choose from. Swappable at any time (certificate rotation on reload):
    /// a handshake reads it once, connections already up keep the certificate they were served.
    /// </summary>
    public TlsServerCertificates Certificates
    {
        get => _certificates;
        set => _certificates = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>
    /// Time from accept to a finished handshake; past it the connection is closed. Default 10 s. Shorter
    /// frees sockets held by silent or slow clients (a slowloris on the handshake) sooner; too short
    /// fails real clients on lossy, high-latency links (a TLS 1.2 handshake is two round trips).
    /// </summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Pipe buffers and backpressure of the plaintext side; the socket transport's defaults unless set.</summary>
    public SocketTransportOptions PipeOptions { get; init; } = SocketTransportOptions.Default;

    /// <summary>The clock for <see cref="HandshakeTimeout"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>
/// Connection middleware that terminates TLS: it runs the handshake (SNI picks the certificate, ALPN the
/// protocol) and hands the next handler a connection whose <see cref="ConnectionContext.Transport"/> carries
/// plaintext, with <see cref="ConnectionContext.IsTls"/> set and <see cref="ConnectionContext.NegotiatedProtocol"/>
/// the ALPN id agreed on. A failed or timed-out handshake (a plaintext client, a scanner, an unknown
/// version or cipher) closes that connection and is counted; the listener carries on.
/// </summary>
public static class TlsServerMiddleware
{
    private static long _handshakesCompleted;
    private static long _handshakesFailed;

    /// <summary>Handshakes completed since start, over all listeners.</summary>
    public static long HandshakesCompleted => Volatile.Read(ref _handshakesCompleted);

    /// <summary>Handshakes that failed or timed out since start, over all listeners.</summary>
    public static long HandshakesFailed => Volatile.Read(ref _handshakesFailed);

    private static readonly ServerOptionsSelectionCallback s_select = static (stream, hello, state, cancellationToken)
        => new ValueTask<SslServerAuthenticationOptions>(((TlsServerOptions)state!).Certificates.Select(hello.ServerName));

    /// <summary>For <see cref="ConnectionBuilder.Use"/>.</summary>
    public static Func<ConnectionDelegate, ConnectionDelegate> Create(TlsServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var settings = new SocketPipeSettings(options.PipeOptions);
        return next => connection => OnConnectionAsync(connection, next, options, settings);
    }

    private static async Task OnConnectionAsync(ConnectionContext connection, ConnectionDelegate next, TlsServerOptions options, SocketPipeSettings settings)
    {
        TlsConnection tls;
        using (var timeout = new CancellationTokenSource(options.HandshakeTimeout, options.TimeProvider))
        {
            try
            {
                tls = await TlsConnection.AuthenticateAsServerAsync(connection, s_select, options, settings, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Not worth a log line each: port scanners and plaintext clients make these all day.
                Interlocked.Increment(ref _handshakesFailed);
                connection.Abort();
                return;
            }
        }
        Interlocked.Increment(ref _handshakesCompleted);
        try
        {
            await next(tls).ConfigureAwait(false);
        }
        finally
        {
            await tls.DisposeAsync().ConfigureAwait(false);
        }
    }
}
