using System.Buffers;
using System.Text;
using ProxyCore.Llm.Sse;

namespace ProxyCore.Llm.Tests.Sse;

/// <summary>Ways to hand a body to a reader, and a readable record of what it dispatched.</summary>
internal static class SseTestInput
{
    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }

    /// <summary>One sequence whose segments are cut at <paramref name="cuts"/> (ascending), each piece in its own array.</summary>
    public static ReadOnlySequence<byte> Segmented(byte[] data, params int[] cuts)
    {
        int previous = 0;
        Segment? first = null;
        Segment? last = null;
        foreach (int cut in cuts.Append(data.Length))
        {
            var piece = data.AsSpan(previous, cut - previous).ToArray();
            if (first is null)
            {
                first = last = new Segment(piece, 0);
            }
            else
            {
                last = last!.Append(piece);
            }
            previous = cut;
        }
        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    /// <summary>Copies of the pieces, so a reader that kept a reference to an earlier chunk would read garbage.</summary>
    public static IEnumerable<byte[]> Chunks(byte[] data, params int[] cuts)
    {
        int previous = 0;
        foreach (int cut in cuts.Append(data.Length))
        {
            yield return data.AsSpan(previous, cut - previous).ToArray();
            previous = cut;
        }
    }

    public static string Escape(ReadOnlySpan<byte> bytes) =>
        Encoding.UTF8.GetString(bytes).Replace("\\", "\\\\").Replace("\r", "\\r").Replace("\n", "\\n");
}

/// <summary>Records each event as <c>type|data|id|retry</c> (CR and LF escaped).</summary>
internal struct EventRecorder : ISseEventHandler
{
    public List<string> Events;

    public EventRecorder() => Events = [];

    public readonly void OnEvent(in SseEvent sseEvent) =>
        Events.Add($"{SseTestInput.Escape(sseEvent.Type)}|{SseTestInput.Escape(sseEvent.Data)}|{SseTestInput.Escape(sseEvent.LastEventId)}|{sseEvent.Retry}");

    /// <summary>Reads <paramref name="chunks"/> one call each; returns the events and the last status.</summary>
    public static (List<string> Events, SseReadStatus Status, bool Pending) Read(IEnumerable<byte[]> chunks, int maxEventBytes = SseReader.DefaultMaxEventBytes)
    {
        var reader = new SseReader(maxEventBytes);
        var recorder = new EventRecorder();
        var status = SseReadStatus.Ok;
        foreach (var chunk in chunks)
        {
            status = reader.Read(chunk.AsSpan(), ref recorder);
            if (status != SseReadStatus.Ok)
            {
                break;
            }
        }
        return (recorder.Events, status, reader.HasPendingEvent);
    }
}
