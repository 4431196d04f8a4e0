namespace ProxyCore.Http.Http1;

/// <summary>Outcome of parsing a head.</summary>
public enum Http1ParseResult : byte
{
    /// <summary>More bytes are needed; nothing was consumed.</summary>
    Incomplete,
    /// <summary>The head was parsed; <c>consumed</c> is just after its empty line.</summary>
    Complete,
    /// <summary>The message is malformed or over a limit; the connection must be closed after answering.</summary>
    Error,
}

/// <summary>Outcome of one <see cref="ChunkedDecoder.Read"/> call.</summary>
public enum ChunkedReadResult : byte
{
    /// <summary>Payload bytes are available in <c>data</c>; forward them, advance to <c>consumed</c>, call again.</summary>
    Data,
    /// <summary>More bytes are needed; framing up to <c>consumed</c> was used.</summary>
    Incomplete,
    /// <summary>The last chunk and the trailer section were read; the body is over.</summary>
    Complete,
    /// <summary>The chunked framing is malformed or over a limit.</summary>
    Error,
}
