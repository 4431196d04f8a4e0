using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.ExceptionServices;
using System.Threading.Tasks.Sources;

namespace ProxyCore.Transport.Epoll;

internal sealed partial class EpollConnection
{
    /// <summary>
    /// The application's input: a <see cref="PipeReader"/> that reads the socket itself, when the app asks, into
    /// pooled buffers it keeps until the app consumed them. No pipe in between: no monitor, no receive loop, no copy.
    /// - A read with nothing new to show recv()s at once unless the socket is known drained (the last read was short
    ///   and no edge came since); then it parks on the readable edge and resumes inline on the reactor thread.
    /// - Read-ahead: an edge that finds no read parked (the app is busy elsewhere, or held back: a relay waiting for
    ///   its client's flow-control window) is read by the reactor into the buffer, up to
    ///   <see cref="SocketTransportOptions.MaxReadBufferSize"/> unconsumed bytes, as a pipe's receive loop would. Without
    ///   it the kernel's buffers are all there is between two peers, and an echo to a client that reads its answer
    ///   only after sending its whole body (HttpClient's non-duplex content) deadlocks past them. Past the limit the
    ///   kernel's receive buffer fills and TCP slows the sender.
    /// - One reader at a time, as every PipeReader; <see cref="CancelPendingRead"/> and the cancellation token may
    ///   come from any thread, and so may the reactor's edge. The reader's state has one owner at a time: the app's
    ///   call, or the reactor's read-ahead (a compare-and-swap each, uncontended but for a read-ahead racing an app
    ///   running on another thread).
    /// </summary>
    private sealed class Receiver(EpollConnection connection, MemoryPool<byte> pool, long maxReadAhead) : PipeReader, IValueTaskSource<ReadResult>, IIoWaiter
    {
        private const int Reading = 1, Completed = 2;

        private static readonly Action<object?> s_wake = static state => ((EpollConnection)state!)._readable.Set();

        // Below this much room left in the last buffer, the next read takes a new one rather than a sliver.
        private const int MinimumReadSize = 512;

        private BufferChain _chain;
        private bool _examinedAll;  // the app saw all that is buffered: the next read needs new bytes
        private bool _drained = true; // nothing to read until the next edge (no buffer is rented before it)
        private bool _streaming;
        private bool _ended;        // FIN, an error or the close was seen: nothing more will come
        private Exception? _error;
        private int _cancelPending;
        private int _state;
        private int _owned; // 1 while an app call or the read-ahead works on the state above
        private volatile bool _started; // a dial's connect is done: before, a read would take the connect's SO_ERROR

        // The parked read: completed by the edge's thread, no async box (RunContinuationsAsynchronously = false: inline).
        private ManualResetValueTaskSourceCore<ReadResult> _core;
        private CancellationToken _token;
        private CancellationTokenRegistration _registration;

        public override bool TryRead(out ReadResult result)
        {
            ThrowIfCompleted();
            Own();
            try
            {
                return TryReadCore(out result);
            }
            finally
            {
                Release();
            }
        }

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            ThrowIfCompleted();
            if (cancellationToken.IsCancellationRequested)
            {
                return ValueTask.FromCanceled<ReadResult>(cancellationToken);
            }
            Own();
            bool got;
            ReadResult result;
            try
            {
                got = TryReadCore(out result);
            }
            finally
            {
                Release();
            }
            return got ? new ValueTask<ReadResult>(result) : ReadWhenReadableAsync(cancellationToken);
        }

