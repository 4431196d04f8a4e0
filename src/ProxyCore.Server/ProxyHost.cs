using System.IO.Pipelines;
using System.Net;
using ProxyCore.Http;
using ProxyCore.Http.Http1;
using ProxyCore.Http.Http2;
using ProxyCore.Llm.Gateway;
using ProxyCore.Proxy;
using ProxyCore.Proxy.Health;
using ProxyCore.Proxy.Metrics;
using ProxyCore.Proxy.Relay;
using ProxyCore.Proxy.Stages;
using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;
using ProxyCore.Transport;
using ProxyCore.Transport.Tls;

namespace ProxyCore.Server;

/// <summary>
/// One running proxy: its listeners, admin listener, routing state, upstream pool, metrics and access
/// log. Routes and clusters reload in place; listeners, limits and the access log are read at start.
/// </summary>
public sealed class ProxyHost : IAsyncDisposable
{
    private readonly ProxyState _state;
    private readonly ConnectionServer _proxyServer;
    private readonly ConnectionServer? _adminServer;
    private readonly UpstreamConnectionPool _pool;
    private readonly AccessLog? _accessLog;
    private readonly ProxyConfig _startConfig;
    private ProxyCore.Proxy.Tracing.OtlpExporter? _spans;
    private IReadOnlyList<TlsServerOptions?> _tlsListeners = [];
    private ProxyCore.Http.Http2.Client.Http2UpstreamPool? _http2Pool;
    private readonly ActiveHealthChecker _healthChecker;
    private readonly OutlierDetector _outliers;
    private volatile bool _draining;
    private int _stopped;

    private ProxyHost(ProxyConfig config, ProxyState state, ConnectionServer proxyServer, ConnectionServer? adminServer,
        UpstreamConnectionPool pool, AccessLog? accessLog, ProxyMetrics metrics, IReadOnlyList<IPEndPoint> listenEndPoints, IPEndPoint? adminEndPoint,
        ActiveHealthChecker healthChecker, OutlierDetector outliers)
    {
        _healthChecker = healthChecker;
        _outliers = outliers;
        _startConfig = config;
        _state = state;
        _proxyServer = proxyServer;
        _adminServer = adminServer;
        _pool = pool;
        _accessLog = accessLog;
        Metrics = metrics;
        ListenEndPoints = listenEndPoints;
        AdminEndPoint = adminEndPoint;
    }

    public ProxyMetrics Metrics { get; }

    /// <summary>Where the proxy listens (with real ports when the config said port 0).</summary>
    public IReadOnlyList<IPEndPoint> ListenEndPoints { get; }

    public IPEndPoint? AdminEndPoint { get; }

    public ProxySnapshot Current => _state.Current;

    /// <summary>Validates <paramref name="config"/>, binds every listener, and starts serving.</summary>
    /// <param name="mirrorRandom">The mirror's sampling source (tests pass a seeded one); default <see cref="Random.Shared"/>.</param>
    public static ProxyHost Start(ProxyConfig config, Stream? accessLogOutput = null, Random? mirrorRandom = null)
    {
        var errors = ProxyConfigLoader.Validate(config);
        if (errors.Count > 0)
        {
            throw new InvalidOperationException("Invalid configuration:\n" + string.Join('\n', errors));
        }

        var metrics = new ProxyMetrics();
        var transport = TransportOptions(config.Transport);
        var pool = new UpstreamConnectionPool(ConnectionTransport.CreateFactory(transport));
        var limits = config.Limits;
#if PROXYCORE_MINILM
        // The local-model flavour: "embedder": "local" is served by MiniLM (loaded on first use).
        LlmStage.LocalEmbedderFactory ??= static () => new ProxyCore.Llm.MiniLM.MiniLMEmbedder();
#endif
        var llm = new LlmStage(pool, metrics, new Http1Limits
        {
            MaxRequestLineBytes = (int)limits.MaxRequestLineBytes,
            MaxHeaderBytes = (int)limits.MaxHeaderBytes,
            MaxHeaderCount = limits.MaxHeaderCount,
        });
        var state = new ProxyState(config, prepare: snapshot =>
        {
            RoutePolicies.Prepare(snapshot, TimeProvider.System);
            llm.Prepare(snapshot);
        });
        var http1 = new Http1ConnectionOptions
        {
            Limits = new Http1Limits
            {
                MaxRequestLineBytes = (int)limits.MaxRequestLineBytes,
                MaxHeaderBytes = (int)limits.MaxHeaderBytes,
                MaxHeaderCount = limits.MaxHeaderCount,
            },
            HeaderReadTimeout = limits.HeaderReadTimeout,
            KeepAliveTimeout = limits.KeepAliveTimeout,
        };
        var forwarder = new HttpForwarder(pool, new ForwarderOptions
        {
            XForwarded = config.Forwarding.XForwarded,
            Via = config.Forwarding.Via,
            Forwarded = config.Forwarding.Forwarded,
            TracePropagation = config.Tracing.Propagate,
            PreserveHost = config.Forwarding.PreserveHost,
            MaxRequestBodyBytes = limits.MaxRequestBodyBytes,
            Limits = http1.Limits,
        });

        AccessLog? accessLog = null;
        if (config.AccessLog.Enabled)
        {
            accessLog = accessLogOutput is not null ? new AccessLog(accessLogOutput, ownsOutput: false)
                : config.AccessLog.Path is { Length: > 0 } path ? new AccessLog(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite), ownsOutput: true)
                : new AccessLog(Console.OpenStandardOutput(), ownsOutput: true);
        }

