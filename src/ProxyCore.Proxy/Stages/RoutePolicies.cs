using System.Security.Cryptography;
using System.Text;
using ProxyCore.Http;
using ProxyCore.Proxy.Stages.Auth;
using ProxyCore.Proxy.Stages.Compression;
using ProxyCore.Proxy.Stages.Mirror;
using ProxyCore.Proxy.Stages.RateLimit;
using ProxyCore.Proxy.Stages.Transforms;
using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;

namespace ProxyCore.Proxy.Stages;

/// <summary>What a policy stage decided for a request.</summary>
public enum StageStatus : byte
{
    /// <summary>Go on to the next stage, then the relay.</summary>
    Continue,
    /// <summary>Answer now with the rejection the stage filled in; the upstream never sees the request.</summary>
    Respond,
}

/// <summary>Why a request was refused: the status, the `proxycore-error` reason and what the answer carries.</summary>
public struct PolicyRejection
{
    public int Status;
    public string Reason;
    public string Message;
    public RateLimitDecision RateLimit;
    public JwtError JwtError;
}

/// <summary>
/// A route's request policies, built once per snapshot: authentication first (who is asking),
/// then the rate limit (how often they may), then the request transforms (what the upstream sees).
/// Runs synchronously before the relay and allocates nothing on the way through. The relay applies
/// the response transforms and the Host override (<see cref="Transforms"/>).
/// </summary>
public sealed class RoutePolicies
{
    private const int ClaimScratchBytes = 8 * 1024;
    private static readonly byte[] s_realm = "proxycore"u8.ToArray();

    [ThreadStatic]
    private static byte[]? t_payload;

    private readonly (byte[] Key, byte[] Consumer)[] _apiKeys;
    private readonly byte[] _keyHeader;
    private readonly byte[]? _keyQuery;
    private readonly JwtValidator? _jwt;
    private readonly byte[]? _consumerHeader;
    private readonly byte[][]? _allow;
    private readonly TokenBucketLimiter? _limiter;
    private readonly RateLimitKey _limitBy;
    private readonly byte[] _limitName;

    /// <summary>The route's transforms, or null.</summary>
    public RouteTransforms? Transforms { get; }

    /// <summary>The route's response compression, or null (the relay copies bodies as they come).</summary>
    public ResponseCompression? Compression { get; }

    /// <summary>The route's traffic mirror, or null.</summary>
    public RouteMirror? Mirror { get; }

    private RoutePolicies(RouteConfig route, TimeProvider time, ProxySnapshot snapshot)
    {
        var auth = route.Auth;
        _apiKeys = auth is null ? [] : [.. auth.ApiKeys.Select(k => (Encoding.UTF8.GetBytes(ConfigSecrets.Resolve(k.Key)!), Encoding.UTF8.GetBytes(k.Consumer)))];
        _keyHeader = Encoding.ASCII.GetBytes(auth?.Header ?? "x-api-key");
        _keyQuery = auth?.Query is { } query ? Encoding.ASCII.GetBytes(query + "=") : null;
        _consumerHeader = auth is null ? null : Encoding.ASCII.GetBytes(auth.ConsumerHeader);
        _allow = auth?.Allow is { } allow ? [.. allow.Select(Encoding.UTF8.GetBytes)] : null;
        if (auth?.Jwt is { } jwt)
        {
            JsonWebKeySet keys;
            try
            {
                keys = jwt.PublicKey is { } pem
                    ? new JsonWebKeySet([JsonWebKey.FromPem(ConfigSecrets.Resolve(pem)!)])
                    : JsonWebKeySet.Parse(File.ReadAllBytes(jwt.Jwks));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or InvalidDataException or ArgumentException or CryptographicException)
            {
                throw new InvalidOperationException($"route '{route.Id}': the auth.jwt key could not be loaded: {e.Message}", e);
            }
            _jwt = new JwtValidator(new JwtValidationOptions { Issuer = jwt.Issuer, Audience = jwt.Audience, ClockSkew = jwt.ClockSkew, ConsumerClaim = jwt.ConsumerClaim }, keys, time);
        }

        Transforms = route.Transforms is { } transforms ? new RouteTransforms(transforms, route.Id) : null;
        Compression = route.Compression is { } compression ? new ResponseCompression(compression) : null;
        Mirror = route.Mirror is { } mirror ? new RouteMirror(mirror, snapshot.Clusters[mirror.Cluster]) : null;

        _limitName = [];
        if (route.RateLimit is { } limit)
        {
            int burst = limit.Burst ?? Math.Max(1, (int)Math.Ceiling(limit.RequestsPerSecond));
            _limiter = new TokenBucketLimiter(limit.RequestsPerSecond, burst, limit.MaxKeys, time);
            (_limitBy, _limitName) = limit.By switch
            {
                "consumer" => (RateLimitKey.Consumer, Array.Empty<byte>()),
                var by when by.StartsWith("header:", StringComparison.Ordinal) => (RateLimitKey.Header, Encoding.ASCII.GetBytes(by["header:".Length..])),
                var by when by.StartsWith("claim:", StringComparison.Ordinal) => (RateLimitKey.Claim, Encoding.UTF8.GetBytes(by["claim:".Length..])),
                _ => (RateLimitKey.ClientIp, Array.Empty<byte>()),
            };
        }
    }

