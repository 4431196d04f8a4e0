using System.Buffers;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Numerics.Tensors;
using System.Text.Json;

namespace ProxyCore.Llm.Embeddings;

/// <summary>
/// Embeds through an OpenAI-compatible <c>POST /v1/embeddings</c> endpoint (OpenAI, Azure OpenAI,
/// vLLM, Ollama, LiteLLM…): <c>{"model":…,"input":…,"encoding_format":"float"}</c> in, the first
/// <c>data[].embedding</c> out, L2-normalized here (not every server normalizes).
/// </summary>
/// <remarks>
/// <para>
/// Uses <see cref="HttpClient"/>: this call is off the relay's byte path (one small request per cache
/// lookup that reaches the semantic stage), and HttpClient is trim- and AOT-clean. JSON is written and
/// read with <see cref="Utf8JsonWriter"/>/<see cref="Utf8JsonReader"/>, no reflection.
/// </para>
/// <para>
/// Failures (timeout, non-2xx, a vector of the wrong length, malformed JSON) are
/// <see cref="EmbedderException"/>s: the stage then skips the semantic cache for that request.
/// </para>
/// </remarks>
public sealed class OpenAIEmbedder : ITextEmbedder, IDisposable
{
    /// <summary>Bound on the response read: 8192 floats as JSON text are well under this.</summary>
    private const int MaxResponseBytes = 1 << 20;

    private readonly HttpClient _http;
    private readonly bool _ownsClient;
    private readonly Uri _endpoint;
    private readonly string _model;
    private readonly string? _apiKey;
    private readonly bool _sendDimensions;
    private readonly TimeSpan _timeout;

