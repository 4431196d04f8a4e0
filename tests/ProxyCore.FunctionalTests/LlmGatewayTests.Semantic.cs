using System.Text.Json;

namespace ProxyCore.FunctionalTests;

/// <summary>The semantic cache (builtin embedder, default threshold, guards on) on route "semantic".</summary>
public sealed partial class LlmGatewayTests
{
    private static string Ask(string question) => JsonSerializer.Serialize(new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content = question } } });

    [Theory]
    [InlineData("What is the capital of France?", "what is the capital of France", "hit-semantic")]
    [InlineData("What is the capital of France?", "What is the capital of France?", "hit-semantic")]
    [InlineData("Set the timeout to 30 seconds", "Set the timeout to 60 seconds", "miss")] // numbers guard
    [InlineData("How do I enable the firewall?", "How do I disable the firewall?", "miss")] // antonym guard
    [InlineData("What is the capital of France?", "Write a poem about autumn leaves", "miss")]
    public async Task SemanticCache_SimilarQuestionHits_GuardedOrDifferentOnesMiss(string first, string second, string expected)
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();

        var a = await PostAsync(client, "/semantic/v1/chat/completions", Ask(first));
        var b = await PostAsync(client, "/semantic/v1/chat/completions", Ask(second));

        Assert.Equal("miss", a.Cache);
        Assert.Equal(expected, b.Cache);
        // The mock echoes the question it was asked: a hit carries the first question's answer.
        string echoed = JsonDocument.Parse(b.Body).RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        Assert.Contains(expected == "miss" ? second : first, echoed, StringComparison.Ordinal);
        var metrics = await host.MetricsAsync();
        Assert.Equal(expected == "miss" ? 2 : 1, Series(metrics, CacheSeries("miss")));
        Assert.Equal(expected == "miss" ? 0 : 1, Series(metrics, CacheSeries("hit-semantic")));
    }

    [Theory]
    [InlineData("What is the capital of France?", "What is the capital of France?", "hit-semantic")]
    // The mock's embeddings are hashes of the text, so unlike the builtin embedder's they do not bring
    // these two together: a miss shows the endpoint's vectors, not the builtin's, decided.
    [InlineData("What is the capital of France?", "what is the capital of France", "miss")]
    public async Task SemanticCache_OpenAiEmbedder_UsesTheEndpointsVectors(string first, string second, string expected)
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();

        var a = await PostAsync(client, "/semantic-openai/v1/chat/completions", Ask(first));
        var b = await PostAsync(client, "/semantic-openai/v1/chat/completions", Ask(second));

        Assert.Equal(("miss", expected), (a.Cache, b.Cache));
        var metrics = await host.MetricsAsync();
        Assert.Equal(0, Series(metrics, "proxycore_llm_embedder_failures_total"));
        Assert.Equal(expected == "miss" ? 0 : 1, Series(metrics, CacheSeries("hit-semantic")));
    }

    [Fact]
    public async Task SemanticCache_EmbedderDown_AnswersAsAMissAndCountsTheFailure()
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();

        var a = await PostAsync(client, "/semantic-openai-down/v1/chat/completions", Ask("What is the capital of France?"));
        var b = await PostAsync(client, "/semantic-openai-down/v1/chat/completions", Ask("What is the capital of France?"));

        Assert.Equal(("miss", "miss"), (a.Cache, b.Cache));
        Assert.Contains("capital of France", b.Body, StringComparison.Ordinal);
        Assert.Equal(2, Series(await host.MetricsAsync(), "proxycore_llm_embedder_failures_total"));
    }

    [Fact]
    public async Task SemanticCache_ExactHit_DoesNotCallTheEmbedder()
    {
        // The embedder is an HTTP call (or milliseconds of model CPU): an exact hit needs no vector. The
        // endpoint here is down, so each call it gets is a counted failure.
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();

        var a = await PostAsync(client, "/exact-and-semantic-down/v1/chat/completions", Ask("What is the capital of France?"));
        var b = await PostAsync(client, "/exact-and-semantic-down/v1/chat/completions", Ask("What is the capital of France?"));

        Assert.Equal(("miss", "hit-exact"), (a.Cache, b.Cache));
        Assert.Equal(1, Series(await host.MetricsAsync(), "proxycore_llm_embedder_failures_total"));
    }

    [Fact]
    public async Task SemanticCache_DifferentSystemPrompt_IsAnotherPartition()
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();
        static string WithSystem(string system) => JsonSerializer.Serialize(new
        {
            model = "gpt-4o-mini",
            messages = new[] { new { role = "system", content = system }, new { role = "user", content = "What is the capital of France?" } },
        });

        var a = await PostAsync(client, "/semantic/v1/chat/completions", WithSystem("Answer in French."));
        var b = await PostAsync(client, "/semantic/v1/chat/completions", WithSystem("Answer in German."));

        Assert.Equal(("miss", "miss"), (a.Cache, b.Cache));
    }
}
