using System.Buffers;
using System.Text;
using System.Text.RegularExpressions;
using ProxyCore.Http;
using ProxyCore.Routing.Config;

namespace ProxyCore.Proxy.Stages.Transforms;

/// <summary>
/// A route's transforms, built once per snapshot from <see cref="TransformsConfig"/>: header names
/// and values as bytes, the path regex compiled. Applied in place on the protocol-neutral heads:
/// new bytes go to the head's arena (reused across requests), removed headers leave the list, and
/// a stripped prefix only moves <see cref="RequestHead.Path"/>, so nothing is allocated per request
/// except by a path regex that matches (System.Text.RegularExpressions has no span API for groups).
/// </summary>
/// <remarks>
/// Order, fixed so the file's key order cannot change the meaning: request headers remove → set →
/// add, then the path stripPrefix → pathRegex → addPrefix; response headers remove → set → add.
/// </remarks>
public sealed class RouteTransforms
{
    private const int StackPathChars = 512;

    private readonly HeaderName[] _removeRequest;
    private readonly HeaderTemplate[] _setRequest;
    private readonly HeaderTemplate[] _addRequest;
    private readonly HeaderName[] _removeResponse;
    private readonly HeaderTemplate[] _setResponse;
    private readonly HeaderTemplate[] _addResponse;
    private readonly byte[]? _stripPrefix;
    private readonly byte[]? _addPrefix;
    private readonly Regex? _pathRegex;
    private readonly string _replacement;

    public RouteTransforms(TransformsConfig config, string routeId)
    {
        var route = Encoding.UTF8.GetBytes(routeId);
        _removeRequest = [.. config.RemoveRequestHeaders.Select(n => new HeaderName(n))];
        _setRequest = [.. config.SetRequestHeaders.Select(p => new HeaderTemplate(p.Key, p.Value, route))];
        _addRequest = [.. config.AddRequestHeaders.Select(p => new HeaderTemplate(p.Key, p.Value, route))];
        _removeResponse = [.. config.RemoveResponseHeaders.Select(n => new HeaderName(n))];
        _setResponse = [.. config.SetResponseHeaders.Select(p => new HeaderTemplate(p.Key, p.Value, route))];
        _addResponse = [.. config.AddResponseHeaders.Select(p => new HeaderTemplate(p.Key, p.Value, route))];
        // "/api/" and "/api" mean the same prefix: it ends at a segment boundary either way.
        _stripPrefix = config.StripPrefix is { } strip ? Encoding.ASCII.GetBytes(strip.TrimEnd('/')) : null;
        _addPrefix = config.AddPrefix is { } add ? Encoding.ASCII.GetBytes(add.TrimEnd('/')) : null;
        _pathRegex = config.PathRegex?.Compile();
        _replacement = config.PathRegex?.Replacement ?? "";
        Host = config.Host is { } host ? Encoding.ASCII.GetBytes(host) : null;
        HasResponseTransforms = _removeResponse.Length + _setResponse.Length + _addResponse.Length > 0;
    }

    /// <summary>The Host to send upstream instead of the client's or the destination's; null: forwarding.preserveHost decides.</summary>
    public byte[]? Host { get; }

    public bool HasResponseTransforms { get; }

    /// <summary>
    /// Rewrites <paramref name="request"/>'s headers and path. False only when the path regex ran
    /// past its match timeout: the request must then not be forwarded half-rewritten.
    /// </summary>
    public bool ApplyRequest(RequestHead request, ReadOnlySpan<byte> clientIp, ReadOnlySpan<byte> consumer)
    {
        ApplyHeaders(request, _removeRequest, _setRequest, _addRequest, clientIp, consumer);
        if (request.TargetForm is RequestTargetForm.Asterisk or RequestTargetForm.Authority)
        {
            return true; // "*" and CONNECT targets have no path to rewrite.
        }
        if (_stripPrefix is not null)
        {
            StripPrefix(request, _stripPrefix);
        }
        if (_pathRegex is not null && !RewritePath(request, _pathRegex, _replacement))
        {
            return false;
        }
        if (_addPrefix is not null)
        {
            AddPrefix(request, _addPrefix);
        }
        return true;
    }

    /// <summary>Rewrites the headers of a response relayed from the upstream (after hop-by-hop fields were stripped).</summary>
    public void ApplyResponse(ResponseHead response)
        => ApplyHeaders(response, _removeResponse, _setResponse, _addResponse, default, default);

    private static void ApplyHeaders(HttpHead head, HeaderName[] remove, HeaderTemplate[] set, HeaderTemplate[] add,
        ReadOnlySpan<byte> clientIp, ReadOnlySpan<byte> consumer)
    {
        foreach (var name in remove)
        {
            RemoveAll(head, name.Bytes, name.Id);
        }
        foreach (var header in set)
        {
            RemoveAll(head, header.Name, header.Id);
            header.AddTo(head, clientIp, consumer);
        }
        foreach (var header in add)
        {
            header.AddTo(head, clientIp, consumer);
        }
    }

    private static void RemoveAll(HttpHead head, byte[] name, KnownHeader id)
    {
        for (int i = head.HeaderCount - 1; i >= 0; i--)
        {
            var header = head.Headers[i];
            if (id != KnownHeader.Other ? header.Id == id : Ascii.EqualsIgnoreCase(head.Get(header.Name), name))
            {
                head.RemoveHeaderAt(i);
            }
        }
    }

