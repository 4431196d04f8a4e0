using System.Text;
using ProxyCore.Http;
using ProxyCore.Routing.Config;

namespace ProxyCore.Routing.Model;

/// <summary>
/// A route's traffic split, decoded once per snapshot: conditional entries (A/B by header or
/// cookie) first, then a weighted choice among the rest — random per request, or by a hash of a
/// header or cookie so one client stays on one side (sticky). No allocation per request.
/// </summary>
public sealed class SplitModel
{
    private readonly Conditional[] _conditional;
    private readonly ClusterModel[] _weighted;
    private readonly int[] _cumulative;
    private readonly int _total;
    private readonly byte[]? _stickyHeader;
    private readonly byte[]? _stickyCookie;

    internal SplitModel(IReadOnlyList<SplitConfig> split, string? sticky, IReadOnlyDictionary<string, ClusterModel> clusters)
    {
        var conditional = new List<Conditional>();
        var weighted = new List<ClusterModel>();
        var cumulative = new List<int>();
        foreach (var entry in split)
        {
            var cluster = clusters[entry.Cluster];
            if (entry.When is { } when)
            {
                conditional.Add(new Conditional(cluster, when.Header is { } h ? Encoding.ASCII.GetBytes(h) : null,
                    when.Cookie is { } c ? Encoding.ASCII.GetBytes(c) : null, when.Value is { } v ? Encoding.UTF8.GetBytes(v) : null));
            }
            else if (entry.Weight > 0)
            {
                _total += entry.Weight;
                weighted.Add(cluster);
                cumulative.Add(_total);
            }
        }
        _conditional = [.. conditional];
        _weighted = [.. weighted];
        _cumulative = [.. cumulative];
        if (sticky is not null)
        {
            if (sticky.StartsWith("header:", StringComparison.Ordinal))
            {
                _stickyHeader = Encoding.ASCII.GetBytes(sticky[7..]);
            }
            else
            {
                _stickyCookie = Encoding.ASCII.GetBytes(sticky[7..]);
            }
        }
    }

    /// <summary>The cluster for <paramref name="request"/>, or null when only conditional entries exist and none matched.</summary>
    public ClusterModel? Choose(RequestHead request, Random random)
    {
        foreach (var entry in _conditional)
        {
            if (entry.Matches(request))
            {
                return entry.Cluster;
            }
        }
        if (_total == 0)
        {
            return null;
        }
        int point;
        var key = _stickyHeader is not null ? (request.TryGetValue(_stickyHeader, out var header) ? header : default)
            : _stickyCookie is not null ? Cookies.Find(request, _stickyCookie) : default;
        if (!key.IsEmpty)
        {
            point = (int)(Fnv1a(key) % (ulong)_total);
        }
        else
        {
            point = random.Next(_total);
        }
        // Few entries: a linear scan beats a binary search.
        for (int i = 0; i < _cumulative.Length; i++)
        {
            if (point < _cumulative[i])
            {
                return _weighted[i];
            }
        }
        return _weighted[^1];
    }

    /// <summary>FNV-1a 64: stable across processes and restarts, so stickiness survives a reload.</summary>
    private static ulong Fnv1a(ReadOnlySpan<byte> bytes)
    {
        ulong hash = 14695981039346656037;
        foreach (byte b in bytes)
        {
            hash = (hash ^ b) * 1099511628211;
        }
        return hash;
    }

    private sealed record Conditional(ClusterModel Cluster, byte[]? Header, byte[]? Cookie, byte[]? Value)
    {
        public bool Matches(RequestHead request)
        {
            ReadOnlySpan<byte> found;
            if (Header is not null)
            {
                if (!request.TryGetValue(Header, out found))
                {
                    return false;
                }
            }
            else
            {
                found = Cookies.Find(request, Cookie!);
                if (found.IsEmpty && !Cookies.Has(request, Cookie!))
                {
                    return false;
                }
            }
            return Value is null || found.SequenceEqual(Value);
        }
    }
}

/// <summary>Reads cookies (RFC 6265 §5.4 "name=value; name=value") straight from the request head.</summary>
public static class Cookies
{
    /// <summary>The value of cookie <paramref name="name"/>, or empty.</summary>
    public static ReadOnlySpan<byte> Find(RequestHead request, ReadOnlySpan<byte> name)
    {
        TryFind(request, name, out var value);
        return value;
    }

    public static bool Has(RequestHead request, ReadOnlySpan<byte> name) => TryFind(request, name, out _);

    private static bool TryFind(RequestHead request, ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value)
    {
        var headers = request.Headers;
        for (int i = 0; i < headers.Length; i++)
        {
            if (headers[i].Id != KnownHeader.Cookie)
            {
                continue;
            }
            var line = request.Get(headers[i].Value);
            foreach (var range in line.Split((byte)';'))
            {
                var pair = line[range].Trim((byte)' ');
                int eq = pair.IndexOf((byte)'=');
                if (eq > 0 && pair[..eq].SequenceEqual(name))
                {
                    value = pair[(eq + 1)..];
                    return true;
                }
            }
        }
        value = default;
        return false;
    }
}
