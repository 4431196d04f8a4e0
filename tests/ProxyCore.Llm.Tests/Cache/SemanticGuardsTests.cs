using ProxyCore.Llm.Cache;

namespace ProxyCore.Llm.Tests.Cache;

public class SemanticGuardsTests
{
    /// <summary>Near-misses: the guard that must catch each.</summary>
    public static TheoryData<string, string, GuardConflict> Conflicts => new()
    {
        { "How do I enable 2FA?", "How do I disable 2FA?", GuardConflict.Antonym },
        { "What is 2+2?", "What is 2+3?", GuardConflict.Numbers },
        { "What is 2 + 2?", "What is 2 * 2?", GuardConflict.Numbers },
        { "Is it safe to eat raw eggs?", "Is it not safe to eat raw eggs?", GuardConflict.Negation },
        { "Why does my build fail?", "Why doesn't my build fail?", GuardConflict.Negation },
        { "Can I run Docker with root?", "Can I run Docker without root?", GuardConflict.Negation },
        { "Translate hello from English to French", "Translate hello from French to English", GuardConflict.Entities },
        { "How do I deploy to AWS?", "How do I deploy to Azure?", GuardConflict.Entities },
        { "What does `git reset --hard` do?", "What does `git reset --soft` do?", GuardConflict.Quoted },
        { "What does \"ls -la\" print?", "What does \"ls -lh\" print?", GuardConflict.Quoted },
        { "How do I turn on dark mode?", "How do I turn off dark mode?", GuardConflict.Antonym },
        { "Sort the list in ascending order", "Sort the list in descending order", GuardConflict.Antonym },
        { "Convert 100 USD to EUR", "Convert 1000 USD to EUR", GuardConflict.Numbers },
        { "Is 1,000 more than 999?", "Is 1,000 less than 999?", GuardConflict.Antonym },
        { "What happened before the war?", "What happened after the war?", GuardConflict.Antonym },
        { "Find the max of the array", "Find the min of the array", GuardConflict.Antonym },
        { "Upload a file to S3", "Upload a file to GCS", GuardConflict.Entities },
        { "What is the capital of Australia?", "What is the capital of Austria?", GuardConflict.Entities },
        { "France's capital?", "Germany's capital?", GuardConflict.Entities },
        { "Explain Python 3.11 features", "Explain Python 3.12 features", GuardConflict.Numbers },
        { "I never use tabs", "I always use tabs", GuardConflict.Negation | GuardConflict.Antonym },
    };

    /// <summary>Paraphrases the guards must let through (the embedding decides those).</summary>
    public static TheoryData<string, string> Agreements => new()
    {
        { "How do I enable 2FA?", "What are the steps to enable 2FA?" },
        { "What is 2+2?", "what is 2 + 2" },
        { "What is two plus two?", "What is 2+2?" },
        { "Why doesn't my build work?", "Why does my build not work?" },
        { "How do I turn on dark mode?", "How can I switch on dark mode?" },
        { "How do I deploy to AWS?", "Deploying to AWS: how?" },
        { "What does `git status` do?", "Explain what `git status` does." },
        { "Is Paris bigger than Rome?", "Is Paris larger than Rome?" },
        { "Is 1,000 bigger than 999?", "Is 1000 larger than 999?" },
        { "Tell me a joke about cats", "Please tell me a cat joke" },
        { "What's the capital of France?", "Which city is the capital of France?" },
        { "Don't I need a visa?", "Do I not need a visa?" },
    };

    [Theory]
    [MemberData(nameof(Conflicts))]
    public void Compare_NearMiss_Conflicts(string a, string b, GuardConflict expected)
    {
        var conflict = SemanticGuards.Compute(a).Compare(SemanticGuards.Compute(b));
        Assert.True((conflict & expected) == expected, $"{a} | {b}: got {conflict}, expected {expected}");
    }

    [Theory]
    [MemberData(nameof(Agreements))]
    public void Compare_Paraphrase_Agrees(string a, string b) =>
        Assert.Equal(GuardConflict.None, SemanticGuards.Compute(a).Compare(SemanticGuards.Compute(b)));

    [Fact]
    public void Compute_SameText_Deterministic() =>
        Assert.Equal(SemanticGuards.Compute("Enable 2FA on GitHub in 3 steps, not 4"), SemanticGuards.Compute("Enable 2FA on GitHub in 3 steps, not 4"));
}
