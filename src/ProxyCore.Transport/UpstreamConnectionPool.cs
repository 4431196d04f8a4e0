using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ProxyCore.Transport.Tls;

namespace ProxyCore.Transport;

/// <summary>
/// Keeps idle upstream connections per endpoint for reuse (HTTP/1.1 keep-alive) and dials new ones.
/// Rent newest first: the most recently used connection is the least likely to have been closed by the
/// upstream's keep-alive timeout, and its buffers are still warm. Idle connections older than
/// <see cref="UpstreamPoolOptions.IdleTimeout"/> are closed by a timer on the injected <see cref="TimeProvider"/>.
/// </summary>
/// <remarks>
/// Each endpoint's idle list is a ring buffer under its own small lock. The lock is held for a few
/// instructions (no I/O, no allocation) and only requests to the same endpoint contend on it. A lock-free
/// stack was considered: <see cref="ConcurrentStack{T}"/> allocates a node per push, and a node-free
/// Treiber stack over an array needs ABA protection and still cannot evict its oldest entry cheaply.
/// Rent and Return allocate nothing once an endpoint's ring has grown; dialling allocates (a socket, pipes).
/// </remarks>
public sealed class UpstreamConnectionPool : IAsyncDisposable
{
    /// <summary>
    /// How often idle connections are checked for expiry: a connection lives at most this much past its
    /// idle timeout. One second costs nothing measurable and stays well inside typical upstream keep-alives.
    /// </summary>
    private static readonly TimeSpan EvictionInterval = TimeSpan.FromSeconds(1);

    private readonly IConnectionFactory _factory;
    private readonly TimeProvider _timeProvider;
    private readonly ConcurrentDictionary<PoolKey, EndpointPool> _pools = new();
    private EndpointPool? _lastPool;
    private readonly ITimer _evictionTimer;
    private readonly List<ConnectionContext> _evicted = [];  // only touched by the eviction pass (guarded by _evicting)
    private int _evicting;
    private int _idleCount;
    private volatile bool _disposed;

    public UpstreamConnectionPool(IConnectionFactory factory, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(factory);
        _factory = factory;
        _timeProvider = timeProvider ?? TimeProvider.System;
        _evictionTimer = _timeProvider.CreateTimer(static state => ((UpstreamConnectionPool)state!).EvictExpired(), this, EvictionInterval, EvictionInterval);
    }

    /// <summary>The clock the pool's timers run on (the HTTP/2 pool shares it).</summary>
    public TimeProvider TimeProvider => _timeProvider;

    /// <summary>Idle connections held, over all endpoints.</summary>
    public int IdleCount => Volatile.Read(ref _idleCount);

    /// <summary>
    /// A connection to <paramref name="endPoint"/>: the newest idle one that is still usable, else a new one.
    /// An idle connection is unusable when the upstream closed it (its input completed) or sent bytes nobody
    /// asked for; those are disposed and the next one is tried. Completes synchronously on reuse.
    /// </summary>
    /// <exception cref="UpstreamConnectException">Dialling failed; <see cref="UpstreamConnectException.Reason"/> says why.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired (not the connect timeout).</exception>
    /// <remarks>The factory must honour the token it is given: the connect timeout works through it.</remarks>
    public ValueTask<UpstreamLease> RentAsync(EndPoint endPoint, UpstreamPoolOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        ArgumentNullException.ThrowIfNull(options);
        ObjectDisposedException.ThrowIf(_disposed, this);

        // The last pool rented from, checked by reference first: a route's destination hands the same EndPoint
        // object every time, and the dictionary lookup (hashing and comparing IPEndPoints) costs more than the rest of a reuse.
        var pool = _lastPool;
        if (pool is null || !ReferenceEquals(pool.EndPoint, endPoint) || !ReferenceEquals(pool.Tls, options.Tls)
            || !ReferenceEquals(pool.Limit, options.ConnectionLimit))
        {
            pool = _pools.GetOrAdd(new PoolKey(endPoint, options.Tls, options.ConnectionLimit),
                static (key, self) => new EndpointPool(self, key.EndPoint, key.Tls, key.Limit), this);
            _lastPool = pool;
        }
        if (pool.Limit is not null && !pool.Registered)
        {
            pool.RegisterOnce(); // once per endpoint, after GetOrAdd settled which instance won
        }
        // On an epoll reactor, prefer an upstream connection driven by the same reactor: its response then
        // resumes the relay on this thread, and the request never wakes a second one.
        var affinity = Epoll.EpollReactor.Current;
        while (pool.TryPop(affinity, out var connection))
        {
            if (IsUsable(connection))
            {
                return new ValueTask<UpstreamLease>(new UpstreamLease(connection, isReused: true, pool, options));
            }
            DisposeInBackground(connection, pool.Limit);
        }
        return DialAsync(pool, options, cancellationToken);
    }

