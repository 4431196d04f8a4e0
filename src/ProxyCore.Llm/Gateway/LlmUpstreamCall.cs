using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using ProxyCore.Http;
using ProxyCore.Http.Http1;
using ProxyCore.Llm.Safety;
using ProxyCore.Llm.Sse;
using ProxyCore.Llm.Translation;
using ProxyCore.Proxy.Relay;
using ProxyCore.Proxy.Stages;
using ProxyCore.Routing.Model;
using ProxyCore.Transport;

namespace ProxyCore.Llm.Gateway;

/// <summary>
/// One LLM request's way to its providers: each <see cref="TryAsync"/> is one provider's try over a
/// pooled HTTP/1.1 upstream connection. A try that fails before anything reached the client (connect
/// failure, timeout, 429, 5xx) leaves <see cref="Finished"/> false so the next provider can be tried;
/// once the answer's head went to the client the exchange is this try's to end, success or not.
/// The answer is relayed as it arrives: SSE events are forwarded one by one as they complete (the
/// meter sees each), JSON answers pass through with a bounded copy kept to read their usage.
/// </summary>
internal sealed class LlmUpstreamCall
{
    /// <summary>Largest non-streamed answer whose usage is read (a copy is kept while it passes); larger ones pass unmetered.</summary>
    private const int MaxUsageCopyBytes = 1024 * 1024;

    private readonly LlmStage _stage;
    private readonly HttpExchange _exchange;
    private readonly RouteModel _route;
    private readonly IExchangeRecorder _recorder;
    private readonly LlmApi _api;

    public LlmUpstreamCall(LlmStage stage, HttpExchange exchange, RouteModel route, IExchangeRecorder recorder, LlmApi api)
    {
        _stage = stage;
        _exchange = exchange;
        _route = route;
        _recorder = recorder;
        _api = api;
    }

    public bool Finished { get; private set; }
    public ForwarderError LastError { get; private set; } = ForwarderError.NoDestination;
    public DestinationModel? Destination { get; private set; }
    public long UpstreamTicks { get; private set; }
    public long PromptTokens { get; private set; } = -1;
    public long CompletionTokens { get; private set; } = -1;
    public long CachedTokens { get; private set; } = -1;
    public string? AnsweredModel { get; private set; }
    /// <summary>"completed", "error" (the provider answered with an error), "cut" (the stream broke) or "client-gone".</summary>
    public string Outcome { get; private set; } = "completed";

    /// <summary>
    /// Runs once, just before the end of the answer goes out, so a client that has the whole answer
    /// also finds it counted, its key's budget reconciled and the answer cached; <see cref="SettleNow"/>
    /// runs it after the call when the answer never got that far (the client left mid-answer).
    /// </summary>
    public Action? Settle { get; set; }

    public void SettleNow()
    {
        var settle = Settle;
        Settle = null;
        settle?.Invoke();
    }

    /// <summary>The <c>proxycore-cache</c> header value to add to the relayed answer; null: none (route without cache).</summary>
    public byte[]? CacheHeader { get; set; }

    /// <summary>Largest answer to keep a copy of for the exact cache; 0: keep none.</summary>
    public int CaptureLimit { get; set; }

    /// <summary>After a try: the whole answer when it was a complete 2xx within <see cref="CaptureLimit"/> (JSON, or the SSE events as the provider sent them); else null.</summary>
    public ArrayBufferWriter<byte>? Captured { get; private set; }

    /// <summary>True when <see cref="Captured"/> holds SSE events rather than a JSON body.</summary>
    public bool CapturedStream { get; private set; }

    /// <summary>
    /// Set per try: the provider speaks the other API. The path's API suffix is swapped, and the answer
    /// is translated back (JSON whole, streams event by event); metering reads the provider's own stream.
    /// </summary>
    public bool Translating { get; set; }

    /// <summary>For a translated Chat stream: the client asked for the usage chunk.</summary>
    public bool ClientIncludeUsage { get; set; }

    /// <summary>
    /// The route's output deny patterns; null: answers pass unchecked. Streams are checked delta by
    /// delta as they pass (a match stops the stream with an error event); JSON answers are held whole
    /// (within the usage-copy bound) and checked before their first byte is sent.
    /// </summary>
    public DenyPatterns? DenyOutput { get; set; }

