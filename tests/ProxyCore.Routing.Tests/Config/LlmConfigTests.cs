using ProxyCore.Routing.Config;

namespace ProxyCore.Routing.Tests.Config;

public sealed class LlmConfigTests
{
    // The contract shape of DESIGN.md "LLM config", with its env: secrets set.
    private const string Contract = """
        { "listeners": [ { "address": "127.0.0.1:8080" } ],
          "routes": [ { "id": "ai", "match": { "path": "/v1/" }, "cluster": "openai",
            "llm": {
              "providers": [
                { "name": "main", "type": "openai", "cluster": "openai", "apiKey": "env:PC_TEST_OPENAI_KEY" },
                { "name": "backup", "type": "anthropic", "cluster": "anthropic", "apiKey": "env:PC_TEST_ANTHROPIC_KEY",
                  "models": { "gpt-4o-mini": "claude-haiku-4-5" } } ],
              "keys": [ { "name": "team-a", "key": "env:PC_TEST_TEAM_A_KEY", "requestsPerMinute": 600,
                          "tokensPerMinute": 200000, "budgetUsd": 50 } ],
              "cache": { "exact": { "ttl": "1h" }, "semantic": { "threshold": 0.92, "embedder": "builtin" },
                         "maxBytes": "256MB" },
              "redact": { "pii": ["email", "phone", "credit-card"], "mode": "mask" },
              "pricing": { "gpt-4o-mini": { "inputPer1M": 0.15, "outputPer1M": 0.60 } } } } ],
          "clusters": [ { "id": "openai", "destinations": [ { "address": "http://127.0.0.1:9000" } ] },
                        { "id": "anthropic", "destinations": [ { "address": "http://127.0.0.1:9001" } ] } ] }
        """;

    static LlmConfigTests()
    {
        Environment.SetEnvironmentVariable("PC_TEST_OPENAI_KEY", "sk-test");
        Environment.SetEnvironmentVariable("PC_TEST_ANTHROPIC_KEY", "sk-ant-test");
        Environment.SetEnvironmentVariable("PC_TEST_TEAM_A_KEY", "pc-team-a");
    }

    [Fact]
    public void Parse_ContractShape_IsValidAndComplete()
    {
        var result = ProxyConfigLoader.Parse(Contract);

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var llm = result.Config!.Routes[0].Llm!;
        Assert.Equal(["main", "backup"], llm.Providers.Select(p => p.Name));
        Assert.Equal("claude-haiku-4-5", llm.Providers[1].Models["gpt-4o-mini"]);
        Assert.Equal(200000, llm.Keys![0].TokensPerMinute);
        Assert.Equal(0.60, llm.Pricing["gpt-4o-mini"].OutputPer1M);
        Assert.Equal(256L * 1024 * 1024, llm.Cache!.MaxBytes);
        Assert.Equal(4L * 1024 * 1024, llm.MaxRequestBytes);
    }

