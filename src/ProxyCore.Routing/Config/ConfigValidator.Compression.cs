namespace ProxyCore.Routing.Config;

/// <summary>The `compression` and `mirror` blocks of a route.</summary>
internal sealed partial class ConfigValidator
{
    private static readonly string[] s_compressionLevels = ["fastest", "optimal", "smallest"];

    private void ValidateCompression(CompressionConfig compression, string path)
    {
        if (!compression.Gzip && !compression.Brotli)
        {
            Error(path, "turns off both gzip and brotli: leave the block out instead");
        }
        if (compression.MinBytes < 0)
        {
            Error(path + ".minBytes", "must be 0 or more");
        }
        if (!s_compressionLevels.Contains(compression.Level))
        {
            Error(path + ".level", $"'{compression.Level}' is not one of {string.Join(", ", s_compressionLevels)}");
        }
        if (compression.ContentTypes.Count == 0)
        {
            Error(path + ".contentTypes", "needs at least one media type (leave it out for the defaults)");
        }
        for (int i = 0; i < compression.ContentTypes.Count; i++)
        {
            string type = compression.ContentTypes[i];
            int slash = type.IndexOf('/');
            if (slash <= 0 || slash == type.Length - 1 || !IsToken(type[..slash]) || !(type[(slash + 1)..] == "*" || IsToken(type[(slash + 1)..])))
            {
                Error($"{path}.contentTypes[{i}]", $"'{type}' is not a media type such as \"application/json\" or \"text/*\" (no parameters)");
            }
            else if (type[..slash] == "*")
            {
                // Images, archives and video are compressed already: re-compressing them costs CPU for nothing.
                Error($"{path}.contentTypes[{i}]", $"'{type}' would compress every type: list the compressible ones");
            }
        }
    }

    private void ValidateMirror(MirrorConfig mirror, string primaryCluster, string path)
    {
        if (string.IsNullOrWhiteSpace(mirror.Cluster))
        {
            Error(path + ".cluster", "cluster is required");
        }
        else if (!config.Clusters.Any(c => c.Id == mirror.Cluster))
        {
            Error(path + ".cluster", $"unknown cluster '{mirror.Cluster}'");
        }
        else if (mirror.Cluster == primaryCluster)
        {
            Error(path + ".cluster", "is the route's own cluster: every mirrored request would reach it twice");
        }
        if (double.IsNaN(mirror.Percent) || mirror.Percent is < 0 or > 100)
        {
            Error(path + ".percent", "must be between 0 and 100");
        }
        Positive(path + ".timeout", mirror.Timeout);
        if (mirror.MaxInFlight is < 1 or > 100_000)
        {
            Error(path + ".maxInFlight", "must be between 1 and 100000");
        }
    }
}
