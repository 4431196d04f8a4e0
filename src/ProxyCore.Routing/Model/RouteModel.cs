using ProxyCore.Routing.Config;
using System.Text;
using ProxyCore.Http;
using HttpMethod = ProxyCore.Http.HttpMethod;

namespace ProxyCore.Routing.Model;

/// <summary>How a route's path is compared with the request path.</summary>
public enum PathMatchKind : byte
{
    /// <summary>The request path starts with the route path (raw bytes; "/api/" does not match "/api").</summary>
    Prefix,
    /// <summary>The request path equals the route path.</summary>
    Exact,
}

public enum HeaderMatchMode : byte
{
    Exact,
    Prefix,
    Present,
}

/// <summary>One header condition; name compared ignoring ASCII case, value case-sensitive.</summary>
public sealed class HeaderMatch
{
    internal HeaderMatch(string name, string? value, HeaderMatchMode mode)
    {
        Name = Encoding.ASCII.GetBytes(name);
        Value = Encoding.ASCII.GetBytes(value ?? "");
        Mode = mode;
    }

    public byte[] Name { get; }

    public byte[] Value { get; }

    public HeaderMatchMode Mode { get; }

    /// <summary>True when any field with this name satisfies the condition (repeated fields each count).</summary>
    public bool IsSatisfiedBy(RequestHead request)
    {
        var headers = request.Headers;
        for (int i = 0; i < headers.Length; i++)
        {
            if (!System.Text.Ascii.EqualsIgnoreCase(request.Get(headers[i].Name), Name))
            {
                continue;
            }
            var value = request.Get(headers[i].Value);
            bool ok = Mode switch
            {
                HeaderMatchMode.Present => true,
                HeaderMatchMode.Prefix => value.StartsWith(Value),
                _ => value.SequenceEqual(Value),
            };
            if (ok)
            {
                return true;
            }
        }
        return false;
    }
}

/// <summary>A route as one snapshot sees it: its match data, its cluster and its timeout.</summary>
public sealed class RouteModel
{
    internal RouteModel(string id, int order, ClusterModel cluster, TimeSpan timeout, string[] hosts, string path,
        PathMatchKind pathKind, string[] methods, HeaderMatch[] headers)
    {
        Id = id;
        IdUtf8 = Encoding.UTF8.GetBytes(id);
        Order = order;
        Cluster = cluster;
        Timeout = timeout;
        Hosts = hosts;
        Path = path;
        PathBytes = Encoding.ASCII.GetBytes(path);
        PathKind = pathKind;
        Methods = methods;
        Headers = headers;
        foreach (var method in methods)
        {
            var parsed = HttpMethods.Parse(Encoding.ASCII.GetBytes(method));
            if (parsed == HttpMethod.Custom)
            {
                _customMethods = [.. _customMethods, Encoding.ASCII.GetBytes(method)];
            }
            else
            {
                _methodMask |= (ushort)(1 << (int)parsed);
            }
        }
    }

    private readonly ushort _methodMask;
    private readonly byte[][] _customMethods = [];

    public string Id { get; }

    /// <summary>The route as configured (policies read their settings from it when the snapshot is prepared).</summary>
    public RouteConfig? Config { get; internal init; }

    /// <summary>The route's traffic split, or null (all to <see cref="Cluster"/>).</summary>
    public SplitModel? Split { get; internal init; }

    /// <summary>The route's retry policy, or null (no retries).</summary>
    public RetryModel? Retry { get; internal init; }

    /// <summary>True when the route has policies (auth, rate limit, transforms, compression, mirror) to run around the relay.</summary>
    public bool HasPolicies => Config is { Auth: not null } or { RateLimit: not null } or { Transforms: not null } or { Compression: not null } or { Mirror: not null };

    /// <summary>
    /// The runtime objects of the route's policies, built by the proxy layer (which owns their types)
    /// while the snapshot is prepared, before it is published; never written after.
    /// </summary>
    public object? Policies { get; set; }

    /// <summary>
    /// A terminal stage that serves the route instead of the plain relay (the LLM stage), built like
    /// <see cref="Policies"/> while the snapshot is prepared; null for plain routes.
    /// </summary>
    public object? Handler { get; set; }

    /// <summary>
    /// The route's metric series (owned by the proxy layer), attached on first use so that recording
    /// needs no lookup; shared by every snapshot that has a route of this id, so counters survive reloads.
    /// </summary>
    public object? Metrics { get; set; }

    /// <summary>The id as UTF-8, precomputed for metrics labels and logs.</summary>
    public byte[] IdUtf8 { get; }

    /// <summary>Position in the config; the route declared first wins a tie.</summary>
    public int Order { get; }

    public ClusterModel Cluster { get; }

    /// <summary>Upstream response timeout (route value or the global default).</summary>
    public TimeSpan Timeout { get; }

    /// <summary>Lower-case host patterns; empty = any host.</summary>
    public string[] Hosts { get; }

    public string Path { get; }

    public byte[] PathBytes { get; }

    public PathMatchKind PathKind { get; }

    /// <summary>Methods this route accepts; empty = any.</summary>
    public string[] Methods { get; }

    public HeaderMatch[] Headers { get; }

    public bool HasMethods => Methods.Length > 0;

    /// <summary>Method and header conditions (host and path are the route table's job).</summary>
    public bool MatchesMethodAndHeaders(RequestHead request)
    {
        if (Methods.Length > 0 && !MatchesMethod(request))
        {
            return false;
        }
        foreach (var header in Headers)
        {
            if (!header.IsSatisfiedBy(request))
            {
                return false;
            }
        }
        return true;
    }

    private bool MatchesMethod(RequestHead request)
    {
        var method = request.Method;
        if (method != HttpMethod.Custom)
        {
            return (_methodMask & (1 << (int)method)) != 0;
        }
        var bytes = request.MethodSpan;
        foreach (var custom in _customMethods)
        {
            if (bytes.SequenceEqual(custom))
            {
                return true;
            }
        }
        return false;
    }

    public override string ToString() => Id;
}