        var spans = config.Tracing.OtlpEndpoint is { } otlp ? new ProxyCore.Proxy.Tracing.OtlpExporter(otlp, config.Tracing.ServiceName) : null;
        var outliers = new OutlierDetector(TimeProvider.System);
        var mirror = new ProxyCore.Proxy.Stages.Mirror.TrafficMirror(new SocketConnectionFactory(), mirrorRandom);
        var application = new ProxyApplication(state, forwarder, metrics, accessLog, outliers, spans, mirror);
        int maxConnections = limits.MaxConnections;
        ConnectionServer? proxyServer = null;
        var http2 = config.Listeners.Any(l => l.Protocols.Contains("http2"))
            ? new Http2ConnectionOptions
            {
                MaxHeaderListSize = (int)limits.MaxHeaderBytes,
                IdleTimeout = limits.KeepAliveTimeout,
                HeaderBlockTimeout = limits.HeaderReadTimeout,
                MaxConcurrentStreams = limits.Http2.MaxConcurrentStreams,
                InitialStreamWindowSize = (int)limits.Http2.InitialStreamWindowSize,
                ConnectionWindowSize = (int)limits.Http2.ConnectionWindowSize,
                HeaderTableSize = (int)limits.Http2.HeaderTableSize,
                MaxHeaderBlockFrames = limits.Http2.MaxHeaderBlockFrames,
                MaxRapidResets = limits.Http2.MaxRapidResets,
                RapidResetWindow = limits.Http2.RapidResetWindow,
                MaxControlFrames = limits.Http2.MaxControlFrames,
                ControlFrameWindow = limits.Http2.ControlFrameWindow,
                StallTimeout = limits.Http2.StallTimeout,
            }
            : null;
        proxyServer = new ConnectionServer(connection => ServeAsync(connection, application, http1, http2, true, proxyServer!),
            (message, e) => Log.Warn($"{message}: {e.Message}"));

