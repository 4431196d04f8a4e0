using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text;

namespace ProxyCore.Transport.Tests;

/// <summary>
/// The PipeReader/PipeWriter contract of a connection's Transport, over real sockets, on both engines. The epoll
/// engine's reader and writer make the syscalls themselves (no Pipe in between), so every rule a Pipe kept for free
/// (TryRead, cancellation, examined, backpressure, the FIN after the last byte) is its own code and is pinned here.
/// </summary>
public class ReaderWriterContractTests
{
    public static TheoryData<TransportKind> SocketEngines => [TransportKind.Socket, TransportKind.Epoll];

    // How long "does not complete" is watched for: long enough for a wrong wake to show, short enough to run often.
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(150);

    // More than a loopback socket's kernel buffers hold with the peer's receive buffer fixed at 64 KiB (tcp_wmem max
    // is 4 MiB here), so a flush of it must wait for the peer (EPOLLOUT on the epoll engine).
    private const int MoreThanTheKernelHolds = 16 * 1024 * 1024;

    // ---- 1. ConnectionClosed on an idle connection -------------------------------------------------------------

    public static TheoryData<TransportKind, string> IdleCloseCauses => new()
    {
        { TransportKind.Socket, "fin" }, { TransportKind.Socket, "reset" },
        { TransportKind.Epoll, "fin" }, { TransportKind.Epoll, "reset" },
    };

    [Theory]
    [MemberData(nameof(IdleCloseCauses))]
    public async Task ConnectionClosed_PeerClosesAfterRoundTripWhileNobodyReads_Fires(TransportKind kind, string cause)
    {
        // A pooled upstream: one exchange, then nobody reads it. The pool drops it on ConnectionClosed, so the close
        // must be told without a read (the epoll reader only reads when asked: this is the reactor's RDHUP edge).
        await using var pair = TransportPair.Create(kind);
        var (client, server) = await pair.ConnectAsync();
        await using var disposeClient = client;
        await using var disposeServer = server;
        await client.Transport.Output.WriteAndFlushAsync("GET"u8.ToArray());
        await server.Transport.Input.ReadExactlyAsync(3);
        await server.Transport.Output.WriteAndFlushAsync("200"u8.ToArray());
        await client.Transport.Input.ReadExactlyAsync(3);
        await Task.Delay(Settle);
        Assert.False(client.ConnectionClosed.IsCancellationRequested);

        if (cause == "fin")
        {
            server.Transport.Output.Complete();
        }
        else
        {
            server.Abort();
        }

        await client.ConnectionClosed.WaitAsync();
    }

    // ---- 2. TryRead ---------------------------------------------------------------------------------------------

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task TryRead_DataArrivedWithNoReadPending_ReturnsItAndFalseWithout(TransportKind kind)
    {
        await using var pair = TransportPair.Create(kind);
        var (client, server) = await pair.ConnectAsync();
        await using var disposeClient = client;
        await using var disposeServer = server;
        var input = server.Transport.Input;

        Assert.False(input.TryRead(out _)); // fresh: nothing yet, and no wait

        for (int round = 0; round < 3; round++)
        {
            var sent = Encoding.ASCII.GetBytes($"round {round} of bytes nobody asked for yet");
            await client.Transport.Output.WriteAndFlushAsync(sent);

            Assert.Equal(sent, await TryReadExactlyAsync(input, sent.Length));
            Assert.False(input.TryRead(out _)); // all consumed: nothing until the peer sends more
        }

        // A partly consumed buffer stays visible to TryRead.
        await client.Transport.Output.WriteAndFlushAsync("abcdef"u8.ToArray());
        var buffered = await TryReadExactlyAsync(input, 6, consume: 2);
        Assert.Equal("abcdef"u8.ToArray(), buffered);
        Assert.True(input.TryRead(out var rest));
        Assert.Equal("cdef"u8.ToArray(), rest.Buffer.ToArray());
        input.AdvanceTo(rest.Buffer.End);
        Assert.False(input.TryRead(out _));
    }

    /// <summary>Polls TryRead (never ReadAsync) until <paramref name="count"/> bytes are there; consumes <paramref name="consume"/> of them.</summary>
    private static async Task<byte[]> TryReadExactlyAsync(PipeReader input, int count, int? consume = null)
    {
        var deadline = DateTime.UtcNow + Timeouts.Default;
        while (true)
        {
            if (input.TryRead(out var result))
            {
                Assert.False(result.IsCanceled);
                Assert.False(result.IsCompleted, "the stream ended early");
                if (result.Buffer.Length >= count)
                {
                    var bytes = result.Buffer.Slice(0, count).ToArray();
                    input.AdvanceTo(result.Buffer.GetPosition(consume ?? count));
                    return bytes;
                }
                input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            }
            Assert.True(DateTime.UtcNow < deadline, "TryRead never returned the bytes the peer sent");
            await Task.Delay(5);
        }
    }

