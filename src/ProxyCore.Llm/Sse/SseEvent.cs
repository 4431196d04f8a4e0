namespace ProxyCore.Llm.Sse;

/// <summary>
/// One dispatched event, as a view over the bytes the reader was handed (or, for an event that
/// spanned chunks or had several <c>data</c> lines, over the reader's own buffer). Valid only during
/// the <see cref="ISseEventHandler.OnEvent"/> call: copy what must outlive it.
/// </summary>
public readonly ref struct SseEvent
{
    /// <summary>The type an event has when it carries no <c>event</c> field (WHATWG HTML §9.2.6).</summary>
    public static ReadOnlySpan<byte> DefaultType => "message"u8;

    internal SseEvent(ReadOnlySpan<byte> eventType, ReadOnlySpan<byte> data, ReadOnlySpan<byte> lastEventId, long retry)
    {
        EventType = eventType;
        Data = data;
        LastEventId = lastEventId;
        Retry = retry;
    }

    /// <summary>The value of the last <c>event</c> field of the event; empty when there was none.</summary>
    public ReadOnlySpan<byte> EventType { get; }

    /// <summary>The event's type: <see cref="EventType"/>, or <c>message</c> when that is empty.</summary>
    public ReadOnlySpan<byte> Type => EventType.IsEmpty ? DefaultType : EventType;

    /// <summary>The <c>data</c> lines joined with LF (no trailing LF). UTF-8 as sent: not validated.</summary>
    public ReadOnlySpan<byte> Data { get; }

    /// <summary>The last event ID buffer at dispatch: it persists across events until an <c>id</c> field changes it.</summary>
    public ReadOnlySpan<byte> LastEventId { get; }

    /// <summary>The reconnection time in milliseconds from a valid <c>retry</c> field of this event; -1 when none.</summary>
    public long Retry { get; }
}

/// <summary>
/// Receives the events of an <see cref="SseReader"/>. Implement it on a struct (or ref struct) and pass
/// it by reference, so the call is direct and inlinable.
/// </summary>
public interface ISseEventHandler
{
    void OnEvent(in SseEvent sseEvent);
}

/// <summary>What a call to <see cref="SseReader.Read{THandler}(ReadOnlySpan{byte}, ref THandler)"/> found.</summary>
public enum SseReadStatus : byte
{
    /// <summary>Every byte was taken in: complete events were dispatched, the rest is held for the next chunk.</summary>
    Ok,

    /// <summary>
    /// An event grew past <see cref="SseReader.MaxEventBytes"/> before its blank line. The reader stops
    /// (every later call returns this again until <see cref="SseReader.Reset"/>); the bytes themselves
    /// are the caller's and may still be forwarded unobserved.
    /// </summary>
    EventTooLarge,
}
