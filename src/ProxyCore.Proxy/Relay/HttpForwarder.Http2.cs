using System.Diagnostics;
using System.IO.Pipelines;
using System.Threading.Tasks.Sources;
using ProxyCore.Http;
using ProxyCore.Http.Http2;
using ProxyCore.Http.Http2.Client;
using ProxyCore.Proxy.Stages;
using ProxyCore.Proxy.Tracing;
using ProxyCore.Routing.Model;
using ProxyCore.Transport;

namespace ProxyCore.Proxy.Relay;

// The relay to clusters with "protocol": "http2": one stream on a multiplexed upstream connection per
// exchange, whichever protocol the client spoke (h1→h2, h2→h2). Same lifecycle and error values as the
// HTTP/1.1 path; the steps differ only in how the head and body travel:
//   1. Rent a stream (a connection with a free slot, or a new one: a connect failure is a 502/504).
//   2. Build the head: pseudo-headers from the RequestHead, hop-by-hop and connection-specific fields
//      dropped (RFC 9113 §8.2.2), `te: trailers` kept, X-Forwarded-*/Via/traceparent added; HPACK-encoded
//      by the connection under its write lock.
//   3. The request body flows as DATA within the upstream's windows; request trailers as a last HEADERS.
//   4. Wait for the final head within the route's timeout (GOAWAY/REFUSED_STREAM before it: sent again).
//   5-6. Relay head and DATA; each consumed read gives window back (backpressure end to end).
//   7. Response trailers (gRPC's grpc-status) go to the client where its protocol can carry them.
public sealed partial class HttpForwarder
{
    /// <summary>
    /// The HTTP/2 relay loop of one client connection: forwards each exchange handed to it by
    /// <see cref="Http2RelayLoop.Run"/>. One long-lived async method, like <see cref="RunLoopAsync"/>,
    /// so that an exchange costs no state-machine box (measured: a per-exchange async method, even with
    /// the pooling builder, allocated ~400 B/request over 32 connections as its per-thread cache missed).
    /// </summary>
    internal async Task Http2LoopAsync(Http2RelayLoop relay)
    {
        while (await relay.WaitAsync().ConfigureAwait(false))
        {
            var context = relay.Context;
            var exchange = relay.Exchange!;
            var route = relay.Route!;
            var forwarded = ForwarderError.None;
            Exception? failure = null;
            try
            {
                var request = exchange.Request;
                var response = exchange.Response;
                var destination = context.Destination!;
                var retry = route.Retry;
                long maxBody = _options.MaxRequestBodyBytes;
                bool repeatable = HttpMethods.IsIdempotent(request.Method) && !exchange.HasRequestBody;
                int retries = 0;
                for (int attempt = 0; ; attempt++)
                {
                    var cluster = destination.Cluster;
                    if (retries > 0)
                    {
                        context.RestartTimer(retry!.PerTryTimeout ?? route.Timeout, exchange.Aborted, exchange is ProxyCore.Http.Http1.Http1Connection);
                    }
                    else if (retry?.PerTryTimeout is { } perTry)
                    {
                        context.Timeout.CancelAfter(perTry);
                    }

                    // Step 1: a stream.
                    Http2ClientStream stream;
                    try
                    {
                        stream = await _http2.RentAsync(destination.EndPoint, cluster.Http2Options, cluster.PoolOptions, response, context.Trailers, context.Timeout.Token).ConfigureAwait(false);
                    }
                    catch (UpstreamConnectException e)
                    {
                        var connectError = ForwarderErrors.FromConnectFailure(e.Reason);
                        if (ForwarderErrors.MayRetryConnect(connectError) &&
                            retry is { OnConnectFailure: true } && await PrepareRetryAsync(context, route, destination, connectError, ++retries).ConfigureAwait(false) is { } next)
                        {
                            destination = context.Destination = next;
                            continue;
                        }
                        forwarded = connectError;
                        goto Done;
                    }
                    catch (OperationCanceledException)
                    {
                        forwarded = exchange.Aborted.IsCancellationRequested ? ForwarderError.ClientGone : ForwarderError.ConnectTimeout;
                        goto Done;
                    }

                    var connection = stream.Connection;
                    var releaseCode = Http2ErrorCode.CANCEL;
                    Task<ForwarderError>? bodyPump = null;
                    try
                    {
                        // Step 2: the head (END_STREAM on it when there is no body to send).
                        bool hasBody = exchange.HasRequestBody && !exchange.RequestBodyCompleted;
                        BuildHttp2RequestHead(context.UpstreamHead, exchange, route, destination, context);
                        bool sent;
                        try
                        {
                            sent = await connection.SendHeadersAsync(stream, context.UpstreamHead, endStream: !hasBody, exchange.Aborted).ConfigureAwait(false);
                        }
                        catch (IOException)
                        {
                            // The head may have left before the connection broke: not known to be unsent, so no silent resend.
                            forwarded = ForwarderError.UpstreamWrite;
                            goto Done;
                        }
                        if (!sent)
                        {
                            if (attempt < 3)
                            {
                                continue; // The connection went away (GOAWAY, closed) before the stream opened: nothing was sent.
                            }
                            forwarded = ForwarderError.UpstreamWrite;
                            goto Done;
                        }

                        // Step 3: the body flows while we wait for the answer.
                        if (hasBody)
                        {
                            bodyPump = PumpRequestBodyHttp2Async(exchange, stream, maxBody, context);
                        }

                        // Step 4: the final head, within the route's timeout.
                        long upstreamStart = Stopwatch.GetTimestamp();
                        var outcome = await stream.WaitForHeadAsync(context.Timeout.Token).ConfigureAwait(false);
                        context.UpstreamTicks = Stopwatch.GetTimestamp() - upstreamStart;
                        if (outcome != Http2StreamOutcome.Head)
                        {
                            var headError = outcome switch
                            {
                                Http2StreamOutcome.Canceled => exchange.Aborted.IsCancellationRequested ? ForwarderError.ClientGone : ForwarderError.UpstreamTimeout,
                                Http2StreamOutcome.ProtocolError => ForwarderError.UpstreamProtocol,
                                _ => ForwarderError.UpstreamClosed,
                            };
                            if (outcome == Http2StreamOutcome.Refused && bodyPump is null && attempt < 3)
                            {
                                continue; // GOAWAY above our stream, or REFUSED_STREAM: the upstream never processed it.
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
                                context.PumpCancel.Cancel();
                                var bodyError = await bodyPump.ConfigureAwait(false);
                                if (bodyError is ForwarderError.RequestBody or ForwarderError.RequestBodyTooLarge)
                                {
                                    forwarded = bodyError;
                                    goto Done;
                                }
                            }
                            forwarded = headError;
                            goto Done;
                        }
                        if (repeatable && retry is not null && retry.OnStatus(response.StatusCode) &&
                            await PrepareRetryAsync(context, route, destination, ForwarderError.UpstreamStatus, ++retries).ConfigureAwait(false) is { } retryAt)
                        {
                            destination = context.Destination = retryAt;
                            continue;
                        }
                        context.Timeout.CancelAfter(context.RouteTimeout); // from here on: the longest silence between body reads

                        // Step 5: the head to the client.
                        var framing = response.Framing;
                        long contentLength = response.ContentLength;
                        if (request.Method == HttpMethod.Head || response.StatusCode is 204 or 304)
                        {
                            // RFC 9110 §6.4.1: no content, whatever content-length says (it describes the selected representation).
                            framing = BodyFraming.None;
                        }
                        PrepareResponseHead(response, route);
                        var clientFraming = framing switch
                        {
                            BodyFraming.ContentLength => BodyFraming.ContentLength,
                            BodyFraming.Stream => BodyFraming.Stream,
                            // A HEAD answer describes the body it would have had: keep its content-length.
                            _ when request.Method == HttpMethod.Head && contentLength >= 0 => BodyFraming.ContentLength,
                            _ => BodyFraming.None,
                        };
                        await exchange.StartResponseAsync(clientFraming, contentLength, exchange.Aborted).ConfigureAwait(false);

                        // Step 6: DATA to the client, one flush per read; what was consumed is given back as window.
                        var copyError = ForwarderError.None;
                        var body = stream.Body;
                        long received = 0;
                        while (true)
                        {
                            ReadResult result;
                            try
                            {
                                result = await body.ReadAsync(context.Timeout.Token).ConfigureAwait(false);
                            }
                            catch (Exception)
                            {
                                copyError = exchange.Aborted.IsCancellationRequested ? ForwarderError.ClientGone : ForwarderError.ResponseBody;
                                break;
                            }
                            context.Timeout.CancelAfter(context.RouteTimeout);
                            var buffer = result.Buffer;
                            int length = (int)buffer.Length;
                            if (length > 0)
                            {
                                received += length;
                                if ((framing == BodyFraming.ContentLength && received > contentLength) || framing == BodyFraming.None)
                                {
                                    body.AdvanceTo(buffer.End);
                                    copyError = ForwarderError.ResponseBody; // §8.1.1: more DATA than content-length
                                    break;
                                }
                                await exchange.WriteResponseBodyAsync(buffer, flush: true, exchange.Aborted).ConfigureAwait(false);
                            }
                            body.AdvanceTo(buffer.End);
                            await connection.ConsumedAsync(stream, length).ConfigureAwait(false);
                            if (result.IsCompleted)
                            {
                                if (framing == BodyFraming.ContentLength && received != contentLength)
                                {
                                    copyError = ForwarderError.ResponseBody;
                                }
                                break;
                            }
                        }
                        if (copyError != ForwarderError.None)
                        {
                            exchange.Abort(ForwarderErrors.Reason(copyError));
                            forwarded = copyError;
                            goto Done;
                        }

                        // Step 7: the request side, then the trailers.
                        if (bodyPump is not null)
                        {
                            if (!exchange.RequestBodyCompleted)
                            {
                                // The upstream answered before it had the whole body: stop relaying it (§8.1 lets us
                                // reset the stream with NO_ERROR); its rest cannot be told from a next request, so the
                                // client connection closes after this response (HTTP/1.1).
                                context.PumpCancel.Cancel();
                                exchange.CloseAfterResponse();
                            }
                            await bodyPump.ConfigureAwait(false);
                        }
                        releaseCode = Http2ErrorCode.NO_ERROR;
                        if (context.Trailers.HeaderCount > 0)
                        {
                            StripForbiddenTrailers(context.Trailers);
                        }
                        await exchange.CompleteResponseAsync(context.Trailers.HeaderCount > 0 ? context.Trailers : null, exchange.Aborted).ConfigureAwait(false);
                        forwarded = ForwarderError.None;
                        goto Done;
                    }
                    catch (Exception) when (exchange.Aborted.IsCancellationRequested)
                    {
                        forwarded = ForwarderError.ClientGone;
                        goto Done;
                    }
                    catch (IOException) when (exchange.ResponseStarted)
                    {
                        exchange.Abort("client-write-failed");
                        forwarded = ForwarderError.ClientGone;
                        goto Done;
                    }
                    finally
                    {
                        if (bodyPump is { IsCompleted: false })
                        {
                            // The pump must be done with the stream before it goes back to the pool for another exchange.
                            context.PumpCancel.Cancel();
                            await bodyPump.ConfigureAwait(false);
                        }
                        connection.Release(stream, releaseCode);
                    }
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        Done:
            relay.Complete(forwarded, failure);
        }
    }

    /// <summary>Step 3 over HTTP/2: the client's body as DATA frames, its trailers as a closing HEADERS.</summary>
    private static async Task<ForwarderError> PumpRequestBodyHttp2Async(HttpExchange exchange, Http2ClientStream stream, long maxBody, ForwarderContext context)
    {
        var error = await PumpRequestBodyHttp2CoreAsync(exchange, stream, maxBody, context.PumpCancel.Token).ConfigureAwait(false);
        if (error is ForwarderError.RequestBody or ForwarderError.RequestBodyTooLarge && !context.PumpCancel.IsCancellationRequested)
        {
            // The client's body cannot be completed (cut, malformed, over the limit): stop waiting for an answer
            // that will not come; the relay then reports the body's error (400/413) or aborts. An upstream-side
            // failure (UpstreamWrite) is not signalled here: the stream's reset or end already reached the relay,
            // and an upstream that answered early and reset the stream (§8.1) must not cut that answer.
            context.Timeout.Cancel();
        }
        return error;
    }

    private static async Task<ForwarderError> PumpRequestBodyHttp2CoreAsync(HttpExchange exchange, Http2ClientStream stream, long maxBody, CancellationToken cancellationToken)
    {
        var connection = stream.Connection;
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
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return ForwarderError.None; // we stopped it: the upstream already answered
                }
                catch (Exception)
                {
                    return ForwarderError.RequestBody;
                }
                var data = read.Data;
                total += data.Length;
                if (maxBody > 0 && total > maxBody)
                {
                    exchange.AdvanceRequestBody();
                    return ForwarderError.RequestBodyTooLarge;
                }
                bool withTrailers = read.IsCompleted && exchange.HasRequestTrailers;
                await connection.SendDataAsync(stream, data, endStream: read.IsCompleted && !withTrailers, cancellationToken).ConfigureAwait(false);
                exchange.AdvanceRequestBody();
                if (read.IsCompleted)
                {
                    if (withTrailers)
                    {
                        var trailers = exchange.RequestTrailers;
                        StripForbiddenTrailers(trailers);
                        await connection.SendTrailersAsync(stream, trailers, cancellationToken).ConfigureAwait(false);
                    }
                    return ForwarderError.None;
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return ForwarderError.None;
        }
        catch (Exception)
        {
            return ForwarderError.UpstreamWrite;
        }
    }

    /// <summary>
    /// Step 2 over HTTP/2: the field list for the upstream, pseudo-headers first (RFC 9113 §8.3.1), in
    /// <paramref name="head"/>'s arena (reused per connection: no allocation).
    /// </summary>
    private void BuildHttp2RequestHead(HttpHead head, HttpExchange exchange, RouteModel route, DestinationModel destination, ForwarderContext context)
    {
        var request = exchange.Request;
        head.Reset();
        head.AddHeader(":method"u8, request.MethodSpan);
        head.AddHeader(":scheme"u8, destination.Cluster.PoolOptions.Tls is null ? "http"u8 : "https"u8);
        // Precedence as for HTTP/1.1's Host: the route's transforms.host, the client's authority (preserveHost), the destination's.
        head.AddHeader(":authority"u8, route.Policies is RoutePolicies { Transforms.Host: { } host } ? host
            : !_options.PreserveHost || request.AuthoritySpan.IsEmpty ? destination.HostHeaderBytes : request.AuthoritySpan);
        var pathName = head.Append(":path"u8);
        int pathStart = head.ArenaUsed;
        if (request.TargetForm == RequestTargetForm.Asterisk)
        {
            head.Append("*"u8);
        }
        else
        {
            head.Append(destination.PathPrefixBytes);
            head.Append(request.PathSpan);
            head.Append(request.QuerySpan);
        }
        head.AddHeader(pathName, new ByteRange(pathStart, head.ArenaUsed - pathStart), KnownHeader.Other);

        var scan = new ForwardedFieldScan(request);
        var headers = request.Headers;
        for (int i = 0; i < headers.Length; i++)
        {
            if (PassesThrough(request, i, ref scan, context))
            {
                head.AddHeader(request.Get(headers[i].Name), request.Get(headers[i].Value));
            }
        }
        if (scan.TeTrailers)
        {
            head.AddHeader("te"u8, "trailers"u8);
        }
        if (request.Framing == BodyFraming.ContentLength)
        {
            Span<byte> digits = stackalloc byte[20];
            request.ContentLength.TryFormat(digits, out int n);
            head.AddHeader("content-length"u8, digits[..n]);
        }

        var sink = new ArenaSink(head);
        if (_options.XForwarded)
        {
            var xffName = head.Append("x-forwarded-for"u8);
            int start = head.ArenaUsed;
            WriteForwardedForValue(ref sink, exchange, scan.XForwardedFor);
            head.AddHeader(xffName, new ByteRange(start, head.ArenaUsed - start), KnownHeader.XForwardedFor);
            head.AddHeader("x-forwarded-proto"u8, exchange.IsHttps ? "https"u8 : "http"u8);
            if (!request.AuthoritySpan.IsEmpty)
            {
                head.AddHeader("x-forwarded-host"u8, request.AuthoritySpan);
            }
        }
        if (_options.Forwarded)
        {
            var forwardedName = head.Append("forwarded"u8);
            int start = head.ArenaUsed;
            WriteForwardedValue(ref sink, exchange, scan.Forwarded);
            head.AddHeader(forwardedName, new ByteRange(start, head.ArenaUsed - start), KnownHeader.Forwarded);
        }
        if (_options.Via)
        {
            var viaName = head.Append("via"u8);
            int start = head.ArenaUsed;
            WriteViaValue(ref sink, request, scan.Via);
            head.AddHeader(viaName, new ByteRange(start, head.ArenaUsed - start), KnownHeader.Via);
        }
        if (context.Trace.Active)
        {
            Span<byte> traceParent = stackalloc byte[TraceContext.HeaderLength];
            context.Trace.Format(traceParent);
            head.AddHeader("traceparent"u8, traceParent);
        }
    }
}

/// <summary>
/// Hands exchanges from <see cref="HttpForwarder.RunLoopAsync"/> to the connection's HTTP/2 relay loop
/// and their outcome back, through two reusable value-task sources (no allocation per exchange).
/// </summary>
internal sealed class Http2RelayLoop : IValueTaskSource<ForwarderError>, IValueTaskSource<bool>
{
    private readonly HttpForwarder _forwarder;
    private ManualResetValueTaskSourceCore<bool> _next;
    private ManualResetValueTaskSourceCore<ForwarderError> _done;
    private Task? _loop;

