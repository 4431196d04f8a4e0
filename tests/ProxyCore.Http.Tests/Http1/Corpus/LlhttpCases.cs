using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace ProxyCore.Http.Tests.Http1.Corpus;

/// <summary>One llhttp markdown case: its input and the messages/outcome its log expects.</summary>
internal sealed class LlhttpCase
{
    public required string Id { get; init; }
    public required string Type { get; init; }
    public required byte[] Input { get; init; }
    public bool SkipBody { get; init; }
    public required List<ParsedMessage> Expected { get; init; }
    public required StreamOutcome ExpectedOutcome { get; init; }
    public string? ExpectedReason { get; init; }

    public bool IsRequest => Type.StartsWith("request", StringComparison.Ordinal);
    public bool IsLenient => Type.Contains("-lenient-", StringComparison.Ordinal);
    public bool Finish => Type.EndsWith("-finish", StringComparison.Ordinal);

    public override string ToString() => Id;
}

internal static partial class LlhttpCases
{
    private static readonly Lazy<Dictionary<string, LlhttpCase>> All = new(Load);

    public static IEnumerable<string> Ids => All.Value.Keys;

    public static LlhttpCase Get(string id) => All.Value[id];

    [GeneratedRegex("<!-- meta=(\\{.*\\}) -->")]
    private static partial Regex Meta();

    [GeneratedRegex("\"type\"\\s*:\\s*\"([^\"]+)\"")]
    private static partial Regex MetaType();

    [GeneratedRegex("^off=\\d+ (?:len=\\d+ )?(.*)$")]
    private static partial Regex LogLine();

    private static Dictionary<string, LlhttpCase> Load()
    {
        var cases = new Dictionary<string, LlhttpCase>();
        foreach (var folder in new[] { "request", "response" })
        {
            foreach (var file in Directory.GetFiles(CorpusFiles.PathOf(Path.Combine("llhttp", "test", folder)), "*.md").Order(StringComparer.Ordinal))
            {
                var lines = File.ReadAllLines(file);
                string title = "";
                for (int i = 0; i < lines.Length; i++)
                {
                    if (lines[i].StartsWith('#'))
                    {
                        title = lines[i].TrimStart('#').Trim();
                        continue;
                    }
                    var meta = Meta().Match(lines[i]);
                    if (!meta.Success)
                    {
                        continue;
                    }
                    var typeMatch = MetaType().Match(meta.Groups[1].Value);
                    var type = typeMatch.Success ? typeMatch.Groups[1].Value : folder;
                    int httpStart = Array.FindIndex(lines, i, l => l.StartsWith("```http", StringComparison.Ordinal));
                    int httpEnd = Array.FindIndex(lines, httpStart + 1, l => l.StartsWith("```", StringComparison.Ordinal));
                    int logStart = Array.FindIndex(lines, httpEnd + 1, l => l.StartsWith("```log", StringComparison.Ordinal));
                    int logEnd = Array.FindIndex(lines, logStart + 1, l => l.StartsWith("```", StringComparison.Ordinal));
                    var input = PrepareInput(lines[(httpStart + 1)..httpEnd]);
                    var (expected, outcome, reason) = ReadLog(lines[(logStart + 1)..logEnd]);
                    var id = $"{folder}/{Path.GetFileNameWithoutExtension(file)}: {title}";
                    for (int n = 2; cases.ContainsKey(id); n++)
                    {
                        id = $"{folder}/{Path.GetFileNameWithoutExtension(file)}: {title} #{n}";
                    }
                    cases[id] = new LlhttpCase
                    {
                        Id = id,
                        Type = type,
                        Input = input,
                        SkipBody = meta.Groups[1].Value.Contains("skipBody", StringComparison.Ordinal),
                        Expected = expected,
                        ExpectedOutcome = outcome,
                        ExpectedReason = reason,
                    };
                    i = logEnd;
                }
            }
        }
        return cases;
    }

    /// <summary>Per the corpus README: drop the final newline, join "\"-continued lines, LF → CRLF, unescape \r \n \t \xHH.</summary>
    private static byte[] PrepareInput(string[] lines)
    {
        var text = string.Join("\n", lines);
        text = text.Replace("\\\n", "", StringComparison.Ordinal);
        text = text.Replace("\n", "\r\n", StringComparison.Ordinal);
        return Encoding.UTF8.GetBytes(Unescape(text));
    }

