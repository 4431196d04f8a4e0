using System.Buffers;
using System.IO.Pipelines;
using ProxyCore.Http;
using ProxyCore.Http.Http1;
using ProxyCore.Proxy.Metrics;
using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;
using ProxyCore.Transport;

namespace ProxyCore.Proxy.Stages.Mirror;

/// <summary>A route's `mirror` block, built once per snapshot with its target cluster resolved.</summary>
public sealed class RouteMirror
{
    public RouteMirror(MirrorConfig config, ClusterModel cluster)
    {
        Cluster = cluster;
        Percent = config.Percent;
        Timeout = config.Timeout;
        MaxInFlight = config.MaxInFlight;
    }

    public ClusterModel Cluster { get; }

    public double Percent { get; }

    public TimeSpan Timeout { get; }

    public int MaxInFlight { get; }
}

/// <summary>
/// Sends copies of sampled requests to a route's mirror cluster and drops the answers. The client's
/// request never waits for the mirror: its head is copied into a pooled buffer (synchronously, while
/// the exchange still owns it), and the copy is sent from the thread pool on a connection of its own
/// (`Connection: close`, not pooled, so a slow shadow never holds primary connections), bounded by
/// the route's <see cref="RouteMirror.MaxInFlight"/> and timed out by <see cref="RouteMirror.Timeout"/>.
/// Only bodyless requests are mirrored: the relay streams a body once to the primary and keeps none.
/// </summary>
public sealed class TrafficMirror
{
    private static readonly byte[] s_mirrorHeader = "x-proxycore-mirror: 1\r\nconnection: close\r\n\r\n"u8.ToArray();

    private readonly IConnectionFactory _connections;
    private readonly Random _random;
    private readonly TimeProvider _time;

