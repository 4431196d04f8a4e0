using System.Net;
using System.Net.Sockets;
using System.Numerics.Tensors;
using System.Text;
using ProxyCore.Llm.Embeddings;

namespace ProxyCore.Llm.Tests.Embeddings;

/// <summary>Against a real loopback socket speaking HTTP/1.1: one canned answer per test, the request captured.</summary>
public class OpenAIEmbedderTests
{
    private sealed class OneShotServer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly Task<string> _served;

        public OneShotServer(int status, string body, TimeSpan delay = default)
        {
            _listener.Start();
            _served = Task.Run(async () =>
            {
                using var client = await _listener.AcceptTcpClientAsync();
                var stream = client.GetStream();
                var request = new StringBuilder();
                var buffer = new byte[8192];
                while (true)
                {
                    int n = await stream.ReadAsync(buffer);
                    if (n == 0)
                    {
                        break;
                    }
                    request.Append(Encoding.UTF8.GetString(buffer, 0, n));
                    string s = request.ToString();
                    int headEnd = s.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                    if (headEnd >= 0)
                    {
                        var length = s.Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
                        int expected = length is null ? 0 : int.Parse(length["Content-Length:".Length..].Trim());
                        if (s.Length - headEnd - 4 >= expected)
                        {
                            break;
                        }
                    }
                }
                if (delay > TimeSpan.Zero)
                {
                    await Task.Delay(delay);
                }
                var payload = Encoding.UTF8.GetBytes(body);
                var head = $"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {payload.Length}\r\nConnection: close\r\n\r\n";
                try
                {
                    await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
                    await stream.WriteAsync(payload);
                }
                catch (IOException)
                {
                    // the client gave up (timeout test)
                }
                return request.ToString();
            });
        }

        public Uri Address => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");

        public Task<string> Request => _served;

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            try
            {
                await _served.WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (Exception)
            {
                // the test already asserted what it needed
            }
        }
    }

    [Fact]
    public async Task EmbedAsync_ValidAnswer_NormalizedVectorAndRequestShape()
    {
        await using var server = new OneShotServer(200, """{"object":"list","data":[{"object":"embedding","index":0,"embedding":[3.0,4.0,0.0]}],"model":"m","usage":{"prompt_tokens":2,"total_tokens":2}}""");
        using var embedder = new OpenAIEmbedder(server.Address, "text-embedding-3-small", 3, apiKey: "sk-test", sendDimensions: true);
        var v = new float[3];
        await embedder.EmbedAsync("hello \"world\"", v);
        Assert.Equal([0.6f, 0.8f, 0f], v);
        Assert.Equal(1f, TensorPrimitives.Norm(v), 5);
        string request = await server.Request;
        Assert.StartsWith("POST /v1/embeddings HTTP/1.1", request);
        Assert.Contains("Authorization: Bearer sk-test", request);
        Assert.EndsWith("""{"model":"text-embedding-3-small","input":"hello \u0022world\u0022","encoding_format":"float","dimensions":3}""", request);
    }

    [Theory]
    [InlineData(500, """{"error":{"message":"boom"}}""", "answered 500")]
    [InlineData(200, """{"data":[{"embedding":[1.0,2.0]}]}""", "has 2 dimensions")]
    [InlineData(200, """{"data":[{"embedding":[1,2,3,4]}]}""", "more than")]
    [InlineData(200, """{"data":[{"embedding":"AAAA"}]}""", "not an array")]
    [InlineData(200, """{"data":[]}""", "no data item")]
    [InlineData(200, """{"data":[{"embedding":[0,0,0]}]}""", "zero")]
    [InlineData(200, """not json""", "not valid JSON")]
    [InlineData(200, """{"object":"list"}""", "no data")]
    public async Task EmbedAsync_BadAnswer_EmbedderException(int status, string body, string reason)
    {
        await using var server = new OneShotServer(status, body);
        // A generous timeout: on a loaded test machine the default (2 s) can fire first and hide the reason.
        using var embedder = new OpenAIEmbedder(server.Address, "m", 3, timeout: TimeSpan.FromSeconds(30));
        var ex = await Assert.ThrowsAsync<EmbedderException>(async () => await embedder.EmbedAsync("x", new float[3]));
        Assert.Contains(reason, ex.Message);
    }

    [Fact]
    public async Task EmbedAsync_SlowServer_TimeoutAsEmbedderException()
    {
        await using var server = new OneShotServer(200, """{"data":[{"embedding":[1,0,0]}]}""", delay: TimeSpan.FromSeconds(3));
        using var embedder = new OpenAIEmbedder(server.Address, "m", 3, timeout: TimeSpan.FromMilliseconds(200));
        var ex = await Assert.ThrowsAsync<EmbedderException>(async () => await embedder.EmbedAsync("x", new float[3]));
        Assert.Contains("did not answer", ex.Message);
    }

    [Fact]
    public async Task EmbedAsync_NothingListening_EmbedderException()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var embedder = new OpenAIEmbedder(new Uri($"http://127.0.0.1:{port}"), "m", 3);
        await Assert.ThrowsAsync<EmbedderException>(async () => await embedder.EmbedAsync("x", new float[3]));
    }

    [Theory]
    [InlineData("http://h", "http://h/v1/embeddings")]
    [InlineData("http://h/", "http://h/v1/embeddings")]
    [InlineData("http://h/v1", "http://h/v1/embeddings")]
    [InlineData("http://h/openai/v1/", "http://h/openai/v1/embeddings")]
    [InlineData("http://h/v1/embeddings", "http://h/v1/embeddings")]
    public void Endpoint_BaseAddress_EmbeddingsPath(string baseAddress, string expected)
    {
        using var embedder = new OpenAIEmbedder(new Uri(baseAddress), "m", 3);
        Assert.Equal(expected, embedder.Endpoint.ToString());
    }
}
