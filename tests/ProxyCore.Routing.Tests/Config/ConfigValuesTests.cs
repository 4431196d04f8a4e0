using ProxyCore.Routing.Config;

namespace ProxyCore.Routing.Tests.Config;

public class ConfigValuesTests
{
    [Theory]
    [InlineData("250ms", 250)]
    [InlineData("5s", 5_000)]
    [InlineData("1m", 60_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("1d", 86_400_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("0s", 0)]
    [InlineData("30", 30_000)]
    [InlineData(" 2s ", 2_000)]
    public void TryParseDuration_Valid_ReturnsMilliseconds(string text, long expectedMs)
    {
        Assert.True(ConfigValues.TryParseDuration(text, out var value));
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData(null)]
    [InlineData("s")]
    [InlineData("5x")]
    [InlineData("-5s")]
    [InlineData("5 s")]
    [InlineData("5S")]
    [InlineData("1e3s")]
    [InlineData("5sec")]
    [InlineData("1,5s")]
    [InlineData("99999999999999999d")]
    public void TryParseDuration_Invalid_ReturnsFalse(string? text)
    {
        Assert.False(ConfigValues.TryParseDuration(text, out _));
    }

    [Theory]
    [InlineData("512B", 512)]
    [InlineData("512KB", 512 * 1024)]
    [InlineData("64MB", 64L * 1024 * 1024)]
    [InlineData("1GB", 1L << 30)]
    [InlineData("2TB", 2L << 40)]
    [InlineData("64mb", 64L * 1024 * 1024)]
    [InlineData("1.5KB", 1536)]
    [InlineData("1000", 1000)]
    [InlineData("0", 0)]
    public void TryParseSize_Valid_ReturnsBytes(string text, long expected)
    {
        Assert.True(ConfigValues.TryParseSize(text, out long bytes));
        Assert.Equal(expected, bytes);
    }

    [Theory]
    [InlineData("")]
    [InlineData("MB")]
    [InlineData("-1KB")]
    [InlineData("64M")]
    [InlineData("64 MB")]
    [InlineData("1PB")]
    [InlineData("ten")]
    public void TryParseSize_Invalid_ReturnsFalse(string text)
    {
        Assert.False(ConfigValues.TryParseSize(text, out _));
    }

    [Theory]
    [InlineData(250, "250ms")]
    [InlineData(5_000, "5s")]
    [InlineData(60_000, "1m")]
    [InlineData(90_000, "90s")]
    [InlineData(7_200_000, "2h")]
    [InlineData(1_500, "1500ms")]
    [InlineData(0, "0s")]
    public void FormatDuration_RoundTrips(long ms, string expected)
    {
        string text = ConfigValues.FormatDuration(TimeSpan.FromMilliseconds(ms));
        Assert.Equal(expected, text);
        Assert.True(ConfigValues.TryParseDuration(text, out var back));
        Assert.Equal(TimeSpan.FromMilliseconds(ms), back);
    }

    [Theory]
    [InlineData(1000, "1000B")]
    [InlineData(8192, "8KB")]
    [InlineData(32L * 1024 * 1024, "32MB")]
    [InlineData(1L << 30, "1GB")]
    [InlineData(0, "0B")]
    public void FormatSize_RoundTrips(long bytes, string expected)
    {
        string text = ConfigValues.FormatSize(bytes);
        Assert.Equal(expected, text);
        Assert.True(ConfigValues.TryParseSize(text, out long back));
        Assert.Equal(bytes, back);
    }
}
