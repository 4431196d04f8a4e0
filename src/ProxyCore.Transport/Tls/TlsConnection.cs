using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace ProxyCore.Transport.Tls;

/// <summary>
/// A connection with TLS between its transport and the app: an <see cref="SslStream"/> over the inner
/// connection's pipes, and two pumps that present the plaintext as pipes again, the same way the socket
/// connection presents the socket (receive pump fills <see cref="Transport"/>.Input, send pump drains .Output).
/// </summary>
/// <remarks>
/// Idle memory ("rent late"): the receive pump first makes a zero-byte read on the SslStream, which in
/// turn makes a zero-byte read on the inner pipe, which the socket connection serves with a zero-byte
/// receive. So an idle TLS connection holds no pipe block on either layer and SslStream returns its
/// record buffer to the pool once it is drained. What stays is the TLS session itself (OpenSSL's SSL
/// object and SslStream's state), a few KB that no API lets us release while the connection lives.
/// Each record costs one copy more than plaintext (inner pipe → SslStream buffer, decrypted in place →
/// our pipe); that is the price of keeping one transport abstraction under TLS.
/// </remarks>
internal sealed class TlsConnection : ConnectionContext
{
    /// <summary>Largest TLS record payload (RFC 8446 §5.1): the most one gathered write should put in one record.</summary>
    private const int MaxRecordPayload = 16 * 1024;

    private readonly ConnectionContext _inner;
    private readonly SslStream _ssl;
    private readonly Pipe _input;   // receive pump → app
    private readonly Pipe _output;  // app → send pump
    private readonly IDuplexPipe _originalTransport;
    private Task _receiveTask = Task.CompletedTask;
    private Task<bool> _sendTask = Task.FromResult(false);
    private string? _negotiatedProtocol;
    private int _aborted;
    private int _disposed;

    private TlsConnection(ConnectionContext inner, SocketPipeSettings settings)
    {
        _inner = inner;
        _ssl = new SslStream(new DuplexPipeStream(inner.Transport), leaveInnerStreamOpen: true);
        _input = new Pipe(settings.Input);
        _output = new Pipe(settings.Output);
        _originalTransport = new DuplexPipe(_input.Reader, _output.Writer);
        Transport = _originalTransport;
    }

    public override string ConnectionId => _inner.ConnectionId;

    public override IDuplexPipe Transport { get; set; }

    public override EndPoint? LocalEndPoint => _inner.LocalEndPoint;

    public override EndPoint? RemoteEndPoint => _inner.RemoteEndPoint;

    public override CancellationToken ConnectionClosed => _inner.ConnectionClosed;

    internal override bool TrySetCloseCallback(Action<object?> callback, object? state) => _inner.TrySetCloseCallback(callback, state);

    internal override void ClearCloseCallback() => _inner.ClearCloseCallback();

    public override bool IsTls { get => true; set { } }

    /// <summary>"h2", "http/1.1" or another ALPN id the peer agreed to; null without ALPN.</summary>
    public override string? NegotiatedProtocol { get => _negotiatedProtocol; set => _negotiatedProtocol = value; }

    /// <summary>The TLS version agreed on.</summary>
    public SslProtocols SslProtocol => _ssl.SslProtocol;

    /// <summary>The certificate the peer presented (upstream side: the server's; client side: null unless asked for).</summary>
    public X509Certificate? RemoteCertificate => _ssl.RemoteCertificate;

    /// <summary>The certificate we presented (server side).</summary>
    public X509Certificate? LocalCertificate => _ssl.LocalCertificate;