    /// <summary>"/api" strips "/api/x" to "/x" and "/api" to "/", and leaves "/apix" alone (segment boundary).</summary>
    internal static void StripPrefix(RequestHead request, ReadOnlySpan<byte> prefix)
    {
        var path = request.PathSpan;
        if (!path.StartsWith(prefix))
        {
            return;
        }
        var range = request.Path;
        if (path.Length == prefix.Length)
        {
            // The prefix's own leading '/' is the new path: no bytes to write.
            request.Path = new ByteRange(range.Offset, 1);
        }
        else if (path[prefix.Length] == (byte)'/')
        {
            request.Path = new ByteRange(range.Offset + prefix.Length, range.Length - prefix.Length);
        }
    }

    /// <summary>"/v1" + "/x" = "/v1/x", written once to the arena.</summary>
    internal static void AddPrefix(RequestHead request, ReadOnlySpan<byte> prefix)
    {
        var old = request.Path;
        var span = request.Reserve(prefix.Length + old.Length, out var range);
        prefix.CopyTo(span);
        request.Get(old).CopyTo(span[prefix.Length..]); // Get after Reserve: the arena may have grown.
        request.Path = range;
    }

    /// <summary>Replaces the first match in the path; a path that does not match is left as it is.</summary>
    internal static bool RewritePath(RequestHead request, Regex regex, string replacement)
    {
        var path = request.PathSpan;
        char[]? rented = null;
        Span<char> chars = path.Length <= StackPathChars ? stackalloc char[StackPathChars] : (rented = ArrayPool<char>.Shared.Rent(path.Length));
        try
        {
            chars = chars[..Encoding.Latin1.GetChars(path, chars)];
            // The span overload finds out whether to rewrite without allocating: most paths do not match.
            if (!regex.IsMatch(chars))
            {
                return true;
            }
            string result = regex.Replace(new string(chars), replacement, 1);
            bool slash = result.Length > 0 && result[0] == '/';
            var span = request.Reserve(result.Length + (slash ? 0 : 1), out var range);
            if (!slash)
            {
                span[0] = (byte)'/'; // a group that held no '/' must not yield a path without one
            }
            Encoding.Latin1.GetBytes(result, span[(slash ? 0 : 1)..]);
            request.Path = range;
            return true;
        }
        catch (RegexMatchTimeoutException)
        {
            return false;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<char>.Shared.Return(rented);
            }
        }
    }

    private readonly struct HeaderName(string name)
    {
        public readonly byte[] Bytes = Encoding.ASCII.GetBytes(name);
        public readonly KnownHeader Id = KnownHeaders.Classify(Encoding.ASCII.GetBytes(name));
    }

    /// <summary>
    /// A header whose value is literal text with per-request variables between the pieces:
    /// value = Literals[0] Variables[0] Literals[1] … Literals[n]. {route} is fixed per route and
    /// folded into the literals when the snapshot is built.
    /// </summary>
    private sealed class HeaderTemplate
    {
        private static readonly (string Text, Variable Kind)[] s_variables = [("{client_ip}", Variable.ClientIp), ("{consumer}", Variable.Consumer)];

        private readonly byte[][] _literals;
        private readonly Variable[] _variables;
        private readonly int _literalLength;

        public HeaderTemplate(string name, string value, byte[] route)
        {
            Name = Encoding.ASCII.GetBytes(name);
            Id = KnownHeaders.Classify(Name);
            value = value.Replace("{route}", Encoding.UTF8.GetString(route), StringComparison.Ordinal);
            var literals = new List<byte[]>();
            var variables = new List<Variable>();
            int start = 0;
            while (true)
            {
                int at = -1;
                var kind = Variable.ClientIp;
                string text = "";
                foreach (var (candidate, candidateKind) in s_variables)
                {
                    int i = value.IndexOf(candidate, start, StringComparison.Ordinal);
                    if (i >= 0 && (at < 0 || i < at))
                    {
                        (at, kind, text) = (i, candidateKind, candidate);
                    }
                }
                if (at < 0)
                {
                    literals.Add(Encoding.UTF8.GetBytes(value[start..]));
                    break;
                }
                literals.Add(Encoding.UTF8.GetBytes(value[start..at]));
                variables.Add(kind);
                start = at + text.Length;
            }
            _literals = [.. literals];
            _variables = [.. variables];
            _literalLength = _literals.Sum(l => l.Length);
        }

        public byte[] Name { get; }

        public KnownHeader Id { get; }

        public void AddTo(HttpHead head, ReadOnlySpan<byte> clientIp, ReadOnlySpan<byte> consumer)
        {
            int length = _literalLength;
            foreach (var variable in _variables)
            {
                length += variable == Variable.ClientIp ? clientIp.Length : consumer.Length;
            }
            var name = head.Append(Name);
            var span = head.Reserve(length, out var value);
            _literals[0].CopyTo(span);
            int written = _literals[0].Length;
            for (int i = 0; i < _variables.Length; i++)
            {
                var variable = _variables[i] == Variable.ClientIp ? clientIp : consumer;
                variable.CopyTo(span[written..]);
                written += variable.Length;
                _literals[i + 1].CopyTo(span[written..]);
                written += _literals[i + 1].Length;
            }
            head.AddHeader(name, value, Id);
        }
    }

    private enum Variable : byte
    {
        ClientIp,
        Consumer,
    }
}
