using System.Buffers;
using System.Net;

namespace ProxyCore.Http.Http2;

// Stream states (§5.1), request bodies and receive flow control (§6.9), SETTINGS, and the streams'
// life cycle: rented from the pool, run, finished, pooled again or retired.
public sealed partial class Http2Connection
{
    private ValueTask<bool> OnDataAsync(in Http2Frame frame)
    {
        int streamId = frame.StreamId;
        int length = frame.FlowControlledLength;
        if (length == 0 && !frame.EndStream && !SpendControlBudget())
        {
            // An empty DATA frame without END_STREAM carries nothing: a flood of them is work for free.
            return new(false);
        }
        // §6.9.1: "A sender MUST NOT send a flow-controlled frame with a length that exceeds the space
        // available in either of the flow-control windows advertised by the receiver." The connection
        // window is checked first: "frames received in error" still count against it.
        if (length > Volatile.Read(ref _connectionReceiveWindow))
        {
            return new(Fail(Http2ErrorCode.FLOW_CONTROL_ERROR));
        }
        Interlocked.Add(ref _connectionReceiveWindow, -length);
        if (streamId > _lastStreamId)
        {
            // §5.1 idle: "Receiving any frame other than HEADERS or PRIORITY on a stream in this state
            // MUST be treated as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
            return new(Fail(Http2ErrorCode.PROTOCOL_ERROR));
        }

        var error = Http2ErrorCode.NO_ERROR;
        bool respond = false;
        int credit = length;
        Http2Stream? stream;
        lock (_streamsLock)
        {
            if (!_streams.TryGetValue(streamId, out stream))
            {
                // §6.1: "If a DATA frame is received whose stream is not in the "open" or "half-closed
                // (local)" state, the recipient MUST respond with a stream error (Section 5.4.2) of
                // type STREAM_CLOSED." Unless we reset it ourselves: §5.1 says to ignore what crosses
                // our RST_STREAM.
                WasClosed(streamId, out var end);
                respond = end != StreamEnd.ResetByUs;
                error = Http2ErrorCode.STREAM_CLOSED;
                stream = null;
            }
            else if (stream.IsReset)
            {
                // Closed by a reset, its task not done yet: as above, silence after our RST_STREAM;
                // after the client's, §5.1 "any frame other than PRIORITY after receiving a RST_STREAM"
                // is a stream error of type STREAM_CLOSED.
                respond = !stream.ResetByUs;
                error = Http2ErrorCode.STREAM_CLOSED;
                stream = null;
            }
            else if (stream.RequestEnded)
            {
                // §5.1 half-closed (remote): frames other than WINDOW_UPDATE, PRIORITY or RST_STREAM
                // are a stream error of type STREAM_CLOSED.
                error = Http2ErrorCode.STREAM_CLOSED;
                respond = true;
                ResetLocked(stream);
                stream = null;
            }
            else if (length > stream.ReceiveWindow)
            {
                error = Http2ErrorCode.FLOW_CONTROL_ERROR;
                respond = true;
                ResetLocked(stream);
                stream = null;
            }
            else
            {
                Interlocked.Add(ref stream.ReceiveWindow, -length);
                var data = frame.Data;
                stream.BodyReceived += data.Length;
                var contentLength = stream.Request.ContentLength;
                if (contentLength >= 0 && stream.BodyReceived > contentLength)
                {
                    // §8.1.1: "A request or response is also malformed if the value of a content-length
                    // header field does not equal the sum of the DATA frame payload lengths".
                    error = Http2ErrorCode.PROTOCOL_ERROR;
                    respond = true;
                    ResetLocked(stream);
                    stream = null;
                }
                else
                {
                    var writer = stream.RequestBodyWriter;
                    foreach (var segment in data)
                    {
                        writer.Write(segment.Span);
                    }
                    // No pause threshold: the flush completes at once and only wakes the reader.
                    var flush = writer.FlushAsync();
                    _ = flush.IsCompleted ? flush.Result : default;
                    credit = length - (int)data.Length; // the padding is ours to give back at once
                    if (frame.EndStream)
                    {
                        error = EndRequestLocked(stream);
                        respond = error != Http2ErrorCode.NO_ERROR;
                    }
                }
            }
        }
        if (credit > 0)
        {
            OnRequestBodyConsumed(stream, credit);
        }
        return respond ? StreamErrorAsync(streamId, error) : new(true);
    }

