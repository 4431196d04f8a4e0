using System.Net;
using System.Net.Http.Headers;
using Anthropic.Models.Messages;
using OpenAI.Chat;
using ProxyCore.Server.Mock;

namespace ProxyCore.FunctionalTests;

/// <summary>The exact answer cache of LLM routes (route "cached"): hits never reach the provider.</summary>
public sealed partial class LlmGatewayTests
{
    private const string CachedPrompt = """{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello world"}]}""";
    private const string CachedPromptReordered = """{ "messages": [ { "content": "hello world", "role": "user" } ], "model": "gpt-4o-mini" }""";
    private const string CachedStreamPrompt = """{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello world"}]}""";

    private static string PromptSeries(string provider = "main", string model = "gpt-4o-mini", string key = "open")
        => $"proxycore_llm_tokens_total{{kind=\"prompt\",key=\"{key}\",model=\"{model}\",provider=\"{provider}\"}}";

    private static string CacheSeries(string result) => $"proxycore_llm_cache_total{{result=\"{result}\"}}";

    private static async Task<(HttpStatusCode Status, string? Cache, string Body)> PostAsync(HttpClient client, string path, string body, string? cacheControl = null, string? key = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = Json(body) };
        if (cacheControl is not null)
        {
            request.Headers.CacheControl = CacheControlHeaderValue.Parse(cacheControl);
        }
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
        using var response = await client.SendAsync(request);
        string? cache = response.Headers.TryGetValues("proxycore-cache", out var values) ? values.Single() : null;
        return (response.StatusCode, cache, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ExactCache_RepeatedJsonRequest_IsServedWithoutTheProvider()
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();

        var first = await PostAsync(client, "/cached/v1/chat/completions", CachedPrompt);
        var second = await PostAsync(client, "/cached/v1/chat/completions", CachedPromptReordered);

        Assert.Equal((HttpStatusCode.OK, "miss"), (first.Status, first.Cache));
        Assert.Equal((HttpStatusCode.OK, "hit-exact"), (second.Status, second.Cache));
        Assert.Equal(first.Body, second.Body);
        var metrics = await host.MetricsAsync();
        Assert.Equal(HelloPromptTokens, Series(metrics, PromptSeries())); // one provider call only: hits bill nothing
        Assert.Equal(1, Series(metrics, CacheSeries("hit-exact")));
        Assert.Equal(1, Series(metrics, CacheSeries("miss")));
    }

    [Fact]
    public async Task ExactCache_StreamingClientAfterJsonAnswer_GetsTheReplayThroughTheSdk()
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();
        Assert.Equal("miss", (await PostAsync(client, "/cached/v1/chat/completions", CachedPrompt)).Cache);
        var chat = host.Chat("/cached/v1", "gpt-4o-mini", "anything");