    /// <summary>
    /// Gives back a connection whose response was read to the end and consumed (AdvanceTo past it: the
    /// stale check uses TryRead, which does not report bytes that were only examined). It is kept (newest first, stamped for
    /// idle eviction) if it is still open; when the endpoint already holds
    /// <see cref="UpstreamPoolOptions.MaxIdlePerEndpoint"/> idle connections, the oldest one is closed.
    /// </summary>
    public void Return(UpstreamLease lease)
    {
        var pool = lease.Pool ?? throw new ArgumentException("The lease did not come from a pool.", nameof(lease));
        var options = lease.Options!;
        var connection = lease.Connection;
        // Only the cheap check here: the full one (a TryRead, i.e. the pipe's lock) runs when the connection is
        // rented again, which is where staleness matters; the response was read to its end just now.
        if (_disposed || connection.ConnectionClosed.IsCancellationRequested)
        {
            DisposeInBackground(connection, pool.Limit);
            return;
        }

        long deadline = options.IdleTimeout == Timeout.InfiniteTimeSpan
            ? long.MaxValue
            : _timeProvider.GetTimestamp() + (long)(options.IdleTimeout.TotalSeconds * _timeProvider.TimestampFrequency);
        var evicted = pool.Push(connection, deadline, options.MaxIdlePerEndpoint);
        if (evicted is not null)
        {
            DisposeInBackground(evicted, pool.Limit);
        }
        if (!ReferenceEquals(evicted, connection))
        {
            // A connection went idle: a request waiting at the cluster's cap can take it (or close it to dial its own destination).
            pool.Limit?.WakeOne();
        }
    }

