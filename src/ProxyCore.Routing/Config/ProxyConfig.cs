using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace ProxyCore.Routing.Config;

// The user-facing configuration: what the operator writes, validated by ProxyConfigLoader and
// never mutated afterwards (by convention: the setters are plain `set` because the System.Text.Json
// source generator binds init-only properties through the object initialiser and would reset an
// absent property to default(T), losing the defaults below). Defaults live in the property initialisers so that a property absent
// from the JSON keeps them, and ToRedactedJson shows the effective value. See Model/README.md.

/// <summary>The whole configuration file.</summary>
public sealed class ProxyConfig
{
    public IReadOnlyList<ListenerConfig> Listeners { get; set; } = [];

    /// <summary>Admin endpoints; on by default at 127.0.0.1:9901, off with <c>"enabled": false</c>.</summary>
    public AdminConfig Admin { get; set; } = new();

    public IReadOnlyList<RouteConfig> Routes { get; set; } = [];

    public IReadOnlyList<ClusterConfig> Clusters { get; set; } = [];

    public LimitsConfig Limits { get; set; } = new();

    public TimeoutsConfig Timeouts { get; set; } = new();

    public ForwardingConfig Forwarding { get; set; } = new();

    public AccessLogConfig AccessLog { get; set; } = new();

    /// <summary>W3C trace context and span export. Absent: traceparent is still propagated (and created when absent); nothing is exported.</summary>
    public TracingConfig Tracing { get; set; } = new();

    /// <summary>How sockets are driven (read once at start, not on reload). Absent: the .NET sockets engine with its defaults.</summary>
    public TransportConfig Transport { get; set; } = new();

    /// <summary>
    /// The config-less sidecar mode (<c>proxycore --listen ADDR --upstream URL</c>): one listener,
    /// one route "default" matching every path (prefix "/"), one cluster "default" with one
    /// destination. Validate the result with <see cref="ProxyConfigLoader.Validate"/> like any other.
    /// </summary>
    public static ProxyConfig ForUpstream(string listen, string upstreamUrl) => new()
    {
        Listeners = [new ListenerConfig { Address = listen }],
        Routes = [new RouteConfig { Id = "default", Match = new RouteMatchConfig { Path = "/", PathType = "prefix" }, Cluster = "default" }],
        Clusters = [new ClusterConfig { Id = "default", Destinations = [new DestinationConfig { Address = upstreamUrl }] }],
    };
}

public sealed class ListenerConfig
{
    /// <summary>"host:port" — an IP literal ("[::1]:8080" for IPv6), "*" or "localhost". Port 0 picks a free port.</summary>
    public string Address { get; set; } = "";

    /// <summary>"http1" and/or "http2" (h2 by ALPN with TLS, h2c by preface without).</summary>
    public IReadOnlyList<string> Protocols { get; set; } = ["http1", "http2"];

    public TlsConfig? Tls { get; set; }
}

/// <summary>
/// TLS termination on a listener. The simple form is one certificate (<see cref="Certificate"/> and
/// <see cref="Key"/>); <see cref="Certificates"/> adds more, chosen by the SNI host name the client
/// sends. ALPN offers "h2" and/or "http/1.1" as the listener's protocols allow.
/// </summary>
public sealed class TlsConfig
{
    /// <summary>PEM certificate (chain) file: leaf first, then intermediates. The default certificate; optional when <see cref="Certificates"/> is given (its first entry is then the default).</summary>
    public string Certificate { get; set; } = "";

    /// <summary>PEM private key file (PKCS#8, RSA or EC; unencrypted) of <see cref="Certificate"/>.</summary>
    public string Key { get; set; } = "";

    /// <summary>Further certificates, each for the SNI host names it lists. Empty: one certificate for every name.</summary>
    public IReadOnlyList<TlsCertificateConfig> Certificates { get; set; } = [];

    /// <summary>Time from accept to a finished handshake; default 10s, then the connection is closed.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Oldest TLS version accepted: "1.2" (default) or "1.3".</summary>
    public string MinVersion { get; set; } = "1.2";
}