    private ValueTask<bool> EndRequestAsync(Http2Stream stream)
    {
        Http2ErrorCode error;
        lock (_streamsLock)
        {
            if (!_streams.ContainsKey(stream.StreamId) || stream.IsReset)
            {
                return new(true);
            }
            error = EndRequestLocked(stream);
        }
        return error == Http2ErrorCode.NO_ERROR ? new(true) : StreamErrorAsync(stream.StreamId, error);
    }

    /// <summary>END_STREAM arrived: the body is complete, if it is as long as content-length said (§8.1.1).</summary>
    private Http2ErrorCode EndRequestLocked(Http2Stream stream)
    {
        var contentLength = stream.Request.ContentLength;
        if (contentLength >= 0 && stream.BodyReceived != contentLength)
        {
            ResetLocked(stream);
            return Http2ErrorCode.PROTOCOL_ERROR;
        }
        stream.RequestEnded = true;
        stream.RequestBodyWriter.Complete();
        return Http2ErrorCode.NO_ERROR;
    }

    /// <summary>A stream error (§5.4.2): reset the stream if it is open, and send RST_STREAM.</summary>
    private ValueTask<bool> StreamErrorAsync(int streamId, Http2ErrorCode code)
    {
        if (!SpendControlBudget())
        {
            return new(false); // each stream error is a RST_STREAM we write
        }
        lock (_streamsLock)
        {
            if (_streams.TryGetValue(streamId, out var stream))
            {
                ResetLocked(stream);
            }
            else
            {
                RememberClosed(streamId, StreamEnd.ResetByUs);
            }
        }
        return WriteControlAsync(ControlFrame.RstStream, streamId, (uint)code);
    }

    private void ResetLocked(Http2Stream stream, bool byUs = true)
    {
        if (stream.Reset(byUs))
        {
            lock (_windowLock)
            {
                WakeLocked(stream);
            }
        }
    }

    private bool OnRstStream(in Http2Frame frame)
    {
        int streamId = frame.StreamId;
        if (streamId > _lastStreamId)
        {
            // §6.4: "If a RST_STREAM frame identifying an idle stream is received, the recipient MUST
            // treat this as a connection error (Section 5.4.1) of type PROTOCOL_ERROR."
            return Fail(Http2ErrorCode.PROTOCOL_ERROR);
        }
        bool unfinished = false;
        lock (_streamsLock)
        {
            if (_streams.TryGetValue(streamId, out var stream))
            {
                // Cancelled while its response was still being produced: the application's work (the
                // upstream request) is aborted through the exchange's Aborted token.
                unfinished = !stream.IsReset && !stream.ResponseCompleted;
                ResetLocked(stream, byUs: false);
            }
        }
        return unfinished ? SpendRapidResetBudget() : SpendControlBudget();
    }