    /// <summary>The carry-over of the stream check (<see cref="DenyStreamMatcher.WindowChars"/>).</summary>
    public int DenyWindowChars { get; set; } = DenyStreamMatcher.DefaultWindowChars;

    /// <summary>
    /// The live share of this stream for identical concurrent stream misses (null: none). Gets every
    /// byte the client gets, as it is sent; started only for a successful SSE answer, so followers of a
    /// try that fails before answering go upstream themselves.
    /// </summary>
    public Cache.StreamBroadcast? Broadcast { get; set; }

    private DenyStreamMatcher? _deny;
    private IStreamTranslator? _streamTranslator;
    private ArrayBufferWriter<byte>? _translated;
    private ArrayBufferWriter<byte>? _streamCapture;
    private bool _captureOverflow;

    public async ValueTask TryAsync(LlmProvider provider, byte[] body, int length, bool hasBody, bool stripUsageChunk, bool last)
    {
        UpstreamTicks = 0;
        var cluster = provider.Cluster;
        var destination = cluster.LoadBalancer.Pick(cluster.Destinations);
        if (destination is null)
        {
            LastError = ForwarderError.NoDestination;
            return;
        }
        if (!cluster.State.TryEnter(cluster.MaxConcurrentRequests))
        {
            LastError = ForwarderError.CircuitOpen;
            return;
        }
        destination.State.BeginRequest();
        Destination = destination;
        var exchange = _exchange;
        var pool = _stage.Pool;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(exchange.Aborted);
        timeout.CancelAfter(_route.Timeout);
        var error = ForwarderError.None;
        int status = 0;
        try
        {
            for (int attempt = 0; ; attempt++)
            {
                // Step 5a: lease.
                UpstreamLease lease;
                try
                {
                    lease = await pool.RentAsync(destination.EndPoint, cluster.PoolOptions, timeout.Token).ConfigureAwait(false);
                }
                catch (UpstreamConnectException e)
                {
                    error = e.Reason switch
                    {
                        UpstreamConnectFailure.Timeout => ForwarderError.ConnectTimeout,
                        UpstreamConnectFailure.PendingFull => ForwarderError.PendingFull,
                        UpstreamConnectFailure.PendingTimeout => ForwarderError.PendingTimeout,
                        _ => ForwarderError.ConnectFailed,
                    };
                    return;
                }
                catch (OperationCanceledException)
                {
                    error = exchange.Aborted.IsCancellationRequested ? ForwarderError.ClientGone : ForwarderError.ConnectTimeout;
                    return;
                }
                bool reusable = false;
                try
                {
                    // Step 5b: head and body, one flush.
                    var upstream = lease.Connection.Transport;
                    WriteHead(upstream.Output, provider, destination, hasBody ? length : -1);
                    if (hasBody)
                    {
                        upstream.Output.Write(body.AsSpan(0, length));
                    }
                    var flush = await upstream.Output.FlushAsync(timeout.Token).ConfigureAwait(false);
                    if (flush.IsCompleted)
                    {
                        if (lease.IsReused && attempt < 2)
                        {
                            continue; // a keep-alive connection the upstream had closed: nothing was sent
                        }
                        error = ForwarderError.UpstreamWrite;
                        return;
                    }

                    // Step 5c: the answer's head, within the route's timeout.
                    long started = Stopwatch.GetTimestamp();
                    (error, bool received) = await ReadHeadAsync(upstream.Input, timeout).ConfigureAwait(false);
                    UpstreamTicks = Stopwatch.GetTimestamp() - started;
                    if (error == ForwarderError.UpstreamClosed && !received && lease.IsReused && attempt < 2)
                    {
                        continue; // stale keep-alive connection
                    }
                    if (error != ForwarderError.None)
                    {
                        return;
                    }
                    var response = exchange.Response;
                    status = response.StatusCode;
                    if (!last && (status == 429 || status >= 500))
                    {
                        // Before the first byte reached the client: the next provider may do better.
                        error = ForwarderError.UpstreamStatus;
                        return;
                    }

                    // Step 6: relay.
                    reusable = await RelayAsync(provider, upstream.Input, stripUsageChunk, timeout).ConfigureAwait(false);
                    Finished = true;
                    return;
                }
                catch (Exception) when (exchange.Aborted.IsCancellationRequested)
                {
                    error = ForwarderError.ClientGone;
                    Finished = exchange.ResponseStarted;
                    Outcome = "client-gone";
                    return;
                }
                catch (IOException) when (exchange.ResponseStarted)
                {
                    exchange.Abort("client-write-failed");
                    Finished = true;
                    Outcome = "client-gone";
                    return;
                }
                finally
                {
                    if (reusable)
                    {
                        pool.Return(lease);
                    }
                    else
                    {
                        pool.Discard(lease);
                    }
                }
            }
        }
        finally
        {
            if (!Finished)
            {
                LastError = error;
                exchange.Response.Reset();
            }
            _recorder.RecordTry(destination, error == ForwarderError.UpstreamStatus ? ForwarderError.None : error, status, UpstreamTicks);
        }
    }

