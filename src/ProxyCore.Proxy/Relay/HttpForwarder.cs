using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using ProxyCore.Http;
using ProxyCore.Http.Http1;
using ProxyCore.Http.Http2.Client;
using ProxyCore.Proxy.Tracing;
using ProxyCore.Proxy.Stages;
using ProxyCore.Proxy.Stages.Compression;
using ProxyCore.Routing.Model;
using ProxyCore.Transport;

namespace ProxyCore.Proxy.Relay;

/// <summary>What the relay does to forwarded heads (the `forwarding` block of the config).</summary>
public sealed class ForwarderOptions
{
    /// <summary>Set X-Forwarded-For (appended), X-Forwarded-Proto and X-Forwarded-Host (default on).</summary>
    public bool XForwarded { get; init; } = true;

    /// <summary>Add the RFC 7239 Forwarded header (appended to any the client sent); default off.</summary>
    public bool Forwarded { get; init; }

    /// <summary>Send the client's Host upstream (default); false sends the destination's host:port.</summary>
    public bool PreserveHost { get; init; } = true;

    /// <summary>Add `Via: 1.1 proxycore` to requests and responses, as RFC 9110 §7.6.3 asks of a proxy (default on).</summary>
    public bool Via { get; init; } = true;

    /// <summary>Continue (or start) the W3C trace: send our hop's `traceparent` upstream; default on.</summary>
    public bool TracePropagation { get; init; } = true;

    /// <summary>Largest request body accepted, in bytes (0 = no limit). Over it: 413.</summary>
    public long MaxRequestBodyBytes { get; init; }

    public Http1Limits Limits { get; init; } = Http1Limits.Default;

    public static ForwarderOptions Default { get; } = new();
}

/// <summary>
/// Forwards one exchange to one destination over HTTP/1.1 and relays the answer.
///
/// Lifecycle (the `// Step N` markers below follow it):
///   1. Lease an upstream connection from the pool (a stale keep-alive one is retried on a fresh one).
///   2. Write the request head: hop-by-hop fields removed, X-Forwarded-* and Via added, our own framing.
///   3. Start copying the request body (concurrently: the upstream may answer before it read it all).
///   4. Read the response head within the route's timeout; 1xx interim answers are relayed or skipped.
///   5. Write the response head to the client (101 / 2xx-to-CONNECT turn into a tunnel here).
///   6. Copy the response body, one client flush per upstream read, with the pipes' backpressure
///      (through the route's gzip/Brotli encoder when its compression applies: decided at step 5).
///   7. Return the upstream connection to the pool only if both bodies ended cleanly and it may be reused.
/// Failures before the response started become the proxy's error statuses; after it, the client
/// connection is aborted so a cut body is never mistaken for a complete one.
/// </summary>
public sealed partial class HttpForwarder
{
    private static readonly byte[] s_viaValue = "1.1 proxycore"u8.ToArray();

    // Relay contexts of connections waiting idle between requests, reused by the next connection that
    // forwards: a keep-alive connection holds one only while an exchange is in flight. Bounded, so a burst
    // of connections does not pin its peak of contexts forever (past it a connection keeps its own).
    private const int MaxIdleContexts = 4096;
    private readonly System.Collections.Concurrent.ConcurrentQueue<ForwarderContext> _idleContexts = new();
    private int _idleContextCount;
    private readonly ThreadCache<ForwarderContext> _threadCache = new(64); // newest first per thread: a hot context

    private readonly UpstreamConnectionPool _pool;
    private readonly Http2UpstreamPool _http2;
    private readonly ForwarderOptions _options;

    /// <param name="pool">HTTP/1.1 upstream connections (and the dialer of HTTP/2 ones).</param>
    /// <param name="options">What the relay does to forwarded heads.</param>
    /// <param name="http2">Multiplexed connections for clusters with "protocol": "http2"; default: one over <paramref name="pool"/>'s dialer.</param>
    public HttpForwarder(UpstreamConnectionPool pool, ForwarderOptions options, Http2UpstreamPool? http2 = null)
    {
        _pool = pool;
        _options = options;
        _http2 = http2 ?? new Http2UpstreamPool(pool);
    }

    /// <summary>The HTTP/2 upstream connections (dispose with the forwarder's owner).</summary>
    public Http2UpstreamPool Http2Pool => _http2;

    /// <summary>
    /// Forwards <paramref name="exchange"/> to <paramref name="destination"/>, answers or aborts on
    /// failure, then tells <paramref name="observer"/> how it went.
    /// </summary>
    /// <remarks>
    /// One async method on purpose: every async method that suspends costs a state-machine box per
    /// request, and the pooling builder's small per-thread cache misses under many concurrent
    /// connections (measured: 4.5 KB/request over 64 connections with five nested async methods).
    /// The steps that usually complete synchronously stay inline here; only the rare paths
    /// (interim responses, tunnels, request bodies, error answers) are methods of their own.
    /// </remarks>
    /// <summary>Forwards <paramref name="exchange"/>: see the lifecycle above. The work runs on the connection's relay loop.</summary>
    public ValueTask ForwardAsync(HttpExchange exchange, RouteModel route, DestinationModel destination, IForwarderObserver observer)
    {
        if (exchange.ApplicationState is not ForwarderContext context)
        {
            if (_threadCache.TryPop(out context!))
            {
                // The context this reactor thread took back last: its relay loop, timers and heads are still in the cache.
            }
            else if (_idleContexts.TryDequeue(out context!))
            {
                Interlocked.Decrement(ref _idleContextCount);
            }
            else
            {
                context = new ForwarderContext(this);
            }
            exchange.ApplicationState = context;
        }
        return context.Start(exchange, route, destination, observer);
    }

    /// <summary>
    /// Takes back the context of a connection that went idle (see <see cref="ForwarderContext.OnIdle"/>);
    /// false when the pool is full (the connection then keeps it, as before pooling).
    /// </summary>
    internal bool ReturnContext(ForwarderContext context)
    {
        if (_threadCache.TryPush(context))
        {
            return true;
        }
        if (Interlocked.Increment(ref _idleContextCount) > MaxIdleContexts)
        {
            Interlocked.Decrement(ref _idleContextCount);
            return false;
        }
        _idleContexts.Enqueue(context);
        return true;
    }

