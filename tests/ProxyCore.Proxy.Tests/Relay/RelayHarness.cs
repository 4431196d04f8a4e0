using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using ProxyCore.Http.Http1;
using ProxyCore.Proxy.Metrics;
using ProxyCore.Proxy.Relay;
using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;
using ProxyCore.Transport;

namespace ProxyCore.Proxy.Tests.Relay;

/// <summary>
/// The relay between two in-memory transports: the test plays the client on one side and a
/// scripted upstream on the other, so it sees exactly the bytes the proxy writes each way.
/// </summary>
internal sealed class RelayHarness : IAsyncDisposable
{
    private readonly InMemoryTransport _clientSide = new();
    private readonly InMemoryTransport _upstreamSide = new();
    private readonly UpstreamConnectionPool _pool;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _connections = [];
    private readonly List<ConnectionContext> _clients = [];

    public RelayHarness(ForwarderOptions? options = null, TimeSpan? routeTimeout = null)
    {
        _pool = new UpstreamConnectionPool(_upstreamSide);
        var config = new ProxyConfig
        {
            Listeners = [new ListenerConfig { Address = "127.0.0.1:0" }],
            Routes = [new RouteConfig { Id = "r", Match = new RouteMatchConfig { Path = "/" }, Cluster = "c", Timeout = routeTimeout }],
            Clusters = [new ClusterConfig { Id = "c", Destinations = [new DestinationConfig { Address = "http://10.9.8.7:1234" }] }],
        };
        State = new ProxyState(config);
        Metrics = new ProxyMetrics();
        Application = new ProxyApplication(State, new HttpForwarder(_pool, options ?? new ForwarderOptions { TracePropagation = false }), Metrics, null);
    }

    public ProxyState State { get; }

    public ProxyMetrics Metrics { get; }

    public ProxyApplication Application { get; }

    public int UpstreamIdle => _pool.IdleCount;

    /// <summary>
    /// The idle count once it reaches <paramref name="expected"/> (or after 20 s): the relay returns the
    /// upstream connection just after the client's last byte is written, so a client can see the whole
    /// answer a moment before the connection is back in the pool.
    /// </summary>
    public async Task<int> UpstreamIdleAsync(int expected)
    {
        for (int i = 0; i < 2000 && _pool.IdleCount != expected; i++) // 20 s or more: a loaded CI box is slow
        {
            await Task.Delay(10);
        }
        return _pool.IdleCount;
    }

    /// <summary>A client connection served by an <see cref="Http1Connection"/> running the proxy.</summary>
    public async Task<ConnectionContext> ConnectClientAsync()
    {
        var accept = _clientSide.AcceptAsync().AsTask();
        var client = await _clientSide.ConnectAsync(_clientSide.EndPoint);
        var server = (await accept)!;
        _clients.Add(client);
        var http1 = new Http1Connection(server, Application, Http1ConnectionOptions.Default, _stopping.Token);
        _connections.Add(Task.Run(async () =>
        {
            await http1.RunAsync();
            await server.DisposeAsync();
        }));
        return client;
    }

    /// <summary>The next upstream connection the proxy dials.</summary>
    public async Task<ConnectionContext> AcceptUpstreamAsync()
        => (await _upstreamSide.AcceptAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)))!;

    public static async Task SendAsync(ConnectionContext connection, string text)
    {
        await connection.Transport.Output.WriteAsync(Encoding.Latin1.GetBytes(text));
    }

    /// <summary>Reads until <paramref name="marker"/> has been seen (or the peer closed), consuming it all.</summary>
    public static async Task<string> ReadUntilAsync(ConnectionContext connection, string marker, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        var input = connection.Transport.Input;
        var seen = new StringBuilder();
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                return seen + "<<timeout>>";
            }
            catch (Exception)
            {
                return seen + "<<reset>>";
            }
            seen.Append(Encoding.Latin1.GetString(result.Buffer.ToArray()));
            input.AdvanceTo(result.Buffer.End);
            if (seen.ToString().Contains(marker, StringComparison.Ordinal))
            {
                return seen.ToString();
            }
            if (result.IsCompleted)
            {
                return seen + "<<eof>>";
            }
        }
    }

    /// <summary>Reads everything until the peer closes or resets.</summary>
    public static Task<string> ReadToEndAsync(ConnectionContext connection) => ReadUntilAsync(connection, "\u0000never\u0000");

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        foreach (var client in _clients)
        {
            client.Abort();
        }
        await _pool.DisposeAsync();
        await _clientSide.DisposeAsync();
        await _upstreamSide.DisposeAsync();
        await Task.WhenAny(Task.WhenAll(_connections), Task.Delay(TimeSpan.FromSeconds(5)));
    }
}
