using System.Net;
using System.Reflection;
using System.Runtime.InteropServices;
using ProxyCore.Routing.Config;

namespace ProxyCore.Server;

/// <summary>The `proxycore` command line (contract in DESIGN.md).</summary>
public static class Program
{
    private const string Usage = """
        proxycore — reverse proxy, API gateway and LLM gateway in one binary

        Usage:
          proxycore                                  run the embedded demo: proxy on 127.0.0.1:8080,
                                                     admin on 127.0.0.1:9901, an in-process demo upstream
          proxycore --listen ADDR --upstream URL     one-route proxy, no config file (sidecar quick start)
          proxycore --config FILE | -c FILE          run from a JSON config; reloads on change and SIGHUP
          proxycore validate FILE                    check a config: exit 0, or 1 with every error and its JSON path
          proxycore mock --listen ADDR               run the mock upstream alone
          proxycore --version | --help

        Options:
          --admin ADDR     admin listener address (default 127.0.0.1:9901; "off" disables it)
          --access-log     write the access log (JSON lines) to stdout
          --quiet          only warnings and errors on stderr

        Signals: SIGTERM/SIGINT drain in-flight requests (timeouts.drain) and exit 0; SIGHUP reloads the config file.
        """;

    public static int Main(string[] args)
    {
        try
        {
            return RunAsync(args).GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            Log.Error(e.Message);
            return 1;
        }
    }

    public static async Task<int> RunAsync(string[] args)
    {
        string? listen = null, upstream = null, configPath = null, admin = null;
        bool accessLog = false;
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            switch (arg)
            {
                case "--help" or "-h":
                    Console.WriteLine(Usage);
                    return 0;
                case "--version":
                    Console.WriteLine("proxycore " + Version);
                    return 0;
                case "validate" when i == 0:
                    return args.Length == 2 ? Validate(args[1]) : UsageError("validate takes exactly one FILE");
                case "mock" when i == 0:
                    return await RunMockAsync(args).ConfigureAwait(false);
                case "--listen" when i + 1 < args.Length:
                    listen = args[++i];
                    break;
                case "--upstream" when i + 1 < args.Length:
                    upstream = args[++i];
                    break;
                case "--config" or "-c" when i + 1 < args.Length:
                    configPath = args[++i];
                    break;
                case "--admin" when i + 1 < args.Length:
                    admin = args[++i];
                    break;
                case "--access-log":
                    accessLog = true;
                    break;
                case "--quiet":
                    Log.Quiet = true;
                    break;
                default:
                    return UsageError($"unknown or incomplete argument '{arg}'");
            }
        }

        if (configPath is not null && (listen is not null || upstream is not null))
        {
            return UsageError("--config cannot be combined with --listen/--upstream");
        }
        if ((listen is null) != (upstream is null))
        {
            return UsageError("--listen and --upstream go together");
        }

        SimpleHttpServer? demoUpstream = null;
        ProxyConfig config;
        if (configPath is not null)
        {
            var loaded = ProxyConfigLoader.LoadFile(configPath);
            if (!loaded.IsValid)
            {
                PrintErrors(configPath, loaded.Errors);
                return 1;
            }
            config = loaded.Config!;
        }
        else if (listen is not null)
        {
            config = ProxyConfig.ForUpstream(listen, upstream!);
        }
        else
        {
            demoUpstream = SimpleHttpServer.Start(new IPEndPoint(IPAddress.Loopback, 0), new MockUpstream());
            config = DemoConfig(demoUpstream.EndPoint);
            accessLog = true;
        }
        config = WithOverrides(config, admin, accessLog);
        var errors = ProxyConfigLoader.Validate(config);
        if (errors.Count > 0)
        {
            PrintErrors("command line", errors);
            return 1;
        }

