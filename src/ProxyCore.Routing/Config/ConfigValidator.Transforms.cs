namespace ProxyCore.Routing.Config;

/// <summary>The `transforms` block of a route.</summary>
internal sealed partial class ConfigValidator
{
    // Fields the relay writes itself (framing, Host) or strips as hop-by-hop (RFC 9110 §7.6.1):
    // a transform on them would either have no effect or break the message framing.
    private static readonly string[] s_untransformableHeaders =
    [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization", "content-length", "host",
    ];

    partial void ValidateRoutePolicies(RouteConfig route, string path)
    {
        if (route.Transforms is { } transforms)
        {
            ValidateTransforms(transforms, path + ".transforms");
        }
        if (route.Compression is { } compression)
        {
            ValidateCompression(compression, path + ".compression");
        }
        if (route.Mirror is { } mirror)
        {
            ValidateMirror(mirror, route.Cluster, path + ".mirror");
        }
    }

    private void ValidateTransforms(TransformsConfig transforms, string path)
    {
        if (transforms.StripPrefix is { } strip)
        {
            ValidatePrefix(strip, path + ".stripPrefix");
        }
        if (transforms.AddPrefix is { } add)
        {
            ValidatePrefix(add, path + ".addPrefix");
        }
        if (transforms.PathRegex is { } regex)
        {
            ValidatePathRegex(regex, path + ".pathRegex");
        }
        if (transforms.Host is { } host && !IsAuthority(host))
        {
            Error(path + ".host", $"'{host}' is not \"host\" or \"host:port\"");
        }
        ValidateHeaderValues(transforms.SetRequestHeaders, path + ".setRequestHeaders", response: false);
        ValidateHeaderValues(transforms.AddRequestHeaders, path + ".addRequestHeaders", response: false);
        ValidateHeaderNames(transforms.RemoveRequestHeaders, path + ".removeRequestHeaders");
        ValidateHeaderValues(transforms.SetResponseHeaders, path + ".setResponseHeaders", response: true);
        ValidateHeaderValues(transforms.AddResponseHeaders, path + ".addResponseHeaders", response: true);
        ValidateHeaderNames(transforms.RemoveResponseHeaders, path + ".removeResponseHeaders");
    }

    private void ValidatePrefix(string prefix, string path)
    {
        if (prefix.Length < 2 || prefix[0] != '/' || prefix.TrimEnd('/').Length == 0)
        {
            Error(path, $"must start with '/' and name at least one segment (got '{prefix}')");
        }
        else if (!IsPathText(prefix))
        {
            Error(path, $"must be a path without query, fragment, spaces or non-ASCII (got '{prefix}'); percent-encode as clients send it");
        }
    }

    private void ValidatePathRegex(PathRegexConfig regex, string path)
    {
        if (string.IsNullOrEmpty(regex.Pattern))
        {
            Error(path + ".pattern", "a pattern is required");
        }
        else
        {
            try
            {
                regex.Compile();
            }
            catch (ArgumentException e)
            {
                Error(path + ".pattern", $"does not compile: {e.Message}");
            }
            catch (NotSupportedException)
            {
                Error(path + ".pattern", "lookarounds, backreferences, atomic groups and conditionals are not supported: paths are matched in linear time");
            }
        }
        if (regex.Replacement.Length == 0 || regex.Replacement[0] is not ('/' or '$'))
        {
            Error(path + ".replacement", $"must start with '/' or a group such as $1 that holds one (got '{regex.Replacement}')");
        }
        else if (!IsPathText(regex.Replacement))
        {
            Error(path + ".replacement", "must be a path without query, fragment, spaces or non-ASCII");
        }
    }

    private void ValidateHeaderValues(IReadOnlyDictionary<string, string> headers, string path, bool response)
    {
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in headers)
        {
            string hpath = SchemaWalker.Append(path, name);
            if (!ValidateHeaderName(name, hpath))
            {
                continue;
            }
            if (!seen.Add(name))
            {
                Error(hpath, "the same header is given twice (names ignore case)");
            }
            // RFC 9110 §5.5: field-value is visible characters, spaces and tabs; CR/LF would split the head.
            foreach (char c in value)
            {
                if ((c < ' ' && c != '\t') || c >= 0x7F)
                {
                    Error(hpath, "value must be visible ASCII, spaces or tabs (no CR, LF or other controls)");
                    break;
                }
            }
            if (response && (value.Contains("{client_ip}", StringComparison.Ordinal) || value.Contains("{consumer}", StringComparison.Ordinal)))
            {
                Error(hpath, "{client_ip} and {consumer} are known only on the request side; response values may use {route}");
            }
        }
    }

    private void ValidateHeaderNames(IReadOnlyList<string> names, string path)
    {
        for (int i = 0; i < names.Count; i++)
        {
            ValidateHeaderName(names[i], $"{path}[{i}]");
        }
    }

    private bool ValidateHeaderName(string name, string path)
    {
        if (!IsToken(name))
        {
            Error(path, $"'{name}' is not a header field name (RFC 9110 §5.1)");
            return false;
        }
        foreach (var reserved in s_untransformableHeaders)
        {
            if (string.Equals(name, reserved, StringComparison.OrdinalIgnoreCase))
            {
                Error(path, name.Equals("host", StringComparison.OrdinalIgnoreCase)
                    ? "Host is written by the relay: use transforms.host"
                    : $"'{name}' is hop-by-hop or framing, written by the relay itself (RFC 9110 §7.6.1)");
                return false;
            }
        }
        return true;
    }

    private static bool IsPathText(string value)
    {
        foreach (char c in value)
        {
            if (c is '?' or '#' || c <= ' ' || c >= 0x7F)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>RFC 9110 §7.2 Host = uri-host [ ":" port ].</summary>
    private static bool IsAuthority(string value)
    {
        var host = value.AsSpan();
        int colon = value.StartsWith('[') ? value.IndexOf("]:", StringComparison.Ordinal) + 1 : value.LastIndexOf(':');
        if (colon > 0)
        {
            if (!int.TryParse(host[(colon + 1)..], System.Globalization.NumberStyles.None, null, out int port) || port is < 1 or > 65535)
            {
                return false;
            }
            host = host[..colon];
        }
        return host.StartsWith("[")
            ? host.EndsWith("]") && System.Net.IPAddress.TryParse(host[1..^1], out _)
            : host.Length > 0 && Addresses.IsHostName(host);
    }
}
