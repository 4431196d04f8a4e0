using ProxyCore.Routing.Config;

namespace ProxyCore.Routing.Model;

/// <summary>
/// The one mutable thing: which <see cref="ProxySnapshot"/> is current. Readers do one
/// <see cref="Volatile.Read{T}(ref T)"/> and keep what they got for the whole request; a reload
/// builds a whole new snapshot and publishes it with one write, so no request ever sees half of one.
/// </summary>
public sealed class ProxyState
{
    private readonly Lock _swapLock = new();
    private readonly Random? _random;
    private readonly Action<ProxySnapshot>? _prepare;
    private ProxySnapshot _current;

    /// <param name="prepare">
    /// Runs on every new snapshot before it is published (the proxy layer builds route policies there);
    /// if it throws, that snapshot is never published.
    /// </param>
    /// <exception cref="ArgumentException">The config is invalid (the message lists every error).</exception>
    public ProxyState(ProxyConfig initial, Random? random = null, Action<ProxySnapshot>? prepare = null)
    {
        ThrowIfInvalid(initial);
        _random = random;
        _prepare = prepare;
        var first = ProxySnapshot.Build(initial, null, random);
        prepare?.Invoke(first);
        _current = first;
    }

    public ProxySnapshot Current => Volatile.Read(ref _current);

    /// <summary>
    /// Validates and publishes <paramref name="newConfig"/>; destination counters carry over.
    /// An invalid config throws and the current snapshot keeps serving.
    /// </summary>
    /// <exception cref="ArgumentException">The config is invalid (the message lists every error).</exception>
    public ProxySnapshot Swap(ProxyConfig newConfig)
    {
        ThrowIfInvalid(newConfig);
        // Writers are serialised so that two reloads cannot both build on the same previous
        // snapshot and lose one's DestinationState reuse; readers never take this lock.
        lock (_swapLock)
        {
            var next = ProxySnapshot.Build(newConfig, _current, _random);
            _prepare?.Invoke(next);
            Volatile.Write(ref _current, next);
            return next;
        }
    }

    private static void ThrowIfInvalid(ProxyConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var errors = ProxyConfigLoader.Validate(config);
        if (errors.Count > 0)
        {
            throw new ArgumentException("invalid config:" + Environment.NewLine + string.Join(Environment.NewLine, errors), nameof(config));
        }
    }
}
