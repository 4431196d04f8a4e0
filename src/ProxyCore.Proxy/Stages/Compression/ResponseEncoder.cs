using System.Buffers;
using System.Diagnostics;
using System.IO.Compression;

namespace ProxyCore.Proxy.Stages.Compression;

/// <summary>
/// Compresses one response body as it streams: each upstream read goes in, and what comes out is
/// flushed (gzip Z_SYNC_FLUSH, Brotli BROTLI_OPERATION_FLUSH) so the client can decode everything the
/// upstream has sent so far: a slow stream (SSE, NDJSON) is never held back waiting for more input.
/// One per client connection, reused across its responses.
/// </summary>
/// <remarks>
/// Cost, honestly: the output buffer is rented from the shared pool and the Brotli encoder is a
/// struct, but the codec state is native and cannot be reset for reuse through the .NET API: each
/// compressed response allocates a fresh one. Brotli at quality 1 with a 2^18 window holds ~0.5 MB
/// native at most and 32 B managed (its SafeHandle); zlib deflate (window 15, memLevel 8) holds
/// ~256 KB native plus 232 B of managed objects (GZipStream, DeflateStream, Deflater, handle) and an
/// 8 KB pooled buffer (measured in ResponseEncoderTests).
/// A route without `compression` never reaches this type.
/// </remarks>
internal sealed class ResponseEncoder
{
    /// <summary>2^18 = 256 KB: most of Brotli's gain on web payloads, a quarter of the memory of the 22 default.</summary>
    private const int BrotliWindowBits = 18;

    private readonly PooledSink _sink = new();
    private BrotliEncoder _brotli;
    private GZipStream? _gzip;

    public ContentCoding Coding { get; private set; }

    public void Start(ContentCoding coding, ResponseCompression settings)
    {
        Debug.Assert(Coding == ContentCoding.None, "Reset before starting again");
        Coding = coding;
        if (coding == ContentCoding.Brotli)
        {
            _brotli = new BrotliEncoder(settings.BrotliQuality, BrotliWindowBits);
        }
        else
        {
            _gzip = new GZipStream(_sink, settings.GzipLevel, leaveOpen: true);
        }
    }

    /// <summary>Compresses <paramref name="data"/> and flushes; the result is valid until the next call.</summary>
    public ReadOnlyMemory<byte> Encode(in ReadOnlySequence<byte> data)
    {
        _sink.Clear();
        if (Coding == ContentCoding.Brotli)
        {
            foreach (var segment in data)
            {
                BrotliWrite(segment.Span, final: false);
            }
            BrotliFlush();
        }
        else
        {
            foreach (var segment in data)
            {
                _gzip!.Write(segment.Span);
            }
            _gzip!.Flush();
        }
        return _sink.Written;
    }

    /// <summary>The end of the stream (the gzip trailer with CRC-32 and size, Brotli's last meta-block).</summary>
    public ReadOnlyMemory<byte> Finish()
    {
        _sink.Clear();
        if (Coding == ContentCoding.Brotli)
        {
            BrotliWrite([], final: true);
        }
        else
        {
            _gzip!.Dispose();
            _gzip = null;
        }
        return _sink.Written;
    }

    /// <summary>Frees the codec state and returns the buffer; safe to call at any point, and twice.</summary>
    public void Reset()
    {
        if (Coding == ContentCoding.Brotli)
        {
            _brotli.Dispose();
            _brotli = default;
        }
        else if (_gzip is not null)
        {
            try
            {
                _gzip.Dispose(); // writes its trailer into the sink, which is then dropped
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
            }
            _gzip = null;
        }
        Coding = ContentCoding.None;
        _sink.Release();
    }

    private void BrotliWrite(ReadOnlySpan<byte> source, bool final)
    {
        while (true)
        {
            var status = _brotli.Compress(source, _sink.GetSpan(Math.Max(4096, BrotliEncoder.GetMaxCompressedLength(Math.Min(source.Length, 64 * 1024)))),
                out int consumed, out int written, isFinalBlock: final);
            _sink.Advance(written);
            source = source[consumed..];
            if (status == OperationStatus.Done && source.IsEmpty)
            {
                return;
            }
            if (status is OperationStatus.InvalidData)
            {
                throw new InvalidOperationException("The Brotli encoder refused its input.");
            }
        }
    }

    private void BrotliFlush()
    {
        while (true)
        {
            var status = _brotli.Flush(_sink.GetSpan(4096), out int written);
            _sink.Advance(written);
            if (status == OperationStatus.Done)
            {
                return;
            }
            if (status is OperationStatus.InvalidData)
            {
                throw new InvalidOperationException("The Brotli encoder could not flush.");
            }
        }
    }

    /// <summary>A write-only stream over one pooled, growing buffer: where GZipStream puts its output.</summary>
    private sealed class PooledSink : Stream
    {
        private byte[] _buffer = [];
        private int _written;

        public ReadOnlyMemory<byte> Written => _buffer.AsMemory(0, _written);

        public void Clear() => _written = 0;

        public Span<byte> GetSpan(int sizeHint)
        {
            if (_buffer.Length - _written < sizeHint)
            {
                var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_written + sizeHint, Math.Max(16 * 1024, _buffer.Length * 2)));
                _buffer.AsSpan(0, _written).CopyTo(bigger);
                if (_buffer.Length > 0)
                {
                    ArrayPool<byte>.Shared.Return(_buffer);
                }
                _buffer = bigger;
            }
            return _buffer.AsSpan(_written);
        }

        public void Advance(int count) => _written += count;

        public void Release()
        {
            if (_buffer.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
            }
            _buffer = [];
            _written = 0;
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            buffer.CopyTo(GetSpan(buffer.Length));
            _written += buffer.Length;
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void WriteByte(byte value) => Write([value]);

        public override void Flush()
        {
        }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
