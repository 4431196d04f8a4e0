using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;

namespace ProxyCore.Transport.Tls;

/// <summary>
/// The connection's transport pipes as the <see cref="Stream"/> that <see cref="System.Net.Security.SslStream"/>
/// reads ciphertext from and writes it to. Two properties matter:
/// a zero-byte read waits for data without consuming it (SslStream issues one when its caller does and
/// it holds nothing buffered, so neither layer rents a buffer while the connection is idle), and a write
/// flushes at once (SslStream never calls Flush; one write is one TLS record or a handshake flight).
/// </summary>
internal sealed class DuplexPipeStream(IDuplexPipe pipe) : Stream
{
    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var input = pipe.Input;
        if (input.TryRead(out var result) && TryCopy(input, result, buffer, out int read))
        {
            return new ValueTask<int>(read);
        }
        return ReadSlowAsync(buffer, cancellationToken);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReadSlowAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var input = pipe.Input;
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (TryCopy(input, result, buffer, out int read))
            {
                return read;
            }
        }
    }

    // True with the read's outcome; false when the pipe had nothing yet (examined all: wait for more).
    private static bool TryCopy(PipeReader input, ReadResult result, Memory<byte> buffer, out int read)
    {
        var data = result.Buffer;
        if (result.IsCanceled)
        {
            // CancelPendingRead: the TLS connection is shutting its receive side down.
            input.AdvanceTo(data.Start);
            throw new OperationCanceledException("The TLS receive side was stopped.");
        }
        if (!data.IsEmpty)
        {
            if (buffer.IsEmpty)
            {
                // Zero-byte read: report that data is there, consume nothing.
                input.AdvanceTo(data.Start);
                read = 0;
                return true;
            }
            read = (int)Math.Min(data.Length, buffer.Length);
            var slice = data.Slice(0, read);
            slice.CopyTo(buffer.Span);
            input.AdvanceTo(slice.End);
            return true;
        }
        input.AdvanceTo(data.End);
        read = 0;
        return result.IsCompleted; // EOF
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var flush = pipe.Output.WriteAsync(buffer, cancellationToken);
        if (flush.IsCompletedSuccessfully)
        {
            Check(flush.Result);
            return default;
        }
        return AwaitFlushAsync(flush);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask AwaitFlushAsync(ValueTask<FlushResult> flush) => Check(await flush.ConfigureAwait(false));

    private static void Check(FlushResult result)
    {
        if (result.IsCanceled)
        {
            throw new OperationCanceledException("The TLS send side was stopped.");
        }
        if (result.IsCompleted)
        {
            // The transport stopped sending (peer gone or aborted): what SslStream writes would vanish.
            throw new ConnectionResetException("The connection was closed while TLS data was being sent.");
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    // SslStream's async API only uses the async members; the synchronous ones exist because Stream needs them.
    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
