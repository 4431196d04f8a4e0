using System.Text;
using ProxyCore.Llm.Cache;

namespace ProxyCore.Llm.Tests.Cache;

public class LlmResponseCacheTests
{
    private static byte[] Body(int size, int seed = 0)
    {
        // Answer-like text: compressible, but not trivially.
        var sb = new StringBuilder("{\"choices\":[{\"message\":{\"content\":\"");
        var random = new Random(seed);
        while (sb.Length < size - 5)
        {
            sb.Append("word").Append(random.Next(100)).Append(' ');
        }
        sb.Length = Math.Max(0, size - 5);
        sb.Append("\"}}]}");
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    [Theory]
    [InlineData(10)]
    [InlineData(63)]
    [InlineData(64)]
    [InlineData(4096)]
    [InlineData(100_000)]
    public void Store_ThenGet_SameBytesAndFormat(int size)
    {
        var cache = new LlmResponseCache(10_000_000);
        var body = Body(size);
        Assert.Equal(LlmCacheStoreResult.Stored, cache.Store(1, LlmCachedFormat.OpenAIChatJson, body, TimeSpan.FromHours(1)));
        Assert.True(cache.TryGet(1, out var entry));
        Assert.Equal(body, entry.DecodeToArray());
        Assert.Equal(LlmCachedFormat.OpenAIChatJson, entry.Format);
        Assert.Equal("application/json", entry.ContentType);
        if (size >= 4096)
        {
            Assert.True(entry.Cost - LlmResponseCache.EntryOverheadBytes < size / 2, "LZ4 should at least halve answer-like text");
        }
    }

    [Fact]
    public void TryGet_AfterTtl_MissAndRemoved()
    {
        var clock = new ManualTimeProvider();
        var cache = new LlmResponseCache(1_000_000, clock);
        cache.Store(7, LlmCachedFormat.EventStream, Body(500), TimeSpan.FromMinutes(10));
        clock.Advance(TimeSpan.FromMinutes(9));
        Assert.True(cache.TryGet(7, out _));
        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.False(cache.TryGet(7, out _));
        Assert.Equal(0, cache.Count);
        Assert.Equal(0, cache.TotalBytes);
    }

    [Fact]
    public void TryGet_MaxAge_OlderEntryNotServedButKept()
    {
        var clock = new ManualTimeProvider();
        var cache = new LlmResponseCache(1_000_000, clock);
        cache.Store(7, LlmCachedFormat.OpenAIChatJson, Body(500), TimeSpan.FromHours(1));
        clock.Advance(TimeSpan.FromSeconds(30));
        Assert.False(cache.TryGet(7, out _, maxAge: TimeSpan.FromSeconds(10)));
        Assert.True(cache.TryGet(7, out _, maxAge: TimeSpan.FromSeconds(60)));
        Assert.True(cache.TryGet(7, out _));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void Store_NonPositiveTtl_NotCacheable(int seconds) =>
        Assert.Equal(LlmCacheStoreResult.NotCacheable, new LlmResponseCache(1000).Store(1, LlmCachedFormat.OtherJson, Body(10), TimeSpan.FromSeconds(seconds)));

    [Fact]
    public void Store_LargerThanMaxEntry_TooLarge()
    {
        var cache = new LlmResponseCache(80_000);
        Assert.Equal(10_000, cache.MaxEntryBytes);
        Assert.Equal(LlmCacheStoreResult.TooLarge, cache.Store(1, LlmCachedFormat.OtherJson, Body(10_001), TimeSpan.FromHours(1)));
        Assert.Equal(0, cache.Count);
    }

    [Fact]
    public void Store_OverBudget_EvictsUnreferencedFirstAndStaysBounded()
    {
        var cache = new LlmResponseCache(20_000, maxEntryBytes: 5000);
        var random = new Random(3);
        for (int i = 0; i < 10; i++)
        {
            cache.Store((UInt128)i, LlmCachedFormat.OtherJson, RandomBytes(random, 2000), TimeSpan.FromHours(1));
        }
        Assert.True(cache.TotalBytes <= cache.MaxBytes, $"{cache.TotalBytes}");
        Assert.True(cache.Evictions > 0);
        // Key 9 is present; read it so it is referenced, then overflow again: 9 survives, later unreferenced ones go first.
        Assert.True(cache.TryGet(9, out _));
        for (int i = 10; i < 16; i++)
        {
            cache.Store((UInt128)i, LlmCachedFormat.OtherJson, RandomBytes(random, 2000), TimeSpan.FromHours(1));
        }
        Assert.True(cache.TryGet(9, out _), "a referenced entry gets a second chance");
        Assert.False(cache.TryGet(0, out _));
        Assert.True(cache.TotalBytes <= cache.MaxBytes);
    }

    [Fact]
    public void Store_SameKeyReplaced_CountedOnceAndRingStaysCompact()
    {
        var cache = new LlmResponseCache(1_000_000);
        for (int i = 0; i < 1000; i++)
        {
            cache.Store(5, LlmCachedFormat.OtherJson, Body(100, i), TimeSpan.FromHours(1));
        }
        Assert.Equal(1, cache.Count);
        Assert.True(cache.TryGet(5, out var entry));
        Assert.Equal(entry.Cost, cache.TotalBytes);
        Assert.Equal(Body(100, 999), entry.DecodeToArray());
    }

    [Fact]
    public void Invalidate_Present_RemovedAndUncounted()
    {
        var cache = new LlmResponseCache(1_000_000);
        cache.Store(5, LlmCachedFormat.OtherJson, Body(100), TimeSpan.FromHours(1));
        Assert.True(cache.Invalidate(5));
        Assert.False(cache.Invalidate(5));
        Assert.Equal(0, cache.TotalBytes);
    }

    [Fact]
    public async Task StoreAndGet_Concurrent_BoundedAndConsistent()
    {
        var cache = new LlmResponseCache(200_000, maxEntryBytes: 10_000);
        var bodies = Enumerable.Range(0, 64).Select(i => Body(1000 + i * 37, i)).ToArray();
        var tasks = Enumerable.Range(0, 4).Select(t => Task.Run(() =>
        {
            var random = new Random(t);
            for (int i = 0; i < 20_000; i++)
            {
                int k = random.Next(bodies.Length);
                if (cache.TryGet((UInt128)k, out var entry))
                {
                    Assert.Equal(bodies[k].Length, entry.BodyLength);
                    if (i % 97 == 0)
                    {
                        Assert.Equal(bodies[k], entry.DecodeToArray());
                    }
                }
                else
                {
                    cache.Store((UInt128)k, LlmCachedFormat.OtherJson, bodies[k], TimeSpan.FromHours(1));
                }
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        long live = 0;
        for (int k = 0; k < bodies.Length; k++)
        {
            if (cache.TryGet((UInt128)k, out var entry))
            {
                live += entry.Cost;
            }
        }
        Assert.Equal(live, cache.TotalBytes);
        Assert.True(cache.TotalBytes <= cache.MaxBytes + 4 * 10_000, $"{cache.TotalBytes}");
    }

    private static byte[] RandomBytes(Random random, int size)
    {
        var b = new byte[size];
        random.NextBytes(b);
        return b;
    }
}
