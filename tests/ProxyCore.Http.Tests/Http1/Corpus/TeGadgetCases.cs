using System.Text.Json;

namespace ProxyCore.Http.Tests.Http1.Corpus;

/// <summary>defparam/smuggler's Transfer-Encoding gadgets (corpus <c>defparam-smuggler/te-gadgets.jsonl</c>).</summary>
internal static class TeGadgetCases
{
    private static readonly Lazy<List<(string Id, byte[] Gadget)>> All = new(Load);

    public static IReadOnlyList<(string Id, byte[] Gadget)> Gadgets => All.Value;

    private static List<(string Id, byte[] Gadget)> Load()
    {
        var list = new List<(string, byte[])>();
        foreach (var line in File.ReadLines(CorpusFiles.PathOf(Path.Combine("defparam-smuggler", "te-gadgets.jsonl"))))
        {
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            // Latin-1 bytes: the gadgets with bytes >= 0x80 mean single octets on the wire.
            var gadget = Convert.FromBase64String(root.GetProperty("bytes_latin1_b64").GetString()!);
            list.Add(($"{root.GetProperty("config").GetString()}:{root.GetProperty("name").GetString()}", gadget));
        }
        return list;
    }
}
