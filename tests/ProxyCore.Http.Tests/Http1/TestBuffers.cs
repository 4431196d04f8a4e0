using System.Buffers;
using System.Text;
using ProxyCore.Http.Http1;

namespace ProxyCore.Http.Tests.Http1;

/// <summary>Builds single- and multi-segment inputs and readable snapshots of parse results.</summary>
internal static class TestBuffers
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

    /// <summary>Latin-1 bytes of a test string, so "\x80"-style escapes map to single bytes.</summary>
    public static byte[] Bytes(string s) => Encoding.Latin1.GetBytes(s);

    public static string Text(ReadOnlySpan<byte> bytes) => Encoding.Latin1.GetString(bytes);

    /// <summary>One segment (the fast path).</summary>
    public static ReadOnlySequence<byte> Single(byte[] data) => new(data);

    /// <summary>Segments cut at the given offsets (each cut in ascending order; 0 and Length give empty segments).</summary>
    public static ReadOnlySequence<byte> Split(byte[] data, params int[] cuts)
    {
        int previous = 0;
        Segment? first = null;
        Segment? last = null;
        foreach (int cut in cuts.Append(data.Length))
        {
            // Copy each piece into its own array so a parser cannot read past a segment by accident.
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

    /// <summary>Every byte in its own segment.</summary>
    public static ReadOnlySequence<byte> Bytewise(byte[] data)
    {
        if (data.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }
        return Split(data, Enumerable.Range(1, data.Length - 1).ToArray());
    }

    public static long Offset(in ReadOnlySequence<byte> buffer, SequencePosition position) =>
        buffer.Slice(buffer.Start, position).Length;

    /// <summary>A one-line snapshot of everything the request parser sets, for equality across splits.</summary>
    public static string Describe(RequestHead head)
    {
        var sb = new StringBuilder();
        sb.Append(head.Method).Append(' ').Append(Text(head.MethodSpan))
          .Append(" form=").Append(head.TargetForm)
          .Append(" scheme=").Append(Text(head.Get(head.Scheme)))
          .Append(" authority=").Append(Text(head.AuthoritySpan))
          .Append(" path=").Append(Text(head.PathSpan))
          .Append(" query=").Append(Text(head.QuerySpan))
          .Append(" v=").Append(head.Version)
          .Append(" framing=").Append(head.Framing)
          .Append(" cl=").Append(head.ContentLength)
          .Append(" ka=").Append(head.KeepAlive)
          .Append(" expect=").Append(head.ExpectContinue)
          .Append(" upgrade=").Append(head.IsUpgrade);
        AppendHeaders(sb, head);
        return sb.ToString();
    }

    public static string Describe(ResponseHead head)
    {
        var sb = new StringBuilder();
        sb.Append(head.StatusCode).Append(" reason=").Append(Text(head.Get(head.Reason)))
          .Append(" v=").Append(head.Version)
          .Append(" framing=").Append(head.Framing)
          .Append(" cl=").Append(head.ContentLength)
          .Append(" ka=").Append(head.KeepAlive);
        AppendHeaders(sb, head);
        return sb.ToString();
    }

    private static void AppendHeaders(StringBuilder sb, HttpHead head)
    {
        for (int i = 0; i < head.HeaderCount; i++)
        {
            sb.Append(" [").Append(Text(head.GetName(i))).Append('=').Append(Text(head.GetValue(i)))
              .Append('/').Append(head.Headers[i].Id).Append(']');
        }
    }

    public static (Http1ParseResult Result, HttpParseError Error, long Consumed, RequestHead Head) ParseRequest(
        in ReadOnlySequence<byte> buffer, Http1Limits? limits = null)
    {
        var head = new RequestHead();
        head.Reset();
        var result = Http1Parser.TryParseRequest(buffer, head, limits ?? Http1Limits.Default, out var consumed, out var error);
        return (result, error, Offset(buffer, consumed), head);
    }

    public static (Http1ParseResult Result, HttpParseError Error, long Consumed, ResponseHead Head) ParseResponse(
        in ReadOnlySequence<byte> buffer, HttpMethod requestMethod = HttpMethod.Get, Http1Limits? limits = null)
    {
        var head = new ResponseHead();
        head.Reset();
        var result = Http1Parser.TryParseResponse(buffer, head, requestMethod, limits ?? Http1Limits.Default, out var consumed, out var error);
        return (result, error, Offset(buffer, consumed), head);
    }
}
