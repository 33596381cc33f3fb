using System.CommandLine;
using Engine.Cli;
using Engine.Index.Flat;
using Engine.Mining;
using Engine.Tests.Mining;

namespace Engine.Tests.Hardening;

/// <summary>
/// Issue 11 defect 4: <c>engine mine</c> on an empty corpus crashed with DivideByZeroException (exit 134). Empty or
/// zero-dimension corpus, anchors and positives files are clear errors with a non-zero exit code; the library API
/// handles empty inputs the same way.
/// </summary>
public class MineEmptyInputTests
{
    private const int D = MiningTestData.D;

    private static Exception? Mine(params string[] args) =>
        Record.Exception(() => Program.BuildRoot().Parse(["mine", .. args]).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false }));

    private static (string Corpus, string Anchors, string Positives) ValidFiles(TempDir tmp)
    {
        var data = MiningTestData.Create(seed: 3, anchors: 5, background: 40, hubs: 0);
        MineCliTests.WriteVecs(tmp.File("base.fvecs"), data.Corpus, D);
        MineCliTests.WriteVecs(tmp.File("query.fvecs"), data.Anchors, D);
        MineCliTests.WriteIvecs(tmp.File("pos.ivecs"), data.Positives);
        return (tmp.File("base.fvecs"), tmp.File("query.fvecs"), tmp.File("pos.ivecs"));
    }

    [Fact]
    public void EmptyCorpusFile_IsAClearError_NotACrash()
    {
        using var tmp = new TempDir();
        var (_, anchors, positives) = ValidFiles(tmp);
        File.WriteAllBytes(tmp.File("empty.fvecs"), []);
        var e = Assert.IsType<ArgumentException>(Mine("--corpus", tmp.File("empty.fvecs"), "--anchors", anchors, "--positives", positives, "--out", tmp.File("o.jsonl")));
        Assert.Contains("--corpus", e.Message);
        Assert.Contains("holds no vectors", e.Message);
        Assert.Equal(2, Program.Main(["mine", "--corpus", tmp.File("empty.fvecs"), "--anchors", anchors, "--positives", positives, "--out", tmp.File("o.jsonl")]));
        Assert.Equal(2, Program.Main(["mine", "--corpus", tmp.File("empty.fvecs"), "--anchors", "corpus", "--positives", positives, "--out", tmp.File("o.jsonl")]));
        Assert.False(File.Exists(tmp.File("o.jsonl")));
    }

    [Fact]
    public void EmptyAnchorsOrPositivesFile_IsAClearError()
    {
        using var tmp = new TempDir();
        var (corpus, anchors, positives) = ValidFiles(tmp);
        File.WriteAllBytes(tmp.File("empty.fvecs"), []);
        File.WriteAllBytes(tmp.File("empty.ivecs"), []);
        var a = Assert.IsType<ArgumentException>(Mine("--corpus", corpus, "--anchors", tmp.File("empty.fvecs"), "--positives", positives, "--out", tmp.File("o.jsonl")));
        Assert.Contains("--anchors", a.Message);
        var p = Assert.IsType<ArgumentException>(Mine("--corpus", corpus, "--anchors", anchors, "--positives", tmp.File("empty.ivecs"), "--out", tmp.File("o.jsonl")));
        Assert.Contains("--positives", p.Message);
        Assert.Equal(2, Program.Main(["mine", "--corpus", corpus, "--anchors", tmp.File("empty.fvecs"), "--positives", tmp.File("empty.ivecs"), "--out", tmp.File("o.jsonl")]));
        Assert.False(File.Exists(tmp.File("o.jsonl")));
    }

    [Fact]
    public void ZeroDimensionCorpus_IsAClearError()
    {
        using var tmp = new TempDir();
        var (_, anchors, positives) = ValidFiles(tmp);
        File.WriteAllBytes(tmp.File("zero.fvecs"), new byte[12]); // three rows of dimension 0
        var e = Mine("--corpus", tmp.File("zero.fvecs"), "--anchors", anchors, "--positives", positives, "--out", tmp.File("o.jsonl"));
        Assert.True(e is ArgumentException or IOException, $"got {e?.GetType().Name}: {e?.Message}");
        Assert.Equal(2, Program.Main(["mine", "--corpus", tmp.File("zero.fvecs"), "--anchors", anchors, "--positives", positives, "--out", tmp.File("o.jsonl")]));
    }

    [Fact]
    public void LibraryApi_EmptyInputs()
    {
        using var empty = new FlatIndex(D, Metric.L2);
        var miner = new HardNegativeMiner(empty, new MiningOptions { Threads = 1 });
        var one = MiningInput.FromVectors(new float[D], D, [[0L]]);
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => miner.MineAll(one, out _)).Message);
        Assert.Equal("dimension", Assert.Throws<ArgumentOutOfRangeException>(() => MiningInput.FromVectors([], 0, [])).ParamName);

        using var flat = new FlatIndex(D, Metric.L2);
        flat.Add(new float[3 * D], [0, 1, 2]);
        var none = MiningInput.FromVectors([], D, []);
        var rows = new HardNegativeMiner(flat, new MiningOptions { Threads = 2, NumNegatives = 1, RangeMax = 2 }).MineAll(none, out var report);
        Assert.Empty(rows);
        Assert.False(string.IsNullOrEmpty(report.ToString()));
        Assert.False(string.IsNullOrEmpty(report.ToJson()));
    }
}
