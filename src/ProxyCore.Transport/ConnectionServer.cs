namespace ProxyCore.Transport;

/// <summary>
/// Runs a <see cref="ConnectionDelegate"/> for every connection accepted by its listeners and keeps track
/// of them, so that shutdown can drain: stop accepting, let in-flight work finish, then abort what is left.
/// A handler's exception is reported to <c>onError</c> and ends that connection only, never the process.
/// </summary>
/// <remarks>
/// Shutdown, step by step (<see cref="StopAsync"/>):
/// 1. Unbind every listener and wait for the accept loops to end: no new connections.
/// 2. Cancel <see cref="Stopping"/>: handlers finish the request in flight, then close (HTTP/1.1 answers with Connection: close).
/// 3. Wait up to the drain timeout for all handlers to return.
/// 4. Abort the connections still open (their reads and writes fail at once) and wait for their handlers.
/// 5. Dispose the listeners.
/// </remarks>
public sealed class ConnectionServer : IAsyncDisposable
{
    /// <summary>Pause after a failed accept (EMFILE and the like) so a persistent failure does not spin a core.</summary>
    private static readonly TimeSpan AcceptRetryDelay = TimeSpan.FromMilliseconds(100);

    private readonly ConnectionDelegate _handler;
    private readonly Action<string, Exception>? _onError;
    private readonly TimeProvider _timeProvider;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _lock = new();
    private readonly List<IConnectionListener> _listeners = [];
    private readonly List<Task> _acceptLoops = [];
    private readonly HashSet<ConnectionContext> _connections = []; // no wrapper object per connection
    private Task? _stopTask;
    private int _activeConnections;
    private TaskCompletionSource? _drained; // set by StopAsync; completed when the last handler returned

    /// <param name="handler">Runs once per connection; the server disposes the connection when it returns.</param>
    /// <param name="onError">Receives where it happened ("connection c12", "accept on 127.0.0.1:8080") and the
    /// exception; null ignores errors. Must not throw (if it does, that is swallowed too).</param>
    /// <param name="timeProvider">The clock for the drain timeout and accept retry delays; <see cref="TimeProvider.System"/> by default.</param>
    public ConnectionServer(ConnectionDelegate handler, Action<string, Exception>? onError = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(handler);
        _handler = handler;
        _onError = onError;
        _timeProvider = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Connections accepted whose handler has not finished yet.</summary>
    public int ActiveConnections => Volatile.Read(ref _activeConnections);

    /// <summary>Fires when <see cref="StopAsync"/> starts: finish the request in flight, then close.</summary>
    public CancellationToken Stopping => _stopping.Token;

    /// <summary>Starts accepting on <paramref name="listener"/>; may be called for several listeners. The server owns it from now on.</summary>
    /// <param name="listener">The bound listener.</param>
    /// <param name="handler">This listener's own handler (its TLS middleware and protocols, say) instead of the
    /// server's; connections of every listener still count in <see cref="ActiveConnections"/> and drain together.</param>
    /// <exception cref="InvalidOperationException">The server is stopping.</exception>
    public void Start(IConnectionListener listener, ConnectionDelegate? handler = null)
    {
        ArgumentNullException.ThrowIfNull(listener);
        lock (_lock)
        {
            if (_stopTask is not null)
            {
                throw new InvalidOperationException("The connection server is stopping.");
            }
            _listeners.Add(listener);
            _acceptLoops.Add(AcceptLoopAsync(listener, handler ?? _handler));
        }
    }

    /// <summary>Drains and stops (see the steps on the class). Calling it again returns the same task.</summary>
    /// <remarks>Step 4 waits for aborted handlers without a bound: a handler that ignores a dead connection (never
    /// reads, writes or observes <see cref="ConnectionContext.ConnectionClosed"/>) keeps shutdown waiting.</remarks>
    public Task StopAsync(TimeSpan drainTimeout)
    {
        lock (_lock)
        {
            return _stopTask ??= StopCoreAsync(drainTimeout);
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync(TimeSpan.Zero).ConfigureAwait(false);

    private async Task StopCoreAsync(TimeSpan drainTimeout)
    {
        // Step 1: no new connections.
        IConnectionListener[] listeners;
        Task[] acceptLoops;
        lock (_lock)
        {
            listeners = [.. _listeners];
            acceptLoops = [.. _acceptLoops];
        }
        foreach (var listener in listeners)
        {
            try
            {
                await listener.UnbindAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                Report($"unbind of {listener.EndPoint}", ex);
            }
        }
        await Task.WhenAll(acceptLoops).ConfigureAwait(false);

        // Step 2: ask handlers to finish.
        try
        {
            _stopping.Cancel();
        }
        catch (AggregateException ex)
        {
            Report("a Stopping callback", ex);
        }

        // Step 3: wait for them, up to the drain timeout. No new connection comes now (step 1), so the count only falls.
        var drainedSource = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.Exchange(ref _drained, drainedSource); // a full fence: the last handler's decrement sees it, or we see its zero
        if (Volatile.Read(ref _activeConnections) == 0)
        {
            drainedSource.TrySetResult();
        }
        var draining = drainedSource.Task;
        try
        {
            await draining.WaitAsync(drainTimeout, _timeProvider).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Step 4: abort the rest and wait for their handlers to notice.
            var reason = new ConnectionAbortedException("The server is stopping and the drain timeout elapsed.");
            foreach (var connection in SnapshotConnections())
            {
                connection.Abort(reason);
            }
            await draining.ConfigureAwait(false);
        }

        // Step 5.
        foreach (var listener in listeners)
        {
            try
            {
                await listener.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                Report($"dispose of {listener.EndPoint}", ex);
            }
        }
    }

    private async Task AcceptLoopAsync(IConnectionListener listener, ConnectionDelegate handler)
    {
        // Let Start return before the first accept completes synchronously on a busy listener.
        await Task.Yield();
        while (true)
        {
            ConnectionContext? connection;
            try
            {
                connection = await listener.AcceptAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // Typically EMFILE (out of file descriptors): transient, so keep the listener, but pause
                // instead of spinning on an accept that fails at once.
                Report($"accept on {listener.EndPoint}", ex);
                if (_stopping.IsCancellationRequested)
                {
                    return;
                }
                await Task.Delay(AcceptRetryDelay, _timeProvider).ConfigureAwait(false);
                continue;
            }
            if (connection is null)
            {
                return; // Unbound.
            }

            lock (_lock)
            {
                _connections.Add(connection);
            }
            Interlocked.Increment(ref _activeConnections);
            _ = RunAsync(connection, handler);
        }
    }

    private async Task RunAsync(ConnectionContext connection, ConnectionDelegate handler)
    {
        // The handler runs on the thread pool, not inline on the accept loop: its synchronous
        // prefix (parsing a first request already received) must not delay the next accept.
        await Task.Yield();
        try
        {
            await handler(connection).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Report($"connection {connection.ConnectionId}", ex);
        }

        try
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Report($"dispose of connection {connection.ConnectionId}", ex);
        }
        finally
        {
            lock (_lock)
            {
                _connections.Remove(connection);
            }
            if (Interlocked.Decrement(ref _activeConnections) == 0)
            {
                Volatile.Read(ref _drained)?.TrySetResult();
            }
        }
    }

    private ConnectionContext[] SnapshotConnections()
    {
        lock (_lock)
        {
            return [.. _connections];
        }
    }

    private void Report(string where, Exception ex)
    {
        try
        {
            _onError?.Invoke(where, ex);
        }
        catch
        {
            // A failing error sink must not take the server down with it.
        }
    }
}
