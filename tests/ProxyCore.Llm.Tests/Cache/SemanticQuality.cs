using System.Globalization;
using System.Numerics.Tensors;
using System.Text;
using ProxyCore.Llm.Cache;

namespace ProxyCore.Llm.Tests.Cache;

/// <summary>One labelled question pair of Cache/Data/semantic-pairs.tsv.</summary>
internal sealed record LabelledPair(bool Same, string Category, string A, string B);

/// <summary>Precision and recall of "semantic hit" decisions at one threshold.</summary>
internal sealed record QualityRow(float Threshold, bool Guards, int TruePositives, int FalsePositives, int FalseNegatives)
{
    public double Precision => TruePositives + FalsePositives == 0 ? 1 : (double)TruePositives / (TruePositives + FalsePositives);

    public double Recall => TruePositives + FalseNegatives == 0 ? 0 : (double)TruePositives / (TruePositives + FalseNegatives);
}

/// <summary>
/// Scores an embedder on the labelled pairs: cosine of each pair, the guards' verdict, and the
/// precision/recall table over thresholds. Shared by the builtin test here and the MiniLM test project.
/// </summary>
internal static class SemanticQuality
{
    public static readonly float[] Thresholds = [0.50f, 0.55f, 0.60f, 0.65f, 0.70f, 0.75f, 0.80f, 0.85f, 0.88f, 0.90f, 0.92f, 0.94f, 0.96f, 0.98f];

    public static IReadOnlyList<LabelledPair> LoadPairs()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Cache", "Data", "semantic-pairs.tsv");
        var pairs = new List<LabelledPair>();
        foreach (var line in File.ReadLines(path))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }
            var f = line.Split('\t');
            if (f.Length != 4 || f[0] is not ("same" or "different"))
            {
                throw new InvalidDataException($"bad line in {path}: {line}");
            }
            pairs.Add(new LabelledPair(f[0] == "same", f[1], f[2], f[3]));
        }
        return pairs;
    }

    public static (float[] Cosine, GuardConflict[] Conflicts) Score(IReadOnlyList<LabelledPair> pairs, Func<string, float[]> embed)
    {
        var cosine = new float[pairs.Count];
        var conflicts = new GuardConflict[pairs.Count];
        for (int i = 0; i < pairs.Count; i++)
        {
            cosine[i] = TensorPrimitives.Dot(embed(pairs[i].A), embed(pairs[i].B));
            conflicts[i] = SemanticGuards.Compute(pairs[i].A).Compare(SemanticGuards.Compute(pairs[i].B));
        }
        return (cosine, conflicts);
    }

    public static QualityRow Evaluate(IReadOnlyList<LabelledPair> pairs, float[] cosine, GuardConflict[] conflicts, float threshold, bool guards)
    {
        int tp = 0, fp = 0, fn = 0;
        for (int i = 0; i < pairs.Count; i++)
        {
            bool hit = cosine[i] >= threshold && (!guards || conflicts[i] == GuardConflict.None);
            if (hit && pairs[i].Same)
            {
                tp++;
            }
            else if (hit)
            {
                fp++;
            }
            else if (pairs[i].Same)
            {
                fn++;
            }
        }
        return new QualityRow(threshold, guards, tp, fp, fn);
    }

    public static string Table(string embedder, IReadOnlyList<LabelledPair> pairs, float[] cosine, GuardConflict[] conflicts)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine(inv, $"### {embedder}");
        sb.AppendLine();
        sb.AppendLine(inv, $"Median cosine by category: {string.Join(", ", pairs.Select((p, i) => (p.Category, cosine[i])).GroupBy(x => x.Category).Select(g => $"{g.Key} {Median(g.Select(x => x.Item2)):0.00}"))}.");
        int vetoed = pairs.Where((p, i) => !p.Same && conflicts[i] != GuardConflict.None).Count();
        int wrongVeto = pairs.Where((p, i) => p.Same && conflicts[i] != GuardConflict.None).Count();
        sb.AppendLine(inv, $"Guards veto {vetoed} of {pairs.Count(p => !p.Same)} different pairs and {wrongVeto} of {pairs.Count(p => p.Same)} same pairs (whatever the cosine).");
        foreach (var (p, i) in pairs.Select((p, i) => (p, i)).Where(x => x.p.Same && conflicts[x.i] != GuardConflict.None))
        {
            sb.AppendLine(inv, $"- same pair vetoed ({conflicts[i]}): {p.A} | {p.B}");
        }
        sb.AppendLine();
        sb.AppendLine("| threshold | precision (cosine only) | recall (cosine only) | precision (with guards) | recall (with guards) | false hits with guards |");
        sb.AppendLine("| ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (float t in Thresholds)
        {
            var plain = Evaluate(pairs, cosine, conflicts, t, guards: false);
            var guarded = Evaluate(pairs, cosine, conflicts, t, guards: true);
            sb.AppendLine(inv, $"| {t:0.00} | {plain.Precision:0.000} | {plain.Recall:0.000} | {guarded.Precision:0.000} | {guarded.Recall:0.000} | {guarded.FalsePositives} |");
        }
        return sb.ToString();
    }

    /// <summary>The different pairs that would still be served at <paramref name="threshold"/> with guards: what to look at next.</summary>
    public static IEnumerable<string> FalseHits(IReadOnlyList<LabelledPair> pairs, float[] cosine, GuardConflict[] conflicts, float threshold) =>
        pairs.Select((p, i) => (p, i))
            .Where(x => !x.p.Same && cosine[x.i] >= threshold && conflicts[x.i] == GuardConflict.None)
            .Select(x => string.Create(CultureInfo.InvariantCulture, $"{cosine[x.i]:0.000} [{x.p.Category}] {x.p.A} | {x.p.B}"));

    public static float Median(IEnumerable<float> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? float.NaN : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
