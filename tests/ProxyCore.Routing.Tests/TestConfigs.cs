using System.Text;
using ProxyCore.Http;
using ProxyCore.Routing.Config;
using HttpMethod = ProxyCore.Http.HttpMethod;

namespace ProxyCore.Routing.Tests;

internal static class TestConfigs
{
    public static RequestHead Request(string authority, string path, string method = "GET", params (string Name, string Value)[] headers)
    {
        var h = new RequestHead();
        h.Path = h.Append(Encoding.ASCII.GetBytes(path));
        h.Authority = h.Append(Encoding.ASCII.GetBytes(authority));
        h.MethodBytes = h.Append(Encoding.ASCII.GetBytes(method));
        h.Method = HttpMethods.Parse(Encoding.ASCII.GetBytes(method));
        foreach (var (name, value) in headers)
        {
            h.AddHeader(Encoding.ASCII.GetBytes(name), Encoding.ASCII.GetBytes(value));
        }
        return h;
    }

    public static RouteConfig Route(string id, string? path = null, string[]? hosts = null, string[]? methods = null,
        HeaderMatchConfig[]? headers = null, string? pathType = null, string cluster = "c") => new()
    {
        Id = id,
        Cluster = cluster,
        Match = new RouteMatchConfig { Path = path, PathType = pathType, Hosts = hosts ?? [], Methods = methods ?? [], Headers = headers ?? [] },
    };

    public static ProxyConfig ConfigOf(IReadOnlyList<RouteConfig> routes, params ClusterConfig[] clusters) => new()
    {
        Listeners = [new ListenerConfig { Address = "127.0.0.1:8080" }],
        Routes = routes,
        Clusters = clusters.Length > 0 ? clusters : [Cluster("c", "http://127.0.0.1:9000")],
    };

    public static ClusterConfig Cluster(string id, params string[] addresses) => new()
    {
        Id = id,
        Destinations = [.. addresses.Select(a => new DestinationConfig { Address = a })],
    };
}
