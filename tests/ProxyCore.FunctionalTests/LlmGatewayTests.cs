using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Anthropic;
using Anthropic.Models.Messages;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Embeddings;
using ProxyCore.Routing.Config;
using ProxyCore.Server;
using ProxyCore.Server.Mock;

namespace ProxyCore.FunctionalTests;

/// <summary>
/// The LLM stage end to end: the official OpenAI and Anthropic SDKs pointed at ProxyCore, in front of
/// the mock LLM upstream, over real loopback sockets. Every test gets its own proxy, so the token
/// figures on /metrics are exactly the mock's usage numbers.
/// </summary>
public sealed partial class LlmGatewayTests
{
    private const string TeamKey = "pc-test-team-a";
    private const string ProviderKey = "sk-test-provider";

    static LlmGatewayTests()
    {
        Environment.SetEnvironmentVariable("PCT_LLM_TEAM_A", TeamKey);
        Environment.SetEnvironmentVariable("PCT_LLM_TINY", "pc-test-tiny");
        Environment.SetEnvironmentVariable("PCT_LLM_RPM1", "pc-test-rpm1");
        Environment.SetEnvironmentVariable("PCT_LLM_TPM", "pc-test-tpm");
        Environment.SetEnvironmentVariable("PCT_LLM_PROVIDER", ProviderKey);
        Environment.SetEnvironmentVariable("PCT_LLM_TEAM_B", "pc-test-team-b");
    }