    private ValueTask<bool> OnSettingsAsync(in Http2Frame frame)
    {
        if (!SpendControlBudget())
        {
            return new(false); // each SETTINGS is applied to every stream and answered
        }
        if (frame.IsAck)
        {
            return new(true); // Our settings are in force; nothing waits on it.
        }
        int headerTableSize = -1;
        int initialWindowSize = -1;
        foreach (var setting in frame.Settings)
        {
            switch (setting.Parameter)
            {
                case Http2SettingsParameter.SETTINGS_HEADER_TABLE_SIZE:
                    headerTableSize = (int)Math.Min(setting.Value, int.MaxValue);
                    break;
                case Http2SettingsParameter.SETTINGS_INITIAL_WINDOW_SIZE:
                    // Applied once, with the last value (§6.5.3: processed in order, so the last one is
                    // what stays): one frame of 2,730 such entries must not walk every stream each time.
                    initialWindowSize = (int)setting.Value;
                    break;
                case Http2SettingsParameter.SETTINGS_MAX_FRAME_SIZE:
                    _peerMaxFrameSize = setting.Value;
                    break;
                // ENABLE_PUSH (we never push), MAX_CONCURRENT_STREAMS (we open none),
                // MAX_HEADER_LIST_SIZE (advisory) and unknown identifiers (§6.5.2: "MUST ignore").
            }
        }
        if (initialWindowSize >= 0 && !ApplyInitialWindowSize(initialWindowSize))
        {
            // §6.9.2: "An endpoint MUST treat a change to SETTINGS_INITIAL_WINDOW_SIZE that causes any
            // flow-control window to exceed the maximum size as a connection error (Section 5.4.1) of
            // type FLOW_CONTROL_ERROR."
            return new(Fail(Http2ErrorCode.FLOW_CONTROL_ERROR));
        }
        // §6.5.3: "Upon receiving a SETTINGS frame, the recipient MUST ... send a SETTINGS frame with
        // the ACK flag set" once the values are applied.
        return WriteControlAsync(ControlFrame.SettingsAck, 0, (uint)headerTableSize);
    }

    /// <summary>§6.9.2: a new SETTINGS_INITIAL_WINDOW_SIZE moves every open stream's send window by the difference.</summary>
    private bool ApplyInitialWindowSize(int value)
    {
        lock (_streamsLock)
        {
            lock (_windowLock)
            {
                long delta = (long)value - _peerInitialWindowSize;
                _peerInitialWindowSize = value;
                foreach (var stream in _streams.Values)
                {
                    stream.SendWindow += delta;
                    if (stream.SendWindow > Http2Frame.MaxWindowSize)
                    {
                        return false;
                    }
                    if (delta > 0)
                    {
                        WakeLocked(stream);
                    }
                }
            }
        }
        return true;
    }

    private ValueTask<bool> OnWindowUpdateAsync(in Http2Frame frame)
    {
        int streamId = frame.StreamId;
        int increment = frame.WindowSizeIncrement;
        if (increment < TinyWindowIncrement && !SpendControlBudget())
        {
            // Real clients give window back in large steps; a stream of one-octet updates is a flood.
            return new(false);
        }
        if (streamId == 0)
        {
            if (increment >= TinyWindowIncrement && ActiveStreamCount == 0 && !SpendControlBudget())
            {
                return new(false); // window for a connection with nothing to send: pure overhead
            }
            lock (_windowLock)
            {
                _connectionSendWindow += increment;
                // §6.9.1: "If a sender receives a WINDOW_UPDATE that causes a flow-control window to
                // exceed this maximum, it MUST terminate either the stream or the connection, as
                // appropriate ... with an error code of FLOW_CONTROL_ERROR".
                if (_connectionSendWindow > Http2Frame.MaxWindowSize)
                {
                    return new(Fail(Http2ErrorCode.FLOW_CONTROL_ERROR));
                }
                foreach (var waiter in _connectionWindowWaiters)
                {
                    WakeLocked(waiter);
                }
                _connectionWindowWaiters.Clear();
            }
            return new(true);
        }
        if (streamId > _lastStreamId)
        {
            // §5.1 idle: only HEADERS and PRIORITY may arrive.
            return new(Fail(Http2ErrorCode.PROTOCOL_ERROR));
        }
        bool overflow = false;
        bool open = false;
        lock (_streamsLock)
        {
            // Closed streams: §5.1 "WINDOW_UPDATE or RST_STREAM frames can be received in this state
            // for a short period after" END_STREAM: ignored.
            if (_streams.TryGetValue(streamId, out var stream) && !stream.IsReset)
            {
                open = true;
                lock (_windowLock)
                {
                    stream.SendWindow += increment;
                    overflow = stream.SendWindow > Http2Frame.MaxWindowSize;
                    WakeLocked(stream);
                }
            }
        }
        if (!open && increment >= TinyWindowIncrement && !SpendControlBudget())
        {
            return new(false); // for a stream that is gone: nothing to open
        }
        return overflow ? StreamErrorAsync(streamId, Http2ErrorCode.FLOW_CONTROL_ERROR) : new(true);
    }

