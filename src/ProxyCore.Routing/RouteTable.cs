using ProxyCore.Http;
using ProxyCore.Routing.Model;

namespace ProxyCore.Routing;

/// <summary>
/// The immutable routing table of one snapshot. <see cref="Match"/> takes no lock and allocates
/// nothing. Order of decision:
/// 1. host, case-insensitive, port stripped: the exact host's bucket, else the wildcard buckets
///    from the longest suffix to the shortest ("*.example.com" matches "a.example.com" and
///    "a.b.example.com", not "example.com"), else the routes without hosts. A bucket that has no
///    route for the request falls through to the next one;
/// 2. path, raw bytes, case-sensitive (as nginx): exact first, then the longest prefix. A prefix
///    is plain bytes: "/api/" does not match "/api" (nginx `location /api/` does not either), and
///    "/api" matches "/apix" — write "/api/" for a segment;
/// 3. method and headers; at equal host and path, routes with header conditions come first, then
///    method-specific before any-method, then the route declared first. When no route at the
///    longest path passes, the next shorter prefix is tried.
/// </summary>
public sealed class RouteTable
{
    private readonly ByteKeyMap<PathTree> _exactHosts;
    private readonly ByteKeyMap<PathTree> _wildcardHosts;
    private readonly PathTree? _anyHost;

    public RouteTable(IReadOnlyList<RouteModel> routes)
    {
        Routes = routes;
        var exact = new Dictionary<string, PathTree>(StringComparer.OrdinalIgnoreCase);
        var wildcard = new Dictionary<string, PathTree>(StringComparer.OrdinalIgnoreCase);
        PathTree? any = null;
        foreach (var route in routes)
        {
            if (route.Hosts.Length == 0)
            {
                (any ??= new PathTree()).Add(route);
                continue;
            }
            foreach (var host in route.Hosts)
            {
                // "*.example.com" is kept as its suffix ".example.com".
                bool isWildcard = host.StartsWith("*.", StringComparison.Ordinal);
                var map = isWildcard ? wildcard : exact;
                var key = NormalizeHost(isWildcard ? host[1..] : host);
                if (!map.TryGetValue(key, out var tree))
                {
                    map[key] = tree = new PathTree();
                }
                tree.Add(route);
            }
        }
        foreach (var tree in exact.Values)
        {
            tree.Freeze();
        }
        foreach (var tree in wildcard.Values)
        {
            tree.Freeze();
        }
        any?.Freeze();
        _exactHosts = new ByteKeyMap<PathTree>(exact);
        _wildcardHosts = new ByteKeyMap<PathTree>(wildcard);
        _anyHost = any;
    }

    /// <summary>All routes in declaration order.</summary>
    public IReadOnlyList<RouteModel> Routes { get; }

    /// <summary>The route for this request, or null (404).</summary>
    public RouteModel? Match(RequestHead request)
    {
        int visited = 0;
        return Match(request, ref visited);
    }

    /// <summary><see cref="Match(RequestHead)"/>, counting path-tree nodes visited (for cost tests).</summary>
    internal RouteModel? Match(RequestHead request, ref int visited)
    {
        var path = request.PathSpan;
        if (path.IsEmpty)
        {
            // RFC 9112 §3.2.1: "If the target URI's path component is empty, the client MUST send
            // "/" as the path"; an absolute-form "http://h" arrives here empty and means "/".
            path = "/"u8;
        }
        var host = request.HostSpan;
        if (host.Length > 0 && host[^1] == (byte)'.')
        {
            host = host[..^1]; // "example.com." is the same name, fully qualified
        }
        if (host.Length > 0)
        {
            if (_exactHosts.Find(host)?.Match(path, request, ref visited) is { } exact)
            {
                return exact;
            }
            // Leftmost dot first = longest suffix first; a suffix needs at least one label before it.
            for (int i = 1; _wildcardHosts.Count > 0 && i < host.Length; i++)
            {
                if (host[i] == (byte)'.' && _wildcardHosts.Find(host[i..])?.Match(path, request, ref visited) is { } wild)
                {
                    return wild;
                }
            }
        }
        return _anyHost?.Match(path, request, ref visited);
    }

    private static string NormalizeHost(string host) => host.TrimEnd('.').ToLowerInvariant();
}
