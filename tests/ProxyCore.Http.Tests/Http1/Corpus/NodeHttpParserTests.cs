using System.Text.Json;
using static ProxyCore.Http.Tests.Http1.TestBuffers;

namespace ProxyCore.Http.Tests.Http1.Corpus;

/// <summary>
/// nodejs/http-parser's 47 requests and 30 responses (corpus <c>nodejs-http-parser/messages.json</c>):
/// method, URL, version, headers, body, keep-alive, status and upgrade, compared field by field.
/// Requests without Host get one added (RFC 9112 §3.2 makes its absence a 400, tested elsewhere).
/// </summary>
public class NodeHttpParserTests
{
    private static readonly Lazy<Dictionary<string, JsonElement>> Messages = new(() =>
    {
        var doc = JsonDocument.Parse(File.ReadAllBytes(CorpusFiles.PathOf(Path.Combine("nodejs-http-parser", "messages.json"))));
        var all = new Dictionary<string, JsonElement>();
        foreach (var kind in new[] { "requests", "responses" })
        {
            int n = 0;
            foreach (var m in doc.RootElement.GetProperty(kind).EnumerateArray())
            {
                all[$"{kind}/{n++:D2} {m.GetProperty("name").GetString()}"] = m;
            }
        }
        return all;
    });

    /// <summary>Messages we reject on purpose, and why.</summary>
    private static readonly Dictionary<string, string> Rejected = new()
    {
        ["requests/19 request with no http version"] = "an HTTP/0.9-style request line without version (RFC 9112 §3)",
        ["requests/20 m-search request"] = "RFC 9112 §3.2.4: asterisk-form is only for OPTIONS",
        ["requests/21 line folding in header value"] = "obs-fold: RFC 9112 §5.2, rejected",
        ["requests/27 utf-8 path request"] = "raw UTF-8 bytes in the request-target: RFC 3986 allows ASCII only (clients percent-encode)",
        ["requests/33 host:port and basic_auth"] = "userinfo in an http URI: RFC 9110 §4.2.4 SHOULD treat as an error",
        ["requests/34 line folding in header value"] = "obs-fold and bare LF line ends: RFC 9112 §5.2 and §2.2",
        ["requests/35 multiple connection header values with folding"] = "obs-fold: RFC 9112 §5.2",
        ["requests/37 multiple connection header values with folding and lws"] = "obs-fold: RFC 9112 §5.2",
        ["requests/43 source request"] = "ICE/1.0 is not an HTTP-version (RFC 9112 §2.3)",
        ["requests/44 post - multi coding transfer-encoding chunked body"] = "request Transfer-Encoding other than exactly 'chunked' (our smuggling policy)",
        ["requests/45 post - multi line coding transfer-encoding chunked body"] = "request Transfer-Encoding other than exactly 'chunked' (our smuggling policy)",
        ["requests/46 chunked with content-length set, allow_chunked_length flag is set"] =
            "Content-Length with Transfer-Encoding: RFC 9112 §6.1 allows rejecting; node needs a leniency flag for it",
        ["responses/04 200 trailing space on chunked body"] = "'25  ' chunk-size followed by spaces and no ';': not chunk-ext grammar (RFC 9112 §7.1.1)",
        ["responses/05 no carriage ret"] = "bare LF line ends: RFC 9112 §2.2, we accept CRLF only (relay answers 502)",
        ["responses/11 http version 0.9"] = "HTTP/0.9 is not spoken",
        ["responses/19 field space"] = "'X-Powered-By: ASP.NET' then 'en-US Content-Type': a field name with a space (RFC 9110 §5.1 token)",
    };

    /// <summary>Fields where our value differs on purpose: (what we give, why).</summary>
    private static readonly Dictionary<string, (bool KeepAlive, string Why)> KeepAliveDiffers = new()
    {
        ["responses/06 proxy connection"] = (true, "Proxy-Connection is not an HTTP field (RFC 9112 §9.6 names only Connection); the relay strips it as hop-by-hop"),
    };

