using System.Diagnostics;
using System.Text;
using ProxyCore.Proxy.Metrics;

namespace ProxyCore.Proxy.Tests;

public sealed class HistogramTests
{
    [Fact]
    public void Observe_CountsInTheRightBucket_CumulativeInExport()
    {
        var histogram = new Histogram([0.001, 0.01, 0.1]);
        histogram.Observe(Stopwatch.Frequency / 2000);   // 0.5 ms
        histogram.Observe(Stopwatch.Frequency / 200);    // 5 ms
        histogram.Observe(Stopwatch.Frequency / 200);    // 5 ms
        histogram.Observe(Stopwatch.Frequency);          // 1 s
        var text = new StringBuilder();
        histogram.WriteTo(text, "x", "");
        string output = text.ToString();
        Assert.Contains("x_bucket{le=\"0.001\"} 1\n", output);
        Assert.Contains("x_bucket{le=\"0.01\"} 3\n", output);
        Assert.Contains("x_bucket{le=\"0.1\"} 3\n", output);
        Assert.Contains("x_bucket{le=\"+Inf\"} 4\n", output);
        Assert.Contains("x_count 4\n", output);
        Assert.Equal(4, histogram.Count);
    }

    [Fact]
    public void RecordRequest_AfterFirstSight_AllocatesNothing()
    {
        var metrics = new ProxyMetrics();
        int calls = 0;
        // Warm up: first sight, and the JIT's tiers.
        Assert.Equal(0, Allocations.SteadyState(() => { metrics.RecordRequest("route", 200, 100); calls++; }, 1000, warmUps: 10_000));
        Assert.Equal(calls, metrics.RequestCount("route", 200));
    }

    [Fact]
    public void RecordRequest_ByRouteSeries_AllocatesNothing_AndFeedsTheRouteHistogram()
    {
        var metrics = new ProxyMetrics();
        var route = metrics.ForRoute("r");
        int calls = 0;
        Assert.Equal(0, Allocations.SteadyState(() =>
        {
            metrics.RecordRequest(route, 200, 100);
            route.RecordRejection("rate-limited");
            calls++;
        }, 1000, warmUps: 10_000));
        Assert.Equal(calls, route.Duration.Count);
        Assert.Contains($"proxycore_rate_limit_rejections_total{{route=\"r\"}} {calls}\n", metrics.Export());
    }
}