    public Http2RelayLoop(HttpForwarder forwarder, ForwarderContext context)
    {
        _forwarder = forwarder;
        Context = context;
    }

    public ForwarderContext Context { get; }

    public HttpExchange? Exchange;
    public RouteModel? Route;

    public ValueTask<ForwarderError> Run(HttpExchange exchange, RouteModel route)
    {
        Exchange = exchange;
        Route = route;
        var done = new ValueTask<ForwarderError>(this, _done.Version);
        _next.SetResult(true);
        _loop ??= _forwarder.Http2LoopAsync(this);
        return done;
    }

    public ValueTask<bool> WaitAsync() => new(this, _next.Version);

    public void Complete(ForwarderError result, Exception? failure)
    {
        Exchange = null;
        Route = null;
        if (failure is null)
        {
            _done.SetResult(result);
        }
        else
        {
            _done.SetException(failure);
        }
    }

    /// <summary>The client connection ended: the loop returns.</summary>
    public void Stop()
    {
        if (_loop is not null && Exchange is null)
        {
            _next.SetResult(false);
        }
    }

    ForwarderError IValueTaskSource<ForwarderError>.GetResult(short token)
    {
        try
        {
            return _done.GetResult(token);
        }
        finally
        {
            _done.Reset();
        }
    }

    ValueTaskSourceStatus IValueTaskSource<ForwarderError>.GetStatus(short token) => _done.GetStatus(token);

    void IValueTaskSource<ForwarderError>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _done.OnCompleted(continuation, state, token, flags);

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