        if (config.Transport.InlineCompletions && Environment.GetEnvironmentVariable(InlineCompletionsVariable) is null)
        {
            // The runtime reads this once, when its socket engine starts (no socket was used yet in this
            // process): completions then run on its epoll threads, one per core, instead of the thread pool.
            Environment.SetEnvironmentVariable(InlineCompletionsVariable, "1");
        }
        await using var host = ProxyHost.Start(config);
        for (int i = 0; i < host.ListenEndPoints.Count; i++)
        {
            string scheme = config.Listeners[i].Tls is null ? "http" : "https";
            Log.Info($"proxycore {Version} listening on {scheme}://{host.ListenEndPoints[i]}");
        }
        if (host.AdminEndPoint is not null)
        {
            Log.Info($"admin on http://{host.AdminEndPoint} (/healthz /readyz /metrics /config)");
        }
        if (demoUpstream is not null)
        {
            Log.Info($"embedded demo: try `curl -i http://{host.ListenEndPoints[0]}/` (demo upstream on {demoUpstream.EndPoint})");
            Log.Info($"embedded demo LLM: try `curl http://{host.ListenEndPoints[0]}/v1/chat/completions -d '{{\"model\":\"gpt-4o-mini\",\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}'`, then /metrics on the admin port");
        }

        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stop.TrySetResult(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stop.TrySetResult(); });
        using var watcher = configPath is not null ? new ConfigWatcher(configPath, host) : null;
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true;
            watcher?.ReloadNow("SIGHUP");
        });

        await stop.Task.ConfigureAwait(false);
        var drain = config.Timeouts.Drain;
        Log.Info($"stopping: draining in-flight requests for up to {ConfigValues.FormatDuration(drain)}");
        await host.StopAsync(drain).ConfigureAwait(false);
        if (demoUpstream is not null)
        {
            await demoUpstream.StopAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        }
        Log.Info("stopped");
        return 0;
    }

    private const string InlineCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    internal static string Version => typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    private static int UsageError(string message)
    {
        Console.Error.WriteLine("proxycore: " + message);
        Console.Error.WriteLine("Run `proxycore --help` for usage.");
        return 2;
    }

    private static int Validate(string path)
    {
        var result = ProxyConfigLoader.LoadFile(path);
        if (result.IsValid)
        {
            Console.WriteLine($"{path}: valid");
            return 0;
        }
        PrintErrors(path, result.Errors);
        return 1;
    }

    private static void PrintErrors(string source, IReadOnlyList<ConfigError> errors)
    {
        Console.Error.WriteLine($"{source}: {errors.Count} error(s)");
        foreach (var error in errors)
        {
            Console.Error.WriteLine("  " + error);
        }
    }

    private static async Task<int> RunMockAsync(string[] args)
    {
        string address = "127.0.0.1:9000";
        for (int i = 1; i < args.Length; i++)
        {
            if (args[i] == "--listen" && i + 1 < args.Length)
            {
                address = args[++i];
            }
            else if (args[i] == "--quiet")
            {
                Log.Quiet = true;
            }
            else
            {
                return UsageError($"mock: unknown or incomplete argument '{args[i]}'");
            }
        }
        await using var server = SimpleHttpServer.Start(ProxyHost.ParseEndPoint(address), new MockUpstream());
        Log.Info($"mock upstream listening on http://{server.EndPoint}");
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stop.TrySetResult(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stop.TrySetResult(); });
        await stop.Task.ConfigureAwait(false);
        await server.StopAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        return 0;
    }

    /// <summary>The no-argument run: one route to the in-process demo upstream, access log on stdout.</summary>
    internal static ProxyConfig DemoConfig(IPEndPoint upstream) => new()
    {
        Listeners = [new ListenerConfig { Address = "127.0.0.1:8080" }],
        Admin = new AdminConfig { Address = "127.0.0.1:9901" },
        Routes =
        [
            new RouteConfig { Id = "demo", Match = new RouteMatchConfig { Path = "/" }, Cluster = "demo" },
            // The mock LLM behind the LLM stage: OpenAI and Anthropic clients both work offline, open (no keys).
            new RouteConfig
            {
                Id = "llm-demo",
                Match = new RouteMatchConfig { Path = "/v1/" },
                Cluster = "demo",
                Llm = new LlmConfig
                {
                    Providers =
                    [
                        new LlmProviderConfig { Name = "mock-openai", Type = "openai", Cluster = "demo" },
                        new LlmProviderConfig { Name = "mock-anthropic", Type = "anthropic", Cluster = "demo" },
                    ],
                    Pricing = new Dictionary<string, LlmPricingConfig>
                    {
                        ["gpt-4o-mini"] = new() { InputPer1M = 0.15, OutputPer1M = 0.60 },
                        ["claude-haiku-4-5"] = new() { InputPer1M = 1.00, OutputPer1M = 5.00 },
                    },
                },
            },
        ],
        Clusters = [new ClusterConfig { Id = "demo", Destinations = [new DestinationConfig { Address = $"http://{upstream}" }] }],
        AccessLog = new AccessLogConfig { Enabled = true },
    };

    private static ProxyConfig WithOverrides(ProxyConfig config, string? admin, bool accessLog)
    {
        if (admin is null && (!accessLog || config.AccessLog.Enabled))
        {
            return config;
        }
        return new ProxyConfig
        {
            Listeners = config.Listeners,
            Admin = admin is null ? config.Admin : admin == "off" ? new AdminConfig { Enabled = false } : new AdminConfig { Address = admin },
            Routes = config.Routes,
            Clusters = config.Clusters,
            Limits = config.Limits,
            Timeouts = config.Timeouts,
            Forwarding = config.Forwarding,
            AccessLog = accessLog ? new AccessLogConfig { Enabled = true, Path = config.AccessLog.Path } : config.AccessLog,
            Tracing = config.Tracing,
            Transport = config.Transport,
        };
    }
}

