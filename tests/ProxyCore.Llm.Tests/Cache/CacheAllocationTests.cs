using System.Text;
using ProxyCore.Llm.Cache;

namespace ProxyCore.Llm.Tests.Cache;

/// <summary>The exact cache's request path (hash the body, look it up, decode a hit into a reused buffer) allocates nothing.</summary>
public class CacheAllocationTests
{
    private const int Iterations = 100;

    // Warm-up (JIT, tiering, buffer growth), then the fewest bytes of several windows: see Allocations.
    private static long AllocatedBy(Action action) => Allocations.SteadyState(action, Iterations);

    [Theory]
    [InlineData("""{"model":"gpt-4o-mini","temperature":0.2,"stream":true,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2? \u00e9"}]}""")]
    [InlineData("""{"model":"claude-haiku-4-5","max_tokens":100,"system":"S","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}""")]
    public void HashAndLookup_SteadyState_AllocatesNothing(string json)
    {
        var body = Encoding.UTF8.GetBytes(json);
        var cache = new LlmResponseCache(1 << 20);
        LlmRequestHasher.TryHash("tenant"u8, LlmRequestApi.OpenAIChat, body, false, out var keys);
        cache.Store(keys.Exact, LlmCachedFormat.OpenAIChatJson, Encoding.UTF8.GetBytes(new string('x', 2000)), TimeSpan.FromHours(1));
        var buffer = new byte[4096];
        long allocated = AllocatedBy(() =>
        {
            LlmRequestHasher.TryHash("tenant"u8, LlmRequestApi.OpenAIChat, body, extractLastUserText: false, out var k);
            if (cache.TryGet(k.Exact, out var entry))
            {
                entry.Decode(buffer);
            }
            cache.TryGet(k.Exact + 1, out _);
        });
        Assert.Equal(0, allocated);
    }
}
