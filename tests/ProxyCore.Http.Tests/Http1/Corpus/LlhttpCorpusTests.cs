namespace ProxyCore.Http.Tests.Http1.Corpus;

/// <summary>
/// llhttp's request and response cases (corpus <c>llhttp/test/</c>) run through our parser and a
/// connection-loop driver. Lenient cases must be rejected; where our strict reading differs from
/// llhttp's expectation the case is listed in <see cref="Deviations"/> with the RFC reason.
/// </summary>
public class LlhttpCorpusTests
{
    /// <summary>Cases where we deliberately differ: what we do instead, and why.</summary>
    private static readonly Dictionary<string, (StreamOutcome Ours, string Why)> Deviations = new()
    {
        ["response/sample: RTSP response"] = (StreamOutcome.Error, "RTSP/1.1 status line: HTTP-name is \"HTTP\" (RFC 9112 §2.3); a proxy speaks HTTP only"),
        ["response/sample: ICE response"] = (StreamOutcome.Error, "ICE/1.1 status line: not HTTP (RFC 9112 §2.3)"),
        ["request/method: SOURCE request with ICE"] = (StreamOutcome.Error, "ICE/1.0 is not an HTTP-version (RFC 9112 §2.3)"),
        ["request/method: ANNOUNCE request with RTSP"] = (StreamOutcome.Error, "RTSP/1.0 is not an HTTP-version (RFC 9112 §2.3)"),
        ["request/method: OPTIONS request with RTSP"] = (StreamOutcome.Error, "RTSP/1.0 is not an HTTP-version (RFC 9112 §2.3)"),
        ["response/sample: HTTP version 0.9"] = (StreamOutcome.Error, "HTTP/0.9 is not spoken: UnsupportedVersion"),
        ["request/sample: No HTTP version"] = (StreamOutcome.Error, "'GET /' without a version is an HTTP/0.9 simple request: not supported (RFC 9112 §3)"),
        ["request/invalid: HTTP protocol and ANNOUNCE method"] = (StreamOutcome.Complete,
            "RFC 9110 §9.1: method = token; a proxy forwards extension methods and keeps no per-protocol method registry"),
        ["request/invalid: Invalid method"] = (StreamOutcome.Complete, "MKCOLA is a valid token method (RFC 9110 §9.1), forwarded as Custom"),
        ["request/method: M-SEARCH request"] = (StreamOutcome.Error, "RFC 9112 §3.2.4: asterisk-form is only for a server-wide OPTIONS request"),
        ["request/method: PRI request HTTP2"] = (StreamOutcome.Error,
            "the h2c preface is recognised by the connection before the HTTP/1.1 parser runs (DESIGN.md, Protocol); to this parser 'PRI *' is an invalid target"),
        ["request/uri: `host:port` and basic auth"] = (StreamOutcome.Error, "RFC 9110 §4.2.4: a recipient SHOULD treat userinfo in an http(s) URI as an error"),
        ["request/transfer-encoding: POST with `chunked` as last transfer-encoding"] = (StreamOutcome.Error,
            "Transfer-Encoding: deflate, chunked: we accept only the single coding 'chunked' on requests (we do not decode others; every other spelling is a desync gadget)"),
        ["request/transfer-encoding: POST with `chunked` as last transfer-encoding (multiple headers)"] = (StreamOutcome.Error,
            "Transfer-Encoding split over two lines (deflate, then chunked): only one Transfer-Encoding line with 'chunked' is accepted"),
        ["response/finish: It should be safe to finish with cb after empty response"] = (StreamOutcome.Complete, "RFC 9112 §6.3 (8): the end of input ends a close-delimited body; llhttp leaves it to a finish callback"),
        ["request/invalid: Invalid HTTP version"] = (StreamOutcome.Incomplete,
            "'GET / HTTP/5.6' without its CRLF: a request line is judged once its LF arrives (with it: UnsupportedVersion, see Http1RequestParserTests)"),
    };

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var id in LlhttpCases.Ids)
        {
            data.Add(id);
        }
        return data;
    }

    [Fact]
    public void Corpus_Loaded_HasRequestAndResponseCases()
    {
        var ids = LlhttpCases.Ids.ToList();
        Assert.True(ids.Count >= 240, $"only {ids.Count} llhttp cases found");
        Assert.Contains(ids, id => id.StartsWith("response/", StringComparison.Ordinal));
        Assert.Contains(ids, id => LlhttpCases.Get(id).IsLenient);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Llhttp_Case_MatchesExpectationOrStatedDeviation(string id)
    {
        var c = LlhttpCases.Get(id);
        var ours = MessageStream.Run(c.Input, c.IsRequest, c.SkipBody ? HttpMethod.Head : HttpMethod.Get, eofEndsBody: c.Finish, skipBody: c.SkipBody && c.IsRequest);
        string input = TestBuffers.Text(c.Input).Replace("\r", "\\r").Replace("\n", "\\n").Replace("\t", "\\t");

        if (Deviations.TryGetValue(id, out var deviation))
        {
            Assert.Equal(deviation.Ours, ours.Outcome);
            return;
        }
        if (c.IsLenient)
        {
            // A lenient-* case is what llhttp accepts only with a leniency flag: a strict parser rejects it.
            Assert.True(ours.Outcome is StreamOutcome.Error or StreamOutcome.DataAfterClose, $"lenient case accepted: {ours.Outcome} <{input}>");
            return;
        }
        if (c.ExpectedOutcome == StreamOutcome.Error)
        {
            Assert.True(ours.Outcome == StreamOutcome.Error, $"llhttp: {c.ExpectedReason}; ours: {ours.Outcome} <{input}>");
            return;
        }

        Assert.True(c.ExpectedOutcome == ours.Outcome, $"expected {c.ExpectedOutcome}, ours {ours.Outcome} {ours.Error} <{input}>");
        var expectedHeads = c.Expected.Where(m => m.Version != default || m.Headers.Count > 0 || m.Complete).ToList();
        Assert.True(expectedHeads.Count <= ours.Messages.Count, $"expected {expectedHeads.Count} heads, parsed {ours.Messages.Count}");
        for (int i = 0; i < expectedHeads.Count; i++)
        {
            var expected = expectedHeads[i];
            var actual = ours.Messages[i];
            if (c.IsRequest)
            {
                Assert.Equal(expected.Method, actual.Method);
                Assert.Equal(expected.Target, actual.Target);
            }
            else
            {
                Assert.Equal(expected.Status, actual.Status);
            }
            Assert.Equal(expected.Version, actual.Version);
            // llhttp keeps trailing whitespace in a value; RFC 9112 §5.1 excludes it from the value.
            Assert.Equal(expected.Headers.Select(h => (h.Name, h.Value.TrimEnd(' ', '\t'))), actual.Headers);
            if (actual.ContentLength >= 0)
            {
                Assert.Equal(expected.ContentLength, actual.ContentLength);
            }
            Assert.Equal(expected.Body.ToString(), actual.Body.ToString());
            if (expected.Complete)
            {
                Assert.Equal(expected.ChunkLengths, actual.ChunkLengths);
                Assert.Equal(expected.Trailers.Select(h => (h.Name, h.Value.TrimEnd(' ', '\t'))), actual.Trailers);
            }
        }
    }
}