        var text = new System.Text.StringBuilder();
        ChatTokenUsage? usage = null;
        await foreach (var update in chat.CompleteChatStreamingAsync(s_hello))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
            usage ??= update.Usage;
        }

        Assert.Equal("Mock answer from gpt-4o-mini: you said \"hello world\".", text.ToString());
        Assert.NotNull(usage);
        Assert.Equal(HelloPromptTokens, usage.InputTokenCount);
        var metrics = await host.MetricsAsync();
        Assert.Equal(HelloPromptTokens, Series(metrics, PromptSeries()));
        Assert.Equal(1, Series(metrics, CacheSeries("hit-exact")));
    }

    [Fact]
    public async Task ExactCache_StoredStream_ReplaysToStreamClientsOnlyWithoutTheUnaskedUsageChunk()
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();

        var first = await PostAsync(client, "/cached/v1/chat/completions", CachedStreamPrompt);
        var second = await PostAsync(client, "/cached/v1/chat/completions", CachedStreamPrompt);
        var json = await PostAsync(client, "/cached/v1/chat/completions", CachedPrompt);

        Assert.Equal("miss", first.Cache);
        Assert.Equal("hit-exact", second.Cache);
        Assert.Equal(first.Body, second.Body);
        Assert.EndsWith("data: [DONE]\n\n", second.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("\"prompt_tokens\"", second.Body, StringComparison.Ordinal);
        Assert.Equal("miss", json.Cache); // a stored stream cannot answer a JSON client
        Assert.Contains("\"prompt_tokens\"", json.Body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("no-store", "bypass", "bypass", "bypass", 3)]
    [InlineData("no-cache", "bypass", "bypass", "hit-exact", 2)]
    [InlineData("max-age=3600", "miss", "hit-exact", "hit-exact", 1)]
    public async Task ExactCache_ClientCacheControl_IsRespected(string cacheControl, string first, string second, string withoutDirective, int providerCalls)
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();

        var a = await PostAsync(client, "/cached/v1/chat/completions", CachedPrompt, cacheControl);
        var b = await PostAsync(client, "/cached/v1/chat/completions", CachedPrompt, cacheControl);
        var c = await PostAsync(client, "/cached/v1/chat/completions", CachedPrompt);

        Assert.Equal((first, second), (a.Cache, b.Cache));
        // no-store wrote nothing, so the plain request misses; no-cache stored the fresh answer.
        Assert.Equal(cacheControl == "no-store" ? "miss" : withoutDirective, c.Cache);
        var metrics = await host.MetricsAsync();
        Assert.Equal(HelloPromptTokens * providerCalls, Series(metrics, PromptSeries()));
    }

    [Fact]
    public async Task ExactCache_AnswersAreNotSharedBetweenKeys()
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();

        var a1 = await PostAsync(client, "/cached-keyed/v1/chat/completions", CachedPrompt, key: TeamKey);
        var a2 = await PostAsync(client, "/cached-keyed/v1/chat/completions", CachedPrompt, key: TeamKey);
        var b1 = await PostAsync(client, "/cached-keyed/v1/chat/completions", CachedPrompt, key: "pc-test-team-b");

        Assert.Equal(("miss", "hit-exact", "miss"), (a1.Cache, a2.Cache, b1.Cache));
    }

    [Fact]
    public async Task ExactCache_CutStream_IsNeverStored()
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();

        for (int i = 0; i < 2; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/cached-cut/v1/chat/completions") { Content = Json(CachedStreamPrompt) };
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal("miss", response.Headers.GetValues("proxycore-cache").Single());
            var stream = await response.Content.ReadAsStreamAsync();
            // The body ends without its last chunk: the client sees the cut.
            await Assert.ThrowsAnyAsync<IOException>(() => stream.CopyToAsync(Stream.Null));
        }
        Assert.Equal(2, Series(await host.MetricsAsync(), CacheSeries("miss")));
    }

    [Fact]
    public async Task ExactCache_AnthropicSdk_SecondCreateAndStreamAreHits()
    {
        await using var host = await LlmHost.StartAsync();
        var client = host.Anthropic("/cached");
        var ask = new MessageCreateParams { Model = "claude-haiku-4-5", MaxTokens = 100, Messages = [new UserMessageParam("hello world")] };

        var first = await client.Messages.Create(ask);
        var second = await client.Messages.Create(ask);
        var deltas = new System.Text.StringBuilder();
        await foreach (var streamEvent in client.Messages.CreateStreaming(ask))
        {
            if (streamEvent.TryPickContentBlockDelta(out var delta) && delta.Delta.TryPickText(out var textDelta))
            {
                deltas.Append(textDelta.Text);
            }
        }

        const string expected = "Mock answer from claude-haiku-4-5: you said \"hello world\".";
        Assert.True(first.Content[0].TryPickText(out var t1));
        Assert.True(second.Content[0].TryPickText(out var t2));
        Assert.Equal((expected, expected, expected), (t1.Text, t2.Text, deltas.ToString()));
        var metrics = await host.MetricsAsync();
        Assert.Equal(HelloPromptTokens, Series(metrics, PromptSeries("claude", "claude-haiku-4-5")));
        Assert.Equal(2, Series(metrics, CacheSeries("hit-exact")));
    }

    [Fact]
    public async Task ExactCache_IdenticalConcurrentMisses_CallTheProviderOnce()
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();

        // The provider takes 300 ms to answer: all five arrive while the first is in flight.
        var answers = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => PostAsync(client, "/cached-slow/v1/chat/completions", CachedPrompt)));

        Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.Status));
        Assert.Single(answers, a => a.Cache == "miss");
        Assert.Equal(4, answers.Count(a => a.Cache == "hit-exact"));
        Assert.Single(answers.Select(a => a.Body).Distinct());
        var metrics = await host.MetricsAsync();
        Assert.Equal(HelloPromptTokens, Series(metrics, PromptSeries()));
    }
}