    /// <summary>Builds every route's policies into <see cref="RouteModel.Policies"/> before the snapshot is published.</summary>
    /// <exception cref="InvalidOperationException">A policy could not be built (an unreadable JWKS file).</exception>
    public static void Prepare(ProxySnapshot snapshot, TimeProvider time)
    {
        foreach (var route in snapshot.Routes.Routes)
        {
            if (route.HasPolicies)
            {
                route.Policies = new RoutePolicies(route.Config!, time, snapshot);
            }
        }
    }

    /// <summary>Runs authentication, the rate limit, then the request transforms. <see cref="StageStatus.Respond"/> fills <paramref name="rejection"/>.</summary>
    public StageStatus Evaluate(HttpExchange exchange, out PolicyRejection rejection)
    {
        rejection = default;
        var request = exchange.Request;
        ReadOnlySpan<byte> consumer = default;
        ReadOnlySpan<byte> claims = default;

        // Stage 1: authentication.
        if (_consumerHeader is not null)
        {
            if (!Authenticate(request, out consumer, out claims, ref rejection))
            {
                return StageStatus.Respond;
            }
            if (_allow is not null && !IsAllowed(consumer))
            {
                rejection = new PolicyRejection { Status = 403, Reason = "consumer-not-allowed", Message = "The authenticated consumer may not use this route." };
                return StageStatus.Respond;
            }
            // The upstream learns who called; a client cannot claim to be someone else by sending the header itself.
            while (request.IndexOf(_consumerHeader) is var i and >= 0)
            {
                request.RemoveHeaderAt(i);
            }
            request.AddHeader(_consumerHeader, consumer);
        }

        // Stage 2: rate limit.
        if (_limiter is not null)
        {
            ReadOnlySpan<byte> key = _limitBy switch
            {
                RateLimitKey.Consumer => consumer,
                RateLimitKey.Header => request.TryGetValue(_limitName, out var value) ? value : default,
                RateLimitKey.Claim => JwtClaims.TryGetRawValue(claims, _limitName, out var claim) ? claim : default,
                _ => exchange.ClientAddress,
            };
            var decision = _limiter.TryAcquire(key);
            if (!decision.Allowed)
            {
                rejection = new PolicyRejection { Status = 429, Reason = "rate-limited", Message = "Too many requests: slow down and retry after the time in Retry-After.", RateLimit = decision };
                return StageStatus.Respond;
            }
        }

        // Stage 3: transforms, once per request (a retried attempt reuses the rewritten head).
        if (Transforms is not null && !Transforms.ApplyRequest(request, exchange.ClientAddress, consumer))
        {
            rejection = new PolicyRejection { Status = 500, Reason = "transform-failed", Message = "The route's path rewrite took too long on this path." };
            return StageStatus.Respond;
        }
        return StageStatus.Continue;
    }

