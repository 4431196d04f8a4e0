using System.Text;
using ProxyCore.Http.Http1;
using static ProxyCore.Http.Tests.Http1.TestBuffers;

namespace ProxyCore.Http.Tests.Http1.Corpus;

/// <summary>
/// picohttpparser's vectors: 0 = complete, -1 = error, -2 = incomplete. picohttpparser is a
/// lenient parser (obs-fold, bare LF, any byte >= 0x80 in a target); where RFC 9112 makes us
/// differ, <see cref="Deviations"/> says what we return and why.
/// </summary>
public class PicoHttpParserTests
{
    public enum Outcome
    {
        Complete,
        Error,
        Incomplete,
    }

    private static readonly Dictionary<string, (Outcome Ours, string Why)> Deviations = new()
    {
        ["04 request: parse multiline"] = (Outcome.Error, "obs-fold: RFC 9112 §5.2, a server MUST reject it or replace it; we reject (400)"),
        ["37 response: parse multiline"] = (Outcome.Error, "obs-fold in a response: RFC 9112 §5.2 lets a proxy reject with 502; we do"),
        ["29 request: accept MSB chars"] = (Outcome.Error, "a byte >= 0x80 in the request-target: RFC 9112 §3.2 / RFC 3986 allow only ASCII there"),
        ["33 request: accept multiple spaces between tokens"] = (Outcome.Error,
            "RFC 9112 §3: the request-line is separated by single SPs; lenient splitting is what lets a proxy and a server disagree"),
        ["62 response: accept multiple spaces between tokens"] = (Outcome.Error, "RFC 9112 §4: status-line = HTTP-version SP status-code SP [reason]"),
        ["49 response: incomplete 11"] = (Outcome.Error, "a status line ended by a bare LF: RFC 9112 §2.2, we never take LF alone as a line end"),
        ["74 chunked_failure: test_chunked"] = (Outcome.Error,
            "chunk size 0xffffffffffffffff exceeds 2^63-1: RFC 9112 §7.1 asks recipients to guard against overflow; we reject at once"),
        ["88 chunked_consume_trailer: test_chunked_consume_trailer"] = (Outcome.Error, "bare LF ends the trailer section: RFC 9112 §2.2, CRLF only"),
        ["89 chunked_consume_trailer: test_chunked_consume_trailer"] = (Outcome.Error, "trailer lines ended by bare LF: RFC 9112 §2.2, CRLF only"),
    };

    public static TheoryData<string> Vectors()
    {
        var data = new TheoryData<string>();
        foreach (var id in PicoVectors.Ids)
        {
            data.Add(id);
        }
        return data;
    }

    private static Outcome Of(Http1ParseResult r) => r switch
    {
        Http1ParseResult.Complete => Outcome.Complete,
        Http1ParseResult.Error => Outcome.Error,
        _ => Outcome.Incomplete,
    };

    private static (Outcome Outcome, string Body) Run(PicoVector v)
    {
        switch (v.Kind)
        {
            case "request":
                return (Of(ParseRequest(Single(v.Input)).Result), "");
            case "response":
                return (Of(ParseResponse(Single(v.Input)).Result), "");
            case "headers":
                // A header block alone: behind a status line (no Host rule applies to responses).
                return (Of(ParseResponse(Single(Bytes("HTTP/1.1 200 OK\r\n").Concat(v.Input).ToArray())).Result), "");
            default:
            {
                // picohttpparser's plain chunked decoder stops after the last-chunk line and leaves
                // the trailer section to the caller; ours always reads it, so an empty one is added.
                var input = v.Input;
                if (v.Kind == "chunked" && Encoding.Latin1.GetString(input).EndsWith("0\r\n", StringComparison.Ordinal))
                {
                    input = input.Concat(Bytes("\r\n")).ToArray();
                }
                var result = ChunkedDriver.Run(input, [], trailers: null);
                var outcome = result.Result switch
                {
                    ChunkedReadResult.Complete => Outcome.Complete,
                    ChunkedReadResult.Error => Outcome.Error,
                    _ => Outcome.Incomplete,
                };
                return (outcome, Text(result.Body));
            }
        }
    }

    private static Outcome Expected(PicoVector v) => v.Expected switch
    {
        "-1" => Outcome.Error,
        "-2" => Outcome.Incomplete,
        _ => Outcome.Complete, // 0, or a count of trailing bytes left for the caller
    };

    [Fact]
    public void Corpus_Loaded_Has90Vectors()
    {
        Assert.Equal(90, PicoVectors.Ids.Count());
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Vector_Parsed_MatchesPicoOrStatedDeviation(string id)
    {
        var v = PicoVectors.Get(id);
        var (outcome, body) = Run(v);

        var expected = Deviations.TryGetValue(id, out var deviation) ? deviation.Ours : Expected(v);
        Assert.Equal(expected, outcome);
        if (outcome == Outcome.Complete && v.Decoded is not null)
        {
            Assert.Equal(v.Decoded, body);
        }
    }
}
