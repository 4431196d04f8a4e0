using System.Collections.Concurrent;
using System.Net;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ProxyCore.FunctionalTests.Grpc;

namespace ProxyCore.FunctionalTests;

/// <summary>
/// A real upstream for the HTTP/2 relay tests: Kestrel on 127.0.0.1:0 speaking only HTTP/1.1 or only
/// h2c (prior knowledge), with a gRPC service and a few plain endpoints. Counts the connections it
/// accepted and can ask all of them to close gracefully (HTTP/2: GOAWAY, in-flight streams finish).
/// </summary>
internal sealed class KestrelUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, IConnectionLifetimeNotificationFeature> _live = new();
    private readonly SemaphoreSlim _gate = new(0);
    private int _connections;
    private int _gatedHeads;
    private int _abortedRequests;
    private long _countedBytes;

    private KestrelUpstream(WebApplication app) => _app = app;

    public string Url { get; private set; } = "";

    /// <summary>Requests to /gated received so far (each answers only when <see cref="Allow"/> lets it).</summary>
    public int GatedHeads => Volatile.Read(ref _gatedHeads);

    /// <summary>Lets that many /gated requests answer.</summary>
    public void Allow(int answers) => _gate.Release(answers);

    /// <summary>Connections accepted so far.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Requests to /wait that saw RequestAborted (the stream was reset or the connection closed).</summary>
    public int AbortedRequests => Volatile.Read(ref _abortedRequests);

    /// <summary>Bytes /counted/{size} handed to Kestrel so far (each write completes only when Kestrel took it).</summary>
    public long CountedBytes => Interlocked.Read(ref _countedBytes);

    /// <summary>gRPC calls whose cancellation (client gone, deadline, RST_STREAM) the service observed.</summary>
    public int CancelledCalls => Volatile.Read(ref EchoerService.Cancelled);

    /// <param name="certificate">Serve TLS with this certificate (ALPN offers what <paramref name="protocols"/> allows); null: plaintext.</param>
    public static async Task<KestrelUpstream> StartAsync(HttpProtocols protocols, int maxStreamsPerConnection = 100,
        System.Security.Cryptography.X509Certificates.X509Certificate2? certificate = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddGrpc();
        KestrelUpstream? self = null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.Http2.MaxStreamsPerConnection = maxStreamsPerConnection;
            kestrel.Limits.MinRequestBodyDataRate = null;
            kestrel.Listen(IPAddress.Loopback, 0, listen =>
            {
                listen.Protocols = protocols;
                if (certificate is not null)
                {
                    listen.UseHttps(certificate);
                }
                listen.Use(next => async connection =>
                {
                    Interlocked.Increment(ref self!._connections);
                    if (connection.Features.Get<IConnectionLifetimeNotificationFeature>() is { } lifetime)
                    {
                        self._live[connection.ConnectionId] = lifetime;
                    }
                    try
                    {
                        await next(connection);
                    }
                    finally
                    {
                        self._live.TryRemove(connection.ConnectionId, out _);
                    }
                });
            });
        });
        var app = builder.Build();
        self = new KestrelUpstream(app);
        app.MapGrpcService<EchoerService>();
        app.MapGet("/hello", (HttpContext context) =>
        {
            context.Response.Headers["x-upstream-protocol"] = context.Request.Protocol;
            return "hello from kestrel";
        });
        app.MapGet("/slow", async (HttpContext context) =>
        {
            context.Response.Headers["x-upstream-protocol"] = context.Request.Protocol;
            await Task.Delay(200);
            return "slow";
        });
        app.MapPost("/echo", async (HttpContext context) =>
        {
            context.Response.Headers["x-upstream-protocol"] = context.Request.Protocol;
            context.Response.ContentType = "application/octet-stream";
            await context.Request.Body.CopyToAsync(context.Response.Body);
        });
        app.MapGet("/download/{size:int}", async (HttpContext context, int size) =>
        {
            context.Response.Headers["x-upstream-protocol"] = context.Request.Protocol;
            var chunk = Pattern(16 * 1024, 0);
            for (int sent = 0; sent < size; sent += chunk.Length)
            {
                int n = Math.Min(chunk.Length, size - sent);
                await context.Response.Body.WriteAsync(Pattern(n, sent));
            }
        });
        app.MapPost("/early", (HttpContext context) =>
        {
            // Answers without reading the body: Kestrel then resets the stream with NO_ERROR (RFC 9113 §8.1).
            context.Response.StatusCode = 413;
            return context.Response.WriteAsync("too big for me");
        });
        app.MapGet("/reset-before-head", (HttpContext context) =>
        {
            context.Features.Get<IHttpResetFeature>()!.Reset(2); // INTERNAL_ERROR
            return Task.CompletedTask;
        });
        app.MapGet("/reset-after-head", async (HttpContext context) =>
        {
            await context.Response.Body.WriteAsync(Pattern(1000, 0));
            await context.Response.Body.FlushAsync();
            await Task.Delay(100);
            context.Features.Get<IHttpResetFeature>()!.Reset(2);
        });
        app.MapGet("/wait", async (HttpContext context) =>
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(15), context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                Interlocked.Increment(ref self._abortedRequests);
            }
        });
        app.MapGet("/gated", async (HttpContext context) =>
        {
            Interlocked.Increment(ref self._gatedHeads);
            await self._gate.WaitAsync(TimeSpan.FromSeconds(30), context.RequestAborted);
            return "gated";
        });
        app.MapGet("/counted/{size:int}", async (HttpContext context, int size) =>
        {
            var chunk = Pattern(16 * 1024, 0);
            try
            {
                for (int sent = 0; sent < size; sent += chunk.Length)
                {
                    await context.Response.Body.WriteAsync(chunk, context.RequestAborted);
                    Interlocked.Add(ref self._countedBytes, chunk.Length);
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
        app.MapPost("/trailers", async (HttpContext context) =>
        {
            context.Response.Headers["x-upstream-protocol"] = context.Request.Protocol;
            using var reader = new StreamReader(context.Request.Body);
            string body = await reader.ReadToEndAsync();
            string requestTrailer = context.Request.SupportsTrailers() && context.Request.CheckTrailersAvailable()
                ? context.Request.GetTrailer("x-request-trailer").ToString() : "";
            context.Response.Headers["x-supports-trailers"] = context.Response.SupportsTrailers() ? "true" : "false";
            context.Response.DeclareTrailer("x-checksum");
            await context.Response.WriteAsync($"{body.Length}:{requestTrailer}");
            if (context.Response.SupportsTrailers())
            {
                context.Response.AppendTrailer("x-checksum", "len-" + body.Length);
            }
        });
        await app.StartAsync();
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        self.Url = addresses.First().Replace("[::]", "127.0.0.1", StringComparison.Ordinal);
        return self;
    }

    /// <summary>Deterministic body bytes: byte i of the body is (offset + i) mod 251.</summary>
    public static byte[] Pattern(int length, int offset)
    {
        var bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)((offset + i) % 251);
        }
        return bytes;
    }

    /// <summary>Asks every open connection to close gracefully (HTTP/2: GOAWAY; streams in flight complete).</summary>
    public int RequestCloseAll()
    {
        int n = 0;
        foreach (var lifetime in _live.Values)
        {
            lifetime.RequestClose();
            n++;
        }
        return n;
    }

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await _app.StopAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
        }
        await _app.DisposeAsync();
    }
}

