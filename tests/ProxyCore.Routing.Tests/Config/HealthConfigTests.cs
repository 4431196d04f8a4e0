using ProxyCore.Routing.Config;
using ProxyCore.Routing.Model;

namespace ProxyCore.Routing.Tests.Config;

public class HealthConfigTests
{
    private static ProxyConfig With(HealthCheckConfig? check = null, OutlierDetectionConfig? outliers = null)
    {
        var cluster = TestConfigs.Cluster("c", "http://127.0.0.1:9000", "http://127.0.0.1:9001");
        cluster.HealthCheck = check;
        cluster.OutlierDetection = outliers;
        return TestConfigs.ConfigOf([TestConfigs.Route("r", "/")], cluster);
    }

    [Fact]
    public void Validate_Defaults_AreValidAndDocumented()
    {
        var check = new HealthCheckConfig { Path = "/healthz" };
        var outliers = new OutlierDetectionConfig();

        Assert.Empty(ProxyConfigLoader.Validate(With(check, outliers)));
        Assert.Equal((TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(2), 2, 3, "200-399"),
            (check.Interval, check.Timeout, check.HealthyThreshold, check.UnhealthyThreshold, check.ExpectedStatus));
        Assert.Equal((5, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(300), 50, (int?)null, 20),
            (outliers.ConsecutiveFailures, outliers.EjectFor, outliers.MaxEjectFor, outliers.MaxEjectionPercent, outliers.ErrorRatePercent, outliers.MinRequests));
    }

    public static TheoryData<HealthCheckConfig, string> BadChecks => new()
    {
        { new HealthCheckConfig { Path = "" }, "$.clusters[0].healthCheck.path" },
        { new HealthCheckConfig { Path = "healthz" }, "$.clusters[0].healthCheck.path" },
        { new HealthCheckConfig { Path = "/health z" }, "$.clusters[0].healthCheck.path" },
        { new HealthCheckConfig { Path = "/h", Interval = TimeSpan.Zero, Timeout = TimeSpan.FromSeconds(-1) }, "$.clusters[0].healthCheck.interval" },
        { new HealthCheckConfig { Path = "/h", Interval = TimeSpan.FromSeconds(1), Timeout = TimeSpan.FromSeconds(1) }, "$.clusters[0].healthCheck.timeout" },
        { new HealthCheckConfig { Path = "/h", HealthyThreshold = 0 }, "$.clusters[0].healthCheck.healthyThreshold" },
        { new HealthCheckConfig { Path = "/h", UnhealthyThreshold = 0 }, "$.clusters[0].healthCheck.unhealthyThreshold" },
        { new HealthCheckConfig { Path = "/h", ExpectedStatus = "2xx" }, "$.clusters[0].healthCheck.expectedStatus" },
        { new HealthCheckConfig { Path = "/h", ExpectedStatus = "399-200" }, "$.clusters[0].healthCheck.expectedStatus" },
        { new HealthCheckConfig { Path = "/h", ExpectedStatus = "200,700" }, "$.clusters[0].healthCheck.expectedStatus" },
    };

    [Theory]
    [MemberData(nameof(BadChecks))]
    public void Validate_BadHealthCheck_ErrorAtPath(HealthCheckConfig check, string path)
    {
        var errors = ProxyConfigLoader.Validate(With(check));

        Assert.Contains(errors, e => e.Path == path);
    }

    public static TheoryData<OutlierDetectionConfig, string> BadOutliers => new()
    {
        { new OutlierDetectionConfig { ConsecutiveFailures = 0 }, "$.clusters[0].outlierDetection.consecutiveFailures" },
        { new OutlierDetectionConfig { EjectFor = TimeSpan.Zero }, "$.clusters[0].outlierDetection.ejectFor" },
        { new OutlierDetectionConfig { EjectFor = TimeSpan.FromMinutes(10) }, "$.clusters[0].outlierDetection.maxEjectFor" },
        { new OutlierDetectionConfig { MaxEjectionPercent = 101 }, "$.clusters[0].outlierDetection.maxEjectionPercent" },
        { new OutlierDetectionConfig { ErrorRatePercent = 0 }, "$.clusters[0].outlierDetection.errorRatePercent" },
        { new OutlierDetectionConfig { MinRequests = 0 }, "$.clusters[0].outlierDetection.minRequests" },
        { new OutlierDetectionConfig { ErrorRateWindow = TimeSpan.Zero }, "$.clusters[0].outlierDetection.errorRateWindow" },
    };

    [Theory]
    [MemberData(nameof(BadOutliers))]
    public void Validate_BadOutlierDetection_ErrorAtPath(OutlierDetectionConfig outliers, string path)
    {
        var errors = ProxyConfigLoader.Validate(With(outliers: outliers));

        Assert.Contains(errors, e => e.Path == path);
    }

    [Theory]
    [InlineData("200-399", 200, true)]
    [InlineData("200-399", 399, true)]
    [InlineData("200-399", 400, false)]
    [InlineData("200-399", 199, false)]
    [InlineData("200, 204 ,300-308", 204, true)]
    [InlineData("200, 204 ,300-308", 201, false)]
    [InlineData("200, 204 ,300-308", 308, true)]
    [InlineData("503", 503, true)]
    public void StatusRanges_TryParse_ContainsExactlyTheListed(string text, int status, bool expected)
    {
        Assert.True(StatusRanges.TryParse(text, out var ranges, out _));
        Assert.Equal(expected, ranges.Contains(status));
        Assert.False(ranges.Contains(-1));
        Assert.False(ranges.Contains(1000));
    }

    [Fact]
    public void DestinationState_Ejected_NotHealthyUntilReturned()
    {
        var state = new DestinationState();

        state.Eject(until: 500, recentEjections: 1);
        bool duringEjection = state.Healthy;
        bool staleReturn = state.Return(until: 400, now: 450); // an older ejection's timer
        bool returned = state.Return(until: 500, now: 500);

        Assert.False(duringEjection);
        Assert.False(staleReturn);
        Assert.True(returned);
        Assert.True(state.Healthy);
        Assert.Equal((1L, 500L), (state.EjectionsTotal, state.ReturnedAt));
    }

    [Fact]
    public void DestinationState_ActivelyUnhealthy_NotHealthyEvenIfNotEjected()
    {
        var state = new DestinationState { ActivelyHealthy = false };

        Assert.False(state.Healthy);
        Assert.False(state.IsEjected);
    }
}
