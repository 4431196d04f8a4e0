using System.Text;
using System.Text.Json;

namespace ProxyCore.Http.Tests.Http1.Corpus;

/// <summary>A case of http-desync-guardian's <c>cases.json</c>, turned into request bytes.</summary>
internal sealed record DesyncCase(string Id, string Tier, string Reason, byte[] Input, bool HostAdded)
{
    public override string ToString() => Id;
}

internal static class DesyncGuardianCases
{
    private static readonly Lazy<Dictionary<string, DesyncCase>> All = new(Load);

    public static IEnumerable<string> Ids => All.Value.Keys;

    public static DesyncCase Get(string id) => All.Value[id];

    private static Dictionary<string, DesyncCase> Load()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(CorpusFiles.PathOf(Path.Combine("http-desync-guardian", "cases.json"))));
        var cases = new Dictionary<string, DesyncCase>();
        foreach (var c in doc.RootElement.EnumerateArray())
        {
            var head = new List<byte>();
            void Add(string s) => head.AddRange(Encoding.Latin1.GetBytes(s));
            var version = c.GetProperty("version").GetString()!;
            Add(c.GetProperty("method").GetString()! + " " + c.GetProperty("uri").GetString()! + (version.Length > 0 ? " " + version : "") + "\r\n");
            bool hasHost = false;
            foreach (var h in c.GetProperty("headers").EnumerateArray())
            {
                var name = Convert.FromBase64String(h.GetProperty("name_b64").GetString()!);
                var value = Convert.FromBase64String(h.GetProperty("value_b64").GetString()!);
                hasHost |= Encoding.Latin1.GetString(name).Trim().Equals("host", StringComparison.OrdinalIgnoreCase);
                head.AddRange(name);
                Add(": ");
                head.AddRange(value);
                Add("\r\n");
            }
            // The cases are about framing headers and mostly carry no Host; without one every HTTP/1.1
            // case would fail for MissingHost (RFC 9112 §3.2) and hide the rule under test.
            if (!hasHost)
            {
                head.InsertRange(head.IndexOf((byte)'\n') + 1, Encoding.ASCII.GetBytes("Host: example.com\r\n"));
            }
            Add("\r\n");
            var expected = c.GetProperty("expected");
            var id = $"{c.GetProperty("file").GetString()}: {c.GetProperty("name").GetString()}";
            for (int n = 2; cases.ContainsKey(id); n++)
            {
                id = $"{c.GetProperty("file").GetString()}: {c.GetProperty("name").GetString()} #{n}";
            }
            cases[id] = new DesyncCase(id, expected.GetProperty("tier").GetString()!, expected.GetProperty("reason").GetString()!, head.ToArray(), !hasHost);
        }
        return cases;
    }
}
