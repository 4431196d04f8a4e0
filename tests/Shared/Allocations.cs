namespace ProxyCore.Tests.Shared;

/// <summary>
/// Bytes a piece of code allocates on this thread once warm, measured so that a loaded machine cannot fake
/// an allocation. The runtime itself sometimes allocates on the calling thread mid-measurement (tiered JIT
/// installing a method's next tier, on-stack replacement, a type's first use): once, at a moment that
/// depends on how busy the machine is. A CI run saw 808 B in one 50-call window of code that allocates
/// nothing. So the window is measured several times and the smallest result counts: code that allocates
/// per call allocates in every window and still fails; a one-off runtime allocation cannot hit them all.
/// </summary>
internal static class Allocations
{
    public const int Windows = 5;

    /// <summary>Runs <paramref name="action"/> twice to warm up, then <paramref name="iterations"/> times per window; the fewest bytes of any window.</summary>
    public static long SteadyState(Action action, int iterations, int warmUps = 2)
    {
        for (int i = 0; i < warmUps; i++)
        {
            action();
        }
        long fewest = long.MaxValue;
        for (int window = 0; window < Windows && fewest != 0; window++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < iterations; i++)
            {
                action();
            }
            fewest = Math.Min(fewest, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return fewest;
    }

    /// <summary>
    /// Bytes per call allocated by the whole process (every thread) while <paramref name="window"/> makes
    /// <paramref name="calls"/> calls: the fewest of up to <paramref name="windows"/> windows, stopping at the
    /// first under <paramref name="bound"/>. Background work (a GC's bookkeeping, a timer, the thread pool
    /// growing on a loaded machine) can land in one window; a per-request allocation lands in all of them.
    /// </summary>
    public static async Task<double> PerCallAsync(Func<Task> window, long calls, double bound, int windows = 3)
    {
        double fewest = double.MaxValue;
        for (int i = 0; i < windows && fewest >= bound; i++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            await window();
            fewest = Math.Min(fewest, (double)(GC.GetTotalAllocatedBytes(precise: true) - before) / calls);
        }
        return fewest;
    }
}