    // ---- stream life cycle ----

    private Http2Stream RentStream(int streamId)
    {
        Http2Stream? stream;
        lock (_streamsLock)
        {
            _pool.TryPop(out stream);
        }
        stream ??= new Http2Stream(this);
        stream.Initialize(streamId, _options.InitialStreamWindowSize, _peerInitialWindowSize);
        return stream;
    }

    /// <summary>Under the stream lock: keeps the object for the next stream, or says it must be retired.</summary>
    private void ReturnToPool(Http2Stream stream)
    {
        stream.Recycle();
        if (!_closing && _pool.Count < _options.StreamPoolSize)
        {
            _pool.Push(stream);
        }
        else
        {
            _retired.Add(stream);
        }
    }

    private readonly List<Http2Stream> _retired = [];

    /// <summary>The stream's application task is done: the stream closes and its object goes back to the pool.</summary>
    internal void OnStreamFinished(Http2Stream stream)
    {
        bool wakeReader;
        Http2Stream[]? retire = null;
        lock (_streamsLock)
        {
            _streams.Remove(stream.StreamId);
            RememberClosed(stream.StreamId, !stream.IsReset ? StreamEnd.Finished : stream.ResetByUs ? StreamEnd.ResetByUs : StreamEnd.ResetByPeer);
            lock (_windowLock)
            {
                _connectionWindowWaiters.Remove(stream);
                stream.WindowWaiter = null;
            }
            ReturnToPool(stream);
            if (_retired.Count > 0)
            {
                retire = [.. _retired];
                _retired.Clear();
            }
            int count = _streams.Count;
            if (count == 0)
            {
                _streamsDrained?.TrySetResult();
            }
            // The last stream finished: the read loop looks again, to close a draining connection or
            // to arm the idle timeout (it waits in a read that started while streams were open).
            wakeReader = count == 0 && !_closing;
        }
        if (retire is not null)
        {
            foreach (var s in retire)
            {
                s.Retire();
            }
        }
        if (wakeReader)
        {
            _input.CancelPendingRead();
        }
    }

    /// <summary>The application aborted, or finished before the request did (§8.1): RST_STREAM with <paramref name="code"/>.</summary>
    internal void ResetStream(Http2Stream stream, Http2ErrorCode code)
    {
        lock (_streamsLock)
        {
            if (!stream.Reset(byUs: true))
            {
                return;
            }
            lock (_windowLock)
            {
                WakeLocked(stream);
            }
        }
        EnqueueControl(new ControlItem(ControlFrame.RstStream, stream.StreamId, (uint)code, null));
    }

    /// <summary>
    /// The application consumed request body octets (or the read loop dropped padding): give the window
    /// back once enough is owed — half a stream window, a quarter of the connection's — so a
    /// WINDOW_UPDATE goes out per many DATA frames, not one each.
    /// </summary>
    internal void OnRequestBodyConsumed(Http2Stream? stream, int consumed)
    {
        bool schedule = Interlocked.Add(ref _connectionUnacked, consumed) >= _options.ConnectionWindowSize / 4;
        if (stream is not null && !stream.RequestEnded
            && Interlocked.Add(ref stream.UnackedConsumed, consumed) >= _options.InitialStreamWindowSize / 2)
        {
            _controlQueue.Enqueue(new ControlItem(ControlFrame.StreamCredit, stream.StreamId, 0, stream));
            schedule = true;
        }
        if (schedule)
        {
            ScheduleControl();
        }
    }

    private void RememberClosed(int streamId, StreamEnd end)
    {
        _closedStreams[_closedStreamsNext] = streamId;
        _closedStreamEnds[_closedStreamsNext] = end;
        _closedStreamsNext = (_closedStreamsNext + 1) % ClosedStreamMemory;
    }