/// <summary>The gRPC service of the passthrough tests.</summary>
internal sealed class EchoerService : Echoer.EchoerBase
{
    public static int Cancelled;

    public override async Task<EchoReply> Echo(EchoRequest request, ServerCallContext context)
    {
        if (request.FailWith.Length > 0)
        {
            context.ResponseTrailers.Add("x-why", "asked-to-fail");
            throw new RpcException(new Status(StatusCode.NotFound, request.FailWith));
        }
        if (request.DelayMs > 0)
        {
            try
            {
                await Task.Delay(request.DelayMs, context.CancellationToken);
            }
            catch (OperationCanceledException)
            {
                Interlocked.Increment(ref Cancelled);
                throw;
            }
        }
        return new EchoReply { Message = request.Message, Protocol = context.GetHttpContext().Request.Protocol };
    }

    public override async Task Chat(IAsyncStreamReader<EchoRequest> requestStream, IServerStreamWriter<EchoReply> responseStream, ServerCallContext context)
    {
        await foreach (var message in requestStream.ReadAllAsync(context.CancellationToken))
        {
            await responseStream.WriteAsync(new EchoReply { Message = "re: " + message.Message, Protocol = context.GetHttpContext().Request.Protocol });
        }
    }

    public override async Task Count(CountRequest request, IServerStreamWriter<CountReply> responseStream, ServerCallContext context)
    {
        for (int i = 0; i < request.Count; i++)
        {
            await responseStream.WriteAsync(new CountReply { Index = i, Payload = ByteString.CopyFrom(KestrelUpstream.Pattern(request.PayloadBytes, i)) });
        }
    }
}
