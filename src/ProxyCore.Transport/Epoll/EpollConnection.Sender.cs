using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace ProxyCore.Transport.Epoll;

internal sealed partial class EpollConnection
{
    /// <summary>
    /// The application's output: a <see cref="PipeWriter"/> whose flush is the send()/writev() itself, on the
    /// flushing thread. No pipe in between: no locks, no send loop, no copy.
    /// - A flush completes once the kernel took every byte (or, batched, once its bytes are queued for the batch end:
    ///   see below). Only a full socket (EAGAIN) makes it wait, for the
    ///   writable edge; so the buffer between the app and the peer is the kernel's, and a slow peer slows the
    ///   app's next write, which is the backpressure the relay needs.
    /// - Completing the writer sends what is left, then the FIN; completing it with an error resets the connection.
    /// - One writer at a time, as every PipeWriter; <see cref="CancelPendingFlush"/>, the cancellation token and
    ///   the reactor's edge may come from any thread.
    /// - Batched sends (<see cref="SocketTransportOptions.BatchSends"/>): a flush on the connection's own reactor thread
    ///   completes at once and leaves its bytes for the end of the reactor's batch (<see cref="SendBatched"/>). Until
    ///   then the chain has two possible users: the reactor's batch end, and the app resuming on another thread. Each
    ///   takes the batched bytes with a compare-and-swap on <c>_batch</c>; the app waits (spins) only while the reactor
    ///   is inside that one send.
    /// </summary>
    private sealed class Sender(EpollConnection connection, MemoryPool<byte> pool) : PipeWriter
    {
        private const int Flushing = 1, Completed = 2;
        private const int MaxIoVecs = 16;

        // _batch: no bytes wait for the batch end / some do (the reactor will send them) / the reactor is sending them.
        private const int NotBatched = 0, Batched = 1, BatchSending = 2;

        // A connection batches at most this much before a flush sends it itself (and waits, if the socket is full).
        private const long MaxBatchedBytes = 64 * 1024;

        private BufferChain _chain;
        private long _unflushed;
        private bool _ended;            // the send side is over (FIN sent, reset or failed): data is dropped
        private Exception? _error;      // a send failed: later flushes throw it
        private Exception? _completion; // what the app completed the writer with
        private int _cancelPending;
        private int _state;
        private int _batch;
        private long _batchedBytes;
        private bool _batchBlocked; // the batch end found the socket full: the rest waits for the writable edge

        /// <summary>Batched bytes found the socket full at the batch end; the writable edge queues them again.</summary>
        public bool BatchBlocked => _batchBlocked && Volatile.Read(ref _batch) == Batched;

        /// <summary>The send after the writer completed with the socket full, which DisposeAsync waits for; else null.</summary>
        public Task? Draining { get; private set; }

        public override bool CanGetUnflushedBytes => true;

        public override long UnflushedBytes => _unflushed;

        public override Memory<byte> GetMemory(int sizeHint = 0) => Reserve(sizeHint).FreeMemory;

        public override Span<byte> GetSpan(int sizeHint = 0) => Reserve(sizeHint).FreeSpan;

        public override void Advance(int bytes)
        {
            if (_batch != NotBatched)
            {
                ReclaimBatchOffReactor();
            }
            var tail = _chain.Tail;
            if (tail is null || (uint)bytes > (uint)tail.Free)
            {
                if (bytes == 0)
                {
                    return;
                }
                throw new ArgumentOutOfRangeException(nameof(bytes), "Advanced past the memory that was asked for.");
            }
            tail.Commit(bytes);
            _unflushed += bytes;
        }

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            ThrowIfCompleted();
            long flushed = _unflushed;
            _unflushed = 0;
            bool onReactor = connection._batchSends && EpollReactor.Current == connection._reactor; // _batch stays NotBatched without batching
            if (_batch != NotBatched && !onReactor)
            {
                ReclaimBatch();
            }
            if (_error is not null)
            {
                ExceptionDispatchInfo.Throw(_error);
            }
            if (Volatile.Read(ref _cancelPending) != 0 && Interlocked.Exchange(ref _cancelPending, 0) != 0)
            {
                return new ValueTask<FlushResult>(new FlushResult(isCanceled: true, isCompleted: false));
            }
            if (onReactor && TryBatch(flushed))
            {
                return new ValueTask<FlushResult>(new FlushResult(isCanceled: false, isCompleted: false));
            }
            int sent = SendPending();
            if (sent != 0)
            {
                return new ValueTask<FlushResult>(new FlushResult(isCanceled: false, isCompleted: sent < 0));
            }
            if (cancellationToken.IsCancellationRequested)
            {
                return ValueTask.FromCanceled<FlushResult>(cancellationToken);
            }
            return FlushWhenWritableAsync(cancellationToken);
        }

        public override void CancelPendingFlush()
        {
            Volatile.Write(ref _cancelPending, 1);
            connection._writable.Set();
        }