    private static readonly Dictionary<string, (string Body, string Why)> BodyDiffers = new()
    {
        ["responses/24 HTTP 101 response with Upgrade and Content-Length header"] = ("",
            "RFC 9110 §15.2.2: after a 101 the connection speaks the new protocol from the byte after the empty line; a Content-Length on a 101 frames nothing"),
        ["responses/25 HTTP 101 response with Upgrade and Transfer-Encoding header"] = ("", "as above, for Transfer-Encoding on a 101"),
    };

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var id in Messages.Value.Keys)
        {
            data.Add(id);
        }
        return data;
    }

    [Fact]
    public void Corpus_Loaded_Has47RequestsAnd30Responses()
    {
        Assert.Equal(47, Messages.Value.Keys.Count(k => k.StartsWith("requests/", StringComparison.Ordinal)));
        Assert.Equal(30, Messages.Value.Keys.Count(k => k.StartsWith("responses/", StringComparison.Ordinal)));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Message_Parsed_MatchesEveryField(string id)
    {
        var m = Messages.Value[id];
        bool isRequest = id.StartsWith("requests/", StringComparison.Ordinal);
        var raw = Convert.FromBase64String(m.GetProperty("raw_b64").GetString()!);
        var run = MessageStream.Run(raw, isRequest);

        if (Rejected.ContainsKey(id))
        {
            Assert.Equal(StreamOutcome.Error, run.Outcome);
            return;
        }
        Assert.True(run.Outcome is StreamOutcome.Complete or StreamOutcome.Upgrade or StreamOutcome.DataAfterClose,
            $"{run.Outcome} {run.Error} <{Text(raw)}>");
        var msg = run.Messages[0];

        Assert.Equal(m.GetProperty("http_major").GetInt32() == 1 && m.GetProperty("http_minor").GetInt32() == 0 ? HttpVersion.Http10 : HttpVersion.Http11, msg.Version);
        var headers = m.TryGetProperty("headers", out var h) ? h.EnumerateArray()
            .Select(x => (x[0].GetString()!, x[1].GetString()!.TrimEnd(' ', '\t')))
            .ToList() : [];
        // node lists trailers with the headers.
        Assert.Equal(headers, msg.Headers.Concat(msg.Trailers));
        var body = m.TryGetProperty("body", out var b) ? b.GetString() : "";
        Assert.Equal(BodyDiffers.TryGetValue(id, out var bodyDiff) ? bodyDiff.Body : body, msg.Body.ToString());
        bool keepAlive = msg.KeepAlive;
        Assert.Equal(KeepAliveDiffers.TryGetValue(id, out var kaDiff) ? kaDiff.KeepAlive : m.GetProperty("should_keep_alive").GetBoolean(), keepAlive);
        bool upgrade = m.TryGetProperty("upgrade", out var up) && up.ValueKind == JsonValueKind.String && up.GetString() != "NULL";
        Assert.Equal(upgrade, run.Outcome == StreamOutcome.Upgrade);
        if (isRequest)
        {
            var method = m.GetProperty("method").GetString()!["HTTP_".Length..];
            Assert.Equal(method, msg.Method.Replace("-", "", StringComparison.Ordinal));
            Assert.Equal(m.GetProperty("request_url").GetString(), msg.Target);
        }
        else
        {
            Assert.Equal(m.GetProperty("status_code").GetInt32(), msg.Status);
        }
        if (m.TryGetProperty("chunk_lengths", out var chunks) && !BodyDiffers.ContainsKey(id))
        {
            var lengths = chunks.EnumerateArray().Select(c => c.GetString()!).Select(c => c.StartsWith("0x", StringComparison.Ordinal)
                ? Convert.ToInt32(c[2..], 16) : int.Parse(c, System.Globalization.CultureInfo.InvariantCulture)).Where(c => c > 0);
            Assert.Equal(lengths, msg.ChunkLengths);
        }
    }
}