/// <summary>One SNI certificate of a TLS listener.</summary>
public sealed class TlsCertificateConfig
{
    /// <summary>PEM certificate (chain) file.</summary>
    public string Certificate { get; set; } = "";

    /// <summary>PEM private key file.</summary>
    public string Key { get; set; } = "";

    /// <summary>Host names served with this certificate: exact ("a.example") or wildcard ("*.b.example", any depth).</summary>
    public IReadOnlyList<string> Hosts { get; set; } = [];
}

/// <summary>TLS to a cluster's https:// destinations. Absent: verify against the system trust store with each destination's host as SNI.</summary>
public sealed class UpstreamTlsConfig
{
    /// <summary>SNI sent and name the certificate must carry; default each destination's host.</summary>
    public string? ServerName { get; set; }

    /// <summary>PEM file of CA certificates to trust instead of the system store (a private CA, self-signed certificates).</summary>
    public string? CaFile { get; set; }

    /// <summary>Accept any certificate, unverified. Dangerous: anyone between the proxy and the upstream can read and change the traffic. Default false.</summary>
    public bool InsecureSkipVerify { get; set; }
}

public sealed class AdminConfig
{
    /// <summary>
    /// Default true. The admin listener exposes /config and /metrics, so it binds loopback by
    /// default; turning it off is explicit (<c>"enabled": false</c>) rather than by omission, so a
    /// missing block never hides the health endpoints by accident.
    /// </summary>
    public bool Enabled { get; set; } = true;

    public string Address { get; set; } = "127.0.0.1:9901";
}

public sealed class RouteConfig
{
    public string Id { get; set; } = "";

    public RouteMatchConfig Match { get; set; } = new();

    /// <summary>Id of the cluster requests are sent to.</summary>
    public string Cluster { get; set; } = "";

    /// <summary>Upstream response timeout for this route (answer 504 when it passes); default <see cref="TimeoutsConfig.Upstream"/>.</summary>
    [JsonConverter(typeof(NullableDurationJsonConverter))]
    public TimeSpan? Timeout { get; set; }

    /// <summary>Who may use the route: API keys and/or JWT bearer tokens. Absent: open.</summary>
    public AuthConfig? Auth { get; set; }

    /// <summary>A token bucket per client key. Absent: no limit.</summary>
    public RateLimitConfig? RateLimit { get; set; }

    /// <summary>Retries on another attempt when that is safe. Absent: no retries.</summary>
    public RetryConfig? Retry { get; set; }

    /// <summary>
    /// Traffic split between clusters (canary, blue/green, A/B). Entries with `when` take the requests
    /// they match; the rest are shared by weight among the entries without it. Absent: all to `cluster`.
    /// </summary>
    public IReadOnlyList<SplitConfig>? Split { get; set; }

    /// <summary>Keeps a client on one side of a weighted split: "header:NAME" or "cookie:NAME" (hashed). Absent: random per request.</summary>
    public string? Sticky { get; set; }

    /// <summary>Rewrites of the forwarded request (path, Host, headers) and of the relayed response's headers. Absent: none.</summary>
    public TransformsConfig? Transforms { get; set; }

    /// <summary>Makes the route an LLM gateway route (DESIGN.md "LLM config"). Absent: a plain proxy route.</summary>
    public LlmConfig? Llm { get; set; }

    /// <summary>gzip / Brotli of the relayed response when the client accepts it and the upstream did not compress. Absent: off.</summary>
    public CompressionConfig? Compression { get; set; }

    /// <summary>Copies a share of the route's bodyless requests to a shadow cluster, answers dropped. Absent: off.</summary>
    public MirrorConfig? Mirror { get; set; }
}

/// <summary>
/// Response compression. The proxy compresses an upstream answer on the fly (chunk by chunk, never
/// buffered whole) when the client's Accept-Encoding takes br or gzip, the upstream sent no
/// Content-Encoding, the type is listed, and the body is not known to be smaller than minBytes.
/// </summary>
public sealed class CompressionConfig
{
    /// <summary>The default compressible types: text, JSON, JavaScript, XML and SVG (a `type/*` entry matches the whole type).</summary>
    public static readonly string[] DefaultContentTypes =
    [
        "text/*", "application/json", "application/javascript", "application/xml", "application/xhtml+xml",
        "application/rss+xml", "application/atom+xml", "application/problem+json", "application/x-ndjson",
        "application/manifest+json", "application/wasm", "image/svg+xml",
    ];

