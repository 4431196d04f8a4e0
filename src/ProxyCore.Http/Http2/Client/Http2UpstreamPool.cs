using System.Collections.Concurrent;
using System.Net;
using ProxyCore.Transport;

namespace ProxyCore.Http.Http2.Client;

/// <summary>
/// HTTP/2 connections to upstreams, per destination: a stream is rented on the first connection with a
/// free slot under the peer's SETTINGS_MAX_CONCURRENT_STREAMS; when all are full another connection is
/// dialled (one dial at a time per destination), up to <see cref="Http2ClientOptions.MaxConnectionsPerDestination"/>;
/// past that, requests wait for a slot. A connection that received GOAWAY (or closed) takes no new streams
/// and leaves the list; its in-flight streams finish. One timer drives PING health and idle closing.
/// </summary>
/// <remarks>
/// Renting from a connection with room completes synchronously and allocates nothing; dialling and
/// waiting for a slot allocate (a task, a TaskCompletionSource).
/// </remarks>
public sealed class Http2UpstreamPool : IAsyncDisposable
{
    private static readonly TimeSpan TimerInterval = TimeSpan.FromSeconds(1);

    private readonly UpstreamConnectionPool _dialer;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<EndPoint, Endpoint> _endpoints = new();
    private ITimer? _timer; // started with the first destination: a proxy without HTTP/2 clusters runs no timer
    private readonly List<Http2ClientConnection> _sweep = [];
    private int _sweeping;
    private volatile bool _disposed;

    public Http2UpstreamPool(UpstreamConnectionPool dialer, TimeProvider? timeProvider = null)
    {
        _dialer = dialer;
        _time = timeProvider ?? dialer.TimeProvider;
    }