    /// <param name="random">The sampling source; the default is <see cref="Random.Shared"/>. Not locked: a seeded one (tests) must be used from one request at a time.</param>
    public TrafficMirror(IConnectionFactory connections, Random? random = null, TimeProvider? time = null)
    {
        _connections = connections;
        _random = random ?? Random.Shared;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Samples the request and, when it is picked, starts mirroring it. Never throws, never waits.</summary>
    public void Offer(HttpExchange exchange, RouteMirror mirror, RoutePolicies? policies, RouteMetrics metrics)
    {
        if (mirror.Percent <= 0 || (mirror.Percent < 100 && _random.NextDouble() * 100 >= mirror.Percent))
        {
            return;
        }
        metrics.MirrorSeen = true;
        if (exchange.HasRequestBody)
        {
            Interlocked.Increment(ref metrics.MirrorDropped);
            return;
        }
        // The count lives with the route's metrics, not this snapshot's object: the bound holds across reloads.
        if (Interlocked.Increment(ref metrics.MirrorInFlight) > mirror.MaxInFlight)
        {
            Interlocked.Decrement(ref metrics.MirrorInFlight);
            Interlocked.Increment(ref metrics.MirrorDropped);
            return;
        }
        var destination = mirror.Cluster.PickDestination();
        if (destination is null)
        {
            Interlocked.Decrement(ref metrics.MirrorInFlight);
            Interlocked.Increment(ref metrics.MirrorFailed);
            return;
        }
        var (buffer, length) = CopyHead(exchange, destination, policies);
        ThreadPool.UnsafeQueueUserWorkItem(new Job(this, mirror, metrics, destination, buffer, length), preferLocal: false);
    }

    /// <summary>The request head as HTTP/1.1 bytes for <paramref name="destination"/>, in a rented buffer.</summary>
    internal static (byte[] Buffer, int Length) CopyHead(HttpExchange exchange, DestinationModel destination, RoutePolicies? policies)
    {
        var request = exchange.Request;
        ReadOnlySpan<byte> host = policies?.Transforms?.Host is { } rewritten ? rewritten : request.AuthoritySpan.IsEmpty ? destination.HostHeaderBytes : request.AuthoritySpan;
        int size = request.MethodSpan.Length + destination.PathPrefixBytes.Length + request.PathSpan.Length + request.QuerySpan.Length
            + host.Length + exchange.ClientAddress.Length + s_mirrorHeader.Length + 64;
        var headers = request.Headers;
        for (int i = 0; i < headers.Length; i++)
        {
            size += headers[i].Name.Length + headers[i].Value.Length + 4;
        }
        var buffer = ArrayPool<byte>.Shared.Rent(size);
        var span = buffer.AsSpan();
        int n = 0;
        Put(span, ref n, request.MethodSpan);
        Put(span, ref n, " "u8);
        if (request.TargetForm == RequestTargetForm.Asterisk)
        {
            Put(span, ref n, "*"u8);
        }
        else
        {
            Put(span, ref n, destination.PathPrefixBytes);
            Put(span, ref n, request.PathSpan);
            Put(span, ref n, request.QuerySpan);
        }
        Put(span, ref n, " HTTP/1.1\r\nhost: "u8);
        Put(span, ref n, host);
        Put(span, ref n, "\r\n"u8);
        var connection = request.TryGetValue(KnownHeader.Connection, out var named) ? named : default;
        for (int i = 0; i < headers.Length; i++)
        {
            var id = headers[i].Id;
            if (KnownHeaders.IsHopByHop(id) || id is KnownHeader.Host or KnownHeader.ContentLength or KnownHeader.Expect ||
                (!connection.IsEmpty && IsNamedIn(connection, request.Get(headers[i].Name))))
            {
                continue; // RFC 9110 §7.6.1: hop-by-hop, including the fields Connection names
            }
            Put(span, ref n, request.Get(headers[i].Name));
            Put(span, ref n, ": "u8);
            Put(span, ref n, request.Get(headers[i].Value));
            Put(span, ref n, "\r\n"u8);
        }
        // Another X-Forwarded-For line appends to the client's list, as the primary's does.
        Put(span, ref n, "x-forwarded-for: "u8);
        Put(span, ref n, exchange.ClientAddress);
        Put(span, ref n, "\r\n"u8);
        Put(span, ref n, s_mirrorHeader);
        return (buffer, n);
    }

    private static bool IsNamedIn(ReadOnlySpan<byte> connection, ReadOnlySpan<byte> name)
    {
        foreach (var range in connection.Split((byte)','))
        {
            if (System.Text.Ascii.EqualsIgnoreCase(connection[range].Trim(" \t"u8), name))
            {
                return true;
            }
        }
        return false;
    }

    private static void Put(Span<byte> span, ref int offset, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(span[offset..]);
        offset += bytes.Length;
    }

    private async Task SendAsync(Job job)
    {
        bool answered = false;
        try
        {
            using var timeout = new CancellationTokenSource(job.Mirror.Timeout, _time);
            var connection = await _connections.ConnectAsync(job.Destination.EndPoint, timeout.Token).ConfigureAwait(false);
            try
            {
                var flush = await connection.Transport.Output.WriteAsync(job.Buffer.AsMemory(0, job.Length), timeout.Token).ConfigureAwait(false);
                if (!flush.IsCompleted)
                {
                    answered = await DrainAnswerAsync(connection.Transport.Input, timeout.Token).ConfigureAwait(false);
                }
            }
            finally
            {
                connection.Abort();
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }
        catch (Exception)
        {
            // Connect refused, timed out, reset: the mirror's own failure, never the client's.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(job.Buffer);
            Interlocked.Decrement(ref job.Metrics.MirrorInFlight);
            Interlocked.Increment(ref answered ? ref job.Metrics.MirrorSent : ref job.Metrics.MirrorFailed);
        }
    }

    /// <summary>Reads the answer to its end (we asked for Connection: close) and drops it; true when a complete response head came.</summary>
    private static async Task<bool> DrainAnswerAsync(PipeReader input, CancellationToken cancellationToken)
    {
        var head = new ResponseHead();
        bool parsed = false;
        while (true)
        {
            var read = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = read.Buffer;
            if (!parsed)
            {
                head.Reset();
                var status = Http1Parser.TryParseResponse(buffer, head, ProxyCore.Http.HttpMethod.Get, Http1Limits.Default, out _, out _);
                parsed = status == Http1ParseResult.Complete && head.StatusCode >= 200;
                if (status == Http1ParseResult.Error)
                {
                    return false;
                }
            }
            bool done = read.IsCompleted || (parsed && head.Framing == BodyFraming.None);
            input.AdvanceTo(parsed ? buffer.End : buffer.Start, buffer.End);
            if (done)
            {
                head.ReleaseMemory();
                return parsed;
            }
        }
    }

    private sealed class Job(TrafficMirror owner, RouteMirror mirror, RouteMetrics metrics, DestinationModel destination, byte[] buffer, int length) : IThreadPoolWorkItem
    {
        public RouteMirror Mirror => mirror;

        public RouteMetrics Metrics => metrics;

        public DestinationModel Destination => destination;

        public byte[] Buffer => buffer;

        public int Length => length;

        public void Execute() => _ = owner.SendAsync(this);
    }
}