    /// <summary>Offer gzip (RFC 9110 §8.4.1.3); default true.</summary>
    public bool Gzip { get; set; } = true;

    /// <summary>Offer Brotli (RFC 7932, coding "br"); default true. Preferred over gzip when the client weighs them equally.</summary>
    public bool Brotli { get; set; } = true;

    /// <summary>Bodies with a Content-Length below this stay as they are; default 1KB. Unknown length (chunked): compressed.</summary>
    [JsonConverter(typeof(SizeJsonConverter))]
    public long MinBytes { get; set; } = 1024;

    /// <summary>Media types compressed ("type/subtype", or "type/*"); default <see cref="DefaultContentTypes"/>.</summary>
    public IReadOnlyList<string> ContentTypes { get; set; } = DefaultContentTypes;

    /// <summary>"fastest" (default: gzip level 1, Brotli quality 1), "optimal" (gzip 6, Brotli 5) or "smallest" (gzip 9, Brotli 11: slow).</summary>
    public string Level { get; set; } = "fastest";
}

/// <summary>
/// Traffic mirroring (shadowing): a sampled share of the route's requests is also sent to another
/// cluster; its answers are read and dropped. The mirror never delays or fails the client's request.
/// Only requests without a body are mirrored (a body is streamed once to the primary, never kept).
/// </summary>
public sealed class MirrorConfig
{
    /// <summary>The shadow cluster's id.</summary>
    public string Cluster { get; set; } = "";

    /// <summary>Share of requests mirrored, 0–100 (fractions allowed); default 100.</summary>
    public double Percent { get; set; } = 100;

    /// <summary>A mirrored exchange is abandoned after this long; default 5s.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Mirrored requests in flight at once for this route; beyond it a request is not mirrored (counted as dropped). Default 64.</summary>
    public int MaxInFlight { get; set; } = 64;
}

public sealed class SplitConfig
{
    public string Cluster { get; set; } = "";

    /// <summary>Relative share among the entries without `when`; default 1, 0 = none.</summary>
    public int Weight { get; set; } = 1;

    /// <summary>A/B: requests with this header or cookie (value, or just present) go to this cluster.</summary>
    public SplitWhenConfig? When { get; set; }
}

public sealed class SplitWhenConfig
{
    public string? Header { get; set; }

    public string? Cookie { get; set; }

    /// <summary>Exact value to match; absent: the header or cookie only has to be present.</summary>
    public string? Value { get; set; }
}

/// <summary>
/// When to try again. A retry happens only when it cannot duplicate work: nothing reached the
/// upstream (a connect failure), or the method is idempotent and the request has no body (a body is
/// streamed, never buffered, so it cannot be sent twice).
/// </summary>
public sealed class RetryConfig
{
    /// <summary>Retries after the first try; default 2.</summary>
    public int Attempts { get; set; } = 2;

    /// <summary>Conditions: "connect-failure", "timeout", "reset" (closed before an answer) and status codes such as 502, 503.</summary>
    public IReadOnlyList<JsonElement> On { get; set; } = [];

    /// <summary>Time to the response head for each try; default the route's timeout.</summary>
    [JsonConverter(typeof(NullableDurationJsonConverter))]
    public TimeSpan? PerTryTimeout { get; set; }

    /// <summary>First backoff (doubling per retry, full jitter); default 25ms.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan Backoff { get; set; } = TimeSpan.FromMilliseconds(25);

    /// <summary>Largest backoff; default 250ms.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Retries in flight may be at most this share of the cluster's requests in flight (as Envoy's retry budget); default 20.</summary>
    public int BudgetPercent { get; set; } = 20;

    /// <summary>Retries always allowed in flight whatever the budget says (so a quiet cluster can retry at all); default 3.</summary>
    public int MinRetryConcurrency { get; set; } = 3;
}


