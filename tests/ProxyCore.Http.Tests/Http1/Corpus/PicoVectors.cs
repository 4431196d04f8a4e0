using System.Text.Json;

namespace ProxyCore.Http.Tests.Http1.Corpus;

internal sealed record PicoVector(string Id, string Kind, byte[] Input, string Expected, string? Decoded)
{
    public override string ToString() => Id;
}

/// <summary>picohttpparser's test vectors (corpus <c>picohttpparser/vectors.jsonl</c>).</summary>
internal static class PicoVectors
{
    private static readonly Lazy<Dictionary<string, PicoVector>> All = new(Load);

    public static IEnumerable<string> Ids => All.Value.Keys;

    public static PicoVector Get(string id) => All.Value[id];

    private static Dictionary<string, PicoVector> Load()
    {
        var vectors = new Dictionary<string, PicoVector>();
        int n = 0;
        foreach (var line in File.ReadLines(CorpusFiles.PathOf(Path.Combine("picohttpparser", "vectors.jsonl"))))
        {
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            var kind = root.GetProperty("kind").GetString()!;
            var expected = root.GetProperty("expected").ValueKind == JsonValueKind.Number
                ? root.GetProperty("expected").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture)
                : root.GetProperty("expected").GetString()!;
            var id = $"{n++:D2} {kind}: {root.GetProperty("comment").GetString()}";
            var decoded = root.TryGetProperty("decoded", out var d) ? d.GetString() : null;
            vectors[id] = new PicoVector(id, kind, Convert.FromBase64String(root.GetProperty("input_b64").GetString()!), expected, decoded);
        }
        return vectors;
    }
}