    /// <summary>True when <paramref name="streamId"/> was open not long ago, and how it ended; ids never opened, or long closed, say false.</summary>
    private bool WasClosed(int streamId, out StreamEnd end)
    {
        lock (_streamsLock)
        {
            // Newest first: an identifier reset by a stream error and then finished is remembered twice.
            for (int n = 1; n <= ClosedStreamMemory; n++)
            {
                int i = (_closedStreamsNext - n + ClosedStreamMemory) % ClosedStreamMemory;
                if (_closedStreams[i] == streamId)
                {
                    end = _closedStreamEnds[i];
                    return true;
                }
            }
        }
        end = StreamEnd.Finished;
        return false;
    }

    /// <summary>
    /// §8.2.3: a client may split cookie into one field per crumb for better compression; "before being
    /// passed into a non-HTTP/2 context, such as an HTTP/1.1 connection ... MUST be concatenated into
    /// a single octet string using the two-octet delimiter of 0x3b, 0x20 (the ASCII string "; ")".
    /// </summary>
    private static void MergeCookies(RequestHead request)
    {
        int first = request.IndexOf(KnownHeader.Cookie);
        if (first < 0)
        {
            return;
        }
        int count = 0;
        int length = 0;
        var headers = request.Headers;
        for (int i = first; i < headers.Length; i++)
        {
            if (headers[i].Id == KnownHeader.Cookie)
            {
                length += (count++ > 0 ? 2 : 0) + headers[i].Value.Length;
            }
        }
        if (count < 2)
        {
            return;
        }
        var name = headers[first].Name;
        var merged = request.Reserve(length, out var range);
        int at = 0;
        headers = request.Headers;
        for (int i = first; i < headers.Length; i++)
        {
            if (headers[i].Id != KnownHeader.Cookie)
            {
                continue;
            }
            if (at > 0)
            {
                "; "u8.CopyTo(merged[at..]);
                at += 2;
            }
            var value = request.Get(headers[i].Value);
            value.CopyTo(merged[at..]);
            at += value.Length;
        }
        request.RemoveHeaders(KnownHeader.Cookie);
        request.AddHeader(name, range, KnownHeader.Cookie);
    }

    private void OnStopping()
    {
        _stoppingRequested = true;
        _input.CancelPendingRead();
    }

    /// <summary>Ends the connection: GOAWAY after a connection error, streams aborted and awaited, pipes completed, pooled streams retired.</summary>
    private async Task CloseAsync()
    {
        _idleTimer.Dispose();
        if (_failed)
        {
            try
            {
                await WriteControlAsync(ControlFrame.GoAway, _lastStreamId, (uint)_connectionError).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // The client is gone already.
            }
        }

        Task? drained = null;
        lock (_streamsLock)
        {
            _closing = true;
            foreach (var stream in _streams.Values)
            {
                ResetLocked(stream, byUs: false);
            }
            if (_streams.Count > 0)
            {
                _streamsDrained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                drained = _streamsDrained.Task;
            }
        }
        lock (_windowLock)
        {
            foreach (var waiter in _connectionWindowWaiters)
            {
                WakeLocked(waiter);
            }
            _connectionWindowWaiters.Clear();
        }
        if (drained is not null)
        {
            // Aborted streams end as soon as their application notices; one that never does is left
            // behind rather than holding the connection open.
            await Task.WhenAny(drained, Task.Delay(StreamDrainTimeout)).ConfigureAwait(false);
        }

        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            _outputClosed = true;
            await _output.CompleteAsync().ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
        await _input.CompleteAsync().ConfigureAwait(false);

        List<Http2Stream> retire;
        lock (_streamsLock)
        {
            retire = [.. _pool, .. _retired];
            _pool.Clear();
            _retired.Clear();
        }
        foreach (var stream in retire)
        {
            stream.Retire();
        }
    }

    private static readonly TimeSpan StreamDrainTimeout = TimeSpan.FromSeconds(10);

    private static byte[] FormatClientAddress(EndPoint? endPoint)
    {
        if (endPoint is IPEndPoint ip)
        {
            var address = ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address;
            Span<byte> buffer = stackalloc byte[64];
            if (address.TryFormat(buffer, out int written))
            {
                return buffer.Slice(0, written).ToArray();
            }
        }
        return "unknown"u8.ToArray();
    }
}