    /// <summary>
    /// Runs the server handshake on <paramref name="inner"/>; <paramref name="select"/> picks the options
    /// (certificate, ALPN ids) from the ClientHello's SNI. On failure the caller aborts <paramref name="inner"/>.
    /// </summary>
    public static async Task<TlsConnection> AuthenticateAsServerAsync(ConnectionContext inner, ServerOptionsSelectionCallback select, object? state,
        SocketPipeSettings settings, CancellationToken cancellationToken)
    {
        var connection = new TlsConnection(inner, settings);
        try
        {
            await connection._ssl.AuthenticateAsServerAsync(select, state, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await connection._ssl.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        connection.Start();
        return connection;
    }

    /// <summary>Runs the client handshake on <paramref name="inner"/> (an upstream connection).</summary>
    public static async Task<TlsConnection> AuthenticateAsClientAsync(ConnectionContext inner, SslClientAuthenticationOptions options,
        SocketPipeSettings settings, CancellationToken cancellationToken)
    {
        var connection = new TlsConnection(inner, settings);
        try
        {
            await connection._ssl.AuthenticateAsClientAsync(options, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await connection._ssl.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        connection.Start();
        return connection;
    }

    private void Start()
    {
        _negotiatedProtocol = ProtocolName(_ssl.NegotiatedApplicationProtocol);
        _receiveTask = ReceiveLoopAsync();
        _sendTask = SendLoopAsync();
    }

    /// <summary>The well-known ids as interned strings, so the common cases allocate nothing.</summary>
    internal static string? ProtocolName(SslApplicationProtocol protocol)
    {
        if (protocol.Protocol.IsEmpty)
        {
            return null;
        }
        if (protocol == SslApplicationProtocol.Http2)
        {
            return "h2";
        }
        if (protocol == SslApplicationProtocol.Http11)
        {
            return "http/1.1";
        }
        return protocol.ToString();
    }

    public override void Abort(Exception? reason = null)
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return;
        }
        _output.Reader.CancelPendingRead();
        _inner.Abort(reason);
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _originalTransport.Input.Complete();
        _originalTransport.Output.Complete();

        // The send pump encrypts what the app wrote; then close_notify (RFC 8446 §6.1) tells the peer
        // the data ended here and was not cut. Both go into the inner pipe, whose dispose sends the FIN.
        bool sent = await _sendTask.ConfigureAwait(false);
        if (sent && Volatile.Read(ref _aborted) == 0)
        {
            try
            {
                await _ssl.ShutdownAsync().ConfigureAwait(false);
            }
            catch (Exception)
            {
                // The peer is gone: there is nobody to tell.
            }
        }

        // Stop the receive pump before the inner connection completes the pipe it reads.
        _inner.Transport.Input.CancelPendingRead();
        await _receiveTask.ConfigureAwait(false);
        await _ssl.DisposeAsync().ConfigureAwait(false);
        await _inner.DisposeAsync().ConfigureAwait(false);
    }

    private async Task ReceiveLoopAsync()
    {
        Exception? error = null;
        var writer = _input.Writer;
        try
        {
            while (true)
            {
                // Zero-byte read: waits for a record without either layer holding a buffer (see remarks).
                await _ssl.ReadAsync(Memory<byte>.Empty).ConfigureAwait(false);

                var memory = writer.GetMemory(SocketTransportOptions.MinimumSegmentSize);
                int received = await _ssl.ReadAsync(memory).ConfigureAwait(false);
                if (received == 0)
                {
                    break; // close_notify or FIN: the peer will send nothing more.
                }
                writer.Advance(received);
                var flush = await writer.FlushAsync().ConfigureAwait(false);
                if (flush.IsCompleted || flush.IsCanceled)
                {
                    break; // The app completed Input.
                }
            }
        }
        catch (Exception ex)
        {
            error = MapError(ex);
        }
        finally
        {
            writer.Complete(error);
        }
    }

    /// <returns>True when everything the app wrote was handed to TLS (so close_notify may follow).</returns>
    private async Task<bool> SendLoopAsync()
    {
        Exception? error = null;
        var reader = _output.Reader;
        try
        {
            while (true)
            {
                ReadResult result;
                try
                {
                    result = await reader.ReadAsync().ConfigureAwait(false);
                }
                catch (Exception appError)
                {
                    // The app completed Output with an error: a cut response must not look complete.
                    Abort(appError);
                    return false;
                }
                if (result.IsCanceled)
                {
                    return false; // Abort.
                }

                var buffer = result.Buffer;
                if (buffer.IsSingleSegment)
                {
                    if (!buffer.IsEmpty)
                    {
                        await _ssl.WriteAsync(buffer.First).ConfigureAwait(false);
                    }
                }
                else
                {
                    // A head and a body chunk usually sit in separate segments: gathered, they go out as one
                    // record and one send instead of one each. Rented per flush, so an idle connection holds none.
                    var gather = ArrayPool<byte>.Shared.Rent(MaxRecordPayload);
                    try
                    {
                        await WriteGatheredAsync(buffer, gather).ConfigureAwait(false);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(gather);
                    }
                }
                reader.AdvanceTo(buffer.End);
                if (result.IsCompleted)
                {
                    return true;
                }
            }
        }
        catch (Exception ex)
        {
            error = MapError(ex);
            return false;
        }
        finally
        {
            reader.Complete(error);
        }
    }

    private async ValueTask WriteGatheredAsync(ReadOnlySequence<byte> buffer, byte[] gather)
    {
        int filled = 0;
        foreach (var segment in buffer)
        {
            var rest = segment;
            while (!rest.IsEmpty)
            {
                if (filled == 0 && rest.Length >= MaxRecordPayload)
                {
                    await _ssl.WriteAsync(rest).ConfigureAwait(false); // already record-sized: no copy
                    break;
                }
                int n = Math.Min(rest.Length, MaxRecordPayload - filled);
                rest.Span[..n].CopyTo(gather.AsSpan(filled));
                filled += n;
                rest = rest[n..];
                if (filled == MaxRecordPayload)
                {
                    await _ssl.WriteAsync(gather.AsMemory(0, filled)).ConfigureAwait(false);
                    filled = 0;
                }
            }
        }
        if (filled > 0)
        {
            await _ssl.WriteAsync(gather.AsMemory(0, filled)).ConfigureAwait(false);
        }
    }

    private Exception MapError(Exception ex)
    {
        if (Volatile.Read(ref _aborted) != 0)
        {
            return new ConnectionAbortedException("The connection was aborted.", ex);
        }
        return ex switch
        {
            ConnectionResetException or ConnectionAbortedException => ex,
            IOException { InnerException: ConnectionResetException or ConnectionAbortedException } io => io.InnerException!,
            OperationCanceledException => new ConnectionAbortedException(ex.Message, ex),
            // A bad record, a MAC failure or an unexpected alert: the peer broke the TLS stream.
            IOException or AuthenticationException => new ConnectionResetException(ex.Message, ex),
            _ => ex,
        };
    }
}
