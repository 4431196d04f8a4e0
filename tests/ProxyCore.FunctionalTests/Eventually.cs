using System.Diagnostics;
using System.Text.RegularExpressions;

namespace ProxyCore.FunctionalTests;

/// <summary>
/// Bounded polls for what the proxy records just after an answer goes out (request counts, access-log
/// lines, health and outlier state, mirror results, spans): a client that holds the answer can look a
/// moment before it lands, and a loaded 2-core CI machine stretches that moment. One place, one bound:
/// a condition that holds returns at once, so the bound only costs time when a test is failing anyway.
/// </summary>
internal static partial class Eventually
{
    /// <summary>Generous on purpose: a CI box under load runs 3-5x slower than a quiet one.</summary>
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private static readonly TimeSpan s_pause = TimeSpan.FromMilliseconds(20);

    /// <summary>True once <paramref name="condition"/> holds; false when it still does not after <paramref name="bound"/>.</summary>
    public static async Task<bool> TrueAsync(Func<Task<bool>> condition, TimeSpan? bound = null)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (await condition())
            {
                return true;
            }
            if (clock.Elapsed > (bound ?? Bound))
            {
                return false;
            }
            await Task.Delay(s_pause);
        }
    }

    public static Task<bool> TrueAsync(Func<bool> condition, TimeSpan? bound = null) => TrueAsync(() => Task.FromResult(condition()), bound);

    /// <summary>Waits until <paramref name="condition"/> holds, or fails the test with <paramref name="what"/>.</summary>
    public static async Task UntilAsync(Func<bool> condition, string what, TimeSpan? bound = null)
        => Assert.True(await TrueAsync(condition, bound), $"timed out waiting until {what}");

    /// <summary>
    /// /metrics from <paramref name="admin"/> once <paramref name="done"/> holds for it, or the last scrape
    /// after the bound (the caller's assertions then fail with the text in view).
    /// </summary>
    public static async Task<string> MetricsAsync(Uri admin, Func<string, bool> done, TimeSpan? bound = null)
    {
        using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(30) };
        string metrics = "";
        await TrueAsync(async () => done(metrics = await client.GetStringAsync(new Uri(admin, "/metrics"))), bound);
        return metrics;
    }

    /// <summary>
    /// /metrics once the proxy has counted <paramref name="requests"/> answers in all (proxycore_requests_total
    /// summed): an exchange is counted just after its answer is written, and everything else it records
    /// (upstream time, retries, rejections, compression) lands before that count does.
    /// </summary>
    public static Task<string> MetricsAfterAsync(Uri admin, long requests) => MetricsAsync(admin, m => CountedRequests(m) >= requests);

    public static long CountedRequests(string metrics) => RequestsTotal().Matches(metrics).Sum(m => long.Parse(m.Groups[1].Value));

    [GeneratedRegex("^proxycore_requests_total\\{[^}]*\\} (\\d+)$", RegexOptions.Multiline)]
    private static partial Regex RequestsTotal();
}