    [Theory]
    [InlineData("\"type\": \"openai\"", "\"type\": \"gemini\"", "$.routes[0].llm.providers[0].type", "unknown provider type")]
    [InlineData("\"cluster\": \"anthropic\"", "\"cluster\": \"nowhere\"", "$.routes[0].llm.providers[1].cluster", "unknown cluster")]
    [InlineData("\"name\": \"backup\"", "\"name\": \"main\"", "$.routes[0].llm.providers[1].name", "duplicate provider")]
    [InlineData("env:PC_TEST_OPENAI_KEY", "env:PC_TEST_UNSET_KEY", "$.routes[0].llm.providers[0].apiKey", "is not set")]
    [InlineData("\"requestsPerMinute\": 600", "\"requestsPerMinute\": 0", "$.routes[0].llm.keys[0].requestsPerMinute", "at least 1")]
    [InlineData("\"tokensPerMinute\": 200000", "\"tokensPerMinute\": -5", "$.routes[0].llm.keys[0].tokensPerMinute", "at least 1")]
    [InlineData("\"budgetUsd\": 50", "\"budgetUsd\": 0", "$.routes[0].llm.keys[0].budgetUsd", "more than 0")]
    [InlineData("\"budgetUsd\": 50", "\"budgetUsd\": \"lots\"", "$.routes[0].llm.keys[0].budgetUsd", "expected a number")]
    [InlineData("\"key\": \"env:PC_TEST_TEAM_A_KEY\"", "\"key\": \"\"", "$.routes[0].llm.keys[0].key", "required")]
    [InlineData("\"inputPer1M\": 0.15", "\"inputPer1M\": -1", "$.routes[0].llm.pricing['gpt-4o-mini']", "0 or more")]
    [InlineData("\"threshold\": 0.92", "\"threshold\": 1.5", "$.routes[0].llm.cache.semantic.threshold", "(0, 1]")]
    [InlineData("\"embedder\": \"builtin\"", "\"embedder\": \"magic\"", "$.routes[0].llm.cache.semantic.embedder", "unknown embedder")]
    [InlineData("\"ttl\": \"1h\"", "\"ttl\": \"soon\"", "$.routes[0].llm.cache.exact.ttl", "duration")]
    [InlineData("\"credit-card\"", "\"shoe-size\"", "$.routes[0].llm.redact.pii[2]", "unknown PII kind")]
    [InlineData("\"mode\": \"mask\"", "\"mode\": \"hide\"", "$.routes[0].llm.redact.mode", "unknown mode")]
    [InlineData("\"mode\": \"mask\"", "\"mode\": \"mask\", \"deny\": [\"ok\", \"(a)\\\\1\"]", "$.routes[0].llm.redact.deny[1]", "non-backtracking")]
    [InlineData("\"mode\": \"mask\"", "\"mode\": \"mask\", \"deny\": [\"[unclosed\"]", "$.routes[0].llm.redact.deny[0]", "non-backtracking")]
    [InlineData("\"mode\": \"mask\"", "\"mode\": \"mask\", \"deny\": [\"\"]", "$.routes[0].llm.redact.deny[0]", "refuse every prompt")]
    [InlineData("\"mode\": \"mask\"", "\"mode\": \"mask\", \"denyOutput\": [\"[unclosed\"]", "$.routes[0].llm.redact.denyOutput[0]", "non-backtracking")]
    [InlineData("\"mode\": \"mask\"", "\"mode\": \"mask\", \"denyOutput\": [\"ok\", \"\"]", "$.routes[0].llm.redact.denyOutput[1]", "refuse every answer")]
    [InlineData("\"mode\": \"mask\"", "\"mode\": \"mask\", \"denyOutput\": [\"x*\"]", "$.routes[0].llm.redact.denyOutput[0]", "matches the empty text")]
    [InlineData("\"mode\": \"mask\"", "\"mode\": \"mask\", \"denyOutputWindow\": 8", "$.routes[0].llm.redact.denyOutputWindow", "16 to 4096")]
    [InlineData("\"pricing\":", "\"templates\": { \"t\": { \"versions\": { \"1\": { \"messages\": [ { \"role\": \"system\", \"content\": \"Hi {{name\" } ] } } } }, \"pricing\":", "$.routes[0].llm.templates.t.versions.1.messages[0].content", "no closing")]
    [InlineData("\"pricing\":", "\"templates\": { \"t\": { \"versions\": { \"1\": { \"messages\": [ { \"role\": \"system\", \"content\": \"Hi {{ 9lives }}\" } ] } } } }, \"pricing\":", "$.routes[0].llm.templates.t.versions.1.messages[0].content", "not a variable name")]
    [InlineData("\"pricing\":", "\"templates\": { \"t\": { \"versions\": { \"1\": { \"messages\": [ { \"role\": \"robot\", \"content\": \"x\" } ] } } } }, \"pricing\":", "$.routes[0].llm.templates.t.versions.1.messages[0].role", "unknown role")]
    [InlineData("\"pricing\":", "\"templates\": { \"t\": { \"versions\": { \"1\": { \"messages\": [] } } } }, \"pricing\":", "$.routes[0].llm.templates.t.versions.1.messages", "at least one message")]
    [InlineData("\"pricing\":", "\"templates\": { \"t\": { \"versions\": { \"1\": { \"messages\": [ { \"content\": \"a\" } ] }, \"2\": { \"messages\": [ { \"content\": \"b\" } ] } } } }, \"pricing\":", "$.routes[0].llm.templates.t.default", "several versions")]
    [InlineData("\"pricing\":", "\"templates\": { \"t\": { \"default\": \"3\", \"versions\": { \"1\": { \"messages\": [ { \"content\": \"a\" } ] } } } }, \"pricing\":", "$.routes[0].llm.templates.t.default", "not in versions")]
    [InlineData("\"pricing\":", "\"templates\": { \"a@b\": { \"versions\": { \"1\": { \"messages\": [ { \"content\": \"a\" } ] } } } }, \"pricing\":", "$.routes[0].llm.templates['a@b']", "'@'")]
    [InlineData("\"embedder\": \"builtin\"", "\"embedder\": \"local\"", "$.routes[0].llm.cache.semantic.embedder", "built without it")]
    [InlineData("\"embedder\": \"builtin\"", "\"embedder\": \"openai\"", "$.routes[0].llm.cache.semantic.endpoint", "required for the openai embedder")]
    [InlineData("\"embedder\": \"builtin\"", "\"embedder\": \"openai\", \"endpoint\": \"ftp://x\"", "$.routes[0].llm.cache.semantic.endpoint", "absolute http or https")]
    [InlineData("\"embedder\": \"builtin\"", "\"embedder\": \"openai\", \"endpoint\": \"http://127.0.0.1:9\", \"dimensions\": 0", "$.routes[0].llm.cache.semantic.dimensions", "1 to 8192")]
    [InlineData("\"embedder\": \"builtin\"", "\"embedder\": \"openai\", \"endpoint\": \"http://127.0.0.1:9\", \"apiKey\": \"env:PC_TEST_UNSET_KEY\"", "$.routes[0].llm.cache.semantic.apiKey", "is not set")]
    [InlineData("\"embedder\": \"builtin\"", "\"embedder\": \"builtin\", \"endpoint\": \"http://127.0.0.1:9\"", "$.routes[0].llm.cache.semantic.embedder", "settings of the \"openai\" embedder")]
    [InlineData("\"pricing\":", "\"strategy\": \"random\", \"pricing\":", "$.routes[0].llm.strategy", "unknown strategy")]
    [InlineData("\"pricing\":", "\"maxRequestBytes\": 0, \"pricing\":", "$.routes[0].llm.maxRequestBytes", "more than 0")]
    [InlineData("\"pricing\":", "\"providerHeader\": \"bad header\", \"pricing\":", "$.routes[0].llm.providerHeader", "not a valid header name")]
    [InlineData("\"pricing\":", "\"provders\": [], \"pricing\":", "$.routes[0].llm.provders", "did you mean 'providers'")]
    [InlineData("\"cluster\": \"openai\",\n", "\"cluster\": \"openai\", \"retry\": { \"on\": [503] },\n", "$.routes[0].retry", "falls back across its providers")]
    [InlineData("\"cluster\": \"openai\",\n", "\"cluster\": \"openai\", \"split\": [ { \"cluster\": \"openai\" } ],\n", "$.routes[0].split", "llm.strategy")]
    public void Parse_LlmMistake_ReportsItsPath(string find, string replace, string expectedPath, string expectedMessagePart)
    {
        Assert.Contains(find, Contract, StringComparison.Ordinal);
        var json = ReplaceFirst(Contract, find, replace);

        var result = ProxyConfigLoader.Parse(json);

        Assert.False(result.IsValid);
        var error = Assert.Single(result.Errors, e => e.Path == expectedPath);
        Assert.Contains(expectedMessagePart, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_TemplatesAndDenyOutput_AreBound()
    {
        var json = ReplaceFirst(Contract, "\"mode\": \"mask\"", "\"mode\": \"mask\", \"denyOutput\": [\"secret\\\\s+sauce\"], \"denyOutputWindow\": 64");
        json = ReplaceFirst(json, "\"pricing\":", """
            "templates": { "support": { "default": "2", "versions": {
                "1": { "messages": [ { "role": "system", "content": "Help {{name}}." } ] },
                "2": { "model": "gpt-4o-mini", "messages": [ { "role": "system", "content": "Help {{ name }} with {{product}}." }, { "role": "user", "content": "Hi" } ] } } } },
            "pricing":
            """);

        var result = ProxyConfigLoader.Parse(json);

        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var llm = result.Config!.Routes[0].Llm!;
        Assert.Equal(["secret\\s+sauce"], llm.Redact!.DenyOutput!);
        Assert.Equal(64, llm.Redact.DenyOutputWindow);
        var support = llm.Templates!["support"];
        Assert.Equal("2", support.Default);
        Assert.Equal("gpt-4o-mini", support.Versions["2"].Model);
        Assert.Equal("user", support.Versions["2"].Messages[1].Role);
    }

    [Theory]
    [InlineData("Hello {{name}}, about {{ topic.sub-part }}!", "Hello |{name}|, about |{topic.sub-part}|!")]
    [InlineData("single { braces } stay text", "single { braces } stay text")]
    [InlineData("{{a}}{{b}}", "{a}|{b}")]
    public void TemplateText_TryParse_SplitsLiteralsAndVariables(string text, string expected)
    {
        var parts = new List<LlmTemplateText.Part>();

        Assert.Null(LlmTemplateText.TryParse(text, parts));

        Assert.Equal(expected, string.Join("|", parts.Select(p => p.Variable is { } v ? "{" + v + "}" : p.Literal)));
    }

    [Fact]
    public void Parse_EmptyKeyList_IsRefused()
    {
        var result = ProxyConfigLoader.Parse(ReplaceFirst(Contract, "\"keys\": [", "\"keys\": [], \"unusedKeys\": ["));

        Assert.Contains(result.Errors, e => e.Path == "$.routes[0].llm.keys");
    }

    [Fact]
    public void ToRedactedJson_InlineVirtualKey_IsMasked()
    {
        var config = ProxyConfigLoader.Parse(ReplaceFirst(Contract, "env:PC_TEST_TEAM_A_KEY", "inline-secret-key")).Config!;

        var json = ProxyConfigLoader.ToRedactedJson(config);

        Assert.DoesNotContain("inline-secret-key", json, StringComparison.Ordinal);
        Assert.Contains("env:PC_TEST_OPENAI_KEY", json, StringComparison.Ordinal);
    }

    private static string ReplaceFirst(string text, string find, string replace)
    {
        int i = text.IndexOf(find, StringComparison.Ordinal);
        return text[..i] + replace + text[(i + find.Length)..];
    }
}
