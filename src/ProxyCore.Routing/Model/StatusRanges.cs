namespace ProxyCore.Routing.Model;

/// <summary>
/// A set of HTTP status codes written as ranges and single codes, comma-separated ("200-399",
/// "200,204,300-308"): the parsed form of <c>healthCheck.expectedStatus</c>.
/// </summary>
public sealed class StatusRanges
{
    // Statuses are three digits (RFC 9110 §15), so a 600-bit table answers Contains with one lookup.
    private readonly bool[] _table;

    private StatusRanges(bool[] table) => _table = table;

    public bool Contains(int status) => (uint)status < (uint)_table.Length && _table[status];

    /// <summary>Parses <paramref name="text"/>; on failure <paramref name="error"/> says which part is wrong.</summary>
    public static bool TryParse(string? text, out StatusRanges ranges, out string error)
    {
        var table = new bool[600];
        ranges = new StatusRanges(table);
        error = "";
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "must list statuses, for example \"200-399\" or \"200,204\"";
            return false;
        }
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            int dash = part.IndexOf('-');
            string low = dash < 0 ? part : part[..dash].Trim();
            string high = dash < 0 ? part : part[(dash + 1)..].Trim();
            if (!TryStatus(low, out int from) || !TryStatus(high, out int to))
            {
                error = $"'{part}' is not a status (100-599) or a range of them (\"200-399\")";
                return false;
            }
            if (from > to)
            {
                error = $"'{part}': the range runs backwards";
                return false;
            }
            table.AsSpan(from, to - from + 1).Fill(true);
        }
        return true;
    }

    private static bool TryStatus(string text, out int status)
        => int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out status)
            && status is >= 100 and <= 599;
}