    // One route per scenario; providers are clusters in front of the same mock ("/_mock/NAME/VALUE" prefixes make one misbehave).
    private const string ConfigTemplate = """
        { "listeners": [ { "address": "127.0.0.1:0" } ], "admin": { "address": "127.0.0.1:0" },
          "routes": [
            { "id": "open", "match": { "path": "/open/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "main", "type": "openai", "cluster": "mock", "apiKey": "env:PCT_LLM_PROVIDER" },
                                      { "name": "claude", "type": "anthropic", "cluster": "mock", "apiKey": "env:PCT_LLM_PROVIDER",
                                        "models": { "claude-alias": "claude-haiku-4-5" } } ],
                       "pricing": { "gpt-4o-mini": { "inputPer1M": 0.15, "outputPer1M": 0.60 } } } },
            { "id": "keyed", "match": { "path": "/keyed/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "main", "type": "openai", "cluster": "mock", "apiKey": "env:PCT_LLM_PROVIDER" } ],
                       "keys": [ { "name": "team-a", "key": "env:PCT_LLM_TEAM_A" },
                                 { "name": "tiny", "key": "env:PCT_LLM_TINY", "budgetUsd": 0.000001 },
                                 { "name": "rpm1", "key": "env:PCT_LLM_RPM1", "requestsPerMinute": 1 },
                                 { "name": "tpm", "key": "env:PCT_LLM_TPM", "tokensPerMinute": 100 } ],
                       "pricing": { "gpt-4o-mini": { "inputPer1M": 1000, "outputPer1M": 1000 } } } },
            { "id": "fallback", "match": { "path": "/fallback/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "down", "type": "openai", "cluster": "status503" },
                                      { "name": "backup", "type": "openai", "cluster": "mock" } ] } },
            { "id": "limited", "match": { "path": "/limited/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "limited", "type": "openai", "cluster": "status429" },
                                      { "name": "backup", "type": "openai", "cluster": "mock" } ] } },
            { "id": "dead", "match": { "path": "/dead/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "unreachable", "type": "openai", "cluster": "refused" },
                                      { "name": "backup", "type": "openai", "cluster": "mock" } ] } },
            { "id": "allfail", "match": { "path": "/allfail/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "down", "type": "openai", "cluster": "status503" },
                                      { "name": "limited", "type": "openai", "cluster": "status429" } ] } },
            { "id": "cut", "match": { "path": "/cut/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "flaky", "type": "openai", "cluster": "cut3" },
                                      { "name": "flaky-claude", "type": "anthropic", "cluster": "cut3" } ] } },
            { "id": "pick", "match": { "path": "/pick/" }, "cluster": "mock",
              "llm": { "providerHeader": "x-provider",
                       "providers": [ { "name": "a", "type": "openai", "cluster": "mock" }, { "name": "b", "type": "openai", "cluster": "mock" } ] } },
            { "id": "slow", "match": { "path": "/slow/" }, "cluster": "mock", "timeout": "500ms",
              "llm": { "providers": [ { "name": "sluggish", "type": "openai", "cluster": "latency5s" },
                                      { "name": "backup", "type": "openai", "cluster": "mock" } ] } },
            { "id": "weighted", "match": { "path": "/weighted/" }, "cluster": "mock",
              "llm": { "strategy": "weighted",
                       "providers": [ { "name": "never", "type": "openai", "cluster": "mock", "weight": 0 }, { "name": "always", "type": "openai", "cluster": "mock", "weight": 3 } ] } },
            { "id": "cached", "match": { "path": "/cached/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "main", "type": "openai", "cluster": "mock" }, { "name": "claude", "type": "anthropic", "cluster": "mock" } ],
                       "cache": { "exact": { "ttl": "1h" }, "maxBytes": "1MB" } } },
            { "id": "cached-keyed", "match": { "path": "/cached-keyed/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "main", "type": "openai", "cluster": "mock" } ],
                       "keys": [ { "name": "team-a", "key": "env:PCT_LLM_TEAM_A" }, { "name": "team-b", "key": "env:PCT_LLM_TEAM_B" } ],
                       "cache": { "exact": { "ttl": "1h" } } } },
            { "id": "cached-cut", "match": { "path": "/cached-cut/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "flaky", "type": "openai", "cluster": "cut3" } ], "cache": { "exact": { "ttl": "1h" } } } },
            { "id": "redact-mask", "match": { "path": "/redact-mask/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "main", "type": "openai", "cluster": "mock" }, { "name": "claude", "type": "anthropic", "cluster": "mock" } ],
                       "redact": { "pii": ["email", "credit-card"], "mode": "mask", "deny": ["ignore (all )?previous instructions"] } } },
            { "id": "redact-block", "match": { "path": "/redact-block/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "main", "type": "openai", "cluster": "mock" }, { "name": "claude", "type": "anthropic", "cluster": "mock" } ],
                       "redact": { "pii": ["email", "credit-card"], "mode": "block" } } },
            { "id": "deny-out", "match": { "path": "/deny-out/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "main", "type": "openai", "cluster": "mock" }, { "name": "claude", "type": "anthropic", "cluster": "mock" } ],
                       "redact": { "denyOutput": ["secret\\s+sauce"] } } },
            { "id": "deny-out-claude", "match": { "path": "/deny-out-claude/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "claude", "type": "anthropic", "cluster": "mock", "models": { "gpt-4o-mini": "claude-haiku-4-5" } } ],
                       "redact": { "denyOutput": ["secret\\s+sauce"] } } },
            { "id": "deny-out-cached", "match": { "path": "/deny-out-cached/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "main", "type": "openai", "cluster": "mock" } ],
                       "cache": { "exact": { "ttl": "1h" } }, "redact": { "denyOutput": ["secret\\s+sauce"] } } },
            { "id": "templated", "match": { "path": "/templated/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "main", "type": "openai", "cluster": "mock" }, { "name": "claude", "type": "anthropic", "cluster": "mock" } ],
                       "redact": { "pii": ["email"], "mode": "mask" },
                       "templates": { "support": { "default": "2", "versions": {
                         "1": { "messages": [ { "role": "user", "content": "v1 for {{name}}" } ] },
                         "2": { "model": "gpt-4o-mini", "messages": [ { "role": "system", "content": "You help {{ name }} with {{product}}." },
                                                                      { "role": "user", "content": "Question from {{name}} about {{product}}" } ] } } } } } },
            { "id": "to-anthropic", "match": { "path": "/to-anthropic/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "claude", "type": "anthropic", "cluster": "mock", "models": { "gpt-4o-mini": "claude-haiku-4-5" } } ] } },
            { "id": "to-openai", "match": { "path": "/to-openai/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "gpt", "type": "openai", "cluster": "mock", "models": { "claude-haiku-4-5": "gpt-4o-mini" } } ] } },
            { "id": "to-anthropic-cut", "match": { "path": "/to-anthropic-cut/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "claude", "type": "anthropic", "cluster": "cut3" } ] } },
            { "id": "semantic", "match": { "path": "/semantic/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "main", "type": "openai", "cluster": "mock" } ],
                       "cache": { "semantic": { "embedder": "builtin", "ttl": "1h" } } } },
            { "id": "semantic-openai", "match": { "path": "/semantic-openai/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "main", "type": "openai", "cluster": "mock" } ],
                       "cache": { "semantic": { "embedder": "openai", "endpoint": "{UP}", "model": "text-embedding-3-small", "dimensions": 64, "apiKey": "env:PCT_LLM_PROVIDER" } } } },
            { "id": "semantic-openai-down", "match": { "path": "/semantic-openai-down/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "main", "type": "openai", "cluster": "mock" } ],
                       "cache": { "semantic": { "embedder": "openai", "endpoint": "http://127.0.0.1:1", "timeout": "1s" } } } },
            { "id": "exact-and-semantic-down", "match": { "path": "/exact-and-semantic-down/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "main", "type": "openai", "cluster": "mock" } ],
                       "cache": { "exact": { "ttl": "1h" }, "semantic": { "embedder": "openai", "endpoint": "http://127.0.0.1:1", "timeout": "1s" } } } },
            { "id": "cached-slow", "match": { "path": "/cached-slow/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "main", "type": "openai", "cluster": "latency300" } ], "cache": { "exact": { "ttl": "1h" } } } },
            { "id": "model-map", "match": { "path": "/mapped/" }, "cluster": "mock",
              "llm": { "providers": [ { "name": "main", "type": "openai", "cluster": "mock", "models": { "gpt-4o-mini": "local-llama" } } ] } } ],
          "clusters": [
            { "id": "mock", "destinations": [ { "address": "{UP}" } ] },
            { "id": "status503", "destinations": [ { "address": "{UP}/_mock/status/503" } ] },
            { "id": "status429", "destinations": [ { "address": "{UP}/_mock/status/429" } ] },
            { "id": "cut3", "destinations": [ { "address": "{UP}/_mock/cut-after/3" } ] },
            { "id": "latency300", "destinations": [ { "address": "{UP}/_mock/latency-ms/300" } ] },
            { "id": "latency5s", "destinations": [ { "address": "{UP}/_mock/latency-ms/5000" } ] },
            { "id": "refused", "connectTimeout": "1s", "destinations": [ { "address": "http://127.0.0.1:1" } ] } ] }
        """;

