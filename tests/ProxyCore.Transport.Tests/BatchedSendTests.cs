using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using ProxyCore.Transport.Epoll;

namespace ProxyCore.Transport.Tests;

/// <summary>
/// The epoll engine's batched sends (<see cref="SocketTransportOptions.BatchSends"/>): a flush on the connection's own
/// reactor thread completes at once and its bytes leave at the end of the reactor's batch. Whatever the batching does,
/// the peer must get every byte, in order: when the app hops to another thread between writes, and when the peer
/// stops reading so that batched bytes find the socket full. Each test also runs with batching off, as the reference.
/// </summary>
public class BatchedSendTests
{
    public static TheoryData<bool> Batching => [true, false];

    private static SocketTransportOptions Options(bool batch) => new() { BatchSends = batch };

    [Theory]
    [MemberData(nameof(Batching))]
    public async Task FlushOnReactor_ThenWritesFromThreadPool_PeerGetsEveryByteInOrder(bool batch)
    {
        const int Rounds = 300;
        await using var pair = TransportPair.Create(TransportKind.Epoll, Options(batch));
        var (client, server) = await pair.ConnectAsync();
        await using var disposeClient = client;
        await using var disposeServer = server;
        int onReactor = 0;

        // The server answers each request byte with two numbered records: the first flushed where the read resumed (the
        // reactor thread, so batched), the second after a hop to the thread pool, which must take the batched bytes
        // back (or wait while the reactor sends them) before it writes.
        var serving = Task.Run(async () =>
        {
            var input = server.Transport.Input;
            var output = server.Transport.Output;
            int record = 0;
            while (record < 2 * Rounds)
            {
                var result = await input.ReadAsync().ConfigureAwait(false);
                if (EpollReactor.Current is not null)
                {
                    onReactor++;
                }
                long requests = result.Buffer.Length;
                input.AdvanceTo(result.Buffer.End);
                Assert.False(result.IsCompleted && requests == 0, "the client closed early");
                for (long i = 0; i < requests; i++)
                {
                    WriteRecord(output, record++);
                    await output.FlushAsync().ConfigureAwait(false);
                    await Task.Yield(); // off the reactor: a thread-pool thread writes the next record
                    WriteRecord(output, record++);
                    await output.FlushAsync().ConfigureAwait(false);
                }
            }
        });

        for (int round = 0; round < Rounds; round++)
        {
            await client.Transport.Output.WriteAndFlushAsync([(byte)'r']);
            var records = await client.Transport.Input.ReadExactlyAsync(2 * RecordSize);
            AssertRecord(records, 2 * round);
            AssertRecord(records.AsSpan(RecordSize), 2 * round + 1);
        }
        await serving.WaitAsync(Timeouts.Default);

        // The premise: reads that parked resumed on the reactor, where flushes batch.
        Assert.True(onReactor > 0, "no read resumed on the reactor thread");
    }

    [Theory]
    [MemberData(nameof(Batching))]
    public async Task BatchedSendFindsSocketFull_PeerThenReads_EveryByteArrivesInOrder(bool batch)
    {
        // 60 KiB answers (under the 64 KiB batch bound) to single-byte requests while the client does not read, until
        // the socket is full: with batching, a batch end's send then leaves bytes behind, which only the writable edge
        // can send (the app is parked on its next read). Without batching, the answer's own flush waits.
        const int Block = 60 * 1024, MaxRequests = 1024; // 60 MiB: far more than a loopback socket's kernel buffers
        await using var pair = TransportPair.Create(TransportKind.Epoll, Options(batch));
        var (client, server) = await pair.ConnectAsync();
        await using var disposeClient = client;
        await using var disposeServer = server;
        var epoll = (EpollConnection)server;
        int answered = 0;

        var serving = Task.Run(async () =>
        {
            var input = server.Transport.Input;
            var output = server.Transport.Output;
            while (true)
            {
                var result = await input.ReadAsync().ConfigureAwait(false);
                long requests = result.Buffer.Length;
                input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
                for (long i = 0; i < requests; i++)
                {
                    int n = Volatile.Read(ref answered);
                    var span = output.GetSpan(Block)[..Block];
                    for (int offset = 0; offset < Block; offset += 4)
                    {
                        BinaryPrimitives.WriteInt32LittleEndian(span[offset..], (n * Block) + offset);
                    }
                    output.Advance(Block);
                    await output.FlushAsync().ConfigureAwait(false);
                    Volatile.Write(ref answered, n + 1);
                }
            }
        });

        // One request at a time, each answered before the next, until an answer is stuck: a batch end left bytes
        // behind (batching), or the answer's flush waits (no batching, or a flush after a stuck batch).
        int sent = 0;
        bool batchStuck = false;
        while (sent < MaxRequests && !batchStuck)
        {
            await client.Transport.Output.WriteAndFlushAsync([(byte)'r']);
            sent++;
            var deadline = DateTime.UtcNow + TimeSpan.FromMilliseconds(500);
            while (Volatile.Read(ref answered) < sent && DateTime.UtcNow < deadline)
            {
                await Task.Delay(1);
            }
            if (Volatile.Read(ref answered) < sent)
            {
                break; // the flush waits for the client to read
            }
            for (int i = 0; i < 10 && !(batchStuck = epoll.BatchBlocked); i++)
            {
                await Task.Delay(2); // the batch end runs just after the flush returned
            }
        }
        Assert.True(sent < MaxRequests, "the socket never filled");
        if (batch)
        {
            Assert.True(batchStuck, "no batched send found the socket full");
        }

        var input = client.Transport.Input;
        long received = 0, expected = (long)sent * Block;
        while (received < expected)
        {
            var result = await input.ReadAsync().AsTask().WaitAsync(Timeouts.Default);
            var buffer = result.Buffer;
            long whole = Math.Min(buffer.Length - (buffer.Length % 4), expected - received);
            var bytes = buffer.Slice(0, whole).ToArray();
            for (int offset = 0; offset < bytes.Length; offset += 4)
            {
                int value = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(offset));
                if (value != received + offset)
                {
                    Assert.Fail($"at byte {received + offset}: found the word of byte {value}");
                }
            }
            received += whole;
            input.AdvanceTo(buffer.GetPosition(whole), buffer.End);
            Assert.False(result.IsCompleted && received < expected, $"the stream ended after {received} of {expected} bytes");
        }
        var settled = DateTime.UtcNow + Timeouts.Default; // a flush that waited returns just after the last byte left
        while (Volatile.Read(ref answered) < sent && DateTime.UtcNow < settled)
        {
            await Task.Delay(1);
        }
        Assert.Equal(sent, Volatile.Read(ref answered));
        client.Transport.Output.Complete();
        await serving.WaitAsync(Timeouts.Default);
    }

    private const int RecordSize = 64;

    private static void WriteRecord(PipeWriter output, int number)
    {
        var span = output.GetSpan(RecordSize)[..RecordSize];
        span.Fill((byte)number);
        BinaryPrimitives.WriteInt32LittleEndian(span, number);
        output.Advance(RecordSize);
    }

    private static void AssertRecord(ReadOnlySpan<byte> bytes, int number)
    {
        Assert.Equal(number, BinaryPrimitives.ReadInt32LittleEndian(bytes));
        for (int i = 4; i < RecordSize; i++)
        {
            Assert.Equal((byte)number, bytes[i]);
        }
    }
}