    // ---- 3. CancelPendingRead -----------------------------------------------------------------------------------

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task CancelPendingRead_WhileReadParked_CompletesItCanceledThenReadsNormally(TransportKind kind)
    {
        await using var pair = TransportPair.Create(kind);
        var (client, server) = await pair.ConnectAsync();
        await using var disposeClient = client;
        await using var disposeServer = server;
        var input = server.Transport.Input;

        var read = input.ReadAsync().AsTask();
        await Task.Delay(Settle);
        Assert.False(read.IsCompleted);

        input.CancelPendingRead();

        var canceled = await read.WaitAsync(Timeouts.Default);
        Assert.True(canceled.IsCanceled);
        Assert.False(canceled.IsCompleted);
        input.AdvanceTo(canceled.Buffer.Start);

        // Once only: the next read waits for data again, then gets it.
        var next = input.ReadAsync().AsTask();
        await Task.Delay(Settle);
        Assert.False(next.IsCompleted);
        await client.Transport.Output.WriteAndFlushAsync("after the cancel"u8.ToArray());
        var result = await next.WaitAsync(Timeouts.Default);
        Assert.False(result.IsCanceled);
        input.AdvanceTo(result.Buffer.Start); // examined nothing: the next read shows them again
        Assert.Equal("after the cancel"u8.ToArray(), await input.ReadExactlyAsync(16));
    }

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task CancelPendingRead_BeforeRead_NextReadIsCanceledOnceThenDataFlows(TransportKind kind)
    {
        await using var pair = TransportPair.Create(kind);
        var (client, server) = await pair.ConnectAsync();
        await using var disposeClient = client;
        await using var disposeServer = server;
        var input = server.Transport.Input;

        // ReadAsync sees it.
        input.CancelPendingRead();
        var canceled = await input.ReadAsync().AsTask().WaitAsync(Timeouts.Default);
        Assert.True(canceled.IsCanceled);
        input.AdvanceTo(canceled.Buffer.Start);

        var next = input.ReadAsync().AsTask();
        await Task.Delay(Settle);
        Assert.False(next.IsCompleted); // the cancel was used up
        await client.Transport.Output.WriteAndFlushAsync("one"u8.ToArray());
        var first = await next.WaitAsync(Timeouts.Default);
        Assert.False(first.IsCanceled);
        input.AdvanceTo(first.Buffer.Start);
        Assert.Equal("one"u8.ToArray(), await input.ReadExactlyAsync(3));

        // TryRead sees it too, once.
        input.CancelPendingRead();
        Assert.True(input.TryRead(out var tried));
        Assert.True(tried.IsCanceled);
        input.AdvanceTo(tried.Buffer.Start);
        Assert.False(input.TryRead(out _));

        // With bytes buffered: the canceled read loses none of them.
        await client.Transport.Output.WriteAndFlushAsync("two"u8.ToArray());
        var partial = await input.ReadAsync().AsTask().WaitAsync(Timeouts.Default);
        input.AdvanceTo(partial.Buffer.Start); // examined nothing: they stay for the next read
        input.CancelPendingRead();
        var canceledWithData = await input.ReadAsync().AsTask().WaitAsync(Timeouts.Default);
        Assert.True(canceledWithData.IsCanceled);
        input.AdvanceTo(canceledWithData.Buffer.Start);
        Assert.Equal("two"u8.ToArray(), await input.ReadExactlyAsync(3));
    }

    // ---- 4. ReadAsync(token) ------------------------------------------------------------------------------------

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task ReadAsync_TokenCanceledWhileParked_ThrowsAndConnectionStaysUsable(TransportKind kind)
    {
        await using var pair = TransportPair.Create(kind);
        var (client, server) = await pair.ConnectAsync();
        await using var disposeClient = client;
        await using var disposeServer = server;
        var input = server.Transport.Input;

        // Bytes examined but not consumed: the parked read holds them, and its cancel must not drop them.
        await client.Transport.Output.WriteAndFlushAsync("old:"u8.ToArray());
        var old = await ReadAtLeastAsync(input, 4);
        input.AdvanceTo(old.Buffer.Start, old.Buffer.End);

        using var cts = new CancellationTokenSource();
        var read = input.ReadAsync(cts.Token).AsTask();
        await Task.Delay(Settle);
        Assert.False(read.IsCompleted);

        cts.Cancel();

        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read.WaitAsync(Timeouts.Default));
        Assert.Equal(cts.Token, error.CancellationToken);

