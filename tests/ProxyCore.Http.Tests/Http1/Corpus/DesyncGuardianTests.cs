using ProxyCore.Http.Http1;
using static ProxyCore.Http.Tests.Http1.TestBuffers;

namespace ProxyCore.Http.Tests.Http1.Corpus;

/// <summary>
/// http-desync-guardian's 159 rated requests. Our policy, asserted case by case:
/// Severe → rejected (400). Compliant → accepted, except where our stricter rules reject on
/// purpose (any Transfer-Encoding but the single coding "chunked"; listed cases). Acceptable and
/// Ambiguous → rejected, except the listed GET/HEAD-with-framing cases whose framing is unambiguous.
/// </summary>
public class DesyncGuardianTests
{
    /// <summary>Non-severe, non-compliant cases we accept, and why that is safe.</summary>
    private static readonly Dictionary<string, string> AcceptedByDesign = new()
    {
        ["acceptable.yaml: Get with a body and Content-Length:0"] = "Content-Length: 0 on GET: no body, nothing to disagree on",
        ["acceptable.yaml: Get with a body and Content-Length:0 #2"] = "Content-Length: 0 on HEAD: no body",
        ["ambiguous.yaml: Get with a body and Content-Length"] = BodyOnGet,
        ["ambiguous.yaml: Get with a body and Transfer-Encoding"] = BodyOnGet,
        ["ambiguous.yaml: Head with a body and Content-Length"] = BodyOnGet,
        ["ambiguous.yaml: Head with a body and Transfer-Encoding"] = BodyOnGet,
        ["real-life-test-cases.yaml: Has a CL in GET"] = BodyOnGet,
        ["real-life-test-cases.yaml: Has a TE in GET"] = BodyOnGet,
    };

    private const string BodyOnGet =
        "RFC 9110 §9.3.1: content on GET/HEAD has no defined semantics, but its framing is one valid Content-Length or chunked, "
        + "which the relay re-serializes; some APIs (search engines) send bodies on GET, so we forward it";

    /// <summary>Compliant cases we reject, and why (beyond the Transfer-Encoding policy).</summary>
    private static readonly Dictionary<string, string> RejectedByDesign = new()
    {
        ["rfc-compliant.yaml: Empty URI"] = "'GET  HTTP/1.1' has no request-target: RFC 9112 §3 request-line = method SP request-target SP HTTP-version",
    };

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var id in DesyncGuardianCases.Ids)
        {
            data.Add(id);
        }
        return data;
    }

    [Fact]
    public void Corpus_Loaded_Has159CasesWithEverySeverity()
    {
        var cases = DesyncGuardianCases.Ids.Select(DesyncGuardianCases.Get).ToList();

        Assert.Equal(159, cases.Count);
        Assert.Equal(58, cases.Count(c => c.Tier == "Severe"));
        Assert.All(AcceptedByDesign.Keys.Concat(RejectedByDesign.Keys), id => Assert.Contains(id, DesyncGuardianCases.Ids));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TryParseRequest_DesyncCase_FollowsOurPolicy(string id)
    {
        var c = DesyncGuardianCases.Get(id);
        var single = ParseRequest(Single(c.Input));
        var bytewise = ParseRequest(Bytewise(c.Input));
        Assert.Equal(single.Result, bytewise.Result);
        Assert.Equal(single.Error, bytewise.Error);

        bool accept = c.Tier switch
        {
            "Severe" => false,
            "Compliant" => !RejectedByDesign.ContainsKey(id) && single.Error != HttpParseError.UnsupportedTransferEncoding,
            _ => AcceptedByDesign.ContainsKey(id),
        };
        if (accept)
        {
            Assert.True(single.Result == Http1ParseResult.Complete, $"{c.Tier}/{c.Reason} should be accepted, got {single.Error}");
        }
        else
        {
            Assert.True(single.Result == Http1ParseResult.Error, $"{c.Tier}/{c.Reason} should be rejected, got {single.Result}");
            Assert.Equal(400, HttpParseErrors.StatusCode(single.Error));
        }
    }

    [Fact]
    public void TryParseRequest_CompliantTransferEncodingCases_RejectedOnlyForThePolicy()
    {
        // The Compliant cases rejected for UnsupportedTransferEncoding must all carry a
        // Transfer-Encoding other than exactly "chunked": the policy, not an accident.
        foreach (var c in DesyncGuardianCases.Ids.Select(DesyncGuardianCases.Get).Where(c => c.Tier == "Compliant"))
        {
            var r = ParseRequest(Single(c.Input));
            if (r.Error == HttpParseError.UnsupportedTransferEncoding)
            {
                var teValues = Text(c.Input).Split("\r\n")
                    .Where(l => l.StartsWith("transfer-encoding:", StringComparison.OrdinalIgnoreCase))
                    .Select(l => l["transfer-encoding:".Length..].Trim(' ', '\t'))
                    .ToList();
                Assert.NotEmpty(teValues);
                Assert.False(teValues.Count == 1 && teValues[0].Equals("chunked", StringComparison.OrdinalIgnoreCase), c.Id);
            }
        }
    }
}
