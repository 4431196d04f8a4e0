namespace ProxyCore.Transport;

/// <summary>The peer reset the connection (an RST, or the pipe's other side aborted). Not our side's fault.</summary>
public sealed class ConnectionResetException : IOException
{
    public ConnectionResetException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>This side aborted the connection (<see cref="ConnectionContext.Abort"/>); reads and writes stop.</summary>
public sealed class ConnectionAbortedException : OperationCanceledException
{
    public ConnectionAbortedException(string message = "The connection was aborted.", Exception? inner = null)
        : base(message, inner) { }
}

/// <summary>Binding failed because another socket already listens on the address.</summary>
public sealed class AddressInUseException : IOException
{
    public AddressInUseException(string message, Exception? inner = null) : base(message, inner) { }
}