/// <summary>
/// Route transforms, applied in a fixed order whatever the order in the file: request headers
/// remove → set → add, then the path stripPrefix → pathRegex → addPrefix; response headers remove
/// → set → add. Header values may use {client_ip}, {consumer} (request only) and {route}.
/// </summary>
public sealed class TransformsConfig
{
    /// <summary>Removed from the path when it starts with it at a segment boundary ("/api": "/api/x" → "/x", "/api" → "/").</summary>
    public string? StripPrefix { get; set; }

    /// <summary>Put before the path ("/v1": "/x" → "/v1/x"), after stripPrefix and pathRegex.</summary>
    public string? AddPrefix { get; set; }

    /// <summary>Regex rewrite of the path (first match replaced; a path that does not match is left as it is).</summary>
    public PathRegexConfig? PathRegex { get; set; }

    /// <summary>Host sent upstream ("host[:port]"); wins over forwarding.preserveHost. X-Forwarded-Host keeps the client's.</summary>
    public string? Host { get; set; }

    /// <summary>Request headers set to these values (any the client sent with that name are replaced).</summary>
    public IReadOnlyDictionary<string, string> SetRequestHeaders { get; set; } = new Dictionary<string, string>();

    /// <summary>Request headers appended (any the client sent are kept).</summary>
    public IReadOnlyDictionary<string, string> AddRequestHeaders { get; set; } = new Dictionary<string, string>();

    /// <summary>Request header names removed before forwarding.</summary>
    public IReadOnlyList<string> RemoveRequestHeaders { get; set; } = [];

    /// <summary>Response headers set to these values (the upstream's are replaced).</summary>
    public IReadOnlyDictionary<string, string> SetResponseHeaders { get; set; } = new Dictionary<string, string>();

    /// <summary>Response headers appended.</summary>
    public IReadOnlyDictionary<string, string> AddResponseHeaders { get; set; } = new Dictionary<string, string>();

    /// <summary>Response header names removed before the answer reaches the client.</summary>
    public IReadOnlyList<string> RemoveResponseHeaders { get; set; } = [];
}

public sealed class PathRegexConfig
{
    /// <summary>
    /// Linear-time matching on every path: <see cref="RegexOptions.NonBacktracking"/> cannot backtrack
    /// catastrophically (so no lookarounds, backreferences or atomic groups), and the match timeout
    /// is a second guard should that ever change.
    /// </summary>
    public const RegexOptions Options = RegexOptions.CultureInvariant | RegexOptions.NonBacktracking;

    /// <summary>Longest a single path match may take before the request is answered 500 (paths are at most a few KB).</summary>
    public static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(50);

    /// <summary>.NET regular expression matched against the path (without the query).</summary>
    public string Pattern { get; set; } = "";

    /// <summary>Replacement for the first match; $1 / ${name} insert groups.</summary>
    public string Replacement { get; set; } = "";

    /// <summary>Compiles <see cref="Pattern"/> as every snapshot does (once, never per request).</summary>
    /// <exception cref="ArgumentException">The pattern does not parse.</exception>
    /// <exception cref="NotSupportedException">The pattern needs backtracking.</exception>
    public Regex Compile() => new(Pattern, Options, MatchTimeout);
}

/// <summary>Route authentication. With both API keys and JWT configured, either one admits a request.</summary>
public sealed class AuthConfig
{
    /// <summary>Accepted keys, each naming its consumer. Values may be "env:NAME".</summary>
    public IReadOnlyList<ApiKeyConfig> ApiKeys { get; set; } = [];

    /// <summary>Request header carrying the API key; default "x-api-key".</summary>
    public string Header { get; set; } = "x-api-key";

    /// <summary>Query parameter that may carry the API key instead (off when absent: keys in URLs end up in logs).</summary>
    public string? Query { get; set; }

    /// <summary>JWT bearer tokens in Authorization.</summary>
    public JwtConfig? Jwt { get; set; }

    /// <summary>Header set on the forwarded request to the authenticated consumer (any client-sent value is removed); default "x-consumer".</summary>
    public string ConsumerHeader { get; set; } = "x-consumer";

