namespace ProxyCore.Llm.Tests.Sse;

/// <summary>
/// The shared conformance data, read at run time from <c>../shared/corpus</c> next to the repository
/// root (the folder holding ProxyCore.sln), never copied into the repository.
/// </summary>
internal static class CorpusFiles
{
    private static readonly Lazy<string> RootPath = new(FindRoot);

    public static string Root => RootPath.Value;

    public static byte[] LlmStream(string name) => File.ReadAllBytes(Path.Combine(Root, "llm-streams", name));

    public static IEnumerable<string> LlmStreamNames() =>
        Directory.EnumerateFiles(Path.Combine(Root, "llm-streams"), "*.sse").Select(Path.GetFileName).Order()!;

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ProxyCore.sln")))
        {
            dir = dir.Parent;
        }
        if (dir?.Parent is null)
        {
            throw new InvalidOperationException($"ProxyCore.sln not found above {AppContext.BaseDirectory}");
        }
        var root = Path.Combine(dir.Parent.FullName, "shared", "corpus");
        if (!Directory.Exists(root))
        {
            throw new InvalidOperationException($"Corpus folder {root} is missing (expected ../shared/corpus from the repository root)");
        }
        return root;
    }
}