        var listenEndPoints = new List<IPEndPoint>();
        var tlsListeners = new List<TlsServerOptions?>();
        ConnectionServer? adminServer = null;
        IPEndPoint? adminEndPoint = null;
        ProxyHost? host = null;
        try
        {
            foreach (var listener in config.Listeners)
            {
                // Per listener: its protocols, and TLS in front when it has a tls block. The connection limit
                // comes first, so a connection over it costs no handshake.
                var builder = new ConnectionBuilder().Use(next => connection => LimitConnectionsAsync(connection, next, proxyServer, maxConnections));
                TlsServerOptions? tls = null;
                if (listener.Tls is { } tlsConfig)
                {
                    tls = new TlsServerOptions(TlsModel.BuildServerCertificates(tlsConfig, listener.Protocols)) { HandshakeTimeout = tlsConfig.HandshakeTimeout };
                    builder.Use(TlsServerMiddleware.Create(tls));
                }
                tlsListeners.Add(tls);
                var listenerHttp2 = listener.Protocols.Contains("http2") ? http2 : null;
                bool allowHttp1 = listener.Protocols.Contains("http1");
                var handler = builder.Build(connection => ServeAsync(connection, application, http1, listenerHttp2, allowHttp1, proxyServer));
                var bound = ConnectionTransport.Bind(ParseEndPoint(listener.Address), transport);
                listenEndPoints.Add((IPEndPoint)bound.EndPoint);
                proxyServer.Start(bound, handler);
            }
            if (config.Admin.Enabled)
            {
                var admin = new AdminApplication(state, metrics, () => host is { _draining: false });
                adminServer = new ConnectionServer(connection => LimitConnectionsAsync(connection, c => ServeAsync(c, admin, Http1ConnectionOptions.Default, null, true, adminServer!), adminServer!, 64),
                    (message, e) => Log.Warn($"admin {message}: {e.Message}"));
                var bound = SocketConnectionListener.Bind(ParseEndPoint(config.Admin.Address));
                adminEndPoint = (IPEndPoint)bound.EndPoint;
                adminServer.Start(bound);
            }
        }
        catch
        {
            proxyServer.StopAsync(TimeSpan.Zero).GetAwaiter().GetResult();
            adminServer?.StopAsync(TimeSpan.Zero).GetAwaiter().GetResult();
            throw;
        }
        // Probes dial on their own factory, not through the pool: a probe must see a fresh connect.
        var healthChecker = new ActiveHealthChecker(new SocketConnectionFactory(), TimeProvider.System);
        healthChecker.Start(state.Current);
        host = new ProxyHost(config, state, proxyServer, adminServer, pool, accessLog, metrics, listenEndPoints, adminEndPoint, healthChecker, outliers)
        {
            _spans = spans,
            _tlsListeners = tlsListeners,
            _http2Pool = forwarder.Http2Pool,
        };
        return host;
    }

    /// <summary>The proxy listeners' and upstream pool's transport; admin and health probes stay on the default engine.</summary>
    internal static SocketTransportOptions TransportOptions(TransportConfig config) => new()
    {
        Engine = config.Engine == "epoll" ? TransportEngine.Epoll : TransportEngine.Sockets,
        Reactors = config.Reactors,
        InlineCompletions = config.InlineCompletions,
        WaitForDataBeforeAllocatingBuffer = config.WaitForData,
        BatchSends = config.BatchSends,
    };

    private static Task LimitConnectionsAsync(ConnectionContext connection, ConnectionDelegate next, ConnectionServer server, int maxConnections)
    {
        if (maxConnections > 0 && server.ActiveConnections > maxConnections)
        {
            // Over the connection limit: close at once rather than queue work we cannot serve.
            connection.Abort();
            return Task.CompletedTask;
        }
        return next(connection);
    }

    /// <summary>
    /// Picks the protocol: over TLS, what ALPN agreed on ("h2" → HTTP/2; "http/1.1" or no ALPN → HTTP/1.1,
    /// unless the listener serves HTTP/2 only); in plaintext, the h2c preface decides.
    /// </summary>
    /// <remarks>
    /// Not async itself when the protocol is known at once (no HTTP/2, ALPN, or the first bytes already there): it
    /// returns the protocol loop's task, so an idle connection holds no state-machine box of its own (~160 B each).
    /// </remarks>
    private static Task ServeAsync(ConnectionContext connection, IHttpApplication application, Http1ConnectionOptions options,
        Http2ConnectionOptions? http2, bool allowHttp1, ConnectionServer server)
    {
        bool useHttp2 = false;
        if (http2 is not null)
        {
            if (connection.IsTls)
            {
                useHttp2 = connection.NegotiatedProtocol == "h2" || (!allowHttp1 && connection.NegotiatedProtocol is null);
            }
            else
            {
                var input = connection.Transport.Input;
                if (!input.TryRead(out var result))
                {
                    return PeekThenServeAsync(connection, application, options, http2, allowHttp1, server);
                }
                var status = result.IsCanceled ? Http2PrefaceStatus.Incomplete : Http2Preface.Check(result.Buffer, out _);
                input.AdvanceTo(result.Buffer.Start, result.Buffer.Start); // nothing examined: a read sees these bytes again
                if (status == Http2PrefaceStatus.Incomplete)
                {
                    return PeekThenServeAsync(connection, application, options, http2, allowHttp1, server);
                }
                if (status == Http2PrefaceStatus.Mismatch && !allowHttp1)
                {
                    connection.Abort(); // A protocol this listener does not serve.
                    return Task.CompletedTask;
                }
                useHttp2 = status == Http2PrefaceStatus.Match;
            }
        }
        return useHttp2
            ? new Http2Connection(connection, application, http2!, server.Stopping).RunAsync()
            : new Http1Connection(connection, application, options, server.Stopping).RunAsync();
    }

    /// <summary>The h2c preface check of <see cref="ServeAsync"/> when the first bytes are not there yet.</summary>
    private static async Task PeekThenServeAsync(ConnectionContext connection, IHttpApplication application, Http1ConnectionOptions options,
        Http2ConnectionOptions http2, bool allowHttp1, ConnectionServer server)
    {
        var protocol = await PeekProtocolAsync(connection, options.HeaderReadTimeout).ConfigureAwait(false);
        if (protocol == Http2PrefaceStatus.Incomplete || (protocol == Http2PrefaceStatus.Mismatch && !allowHttp1))
        {
            connection.Abort(); // Silent (or too slow) to say which protocol, or one this listener does not serve.
            return;
        }
        if (protocol == Http2PrefaceStatus.Match)
        {
            var h2 = new Http2Connection(connection, application, http2, server.Stopping);
            await h2.RunAsync().ConfigureAwait(false);
            return;
        }
        var http1 = new Http1Connection(connection, application, options, server.Stopping);
        await http1.RunAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// h2c by prior knowledge (RFC 9113 §3.3): the client preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" means
    /// HTTP/2, any other first bytes HTTP/1.1. Nothing is consumed: the protocol chosen reads from the
    /// first byte. A mismatch shows at the first differing byte, so HTTP/1.1 requests wait for nothing.
    /// Incomplete means the client closed or stayed silent past <paramref name="timeout"/>.
    /// </summary>
    private static async Task<Http2PrefaceStatus> PeekProtocolAsync(ConnectionContext connection, TimeSpan timeout)
    {
        var input = connection.Transport.Input;
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return Http2PrefaceStatus.Incomplete;
            }
            var buffer = result.Buffer;
            var status = Http2Preface.Check(buffer, out _);
            if (status != Http2PrefaceStatus.Incomplete)
            {
                input.AdvanceTo(buffer.Start, buffer.Start);
                return status;
            }
            input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                // Closed before saying anything decisive: HTTP/1.1 sees the same bytes and ends quietly.
                return buffer.IsEmpty ? Http2PrefaceStatus.Mismatch : Http2PrefaceStatus.Incomplete;
            }
        }
    }

    /// <summary>
    /// Swaps in a new routing snapshot. Requests in flight finish on the one they started with.
    /// Settings read only at start (listeners, admin, limits, access log) are reported, not applied.
    /// </summary>
    public IReadOnlyList<string> Reload(ProxyConfig config)
    {
        var notes = new List<string>();
        if (!SameListeners(config))
        {
            notes.Add("listeners, admin address, limits, forwarding, tracing, transport and access log are read at start: restart to apply those changes");
        }
        else
        {
            RotateCertificates(config, notes);
        }
        // Probe the new snapshot's destinations; their states (and so their verdicts) carried over.
        _healthChecker.Start(_state.Swap(config));
        return notes;
    }

    /// <summary>
    /// Certificate rotation without a restart: each TLS listener re-reads its certificate files and new
    /// handshakes use them; connections already up keep theirs. A listener whose files fail to load keeps
    /// the certificates it had (the reason is in the notes).
    /// </summary>
    private void RotateCertificates(ProxyConfig config, List<string> notes)
    {
        for (int i = 0; i < _tlsListeners.Count && i < config.Listeners.Count; i++)
        {
            if (_tlsListeners[i] is not { } tls)
            {
                continue;
            }
            if (config.Listeners[i].Tls is not { } tlsConfig)
            {
                notes.Add($"listener {config.Listeners[i].Address}: TLS cannot be turned off by a reload: restart to apply");
                continue;
            }
            try
            {
                tls.Certificates = TlsModel.BuildServerCertificates(tlsConfig, _startConfig.Listeners[i].Protocols);
            }
            catch (Exception ex)
            {
                notes.Add($"listener {config.Listeners[i].Address}: certificates not reloaded, the old ones keep serving: {ex.Message}");
            }
        }
    }

    private bool SameListeners(ProxyConfig config)
    {
        var a = _startConfig;
        return a.Listeners.Select(l => l.Address).SequenceEqual(config.Listeners.Select(l => l.Address))
            && a.Listeners.Select(l => string.Join(',', l.Protocols)).SequenceEqual(config.Listeners.Select(l => string.Join(',', l.Protocols)))
            && a.Listeners.Select(l => l.Tls is null).SequenceEqual(config.Listeners.Select(l => l.Tls is null))
            && a.Admin.Address == config.Admin.Address && a.Admin.Enabled == config.Admin.Enabled
            && a.Limits.MaxRequestLineBytes == config.Limits.MaxRequestLineBytes && a.Limits.MaxHeaderBytes == config.Limits.MaxHeaderBytes
            && a.Limits.MaxHeaderCount == config.Limits.MaxHeaderCount && a.Limits.MaxRequestBodyBytes == config.Limits.MaxRequestBodyBytes
            && a.Limits.HeaderReadTimeout == config.Limits.HeaderReadTimeout && a.Limits.KeepAliveTimeout == config.Limits.KeepAliveTimeout
            && a.AccessLog.Enabled == config.AccessLog.Enabled && a.AccessLog.Path == config.AccessLog.Path
            && a.Forwarding.XForwarded == config.Forwarding.XForwarded && a.Forwarding.Via == config.Forwarding.Via
            && a.Forwarding.Forwarded == config.Forwarding.Forwarded && a.Forwarding.PreserveHost == config.Forwarding.PreserveHost
            && a.Tracing.Propagate == config.Tracing.Propagate && a.Tracing.OtlpEndpoint == config.Tracing.OtlpEndpoint
            && a.Tracing.ServiceName == config.Tracing.ServiceName
            && a.Transport.Engine == config.Transport.Engine && a.Transport.Reactors == config.Transport.Reactors
            && a.Transport.InlineCompletions == config.Transport.InlineCompletions && a.Transport.WaitForData == config.Transport.WaitForData
            && a.Transport.BatchSends == config.Transport.BatchSends;
    }

    /// <summary>Stops accepting, lets requests in flight finish within <paramref name="drainTimeout"/>, then closes everything.</summary>
    public async Task StopAsync(TimeSpan drainTimeout)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }
        _draining = true;
        await _healthChecker.StopAsync().ConfigureAwait(false);
        _outliers.Dispose();
        await _proxyServer.StopAsync(drainTimeout).ConfigureAwait(false);
        if (_adminServer is not null)
        {
            await _adminServer.StopAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        }
        if (_http2Pool is not null)
        {
            await _http2Pool.DisposeAsync().ConfigureAwait(false);
        }
        await _pool.DisposeAsync().ConfigureAwait(false);
        if (_accessLog is not null)
        {
            await _accessLog.DisposeAsync().ConfigureAwait(false);
        }
        if (_spans is not null)
        {
            await _spans.DisposeAsync().ConfigureAwait(false);
        }
    }

    public ValueTask DisposeAsync() => new(StopAsync(TimeSpan.Zero));

    internal static IPEndPoint ParseEndPoint(string address)
    {
        if (!Addresses.TryParseListener(address, out var host, out var port, out var error))
        {
            throw new ArgumentException($"Invalid address '{address}': {error}");
        }
        if (host is "*" or "")
        {
            return new IPEndPoint(IPAddress.Any, port);
        }
        if (host == "localhost")
        {
            return new IPEndPoint(IPAddress.Loopback, port);
        }
        if (IPAddress.TryParse(host.Trim('[', ']'), out var ip))
        {
            return new IPEndPoint(ip, port);
        }
        var resolved = Dns.GetHostAddresses(host);
        return new IPEndPoint(resolved[0], port);
    }
}

/// <summary>An HTTP/1.1 server for one application on one address: the mock upstream.</summary>
internal sealed class SimpleHttpServer : IAsyncDisposable
{
    private readonly ConnectionServer _server;

    private SimpleHttpServer(ConnectionServer server, IPEndPoint endPoint)
    {
        _server = server;
        EndPoint = endPoint;
    }

    public IPEndPoint EndPoint { get; }

    public static SimpleHttpServer Start(IPEndPoint endPoint, IHttpApplication application)
    {
        ConnectionServer? server = null;
        server = new ConnectionServer(async connection =>
        {
            var http1 = new Http1Connection(connection, application, Http1ConnectionOptions.Default, server!.Stopping);
            await http1.RunAsync().ConfigureAwait(false);
        }, (message, e) => Log.Warn($"mock {message}: {e.Message}"));
        var listener = SocketConnectionListener.Bind(endPoint);
        server.Start(listener);
        return new SimpleHttpServer(server, (IPEndPoint)listener.EndPoint);
    }

    public Task StopAsync(TimeSpan drain) => _server.StopAsync(drain);

    public ValueTask DisposeAsync() => new(StopAsync(TimeSpan.Zero));
}
