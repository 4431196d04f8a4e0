using ProxyCore.Llm.Cache;

namespace ProxyCore.Llm.Tests.Cache;

public class CacheControlTests
{
    [Theory]
    [InlineData("", true, true, -1)]
    [InlineData("no-store", false, false, -1)]
    [InlineData("NO-STORE", false, false, -1)]
    [InlineData("no-cache", false, true, -1)]
    [InlineData(" no-cache , max-age=60", false, true, 60)]
    [InlineData("max-age=60", true, true, 60)]
    [InlineData("max-age=\"30\"", true, true, 30)]
    [InlineData("max-age=0", false, true, 0)]
    [InlineData("max-age=abc", true, true, -1)]
    [InlineData("max-age=", true, true, -1)]
    [InlineData("max-age=99999999999999", true, true, 2147483648)]
    [InlineData("private, community=\"no-store, x\"", true, true, -1)]
    [InlineData("max-age=60, max-age=10", true, true, 10)]
    [InlineData("no-transform, only-if-cached", true, true, -1)]
    [InlineData("no-cache, no-store", false, false, -1)]
    public void Parse_Directives_ReadWriteMaxAge(string header, bool read, bool write, long maxAgeSeconds)
    {
        var d = CacheControl.Parse(header);
        Assert.Equal(read, d.Read);
        Assert.Equal(write, d.Write);
        Assert.Equal(maxAgeSeconds < 0 ? null : TimeSpan.FromSeconds(maxAgeSeconds), d.MaxAge);
    }

    [Fact]
    public void Parse_SeveralHeaderLines_Accumulate()
    {
        var d = CacheControl.Parse("no-cache"u8);
        d = CacheControl.Parse("max-age=5"u8, d);
        Assert.False(d.Read);
        Assert.True(d.Write);
        Assert.Equal(TimeSpan.FromSeconds(5), d.MaxAge);
        Assert.False(CacheControl.Parse("x"u8, new LlmCacheDirectives(false, false, null)).Write);
    }
}