    private static readonly ChatMessage[] s_hello = [new UserChatMessage("hello world")];

    // The mock's usage for "hello world": 2 pieces + 3 per turn in; the answer's pieces out.
    private const int HelloPromptTokens = 5;

    private static int AnswerTokens(string model) => MockTokens.Count($"Mock answer from {model}: you said \"hello world\".");

    [Fact]
    public async Task OpenAiSdk_CompleteChat_AnswersAndMetersTheMockUsage()
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat("/open/v1", "gpt-4o-mini", "anything");

        ChatCompletion completion = await chat.CompleteChatAsync(s_hello);

        Assert.Equal("Mock answer from gpt-4o-mini: you said \"hello world\".", completion.Content[0].Text);
        Assert.Equal(HelloPromptTokens, completion.Usage.InputTokenCount);
        Assert.Equal(AnswerTokens("gpt-4o-mini"), completion.Usage.OutputTokenCount);
        var metrics = await host.MetricsAsync();
        Assert.Equal(HelloPromptTokens, Series(metrics, "proxycore_llm_tokens_total{kind=\"prompt\",key=\"open\",model=\"gpt-4o-mini\",provider=\"main\"}"));
        Assert.Equal(AnswerTokens("gpt-4o-mini"), Series(metrics, "proxycore_llm_tokens_total{kind=\"completion\",key=\"open\",model=\"gpt-4o-mini\",provider=\"main\"}"));
        double expectedCost = (HelloPromptTokens * 0.15 + AnswerTokens("gpt-4o-mini") * 0.60) / 1e6;
        Assert.Equal(expectedCost, Series(metrics, "proxycore_llm_cost_usd_total{key=\"open\",model=\"gpt-4o-mini\"}"), 9);
        // The route's own totals, beside the documented series: this route's figures, none on another.
        Assert.Equal(HelloPromptTokens, Series(metrics, "proxycore_llm_route_tokens_total{route=\"open\",kind=\"prompt\"}"));
        Assert.Equal(AnswerTokens("gpt-4o-mini"), Series(metrics, "proxycore_llm_route_tokens_total{route=\"open\",kind=\"completion\"}"));
        Assert.Equal(expectedCost, Series(metrics, "proxycore_llm_route_cost_usd_total{route=\"open\"}"), 9);
        Assert.DoesNotContain("proxycore_llm_route_tokens_total{route=\"keyed\"", metrics);
    }

    [Fact]
    public async Task OpenAiSdk_CompleteChatStreaming_YieldsEachDeltaAndUsage()
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat("/open/v1", "gpt-4o-mini", "anything");

        var deltas = new List<string>();
        ChatTokenUsage? usage = null;
        await foreach (var update in chat.CompleteChatStreamingAsync(s_hello))
        {
            deltas.AddRange(update.ContentUpdate.Select(part => part.Text).Where(text => text.Length > 0));
            usage ??= update.Usage;
        }

        Assert.Equal(MockTokens.Split("Mock answer from gpt-4o-mini: you said \"hello world\"."), deltas);
        Assert.NotNull(usage);
        Assert.Equal(HelloPromptTokens, usage.InputTokenCount);
        var metrics = await host.MetricsAsync();
        Assert.Equal(deltas.Count, Series(metrics, "proxycore_llm_tokens_total{kind=\"completion\",key=\"open\",model=\"gpt-4o-mini\",provider=\"main\"}"));
        Assert.Equal(HelloPromptTokens, Series(metrics, "proxycore_llm_tokens_total{kind=\"prompt\",key=\"open\",model=\"gpt-4o-mini\",provider=\"main\"}"));
    }

    [Fact]
    public async Task RawStream_WithoutIncludeUsage_GetsUsageInjectedAndItsChunkStripped()
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();

        using var response = await client.PostAsync("/open/v1/chat/completions", Json("""{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello world"}]}"""));
        string body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("main", response.Headers.GetValues("proxycore-provider").Single());
        Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
        Assert.DoesNotContain("\"choices\":[]", body, StringComparison.Ordinal);
        Assert.DoesNotContain("\"prompt_tokens\"", body, StringComparison.Ordinal);
        var metrics = await host.MetricsAsync();
        // The provider's own figures, which only the injected usage chunk carried.
        Assert.Equal(HelloPromptTokens, Series(metrics, "proxycore_llm_tokens_total{kind=\"prompt\",key=\"open\",model=\"gpt-4o-mini\",provider=\"main\"}"));
        Assert.Equal(AnswerTokens("gpt-4o-mini"), Series(metrics, "proxycore_llm_tokens_total{kind=\"completion\",key=\"open\",model=\"gpt-4o-mini\",provider=\"main\"}"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task BackToBack_AnAnswerTheClientHasIsAlreadyCounted(bool stream)
    {
        // Tokens are counted (and budgets reconciled) before the end of the answer goes out, not after.
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();
        string request = stream
            ? """{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello world"}]}"""
            : """{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello world"}]}""";
        for (int i = 1; i <= 20; i++)
        {
            using var response = await client.PostAsync("/open/v1/chat/completions", Json(request));
            await response.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var metrics = await host.MetricsAsync();
            Assert.Equal(i * HelloPromptTokens, Series(metrics, "proxycore_llm_tokens_total{kind=\"prompt\",key=\"open\",model=\"gpt-4o-mini\",provider=\"main\"}"));
            Assert.Equal(i * AnswerTokens("gpt-4o-mini"), Series(metrics, "proxycore_llm_tokens_total{kind=\"completion\",key=\"open\",model=\"gpt-4o-mini\",provider=\"main\"}"));
        }
    }

    [Fact]
    public async Task OpenAiSdk_Embeddings_ReturnsTheMockVectorAndCountsPromptTokens()
    {
        await using var host = await LlmHost.StartAsync();
        var embeddings = new EmbeddingClient("text-embedding-3-small", new ApiKeyCredential("anything"), host.OpenAiOptions("/open/v1"));

        OpenAIEmbedding embedding = await embeddings.GenerateEmbeddingAsync("hello world");

        Assert.Equal(MockLlm.Embed("hello world", 8), embedding.ToFloats().ToArray());
        var metrics = await host.MetricsAsync();
        Assert.Equal(2, Series(metrics, "proxycore_llm_tokens_total{kind=\"prompt\",key=\"open\",model=\"text-embedding-3-small\",provider=\"main\"}"));
    }

    [Fact]
    public async Task AnthropicSdk_Create_AnswersThroughTheAnthropicProvider()
    {
        await using var host = await LlmHost.StartAsync();
        var client = host.Anthropic("/open");

        var message = await client.Messages.Create(new MessageCreateParams
        {
            Model = "claude-alias",
            MaxTokens = 100,
            Messages = [new UserMessageParam("hello world")],
        });

        Assert.True(message.Content[0].TryPickText(out var text));
        Assert.Equal("Mock answer from claude-haiku-4-5: you said \"hello world\".", text.Text);
        Assert.Equal(HelloPromptTokens, message.Usage.InputTokens);
        var metrics = await host.MetricsAsync();
        Assert.Equal(AnswerTokens("claude-haiku-4-5"), Series(metrics, "proxycore_llm_tokens_total{kind=\"completion\",key=\"open\",model=\"claude-haiku-4-5\",provider=\"claude\"}"));
    }

    [Fact]
    public async Task AnthropicSdk_CreateStreaming_YieldsEachDelta()
    {
        await using var host = await LlmHost.StartAsync();
        var client = host.Anthropic("/open");

        var deltas = new List<string>();
        await foreach (var streamEvent in client.Messages.CreateStreaming(new MessageCreateParams
        {
            Model = "claude-haiku-4-5",
            MaxTokens = 100,
            Messages = [new UserMessageParam("hello world")],
        }))
        {
            if (streamEvent.TryPickContentBlockDelta(out var delta) && delta.Delta.TryPickText(out var textDelta))
            {
                deltas.Add(textDelta.Text);
            }
        }

        Assert.Equal(MockTokens.Split("Mock answer from claude-haiku-4-5: you said \"hello world\"."), deltas);
        var metrics = await host.MetricsAsync();
        Assert.Equal(deltas.Count, Series(metrics, "proxycore_llm_tokens_total{kind=\"completion\",key=\"open\",model=\"claude-haiku-4-5\",provider=\"claude\"}"));
        Assert.Equal(HelloPromptTokens, Series(metrics, "proxycore_llm_tokens_total{kind=\"prompt\",key=\"open\",model=\"claude-haiku-4-5\",provider=\"claude\"}"));
    }

    [Theory]
    [InlineData("pc-not-a-key")]
    [InlineData(ProviderKey)] // the provider's own key is not a gateway key
    public async Task OpenAiSdk_UnknownKey_Gets401InOpenAiShape(string presented)
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat("/keyed/v1", "gpt-4o-mini", presented);

        var e = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync(s_hello));

        Assert.Equal(401, e.Status);
        using var error = JsonDocument.Parse(e.GetRawResponse()!.Content.ToString());
        Assert.Equal("invalid-api-key", error.RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task KnownKey_ReachesTheProviderWithTheProviderKeyOnly()
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/keyed/v1/chat/completions")
        {
            Content = Json("""{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello world"}]}"""),
        };
        request.Headers.Authorization = new("Bearer", TeamKey);

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Sha256Prefix("Bearer " + ProviderKey), response.Headers.GetValues("x-mock-credential-sha256").Single());
        var metrics = await host.MetricsAsync();
        Assert.Equal(HelloPromptTokens, Series(metrics, "proxycore_llm_tokens_total{kind=\"prompt\",key=\"team-a\",model=\"gpt-4o-mini\",provider=\"main\"}"));
    }

    [Fact]
    public async Task AnthropicClientKey_IsReplacedByTheProviderKey()
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/open/v1/messages")
        {
            Content = Json("""{"model":"claude-haiku-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"""),
        };
        request.Headers.Add("x-api-key", "sk-ant-client-own-key");

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("claude", response.Headers.GetValues("proxycore-provider").Single());
        Assert.Equal(Sha256Prefix(ProviderKey), response.Headers.GetValues("x-mock-credential-sha256").Single());
    }

    [Theory]
    [InlineData(null, "a")]
    [InlineData("b", "b")]
    [InlineData("unknown", "a")]
    public async Task ProviderHeader_ChoosesTheFirstTry(string? wanted, string expected)
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/pick/v1/chat/completions")
        {
            Content = Json("""{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"""),
        };
        if (wanted is not null)
        {
            request.Headers.Add("x-provider", wanted);
        }

        using var response = await client.SendAsync(request);

        Assert.Equal(expected, response.Headers.GetValues("proxycore-provider").Single());
    }

    [Fact]
    public async Task WeightedStrategy_FirstTryFollowsTheWeights()
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat("/weighted/v1", "gpt-4o-mini", "anything");

        for (int i = 0; i < 5; i++)
        {
            var result = await chat.CompleteChatAsync(s_hello);
            Assert.True(result.GetRawResponse().Headers.TryGetValue("proxycore-provider", out var provider) && provider == "always");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Responses_JsonAndStream_AreMetered(bool stream)
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();

        using var response = await client.PostAsync("/open/v1/responses", Json($$"""{"model":"gpt-4o-mini","input":"hello world","stream":{{(stream ? "true" : "false")}}}"""));
        string body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains(stream ? "response.completed" : "\"status\":\"completed\"", body, StringComparison.Ordinal);
        var metrics = await host.MetricsAsync();
        Assert.Equal(HelloPromptTokens, Series(metrics, "proxycore_llm_tokens_total{kind=\"prompt\",key=\"open\",model=\"gpt-4o-mini\",provider=\"main\"}"));
        Assert.Equal(AnswerTokens("gpt-4o-mini"), Series(metrics, "proxycore_llm_tokens_total{kind=\"completion\",key=\"open\",model=\"gpt-4o-mini\",provider=\"main\"}"));
    }

    [Fact]
    public async Task Reload_KeepsAKeysSpend()
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat("/keyed/v1", "gpt-4o-mini", "pc-test-tiny");
        await chat.CompleteChatAsync(s_hello);

        host.Reload();
        var e = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync(s_hello));

        Assert.Equal(429, e.Status);
    }

    [Theory]
    [InlineData("pc-test-tiny", 1, "budget-exceeded")]      // the first answer spends more than the budget
    [InlineData("pc-test-rpm1", 1, "requests-per-minute")]  // one request per minute
    [InlineData("pc-test-tpm", 0, "tokens-per-minute")]     // max_tokens 500 alone is over 100 tokens/min
    public async Task OpenAiSdk_OverBudget_Gets429WithRetryAfter(string key, int allowed, string reason)
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat("/keyed/v1", "gpt-4o-mini", key);
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 500 };

        for (int i = 0; i < allowed; i++)
        {
            await chat.CompleteChatAsync(s_hello, options);
        }
        var e = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync(s_hello, options));

        Assert.Equal(429, e.Status);
        var raw = e.GetRawResponse()!;
        Assert.True(raw.Headers.TryGetValue("retry-after", out var retryAfter) && int.Parse(retryAfter!) >= 1);
        Assert.True(raw.Headers.TryGetValue("proxycore-error", out var error) && error == reason);
        using var json = JsonDocument.Parse(raw.Content.ToString());
        Assert.Equal("rate_limit_error", json.RootElement.GetProperty("error").GetProperty("type").GetString());
    }

    [Theory]
    [InlineData("/fallback/v1", "backup")] // the first provider answers 503
    [InlineData("/limited/v1", "backup")]  // the first provider answers 429
    [InlineData("/dead/v1", "backup")]     // the first provider refuses connections
    [InlineData("/slow/v1", "backup")]     // the first provider does not answer within the route's timeout
    public async Task OpenAiSdk_FirstProviderFails_FallsBackToTheNext(string route, string expectedProvider)
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat(route, "gpt-4o-mini", "anything");

        var result = await chat.CompleteChatAsync(s_hello);

        Assert.Equal("Mock answer from gpt-4o-mini: you said \"hello world\".", result.Value.Content[0].Text);
        Assert.True(result.GetRawResponse().Headers.TryGetValue("proxycore-provider", out var provider));
        Assert.Equal(expectedProvider, provider);
    }

    [Fact]
    public async Task EveryProviderFails_TheLastAnswerIsRelayed()
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat("/allfail/v1", "gpt-4o-mini", "anything");

        var e = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync(s_hello));

        Assert.Equal(429, e.Status);
        Assert.True(e.GetRawResponse()!.Headers.TryGetValue("proxycore-provider", out var provider) && provider == "limited");
    }

    [Fact]
    public async Task OpenAiSdk_CutStream_SeesAnErrorNotACleanEnd()
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat("/cut/v1", "gpt-4o-mini", "anything");

        var deltas = new List<string>();
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await foreach (var update in chat.CompleteChatStreamingAsync(s_hello))
            {
                deltas.AddRange(update.ContentUpdate.Select(part => part.Text).Where(text => text.Length > 0));
            }
        });

        Assert.Equal(3, deltas.Count);
    }

    [Fact]
    public async Task RawCutStream_EndsWithAnErrorEventAndNoDone()
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/cut/v1/chat/completions")
        {
            Content = Json("""{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello world"}]}"""),
        };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var stream = await response.Content.ReadAsStreamAsync();
        var received = new MemoryStream();

        await Assert.ThrowsAnyAsync<IOException>(() => stream.CopyToAsync(received));

        string body = Encoding.UTF8.GetString(received.ToArray());
        Assert.Contains("data: {\"error\":{", body, StringComparison.Ordinal);
        Assert.Contains("\"code\":\"upstream_stream_cut\"", body, StringComparison.Ordinal);
        Assert.DoesNotContain("[DONE]", body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/open/v1/chat/completions", false)]
    [InlineData("/cut/v1/chat/completions", true)]
    public async Task H2cStream_RelaysEventsAndResetsACutStream(string path, bool cut)
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();
        using var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = Json("""{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello world"}]}"""),
        };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpVersion.Version20, response.Version);
        var received = new MemoryStream();
        var stream = await response.Content.ReadAsStreamAsync();

        Exception? failure = await Record.ExceptionAsync(() => stream.CopyToAsync(received));

        string body = Encoding.UTF8.GetString(received.ToArray());
        if (cut)
        {
            // The reset is what guarantees the failure; HttpClient may drop the error event queued before it
            // when it handles the reset, so only the absence of a clean end is certain here.
            Assert.NotNull(failure);
            Assert.DoesNotContain("[DONE]", body, StringComparison.Ordinal);
        }
        else
        {
            Assert.Null(failure);
            Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
            Assert.Equal(MockTokens.Split("Mock answer from gpt-4o-mini: you said \"hello world\".").Count,
                body.Split("\"content\":").Length - 2); // every delta, after the role chunk's empty content
        }
    }

    [Fact]
    public async Task AnthropicSdk_CutStream_SeesAnError()
    {
        await using var host = await LlmHost.StartAsync();
        var client = host.Anthropic("/cut");

        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await foreach (var _ in client.Messages.CreateStreaming(new MessageCreateParams
            {
                Model = "claude-haiku-4-5",
                MaxTokens = 100,
                Messages = [new UserMessageParam("hello world")],
            }))
            {
            }
        });
    }

    [Fact]
    public async Task ModelMap_RenamesTheModelForTheProvider()
    {
        await using var host = await LlmHost.StartAsync();
        var chat = host.Chat("/mapped/v1", "gpt-4o-mini", "anything");

        ChatCompletion completion = await chat.CompleteChatAsync(s_hello);

        Assert.Equal("local-llama", completion.Model);
        Assert.StartsWith("Mock answer from local-llama", completion.Content[0].Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"model":""", "invalid-request-body", 400)]
    [InlineData("""[1,2]""", "invalid-request-body", 400)]
    public async Task BadBody_GetsOpenAiErrorJson(string body, string code, int status)
    {
        await using var host = await LlmHost.StartAsync();
        using var client = host.Http();

        using var response = await client.PostAsync("/open/v1/chat/completions", Json(body));

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType!.MediaType);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(code, json.RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task AccessLog_CarriesTokensAndCost()
    {
        var log = new LlmHost.LogStream();
        await using var host = await LlmHost.StartAsync(log);
        var chat = host.Chat("/open/v1", "gpt-4o-mini", "anything");

        await chat.CompleteChatAsync(s_hello);

        string line = await log.WaitForAsync("\"llm\":", Eventually.Bound);
        using var json = JsonDocument.Parse(line);
        var llm = json.RootElement.GetProperty("llm");
        Assert.Equal("main", llm.GetProperty("provider").GetString());
        Assert.Equal(HelloPromptTokens, llm.GetProperty("prompt_tokens").GetInt64());
        Assert.Equal(AnswerTokens("gpt-4o-mini"), llm.GetProperty("completion_tokens").GetInt64());
        Assert.True(llm.GetProperty("cost_usd").GetDouble() > 0);
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static string Sha256Prefix(string value) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(value)))[..16];

    /// <summary>The value of one exposition line, or 0 when the series is absent.</summary>
    private static double Series(string metrics, string series)
    {
        foreach (var line in metrics.Split('\n'))
        {
            if (line.StartsWith(series + " ", StringComparison.Ordinal))
            {
                return double.Parse(line[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        return 0;
    }

    private sealed class LlmHost : IAsyncDisposable
    {
        private readonly SimpleHttpServer _upstream;
        private readonly ProxyHost _proxy;

        private LlmHost(SimpleHttpServer upstream, ProxyHost proxy)
        {
            _upstream = upstream;
            _proxy = proxy;
        }

        private Uri BaseUri => new($"http://{_proxy.ListenEndPoints[0]}");

        public static Task<LlmHost> StartAsync(Stream? accessLog = null)
        {
            var upstream = SimpleHttpServer.Start(new IPEndPoint(IPAddress.Loopback, 0), new MockUpstream());
            var config = Parse(upstream);
            if (accessLog is not null)
            {
                config.AccessLog = new AccessLogConfig { Enabled = true };
            }
            return Task.FromResult(new LlmHost(upstream, ProxyHost.Start(config, accessLog)));
        }

        public void Reload() => Assert.Empty(_proxy.Reload(Parse(_upstream)));

        private static ProxyConfig Parse(SimpleHttpServer upstream)
        {
            var parsed = ProxyConfigLoader.Parse(ConfigTemplate.Replace("{UP}", $"http://{upstream.EndPoint}", StringComparison.Ordinal));
            Assert.True(parsed.IsValid, string.Join("\n", parsed.Errors));
            return parsed.Config!;
        }

        public OpenAIClientOptions OpenAiOptions(string path) => new()
        {
            Endpoint = new Uri(BaseUri, path),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0), // the test sees each answer as the proxy gave it
            NetworkTimeout = TimeSpan.FromSeconds(30),
        };

        public ChatClient Chat(string path, string model, string key) => new(model, new ApiKeyCredential(key), OpenAiOptions(path));

#pragma warning disable OPENAI001 // the SDK marks its Responses client as experimental
        public OpenAI.Responses.ResponsesClient Responses(string path, string key) => new(new ApiKeyCredential(key), new OpenAI.Responses.ResponsesClientOptions
        {
            Endpoint = new Uri(BaseUri, path),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = TimeSpan.FromSeconds(30),
        });
#pragma warning restore OPENAI001

        public AnthropicClient Anthropic(string prefix) => new()
        {
            ApiKey = "anything",
            BaseUrl = new Uri(BaseUri, prefix).ToString(),
            MaxRetries = 0,
            Timeout = TimeSpan.FromSeconds(30),
        };

        public HttpClient Http() => new(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = BaseUri, Timeout = TimeSpan.FromSeconds(30) };

        public async Task<string> MetricsAsync()
        {
            using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(30) };
            return await client.GetStringAsync($"http://{_proxy.AdminEndPoint}/metrics");
        }

        public async ValueTask DisposeAsync()
        {
            await _proxy.DisposeAsync();
            await _upstream.DisposeAsync();
        }

        /// <summary>An access-log sink the test can wait on (the log is written off the request path).</summary>
        public sealed class LogStream : MemoryStream
        {
            private readonly Lock _gate = new();

            public override void Write(ReadOnlySpan<byte> buffer) => Write(buffer.ToArray(), 0, buffer.Length);

            public override void Write(byte[] buffer, int offset, int count)
            {
                lock (_gate)
                {
                    base.Write(buffer, offset, count);
                }
            }

            public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            {
                Write(buffer, offset, count);
                return Task.CompletedTask;
            }

            public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
            {
                Write(buffer.Span);
                return ValueTask.CompletedTask;
            }

            public async Task<string> WaitForAsync(string fragment, TimeSpan timeout)
            {
                var deadline = DateTime.UtcNow + timeout;
                while (DateTime.UtcNow < deadline)
                {
                    string text;
                    lock (_gate)
                    {
                        text = Encoding.UTF8.GetString(GetBuffer(), 0, (int)Length);
                    }
                    var line = text.Split('\n').FirstOrDefault(l => l.Contains(fragment, StringComparison.Ordinal));
                    if (line is not null)
                    {
                        return line;
                    }
                    await Task.Delay(20);
                }
                throw new TimeoutException($"no access-log line with {fragment}");
            }
        }
    }
}