        public override void Complete(Exception? exception = null)
        {
            int previous = Interlocked.Or(ref _state, Completed);
            if ((previous & Completed) != 0)
            {
                return;
            }
            ReclaimBatch(); // Finish sends the batched bytes itself (or drops them, on an error)
            _completion = exception;
            if ((previous & Flushing) == 0)
            {
                Finish();
            }
            // else the waiting flush finishes it when it wakes
        }

        private void ThrowIfCompleted()
        {
            if ((_state & Completed) != 0)
            {
                throw new InvalidOperationException("Writing is not allowed after the writer was completed.");
            }
        }

        private BufferSegment Reserve(int sizeHint)
        {
            ThrowIfCompleted();
            if (_batch != NotBatched)
            {
                ReclaimBatchOffReactor();
            }
            if (sizeHint < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(sizeHint));
            }
            var tail = _chain.Tail;
            if (tail is null || tail.Free < Math.Max(sizeHint, 1))
            {
                tail = _chain.Append(pool, Math.Max(sizeHint, SocketTransportOptions.MinimumSegmentSize));
            }
            return tail;
        }

        /// <summary>
        /// On the reactor thread: leaves the flushed bytes for the batch end, queuing the connection once. False (and
        /// the caller sends now) past <see cref="MaxBatchedBytes"/>, after a batched send found the socket full, or once
        /// the send side is over.
        /// </summary>
        private bool TryBatch(long flushed)
        {
            // Here _batch is NotBatched or Batched: the reactor sends batched bytes only between the app's callbacks.
            _batchedBytes += flushed;
            if (_batchedBytes > MaxBatchedBytes || _batchBlocked || _ended)
            {
                if (_batch != NotBatched)
                {
                    Volatile.Write(ref _batch, NotBatched); // an entry left in the reactor's list finds nothing to do
                }
                _batchBlocked = false;
                _batchedBytes = 0;
                return false;
            }
            if (_batch == NotBatched)
            {
                Volatile.Write(ref _batch, Batched);
                connection._reactor.DeferSend(connection);
            }
            return true;
        }

        /// <summary>The reactor's batch end (or an Abort on its thread): sends the batched bytes, if the app has not taken them back.</summary>
        public void SendBatched()
        {
            if (Interlocked.CompareExchange(ref _batch, BatchSending, Batched) != Batched)
            {
                return;
            }
            int sent = SendPending();
            _batchedBytes = 0;
            _batchBlocked = sent == 0;
            Volatile.Write(ref _batch, sent == 0 ? Batched : NotBatched);
        }

        private void ReclaimBatchOffReactor()
        {
            if (EpollReactor.Current != connection._reactor)
            {
                ReclaimBatch();
            }
        }

        /// <summary>
        /// The app takes batched bytes back (it writes from another thread, or completes the writer): they go with its
        /// next send. Waits only while the reactor is inside that send.
        /// </summary>
        private void ReclaimBatch()
        {
            var spin = new SpinWait();
            while (true)
            {
                int batch = Interlocked.CompareExchange(ref _batch, NotBatched, Batched);
                if (batch != BatchSending)
                {
                    if (batch == Batched)
                    {
                        _batchBlocked = false;
                        _batchedBytes = 0;
                    }
                    return;
                }
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }

        /// <summary>Sends what is buffered: 1 when all of it went, 0 when the socket is full, -1 when the send side is over.</summary>
        private int SendPending()
        {
            while (true)
            {
                if (_ended)
                {
                    _chain.Clear();
                    return -1;
                }
                var head = _chain.Head;
                if (head is null)
                {
                    return 1;
                }
                if (head == _chain.Tail && head.Length == _chain.HeadStart)
                {
                    _chain.Clear(); // an empty buffer: nothing to send
                    return 1;
                }
                nint sent;
                int errno;
                try
                {
                    sent = head == _chain.Tail ? SendOne(head.Written(_chain.HeadStart), out errno) : SendGather(out errno);
                }
                catch (ObjectDisposedException ex)
                {
                    Fail(ex); // closed by Abort or DisposeAsync
                    continue;
                }
                if (sent >= 0)
                {
                    Consume(sent);
                    continue;
                }
                if (errno == Native.EAGAIN)
                {
                    return 0;
                }
                if (errno != Native.EINTR)
                {
                    Fail(Native.Error(errno));
                }
            }
        }

        private void Consume(nint sent)
        {
            while (_chain.Head is { } head)
            {
                int left = head.Length - _chain.HeadStart;
                if (sent < left)
                {
                    _chain.TrimTo(head, _chain.HeadStart + (int)sent);
                    return;
                }
                sent -= left;

                // The chain may hold empty buffers (a GetSpan followed by Advance(0), as writing an empty segment does).
                if (head.NextSegment is not { } next)
                {
                    _chain.Clear(); // all sent: no buffer held between flushes
                    return;
                }
                _chain.TrimTo(next, 0);
            }
        }

        private void Fail(Exception ex)
        {
            _ended = true;
            _chain.Clear();
            if (Volatile.Read(ref connection._aborted) == 0)
            {
                _error = connection.MapError(ex); // null when DisposeAsync closed it: nothing to report
            }
            connection.FireConnectionClosed();
        }

        private unsafe nint SendOne(ReadOnlySpan<byte> span, out int errno)
        {
            var fd = connection._fd;
            bool added = false;
            try
            {
                fd.DangerousAddRef(ref added);
                fixed (byte* p = span)
                {
                    nint n = Native.send(fd.Fd, p, span.Length, Native.MSG_NOSIGNAL);
                    errno = n < 0 ? Marshal.GetLastPInvokeError() : 0;
                    return n;
                }
            }
            finally
            {
                if (added)
                {
                    fd.DangerousRelease();
                }
            }
        }

        // One writev() for up to 16 buffers: a response head and body chunk written apart still leave in one syscall.
        private unsafe nint SendGather(out int errno)
        {
            var fd = connection._fd;
            var handles = new PinnedHandles();
            Native.IoVec* iov = stackalloc Native.IoVec[MaxIoVecs];
            int count = 0;
            bool added = false;
            try
            {
                fd.DangerousAddRef(ref added);
                int start = _chain.HeadStart;
                for (var segment = _chain.Head; segment is not null && count < MaxIoVecs; segment = segment.NextSegment)
                {
                    int length = segment.Length - start;
                    if (length > 0)
                    {
                        handles[count] = segment.Pin(start);
                        iov[count].Base = (byte*)handles[count].Pointer;
                        iov[count].Length = length;
                        count++;
                    }
                    start = 0;
                }
                // writev has no MSG_NOSIGNAL: the runtime ignores SIGPIPE process-wide, so EPIPE comes back as an error.
                nint n = Native.writev(fd.Fd, iov, count);
                errno = n < 0 ? Marshal.GetLastPInvokeError() : 0;
                return n;
            }
            finally
            {
                for (int i = 0; i < count; i++)
                {
                    handles[i].Dispose();
                }
                if (added)
                {
                    fd.DangerousRelease();
                }
            }
        }

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        private async ValueTask<FlushResult> FlushWhenWritableAsync(CancellationToken cancellationToken)
        {
            Interlocked.Or(ref _state, Flushing);
            var registration = cancellationToken.CanBeCanceled
                ? cancellationToken.UnsafeRegister(static state => ((EpollConnection)state!)._writable.Set(), connection)
                : default;
            try
            {
                while (true)
                {
                    await connection._writable.WaitAsync().ConfigureAwait(false);
                    cancellationToken.ThrowIfCancellationRequested(); // the unsent bytes stay for the next flush
                    if (Volatile.Read(ref _cancelPending) != 0 && Interlocked.Exchange(ref _cancelPending, 0) != 0)
                    {
                        return new FlushResult(isCanceled: true, isCompleted: false);
                    }
                    if (connection._writable.IsClosed && !_ended)
                    {
                        Fail(new ObjectDisposedException(nameof(EpollConnection)));
                    }
                    int sent = SendPending();
                    if (sent != 0)
                    {
                        return new FlushResult(isCanceled: false, isCompleted: sent < 0);
                    }
                }
            }
            finally
            {
                registration.Dispose();
                if ((Interlocked.And(ref _state, ~Flushing) & Completed) != 0)
                {
                    Finish();
                }
            }
        }

        /// <summary>The writer completed: the rest goes out, then the FIN (or, completed with an error, a reset).</summary>
        private void Finish()
        {
            if (_completion is not null)
            {
                // The app failed mid-stream: reset, so the peer cannot take a truncated stream for a whole one.
                _ended = true;
                _chain.Clear();
                connection.Abort(_completion);
                connection.LoopEnded();
                return;
            }
            if (SendPending() == 0)
            {
                Draining = DrainThenShutdownAsync();
                return;
            }
            Shutdown();
        }

        private async Task DrainThenShutdownAsync()
        {
            int sent;
            do
            {
                await connection._writable.WaitAsync().ConfigureAwait(false);
                if (connection._writable.IsClosed && !_ended)
                {
                    Fail(new ObjectDisposedException(nameof(EpollConnection)));
                }
                sent = SendPending();
            }
            while (sent == 0);
            Shutdown();
        }

        private void Shutdown()
        {
            if (!_ended && Volatile.Read(ref connection._aborted) == 0)
            {
                _ended = true;
                connection.ShutdownSend();
            }
            _chain.Clear();
            connection.LoopEnded();
        }

        [InlineArray(MaxIoVecs)]
        private struct PinnedHandles
        {
            private MemoryHandle _first;
        }
    }
}