    private void WriteHead(PipeWriter output, LlmProvider provider, DestinationModel destination, int contentLength)
    {
        var request = _exchange.Request;
        var writer = new HeadWriter(output);
        writer.Write(request.MethodSpan);
        writer.Write(" "u8);
        writer.Write(destination.PathPrefixBytes);
        if (Translating)
        {
            // The client's prefix stays; only the API's own suffix changes.
            var path = request.PathSpan;
            var from = _api switch { LlmApi.ChatCompletions => "/chat/completions"u8, LlmApi.Responses => "/responses"u8, _ => "/messages"u8 };
            writer.Write(path[..^from.Length]);
            writer.Write(LlmApis.TranslatedTo(_api) == LlmApi.AnthropicMessages ? "/messages"u8 : "/chat/completions"u8);
        }
        else
        {
            writer.Write(request.PathSpan);
        }
        writer.Write(request.QuerySpan);
        writer.Write(" HTTP/1.1\r\nhost: "u8);
        writer.Write(destination.HostHeaderBytes);
        writer.Write("\r\n"u8);
        bool anthropicVersion = false;
        bool contentType = false;
        var headers = request.Headers;
        for (int i = 0; i < headers.Length; i++)
        {
            var header = headers[i];
            var name = request.Get(header.Name);
            switch (header.Id)
            {
                case KnownHeader.Host or KnownHeader.ContentLength or KnownHeader.TransferEncoding or KnownHeader.Connection
                    or KnownHeader.KeepAlive or KnownHeader.ProxyConnection or KnownHeader.Trailer or KnownHeader.Upgrade
                    or KnownHeader.ProxyAuthenticate or KnownHeader.ProxyAuthorization or KnownHeader.Expect or KnownHeader.TE:
                    continue; // hop-by-hop, or framing written below
                case KnownHeader.Authorization:
                    continue; // the client's credential is for us, never for the provider
                case KnownHeader.AcceptEncoding:
                    continue; // the stage reads the answer: it must come unencoded
                case KnownHeader.ContentType:
                    contentType = true;
                    break;
            }
            if (System.Text.Ascii.EqualsIgnoreCase(name, "x-api-key"u8) || System.Text.Ascii.EqualsIgnoreCase(name, PromptTemplates.HeaderName))
            {
                continue; // the client's credential, and its template choice: both are for the gateway
            }
            if (System.Text.Ascii.EqualsIgnoreCase(name, "anthropic-version"u8))
            {
                if (!provider.Anthropic)
                {
                    continue;
                }
                anthropicVersion = true;
            }
            writer.WriteHeader(name, request.Get(header.Value));
        }
        if (provider.AuthName is not null)
        {
            writer.WriteHeader(provider.AuthName, provider.AuthValue!);
        }
        if (provider.Anthropic && !anthropicVersion)
        {
            writer.WriteHeader("anthropic-version"u8, provider.AnthropicVersion);
        }
        if (contentLength >= 0)
        {
            if (!contentType)
            {
                writer.Write("content-type: application/json\r\n"u8);
            }
            writer.Write("content-length: "u8);
            writer.WriteDecimal(contentLength);
            writer.Write("\r\n"u8);
        }
        writer.Write("via: 1.1 proxycore\r\n\r\n"u8);
        writer.Commit();
    }

