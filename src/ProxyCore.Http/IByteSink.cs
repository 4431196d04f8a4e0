namespace ProxyCore.Http;

/// <summary>
/// Where a field value is written piece by piece: the HTTP/1.1 head writer (straight into the pipe) or
/// an <see cref="HttpHead"/>'s arena (HTTP/2 field lists), so a value is built by one routine for both.
/// </summary>
public interface IByteSink
{
    void Write(scoped ReadOnlySpan<byte> bytes);
}

/// <summary>Appends to <see cref="Head"/>'s arena; the bytes written between two reads of ArenaUsed form one value.</summary>
public readonly struct ArenaSink(HttpHead head) : IByteSink
{
    public HttpHead Head { get; } = head;

    public void Write(scoped ReadOnlySpan<byte> bytes) => Head.Append(bytes);
}