/// <summary>Reloads the config when its file changes (debounced) or on demand (SIGHUP).</summary>
internal sealed class ConfigWatcher : IDisposable
{
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(300);

    private readonly string _path;
    private readonly ProxyHost _host;
    private readonly FileSystemWatcher _watcher;
    private readonly Timer _timer;
    private readonly object _gate = new();

    public ConfigWatcher(string path, ProxyHost host)
    {
        _path = Path.GetFullPath(path);
        _host = host;
        _timer = new Timer(_ => ReloadNow("file change"));
        _watcher = new FileSystemWatcher(Path.GetDirectoryName(_path)!, Path.GetFileName(_path))
        {
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.FileName | NotifyFilters.CreationTime,
        };
        _watcher.Changed += (_, _) => _timer.Change(Debounce, Timeout.InfiniteTimeSpan);
        _watcher.Created += (_, _) => _timer.Change(Debounce, Timeout.InfiniteTimeSpan);
        _watcher.Renamed += (_, _) => _timer.Change(Debounce, Timeout.InfiniteTimeSpan);
        _watcher.EnableRaisingEvents = true;
    }

    public void ReloadNow(string trigger)
    {
        try
        {
            Reload(trigger);
        }
        catch (Exception e)
        {
            // Runs on a timer or signal thread: an escaping exception would end the process.
            Log.Error($"config reload ({trigger}) failed, the previous config keeps serving: {e.Message}");
        }
    }

    private void Reload(string trigger)
    {
        lock (_gate)
        {
            var result = ProxyConfigLoader.LoadFile(_path);
            if (!result.IsValid)
            {
                Log.Error($"config reload ({trigger}) rejected, the previous config keeps serving: {result.Errors.Count} error(s)");
                foreach (var error in result.Errors)
                {
                    Log.Error("  " + error);
                }
                return;
            }
            foreach (var note in _host.Reload(result.Config!))
            {
                Log.Warn("config reload: " + note);
            }
            Log.Info($"config reloaded ({trigger}): snapshot version {_host.Current.Version}");
        }
    }

    public void Dispose()
    {
        _watcher.Dispose();
        _timer.Dispose();
    }
}
