using System.Globalization;

namespace ProxyCore.Routing.Config;

/// <summary>
/// The config file's value syntaxes. Durations: "250ms", "5s", "1m", "1h", "1d" (decimals allowed,
/// "1.5s"), or a plain number of seconds. Sizes: "512B", "512KB", "64MB", "1GB", "1TB" (units are
/// powers of 1024, as nginx's k/m/g; case-insensitive), or a plain number of bytes.
/// </summary>
public static class ConfigValues
{
    public static bool TryParseDuration(string? text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }
        var s = text.AsSpan().Trim();
        int unitStart = s.Length;
        while (unitStart > 0 && char.IsAsciiLetter(s[unitStart - 1]))
        {
            unitStart--;
        }
        var unit = s[unitStart..];
        double scaleMs = unit switch
        {
            "" or "s" => 1000,
            "ms" => 1,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => -1,
        };
        if (scaleMs < 0 || !TryParseNonNegative(s[..unitStart], out double number))
        {
            return false;
        }
        double ms = number * scaleMs;
        if (ms > TimeSpan.MaxValue.TotalMilliseconds)
        {
            return false;
        }
        value = TimeSpan.FromMilliseconds(ms);
        return true;
    }

    public static bool TryParseSize(string? text, out long bytes)
    {
        bytes = 0;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }
        var s = text.AsSpan().Trim();
        int unitStart = s.Length;
        while (unitStart > 0 && char.IsAsciiLetter(s[unitStart - 1]))
        {
            unitStart--;
        }
        var unit = s[unitStart..];
        double scale;
        if (unit.IsEmpty || unit.Equals("b", StringComparison.OrdinalIgnoreCase)) { scale = 1; }
        else if (unit.Equals("kb", StringComparison.OrdinalIgnoreCase)) { scale = 1L << 10; }
        else if (unit.Equals("mb", StringComparison.OrdinalIgnoreCase)) { scale = 1L << 20; }
        else if (unit.Equals("gb", StringComparison.OrdinalIgnoreCase)) { scale = 1L << 30; }
        else if (unit.Equals("tb", StringComparison.OrdinalIgnoreCase)) { scale = 1L << 40; }
        else { return false; }
        if (!TryParseNonNegative(s[..unitStart], out double number))
        {
            return false;
        }
        double result = Math.Round(number * scale);
        if (result > long.MaxValue / 2)
        {
            return false;
        }
        bytes = (long)result;
        return true;
    }

    /// <summary>The shortest exact form: "250ms", "5s", "1m", "1h", "1500ms".</summary>
    public static string FormatDuration(TimeSpan value)
    {
        long ms = (long)value.TotalMilliseconds;
        if (ms != 0 && ms % 3_600_000 == 0) { return (ms / 3_600_000).ToString(CultureInfo.InvariantCulture) + "h"; }
        if (ms != 0 && ms % 60_000 == 0) { return (ms / 60_000).ToString(CultureInfo.InvariantCulture) + "m"; }
        if (ms % 1000 == 0) { return (ms / 1000).ToString(CultureInfo.InvariantCulture) + "s"; }
        return ms.ToString(CultureInfo.InvariantCulture) + "ms";
    }

    /// <summary>The shortest exact form: "64MB", "512KB", "1000B".</summary>
    public static string FormatSize(long bytes)
    {
        if (bytes != 0 && bytes % (1L << 30) == 0) { return (bytes >> 30).ToString(CultureInfo.InvariantCulture) + "GB"; }
        if (bytes != 0 && bytes % (1L << 20) == 0) { return (bytes >> 20).ToString(CultureInfo.InvariantCulture) + "MB"; }
        if (bytes != 0 && bytes % (1L << 10) == 0) { return (bytes >> 10).ToString(CultureInfo.InvariantCulture) + "KB"; }
        return bytes.ToString(CultureInfo.InvariantCulture) + "B";
    }

    private static bool TryParseNonNegative(ReadOnlySpan<char> s, out double number)
    {
        // NumberStyles.AllowDecimalPoint only: no sign, no exponent, no thousands separators, no spaces.
        return double.TryParse(s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out number)
            && double.IsFinite(number);
    }
}