    /// <summary>Consumers admitted to this route; others are authenticated but refused with 403. Absent: every valid consumer.</summary>
    public IReadOnlyList<string>? Allow { get; set; }
}

public sealed class ApiKeyConfig
{
    public string Consumer { get; set; } = "";

    public string Key { get; set; } = "";
}

public sealed class JwtConfig
{
    /// <summary>Required `iss`; absent: any issuer.</summary>
    public string? Issuer { get; set; }

    /// <summary>Required `aud` (string or one of the array); absent: any audience.</summary>
    public string? Audience { get; set; }

    /// <summary>Path of a JWKS file (RFC 7517) holding the verification keys (this or <see cref="PublicKey"/>).</summary>
    public string Jwks { get; set; } = "";

    /// <summary>One verification key inline as PEM (SubjectPublicKeyInfo, RSA public key or certificate); may be "env:NAME".</summary>
    public string? PublicKey { get; set; }

    /// <summary>Tolerance for `exp`/`nbf`; default 60s.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Claim that names the consumer; default "sub".</summary>
    public string ConsumerClaim { get; set; } = "sub";
}

public sealed class RateLimitConfig
{
    /// <summary>Sustained rate per key.</summary>
    public double RequestsPerSecond { get; set; }

    /// <summary>Requests a key may make at once after being idle; default = requestsPerSecond (at least 1).</summary>
    public int? Burst { get; set; }

    /// <summary>What a key is: "client-ip" (default), "consumer", "header:NAME" or "claim:NAME".</summary>
    public string By { get; set; } = "client-ip";

    /// <summary>Distinct keys tracked at once (memory is fixed at 16 bytes each); default 100000.</summary>
    public int MaxKeys { get; set; } = 100_000;
}

public sealed class RouteMatchConfig
{
    /// <summary>Exact hosts ("api.example.com") or wildcards ("*.example.com"); empty = any host.</summary>
    public IReadOnlyList<string> Hosts { get; set; } = [];

    /// <summary>Raw path bytes, case-sensitive, starting with '/'. Absent = "/" as a prefix (every path).</summary>
    public string? Path { get; set; }

    /// <summary>"prefix" or "exact"; default: prefix when <see cref="Path"/> ends with '/', else exact.</summary>
    public string? PathType { get; set; }

    /// <summary>Case-sensitive method tokens (RFC 9110 §9.1); empty = any method.</summary>
    public IReadOnlyList<string> Methods { get; set; } = [];

    public IReadOnlyList<HeaderMatchConfig> Headers { get; set; } = [];
}

public sealed class HeaderMatchConfig
{
    /// <summary>Header field name, matched ignoring ASCII case.</summary>
    public string Name { get; set; } = "";

    /// <summary>Value to compare (case-sensitive); not used with mode "present".</summary>
    public string? Value { get; set; }

    /// <summary>"exact" (default), "prefix" or "present".</summary>
    public string Mode { get; set; } = "exact";
}

public sealed class ClusterConfig
{
    public string Id { get; set; } = "";

    /// <summary>"round-robin" (default), "weighted-round-robin", "least-requests", "power-of-two", "random".</summary>
    public string LoadBalancing { get; set; } = "round-robin";

    public IReadOnlyList<DestinationConfig> Destinations { get; set; } = [];

    /// <summary>Upstream TCP connect timeout; default 5s (then 502).</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a pooled upstream connection may sit idle; default 60s.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Idle pooled connections kept per destination; default 64. 0 disables pooling.</summary>
    public int MaxIdleConnectionsPerDestination { get; set; } = 64;

    /// <summary>
    /// How the relay speaks to the destinations: "http1" (default: HTTP/1.1, one request per pooled
    /// connection) or "http2" (multiplexed HTTP/2; h2c by prior knowledge for http:// destinations).
    /// </summary>
    public string Protocol { get; set; } = "http1";

    /// <summary>HTTP/2 upstream tuning (only with protocol "http2"). Absent: the defaults.</summary>
    public Http2UpstreamConfig? Http2 { get; set; }

    /// <summary>Limits that answer 503 at once instead of queueing work the cluster cannot take. Absent: none.</summary>
    public CircuitBreakerConfig? CircuitBreaker { get; set; }