    /// <summary>
    /// A stream on a connection to <paramref name="endPoint"/>, its response head to be decoded into
    /// <paramref name="head"/> and trailers into <paramref name="trailers"/>. Give it back with
    /// <see cref="Http2ClientConnection.Release"/>.
    /// </summary>
    /// <exception cref="UpstreamConnectException">Dialling or the HTTP/2 handshake failed (nothing was sent).</exception>
    public ValueTask<Http2ClientStream> RentAsync(EndPoint endPoint, Http2ClientOptions options, UpstreamPoolOptions poolOptions,
        ResponseHead head, HttpHead trailers, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_endpoints.TryGetValue(endPoint, out var endpoint))
        {
            endpoint = _endpoints.GetOrAdd(endPoint, static (ep, self) => new Endpoint(self, ep), this);
            StartTimer();
        }
        if (endpoint.TryRent(head, trailers, out var stream))
        {
            return new ValueTask<Http2ClientStream>(stream!);
        }
        return endpoint.RentSlowAsync(options, poolOptions, head, trailers, cancellationToken);
    }

    /// <summary>Open connections to <paramref name="endPoint"/> that take new streams (for tests and metrics).</summary>
    public int ConnectionCount(EndPoint endPoint) => _endpoints.TryGetValue(endPoint, out var endpoint) ? endpoint.Count : 0;

    private void StartTimer()
    {
        if (Volatile.Read(ref _timer) is null)
        {
            var timer = _time.CreateTimer(static state => ((Http2UpstreamPool)state!).Sweep(), this, TimerInterval, TimerInterval);
            if (Interlocked.CompareExchange(ref _timer, timer, null) is not null)
            {
                timer.Dispose();
            }
        }
    }

    private void Sweep()
    {
        if (Interlocked.Exchange(ref _sweeping, 1) != 0)
        {
            return;
        }
        try
        {
            foreach (var endpoint in _endpoints.Values)
            {
                endpoint.Snapshot(_sweep);
            }
            foreach (var connection in _sweep)
            {
                connection.OnTimer();
            }
        }
        finally
        {
            _sweep.Clear();
            Volatile.Write(ref _sweeping, 0);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _timer?.Dispose();
        var all = new List<Http2ClientConnection>();
        foreach (var endpoint in _endpoints.Values)
        {
            endpoint.Snapshot(all);
        }
        foreach (var connection in all)
        {
            connection.Abort();
            if (connection.Completion is { } completion)
            {
                await completion.ConfigureAwait(false);
            }
        }
    }

    /// <summary>One destination's connections.</summary>
    internal sealed class Endpoint(Http2UpstreamPool owner, EndPoint endPoint)
    {
        private readonly object _lock = new();
        private readonly List<Http2ClientConnection> _connections = [];
        private Task? _dialing;
        private TaskCompletionSource? _slotFreed;

        public int Count
        {
            get
            {
                lock (_lock)
                {
                    return _connections.Count;
                }
            }
        }

        public void Snapshot(List<Http2ClientConnection> into)
        {
            lock (_lock)
            {
                into.AddRange(_connections);
            }
        }

        public bool TryRent(ResponseHead head, HttpHead trailers, out Http2ClientStream? stream)
        {
            lock (_lock)
            {
                return TryRentLocked(head, trailers, out stream);
            }
        }

        private bool TryRentLocked(ResponseHead head, HttpHead trailers, out Http2ClientStream? stream)
        {
            // First connection with room: the older connections fill up first, so idle ones can expire.
            foreach (var connection in _connections)
            {
                if (connection.TryRent(head, trailers, out stream))
                {
                    return true;
                }
            }
            stream = null;
            return false;
        }

        public async ValueTask<Http2ClientStream> RentSlowAsync(Http2ClientOptions options, UpstreamPoolOptions poolOptions,
            ResponseHead head, HttpHead trailers, CancellationToken cancellationToken)
        {
            // The cluster's circuit breaker (when it has one): connections over all its destinations are capped by
            // maxConnections, and requests that wait (for a dial in progress, a stream slot or a connection slot)
            // by maxPending, each for at most the connect timeout. The request that starts a dial holds that
            // connection's slot and is not pending, as on HTTP/1.1. A destination with no connection at all dials
            // one even at the cap (Envoy's rule), so a cluster at its cap slows requests down but strands none.
            var limit = poolOptions.ConnectionLimit;
            bool pending = false;
            bool heldWake = false; // woken by the limit (a connection slot freed): pass it on if we do not dial
            CancellationTokenSource? timeout = null;
            CancellationTokenSource? linked = null;
            try
            {
                while (true)
                {
                    Task wait;
                    bool isDial;
                    bool ownDial = false;
                    bool atClusterCap = false;
                    lock (_lock)
                    {
                        if (TryRentLocked(head, trailers, out var stream))
                        {
                            if (heldWake)
                            {
                                limit!.WakeOne();
                            }
                            return stream!;
                        }
                        bool dialled = false;
                        if (_dialing is null && _connections.Count < Math.Max(1, options.MaxConnectionsPerDestination))
                        {
                            bool first = _connections.Count == 0;
                            if (limit is null || limit.TryAcquire() || (first && Acquire(limit)))
                            {
                                _dialing = Task.Run(() => DialAsync(options, poolOptions, limit), CancellationToken.None);
                                dialled = true;
                                // This request dials and holds the slot: it waits for its own connection, not as pending.
                                ownDial = !pending;
                            }
                            else
                            {
                                atClusterCap = true;
                            }
                        }
                        if (heldWake && !dialled)
                        {
                            limit!.WakeOne();
                        }
                        isDial = _dialing is not null;
                        wait = _dialing ?? (_slotFreed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
                    }
                    if (ownDial)
                    {
                        // Our own dial: its failure is ours to report; its success lets the loop rent from it.
                        await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
                        continue;
                    }
                    if (limit is not null && !pending)
                    {
                        if (!limit.TryEnterPending())
                        {
                            throw new UpstreamConnectException(endPoint, UpstreamConnectFailure.PendingFull);
                        }
                        pending = true;
                        timeout = new CancellationTokenSource(poolOptions.ConnectTimeout, owner._time);
                        linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
                    }
                    heldWake = false;
                    UpstreamConnectionLimit.PendingWaiter? waiter = null;
                    if (atClusterCap)
                    {
                        // A slot of the cluster frees when any of its connections closes, maybe to another destination.
                        waiter = new UpstreamConnectionLimit.PendingWaiter();
                        limit!.Enqueue(waiter);
                        if (limit.Open < limit.MaxConnections)
                        {
                            // Freed between our look and the enqueue (that wake found nobody): look again now.
                            if (!waiter.TrySetCanceled())
                            {
                                limit.WakeOne();
                            }
                            continue;
                        }
                        wait = Task.WhenAny(wait, waiter.Task);
                    }
                    try
                    {
                        await wait.WaitAsync(linked?.Token ?? cancellationToken).ConfigureAwait(false);
                    }
                    catch (UpstreamConnectException) when (isDial)
                    {
                        throw;
                    }
                    catch (OperationCanceledException) when (timeout is not null && !cancellationToken.IsCancellationRequested)
                    {
                        limit!.CountTimeout();
                        throw new UpstreamConnectException(endPoint, UpstreamConnectFailure.PendingTimeout);
                    }
                    finally
                    {
                        if (waiter is not null && !waiter.TrySetCanceled())
                        {
                            heldWake = waiter.Task.IsCompletedSuccessfully;
                        }
                    }
                }
            }
            finally
            {
                if (pending)
                {
                    limit!.ExitPending();
                }
                linked?.Dispose();
                timeout?.Dispose();
            }
        }

        /// <summary>Past the cluster's cap, a destination without a connection still gets one (its waiters need something to wait on).</summary>
        private static bool Acquire(UpstreamConnectionLimit limit)
        {
            limit.AcquireOverCap();
            return true;
        }

        private async Task DialAsync(Http2ClientOptions options, UpstreamPoolOptions poolOptions, UpstreamConnectionLimit? limit)
        {
            Http2ClientConnection? started = null;
            try
            {
                var transport = await owner._dialer.ConnectAsync(endPoint, poolOptions, CancellationToken.None).ConfigureAwait(false);
                if (transport.IsTls && transport.NegotiatedProtocol != "h2")
                {
                    // RFC 9113 §3.2: over TLS, HTTP/2 is spoken only after ALPN agreed on "h2".
                    transport.Abort();
                    throw new UpstreamConnectException(endPoint, UpstreamConnectFailure.Tls,
                        new InvalidOperationException($"the upstream did not agree to h2 by ALPN (got '{transport.NegotiatedProtocol ?? "none"}')"));
                }
                var connection = new Http2ClientConnection(transport, options, owner._time) { Owner = this };
                started = connection;
                try
                {
                    await connection.StartAsync(poolOptions.ConnectTimeout, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    transport.Abort();
                    throw new UpstreamConnectException(endPoint, e.InnerException is TimeoutException ? UpstreamConnectFailure.Timeout : UpstreamConnectFailure.Other, e);
                }
                lock (_lock)
                {
                    if (owner._disposed)
                    {
                        connection.Abort();
                    }
                    else if (connection.IsOpen)
                    {
                        _connections.Add(connection);
                    }
                }
            }
            finally
            {
                if (limit is not null)
                {
                    // The slot is the connection's until its read loop ended and the socket is disposed
                    // (GOAWAY drains first); a dial that failed before the loop started gives it back now.
                    if (started?.Completion is { } completion)
                    {
                        _ = completion.ContinueWith(static (_, state) => ((UpstreamConnectionLimit)state!).Release(), limit,
                            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                    }
                    else
                    {
                        limit.Release();
                    }
                }
                TaskCompletionSource? freed;
                lock (_lock)
                {
                    _dialing = null;
                    freed = _slotFreed;
                    _slotFreed = null;
                }
                freed?.TrySetResult();
            }
        }

        /// <summary>A stream slot may have opened (a stream ended, or the peer raised its limit).</summary>
        public void OnStreamReleased(Http2ClientConnection connection)
        {
            TaskCompletionSource? freed;
            lock (_lock)
            {
                freed = _slotFreed;
                _slotFreed = null;
            }
            freed?.TrySetResult();
        }

        /// <summary>The connection takes no more streams (GOAWAY, closed): new requests go elsewhere.</summary>
        public void OnUnavailable(Http2ClientConnection connection)
        {
            TaskCompletionSource? freed;
            lock (_lock)
            {
                _connections.Remove(connection);
                freed = _slotFreed;
                _slotFreed = null;
            }
            freed?.TrySetResult();
        }
    }
}
