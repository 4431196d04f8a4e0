using System.Buffers;
using ProxyCore.Http.Http1;

namespace ProxyCore.Http.Tests.Http1;

/// <summary>
/// Plays the connection loop for <see cref="ChunkedDecoder"/>: input arrives in pieces, the
/// decoder sees everything not yet consumed (as one or several segments), payload is collected.
/// </summary>
internal static class ChunkedDriver
{
    public sealed record Outcome(ChunkedReadResult Result, HttpParseError Error, byte[] Body, int Consumed, int DataCalls);

    /// <summary>Feeds <paramref name="input"/> in pieces ending at <paramref name="cuts"/> (then the rest).</summary>
    public static Outcome Run(byte[] input, int[] cuts, HttpHead? trailers, Http1Limits? limits = null, bool segmentPerPiece = true)
    {
        limits ??= Http1Limits.Default;
        var decoder = new ChunkedDecoder();
        var body = new List<byte>();
        int start = 0;          // first byte not consumed yet
        int dataCalls = 0;
        var pieceEnds = cuts.Where(c => c > 0 && c < input.Length).Distinct().Order().Append(input.Length).ToArray();
        int available = 0;
        foreach (int end in pieceEnds)
        {
            available = end;
            while (true)
            {
                // The pending bytes: one segment per received piece (as a pipe would hold them) or one.
                var pending = segmentPerPiece ? Segments(input, start, available, pieceEnds) : new ReadOnlySequence<byte>(input, start, available - start);
                var result = decoder.Read(pending, trailers, limits, out var data, out var consumed, out var error);
                int used = (int)pending.Slice(pending.Start, consumed).Length;
                switch (result)
                {
                    case ChunkedReadResult.Data:
                        Assert.False(data.IsEmpty);
                        Assert.Equal(consumed, data.End);
                        body.AddRange(data.ToArray());
                        dataCalls++;
                        start += used;
                        continue;
                    case ChunkedReadResult.Incomplete:
                        start += used;
                        break;
                    case ChunkedReadResult.Complete:
                        return new Outcome(result, error, body.ToArray(), start + used, dataCalls);
                    default:
                        return new Outcome(result, error, body.ToArray(), start, dataCalls);
                }
                break;
            }
        }
        return new Outcome(ChunkedReadResult.Incomplete, HttpParseError.None, body.ToArray(), start, dataCalls);
    }

    private static ReadOnlySequence<byte> Segments(byte[] input, int start, int end, int[] pieceEnds)
    {
        var cuts = pieceEnds.Where(c => c > start && c < end).Select(c => c - start).ToArray();
        return TestBuffers.Split(input.AsSpan(start, end - start).ToArray(), cuts);
    }
}
