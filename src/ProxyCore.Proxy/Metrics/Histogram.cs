using System.Diagnostics;
using System.Text;

namespace ProxyCore.Proxy.Metrics;

/// <summary>
/// A Prometheus histogram of durations with fixed buckets: one Interlocked increment per observation,
/// no locks, no allocation. Buckets are kept as Stopwatch ticks so observing needs no conversion.
/// </summary>
public sealed class Histogram
{
    /// <summary>Upper bounds in seconds: 100 µs to 30 s, dense where a proxy's answers fall.</summary>
    public static readonly double[] DefaultBounds = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private readonly double[] _bounds;
    private readonly long[] _boundTicks;
    private readonly long[] _counts; // per bucket (not cumulative); last = +Inf
    private long _sumTicks;

    public Histogram(double[]? bounds = null)
    {
        _bounds = bounds ?? DefaultBounds;
        _boundTicks = new long[_bounds.Length];
        for (int i = 0; i < _bounds.Length; i++)
        {
            _boundTicks[i] = (long)(_bounds[i] * Stopwatch.Frequency);
        }
        _counts = new long[_bounds.Length + 1];
    }

    public void Observe(long elapsedTicks)
    {
        int i = 0;
        var bounds = _boundTicks;
        while (i < bounds.Length && elapsedTicks > bounds[i])
        {
            i++;
        }
        Interlocked.Increment(ref _counts[i]);
        Interlocked.Add(ref _sumTicks, elapsedTicks);
    }

    public long Count
    {
        get
        {
            long total = 0;
            for (int i = 0; i < _counts.Length; i++)
            {
                total += Volatile.Read(ref _counts[i]);
            }
            return total;
        }
    }

    /// <summary>Writes the _bucket, _sum and _count series; <paramref name="labels"/> is "" or `a="b",`.</summary>
    public void WriteTo(StringBuilder output, string name, string labels)
    {
        long cumulative = 0;
        for (int i = 0; i < _bounds.Length; i++)
        {
            cumulative += Volatile.Read(ref _counts[i]);
            output.Append(name).Append("_bucket{").Append(labels).Append("le=\"")
                .Append(_bounds[i].ToString(System.Globalization.CultureInfo.InvariantCulture)).Append("\"} ").Append(cumulative).Append('\n');
        }
        cumulative += Volatile.Read(ref _counts[^1]);
        output.Append(name).Append("_bucket{").Append(labels).Append("le=\"+Inf\"} ").Append(cumulative).Append('\n');
        string bare = labels.Length == 0 ? "" : "{" + labels.TrimEnd(',') + "}";
        output.Append(name).Append("_sum").Append(bare).Append(' ')
            .Append((Volatile.Read(ref _sumTicks) / (double)Stopwatch.Frequency).ToString("0.#########", System.Globalization.CultureInfo.InvariantCulture)).Append('\n');
        output.Append(name).Append("_count").Append(bare).Append(' ').Append(cumulative).Append('\n');
    }
}