    /// <summary>Active probes of each destination. Absent: destinations are never probed (they stay healthy).</summary>
    public HealthCheckConfig? HealthCheck { get; set; }

    /// <summary>Passive ejection of destinations that fail real requests. Absent: nothing is ejected.</summary>
    public OutlierDetectionConfig? OutlierDetection { get; set; }

    /// <summary>TLS settings for https:// destinations (server name, CA file). Absent: system trust, SNI = destination host.</summary>
    public UpstreamTlsConfig? Tls { get; set; }
}

/// <summary>The cluster's <c>http2</c> block: windows, connections and health of HTTP/2 upstream connections.</summary>
public sealed class Http2UpstreamConfig
{
    /// <summary>Receive window per stream (SETTINGS_INITIAL_WINDOW_SIZE); default 1MB. Bytes, or "64KB".."1GB".</summary>
    [JsonConverter(typeof(SizeJsonConverter))]
    public long StreamWindowSize { get; set; } = 1024 * 1024;

    /// <summary>Receive window of the whole connection; default 16MB.</summary>
    [JsonConverter(typeof(SizeJsonConverter))]
    public long ConnectionWindowSize { get; set; } = 16 * 1024 * 1024;

    /// <summary>Most HTTP/2 connections per destination; default 16.</summary>
    public int MaxConnectionsPerDestination { get; set; } = 16;

    /// <summary>PING a connection silent this long; default 30s. "0s" disables probing.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan PingInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Close a connection whose PING is unanswered this long; default 10s.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan PingTimeout { get; set; } = TimeSpan.FromSeconds(10);
}

public sealed class CircuitBreakerConfig
{
    /// <summary>Requests in flight to the cluster; past it, 503 with `circuit-open`. Default 1000.</summary>
    public int MaxConcurrentRequests { get; set; } = 1000;

    /// <summary>
    /// Open connections to the cluster, idle and busy, over all its destinations; a request that needs a new one
    /// past it waits as pending. Default <see cref="DefaultMaxConnections"/>. On "protocol": "http2" clusters it
    /// counts the multiplexed connections (http2.maxConnectionsPerDestination still caps each destination).
    /// </summary>
    public int? MaxConnections { get; set; }

    /// <summary>
    /// Requests waiting for a connection under <see cref="MaxConnections"/> (each at most the cluster's
    /// connectTimeout); past it, 503 `circuit-open` at once. 0: nobody waits. Default <see cref="DefaultMaxPending"/>.
    /// On HTTP/2 a request waiting for a dial in progress or for a free stream is pending too.
    /// </summary>
    public int? MaxPending { get; set; }

    /// <summary>Envoy's default for max_connections.</summary>
    public const int DefaultMaxConnections = 1024;

    /// <summary>Envoy's default for max_pending_requests.</summary>
    public const int DefaultMaxPending = 1024;
}


/// <summary>
/// Active health checks: <c>GET path</c> to every destination each interval, on its own connection.
/// A destination starts healthy; it turns unhealthy after <see cref="UnhealthyThreshold"/> failed
/// probes in a row and healthy again after <see cref="HealthyThreshold"/> good ones.
/// </summary>
public sealed class HealthCheckConfig
{
    /// <summary>Required, starts with '/'; sent after the destination's own path prefix.</summary>
    public string Path { get; set; } = "";

    /// <summary>Time between probes of one destination; default 5s. Shorter finds failures sooner and costs a connection per probe.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Connect plus response head; default 2s, must be below <see cref="Interval"/>. Over it the probe failed.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Good probes in a row that bring an unhealthy destination back; default 2.</summary>
    public int HealthyThreshold { get; set; } = 2;

    /// <summary>Failed probes in a row that take a destination out; default 3.</summary>
    public int UnhealthyThreshold { get; set; } = 3;

    /// <summary>Statuses that count as healthy: ranges and codes, comma-separated ("200-399", "200,204"); default "200-399".</summary>
    public string ExpectedStatus { get; set; } = "200-399";
}

