namespace ProxyCore.Transport;

/// <summary>
/// Composes connection middleware (TLS, logging, limits) in front of a terminal handler:
/// the first <see cref="Use"/> runs first.
/// </summary>
public sealed class ConnectionBuilder
{
    private readonly List<Func<ConnectionDelegate, ConnectionDelegate>> _middleware = new();

    public ConnectionBuilder Use(Func<ConnectionDelegate, ConnectionDelegate> middleware)
    {
        _middleware.Add(middleware);
        return this;
    }

    public ConnectionDelegate Build(ConnectionDelegate terminal)
    {
        var app = terminal;
        for (int i = _middleware.Count - 1; i >= 0; i--)
        {
            app = _middleware[i](app);
        }
        return app;
    }
}
