using System.IO.Pipelines;
using System.Net;
using System.Text;
using ProxyCore.Http;
using ProxyCore.Http.Http2.Client;
using ProxyCore.Http.Http1;
using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;
using ProxyCore.Transport;

namespace ProxyCore.Proxy.Health;

/// <summary>What one probe found. Errors are values: the checker counts them, logs and metrics can tell them apart.</summary>
public enum HealthProbeResult : byte
{
    /// <summary>A response head with an expected status.</summary>
    Passed,
    /// <summary>Nothing listens, or the host cannot be reached.</summary>
    ConnectFailed,
    /// <summary>No response head within the check's timeout (connect included).</summary>
    Timeout,
    /// <summary>The destination closed before a complete response head.</summary>
    Closed,
    /// <summary>The response head was malformed.</summary>
    ProtocolError,
    /// <summary>A response whose status is not in <c>expectedStatus</c>.</summary>
    UnexpectedStatus,
}

/// <summary>
/// Active health checks (<c>clusters[].healthCheck</c>): one loop per destination sends
/// <c>GET prefix+path</c> every interval on a connection of its own (so a probe never waits behind
/// traffic in the pool, and a pooled connection never hides a listener that stopped accepting), and
/// flips <see cref="DestinationState.ActivelyHealthy"/> when the thresholds say so.
///
/// Loops start at a random point of their first interval so that checks of many destinations (and of
/// many proxies restarted together) spread out instead of arriving in bursts. <see cref="Start"/> is
/// called again on every reload: the loops of the old snapshot stop, new ones start, and because a
/// destination's state survives the reload, its verdict carries over (an unhealthy destination needs
/// healthyThreshold good probes to come back, as before the reload).
/// </summary>
public sealed class ActiveHealthChecker : IAsyncDisposable
{
    private static readonly byte[] s_requestTail = "\r\nUser-Agent: proxycore-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n"u8.ToArray();

    private readonly IConnectionFactory _connections;
    private readonly TimeProvider _time;
    private readonly Random _random;
    private readonly Lock _lock = new();
    private readonly List<Task> _loops = [];
    private CancellationTokenSource? _generation;
    private HashSet<DestinationState> _checked = [];
    private bool _stopped;

    /// <param name="connections">Dials probe connections.</param>
    /// <param name="time">Drives intervals and timeouts.</param>
    /// <param name="random">Spreads the first probes; null = <see cref="Random.Shared"/>.</param>
    public ActiveHealthChecker(IConnectionFactory connections, TimeProvider? time = null, Random? random = null)
    {
        _connections = connections;
        _time = time ?? TimeProvider.System;
        _random = random ?? Random.Shared;
    }

    /// <summary>Destinations probed by the current snapshot's loops.</summary>
    public int CheckedCount
    {
        get
        {
            lock (_lock)
            {
                return _checked.Count;
            }
        }
    }