/// <summary>
/// Passive outlier detection: a destination whose real requests fail is ejected (takes no traffic)
/// for a while, longer each time it happens again, and returns by itself when the time is up.
/// </summary>
public sealed class OutlierDetectionConfig
{
    /// <summary>Upstream failures in a row (connect errors, resets, timeouts, 5xx) that eject a destination; default 5.</summary>
    public int ConsecutiveFailures { get; set; } = 5;

    /// <summary>Base ejection time, multiplied by how many times the destination was ejected recently; default 30s.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan EjectFor { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest single ejection, however often a destination was ejected; default 300s.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan MaxEjectFor { get; set; } = TimeSpan.FromSeconds(300);

    /// <summary>Never eject more than this share of the cluster's destinations; default 50.</summary>
    public int MaxEjectionPercent { get; set; } = 50;

    /// <summary>Also eject when this percentage of requests in one window failed; absent: off.</summary>
    public int? ErrorRatePercent { get; set; }

    /// <summary>Requests a window needs before <see cref="ErrorRatePercent"/> is judged; default 20.</summary>
    public int MinRequests { get; set; } = 20;

    /// <summary>Length of the error-rate window; default 10s.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan ErrorRateWindow { get; set; } = TimeSpan.FromSeconds(10);
}

public sealed class DestinationConfig
{
    /// <summary>"http://host:port[/path-prefix]" or "https://…" (TLS; see <see cref="ClusterConfig.Tls"/>).</summary>
    public string Address { get; set; } = "";

    /// <summary>Relative share under weighted-round-robin (other policies ignore it); default 1, 0 = takes no traffic.</summary>
    public int Weight { get; set; } = 1;
}

public sealed class LimitsConfig
{
    /// <summary>Longest request line (method, target, version); default 8KB (then 414).</summary>
    [JsonConverter(typeof(SizeJsonConverter))]
    public long MaxRequestLineBytes { get; set; } = 8 * 1024;

    /// <summary>All header fields together; default 32KB (then 431).</summary>
    [JsonConverter(typeof(SizeJsonConverter))]
    public long MaxHeaderBytes { get; set; } = 32 * 1024;

    /// <summary>Header field count; default 100 (then 431).</summary>
    public int MaxHeaderCount { get; set; } = 100;

    /// <summary>
    /// Largest request body; 0 = unlimited. Default 32MB: bodies are streamed, never buffered, so the
    /// limit protects upstreams rather than our memory. nginx's 1m default breaks ordinary uploads
    /// and LLM requests carrying base64 images (providers accept 20MB images); YARP's "no limit"
    /// lets one client tie up an upstream indefinitely. 32MB fits both with headroom.
    /// </summary>
    [JsonConverter(typeof(SizeJsonConverter))]
    public long MaxRequestBodyBytes { get; set; } = 32 * 1024 * 1024;

    /// <summary>Time allowed to receive a full request head; default 10s (then 408). Bounds slowloris.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan HeaderReadTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long an idle client connection stays open between requests; default 60s.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Open client connections per process; default 10000, 0 = unlimited (bounded only by file descriptors).</summary>
    public int MaxConnections { get; set; } = 10_000;

    /// <summary>HTTP/2 client connections: streams, windows and abuse budgets (defaults as Http2ConnectionOptions).</summary>
    public Http2LimitsConfig Http2 { get; set; } = new();
}

/// <summary>
/// <c>limits.http2</c>: the HTTP/2 server side's knobs. The idle timeout is <c>limits.keepAliveTimeout</c>
/// and the header list size <c>limits.maxHeaderBytes</c>, as for HTTP/1.1.
/// </summary>
public sealed class Http2LimitsConfig
{
    /// <summary>SETTINGS_MAX_CONCURRENT_STREAMS; default 100.</summary>
    public int MaxConcurrentStreams { get; set; } = 100;

    /// <summary>Per-stream receive window for request bodies; default 65535 (64 KiB, the protocol's own).</summary>
    [JsonConverter(typeof(SizeJsonConverter))]
    public long InitialStreamWindowSize { get; set; } = 65_535;

