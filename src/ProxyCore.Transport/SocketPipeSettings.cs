using System.Buffers;
using System.IO.Pipelines;

namespace ProxyCore.Transport;

/// <summary>
/// The two <see cref="PipeOptions"/> every socket connection of one listener or factory uses, built once
/// from <see cref="SocketTransportOptions"/> so that accepting or dialling does not rebuild them (sockets engine
/// and TLS; the epoll engine, which has no pipes, takes only <see cref="Options"/> and <see cref="Pool"/>).
/// </summary>
internal sealed class SocketPipeSettings
{
    public SocketPipeSettings(SocketTransportOptions options)
    {
        Options = options;
        var pool = Pool = options.MemoryPool ?? BlockMemoryPool.Shared;
        var appScheduler = options.InlineCompletions ? PipeScheduler.Inline : PipeScheduler.ThreadPool;

        // Input: the receive loop writes, the app reads. The receive loop's own continuation (resuming
        // after backpressure) runs inline in the app's AdvanceTo: it only re-arms a receive, so a hop to
        // the thread pool would cost more than it saves.
        Input = new PipeOptions(
            pool,
            readerScheduler: appScheduler,
            writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: options.MaxReadBufferSize,
            resumeWriterThreshold: options.MaxReadBufferSize / 2,
            minimumSegmentSize: SocketTransportOptions.MinimumSegmentSize,
            useSynchronizationContext: false);

        // Output: the app writes, the send loop reads. The send loop runs inline in the app's FlushAsync,
        // so a flush becomes one send syscall on the flushing thread, with no hop. Kestrel instead queues
        // sends to its own I/O threads to batch them; a proxy flushes whole heads and body chunks, so there
        // is little to batch and the hop is pure cost.
        Output = new PipeOptions(
            pool,
            readerScheduler: PipeScheduler.Inline,
            writerScheduler: appScheduler,
            pauseWriterThreshold: options.MaxWriteBufferSize,
            resumeWriterThreshold: options.MaxWriteBufferSize / 2,
            minimumSegmentSize: SocketTransportOptions.MinimumSegmentSize,
            useSynchronizationContext: false);
    }

    public SocketTransportOptions Options { get; }

    /// <summary>Where buffers come from (the epoll engine's reader and writer take them straight from here).</summary>
    public MemoryPool<byte> Pool { get; }

    public PipeOptions Input { get; }

    public PipeOptions Output { get; }
}