    /// <summary>Stops the loops of the previous snapshot (if any) and probes the destinations of <paramref name="snapshot"/>.</summary>
    public void Start(ProxySnapshot snapshot)
    {
        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }
            _generation?.Cancel();
            _loops.RemoveAll(static t => t.IsCompleted);
            var generation = new CancellationTokenSource();
            var next = new HashSet<DestinationState>(ReferenceEqualityComparer.Instance);
            foreach (var cluster in snapshot.Clusters.Values)
            {
                if (cluster.Config?.HealthCheck is not { } check)
                {
                    continue;
                }
                StatusRanges.TryParse(check.ExpectedStatus, out var expected, out _); // validated with the config
                foreach (var destination in cluster.Destinations)
                {
                    if (!next.Add(destination.State))
                    {
                        continue;
                    }
                    var probe = new Probe(destination.EndPoint, BuildRequest(check.Path, destination), expected, check.Timeout, destination.Cluster.PoolOptions.Tls,
                        destination.Cluster.Protocol == UpstreamProtocol.Http2 ? BuildHttp2Request(check.Path, destination) : null);
                    var delay = InitialDelay(check.Interval, _random);
                    var state = destination.State;
                    _loops.Add(Task.Run(() => RunAsync(probe, state, check, delay, generation.Token)));
                }
            }
            foreach (var state in _checked)
            {
                if (!next.Contains(state))
                {
                    // No longer checked (the block was removed): nothing else could ever bring it back.
                    state.ActivelyHealthy = true;
                }
            }
            _checked = next;
            _generation = generation;
        }
    }

    /// <summary>Stops every loop and waits for probes in flight to end.</summary>
    public async Task StopAsync()
    {
        Task[] loops;
        lock (_lock)
        {
            _stopped = true;
            _generation?.Cancel();
            loops = [.. _loops];
            _loops.Clear();
        }
        await Task.WhenAll(loops).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => new(StopAsync());

    /// <summary>A uniformly random point in [0, interval): the first probe's delay.</summary>
    internal static TimeSpan InitialDelay(TimeSpan interval, Random random)
        => TimeSpan.FromTicks((long)(random.NextDouble() * interval.Ticks));

    /// <summary>"GET {prefix}{path} HTTP/1.1", Host, built once per destination per snapshot.</summary>
    internal static byte[] BuildRequest(string path, DestinationModel destination)
    {
        var request = new List<byte>(128);
        request.AddRange("GET "u8);
        request.AddRange(destination.PathPrefixBytes);
        request.AddRange(Encoding.ASCII.GetBytes(path));
        request.AddRange(" HTTP/1.1\r\nHost: "u8);
        request.AddRange(destination.HostHeaderBytes);
        request.AddRange(s_requestTail);
        return [.. request];
    }

    /// <summary>The same GET as HTTP/2 fields, for clusters with "protocol": "http2" (h2c prior knowledge).</summary>
    internal static HttpHead BuildHttp2Request(string path, DestinationModel destination)
    {
        var head = new ResponseHead();
        head.AddHeader(":method"u8, "GET"u8);
        head.AddHeader(":scheme"u8, "http"u8);
        head.AddHeader(":authority"u8, destination.HostHeaderBytes);
        head.AddHeader(":path"u8, [.. destination.PathPrefixBytes, .. Encoding.ASCII.GetBytes(path)]);
        head.AddHeader("user-agent"u8, "proxycore-health-check"u8);
        return head;
    }

    private async Task RunAsync(Probe probe, DestinationState state, HealthCheckConfig check, TimeSpan initialDelay, CancellationToken stop)
    {
        var counter = new HealthCounter();
        try
        {
            await Task.Delay(initialDelay, _time, stop).ConfigureAwait(false);
            while (!stop.IsCancellationRequested)
            {
                var result = await ProbeAsync(_connections, probe, _time, stop).ConfigureAwait(false);
                if (stop.IsCancellationRequested)
                {
                    break; // a reload or stop cut it: not the destination's verdict
                }
                bool passed = result == HealthProbeResult.Passed;
                state.RecordHealthCheck(passed);
                if (counter.Record(passed, state.ActivelyHealthy, check.HealthyThreshold, check.UnhealthyThreshold) is bool verdict)
                {
                    state.ActivelyHealthy = verdict;
                }
                await Task.Delay(check.Interval, _time, stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>One probe: connect, send the request, read a response head, all within the probe's timeout.</summary>
    internal static async Task<HealthProbeResult> ProbeAsync(IConnectionFactory connections, Probe probe, TimeProvider time, CancellationToken stop)
    {
        using var timeout = new CancellationTokenSource(probe.Timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop, timeout.Token);
        var token = linked.Token;
        ConnectionContext connection;
        try
        {
            connection = await connections.ConnectAsync(probe.EndPoint, token).ConfigureAwait(false);
            if (probe.Tls is { } tls)
            {
                // An https:// destination is probed over TLS, with the cluster's trust: a certificate the
                // relay would refuse makes the destination unhealthy rather than healthy-but-unusable.
                connection = await tls.AuthenticateAsync(connection, probe.EndPoint, token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            return HealthProbeResult.Timeout;
        }
        catch (Exception)
        {
            return HealthProbeResult.ConnectFailed;
        }
        if (probe.Http2Head is { } h2Head)
        {
            return await ProbeHttp2Async(connection, probe, h2Head, time, token).ConfigureAwait(false);
        }
        try
        {
            var output = connection.Transport.Output;
            var flush = await output.WriteAsync(probe.Request, token).ConfigureAwait(false);
            if (flush.IsCompleted)
            {
                return HealthProbeResult.Closed;
            }
            var input = connection.Transport.Input;
            var head = new ResponseHead();
            while (true)
            {
                var read = await input.ReadAsync(token).ConfigureAwait(false);
                var buffer = read.Buffer;
                head.Reset();
                var status = Http1Parser.TryParseResponse(buffer, head, HttpMethod.Get, Http1Limits.Default, out var consumed, out _);
                if (status == Http1ParseResult.Complete)
                {
                    input.AdvanceTo(consumed);
                    if (head.StatusCode is >= 100 and < 200)
                    {
                        continue; // RFC 9110 §15.2: interim; the final answer follows
                    }
                    return probe.Expected.Contains(head.StatusCode) ? HealthProbeResult.Passed : HealthProbeResult.UnexpectedStatus;
                }
                if (status == Http1ParseResult.Error)
                {
                    return HealthProbeResult.ProtocolError;
                }
                if (read.IsCompleted)
                {
                    return HealthProbeResult.Closed;
                }
                input.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        catch (OperationCanceledException)
        {
            return HealthProbeResult.Timeout;
        }
        catch (Exception)
        {
            return HealthProbeResult.Closed;
        }
        finally
        {
            // Connection: close was asked for; the body (if any) is not wanted, so do not wait for it.
            connection.Abort();
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>One probe over a fresh HTTP/2 connection of its own: handshake, one stream, the final head's status.</summary>
    private static async Task<HealthProbeResult> ProbeHttp2Async(ConnectionContext connection, Probe probe, HttpHead request, TimeProvider time, CancellationToken token)
    {
        var client = new Http2ClientConnection(connection, new Http2ClientOptions { PingInterval = Timeout.InfiniteTimeSpan, IdleTimeout = Timeout.InfiniteTimeSpan }, time);
        try
        {
            try
            {
                await client.StartAsync(probe.Timeout, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return HealthProbeResult.Timeout;
            }
            catch (Exception)
            {
                return HealthProbeResult.ProtocolError; // not an HTTP/2 server
            }
            var head = new ResponseHead();
            if (!client.TryRent(head, new ResponseHead(), out var stream))
            {
                return HealthProbeResult.Closed;
            }
            try
            {
                if (!await client.SendHeadersAsync(stream!, request, endStream: true, token).ConfigureAwait(false))
                {
                    return HealthProbeResult.Closed;
                }
                return await stream!.WaitForHeadAsync(token).ConfigureAwait(false) switch
                {
                    Http2StreamOutcome.Head => probe.Expected.Contains(head.StatusCode) ? HealthProbeResult.Passed : HealthProbeResult.UnexpectedStatus,
                    Http2StreamOutcome.Canceled => HealthProbeResult.Timeout,
                    Http2StreamOutcome.ProtocolError => HealthProbeResult.ProtocolError,
                    _ => HealthProbeResult.Closed,
                };
            }
            finally
            {
                client.Release(stream!);
            }
        }
        catch (OperationCanceledException)
        {
            return HealthProbeResult.Timeout;
        }
        catch (Exception)
        {
            return HealthProbeResult.Closed;
        }
        finally
        {
            connection.Abort();
            if (client.Completion is { } loop)
            {
                await loop.ConfigureAwait(false); // the read loop disposes the connection
            }
            else
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>What a probe of one destination sends and expects (<paramref name="Tls"/>: over TLS; <paramref name="Http2Head"/>: probe over HTTP/2 instead).</summary>
    internal sealed record Probe(EndPoint EndPoint, byte[] Request, StatusRanges Expected, TimeSpan Timeout,
        ProxyCore.Transport.Tls.UpstreamTlsOptions? Tls = null, HttpHead? Http2Head = null);
}

/// <summary>
/// Consecutive passes and failures of one destination's probes against the two thresholds. Hysteresis
/// on purpose: one lost probe must not take a destination out, and one lucky probe must not bring a
/// failing one back.
/// </summary>
internal struct HealthCounter
{
    private int _passes;
    private int _failures;

    /// <summary>Counts one probe; returns the new verdict when it changes, else null.</summary>
    public bool? Record(bool passed, bool healthy, int healthyThreshold, int unhealthyThreshold)
    {
        if (passed)
        {
            _failures = 0;
            _passes = Math.Min(_passes + 1, healthyThreshold);
            return !healthy && _passes >= healthyThreshold ? true : null;
        }
        _passes = 0;
        _failures = Math.Min(_failures + 1, unhealthyThreshold);
        return healthy && _failures >= unhealthyThreshold ? false : null;
    }
}
