using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using ProxyCore.Llm.Cache;
using ProxyCore.Llm.MiniLM;
using ProxyCore.Llm.Tests.Cache;
using Xunit.Abstractions;

namespace ProxyCore.Llm.MiniLM.Tests;

public sealed class MiniLMFixture : IDisposable
{
    public MiniLMEmbedder Embedder { get; } = new();

    public void Dispose() => Embedder.Dispose();
}

public class MiniLMEmbedderTests(MiniLMFixture fixture, ITestOutputHelper output) : IClassFixture<MiniLMFixture>
{
    /// <summary>Same floor as the builtin embedder's (see SemanticQualityTests): a wrong answer served fast is worse than a miss.</summary>
    private const double PrecisionFloor = 0.95;

    [Fact]
    public async Task EmbedAsync_Text_UnitVectorParaphraseCloserThanUnrelated()
    {
        var a = new float[MiniLMEmbedder.ModelDimensions];
        var b = new float[MiniLMEmbedder.ModelDimensions];
        var c = new float[MiniLMEmbedder.ModelDimensions];
        await fixture.Embedder.EmbedAsync("How many people live in Tokyo?", a);
        await fixture.Embedder.EmbedAsync("What is the population of Tokyo?", b);
        await fixture.Embedder.EmbedAsync("How do I bake sourdough bread?", c);
        Assert.Equal(1f, TensorPrimitives.Norm(a), 3);
        Assert.True(TensorPrimitives.Dot(a, b) > TensorPrimitives.Dot(a, c) + 0.3f);
    }

    [Fact]
    public void Constructor_OnnxRuntimeLoaded_TelemetryOptOutInTheNativeEnvironment()
    {
        // The fixture built an embedder: ORT_DISABLE_TELEMETRY must be visible to native code (libc's
        // getenv), not only to .NET's managed copy of the environment. Unless the test runner set it.
        Assert.NotNull(fixture.Embedder);
        string? native = Marshal.PtrToStringUTF8(GetEnv(MiniLMEmbedder.TelemetryVariable));
        Assert.False(string.IsNullOrEmpty(native), "ORT_DISABLE_TELEMETRY is not in the native environment");
    }

    [DllImport("libc", EntryPoint = "getenv")]
    private static extern nint GetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name);

    [Fact]
    public void MiniLM_DefaultThresholdWithGuards_PrecisionAboveFloor()
    {
        var pairs = SemanticQuality.LoadPairs();
        var (cosine, conflicts) = SemanticQuality.Score(pairs, fixture.Embedder.Embed);
        string table = SemanticQuality.Table($"MiniLM all-MiniLM-L6-v2 ({MiniLMEmbedder.ModelDimensions} dimensions)", pairs, cosine, conflicts);
        output.WriteLine(table);
        foreach (var line in SemanticQuality.FalseHits(pairs, cosine, conflicts, SemanticCacheDefaults.MiniLMThreshold))
        {
            output.WriteLine("false hit: " + line);
        }
        if (Environment.GetEnvironmentVariable("PROXYCORE_QUALITY_OUT") is { Length: > 0 } path)
        {
            File.AppendAllText(path, table + "\n");
        }
        var guarded = SemanticQuality.Evaluate(pairs, cosine, conflicts, SemanticCacheDefaults.MiniLMThreshold, guards: true);
        var plain = SemanticQuality.Evaluate(pairs, cosine, conflicts, SemanticCacheDefaults.MiniLMThreshold, guards: false);
        Assert.True(guarded.Precision >= PrecisionFloor, $"precision {guarded.Precision:0.000}");
        Assert.True(guarded.Recall >= 0.4, $"recall {guarded.Recall:0.000}");
        Assert.True(guarded.Precision > plain.Precision);
    }
}
