namespace ProxyCore.Server;

/// <summary>Operational log lines on stderr (the access log has its own stream). Not on the request path.</summary>
internal static class Log
{
    private static readonly object s_gate = new();

    public static bool Quiet { get; set; }

    public static void Info(string message) => Write("info", message);

    public static void Warn(string message) => Write("warn", message);

    public static void Error(string message) => Write("error", message);

    private static void Write(string level, string message)
    {
        if (Quiet && level == "info")
        {
            return;
        }
        lock (s_gate)
        {
            Console.Error.WriteLine($"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {level} {message}");
        }
    }
}