    /// <param name="baseAddress">The server, e.g. <c>https://api.openai.com</c> or <c>http://127.0.0.1:11434</c>; <c>/v1/embeddings</c> is appended unless the address already ends with it.</param>
    /// <param name="model">The embeddings model (<c>text-embedding-3-small</c>, <c>nomic-embed-text</c>…).</param>
    /// <param name="dimensions">The vector length the model returns (or is asked for, see <paramref name="sendDimensions"/>).</param>
    /// <param name="apiKey">Sent as <c>Authorization: Bearer</c> when set.</param>
    /// <param name="sendDimensions">Send <c>dimensions</c> in the request (text-embedding-3 models can shorten their vectors).</param>
    /// <param name="timeout">Per call; default 2 s (a slow embedder must not hold a request longer than a miss would).</param>
    /// <param name="httpClient">Reuse a client (tests, shared handler); otherwise one is created and owned.</param>
    public OpenAIEmbedder(Uri baseAddress, string model, int dimensions, string? apiKey = null, bool sendDimensions = false, TimeSpan? timeout = null, HttpClient? httpClient = null)
    {
        ArgumentNullException.ThrowIfNull(baseAddress);
        ArgumentException.ThrowIfNullOrEmpty(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 1);
        string path = baseAddress.AbsolutePath.TrimEnd('/');
        _endpoint = path.EndsWith("/embeddings", StringComparison.Ordinal)
            ? baseAddress
            : new Uri(baseAddress, path.EndsWith("/v1", StringComparison.Ordinal) ? path + "/embeddings" : path + "/v1/embeddings");
        _model = model;
        _apiKey = apiKey;
        _sendDimensions = sendDimensions;
        _timeout = timeout ?? TimeSpan.FromSeconds(2);
        Dimensions = dimensions;
        _ownsClient = httpClient is null;
        _http = httpClient ?? new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) });
    }

    public string Name => "openai";

    public int Dimensions { get; }

    public Uri Endpoint => _endpoint;

    public async ValueTask EmbedAsync(string text, Memory<float> destination, CancellationToken cancellationToken = default)
    {
        if (destination.Length != Dimensions)
        {
            throw new ArgumentException($"destination must hold {Dimensions} floats", nameof(destination));
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_timeout);
        using var request = new HttpRequestMessage(HttpMethod.Post, _endpoint) { Content = new ByteArrayContent(WriteRequest(text)) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        if (_apiKey is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _apiKey);
        }
        byte[] body;
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            body = await ReadBoundedAsync(response.Content, timeout.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new EmbedderException($"embeddings endpoint {_endpoint} answered {(int)response.StatusCode}");
            }
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new EmbedderException($"embeddings endpoint {_endpoint} did not answer within {_timeout.TotalMilliseconds} ms", ex);
        }
        catch (HttpRequestException ex)
        {
            throw new EmbedderException($"embeddings endpoint {_endpoint} failed: {ex.Message}", ex);
        }
        ReadEmbedding(body, destination.Span, Dimensions);
    }

    private byte[] WriteRequest(string text)
    {
        var buffer = new ArrayBufferWriter<byte>(256 + text.Length * 2);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("model", _model);
            writer.WriteString("input", text);
            writer.WriteString("encoding_format", "float");
            if (_sendDimensions)
            {
                writer.WriteNumber("dimensions", Dimensions);
            }
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static async Task<byte[]> ReadBoundedAsync(HttpContent content, CancellationToken cancellationToken)
    {
        if (content.Headers.ContentLength > MaxResponseBytes)
        {
            throw new EmbedderException($"embeddings response of {content.Headers.ContentLength} bytes is over {MaxResponseBytes}");
        }
        using var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        var output = new MemoryStream();
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                if (output.Length + read > MaxResponseBytes)
                {
                    throw new EmbedderException($"embeddings response is over {MaxResponseBytes} bytes");
                }
                output.Write(buffer, 0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return output.ToArray();
    }

    /// <summary>Reads <c>data[0].embedding</c> (the first item's) into <paramref name="destination"/> and normalizes it.</summary>
    internal static void ReadEmbedding(ReadOnlySpan<byte> json, Span<float> destination, int dimensions)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw new EmbedderException("embeddings response is not a JSON object");
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool isData = reader.ValueTextEquals("data"u8);
                reader.Read();
                if (!isData || reader.TokenType != JsonTokenType.StartArray)
                {
                    reader.Skip();
                    continue;
                }
                if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                {
                    throw new EmbedderException("embeddings response has no data item");
                }
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    bool isEmbedding = reader.ValueTextEquals("embedding"u8);
                    reader.Read();
                    if (!isEmbedding)
                    {
                        reader.Skip();
                        continue;
                    }
                    if (reader.TokenType != JsonTokenType.StartArray)
                    {
                        throw new EmbedderException("embedding is not an array of floats (ask for encoding_format float)");
                    }
                    int n = 0;
                    while (reader.Read() && reader.TokenType == JsonTokenType.Number)
                    {
                        if (n == dimensions)
                        {
                            throw new EmbedderException($"embedding has more than the configured {dimensions} dimensions");
                        }
                        destination[n++] = reader.GetSingle();
                    }
                    if (n != dimensions)
                    {
                        throw new EmbedderException($"embedding has {n} dimensions, configured {dimensions}");
                    }
                    float norm = TensorPrimitives.Norm(destination);
                    if (!(norm > 0) || !float.IsFinite(norm))
                    {
                        throw new EmbedderException("embedding is a zero or non-finite vector");
                    }
                    TensorPrimitives.Divide(destination, norm, destination);
                    return;
                }
                throw new EmbedderException("embeddings response item has no embedding");
            }
            throw new EmbedderException("embeddings response has no data");
        }
        catch (JsonException ex)
        {
            throw new EmbedderException("embeddings response is not valid JSON", ex);
        }
        catch (FormatException ex)
        {
            throw new EmbedderException("embedding holds a number that is not a float", ex);
        }
    }

    public void Dispose()
    {
        if (_ownsClient)
        {
            _http.Dispose();
        }
    }
}