    /// <summary>
    /// \r \n \t \xHH as the README lists, plus \f (the cases use it for a real form feed: its log
    /// span has len=1). Like llhttp's own harness, \xHH yields the character U+00HH and the text is
    /// then UTF-8 encoded (so "\xff" is two bytes on the wire: its log span counts 8 for "ÿValue2").
    /// Other backslashes are literal, in inputs and in log spans alike.
    /// </summary>
    private static string Unescape(string text)
    {
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '\\' && i + 1 < text.Length)
            {
                switch (text[i + 1])
                {
                    case 'r': sb.Append('\r'); i++; continue;
                    case 'n': sb.Append('\n'); i++; continue;
                    case 't': sb.Append('\t'); i++; continue;
                    case 'f': sb.Append('\f'); i++; continue;
                    case 'x' when IsHex(text, i + 2):
                        sb.Append((char)int.Parse(text.AsSpan(i + 2, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        i += 3;
                        continue;
                }
            }
            sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>A log span as the bytes it names, shown the way <see cref="TestBuffers.Text"/> shows ours.</summary>
    private static string LogSpan(string quoted) => Encoding.Latin1.GetString(Encoding.UTF8.GetBytes(Unescape(quoted)));

    private static bool IsHex(string s, int at) => at + 1 < s.Length && Uri.IsHexDigit(s[at]) && Uri.IsHexDigit(s[at + 1]);

    private static (List<ParsedMessage>, StreamOutcome, string?) ReadLog(string[] log)
    {
        var messages = new List<ParsedMessage>();
        ParsedMessage? current = null;
        var field = new StringBuilder();
        var value = new StringBuilder();
        var version = new StringBuilder();
        var status = new StringBuilder();
        bool headersDone = false;
        foreach (var raw in log)
        {
            var m = LogLine().Match(raw);
            if (!m.Success)
            {
                continue;
            }
            var ev = m.Groups[1].Value;
            if (ev == "message begin")
            {
                current = new ParsedMessage();
                messages.Add(current);
                headersDone = false;
                version.Clear();
                status.Clear();
                continue;
            }
            if (ev.StartsWith("error code=", StringComparison.Ordinal))
            {
                int code = int.Parse(ev["error code=".Length..ev.IndexOf(' ', 11)], CultureInfo.InvariantCulture);
                var reason = ev[(ev.IndexOf("reason=", StringComparison.Ordinal) + 8)..^1];
                return code switch
                {
                    // HPE_PAUSED_UPGRADE / HPE_PAUSED_H2_UPGRADE: not errors, the stream switches protocol.
                    22 or 23 => (messages, StreamOutcome.Upgrade, reason),
                    // HPE_CLOSED_CONNECTION: bytes after a message that closes the connection.
                    5 => (messages, StreamOutcome.DataAfterClose, reason),
                    // HPE_PAUSED (pause tests resume right after).
                    21 => throw new InvalidOperationException("pause is handled by the 'pause' lines"),
                    _ => (messages, StreamOutcome.Error, reason),
                };
            }
            if (current is null)
            {
                continue;
            }
            int spanAt = ev.IndexOf("span[", StringComparison.Ordinal);
            if (spanAt == 0)
            {
                var kind = ev[5..ev.IndexOf(']')];
                var rawValue = ev[(ev.IndexOf(']') + 2)..];
                var text = rawValue switch
                {
                    // Bodies log a lone CR or LF unquoted.
                    "lf" => "\n",
                    "cr" => "\r",
                    _ => LogSpan(rawValue[1..^1]),
                };
                switch (kind)
                {
                    case "method": current.Method += text; break;
                    case "url": current.Target += text; break;
                    case "version": version.Append(text); break;
                    case "status": break;
                    case "header_field": field.Append(text); break;
                    case "header_value": value.Append(text); break;
                    case "body": current.Body.Append(text); break;
                }
                continue;
            }
            if (ev == "header_value complete")
            {
                (headersDone ? current.Trailers : current.Headers).Add((field.ToString(), value.ToString()));
                field.Clear();
                value.Clear();
            }
            else if (ev == "header_field complete" && value.Length > 0)
            {
                value.Clear();
            }
            else if (ev.StartsWith("headers complete", StringComparison.Ordinal))
            {
                headersDone = true;
                int cl = ev.IndexOf("content_length=", StringComparison.Ordinal);
                current.ContentLength = cl < 0 ? -1 : long.Parse(ev[(cl + 15)..], CultureInfo.InvariantCulture);
                current.Version = version.ToString() == "1.0" ? HttpVersion.Http10 : HttpVersion.Http11;
                var st = ev.IndexOf("status=", StringComparison.Ordinal);
                if (st >= 0)
                {
                    current.Status = int.Parse(ev.AsSpan(st + 7, 3), CultureInfo.InvariantCulture);
                }
            }
            else if (ev.StartsWith("chunk header len=", StringComparison.Ordinal))
            {
                int len = int.Parse(ev["chunk header len=".Length..], CultureInfo.InvariantCulture);
                if (len > 0)
                {
                    current.ChunkLengths.Add(len);
                }
            }
            else if (ev == "message complete")
            {
                current.Complete = true;
            }
        }
        bool allComplete = messages.Count > 0 && messages[^1].Complete;
        return (messages, allComplete ? StreamOutcome.Complete : StreamOutcome.Incomplete, null);
    }
}
