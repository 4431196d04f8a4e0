using System.Text;
using ProxyCore.Http.Http1;
using static ProxyCore.Http.Tests.Http1.TestBuffers;

namespace ProxyCore.Http.Tests.Http1.Corpus;

/// <summary>
/// Every Transfer-Encoding gadget, placed in a request alone and next to a Content-Length (the
/// CL.TE / TE.CL shape). Each is either rejected, or parsed with exactly the framing an upstream
/// reading our re-serialized head would see: chunked only for a plain "Transfer-Encoding: chunked",
/// otherwise no header whose name an upstream could read as Transfer-Encoding.
/// </summary>
public class TeGadgetTests
{
    private static byte[] Request(byte[] gadget, bool withContentLength)
    {
        var head = new List<byte>(Encoding.ASCII.GetBytes("POST /smuggle HTTP/1.1\r\nHost: example.com\r\n"));
        if (withContentLength)
        {
            head.AddRange(Encoding.ASCII.GetBytes("Content-Length: 5\r\n"));
        }
        head.AddRange(gadget);
        head.AddRange(Encoding.ASCII.GetBytes("\r\n\r\n"));
        return head.ToArray();
    }

    /// <summary>Letters only, lower-cased: what a lenient server might reduce a name to.</summary>
    private static string Letters(ReadOnlySpan<byte> name)
    {
        var sb = new StringBuilder();
        foreach (byte b in name)
        {
            if (char.IsAsciiLetter((char)b))
            {
                sb.Append(char.ToLowerInvariant((char)b));
            }
        }
        return sb.ToString();
    }

    /// <summary>
    /// A gadget is "plain" when its CRLF-separated lines hold exactly one Transfer-Encoding
    /// line, and it is a well-formed "Transfer-Encoding: chunked" (some gadgets add a harmless "X: X" line around it).
    /// </summary>
    private static bool IsPlainChunked(byte[] gadget)
    {
        int plain = 0;
        int named = 0;
        foreach (var line in Encoding.Latin1.GetString(gadget).Split("\r\n"))
        {
            int colon = line.IndexOf(':');
            if (colon > 0 && line[..colon].Equals("transfer-encoding", StringComparison.OrdinalIgnoreCase))
            {
                named++;
                plain += line[(colon + 1)..].Trim(' ', '\t').Equals("chunked", StringComparison.OrdinalIgnoreCase) ? 1 : 0;
            }
        }
        return named == 1 && plain == 1;
    }

    [Fact]
    public void Corpus_Loaded_HasEveryGadget()
    {
        Assert.Equal(1768, TeGadgetCases.Gadgets.Count);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TryParseRequest_EveryGadget_RejectedOrFramedUnambiguously(bool withContentLength)
    {
        int accepted = 0;
        var failures = new List<string>();
        foreach (var (id, gadget) in TeGadgetCases.Gadgets)
        {
            var input = Request(gadget, withContentLength);
            var (result, error, _, head) = ParseRequest(Single(input));
            if (ParseRequest(Bytewise(input)).Error != error)
            {
                failures.Add($"{id}: split parse disagrees");
            }
            if (result == Http1ParseResult.Error)
            {
                continue;
            }
            if (result != Http1ParseResult.Complete)
            {
                failures.Add($"{id}: {result}");
                continue;
            }
            accepted++;
            bool plain = IsPlainChunked(gadget);
            if (plain)
            {
                // The only accepted Transfer-Encoding; with a Content-Length it must have been rejected.
                if (withContentLength || head.Framing != BodyFraming.Chunked)
                {
                    failures.Add($"{id}: plain chunked parsed as {head.Framing}");
                }
                int teLike = 0;
                for (int i = 0; i < head.HeaderCount; i++)
                {
                    teLike += Letters(head.GetName(i)).Contains("transferencoding", StringComparison.Ordinal) ? 1 : 0;
                }
                if (teLike != 1)
                {
                    failures.Add($"{id}: {teLike} Transfer-Encoding-like fields next to the plain one");
                }
                continue;
            }
            if (head.Framing != (withContentLength ? BodyFraming.ContentLength : BodyFraming.None))
            {
                failures.Add($"{id}: obfuscated gadget accepted with framing {head.Framing}");
            }
            for (int i = 0; i < head.HeaderCount; i++)
            {
                if (Letters(head.GetName(i)).Contains("transferencoding", StringComparison.Ordinal))
                {
                    failures.Add($"{id}: forwarded a header an upstream may read as Transfer-Encoding: '{Text(head.GetName(i))}'");
                }
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(40)) + $"\n({failures.Count} failures, {accepted} accepted)");
    }

    [Fact]
    public void TryParseRequest_PlainChunkedGadgets_AcceptedAlone()
    {
        var plain = TeGadgetCases.Gadgets.Where(g => IsPlainChunked(g.Gadget)).ToList();

        Assert.NotEmpty(plain);
        Assert.All(plain, g => Assert.Equal(BodyFraming.Chunked, ParseRequest(Single(Request(g.Gadget, false))).Head.Framing));
    }
}
