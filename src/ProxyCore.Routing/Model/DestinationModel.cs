using System.Net;
using System.Text;
using ProxyCore.Routing.Config;

namespace ProxyCore.Routing.Model;

/// <summary>One upstream address of a cluster, parsed once at snapshot build.</summary>
public sealed class DestinationModel
{
    internal DestinationModel(string address, DestinationAddress parsed, int weight, DestinationState state)
    {
        Address = address;
        Host = parsed.Host;
        Port = parsed.Port;
        var bare = Host.StartsWith('[') ? Host[1..^1] : Host;
        EndPoint = IPAddress.TryParse(bare, out var ip) ? new IPEndPoint(ip, Port) : new DnsEndPoint(Host, Port);
        HostHeaderBytes = Encoding.ASCII.GetBytes(parsed.Authority);
        PathPrefixBytes = Encoding.ASCII.GetBytes(parsed.PathPrefix);
        Weight = weight;
        State = state;
    }

    /// <summary>The address as configured ("http://10.0.0.1:9000/base").</summary>
    public string Address { get; }

    /// <summary>Host as in the URL ("10.0.0.1", "[::1]", "backend.internal").</summary>
    public string Host { get; }

    public int Port { get; }

    /// <summary><see cref="IPEndPoint"/> for IP literals, otherwise a <see cref="DnsEndPoint"/> resolved at connect time.</summary>
    public EndPoint EndPoint { get; }

    /// <summary>"host:port" as UTF-8 (port left out when it is the scheme default), for when Host is rewritten.</summary>
    public byte[] HostHeaderBytes { get; }

    /// <summary>Path prefix from the URL without a trailing '/' ("/base"), empty if none; the relay puts it before the request path.</summary>
    public byte[] PathPrefixBytes { get; }

    public int Weight { get; }

    public DestinationState State { get; }

    /// <summary>The cluster this destination belongs to in its snapshot (set when the cluster is built).</summary>
    public ClusterModel Cluster { get; internal set; } = null!;

    public override string ToString() => Address;
}