    /// <summary>Connection receive window; default 1MB.</summary>
    [JsonConverter(typeof(SizeJsonConverter))]
    public long ConnectionWindowSize { get; set; } = 1024 * 1024;

    /// <summary>SETTINGS_HEADER_TABLE_SIZE (HPACK dynamic table the client may fill); default 4KB.</summary>
    [JsonConverter(typeof(SizeJsonConverter))]
    public long HeaderTableSize { get; set; } = 4096;

    /// <summary>HEADERS + CONTINUATION frames one field block may span; default 64.</summary>
    public int MaxHeaderBlockFrames { get; set; } = 64;

    /// <summary>Streams cancelled (or refused) before their response completed, per rapidResetWindow; default 200.</summary>
    public int MaxRapidResets { get; set; } = 200;

    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan RapidResetWindow { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Frames that make us work without serving a request (PING, SETTINGS, PRIORITY, empty DATA, ...), per controlFrameWindow; default 5000.</summary>
    public int MaxControlFrames { get; set; } = 5000;

    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan ControlFrameWindow { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a response may wait on a shut flow-control window or an unread socket; default 30s.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan StallTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

public sealed class TimeoutsConfig
{
    /// <summary>Default upstream response timeout (routes may override); default 60s.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan Upstream { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>On SIGTERM, how long in-flight requests may finish; default 30s.</summary>
    [JsonConverter(typeof(DurationJsonConverter))]
    public TimeSpan Drain { get; set; } = TimeSpan.FromSeconds(30);
}

public sealed class ForwardingConfig
{
    /// <summary>Add X-Forwarded-For/-Proto/-Host; default true.</summary>
    public bool XForwarded { get; set; } = true;

    /// <summary>Add the RFC 7239 Forwarded header; default false (most upstreams read X-Forwarded-*).</summary>
    public bool Forwarded { get; set; }

    /// <summary>Add Via (RFC 9110 §7.6.3); default true.</summary>
    public bool Via { get; set; } = true;

    /// <summary>Keep the client's Host header (default true); false sends the destination's host:port. A route's transforms.host wins over both.</summary>
    public bool PreserveHost { get; set; } = true;
}

public sealed class TracingConfig
{
    /// <summary>Propagate / create `traceparent` on forwarded requests; default true.</summary>
    public bool Propagate { get; set; } = true;

    /// <summary>OTLP/HTTP JSON traces endpoint, e.g. "http://127.0.0.1:4318/v1/traces". Absent: no export.</summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>`service.name` of exported spans; default "proxycore".</summary>
    public string ServiceName { get; set; } = "proxycore";
}

public sealed class TransportConfig
{
    /// <summary>
    /// "epoll" (the default on Linux: our own edge-triggered reactors, the app runs on the reactor thread) or
    /// "sockets" (System.Net.Sockets; the default elsewhere). The load rig measured epoll at 21.0 CPU µs per
    /// proxied request against 32.5 for sockets (perf-results/2026-12-01-load-h1-bd19379*.md).
    /// </summary>
    public string Engine { get; set; } = DefaultEngine;

    /// <summary>The engine used when the config names none.</summary>
    public static string DefaultEngine => OperatingSystem.IsLinux() ? "epoll" : "sockets";

    /// <summary>epoll engine: reactor threads, each with its own epoll instance. 0 (default) = one per processor.</summary>
    public int Reactors { get; set; }

    /// <summary>
    /// sockets engine: run socket completions and the app's continuations on the runtime's epoll threads
    /// (sets DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 at process start). Default false.
    /// </summary>
    public bool InlineCompletions { get; set; }

    /// <summary>Wait for data before renting a receive buffer, so idle connections hold none. Default true.</summary>
    public bool WaitForData { get; set; } = true;

    /// <summary>
    /// epoll engine: flushes made during one reactor batch are sent together at its end (fewer wake-ups of the
    /// peers, head and body in one writev). Default true; false sends each flush at once.
    /// </summary>
    public bool BatchSends { get; set; } = true;
}

public sealed class AccessLogConfig
{
    public bool Enabled { get; set; }

    /// <summary>File to append to; null = stdout.</summary>
    public string? Path { get; set; }
}
