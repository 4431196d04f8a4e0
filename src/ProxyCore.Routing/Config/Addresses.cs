using System.Globalization;
using System.Net;

namespace ProxyCore.Routing.Config;

/// <summary>A parsed destination URL: "http://host:port[/path-prefix]".</summary>
public readonly record struct DestinationAddress(string Scheme, string Host, int Port, string PathPrefix)
{
    public bool IsHttps => Scheme == "https";

    /// <summary>"host:port", the port left out when it is the scheme's default (RFC 9110 §7.2).</summary>
    public string Authority => IsDefaultPort ? Host : Host + ":" + Port.ToString(CultureInfo.InvariantCulture);

    private bool IsDefaultPort => (Port == 80 && Scheme == "http") || (Port == 443 && Scheme == "https");
}

/// <summary>Address syntaxes shared by validation and model building, so both agree.</summary>
public static class Addresses
{
    /// <summary>Listener "host:port": an IP literal ("[::1]" for IPv6), "*" or a host name; port 0–65535.</summary>
    public static bool TryParseListener(string? address, out string host, out int port, out string? error)
    {
        host = "";
        port = 0;
        error = null;
        if (string.IsNullOrWhiteSpace(address))
        {
            error = "address is required (\"host:port\")";
            return false;
        }
        int colon = address.LastIndexOf(':');
        if (colon <= 0 || colon == address.Length - 1)
        {
            error = $"'{address}' is not \"host:port\"";
            return false;
        }
        host = address[..colon];
        var portText = address.AsSpan(colon + 1);
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port > 65535)
        {
            error = $"'{address}' has an invalid port (0-65535)";
            return false;
        }
        if (host[0] == '[')
        {
            if (host[^1] != ']' || !IPAddress.TryParse(host.AsSpan(1, host.Length - 2), out var v6)
                || v6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                error = $"'{address}' has an invalid IPv6 literal";
                return false;
            }
            return true;
        }
        if (host == "*" || IPAddress.TryParse(host, out _) || IsHostName(host))
        {
            return !host.Contains(':') || Fail($"'{address}': write IPv6 addresses in brackets, \"[::1]:8080\"", out error);
        }
        error = $"'{address}' has an invalid host";
        return false;
    }

    /// <summary>A destination: absolute http(s) URL, no user info, query or fragment.</summary>
    public static bool TryParseDestination(string? address, out DestinationAddress parsed, out string? error)
    {
        parsed = default;
        error = null;
        if (string.IsNullOrWhiteSpace(address))
        {
            return Fail("address is required (\"http://host:port\")", out error);
        }
        if (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
        {
            return Fail($"'{address}' is not an http:// URL (\"http://host:port[/prefix]\")", out error);
        }
        if (uri.UserInfo.Length > 0 || uri.Query.Length > 0 || uri.Fragment.Length > 0 || uri.Host.Length == 0)
        {
            return Fail($"'{address}' must be scheme://host:port[/prefix], without user info, query or fragment", out error);
        }
        string prefix = uri.AbsolutePath.TrimEnd('/');
        parsed = new DestinationAddress(uri.Scheme, uri.Host, uri.Port, prefix);
        return true;
    }

    /// <summary>RFC 1123 host name: labels of letters, digits and '-', separated by dots.</summary>
    internal static bool IsHostName(ReadOnlySpan<char> host)
    {
        if (host.IsEmpty || host.Length > 253)
        {
            return false;
        }
        int labelLength = 0;
        foreach (char c in host)
        {
            if (c == '.')
            {
                if (labelLength == 0)
                {
                    return false;
                }
                labelLength = 0;
            }
            else if (char.IsAsciiLetterOrDigit(c) || c == '-' || c == '_')
            {
                if (++labelLength > 63)
                {
                    return false;
                }
            }
            else
            {
                return false;
            }
        }
        return labelLength > 0;
    }

    private static bool Fail(string message, out string? error)
    {
        error = message;
        return false;
    }
}
