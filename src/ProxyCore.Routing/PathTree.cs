using System.Diagnostics;
using ProxyCore.Http;
using ProxyCore.Routing.Model;

namespace ProxyCore.Routing;

/// <summary>
/// The routes of one host bucket in a radix tree over raw path bytes. Why a radix tree rather than
/// hashing each '/'-bounded prefix: prefixes are raw bytes (as nginx), so "/v1" is a prefix of
/// "/v1beta", which segment hashing cannot see; and a walk reads each path byte once, while
/// hashing every boundary prefix rereads them. A match walks down at most one node per path byte
/// (fewer: edges hold whole runs), so its cost depends on the path, not on the number of routes;
/// children are found by binary search over at most 256 first bytes.
/// Every route path ends exactly at a node (inserts split edges), so a node holds the routes that
/// end there: exact ones, and prefix ones with a link to the nearest shallower node with prefix
/// routes, which is where a failed method/header check falls back to.
/// </summary>
internal sealed class PathTree
{
    private readonly Node _root = new([]);

    public void Add(RouteModel route)
    {
        var node = Insert(route.PathBytes);
        (route.PathKind == PathMatchKind.Exact ? node.ExactList : node.PrefixList).Add(route);
    }

    /// <summary>Sorts candidates and links prefix fallbacks; call once after the last <see cref="Add"/>.</summary>
    public void Freeze() => Freeze(_root, null);

    public RouteModel? Match(ReadOnlySpan<byte> path, RequestHead request, ref int visited)
    {
        var node = _root;
        Node? deepestPrefix = node.Prefix.Length > 0 ? node : null;
        int pos = 0;
        visited++;
        while (pos < path.Length)
        {
            var child = node.FindChild(path[pos]);
            if (child is null || !path[pos..].StartsWith(child.Label))
            {
                break;
            }
            pos += child.Label.Length;
            node = child;
            visited++;
            if (node.Prefix.Length > 0)
            {
                deepestPrefix = node;
            }
        }
        // Exact beats prefix at the same length; a longer prefix beats a shorter one.
        if (pos == path.Length && node.Exact.Length > 0 && FirstMatch(node.Exact, request) is { } exact)
        {
            return exact;
        }
        for (var p = deepestPrefix; p is not null; p = p.PrefixFallback)
        {
            if (FirstMatch(p.Prefix, request) is { } prefix)
            {
                return prefix;
            }
        }
        return null;
    }

    private static RouteModel? FirstMatch(RouteModel[] candidates, RequestHead request)
    {
        foreach (var route in candidates)
        {
            if (route.MatchesMethodAndHeaders(request))
            {
                return route;
            }
        }
        return null;
    }

    private Node Insert(ReadOnlySpan<byte> path)
    {
        var node = _root;
        int pos = 0;
        while (pos < path.Length)
        {
            var child = node.FindChild(path[pos]);
            if (child is null)
            {
                var leaf = new Node(path[pos..].ToArray());
                node.AddChild(leaf);
                return leaf;
            }
            int common = path[pos..].CommonPrefixLength(child.Label);
            if (common < child.Label.Length)
            {
                child = node.Split(child, common);
            }
            pos += common;
            node = child;
        }
        return node;
    }

    private static void Freeze(Node node, Node? nearestPrefix)
    {
        node.Exact = Sorted(node.ExactList);
        node.Prefix = Sorted(node.PrefixList);
        node.PrefixFallback = nearestPrefix;
        var next = node.Prefix.Length > 0 ? node : nearestPrefix;
        foreach (var child in node.Children)
        {
            Freeze(child, next);
        }
    }

    /// <summary>
    /// Among routes with the same host and path: header conditions first (the most specific, e.g. a
    /// canary header), then method-specific before any-method, then declaration order.
    /// </summary>
    private static RouteModel[] Sorted(List<RouteModel> routes)
    {
        var array = routes.ToArray();
        Array.Sort(array, static (a, b) =>
        {
            int c = (b.Headers.Length > 0).CompareTo(a.Headers.Length > 0);
            if (c == 0)
            {
                c = b.HasMethods.CompareTo(a.HasMethods);
            }
            return c != 0 ? c : a.Order.CompareTo(b.Order);
        });
        return array;
    }

    private sealed class Node(byte[] label)
    {
        private byte[] _firstBytes = [];

        public byte[] Label { get; set; } = label;

        public Node[] Children { get; private set; } = [];

        public List<RouteModel> ExactList { get; } = [];

        public List<RouteModel> PrefixList { get; } = [];

        public RouteModel[] Exact { get; set; } = [];

        public RouteModel[] Prefix { get; set; } = [];

        public Node? PrefixFallback { get; set; }

        public Node? FindChild(byte first)
        {
            int i = _firstBytes.AsSpan().BinarySearch(first);
            return i >= 0 ? Children[i] : null;
        }

        public void AddChild(Node child)
        {
            byte first = child.Label[0];
            int i = ~_firstBytes.AsSpan().BinarySearch(first);
            Debug.Assert(i >= 0, "a child with this first byte exists already");
            _firstBytes = [.. _firstBytes[..i], first, .. _firstBytes[i..]];
            Children = [.. Children[..i], child, .. Children[i..]];
        }

        /// <summary>Puts a new node holding the first <paramref name="at"/> bytes of <paramref name="child"/>'s label above it.</summary>
        public Node Split(Node child, int at)
        {
            var middle = new Node(child.Label[..at]);
            child.Label = child.Label[at..];
            middle.AddChild(child);
            int i = _firstBytes.AsSpan().BinarySearch(middle.Label[0]);
            Children[i] = middle;
            return middle;
        }
    }
}