    private async ValueTask<(ForwarderError Error, bool Received)> ReadHeadAsync(PipeReader input, CancellationTokenSource timeout)
    {
        var response = _exchange.Response;
        bool received = false;
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return (_exchange.Aborted.IsCancellationRequested ? ForwarderError.ClientGone : ForwarderError.UpstreamTimeout, received);
            }
            catch (Exception)
            {
                return (ForwarderError.UpstreamClosed, received);
            }
            var buffer = result.Buffer;
            received |= !buffer.IsEmpty;
            response.Reset();
            var status = Http1Parser.TryParseResponse(buffer, response, _exchange.Request.Method, _stage.Limits, out var consumed, out _);
            if (status == Http1ParseResult.Complete)
            {
                input.AdvanceTo(consumed);
                if (response.StatusCode is >= 100 and < 200)
                {
                    continue; // interim answers (100, 103) are not relayed on LLM routes
                }
                return (ForwarderError.None, received);
            }
            input.AdvanceTo(status == Http1ParseResult.Error || result.IsCompleted ? buffer.End : buffer.Start, buffer.End);
            if (status == Http1ParseResult.Error)
            {
                return (ForwarderError.UpstreamProtocol, received);
            }
            if (result.IsCompleted)
            {
                return (ForwarderError.UpstreamClosed, received);
            }
        }
    }

    /// <summary>Step 6: the answer to the client. True when the upstream connection may be reused.</summary>
    private async ValueTask<bool> RelayAsync(LlmProvider provider, PipeReader input, bool stripUsageChunk, CancellationTokenSource timeout)
    {
        var exchange = _exchange;
        var response = exchange.Response;
        var framing = response.Framing;
        long remaining = response.ContentLength;
        bool upstreamKeepAlive = response.KeepAlive;
        bool success = response.StatusCode is >= 200 and < 300;
        bool sse = response.TryGetValue(KnownHeader.ContentType, out var type) && type.StartsWith("text/event-stream"u8);
        for (int i = response.HeaderCount - 1; i >= 0; i--)
        {
            var id = response.Headers[i].Id;
            if (KnownHeaders.IsHopByHop(id) || id == KnownHeader.ContentLength)
            {
                response.RemoveHeaderAt(i);
            }
        }
        response.AddHeader("proxycore-provider"u8, provider.NameBytes);
        if (CacheHeader is not null)
        {
            response.AddHeader("proxycore-cache"u8, CacheHeader);
        }
        if (!success)
        {
            Outcome = "error";
        }
        bool translate = Translating && success;
        bool translateJson = translate && !sse;
        // A JSON answer that is translated or checked is sent once whole (its bytes may change or be withheld).
        bool checkJson = DenyOutput is not null && !sse && success && _api is not (LlmApi.Other or LlmApi.Embeddings);
        bool holdJson = translateJson || checkJson;
        var clientFraming = !sse && framing == BodyFraming.ContentLength ? BodyFraming.ContentLength
            : framing == BodyFraming.None ? BodyFraming.None : BodyFraming.Stream;
        if (sse && success)
        {
            Broadcast?.Start();
        }
        if (!holdJson)
        {
            // A held JSON answer starts once it is whole (translated: its length changes; checked: it may be refused).
            await exchange.StartResponseAsync(clientFraming, clientFraming == BodyFraming.ContentLength ? remaining : -1, exchange.Aborted).ConfigureAwait(false);
        }
        var providerApi = Translating ? LlmApis.TranslatedTo(_api) : _api;
        _streamTranslator = !(translate && sse) ? null : _api switch
        {
            LlmApi.ChatCompletions => new AnthropicToOpenAIStream(ClientIncludeUsage, DateTimeOffset.UtcNow.ToUnixTimeSeconds()),
            LlmApi.Responses => new AnthropicToResponsesStream(DateTimeOffset.UtcNow.ToUnixTimeSeconds()),
            _ => new OpenAIToAnthropicStream(),
        };
        _translated = _streamTranslator is not null ? new ArrayBufferWriter<byte>(1024) : null;

        var meter = sse && success && _api != LlmApi.Other ? new LlmStreamMeter(LlmApis.StreamFormat(providerApi)) : null;
        _deny = meter is not null && DenyOutput is not null ? new DenyStreamMatcher(DenyOutput, DenyWindowChars) : null;
        if (meter is not null)
        {
            meter.TextObserver = _deny; // the meter's one read of each event feeds the check
        }
        var events = sse ? new SseEventSplitter() : null;
        var copy = !sse && success && _api != LlmApi.Other ? new ArrayBufferWriter<byte>(4096) : null;
        int copyLimit = Math.Max(MaxUsageCopyBytes, CaptureLimit);
        _captureOverflow = false;
        Captured = null;
        _streamCapture = sse && success && CaptureLimit > 0 ? new ArrayBufferWriter<byte>(4096) : null;
        var chunked = new ChunkedDecoder();
        var trailers = new ResponseHead();
        bool bodyDone = framing == BodyFraming.None || (framing == BodyFraming.ContentLength && remaining == 0);
        bool cut = false;
        timeout.CancelAfter(_route.Timeout); // from here on: the longest silence between reads
        while (!bodyDone)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (Exception) when (!exchange.Aborted.IsCancellationRequested)
            {
                cut = true;
                break;
            }
            timeout.CancelAfter(_route.Timeout);
            var buffer = result.Buffer;
            ReadOnlySequence<byte> data;
            SequencePosition consumed;
            if (framing == BodyFraming.ContentLength)
            {
                if (buffer.IsEmpty && result.IsCompleted)
                {
                    cut = true;
                    break;
                }
                data = buffer.Slice(0, Math.Min(buffer.Length, remaining));
                consumed = data.End;
                remaining -= data.Length;
                bodyDone = remaining == 0;
            }
            else if (framing == BodyFraming.Chunked)
            {
                var status = chunked.Read(buffer, trailers, _stage.Limits, out data, out consumed, out _);
                if (status == ChunkedReadResult.Complete)
                {
                    bodyDone = true;
                }
                else if (status == ChunkedReadResult.Incomplete)
                {
                    if (result.IsCompleted)
                    {
                        input.AdvanceTo(buffer.End);
                        cut = true;
                        break;
                    }
                    input.AdvanceTo(consumed, buffer.End);
                    continue;
                }
                else if (status == ChunkedReadResult.Error)
                {
                    input.AdvanceTo(buffer.End);
                    cut = true;
                    break;
                }
            }
            else
            {
                data = buffer;
                consumed = buffer.End;
                bodyDone = result.IsCompleted;
            }
            if (!data.IsEmpty)
            {
                if (events is not null)
                {
                    if (!await ForwardEventsAsync(events, data, meter, stripUsageChunk).ConfigureAwait(false))
                    {
                        input.AdvanceTo(consumed);
                        break; // denied: nothing more is read or sent
                    }
                }
                else
                {
                    if (copy is not null && copy.WrittenCount + data.Length <= copyLimit)
                    {
                        foreach (var segment in data)
                        {
                            copy.Write(segment.Span);
                        }
                    }
                    else
                    {
                        _captureOverflow = true;
                    }
                    if (!holdJson)
                    {
                        // The last bytes wait for CompleteResponseAsync, after SettleNow: with a Content-Length
                        // they are the end of the answer, and a client that has them must find it counted.
                        await exchange.WriteResponseBodyAsync(data, flush: !bodyDone, exchange.Aborted).ConfigureAwait(false);
                    }
                }
            }
            input.AdvanceTo(consumed);
        }

        if (events is not null && events.Pending > 0 && !cut && _deny?.Matched is null)
        {
            // A last event without its blank line: still the provider's bytes, pass them on.
            await ForwardTailAsync(events, meter).ConfigureAwait(false);
        }
        if (meter is not null)
        {
            var outcome = meter.Complete();
            var usage = meter.Usage;
            PromptTokens = usage.PromptTokens;
            CompletionTokens = usage.CompletionTokens;
            CachedTokens = usage.CachedTokens;
            AnsweredModel = meter.Model.IsEmpty ? null : meter.GetModel();
            cut |= outcome == LlmStreamOutcome.Cut;
            if (outcome == LlmStreamOutcome.Error)
            {
                Outcome = "error";
            }
        }
        else if (copy is not null && !cut && LlmResponseUsage.TryRead(copy.WrittenSpan, out long prompt, out long completion, out long cached, out var model))
        {
            PromptTokens = prompt;
            CompletionTokens = completion;
            CachedTokens = cached;
            AnsweredModel = model;
        }

        if (_deny?.Matched is { } denied)
        {
            // Stop here: what passed before the match stays sent, the rest is withheld, and the stream
            // ends with an error event and no clean finish (an SDK raises, a reader sees why).
            Outcome = "denied";
            _stage.Metrics.RecordDenied(_route.Id, "output");
            await WriteTranslatedAsync().ConfigureAwait(false);
            await EndStreamAsync(LlmErrors.StreamDenied(_api, DeniedMessage(denied))).ConfigureAwait(false);
            return false;
        }
        if (holdJson)
        {
            return await FinishHeldJsonAsync(copy!, cut, translateJson) && framing != BodyFraming.CloseDelimited && upstreamKeepAlive;
        }
        if (_translated is not null)
        {
            // The translator ends the client's stream: a clean end, or its own error event when the provider's stopped short.
            bool complete = _streamTranslator!.Complete(_translated);
            await WriteTranslatedAsync().ConfigureAwait(false);
            cut |= !complete;
            if (cut)
            {
                Outcome = "cut";
                await EndStreamAsync(null).ConfigureAwait(false);
                return false;
            }
        }
        if (cut)
        {
            Outcome = "cut";
            await EndStreamAsync(sse ? LlmErrors.StreamCut(_api, "The provider ended the stream before the answer was complete.") : null).ConfigureAwait(false);
            return false;
        }
        if (CaptureLimit > 0 && success && Outcome == "completed" && !_captureOverflow)
        {
            // Only a complete, successful answer is ever offered to the cache.
            Captured = sse ? _streamCapture : copy is not null && copy.WrittenCount <= CaptureLimit ? copy : null;
            CapturedStream = sse;
        }
        Broadcast?.Complete();
        SettleNow();
        await exchange.CompleteResponseAsync(null, exchange.Aborted).ConfigureAwait(false);
        return framing != BodyFraming.CloseDelimited && upstreamKeepAlive;
    }

    /// <summary>Forwards the complete events of one read. False: an event matched a deny pattern (it and all after it are withheld).</summary>
    private async ValueTask<bool> ForwardEventsAsync(SseEventSplitter events, ReadOnlySequence<byte> data, LlmStreamMeter? meter, bool stripUsageChunk)
    {
        events.Append(data);
        // Each complete event goes on as it is; the last of a read carries the flush (one client flush per upstream read).
        ReadOnlyMemory<byte> pending = default;
        bool denied = false;
        while (events.TryTakeEvent(out var sseEvent))
        {
            meter?.Observe(sseEvent.Span);
            if (_deny?.Matched is not null)
            {
                denied = true;
                break;
            }
            if (_translated is not null)
            {
                _streamTranslator!.Translate(sseEvent.Span, _translated);
                continue;
            }
            Capture(sseEvent.Span);
            if (stripUsageChunk && LlmResponseUsage.IsUsageOnlyChunk(sseEvent.Span))
            {
                continue; // we asked for it; the client did not
            }
            if (!pending.IsEmpty)
            {
                await _exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(pending), flush: false, _exchange.Aborted).ConfigureAwait(false);
            }
            Share(sseEvent.Span); // before the client's write: followers never wait on the leader's socket
            pending = sseEvent;
        }
        if (!pending.IsEmpty)
        {
            await _exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(pending), flush: true, _exchange.Aborted).ConfigureAwait(false);
        }
        if (denied)
        {
            return false;
        }
        events.Compact();
        await WriteTranslatedAsync().ConfigureAwait(false);
        return true;
    }

    /// <summary>What the stream translator produced from this read, to the client at once (and to the cache, in the client's format).</summary>
    private async ValueTask WriteTranslatedAsync()
    {
        if (_translated is null || _translated.WrittenCount == 0)
        {
            return;
        }
        Capture(_translated.WrittenSpan);
        Share(_translated.WrittenSpan);
        await _exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(_translated.WrittenMemory), flush: true, _exchange.Aborted).ConfigureAwait(false);
        _translated.ResetWrittenCount();
    }

    /// <summary>
    /// A held JSON answer: the provider's whole body (bounded), checked against the output deny
    /// patterns and/or translated to the client's shape. Nothing was sent yet, so an answer that is
    /// denied becomes a 400 <c>output-denied</c>, and one that cannot be read, checked or translated a
    /// 502, both in the client's error shape.
    /// </summary>
    private async ValueTask<bool> FinishHeldJsonAsync(ArrayBufferWriter<byte> copy, bool cut, bool translate)
    {
        var exchange = _exchange;
        if (DenyOutput is not null && !cut)
        {
            DenyMatch? denied = _captureOverflow ? new DenyMatch(-1, TimedOut: true) : DenyOutputScan.Json(copy.WrittenSpan, DenyOutput);
            if (denied is { } match)
            {
                Outcome = "denied";
                _stage.Metrics.RecordDenied(_route.Id, "output");
                if (match.TimedOut)
                {
                    await RespondHeldErrorAsync(502, "output-check-failed", _captureOverflow
                        ? $"The provider's answer is over {Math.Max(MaxUsageCopyBytes, CaptureLimit)} bytes, too large to check against this route's deny patterns."
                        : "The provider's answer could not be checked against this route's deny patterns in time.").ConfigureAwait(false);
                }
                else
                {
                    await RespondHeldErrorAsync(400, "output-denied", DeniedMessage(match)).ConfigureAwait(false);
                }
                return true; // the answer was read whole: the connection is fine
            }
        }
        if (!translate)
        {
            if (cut)
            {
                Outcome = "error";
                await RespondHeldErrorAsync(502, "upstream-answer-cut", "The provider's answer was cut.").ConfigureAwait(false);
                return false;
            }
            await exchange.StartResponseAsync(BodyFraming.ContentLength, copy.WrittenCount, exchange.Aborted).ConfigureAwait(false);
            await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(copy.WrittenMemory), flush: false, exchange.Aborted).ConfigureAwait(false);
            if (CaptureLimit > 0 && copy.WrittenCount <= CaptureLimit && Outcome == "completed")
            {
                Captured = copy;
                CapturedStream = false;
            }
            SettleNow();
            await exchange.CompleteResponseAsync(null, exchange.Aborted).ConfigureAwait(false);
            return true;
        }
        byte[]? translated = null;
        string? failure = cut ? "The provider's answer was cut." : _captureOverflow ? $"The provider's answer is over {Math.Max(MaxUsageCopyBytes, CaptureLimit)} bytes, too large to translate." : null;
        if (failure is null)
        {
            try
            {
                translated = _api switch
                {
                    LlmApi.ChatCompletions => LlmTranslation.AnthropicToOpenAIResponse(copy.WrittenSpan, DateTimeOffset.UtcNow.ToUnixTimeSeconds()),
                    LlmApi.Responses => LlmTranslation.AnthropicToResponsesResponse(copy.WrittenSpan, DateTimeOffset.UtcNow.ToUnixTimeSeconds()),
                    _ => LlmTranslation.OpenAIToAnthropicResponse(copy.WrittenSpan),
                };
            }
            catch (LlmTranslationException e)
            {
                failure = "The provider's answer could not be translated: " + e.Message;
            }
        }
        if (translated is null)
        {
            Outcome = "error";
            await RespondHeldErrorAsync(502, "upstream-translation-failed", failure!).ConfigureAwait(false);
            return !cut;
        }
        await exchange.StartResponseAsync(BodyFraming.ContentLength, translated.Length, exchange.Aborted).ConfigureAwait(false);
        await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(translated), flush: false, exchange.Aborted).ConfigureAwait(false);
        if (CaptureLimit > 0 && translated.Length <= CaptureLimit)
        {
            Captured = new ArrayBufferWriter<byte>(translated.Length);
            Captured.Write(translated);
            CapturedStream = false;
        }
        SettleNow();
        await exchange.CompleteResponseAsync(null, exchange.Aborted).ConfigureAwait(false);
        return true;
    }

    /// <summary>The proxy's own answer in place of a held one (nothing of it was sent yet).</summary>
    private async ValueTask RespondHeldErrorAsync(int status, string reason, string message)
    {
        var exchange = _exchange;
        var response = exchange.Response;
        response.Reset();
        response.StatusCode = status;
        response.AddHeader("content-type"u8, "application/json"u8);
        response.AddHeader("proxycore-error"u8, LlmStage.Ascii(reason));
        var json = LlmErrors.Json(_api == LlmApi.AnthropicMessages, status, reason, message);
        await exchange.StartResponseAsync(BodyFraming.ContentLength, json.Length, exchange.Aborted).ConfigureAwait(false);
        await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(json), flush: false, exchange.Aborted).ConfigureAwait(false);
        SettleNow();
        await exchange.CompleteResponseAsync(null, exchange.Aborted).ConfigureAwait(false);
    }

    /// <summary>Names the pattern by its index, never the matched text (the answer is withheld, so is what it said).</summary>
    private static string DeniedMessage(DenyMatch match) => match.TooManyChoices
        ? $"The answer has more choices than this route's deny patterns can check as they stream (at most {DenyStreamMatcher.MaxChoices}); the rest of it was withheld."
        : match.TimedOut
        ? "The answer could not be checked against this route's deny patterns in time; the rest of it was withheld."
        : $"The answer matched deny pattern {match.PatternIndex} of this route's denyOutput; the rest of it was withheld.";

    /// <summary>Keeps a streamed event for the cache, usage chunk included (a later client may ask for it); past the limit the stream is not cached.</summary>
    private void Capture(ReadOnlySpan<byte> sseEvent)
    {
        if (_streamCapture is null || _captureOverflow)
        {
            return;
        }
        if (_streamCapture.WrittenCount + sseEvent.Length > CaptureLimit)
        {
            _captureOverflow = true;
            return;
        }
        _streamCapture.Write(sseEvent);
    }

    /// <summary>Gives followers what the client gets; past the bound the share ends with the cut event and the stream goes on unshared.</summary>
    private void Share(ReadOnlySpan<byte> sent)
    {
        if (Broadcast is { } broadcast && !broadcast.Publish(sent))
        {
            broadcast.Fail(LlmErrors.StreamCut(_api, "The shared stream this answer was copied from outgrew the gateway's buffer; ask again."));
            Broadcast = null;
        }
    }

    private async ValueTask ForwardTailAsync(SseEventSplitter events, LlmStreamMeter? meter)
    {
        var tail = events.TakeRest();
        meter?.Observe(tail.Span);
        if (_deny?.Matched is not null)
        {
            return;
        }
        if (_translated is not null)
        {
            _streamTranslator!.Translate(tail.Span, _translated);
            _streamTranslator.Translate("\n\n"u8, _translated);
            await WriteTranslatedAsync().ConfigureAwait(false);
            return;
        }
        Capture(tail.Span);
        Share(tail.Span);
        await _exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(tail), flush: true, _exchange.Aborted).ConfigureAwait(false);
    }

    /// <summary>
    /// A stream that did not finish (the upstream broke it, or a deny pattern stopped it): an error
    /// event in the stream's format, then the body ends without its terminal framing (HTTP/1.1: the
    /// connection closes after the event, no last chunk; HTTP/2: the stream is reset after it), so
    /// neither a person reading events nor an SDK reading the body can take the answer for complete.
    /// </summary>
    private async ValueTask EndStreamAsync(byte[]? errorEvent)
    {
        SettleNow();
        Broadcast?.Fail(errorEvent); // followers end as this client does (a translator's own error event was shared already)
        await EndCutStreamAsync(_exchange, errorEvent).ConfigureAwait(false);
    }

    /// <summary>The end of <see cref="EndStreamAsync"/>: the error event, then no terminal framing. Also ends a follower's copy of a cut stream.</summary>
    internal static async ValueTask EndCutStreamAsync(HttpExchange exchange, byte[]? errorEvent)
    {
        if (errorEvent is not null)
        {
            await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>(errorEvent), flush: true, exchange.Aborted).ConfigureAwait(false);
        }
        if (exchange.Request.Version == HttpVersion.Http2)
        {
            exchange.Abort("upstream-stream-cut");
            return;
        }
        // Close after draining what was written (an abort would reset and drop the event).
        var pipe = exchange.DetachForTunnel();
        await pipe.Output.CompleteAsync().ConfigureAwait(false);
        await pipe.Input.CompleteAsync().ConfigureAwait(false);
    }
}