    private bool Authenticate(RequestHead request, out ReadOnlySpan<byte> consumer, out ReadOnlySpan<byte> claims, scoped ref PolicyRejection rejection)
    {
        consumer = default;
        claims = default;
        bool sawCredential = false;
        if (_apiKeys.Length > 0)
        {
            var presented = request.TryGetValue(_keyHeader, out var header) ? header : FromQuery(request.QuerySpan);
            if (!presented.IsEmpty)
            {
                sawCredential = true;
                foreach (var (key, name) in _apiKeys)
                {
                    // Constant time per candidate: timing does not reveal how much of a key matched.
                    if (CryptographicOperations.FixedTimeEquals(presented, key))
                    {
                        consumer = name;
                        return true;
                    }
                }
            }
        }
        var jwtError = JwtError.MissingToken;
        if (_jwt is not null && request.TryGetValue(KnownHeader.Authorization, out var authorization) &&
            BearerChallenge.TryGetCandidate(authorization, out var token))
        {
            // A token accepted before, byte for byte, comes back with its claims and consumer from the validator's
            // cache: no syntax scan, no copy, no JSON read. Anything else is checked in full.
            if (_jwt.TryGetCached(token, out claims, out consumer, out _))
            {
                return true;
            }
            if (BearerChallenge.IsToken68(token))
            {
                sawCredential = true;
                int needed = JwtValidator.MaxPayloadBytes(token.Length);
                var payload = t_payload is { } buffer && buffer.Length >= needed ? buffer : (t_payload = new byte[Math.Max(needed, ClaimScratchBytes)]);
                var result = _jwt.ValidateCached(token, payload, out claims, out consumer);
                if (result.IsValid)
                {
                    return true;
                }
                jwtError = result.Error;
            }
        }
        rejection = new PolicyRejection
        {
            Status = 401,
            Reason = sawCredential ? "invalid-credentials" : "missing-credentials",
            Message = sawCredential ? "The credentials presented are not valid for this route." : "This route needs credentials (an API key or a bearer token).",
            JwtError = _jwt is null ? JwtError.None : jwtError,
        };
        return false;
    }

    private bool IsAllowed(ReadOnlySpan<byte> consumer)
    {
        foreach (var name in _allow!)
        {
            if (consumer.SequenceEqual(name))
            {
                return true;
            }
        }
        return false;
    }

    private ReadOnlySpan<byte> FromQuery(ReadOnlySpan<byte> query)
    {
        if (_keyQuery is null || query.Length < 2)
        {
            return default;
        }
        foreach (var range in query[1..].Split((byte)'&'))
        {
            var pair = query[1..][range];
            if (pair.StartsWith(_keyQuery))
            {
                return pair[_keyQuery.Length..];
            }
        }
        return default;
    }

    /// <summary>Adds what a refusal carries beyond the standard error fields.</summary>
    public void AddRejectionHeaders(ResponseHead response, in PolicyRejection rejection)
    {
        Span<byte> value = stackalloc byte[BearerChallenge.MaxLength(s_realm.Length)];
        if (rejection.Status == 401)
        {
            int n = _jwt is not null
                ? BearerChallenge.Format(rejection.JwtError, s_realm, value)
                : Encoding.ASCII.GetBytes($"ApiKey realm=\"proxycore\", header=\"{Encoding.ASCII.GetString(_keyHeader)}\"", value);
            response.AddHeader(BearerChallenge.HeaderName, value[..n]);
        }
        else if (rejection.Status == 429)
        {
            var decision = rejection.RateLimit;
            response.AddHeader(RateLimitHeaders.RetryAfterName, value[..RateLimitHeaders.FormatRetryAfter(decision, value)]);
            response.AddHeader(RateLimitHeaders.LimitName, value[..RateLimitHeaders.FormatLimit(decision, value)]);
            response.AddHeader(RateLimitHeaders.RemainingName, value[..RateLimitHeaders.FormatRemaining(decision, value)]);
            response.AddHeader(RateLimitHeaders.ResetName, value[..RateLimitHeaders.FormatReset(decision, value)]);
        }
    }

    private enum RateLimitKey : byte
    {
        ClientIp,
        Consumer,
        Header,
        Claim,
    }
}
