// YARP peer for bench/load/run.sh: one catch-all route to one upstream, config held in memory.
// Usage: dotnet YarpPeer.dll --listen 127.0.0.1:18083 --upstream http://127.0.0.1:19000
using Yarp.ReverseProxy.Configuration;

var builder = WebApplication.CreateSlimBuilder(args);

string listen = builder.Configuration["listen"] ?? "127.0.0.1:18083";
string upstream = builder.Configuration["upstream"] ?? "http://127.0.0.1:19000";

builder.Logging.ClearProviders();
builder.Logging.AddConsole();
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.WebHost.UseUrls("http://" + listen);
builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);

builder.Services.AddReverseProxy().LoadFromMemory(
    [
        new RouteConfig
        {
            RouteId = "all",
            ClusterId = "upstream",
            Match = new RouteMatch { Path = "{**catch-all}" },
        },
    ],
    [
        new ClusterConfig
        {
            ClusterId = "upstream",
            Destinations = new Dictionary<string, DestinationConfig>
            {
                ["d1"] = new DestinationConfig { Address = upstream },
            },
        },
    ]);

var app = builder.Build();
app.MapReverseProxy();
app.Run();