    /// <summary>Disposes a connection that must not carry another request (body not read to the end, protocol error).</summary>
    public void Discard(UpstreamLease lease)
    {
        if (lease.Connection is { } connection)
        {
            DisposeInBackground(connection, lease.Pool?.Limit);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _evictionTimer.Dispose();

        var all = new List<ConnectionContext>();
        foreach (var pool in _pools.Values)
        {
            pool.Close(all);
            foreach (var connection in all)
            {
                await DisposeQuietlyAsync(connection).ConfigureAwait(false);
                pool.Limit?.Release();
            }
            all.Clear();
        }
    }

    private async ValueTask<UpstreamLease> DialAsync(EndpointPool pool, UpstreamPoolOptions options, CancellationToken cancellationToken)
    {
        var limit = pool.Limit;
        if (limit is not null && !limit.TryAcquire())
        {
            var got = await WaitUnderLimitAsync(pool, limit, options, cancellationToken).ConfigureAwait(false);
            if (got is not null)
            {
                return new UpstreamLease(got, isReused: true, pool, options);
            }
        }
        // From here this dial holds a slot of the limit (if any); it is released when the connection closes.
        ConnectionContext connection;
        try
        {
            connection = await ConnectAsync(pool.EndPoint, options, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            limit?.Release();
            throw;
        }
        return new UpstreamLease(connection, isReused: false, pool, options);
    }

    /// <summary>
    /// The cluster is at its connection cap: make room by closing another destination's idle connection, or
    /// wait (as one of at most MaxPending) up to the connect timeout until a connection of this destination
    /// goes idle (returned) or a slot frees (one closed). Returns an idle connection to reuse, or null when
    /// the caller now holds a slot to dial with.
    /// </summary>
    private async ValueTask<ConnectionContext?> WaitUnderLimitAsync(EndpointPool pool, UpstreamConnectionLimit limit, UpstreamPoolOptions options,
        CancellationToken cancellationToken)
    {
        if (await TryTakeAsync(pool, limit).ConfigureAwait(false) is { } first)
        {
            return first.Connection;
        }
        if (!limit.TryEnterPending())
        {
            throw new UpstreamConnectException(pool.EndPoint, UpstreamConnectFailure.PendingFull);
        }
        try
        {
            using var timeout = new CancellationTokenSource(options.ConnectTimeout, _timeProvider);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
            while (true)
            {
                var waiter = new UpstreamConnectionLimit.PendingWaiter();
                limit.Enqueue(waiter);
                // Look again once queued: a slot that freed between the first look and the enqueue woke nobody.
                if (await TryTakeAsync(pool, limit).ConfigureAwait(false) is { } taken)
                {
                    if (!waiter.TrySetCanceled())
                    {
                        limit.WakeOne(); // this waiter was woken too: the wake was meant for someone, pass it on
                    }
                    return taken.Connection;
                }
                using (linked.Token.UnsafeRegister(static state => ((UpstreamConnectionLimit.PendingWaiter)state!).TrySetCanceled(), waiter))
                {
                    try
                    {
                        await waiter.Task.ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                    {
                        throw new OperationCanceledException("The caller gave up waiting for an upstream connection.", null, cancellationToken);
                    }
                    catch (OperationCanceledException)
                    {
                        limit.CountTimeout();
                        throw new UpstreamConnectException(pool.EndPoint, UpstreamConnectFailure.PendingTimeout);
                    }
                }
            }
        }
        finally
        {
            limit.ExitPending();
        }
    }

    /// <summary>
    /// One look under the cap: an idle connection of this destination, else a free slot, else the slot of
    /// another destination's idle connection (closed first, so the upstream never sees more than the cap).
    /// Null when none; a result with a null connection means "a slot is yours, dial".
    /// </summary>
    private async ValueTask<TakeResult?> TryTakeAsync(EndpointPool pool, UpstreamConnectionLimit limit)
    {
        if (pool.TryPop(null, out var idle))
        {
            if (IsUsable(idle))
            {
                return new TakeResult(idle);
            }
            await DisposeQuietlyAsync(idle).ConfigureAwait(false);
            return new TakeResult(null); // its slot is ours
        }
        if (limit.TryAcquire())
        {
            return new TakeResult(null);
        }
        if (limit.TryStealIdle(pool, out var victim))
        {
            await DisposeQuietlyAsync(victim).ConfigureAwait(false);
            return new TakeResult(null);
        }
        return null;
    }

    private readonly record struct TakeResult(ConnectionContext? Connection);

    /// <summary>
    /// Dials a new connection that the caller owns (not pooled here): the HTTP/2 upstream pool multiplexes
    /// its own. Same connect timeout and failure classification as <see cref="RentAsync"/>.
    /// </summary>
    /// <exception cref="UpstreamConnectException">Dialling failed; <see cref="UpstreamConnectException.Reason"/> says why.</exception>
    public async ValueTask<ConnectionContext> ConnectAsync(EndPoint endPoint, UpstreamPoolOptions options, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var timeout = new CancellationTokenSource(options.ConnectTimeout, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            var connection = await _factory.ConnectAsync(endPoint, linked.Token).ConfigureAwait(false);
            if (options.Tls is { } tls)
            {
                connection = await tls.AuthenticateAsync(connection, endPoint, linked.Token).ConfigureAwait(false);
            }
            return connection;
        }
        catch (OperationCanceledException ex) when (cancellationToken.IsCancellationRequested)
        {
            // The caller gave up: report it with the caller's token, as a cancellation and not a connect failure.
            throw new OperationCanceledException(ex.Message, ex, cancellationToken);
        }
        catch (OperationCanceledException ex)
        {
            Debug.Assert(timeout.IsCancellationRequested);
            throw new UpstreamConnectException(endPoint, UpstreamConnectFailure.Timeout, ex);
        }
        catch (SocketException ex)
        {
            throw new UpstreamConnectException(endPoint, Classify(ex.SocketErrorCode), ex);
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not UpstreamConnectException)
        {
            throw new UpstreamConnectException(endPoint, UpstreamConnectFailure.Other, ex);
        }
    }

    internal static UpstreamConnectFailure Classify(SocketError error) => error switch
    {
        SocketError.ConnectionRefused => UpstreamConnectFailure.Refused,
        SocketError.TimedOut => UpstreamConnectFailure.Timeout,
        SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.HostDown or SocketError.NetworkDown
            => UpstreamConnectFailure.Unreachable,
        SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain or SocketError.NoRecovery
            => UpstreamConnectFailure.DnsFailure,
        _ => UpstreamConnectFailure.Other,
    };

    /// <summary>
    /// An idle connection must have nothing to read: between responses an HTTP/1.1 upstream sends nothing,
    /// so EOF means it closed the connection and bytes mean it is confused (or answered twice).
    /// </summary>
    private static bool IsUsable(ConnectionContext connection)
    {
        if (connection.ConnectionClosed.IsCancellationRequested)
        {
            return false;
        }
        try
        {
            var input = connection.Transport.Input;
            if (!input.TryRead(out var result))
            {
                return true;
            }
            bool usable = !result.IsCompleted && !result.IsCanceled && result.Buffer.IsEmpty;
            input.AdvanceTo(result.Buffer.Start);
            return usable;
        }
        catch (Exception)
        {
            return false; // Input completed with an error (reset) or by the app: not reusable either way.
        }
    }

    private void EvictExpired()
    {
        if (Interlocked.Exchange(ref _evicting, 1) != 0)
        {
            return; // The previous pass still runs.
        }
        try
        {
            long now = _timeProvider.GetTimestamp();
            foreach (var pool in _pools.Values)
            {
                pool.RemoveExpired(now, _evicted);
                foreach (var connection in _evicted)
                {
                    DisposeInBackground(connection, pool.Limit);
                }
                _evicted.Clear();
            }
        }
        finally
        {
            Volatile.Write(ref _evicting, 0);
        }
    }

    private static void DisposeInBackground(ConnectionContext connection, UpstreamConnectionLimit? limit)
    {
        if (limit is null)
        {
            _ = DisposeQuietlyAsync(connection);
        }
        else
        {
            _ = DisposeAndReleaseAsync(connection, limit);
        }
    }

    /// <summary>The slot frees only once the socket is closed, so a waiter's new dial never overlaps it at the upstream.</summary>
    private static async Task DisposeAndReleaseAsync(ConnectionContext connection, UpstreamConnectionLimit limit)
    {
        await DisposeQuietlyAsync(connection).ConfigureAwait(false);
        limit.Release();
    }

    private static async ValueTask DisposeQuietlyAsync(ConnectionContext connection)
    {
        try
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception)
        {
            // A connection we are throwing away failing to close cleanly changes nothing for anyone.
        }
    }

    /// <summary>Connections are interchangeable when they go to the same endpoint with the same TLS settings (or none).</summary>
    private readonly record struct PoolKey(EndPoint EndPoint, UpstreamTlsOptions? Tls, UpstreamConnectionLimit? Limit);

    /// <summary>The idle connections of one endpoint: a ring buffer, newest at the tail, oldest at the head.</summary>
    internal sealed class EndpointPool(UpstreamConnectionPool owner, EndPoint endPoint, UpstreamTlsOptions? tls, UpstreamConnectionLimit? limit)
    {
        private readonly Lock _lock = new();
        private Entry[] _entries = new Entry[4];
        private int _head;
        private int _count;
        private bool _closed;
        private int _registered;

        /// <summary>The cluster cap its connections count against; null = none.</summary>
        public UpstreamConnectionLimit? Limit { get; } = limit;

        public bool Registered => Volatile.Read(ref _registered) != 0;

        public void RegisterOnce()
        {
            if (Interlocked.Exchange(ref _registered, 1) == 0)
            {
                Limit!.Register(this);
            }
        }

        /// <summary>Takes the oldest idle connection (the one a cap closes to make room elsewhere).</summary>
        public bool TryPopOldest(out ConnectionContext connection)
        {
            lock (_lock)
            {
                if (_count == 0)
                {
                    connection = null!;
                    return false;
                }
                connection = _entries[_head].Connection;
                _entries[_head] = default;
                _head = (_head + 1) % _entries.Length;
                _count--;
            }
            Interlocked.Decrement(ref owner._idleCount);
            return true;
        }

        public EndPoint EndPoint { get; } = endPoint;

        /// <summary>How new connections are wrapped in TLS; null for plaintext.</summary>
        public UpstreamTlsOptions? Tls { get; } = tls;

        /// <summary>How many of the newest idle connections are searched for one with the caller's affinity.</summary>
        private const int AffinityScan = 8;

        /// <summary>
        /// Takes the newest idle connection, or when <paramref name="affinity"/> is set, the newest of the last
        /// few whose <see cref="ConnectionContext.Affinity"/> matches (else the newest all the same).
        /// </summary>
        public bool TryPop(object? affinity, out ConnectionContext connection)
        {
            lock (_lock)
            {
                if (_count == 0)
                {
                    connection = null!;
                    return false;
                }
                int newest = _count - 1;
                int pick = newest;
                if (affinity is not null)
                {
                    for (int i = newest; i >= 0 && i > newest - AffinityScan; i--)
                    {
                        if (ReferenceEquals(_entries[(_head + i) % _entries.Length].Connection.Affinity, affinity))
                        {
                            pick = i;
                            break;
                        }
                    }
                }
                connection = _entries[(_head + pick) % _entries.Length].Connection;
                // Close the gap: the newer entries move down one, so the ring stays oldest-to-newest.
                for (int i = pick; i < newest; i++)
                {
                    _entries[(_head + i) % _entries.Length] = _entries[(_head + i + 1) % _entries.Length];
                }
                _entries[(_head + newest) % _entries.Length] = default;
                _count--;
            }
            Interlocked.Decrement(ref owner._idleCount);
            return true;
        }

        /// <summary>Adds <paramref name="connection"/> as the newest; returns a connection the caller must dispose, if any.</summary>
        public ConnectionContext? Push(ConnectionContext connection, long deadline, int maxIdle)
        {
            ConnectionContext? evicted;
            lock (_lock)
            {
                if (_closed || maxIdle <= 0)
                {
                    return connection;
                }
                evicted = null;
                if (_count >= maxIdle)
                {
                    // Full: the oldest goes, the one just used (warm, far from the upstream's timeout) stays.
                    evicted = _entries[_head].Connection;
                    _entries[_head] = default;
                    _head = (_head + 1) % _entries.Length;
                    _count--;
                }
                else if (_count == _entries.Length)
                {
                    Grow();
                }
                _entries[(_head + _count) % _entries.Length] = new Entry(connection, deadline);
                _count++;
            }
            if (evicted is null)
            {
                Interlocked.Increment(ref owner._idleCount);
            }
            return evicted;
        }

        /// <summary>Moves every connection past its deadline into <paramref name="expired"/>, keeping the order of the rest.</summary>
        public void RemoveExpired(long now, List<ConnectionContext> expired)
        {
            int removed = 0;
            lock (_lock)
            {
                int kept = 0;
                for (int i = 0; i < _count; i++)
                {
                    ref var entry = ref _entries[(_head + i) % _entries.Length];
                    if (entry.Deadline <= now)
                    {
                        expired.Add(entry.Connection);
                        removed++;
                    }
                    else
                    {
                        _entries[(_head + kept) % _entries.Length] = entry;
                        kept++;
                    }
                }
                for (int i = kept; i < _count; i++)
                {
                    _entries[(_head + i) % _entries.Length] = default;
                }
                _count = kept;
            }
            if (removed > 0)
            {
                Interlocked.Add(ref owner._idleCount, -removed);
            }
        }

        /// <summary>Takes every idle connection out and refuses new ones (the pool is being disposed).</summary>
        public void Close(List<ConnectionContext> all)
        {
            lock (_lock)
            {
                _closed = true;
            }
            RemoveExpired(long.MaxValue, all);
        }

        private void Grow()
        {
            var larger = new Entry[_entries.Length * 2];
            for (int i = 0; i < _count; i++)
            {
                larger[i] = _entries[(_head + i) % _entries.Length];
            }
            _entries = larger;
            _head = 0;
        }

        private readonly record struct Entry(ConnectionContext Connection, long Deadline);
    }
}
