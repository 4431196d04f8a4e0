using ProxyCore.Routing.Model;

namespace ProxyCore.Routing.Config;

/// <summary>Validation of <c>clusters[].healthCheck</c> and <c>clusters[].outlierDetection</c>.</summary>
internal sealed partial class ConfigValidator
{
    partial void ValidateClusterPolicies(ClusterConfig cluster, string path)
    {
        if (cluster.HealthCheck is { } check)
        {
            ValidateHealthCheck(check, path + ".healthCheck");
        }
        if (cluster.OutlierDetection is { } outliers)
        {
            ValidateOutlierDetection(outliers, path + ".outlierDetection");
        }
    }

    private void ValidateHealthCheck(HealthCheckConfig check, string path)
    {
        if (string.IsNullOrEmpty(check.Path) || check.Path[0] != '/')
        {
            Error(path + ".path", $"required, and must start with '/' (got '{check.Path}')");
        }
        else if (check.Path.AsSpan().ContainsAnyInRange('\0', ' ') || check.Path.Contains('\x7F') || check.Path.Contains('#') || !System.Text.Ascii.IsValid(check.Path))
        {
            // It goes into a request line verbatim: RFC 9112 §3.2 origin-form, no spaces or controls.
            Error(path + ".path", $"must be visible ASCII without spaces or a fragment (got '{check.Path}'); percent-encode it");
        }
        Positive(path + ".interval", check.Interval);
        Positive(path + ".timeout", check.Timeout);
        if (check.Timeout > TimeSpan.Zero && check.Timeout >= check.Interval)
        {
            // A probe still running when the next is due would overlap it and double the load.
            Error(path + ".timeout", $"must be shorter than interval ({ConfigValues.FormatDuration(check.Interval)})");
        }
        if (check.HealthyThreshold < 1)
        {
            Error(path + ".healthyThreshold", "must be at least 1");
        }
        if (check.UnhealthyThreshold < 1)
        {
            Error(path + ".unhealthyThreshold", "must be at least 1");
        }
        if (!StatusRanges.TryParse(check.ExpectedStatus, out _, out var why))
        {
            Error(path + ".expectedStatus", why);
        }
    }

    private void ValidateOutlierDetection(OutlierDetectionConfig outliers, string path)
    {
        if (outliers.ConsecutiveFailures < 1)
        {
            Error(path + ".consecutiveFailures", "must be at least 1");
        }
        Positive(path + ".ejectFor", outliers.EjectFor);
        if (outliers.MaxEjectFor < outliers.EjectFor)
        {
            Error(path + ".maxEjectFor", $"must be at least ejectFor ({ConfigValues.FormatDuration(outliers.EjectFor)})");
        }
        if (outliers.MaxEjectionPercent is < 0 or > 100)
        {
            Error(path + ".maxEjectionPercent", "must be between 0 and 100");
        }
        if (outliers.ErrorRatePercent is < 1 or > 100)
        {
            Error(path + ".errorRatePercent", "must be between 1 and 100");
        }
        if (outliers.MinRequests < 1)
        {
            Error(path + ".minRequests", "must be at least 1");
        }
        Positive(path + ".errorRateWindow", outliers.ErrorRateWindow);
    }
}
