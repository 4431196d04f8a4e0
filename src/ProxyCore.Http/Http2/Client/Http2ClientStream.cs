using System.IO.Pipelines;
using System.Threading.Tasks.Sources;

namespace ProxyCore.Http.Http2.Client;

/// <summary>How waiting for a response head ended.</summary>
public enum Http2StreamOutcome : byte
{
    /// <summary>The final response head is in the target head.</summary>
    Head,
    /// <summary>
    /// The upstream did not process the stream (REFUSED_STREAM, or above a GOAWAY's last-stream-id, or the
    /// connection ended before the stream was sent): nothing reached an application, safe to send again.
    /// </summary>
    Refused,
    /// <summary>The upstream reset the stream (RST_STREAM other than REFUSED_STREAM).</summary>
    Reset,
    /// <summary>The connection failed or closed with the stream open.</summary>
    ConnectionClosed,
    /// <summary>The upstream's head was malformed (missing or bad :status, connection-specific fields).</summary>
    ProtocolError,
    /// <summary>The caller's token fired (timeout or client gone).</summary>
    Canceled,
}

/// <summary>
/// One request stream on an <see cref="Http2ClientConnection"/>. The relay sends the head and body
/// through the connection, waits for the head with <see cref="WaitForHeadAsync"/>, reads the body from
/// <see cref="Body"/> (giving window back with <see cref="Http2ClientConnection.ConsumedAsync"/>) and
/// finally gives the stream back with <see cref="Http2ClientConnection.Release"/>. Stream objects are
/// pooled per connection: the head signal is a reusable value-task source and the body pipe is reset,
/// so a stream allocates nothing in steady state.
/// </summary>
/// <remarks>
/// The connection's read loop writes into <see cref="Body"/> and fills the target heads under the
/// connection's lock, and only while the stream is registered; releasing unregisters it under the same
/// lock, so a late frame never touches an exchange that moved on.
/// </remarks>
public sealed class Http2ClientStream : IValueTaskSource<Http2StreamOutcome>
{
    private static readonly Action<object?> s_cancel = static state => ((Http2ClientStream)state!).Signal(Http2StreamOutcome.Canceled);

    // Flow control bounds what the pipe holds, so it never pauses the writer (the read loop) itself.
    private readonly Pipe _body = new(new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false));
    private ManualResetValueTaskSourceCore<Http2StreamOutcome> _head = new() { RunContinuationsAsynchronously = true };
    private int _signaled;
    private bool _used;

    internal Http2ClientStream(Http2ClientConnection connection)
    {
        Connection = connection;
        Writer = new Http2ClientConnection.StreamWriter(connection, this);
    }

    /// <summary>This stream's writes that find the connection's writer taken (one at a time, reused).</summary>
    internal Http2ClientConnection.StreamWriter Writer { get; }

    public Http2ClientConnection Connection { get; }

    /// <summary>0 until the head is sent (identifiers are given in wire order).</summary>
    public int StreamId { get; internal set; }

    /// <summary>Response body bytes as DATA frames bring them; completes at END_STREAM, fails on a reset.</summary>
    public PipeReader Body => _body.Reader;

    internal PipeWriter BodyWriter => _body.Writer;

    /// <summary>Where the final response head goes (the exchange's Response).</summary>
    internal ResponseHead? Head;

    /// <summary>Where response trailers go.</summary>
    internal HttpHead? Trailers;

    /// <summary>The error code of the upstream's RST_STREAM, if any.</summary>
    public Http2ErrorCode ResetCode { get; internal set; }

    /// <summary>True once END_STREAM (or a reset) ended the response.</summary>
    public bool RemoteEnded { get; internal set; }

    /// <summary>True once our END_STREAM went out.</summary>
    public bool LocalEnded { get; internal set; }

    internal bool HeadReceived;
    internal bool Registered;
    internal bool Failed;
    internal bool WriterCompleted;

    // Send side (under the connection lock): octets we may still send; may go negative after SETTINGS (§6.9.2).
    internal long SendWindow;
    internal TaskCompletionSource? WindowWaiter;

    // Receive side: what the upstream may still send, and consumed octets not yet given back.
    internal int ReceiveWindow;
    internal int Unacked;

    private CancellationTokenRegistration _cancel;

    internal void Initialize(ResponseHead head, HttpHead trailers, int receiveWindow)
    {
        if (_used)
        {
            _body.Reset(); // both ends were completed by Release
        }
        _used = true;
        _head.Reset();
        _signaled = 0;
        Head = head;
        Trailers = trailers;
        StreamId = 0;
        ResetCode = Http2ErrorCode.NO_ERROR;
        RemoteEnded = false;
        LocalEnded = false;
        HeadReceived = false;
        Registered = false;
        Failed = false;
        WriterCompleted = false;
        SendWindow = 0;
        WindowWaiter = null;
        ReceiveWindow = receiveWindow;
        Unacked = 0;
    }

    /// <summary>Waits for the final response head (1xx interim heads are skipped) or the reason there is none.</summary>
    public ValueTask<Http2StreamOutcome> WaitForHeadAsync(CancellationToken cancellationToken)
    {
        if (cancellationToken.CanBeCanceled && Volatile.Read(ref _signaled) == 0)
        {
            _cancel = cancellationToken.UnsafeRegister(s_cancel, this);
        }
        return new ValueTask<Http2StreamOutcome>(this, _head.Version);
    }

    internal void Signal(Http2StreamOutcome outcome)
    {
        if (Interlocked.Exchange(ref _signaled, 1) == 0)
        {
            _head.SetResult(outcome);
        }
    }

    Http2StreamOutcome IValueTaskSource<Http2StreamOutcome>.GetResult(short token)
    {
        _cancel.Dispose();
        _cancel = default;
        return _head.GetResult(token);
    }

    ValueTaskSourceStatus IValueTaskSource<Http2StreamOutcome>.GetStatus(short token) => _head.GetStatus(token);

    void IValueTaskSource<Http2StreamOutcome>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _head.OnCompleted(continuation, state, token, flags);
}