        public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            Own();
            try
            {
                AdvanceCore(consumed, examined);
            }
            finally
            {
                Release();
            }
        }

        /// <summary>
        /// The reactor saw data come while no read was parked (the edge is still pending): reads it into the buffer,
        /// up to the read-ahead limit, unless the app is inside the reader right now (then it sees the edge itself).
        /// </summary>
        public void ReadAhead()
        {
            if (!_started || !connection._readable.IsReady || (Volatile.Read(ref _state) & Completed) != 0
                || Interlocked.CompareExchange(ref _owned, 1, 0) != 0)
            {
                return;
            }
            bool got = false;
            try
            {
                if (_ended || Buffered >= maxReadAhead || !connection._readable.TryTake())
                {
                    return;
                }
                _drained = false;
                while (!_drained && !_ended && Buffered < maxReadAhead && ReceiveOnce())
                {
                    got = true;
                }
                if (!_drained && !_ended)
                {
                    connection._readable.Set(); // stopped at the limit: the kernel still holds data for the app's next read
                }
            }
            finally
            {
                Release();
            }
            if (got)
            {
                // A read that parked between its own look and this one would wait for an edge already taken: wake it.
                connection._readable.Set();
            }
        }

        /// <summary>The connection is established: edges may be read ahead from now on.</summary>
        public void Start() => _started = true;

        private long Buffered => _chain.Head is { } head ? _chain.Tail!.RunningIndex + _chain.Tail.Length - head.RunningIndex - _chain.HeadStart : 0;

        private void Own()
        {
            if (Interlocked.CompareExchange(ref _owned, 1, 0) != 0)
            {
                OwnSlow();
            }
        }

        private void OwnSlow()
        {
            // Only a read-ahead holds it this long: a few recv() calls on the reactor.
            var spin = new SpinWait();
            while (Interlocked.CompareExchange(ref _owned, 1, 0) != 0)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }

        private void Release() => Volatile.Write(ref _owned, 0);

        private void AdvanceCore(SequencePosition consumed, SequencePosition examined)
        {
            var tail = _chain.Tail;
            if (tail is null)
            {
                _examinedAll = true;
                return;
            }
            _examinedAll = examined.GetObject() == tail && examined.GetInteger() == tail.Length;
            if (consumed.GetObject() is BufferSegment segment)
            {
                _chain.TrimTo(segment, consumed.GetInteger());
            }
            else if (consumed.GetObject() is not null)
            {
                throw new InvalidOperationException("The position is not from this reader's buffer.");
            }
        }

        public override void CancelPendingRead()
        {
            Volatile.Write(ref _cancelPending, 1);
            connection._readable.Set(); // wakes a parked read (a spurious edge costs one EAGAIN at most)
        }

        public override void Complete(Exception? exception = null)
        {
            int previous = Interlocked.Or(ref _state, Completed);
            if ((previous & Completed) != 0)
            {
                return;
            }
            if ((previous & Reading) == 0)
            {
                Own();
                _chain.Clear();
                Release();
            }
            // else the parked read gives the buffers back when it wakes (the close wakes it)
            connection.LoopEnded();
        }

        private void ThrowIfCompleted()
        {
            if ((_state & Completed) != 0)
            {
                throw new InvalidOperationException("Reading is not allowed after the reader was completed.");
            }
        }

        private bool TryReadCore(out ReadResult result)
        {
            while (true)
            {
                if (Volatile.Read(ref _cancelPending) != 0 && Interlocked.Exchange(ref _cancelPending, 0) != 0)
                {
                    result = new ReadResult(_chain.Sequence, isCanceled: true, isCompleted: false);
                    return true;
                }
                if (_chain.Head is not null && !_examinedAll)
                {
                    result = new ReadResult(_chain.Sequence, isCanceled: false, isCompleted: _ended && _error is null);
                    return true;
                }
                if (_ended)
                {
                    if (_error is not null)
                    {
                        ExceptionDispatchInfo.Throw(_error);
                    }
                    result = new ReadResult(_chain.Sequence, isCanceled: false, isCompleted: true);
                    return true;
                }
                if (_drained && !connection._readable.TryTake())
                {
                    result = default;
                    return false;
                }
                if (!ReceiveOnce())
                {
                    result = default;
                    return false;
                }
                // Bytes, FIN or an error: the loop reports it.
            }
        }

        /// <summary>One recv(): true when it brought bytes, the FIN or an error; false when the socket is drained.</summary>
        private bool ReceiveOnce()
        {
            while (true)
            {
                var segment = _chain.Tail;
                bool fresh = false;
                if (segment is null || segment.Free < MinimumReadSize)
                {
                    segment = _chain.Append(pool, _streaming ? SocketTransportOptions.StreamingSegmentSize : SocketTransportOptions.MinimumSegmentSize);
                    fresh = true;
                }
                var span = segment.FreeSpan;
                nint received;
                int errno;
                try
                {
                    received = connection.Receive(span, out errno);
                }
                catch (ObjectDisposedException ex)
                {
                    received = -1;
                    errno = 0;
                    End(ex);
                }
                if (received > 0)
                {
                    segment.Commit((int)received);
                    _examinedAll = false;

                    // Short read: the kernel had no more. Read on only when the peer's FIN (or an error) is pending, so
                    // the next recv reports it; the edge that announced both may have been the last one.
                    _drained = received < span.Length && !connection._peerHalfClosed;
                    _streaming = received == span.Length; // a full buffer: more is likely queued, read bigger
                    return true;
                }
                if (fresh)
                {
                    _chain.DropEmptyTail(segment); // an idle connection keeps no buffer
                }
                if (_ended)
                {
                    return true; // closed under us (End above)
                }
                if (received == 0)
                {
                    End(null); // FIN
                    return true;
                }
                if (errno == Native.EAGAIN)
                {
                    _drained = true; // an edge whose data was read already
                    return false;
                }
                if (errno != Native.EINTR)
                {
                    End(Native.Error(errno));
                    return true;
                }
            }
        }

        private void End(Exception? error)
        {
            _ended = true;
            _error = error is null ? null : connection.MapError(error);
            connection.FireConnectionClosed();
        }

        /// <summary>Parks the read on the readable edge; the edge (or a cancel, or the close) completes it inline.</summary>
        private ValueTask<ReadResult> ReadWhenReadableAsync(CancellationToken cancellationToken)
        {
            _core.Reset();
            short version = _core.Version;
            _token = cancellationToken;
            _registration = cancellationToken.CanBeCanceled ? cancellationToken.UnsafeRegister(s_wake, connection) : default;
            Interlocked.Or(ref _state, Reading);
            Park();
            return new ValueTask<ReadResult>(this, version);
        }

        private void Park()
        {
            while (!connection._readable.Arm(this))
            {
                if (TryCompleteWait())
                {
                    return;
                }
            }
        }

        void IIoWaiter.OnReady()
        {
            if (!TryCompleteWait())
            {
                Park();
            }
        }

        /// <summary>After a wake: completes the parked read (true), or false when the socket had nothing after all.</summary>
        private bool TryCompleteWait()
        {
            ReadResult result;
            Exception? error = null;
            Own();
            try
            {
                _token.ThrowIfCancellationRequested();
                if ((Volatile.Read(ref _state) & Completed) != 0)
                {
                    result = new ReadResult(default, isCanceled: false, isCompleted: true);
                }
                else
                {
                    _drained = false; // an edge (or the close): ask the socket
                    if (!TryReadCore(out result))
                    {
                        return false;
                    }
                }
            }
            catch (Exception ex)
            {
                error = ex;
                result = default;
            }
            finally
            {
                Release(); // before the continuation: it runs inline and reads again
            }
            EndWait();
            if (error is not null)
            {
                _core.SetException(error);
            }
            else
            {
                _core.SetResult(result); // runs the app's continuation inline
            }
            return true;
        }

        private void EndWait()
        {
            _registration.Dispose();
            _registration = default;
            _token = default;
            if ((Interlocked.And(ref _state, ~Reading) & Completed) != 0)
            {
                Own();
                _chain.Clear();
                Release();
            }
        }

        ReadResult IValueTaskSource<ReadResult>.GetResult(short token) => _core.GetResult(token);

        ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _core.GetStatus(token);

        void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
            => _core.OnCompleted(continuation, state, token, flags);
    }
}