        // Nothing lost, nothing closed: bytes sent afterwards arrive after the old ones, and both directions still work.
        Assert.False(server.ConnectionClosed.IsCancellationRequested);
        await client.Transport.Output.WriteAndFlushAsync("still here"u8.ToArray());
        Assert.Equal("old:still here"u8.ToArray(), await input.ReadExactlyAsync(14));
        await server.Transport.Output.WriteAndFlushAsync("me too"u8.ToArray());
        Assert.Equal("me too"u8.ToArray(), await client.Transport.Input.ReadExactlyAsync(6));
    }

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task ReadAsync_TokenCanceledAfterItsReadCompleted_DoesNotCancelTheNextRead(TransportKind kind)
    {
        await using var pair = TransportPair.Create(kind);
        var (client, server) = await pair.ConnectAsync();
        await using var disposeClient = client;
        await using var disposeServer = server;
        var input = server.Transport.Input;

        using var cts = new CancellationTokenSource();
        var read = input.ReadAsync(cts.Token).AsTask();
        await client.Transport.Output.WriteAndFlushAsync([1]);
        var result = await read.WaitAsync(Timeouts.Default);
        input.AdvanceTo(result.Buffer.End);

        cts.Cancel(); // the read it was for is over: this must reach nothing

        var next = input.ReadAsync().AsTask();
        await Task.Delay(Settle);
        Assert.False(next.IsCompleted);
        await client.Transport.Output.WriteAndFlushAsync([2]);
        var second = await next.WaitAsync(Timeouts.Default);
        Assert.False(second.IsCanceled);
        Assert.Equal([2], second.Buffer.ToArray());
        input.AdvanceTo(second.Buffer.End);
    }

    // ---- 5. AdvanceTo(consumed, examined) -----------------------------------------------------------------------

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task AdvanceTo_ExaminedBeforeEnd_NextReadAtOnce_ExaminedAll_WaitsThenOldAndNewTogether(TransportKind kind)
    {
        await using var pair = TransportPair.Create(kind);
        var (client, server) = await pair.ConnectAsync();
        await using var disposeClient = client;
        await using var disposeServer = server;
        var input = server.Transport.Input;

        await client.Transport.Output.WriteAndFlushAsync("hello"u8.ToArray());
        var first = await ReadAtLeastAsync(input, 5);
        Assert.Equal("hello"u8.ToArray(), first.Buffer.ToArray());

        // Consumed 2, examined 3 of 5: the next read has something unexamined, so it does not wait.
        input.AdvanceTo(first.Buffer.GetPosition(2), first.Buffer.GetPosition(3));
        var again = input.ReadAsync();
        Assert.True(again.IsCompleted, "a read with unexamined bytes buffered must complete at once");
        var second = await again;
        Assert.Equal("llo"u8.ToArray(), second.Buffer.ToArray());

        // Examined all: the next read waits for new bytes, then shows the old and the new together.
        input.AdvanceTo(second.Buffer.Start, second.Buffer.End);
        var waiting = input.ReadAsync().AsTask();
        await Task.Delay(Settle);
        Assert.False(waiting.IsCompleted);
        await client.Transport.Output.WriteAndFlushAsync(" world"u8.ToArray());
        var third = await waiting.WaitAsync(Timeouts.Default);
        Assert.StartsWith("llo ", Encoding.ASCII.GetString(third.Buffer.ToArray()));
        input.AdvanceTo(third.Buffer.Start);
        Assert.Equal("llo world"u8.ToArray(), await input.ReadExactlyAsync(9));
    }

    /// <summary>Reads until at least <paramref name="count"/> bytes are buffered; the caller advances the result.</summary>
    private static async Task<ReadResult> ReadAtLeastAsync(PipeReader input, int count)
    {
        while (true)
        {
            var result = await input.ReadAsync().AsTask().WaitAsync(Timeouts.Default);
            if (result.Buffer.Length >= count)
            {
                return result;
            }
            Assert.False(result.IsCompleted, $"stream ended after {result.Buffer.Length} of {count} bytes");
            input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    // ---- 6. Large writes and many segments ----------------------------------------------------------------------

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task WriteAsync_MoreThanTheKernelHoldsToSlowPeer_FlushWaitsThenAllArrivesInOrder(TransportKind kind)
    {
        var pool = new CountingMemoryPool();
        await using var peer = await RawPeer.ConnectAsync(kind, pool);
        var payload = Pattern(0, MoreThanTheKernelHolds);

        var write = peer.Server.Transport.Output.WriteAsync(payload).AsTask();
        await Task.Delay(Settle);
        Assert.False(write.IsCompleted, "the flush completed before the peer read: bytes cannot all be in the kernel");

        var received = peer.ReceiveAsync(payload.Length, slowly: true);
        var flush = await write.WaitAsync(Timeouts.Default);
        Assert.False(flush.IsCompleted);
        Assert.Equal(payload.Length, await received.WaitAsync(Timeouts.Default));
    }

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task GetSpanAdvance_ManySegmentsInOneFlush_ArriveCompleteAndInOrder(TransportKind kind)
    {
        // Each write asks for more than the last buffer has left, so each takes a buffer of its own: far more than
        // the 16 iovecs one writev() takes, and (with the peer not reading yet) partial writevs that stop mid-buffer.
        var pool = new CountingMemoryPool();
        await using var peer = await RawPeer.ConnectAsync(kind, pool);
        var output = peer.Server.Transport.Output;

        long offset = 0;
        int writes = 0;
        var sizes = new[] { 1, 3000, 7, 2500, 4096, 13, 3999, 1 };
        while (offset < MoreThanTheKernelHolds / 4)
        {
            int size = sizes[writes++ % sizes.Length];
            var span = output.GetSpan(size);
            FillPattern(span[..size], offset);
            output.Advance(size);
            offset += size;
        }
        Assert.True(writes > 16);

        var flush = output.FlushAsync().AsTask();
        var received = peer.ReceiveAsync(offset, slowly: true);
        Assert.False((await flush.WaitAsync(Timeouts.Default)).IsCompleted);

        // And a small one after it, from a fresh chain: still in order.
        var tail = output.GetSpan(100);
        FillPattern(tail[..100], offset);
        output.Advance(100);
        await output.FlushAsync().AsTask().WaitAsync(Timeouts.Default);
        Assert.Equal(offset, await received.WaitAsync(Timeouts.Default));
        Assert.Equal(100, await peer.ReceiveAsync(100, slowly: false, startOffset: offset).WaitAsync(Timeouts.Default));
    }

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task EmptyWrites_BetweenAndAfterFullBuffers_FlushEverythingAndStayUsable(TransportKind kind)
    {
        // Writing an empty span (what copying a sequence with an empty segment does) asks for a buffer and advances
        // 0: the chain then holds empty buffers, last or in between. Once this threw in the epoll writer's flush,
        // after the bytes had gone, and the relay's request-body pump died with the body half sent.
        var pool = new CountingMemoryPool();
        await using var peer = await RawPeer.ConnectAsync(kind, pool);
        var output = peer.Server.Transport.Output;
        long offset = 0;
        for (int round = 0; round < 3; round++)
        {
            foreach (int size in new[] { 4096, 0, 0, 4096, 0, 17, 0 })
            {
                var span = output.GetSpan(size == 0 ? 4096 : size);
                FillPattern(span[..size], offset);
                output.Advance(size);
                offset += size;
                output.Write(ReadOnlySpan<byte>.Empty);
            }
            var flushed = await output.FlushAsync().AsTask().WaitAsync(Timeouts.Default);
            Assert.False(flushed.IsCompleted);
        }
        Assert.Equal(offset, await peer.ReceiveAsync(offset, slowly: false).WaitAsync(Timeouts.Default));
    }

    // ---- 7. FlushAsync(token) -----------------------------------------------------------------------------------

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task FlushAsync_TokenCanceledOnFullSocket_ThrowsAndTheRestGoesWithTheNextFlush(TransportKind kind)
    {
        var pool = new CountingMemoryPool();
        await using var peer = await RawPeer.ConnectAsync(kind, pool);
        var output = peer.Server.Transport.Output;
        output.Write(Pattern(0, MoreThanTheKernelHolds));

        using var cts = new CancellationTokenSource();
        var flush = output.FlushAsync(cts.Token).AsTask();
        await Task.Delay(Settle);
        Assert.False(flush.IsCompleted);
        cts.Cancel();
        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => flush.WaitAsync(Timeouts.Default));
        Assert.Equal(cts.Token, error.CancellationToken);

        // The peer reads from now on; the writer goes on: more bytes, a flush, then the FIN.
        var received = peer.ReceiveAsync(MoreThanTheKernelHolds + 1000, slowly: true);
        output.Write(Pattern(MoreThanTheKernelHolds, 1000));
        Assert.False((await output.FlushAsync().AsTask().WaitAsync(Timeouts.Default)).IsCompleted);
        await output.CompleteAsync();
        Assert.Equal(MoreThanTheKernelHolds + 1000, await received.WaitAsync(Timeouts.Default));
        await peer.ExpectEofAsync();
    }

    // ---- 8. Complete with unsent bytes, then DisposeAsync -------------------------------------------------------

    [Theory]
    [InlineData(TransportKind.Socket, true)]
    [InlineData(TransportKind.Socket, false)]
    [InlineData(TransportKind.Epoll, true)]
    [InlineData(TransportKind.Epoll, false)]
    public async Task CompleteOrDispose_UnsentBytesOnFullSocket_PeerGetsAllThenFin(TransportKind kind, bool completeFirst)
    {
        var pool = new CountingMemoryPool();
        await using var peer = await RawPeer.ConnectAsync(kind, pool);
        var output = peer.Server.Transport.Output;
        output.Write(Pattern(0, MoreThanTheKernelHolds)); // unflushed: Complete (or DisposeAsync) must send it

        if (completeFirst)
        {
            output.Complete();
        }
        var dispose = peer.Server.DisposeAsync().AsTask();
        await Task.Delay(Settle); // the peer starts reading late: the socket is full by now

        Assert.Equal(MoreThanTheKernelHolds, await peer.ReceiveAsync(MoreThanTheKernelHolds, slowly: false).WaitAsync(Timeouts.Default));
        await peer.ExpectEofAsync();
        await dispose.WaitAsync(Timeouts.Default);
        for (int i = 0; i < 2000 && pool.Outstanding != 0; i++)
        {
            await Task.Delay(10);
        }
        Assert.Equal(0, pool.Outstanding); // every buffer of the unsent bytes went back
    }

    // ---- 9. Complete(exception) ---------------------------------------------------------------------------------

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task CompleteWithError_UnsentBytesOnFullSocket_PeerSeesResetNotEof(TransportKind kind)
    {
        await using var peer = await RawPeer.ConnectAsync(kind, new CountingMemoryPool());
        var output = peer.Server.Transport.Output;
        await output.WriteAsync(new byte[64 * 1024]).AsTask().WaitAsync(Timeouts.Default);
        output.Write(new byte[MoreThanTheKernelHolds]);

        output.Complete(new InvalidOperationException("the response broke mid-body"));

        var error = await Assert.ThrowsAsync<SocketException>(() => peer.ReceiveAsync(long.MaxValue, slowly: false, verify: false));
        Assert.Equal(SocketError.ConnectionReset, error.SocketErrorCode);
    }

    // ---- 10. Reads after the peer's FIN -------------------------------------------------------------------------

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task Read_AfterPeerFin_BufferedBytesFirstThenCompletedForGood(TransportKind kind)
    {
        await using var pair = TransportPair.Create(kind);
        var (client, server) = await pair.ConnectAsync();
        await using var disposeClient = client;
        await using var disposeServer = server;
        var input = server.Transport.Input;

        await client.Transport.Output.WriteAndFlushAsync("abcdef"u8.ToArray());
        client.Transport.Output.Complete();
        await server.ConnectionClosed.WaitAsync(); // the FIN is there before anything is read

        var first = await ReadAtLeastAsync(input, 6); // fails if IsCompleted comes before all six bytes
        Assert.Equal("abcdef"u8.ToArray(), first.Buffer.ToArray());
        input.AdvanceTo(first.Buffer.GetPosition(2));

        ReadResult result;
        while (true)
        {
            result = await input.ReadAsync().AsTask().WaitAsync(Timeouts.Default);
            Assert.Equal("cdef"u8.ToArray(), result.Buffer.ToArray());
            if (result.IsCompleted)
            {
                break;
            }
            input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
        input.AdvanceTo(result.Buffer.End);

        for (int i = 0; i < 3; i++)
        {
            var end = await input.ReadAsync().AsTask().WaitAsync(Timeouts.Default);
            Assert.True(end.IsCompleted);
            Assert.True(end.Buffer.IsEmpty);
            input.AdvanceTo(end.Buffer.End);
        }
        Assert.True(input.TryRead(out var tried));
        Assert.True(tried.IsCompleted);
        Assert.True(tried.Buffer.IsEmpty);
        input.AdvanceTo(tried.Buffer.End);

        // Half-close: the other direction is still open.
        await server.Transport.Output.WriteAndFlushAsync("bye"u8.ToArray());
        Assert.Equal("bye"u8.ToArray(), await client.Transport.Input.ReadExactlyAsync(3));
    }

    // ---- A parked flush or read is never left hanging --------------------------------------------------------

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task CancelPendingFlush_WhileFlushParkedOnFullSocket_ReturnsCanceledAndNothingIsLost(TransportKind kind)
    {
        await using var peer = await RawPeer.ConnectAsync(kind, new CountingMemoryPool());
        var output = peer.Server.Transport.Output;
        output.Write(Pattern(0, MoreThanTheKernelHolds));
        var flush = output.FlushAsync().AsTask();
        await Task.Delay(Settle);
        Assert.False(flush.IsCompleted);

        output.CancelPendingFlush();

        var canceled = await flush.WaitAsync(Timeouts.Default);
        Assert.True(canceled.IsCanceled);
        Assert.False(canceled.IsCompleted);
        var received = peer.ReceiveAsync(MoreThanTheKernelHolds, slowly: true);
        Assert.False((await output.FlushAsync().AsTask().WaitAsync(Timeouts.Default)).IsCanceled); // once only
        Assert.Equal(MoreThanTheKernelHolds, await received.WaitAsync(Timeouts.Default));
    }

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task Abort_WhileFlushParkedAndReadParked_BothEndInsteadOfHanging(TransportKind kind)
    {
        await using var peer = await RawPeer.ConnectAsync(kind, new CountingMemoryPool());
        var output = peer.Server.Transport.Output;
        output.Write(new byte[MoreThanTheKernelHolds]);
        var flush = output.FlushAsync().AsTask();
        var read = peer.Server.Transport.Input.ReadAsync().AsTask();
        await Task.Delay(Settle);
        Assert.False(flush.IsCompleted);
        Assert.False(read.IsCompleted);

        peer.Server.Abort(new InvalidOperationException("timed out"));

        await EndsAsync(flush);
        await Assert.ThrowsAsync<ConnectionAbortedException>(() => read.WaitAsync(Timeouts.Default));
        await peer.Server.ConnectionClosed.WaitAsync();
    }

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task PeerResets_WhileFlushParkedOnFullSocket_FlushEndsAndLaterFlushesDoNotHang(TransportKind kind)
    {
        await using var peer = await RawPeer.ConnectAsync(kind, new CountingMemoryPool());
        var output = peer.Server.Transport.Output;
        output.Write(new byte[MoreThanTheKernelHolds]);
        var flush = output.FlushAsync().AsTask();
        await Task.Delay(Settle);
        Assert.False(flush.IsCompleted);

        peer.Socket.LingerState = new LingerOption(true, 0);
        peer.Socket.Close(); // RST

        await EndsAsync(flush);
        await peer.Server.ConnectionClosed.WaitAsync();
        output.Write(new byte[1000]);
        await Assert.ThrowsAsync<ConnectionResetException>(async () => await output.FlushAsync().AsTask().WaitAsync(Timeouts.Default));
    }

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task DisposeAsync_PeerNeverReads_WaitsUntilAbortThenEnds(TransportKind kind)
    {
        // DisposeAsync drains before the FIN; a peer that never reads keeps it waiting, and whoever disposes bounds
        // that with Abort (the connection server does, after its drain timeout). Abort must end the wait.
        await using var peer = await RawPeer.ConnectAsync(kind, new CountingMemoryPool());
        peer.Server.Transport.Output.Write(new byte[MoreThanTheKernelHolds]);
        var read = peer.Server.Transport.Input.ReadAsync().AsTask(); // the app's read loop, parked

        var dispose = peer.Server.DisposeAsync().AsTask();
        await Task.Delay(Settle);
        Assert.False(dispose.IsCompleted);

        peer.Server.Abort();

        await dispose.WaitAsync(Timeouts.Default);
        try
        {
            await read.WaitAsync(Timeouts.Default); // ends one way or another; only a hang is wrong
        }
        catch (Exception ex) when (ex is not TimeoutException)
        {
        }
    }

    /// <summary>A flush on a connection that is gone: it completes (IsCompleted) or throws, but does not hang.</summary>
    private static async Task EndsAsync(Task<FlushResult> flush)
    {
        try
        {
            var result = await flush.WaitAsync(Timeouts.Default);
            Assert.True(result.IsCompleted, "a flush on a closed connection reported success");
        }
        catch (Exception ex) when (ex is not TimeoutException and not Xunit.Sdk.XunitException)
        {
        }
    }

    // ---- Races -------------------------------------------------------------------------------------------------

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task Read_StreamWithCancelsRacingTheEdges_LosesAndRepeatsNothing(TransportKind kind)
    {
        // Cancels (token and CancelPendingRead, from other threads) land at every point of a read: parked, waking
        // on the reactor, completing. Each one may end a read early, but no byte may be lost, repeated or reordered.
        const int total = 4 * 1024 * 1024;
        await using var pair = TransportPair.Create(kind);
        var (client, server) = await pair.ConnectAsync();
        await using var disposeClient = client;
        await using var disposeServer = server;
        var input = server.Transport.Input;

        var send = Task.Run(async () =>
        {
            var random = new Random(1);
            long offset = 0;
            while (offset < total)
            {
                int size = (int)Math.Min(random.Next(1, 20_000), total - offset);
                await client.Transport.Output.WriteAsync(Pattern(offset, size));
                offset += size;
                if (random.Next(8) == 0)
                {
                    await Task.Delay(1);
                }
            }
            client.Transport.Output.Complete();
        });
        using var stop = new CancellationTokenSource();
        var canceller = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                input.CancelPendingRead();
                await Task.Delay(1);
            }
        });

        var rng = new Random(2);
        long received = 0;
        int canceledReads = 0, tokenCancels = 0;
        var deadline = DateTime.UtcNow + Timeouts.Default;
        while (true)
        {
            Assert.True(DateTime.UtcNow < deadline, $"stuck after {received} of {total} bytes");
            if (rng.Next(50) == 0)
            {
                input.CancelPendingRead(); // and some from this thread, between reads, so some surely land
            }
            using var cts = new CancellationTokenSource();
            cts.CancelAfter(rng.Next(0, 3));
            ReadResult result;
            try
            {
                result = await input.ReadAsync(cts.Token).AsTask().WaitAsync(Timeouts.Default);
            }
            catch (OperationCanceledException)
            {
                tokenCancels++;
                continue;
            }
            if (result.IsCanceled)
            {
                canceledReads++;
            }
            var buffer = result.Buffer;
            int take = buffer.Length == 0 ? 0 : (int)Math.Min(buffer.Length, rng.Next(1, 30_000));
            var bytes = buffer.Slice(0, take).ToArray();
            for (int i = 0; i < bytes.Length; i++)
            {
                if (bytes[i] != (byte)((received + i) % 251))
                {
                    Assert.Fail($"byte {received + i} is {bytes[i]}, expected {(received + i) % 251}");
                }
            }
            received += take;
            if (result.IsCompleted && take == buffer.Length)
            {
                input.AdvanceTo(buffer.End);
                break;
            }
            // Examined all, sometimes with bytes left unconsumed (so a read parks, and is cancelled, holding them),
            // or examined only what was taken (the rest shows again at once).
            bool examinedAll = take == buffer.Length || rng.Next(2) == 0;
            input.AdvanceTo(buffer.GetPosition(take), examinedAll ? buffer.End : buffer.GetPosition(take));
        }
        stop.Cancel();
        await canceller.WaitAsync(Timeouts.Default);
        await send.WaitAsync(Timeouts.Default);

        Assert.Equal(total, received);
        Assert.True(canceledReads > 0 && tokenCancels > 0, $"the races did not happen: {canceledReads} canceled reads, {tokenCancels} token cancels");
    }

    [Theory]
    [MemberData(nameof(SocketEngines))]
    public async Task Flush_StreamWithCancelsRacingTheEdges_LosesAndRepeatsNothing(TransportKind kind)
    {
        // The writer's side of the same: flushes to a slow peer, cut short by tokens and CancelPendingFlush from
        // another thread; every byte written goes out once, in order, then the FIN.
        const int total = 8 * 1024 * 1024;
        await using var peer = await RawPeer.ConnectAsync(kind, new CountingMemoryPool());
        var output = peer.Server.Transport.Output;
        var received = peer.ReceiveAsync(total + 1, slowly: true); // +1: it must end at the FIN, short by one

        using var stop = new CancellationTokenSource();
        var canceller = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                output.CancelPendingFlush();
                await Task.Delay(1);
            }
        });
        var rng = new Random(3);
        long offset = 0;
        int canceled = 0, tokenCancels = 0;
        while (offset < total)
        {
            int size = (int)Math.Min(rng.Next(1, 40_000), total - offset);
            var memory = output.GetMemory(Math.Min(size, 8192));
            size = Math.Min(size, memory.Length);
            FillPattern(memory.Span[..size], offset);
            output.Advance(size);
            offset += size;
            if (rng.Next(4) != 0)
            {
                continue; // several writes per flush
            }
            using var cts = new CancellationTokenSource();
            cts.CancelAfter(rng.Next(0, 3));
            try
            {
                var result = await output.FlushAsync(cts.Token).AsTask().WaitAsync(Timeouts.Default);
                Assert.False(result.IsCompleted);
                canceled += result.IsCanceled ? 1 : 0;
            }
            catch (OperationCanceledException)
            {
                tokenCancels++;
            }
        }
        stop.Cancel();
        await canceller.WaitAsync(Timeouts.Default);
        await output.FlushAsync().AsTask().WaitAsync(Timeouts.Default);
        await output.CompleteAsync();

        Assert.Equal(total, await received.WaitAsync(Timeouts.Default));
        Assert.True(canceled + tokenCancels > 0, "no flush was cut short: the races did not happen");
    }

    // ---- helpers ------------------------------------------------------------------------------------------------

    /// <summary>Byte n of the stream is (n mod 251): a lost, repeated or reordered byte shows wherever it is.</summary>
    private static byte[] Pattern(long start, int length)
    {
        var bytes = new byte[length];
        FillPattern(bytes, start);
        return bytes;
    }

    private static void FillPattern(Span<byte> span, long start)
    {
        for (int i = 0; i < span.Length; i++)
        {
            span[i] = (byte)((start + i) % 251);
        }
    }

    /// <summary>An accepted transport connection whose peer is a plain socket with a small, fixed receive buffer.</summary>
    private sealed class RawPeer : IAsyncDisposable
    {
        private readonly IConnectionListener _listener;
        private long _offset;

        private RawPeer(IConnectionListener listener, Socket socket, ConnectionContext server)
        {
            _listener = listener;
            Socket = socket;
            Server = server;
        }

        public Socket Socket { get; }

        public ConnectionContext Server { get; }

        public static async Task<RawPeer> ConnectAsync(TransportKind kind, CountingMemoryPool pool)
        {
            var listener = ConnectionTransport.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0), Engines.With(kind, new SocketTransportOptions { MemoryPool = pool }));
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 64 * 1024 };
            var accept = listener.AcceptAsync().AsTask();
            await socket.ConnectAsync(listener.EndPoint).WaitAsync(Timeouts.Default);
            var server = (await accept.WaitAsync(Timeouts.Default))!;
            return new RawPeer(listener, socket, server);
        }

        /// <summary>Receives <paramref name="count"/> bytes, checking the pattern; returns how many came (fewer: EOF).</summary>
        public async Task<long> ReceiveAsync(long count, bool slowly, long? startOffset = null, bool verify = true)
        {
            if (startOffset is { } start)
            {
                _offset = start;
            }
            var buffer = new byte[16 * 1024];
            long received = 0;
            int reads = 0;
            while (received < count)
            {
                int n = await Socket.ReceiveAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count - received))).AsTask().WaitAsync(Timeouts.Default);
                if (n == 0)
                {
                    break;
                }
                if (verify)
                {
                    for (int i = 0; i < n; i++)
                    {
                        if (buffer[i] != (byte)((_offset + i) % 251))
                        {
                            Assert.Fail($"byte {_offset + i} is {buffer[i]}, expected {(_offset + i) % 251}");
                        }
                    }
                }
                _offset += n;
                received += n;
                if (slowly && ++reads % 64 == 0)
                {
                    await Task.Delay(1); // slower than the writer: its flushes keep meeting a full socket
                }
            }
            return received;
        }

        public async Task ExpectEofAsync()
        {
            var one = new byte[1];
            Assert.Equal(0, await Socket.ReceiveAsync(one.AsMemory()).AsTask().WaitAsync(Timeouts.Default));
        }

        public async ValueTask DisposeAsync()
        {
            Socket.Dispose();
            await Server.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);
            await _listener.DisposeAsync();
        }
    }
}