    /// <summary>
    /// The relay loop of one client connection: forwards each exchange handed to it by
    /// <see cref="ForwarderContext.Start"/>, until the connection ends.
    /// </summary>
    /// <remarks>
    /// One long-lived async method per connection, on purpose: every async method invocation that
    /// suspends costs a state-machine box, and the runtime's pooling builder keeps one spare per thread
    /// and per core, which misses under many concurrent connections (measured in-process, 64
    /// connections: 4.5 KB/request with the relay split over five async methods, 190 B with one
    /// pooled method, 0 B with this loop). Steps that usually complete synchronously stay inline;
    /// only rare paths (interim responses, tunnels, request bodies, error answers) are methods of
    /// their own.
    /// </remarks>
    internal async Task RunLoopAsync(ForwarderContext context)
    {
        while (await context.WaitForExchangeAsync().ConfigureAwait(false))
        {
            var exchange = context.Exchange!;
            var route = context.Route!;
            var destination = context.Destination!;
            context.Begin(route.Timeout, exchange.Aborted, exchange is Http1Connection);
            if (_options.TracePropagation)
            {
                context.Trace.Begin(exchange.Request.TryGetValue(KnownHeader.TraceParent, out var clientTrace) ? clientTrace : default);
            }
            else
            {
                context.Trace.Active = false;
            }
            var error = ForwarderError.ClientGone;
            int retries = 0;
            Exception? failure = null;
            try
            {
                try
                {
                    var request = exchange.Request;
                    var response = exchange.Response;
                    long maxBody = _options.MaxRequestBodyBytes;
                    if (maxBody > 0 && request.Framing == BodyFraming.ContentLength && request.ContentLength > maxBody)
                    {
                        error = ForwarderError.RequestBodyTooLarge;
                        goto Finished;
                    }

                    var cluster = destination.Cluster;
                    if (cluster.Protocol == UpstreamProtocol.Http2 && !request.IsUpgrade && request.Method != HttpMethod.Connect)
                    {
                        // Upgrades and CONNECT stay on HTTP/1.1 (tunnels over HTTP/2 need RFC 8441 on the upstream).
                        error = await (context.Http2 ??= new Http2RelayLoop(this, context)).Run(exchange, route).ConfigureAwait(false);
                        destination = context.Destination ?? destination;
                        goto Finished;
                    }
                    var retry = route.Retry;
                    // A retry must not duplicate work: after a connect failure nothing was sent; otherwise
                    // only an idempotent request without a body (a body is streamed, never kept) is sent again.
                    bool repeatable = HttpMethods.IsIdempotent(request.Method) && !exchange.HasRequestBody;
                    for (int attempt = 0; ; attempt++)
                    {
                        if (retries > 0)
                        {
                            context.RestartTimer(retry!.PerTryTimeout ?? route.Timeout, exchange.Aborted, exchange is Http1Connection);
                        }
                        else if (retry?.PerTryTimeout is { } perTry)
                        {
                            context.Timeout.CancelAfter(perTry);
                        }

                        // Step 1: lease.
                        UpstreamLease lease;
                        try
                        {
                            lease = await _pool.RentAsync(destination.EndPoint, cluster.PoolOptions, exchange.Aborted).ConfigureAwait(false);
                        }
                        catch (UpstreamConnectException e)
                        {
                            error = ForwarderErrors.FromConnectFailure(e.Reason);
                            if (ForwarderErrors.MayRetryConnect(error) &&
                                retry is { OnConnectFailure: true } && await PrepareRetryAsync(context, route, destination, error, ++retries).ConfigureAwait(false) is { } next)
                            {
                                destination = context.Destination = next;
                                continue;
                            }
                            goto Finished;
                        }

                        var upstream = lease.Connection.Transport;
                        var input = upstream.Input;
                        bool reusable = false;
                        try
                        {
                            // Step 2: request head (flushed together with the first body bytes, or alone).
                            WriteRequestHead(upstream.Output, exchange, route, destination, context);
                            Task<ForwarderError>? bodyPump = null;
                            if (exchange.HasRequestBody && !exchange.RequestBodyCompleted)
                            {
                                // Step 3: the body flows while we wait for the answer.
                                bodyPump = PumpRequestBodyAsync(exchange, upstream.Output, maxBody, context.PumpCancel.Token);
                            }
                            else
                            {
                                var flush = await upstream.Output.FlushAsync(exchange.Aborted).ConfigureAwait(false);
                                if (flush.IsCompleted)
                                {
                                    if (lease.IsReused && attempt < 3)
                                    {
                                        continue; // A keep-alive connection the upstream had already closed: nothing was sent.
                                    }
                                    error = ForwarderError.UpstreamWrite;
                                    goto Finished;
                                }
                            }

                            // Step 4: response head, within the route's timeout; interim 1xx answers are relayed or skipped.
                            long upstreamStart = Stopwatch.GetTimestamp();
                            var headError = ForwarderError.None;
                            bool received = false;
                            while (true)
                            {
                                ReadResult result;
                                try
                                {
                                    result = await input.ReadAsync(context.Timeout.Token).ConfigureAwait(false);
                                }
                                catch (OperationCanceledException) when (context.Timeout.IsCancellationRequested)
                                {
                                    headError = exchange.Aborted.IsCancellationRequested ? ForwarderError.ClientGone : ForwarderError.UpstreamTimeout;
                                    break;
                                }
                                catch (Exception)
                                {
                                    headError = ForwarderError.UpstreamClosed;
                                    break;
                                }

                                var buffer = result.Buffer;
                                received |= !buffer.IsEmpty;
                                response.Reset();
                                var status = Http1Parser.TryParseResponse(buffer, response, request.Method, _options.Limits, out var consumed, out _);
                                if (status == Http1ParseResult.Complete)
                                {
                                    input.AdvanceTo(consumed);
                                    if (response.StatusCode is >= 100 and < 200 && response.StatusCode != 101)
                                    {
                                        await RelayInterimAsync(exchange).ConfigureAwait(false);
                                        continue;
                                    }
                                    break;
                                }
                                input.AdvanceTo(status == Http1ParseResult.Error || result.IsCompleted ? buffer.End : buffer.Start, buffer.End);
                                if (status == Http1ParseResult.Error)
                                {
                                    headError = ForwarderError.UpstreamProtocol;
                                    break;
                                }
                                if (result.IsCompleted)
                                {
                                    headError = ForwarderError.UpstreamClosed;
                                    break;
                                }
                            }
                            context.UpstreamTicks = Stopwatch.GetTimestamp() - upstreamStart;
                            if (headError != ForwarderError.None)
                            {
                                if (headError == ForwarderError.UpstreamClosed && !received && lease.IsReused && bodyPump is null && attempt < 3)
                                {
                                    continue; // Stale keep-alive connection: the request never reached an application.
                                }
                                if (repeatable && retry is not null &&
                                    retry.IsRetriedOn(headError) &&
                                    await PrepareRetryAsync(context, route, destination, headError, ++retries).ConfigureAwait(false) is { } next)
                                {
                                    destination = context.Destination = next;
                                    continue;
                                }
                                if (bodyPump is not null)
                                {
                                    lease.Connection.Abort();
                                    context.PumpCancel.Cancel();
                                    var bodyError = await bodyPump.ConfigureAwait(false);
                                    if (bodyError is ForwarderError.RequestBody or ForwarderError.RequestBodyTooLarge)
                                    {
                                        error = bodyError;
                                        goto Finished;
                                    }
                                }
                                error = headError;
                                goto Finished;
                            }
                            if (repeatable && retry is not null && retry.OnStatus(response.StatusCode) &&
                                await PrepareRetryAsync(context, route, destination, ForwarderError.UpstreamStatus, ++retries).ConfigureAwait(false) is { } retryAt)
                            {
                                destination = context.Destination = retryAt;
                                continue; // this answer is dropped unread: the connection is not reused
                            }
                            context.Timeout.CancelAfter(context.RouteTimeout); // from here on: the longest silence between body reads

                            // Step 5: a switch of protocols becomes a tunnel.
                            if ((response.StatusCode == 101 && request.IsUpgrade) ||
                                (request.Method == HttpMethod.Connect && response.StatusCode is >= 200 and < 300))
                            {
                                await TunnelAsync(exchange, lease.Connection, bodyPump).ConfigureAwait(false);
                                error = ForwarderError.None;
                                goto Finished;
                            }

                            var framing = response.Framing;
                            long contentLength = response.ContentLength;
                            PrepareResponseHead(response, route);
                            ResponseEncoder? encoder = null;
                            if (route.Policies is RoutePolicies { Compression: { } compression } &&
                                compression.Apply(request, response, framing, contentLength) is var coding and not ContentCoding.None)
                            {
                                // The compressed length is unknown until the end: chunked (h1) / no content-length (h2).
                                encoder = context.Encoder ??= new ResponseEncoder();
                                encoder.Start(coding, compression);
                            }
                            await exchange.StartResponseAsync(encoder is null ? ToClientFraming(framing, request.Method, contentLength) : BodyFraming.Stream,
                                contentLength, exchange.Aborted).ConfigureAwait(false);

                            // Step 6: response body, one client flush per upstream read.
                            var copyError = ForwarderError.None;
                            long remaining = framing == BodyFraming.ContentLength ? contentLength : -1;
                            bool bodyDone = framing == BodyFraming.None || remaining == 0;
                            while (!bodyDone)
                            {
                                ReadResult result;
                                try
                                {
                                    result = await input.ReadAsync(context.Timeout.Token).ConfigureAwait(false);
                                }
                                catch (Exception)
                                {
                                    copyError = exchange.Aborted.IsCancellationRequested ? ForwarderError.ClientGone : ForwarderError.ResponseBody;
                                    break;
                                }
                                context.Timeout.CancelAfter(context.RouteTimeout);
                                var buffer = result.Buffer;
                                ReadOnlySequence<byte> data;
                                SequencePosition consumed;
                                if (framing == BodyFraming.ContentLength)
                                {
                                    if (buffer.IsEmpty && result.IsCompleted)
                                    {
                                        copyError = ForwarderError.ResponseBody; // cut before Content-Length bytes
                                        break;
                                    }
                                    data = buffer.Slice(0, Math.Min(buffer.Length, remaining));
                                    consumed = data.End;
                                    remaining -= data.Length;
                                    bodyDone = remaining == 0;
                                }
                                else if (framing == BodyFraming.Chunked)
                                {
                                    var status = context.Chunked.Read(buffer, context.Trailers, _options.Limits, out data, out consumed, out _);
                                    if (status == ChunkedReadResult.Complete)
                                    {
                                        StripForbiddenTrailers(context.Trailers);
                                        bodyDone = true;
                                    }
                                    else if (status == ChunkedReadResult.Incomplete)
                                    {
                                        if (result.IsCompleted)
                                        {
                                            input.AdvanceTo(buffer.End);
                                            copyError = ForwarderError.ResponseBody;
                                            break;
                                        }
                                        input.AdvanceTo(consumed, buffer.End);
                                        continue;
                                    }
                                    else if (status == ChunkedReadResult.Error)
                                    {
                                        input.AdvanceTo(buffer.End);
                                        copyError = ForwarderError.ResponseBody;
                                        break;
                                    }
                                }
                                else
                                {
                                    // Close-delimited: everything until the upstream closes.
                                    data = buffer;
                                    consumed = buffer.End;
                                    bodyDone = result.IsCompleted;
                                }
                                if (!data.IsEmpty)
                                {
                                    if (encoder is null)
                                    {
                                        await exchange.WriteResponseBodyAsync(data, flush: true, exchange.Aborted).ConfigureAwait(false);
                                    }
                                    else if (encoder.Encode(data) is { IsEmpty: false } encoded)
                                    {
                                        await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(encoded), flush: true, exchange.Aborted).ConfigureAwait(false);
                                    }
                                }
                                input.AdvanceTo(consumed);
                            }
                            if (copyError != ForwarderError.None)
                            {
                                exchange.Abort(ForwarderErrors.Reason(copyError));
                                error = copyError;
                                goto Finished;
                            }

                            // Step 7: the upstream connection may be reused only if both directions ended cleanly.
                            var pumpResult = ForwarderError.None;
                            if (bodyPump is not null)
                            {
                                if (!exchange.RequestBodyCompleted)
                                {
                                    // The upstream answered before reading the whole body (a 413, a redirect): stop
                                    // relaying it; the rest of it cannot be told from a next request, so the client
                                    // connection closes after this response.
                                    context.PumpCancel.Cancel();
                                    exchange.CloseAfterResponse();
                                }
                                pumpResult = await bodyPump.ConfigureAwait(false);
                            }
                            reusable = pumpResult == ForwarderError.None && framing != BodyFraming.CloseDelimited && response.KeepAlive;
                            if (encoder is not null)
                            {
                                await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(encoder.Finish()), flush: false, exchange.Aborted).ConfigureAwait(false);
                                context.Coding = encoder.Coding;
                            }
                            await exchange.CompleteResponseAsync(context.Trailers.HeaderCount > 0 ? context.Trailers : null, exchange.Aborted).ConfigureAwait(false);
                            error = ForwarderError.None;
                            goto Finished;
                        }
                        catch (Exception) when (exchange.Aborted.IsCancellationRequested)
                        {
                            error = ForwarderError.ClientGone;
                            goto Finished;
                        }
                        catch (IOException) when (exchange.ResponseStarted)
                        {
                            exchange.Abort("client-write-failed");
                            error = ForwarderError.ClientGone;
                            goto Finished;
                        }
                        finally
                        {
                            if (reusable)
                            {
                                _pool.Return(lease);
                            }
                            else
                            {
                                _pool.Discard(lease);
                            }
                        }
                    }
                }
                finally
                {
                    context.End();
                    context.EndRetries((context.Destination ?? destination).Cluster.State);
                    if (error != ForwarderError.None)
                    {
                        await ReportAsync(exchange, error).ConfigureAwait(false);
                    }
                    context.Observer!.OnForwarded(exchange, route, context.Destination ?? destination, error, context.UpstreamTicks);
                }
            Finished:;
            }
            catch (Exception e)
            {
                // The client left while we waited outside a relay step (a lease, a retry's backoff): the finally
                // above logged it as client-gone and there is no one to answer; anything else is a real failure.
                failure = exchange.Aborted.IsCancellationRequested ? null : e;
            }
            context.Finish(failure);
        }
    }

    /// <summary>
    /// Decides whether a failed try may be retried (attempts left, retry budget), and if so counts the
    /// failure against its destination, waits the backoff and picks the destination of the next try.
    /// </summary>
    private static async ValueTask<DestinationModel?> PrepareRetryAsync(ForwarderContext context, RouteModel route, DestinationModel failed, ForwarderError reason, int retry)
    {
        var policy = route.Retry!;
        var cluster = failed.Cluster;
        if (retry > policy.Attempts || !cluster.State.TryBeginRetry(policy.BudgetPercent, policy.MinRetryConcurrency))
        {
            return null;
        }
        context.RetriesInFlight++;
        failed.State.EndRequest(success: false);
        context.Observer!.OnRetry(route, failed, reason);
        await Task.Delay(policy.Delay(retry, Random.Shared), context.Exchange!.Aborted).ConfigureAwait(false);
        var next = cluster.LoadBalancer.Pick(cluster.Destinations) ?? failed;
        next.State.BeginRequest();
        return next;
    }

    /// <summary>RFC 9110 §15.2: an interim answer. We already gave the client its 100; others (103) go on.</summary>
    private static ValueTask RelayInterimAsync(HttpExchange exchange)
    {
        if (exchange.Response.StatusCode == 100)
        {
            return ValueTask.CompletedTask;
        }
        StripHopByHop(exchange.Response);
        return exchange.SendInformationalAsync(exchange.Response, exchange.Aborted);
    }

    private static async ValueTask ReportAsync(HttpExchange exchange, ForwarderError error)
    {
        if (error == ForwarderError.ClientGone || exchange.ResponseStarted)
        {
            return;
        }
        try
        {
            await exchange.RespondErrorAsync(ForwarderErrors.StatusCode(error), ForwarderErrors.Reason(error), ForwarderErrors.Message(error)).ConfigureAwait(false);
        }
        catch (Exception)
        {
            exchange.Abort("error-response-failed");
        }
    }

    // ---- Step 2 ----

    private void WriteRequestHead(PipeWriter output, HttpExchange exchange, RouteModel route, DestinationModel destination, ForwarderContext context)
    {
        var request = exchange.Request;
        var writer = new HeadWriter(output);
        writer.Write(request.MethodSpan);
        writer.Write(" "u8);
        if (request.TargetForm == RequestTargetForm.Asterisk)
        {
            writer.Write("*"u8);
        }
        else if (request.TargetForm == RequestTargetForm.Authority)
        {
            writer.Write(request.AuthoritySpan);
        }
        else
        {
            writer.Write(destination.PathPrefixBytes);
            writer.Write(request.PathSpan);
            writer.Write(request.QuerySpan);
        }
        writer.Write(" HTTP/1.1\r\nhost: "u8);
        // Precedence: the route's transforms.host, then the client's Host (preserveHost), then the destination's.
        writer.Write(route.Policies is RoutePolicies { Transforms.Host: { } host } ? host
            : !_options.PreserveHost || request.AuthoritySpan.IsEmpty ? destination.HostHeaderBytes : request.AuthoritySpan);
        writer.Write("\r\n"u8);

        var scan = new ForwardedFieldScan(request);
        var headers = request.Headers;
        for (int i = 0; i < headers.Length; i++)
        {
            if (PassesThrough(request, i, ref scan, context))
            {
                writer.WriteHeader(request.Get(headers[i].Name), request.Get(headers[i].Value));
            }
        }

        if (_options.XForwarded)
        {
            writer.Write("x-forwarded-for: "u8);
            WriteForwardedForValue(ref writer, exchange, scan.XForwardedFor);
            writer.Write("\r\nx-forwarded-proto: "u8);
            writer.Write(exchange.IsHttps ? "https"u8 : "http"u8);
            writer.Write("\r\n"u8);
            if (!request.AuthoritySpan.IsEmpty)
            {
                writer.WriteHeader("x-forwarded-host"u8, request.AuthoritySpan);
            }
        }
        if (_options.Forwarded)
        {
            writer.Write("forwarded: "u8);
            WriteForwardedValue(ref writer, exchange, scan.Forwarded);
            writer.Write("\r\n"u8);
        }
        if (_options.Via)
        {
            writer.Write("via: "u8);
            WriteViaValue(ref writer, request, scan.Via);
            writer.Write("\r\n"u8);
        }
        if (context.Trace.Active)
        {
            Span<byte> traceParent = stackalloc byte[TraceContext.HeaderLength];
            context.Trace.Format(traceParent);
            writer.WriteHeader("traceparent"u8, traceParent);
        }
        if (scan.TeTrailers)
        {
            writer.Write("te: trailers\r\n"u8);
        }

        if (request.IsUpgrade && request.TryGetValue(KnownHeader.Upgrade, out var upgrade))
        {
            writer.Write("connection: upgrade\r\n"u8);
            writer.WriteHeader("upgrade"u8, upgrade);
        }
        switch (request.Framing)
        {
            case BodyFraming.ContentLength:
                writer.Write("content-length: "u8);
                writer.WriteDecimal(request.ContentLength);
                writer.Write("\r\n"u8);
                break;
            case BodyFraming.Chunked or BodyFraming.Stream:
                writer.Write("transfer-encoding: chunked\r\n"u8);
                break;
        }
        writer.Write("\r\n"u8);
        writer.Commit();
    }

    /// <summary>What the scan of the client's fields found: where the fields this hop extends start, and whether TE: trailers passes.</summary>
    private struct ForwardedFieldScan
    {
        public readonly int Connection;
        public readonly bool FilterByConnection;
        public int XForwardedFor = -1;
        public int Via = -1;
        public int Forwarded = -1;
        public bool TeTrailers;

        public ForwardedFieldScan(RequestHead request)
        {
            Connection = request.IndexOf(KnownHeader.Connection);
            FilterByConnection = Connection >= 0 && ConnectionNamesOtherFields(request.GetValue(Connection));
        }
    }

    /// <summary>
    /// Step 2, for both upstream protocols: true when the client's field <paramref name="i"/> is forwarded as
    /// it came; false when the relay drops it or writes its own value (recorded in <paramref name="scan"/>).
    /// </summary>
    private bool PassesThrough(RequestHead request, int i, ref ForwardedFieldScan scan, ForwarderContext context)
    {
        var header = request.Headers[i];
        switch (header.Id)
        {
            case KnownHeader.Host:
            case KnownHeader.ContentLength:
            case KnownHeader.TransferEncoding:
            case KnownHeader.Connection:
            case KnownHeader.KeepAlive:
            case KnownHeader.ProxyConnection:
            case KnownHeader.Trailer:
            case KnownHeader.Upgrade:
            case KnownHeader.ProxyAuthenticate:
            case KnownHeader.ProxyAuthorization:
            case KnownHeader.Expect:
                // Hop-by-hop (RFC 9110 §7.6.1; connection-specific in HTTP/2, RFC 9113 §8.2.2) or framing we
                // write ourselves; Host is written from the route (HTTP/2: as :authority); Expect was answered by us.
                return false;
            case KnownHeader.TE:
                // RFC 9110 §10.1.4: only "trailers" means something end to end (gRPC relies on it), and
                // RFC 9113 §8.2.2 allows no other value over HTTP/2.
                scan.TeTrailers |= System.Text.Ascii.EqualsIgnoreCase(request.Get(header.Value), "trailers"u8);
                return false;
            case KnownHeader.XForwardedFor when _options.XForwarded:
                scan.XForwardedFor = scan.XForwardedFor < 0 ? i : scan.XForwardedFor;
                return false;
            case KnownHeader.XForwardedProto or KnownHeader.XForwardedHost when _options.XForwarded:
                return false;
            case KnownHeader.Via when _options.Via:
                scan.Via = scan.Via < 0 ? i : scan.Via;
                return false;
            case KnownHeader.Forwarded when _options.Forwarded:
                scan.Forwarded = scan.Forwarded < 0 ? i : scan.Forwarded;
                return false;
            case KnownHeader.TraceParent when context.Trace.Active:
                return false; // replaced by our hop's value
        }
        var name = request.Get(header.Name);
        // A pseudo-header never passes as a field (an HTTP/1.1 parser refuses ':' in names anyway).
        return !name.IsEmpty && name[0] != (byte)':'
            && !(scan.FilterByConnection && IsNamedInConnection(request.GetValue(scan.Connection), name));
    }

    /// <summary>Every X-Forwarded-For value, in order, then the client: the list a chain of proxies builds.</summary>
    private static void WriteForwardedForValue<TSink>(ref TSink sink, HttpExchange exchange, int firstIndex) where TSink : IByteSink, allows ref struct
    {
        AppendEarlierValues(ref sink, exchange.Request, KnownHeader.XForwardedFor, firstIndex);
        sink.Write(exchange.ClientAddress);
    }

    /// <summary>RFC 7239 §4: one forwarded-element for this hop, after the elements earlier proxies wrote.</summary>
    private static void WriteForwardedValue<TSink>(ref TSink sink, HttpExchange exchange, int firstIndex) where TSink : IByteSink, allows ref struct
    {
        var request = exchange.Request;
        AppendEarlierValues(ref sink, request, KnownHeader.Forwarded, firstIndex);
        var client = exchange.ClientAddress;
        // RFC 7239 §6: an IPv6 node is written as a quoted "[addr]".
        bool v6 = client.IndexOf((byte)':') >= 0;
        sink.Write(v6 ? "for=\"["u8 : "for="u8);
        sink.Write(client);
        sink.Write(v6 ? "]\";proto="u8 : ";proto="u8);
        sink.Write(exchange.IsHttps ? "https"u8 : "http"u8);
        if (!request.AuthoritySpan.IsEmpty)
        {
            sink.Write(";host=\""u8);
            sink.Write(request.AuthoritySpan);
            sink.Write("\""u8);
        }
    }

    /// <summary>RFC 9110 §7.6.3: the client's Via (its first line), then this hop.</summary>
    private static void WriteViaValue<TSink>(ref TSink sink, RequestHead request, int firstIndex) where TSink : IByteSink, allows ref struct
    {
        if (firstIndex >= 0)
        {
            sink.Write(request.Get(request.Headers[firstIndex].Value));
            sink.Write(", "u8);
        }
        sink.Write(s_viaValue);
    }

    private static void AppendEarlierValues<TSink>(ref TSink sink, RequestHead request, KnownHeader id, int firstIndex) where TSink : IByteSink, allows ref struct
    {
        if (firstIndex < 0)
        {
            return;
        }
        var headers = request.Headers;
        for (int i = firstIndex; i < headers.Length; i++)
        {
            if (headers[i].Id == id)
            {
                sink.Write(request.Get(headers[i].Value));
                sink.Write(", "u8);
            }
        }
    }

    /// <summary>True when a Connection value lists more than the usual close / keep-alive / upgrade.</summary>
    private static bool ConnectionNamesOtherFields(ReadOnlySpan<byte> value)
    {
        // The values nearly every peer sends, one token alone: no split (a third of the instructions).
        if (System.Text.Ascii.EqualsIgnoreCase(value, "keep-alive"u8) || System.Text.Ascii.EqualsIgnoreCase(value, "close"u8))
        {
            return false;
        }
        foreach (var range in value.Split((byte)','))
        {
            var token = value[range].Trim(" \t"u8);
            if (!token.IsEmpty && !System.Text.Ascii.EqualsIgnoreCase(token, "close"u8) &&
                !System.Text.Ascii.EqualsIgnoreCase(token, "keep-alive"u8) && !System.Text.Ascii.EqualsIgnoreCase(token, "upgrade"u8))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>RFC 9110 §7.6.1: fields named by Connection are hop-by-hop too.</summary>
    private static bool IsNamedInConnection(ReadOnlySpan<byte> connection, ReadOnlySpan<byte> name)
    {
        foreach (var range in connection.Split((byte)','))
        {
            if (System.Text.Ascii.EqualsIgnoreCase(connection[range].Trim(" \t"u8), name))
            {
                return true;
            }
        }
        return false;
    }

    // ---- Step 3 ----

    private static async Task<ForwarderError> PumpRequestBodyAsync(HttpExchange exchange, PipeWriter upstream, long maxBody, CancellationToken cancellationToken)
    {
        bool chunked = exchange.Request.Framing != BodyFraming.ContentLength;
        long total = 0;
        try
        {
            while (true)
            {
                BodyReadResult read;
                try
                {
                    read = await exchange.ReadRequestBodyAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (HttpProtocolException)
                {
                    upstream.Complete(new IOException("The client's request body was malformed."));
                    return ForwarderError.RequestBody;
                }
                catch (Exception)
                {
                    upstream.Complete(new IOException("The client's request body was cut."));
                    return ForwarderError.RequestBody;
                }

                var data = read.Data;
                total += data.Length;
                if (maxBody > 0 && total > maxBody)
                {
                    exchange.AdvanceRequestBody();
                    upstream.Complete(new IOException("Request body too large."));
                    return ForwarderError.RequestBodyTooLarge;
                }
                Http1BodyWriter.Write(upstream, data, chunked);
                exchange.AdvanceRequestBody();

                if (read.IsCompleted)
                {
                    if (chunked)
                    {
                        Http1BodyWriter.WriteLastChunk(upstream, exchange.RequestTrailers);
                    }
                    var last = await upstream.FlushAsync().ConfigureAwait(false);
                    return last.IsCompleted ? ForwarderError.UpstreamWrite : ForwarderError.None;
                }
                var flush = await upstream.FlushAsync().ConfigureAwait(false);
                if (flush.IsCompleted || flush.IsCanceled)
                {
                    return ForwarderError.UpstreamWrite;
                }
            }
        }
        catch (Exception)
        {
            return ForwarderError.UpstreamWrite;
        }
    }

    // ---- Step 5 ----

    private void PrepareResponseHead(ResponseHead response, RouteModel route)
    {
        StripHopByHop(response);
        if (route.Policies is RoutePolicies { Transforms: { HasResponseTransforms: true } transforms })
        {
            transforms.ApplyResponse(response);
        }
        if (_options.Via)
        {
            int via = response.IndexOf(KnownHeader.Via);
            if (via < 0)
            {
                response.AddHeader("via"u8, s_viaValue);
            }
        }
    }

    /// <summary>Removes hop-by-hop and framing fields, including those named by Connection (RFC 9110 §7.6.1).</summary>
    private static void StripHopByHop(HttpHead head)
    {
        int connectionIndex = head.IndexOf(KnownHeader.Connection);
        bool filterByConnection = connectionIndex >= 0 && ConnectionNamesOtherFields(head.GetValue(connectionIndex));
        var connectionValue = filterByConnection ? head.Get(head.Headers[connectionIndex].Value) : default;
        for (int i = head.HeaderCount - 1; i >= 0; i--)
        {
            var header = head.Headers[i];
            if (KnownHeaders.IsHopByHop(header.Id) || header.Id == KnownHeader.ContentLength ||
                (filterByConnection && IsNamedInConnection(connectionValue, head.Get(header.Name))))
            {
                head.RemoveHeaderAt(i);
            }
        }
    }

    private static BodyFraming ToClientFraming(BodyFraming upstream, HttpMethod method, long contentLength) => upstream switch
    {
        BodyFraming.ContentLength => BodyFraming.ContentLength,
        BodyFraming.Chunked or BodyFraming.CloseDelimited => BodyFraming.Stream,
        // A HEAD answer describes the body it would have had: keep its Content-Length.
        _ when method == HttpMethod.Head && contentLength >= 0 => BodyFraming.ContentLength,
        _ => BodyFraming.None,
    };

    private async Task TunnelAsync(HttpExchange exchange, ConnectionContext upstreamConnection, Task<ForwarderError>? bodyPump)
    {
        // Keep Connection/Upgrade on a 101: they are what the switch is about.
        await exchange.StartResponseAsync(BodyFraming.None, 0, exchange.Aborted).ConfigureAwait(false);
        var client = exchange.DetachForTunnel();
        await client.Output.FlushAsync(exchange.Aborted).ConfigureAwait(false);
        if (bodyPump is not null)
        {
            await bodyPump.ConfigureAwait(false);
        }
        var upstream = upstreamConnection.Transport;
        var up = CopyAndCompleteAsync(client.Input, upstream.Output);
        var down = CopyAndCompleteAsync(upstream.Input, client.Output);
        await Task.WhenAny(up, down).ConfigureAwait(false);
        // One side ended: give the other a moment to drain, then tear both down.
        var both = Task.WhenAll(up, down);
        if (await Task.WhenAny(both, Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false) != both)
        {
            upstreamConnection.Abort();
            exchange.Connection.Abort();
        }
    }

    private static async Task CopyAndCompleteAsync(PipeReader from, PipeWriter to)
    {
        try
        {
            await from.CopyToAsync(to).ConfigureAwait(false);
            await to.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            await to.CompleteAsync(e).ConfigureAwait(false);
        }
        await from.CompleteAsync().ConfigureAwait(false);
    }

    /// <summary>RFC 9110 §6.5.1: framing, routing and authentication fields must not arrive as trailers.</summary>
    private static void StripForbiddenTrailers(HttpHead trailers)
    {
        for (int i = trailers.HeaderCount - 1; i >= 0; i--)
        {
            var id = trailers.Headers[i].Id;
            if (id is KnownHeader.ContentLength or KnownHeader.TransferEncoding or KnownHeader.Host or KnownHeader.Connection
                or KnownHeader.Trailer or KnownHeader.TE or KnownHeader.Authorization or KnownHeader.ContentType
                or KnownHeader.ContentEncoding or KnownHeader.Upgrade or KnownHeader.KeepAlive)
            {
                trailers.RemoveHeaderAt(i);
            }
        }
    }
}

/// <summary>Told once per forwarded exchange how it ended (metrics, access log, destination state).</summary>
public interface IForwarderObserver
{
    void OnForwarded(HttpExchange exchange, RouteModel route, DestinationModel destination, ForwarderError error, long upstreamTicks);

    /// <summary>A try failed with <paramref name="reason"/> and will be retried.</summary>
    void OnRetry(RouteModel route, DestinationModel failed, ForwarderError reason);
}

/// <summary>
/// The relay's per-connection state: the relay loop and the hand-off with the connection's exchange
/// loop (two reusable value-task sources, so handing over an exchange allocates nothing), the upstream
/// timer (also fired when the client goes away, so an abandoned exchange stops waiting on its
/// upstream), the request-body pump's stop switch, one chunked decoder and one trailer head.
/// </summary>
internal sealed class ForwarderContext : IValueTaskSource, IValueTaskSource<bool>, IDisposable, IIdleAware
{
    private static readonly Action<object?> s_cancel = static state => ((CoarseTimeout)state!).Cancel();

    private readonly HttpForwarder _forwarder;
    private ManualResetValueTaskSourceCore<bool> _next;     // an exchange to forward (true) or the end (false)
    private ManualResetValueTaskSourceCore<bool> _finished; // the exchange handed over last was forwarded
    private Task? _loop;
    private CancellationTokenRegistration _clientGone;
    private CancellationToken _clientGoneToken; // HTTP/1.1: the connection's token, whose close OnConnectionClosed reports
    private object? _watchedBy; // HTTP/1.1: the exchange (connection) whose close cancels Timeout; null once taken

    public readonly CoarseTimeout Timeout = new(); // re-armed three times per request: no runtime timer per arm
    public CancellationTokenSource PumpCancel = new();
    public ChunkedDecoder Chunked;
    public readonly ResponseHead Trailers = new();
    /// <summary>The field list of a request to an HTTP/2 upstream (pseudo-headers first), rebuilt per exchange.</summary>
    public readonly ResponseHead UpstreamHead = new();
    public TimeSpan RouteTimeout;
    public long UpstreamTicks;

    public HttpExchange? Exchange;
    public RouteModel? Route;
    public DestinationModel? Destination;
    public IForwarderObserver? Observer;

    public ForwarderContext(HttpForwarder forwarder) => _forwarder = forwarder;

    /// <summary>Hands an exchange to the relay loop; the loop runs on this thread until it first waits.</summary>
    public ValueTask Start(HttpExchange exchange, RouteModel route, DestinationModel destination, IForwarderObserver observer)
    {
        Exchange = exchange;
        Route = route;
        Destination = destination;
        Observer = observer;
        var finished = new ValueTask(this, _finished.Version);
        _next.SetResult(true);
        _loop ??= _forwarder.RunLoopAsync(this);
        return finished;
    }

    public ValueTask<bool> WaitForExchangeAsync() => new(this, _next.Version);

    public void Finish(Exception? failure)
    {
        Exchange = null;
        Route = null;
        Destination = null;
        if (failure is null)
        {
            _finished.SetResult(true);
        }
        else
        {
            _finished.SetException(failure);
        }
    }

    public void Begin(TimeSpan routeTimeout, CancellationToken clientAborted, bool perConnection)
    {
        RouteTimeout = routeTimeout;
        UpstreamTicks = 0;
        Coding = ContentCoding.None;
        Chunked.Reset();
        Trailers.Reset();
        Timeout.CancelAfter(routeTimeout);
        WatchClient(clientAborted, perConnection);
    }

    /// <summary>
    /// The client going away cancels <see cref="Timeout"/>. An HTTP/1.1 exchange's token is its connection's, and the
    /// connection registers on it once and calls <see cref="OnConnectionClosed"/>: here the context only notes which
    /// exchange it serves, and a cancel that came between two exchanges, absorbed by <see cref="CoarseTimeout.Reset"/>,
    /// is caught by the check here. Any other token (an HTTP/2 stream's source is reset for the next stream, which
    /// drops its registrations) is registered per exchange, as before.
    /// </summary>
    private void WatchClient(CancellationToken clientAborted, bool perConnection)
    {
        if (perConnection && Exchange is { } exchange)
        {
            // The HTTP/1.1 connection's own registration calls OnConnectionClosed: no registration here at all (a
            // register and an unregister per request were ~1% of the proxy's CPU once contexts moved between
            // connections). A close before this point is caught by the check.
            _clientGoneToken = clientAborted;
            Volatile.Write(ref _watchedBy, exchange);
            if (clientAborted.IsCancellationRequested)
            {
                Timeout.Cancel();
            }
            return;
        }
        _clientGone.Dispose();
        _clientGoneToken = default;
        _clientGone = clientAborted.UnsafeRegister(s_cancel, Timeout); // runs at once if already cancelled
    }

    private void EndWatchPerExchange()
    {
        if (_clientGoneToken == default)
        {
            _clientGone.Dispose();
            _clientGone = default;
        }
    }

    /// <summary>
    /// An HTTP/1.1 client connection closed: cancels <see cref="Timeout"/> if this context still serves it. The one
    /// compare-and-swap on <see cref="_watchedBy"/> decides between this and <see cref="OnIdle"/> handing the context on.
    /// </summary>
    public void OnConnectionClosed(HttpExchange exchange)
    {
        if (Interlocked.CompareExchange(ref _watchedBy, null, exchange) == exchange)
        {
            Timeout.Cancel();
        }
    }

    /// <summary>The HTTP/2 upstream relay loop, made on this connection's first exchange to an http2 cluster.</summary>
    public Http2RelayLoop? Http2;

    public int RetriesInFlight;
    public TraceContext Trace;

    /// <summary>Created on the first compressed response of the connection, reused after (<see cref="ResponseEncoder.Reset"/> at each end).</summary>
    public ResponseEncoder? Encoder;

    /// <summary>The coding the last response was sent with (metrics read it after the exchange).</summary>
    public ContentCoding Coding;

    public void End()
    {
        Encoder?.Reset();
        EndWatchPerExchange();
        Timeout.Reset();
        PumpCancel = Reuse(PumpCancel);
    }

    /// <summary>A fresh timer for the next try (the last one may have fired).</summary>
    public void RestartTimer(TimeSpan timeout, CancellationToken clientAborted, bool perConnection)
    {
        EndWatchPerExchange();
        Timeout.Reset();
        Timeout.CancelAfter(timeout);
        WatchClient(clientAborted, perConnection);
    }

    public void EndRetries(ClusterState cluster)
    {
        for (; RetriesInFlight > 0; RetriesInFlight--)
        {
            cluster.EndRetry();
        }
    }

    private static CancellationTokenSource Reuse(CancellationTokenSource source)
    {
        if (source.TryReset())
        {
            return source;
        }
        source.Dispose();
        return new CancellationTokenSource();
    }

    /// <summary>
    /// Between exchanges (keep-alive idle): the heads give their arrays back and the whole context (its relay
    /// loop, timers, heads) goes back to the forwarder's pool for whichever connection forwards next, so an
    /// idle connection does not hold one. Only a context with nothing in flight is offered (the relay loop has
    /// finished its exchange: <see cref="Finish"/> cleared <see cref="Exchange"/>).
    /// </summary>
    public bool OnIdle()
    {
        Trailers.ReleaseMemory();
        UpstreamHead.ReleaseMemory();
        if (Exchange is not null || _loop is null)
        {
            return false;
        }
        // The connection's client-gone watch must not follow the context to another connection: its close would
        // cancel that connection's timer ("upstream did not answer in time" at once). Taking _watchedBy back ends the
        // watch; a close callback that took it first (this connection is closing) keeps the context here.
        var watchedBy = Volatile.Read(ref _watchedBy);
        if ((watchedBy is not null && Interlocked.CompareExchange(ref _watchedBy, null, watchedBy) != watchedBy) ||
            _clientGoneToken.IsCancellationRequested)
        {
            // The close callback took it first (or the connection is closing): it cancels this context's timer now.
            return false;
        }
        _clientGoneToken = default;
        return _forwarder.ReturnContext(this);
    }

    /// <summary>The connection ended: the relay loop returns.</summary>
    public void Dispose()
    {
        Http2?.Stop();
        _clientGone.Unregister(); // not Dispose: that would wait for a cancel running on another thread
        Volatile.Write(ref _watchedBy, null);
        if (Exchange is null)
        {
            // Idle: nothing waits on the timer. (Mid-exchange it stays swept until the relay lets go of it.)
            Timeout.Dispose();
            if (_loop is not null)
            {
                _next.SetResult(false);
            }
        }
    }

    // The exchange loop awaits _finished; the relay loop awaits _next. Each source is reset as its
    // result is taken, ready for the next hand-over.
    void IValueTaskSource.GetResult(short token)
    {
        try
        {
            _finished.GetResult(token);
        }
        finally
        {
            _finished.Reset();
        }
    }

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _finished.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _finished.OnCompleted(continuation, state, token, flags);

    bool IValueTaskSource<bool>.GetResult(short token)
    {
        try
        {
            return _next.GetResult(token);
        }
        finally
        {
            _next.Reset();
        }
    }

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _next.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _next.OnCompleted(continuation, state, token, flags);
}
