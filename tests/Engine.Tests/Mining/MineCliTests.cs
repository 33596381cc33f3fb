using Engine.Cli;
using Engine.Mining.Output;

namespace Engine.Tests.Mining;

public class MineCliTests
{
    internal static void WriteVecs(string path, float[] data, int d)
    {
        using var w = new BinaryWriter(File.Create(path));
        for (int i = 0; i < data.Length / d; i++) { w.Write(d); for (int j = 0; j < d; j++) w.Write(data[i * d + j]); }
    }

    internal static void WriteIvecs(string path, long[][] rows)
    {
        using var w = new BinaryWriter(File.Create(path));
        foreach (var r in rows) { w.Write(r.Length); foreach (long v in r) w.Write((int)v); }
    }

    /// <summary>base.fvecs, query.fvecs and pos.ivecs of <paramref name="data"/> in <paramref name="tmp"/>.</summary>
    internal static void WriteInputs(TempDir tmp, MiningTestData data)
    {
        WriteVecs(tmp.File("base.fvecs"), data.Corpus, MiningTestData.D);
        WriteVecs(tmp.File("query.fvecs"), data.Anchors, MiningTestData.D);
        WriteIvecs(tmp.File("pos.ivecs"), data.Positives);
    }

    [Fact]
    public void MineCommand_TakesSentenceTransformersOptions()
    {
        var data = MiningTestData.Create(seed: 32, anchors: 12, background: 80, dupsPerPositive: 0);
        using var tmp = new TempDir();
        WriteInputs(tmp, data);
        string Run(string name, params string[] extra)
        {
            string outPath = tmp.File(name);
            string[] args = ["mine", "--corpus", tmp.File("base.fvecs"), "--anchors", tmp.File("query.fvecs"), "--positives", tmp.File("pos.ivecs"),
                "--metric", "cosine", "--range", "0:10", "--out", outPath, .. extra];
            Assert.Equal(0, Program.BuildRoot().Parse(args).Invoke());
            return outPath;
        }
        var included = JsonlMiningWriter.Read(Run("inc.jsonl", "--negatives", "3", "--include-positives", "--batch-size", "5")).ToList();
        Assert.Equal(12, included.Count);
        Assert.Contains(included, r => r.Negatives.Contains(data.Positives[(int)r.Anchor][0]));
        var excluded = JsonlMiningWriter.Read(Run("exc.jsonl", "--negatives", "3", "--sampling-strategy", "random", "--seed", "3")).ToList();
        var aliased = JsonlMiningWriter.Read(Run("alias.jsonl", "--sampling", "uniform", "--seed", "3", "--num-negatives", "3")).ToList();
        Assert.Equal(excluded.Select(r => r.Negatives), aliased.Select(r => r.Negatives));
        Assert.All(excluded, r => Assert.DoesNotContain(r.Negatives, n => data.Positives[(int)r.Anchor].Contains(n)));
        using var manifest = MiningManifest.Read(tmp.File("inc.jsonl"));
        Assert.Equal(5, manifest.RootElement.GetProperty("options").GetProperty("chunk_size").GetInt32());
        Assert.True(manifest.RootElement.GetProperty("options").GetProperty("include_positives").GetBoolean());
    }

    [Fact]
    public void MineAndHubnessCommands_WriteRowsReportAndManifest()
    {
        var data = MiningTestData.Create(seed: 31, anchors: 20, background: 100, hubs: 1);
        using var tmp = new TempDir();
        WriteInputs(tmp, data);
        string outPath = tmp.File("neg.jsonl");
        int rc = Program.BuildRoot().Parse([
            "mine", "--corpus", tmp.File("base.fvecs"), "--anchors", tmp.File("query.fvecs"), "--positives", tmp.File("pos.ivecs"),
            "--negatives", "4", "--range", "2:30", "--relative-margin", "0.05", "--dup-threshold", "0.99",
            "--sampling", "simans", "--hubness-gamma", "1", "--seed", "9", "--threads", "2", "--out", outPath]).Invoke();
        Assert.Equal(0, rc);
        var rows = JsonlMiningWriter.Read(outPath).ToList();
        Assert.Equal(20, rows.Count);
        Assert.All(rows, r => Assert.Equal(4, r.Negatives.Length));
        Assert.All(rows, r => Assert.DoesNotContain(r.Negatives, n => data.Duplicates[r.Anchor].Contains(n)));
        using var manifest = MiningManifest.Read(outPath);
        Assert.Equal(9UL, manifest.RootElement.GetProperty("seed").GetUInt64());
        Assert.StartsWith("sha256:", manifest.RootElement.GetProperty("inputs").GetProperty("anchors").GetString());
        Assert.True(File.Exists(outPath + ".report.json"));

        // Corpus anchors: one positives row per corpus item.
        int n = data.CorpusIds.Length;
        WriteIvecs(tmp.File("cpos.ivecs"), Enumerable.Range(0, n).Select(i => new long[] { (i + 1) % n }).ToArray());
        Assert.Equal(0, Program.BuildRoot().Parse(["mine", "--corpus", tmp.File("base.fvecs"), "--anchors", "corpus",
            "--positives", tmp.File("cpos.ivecs"), "--shortfall", "keep", "--out", tmp.File("c.jsonl")]).Invoke());
        var corpusRows = JsonlMiningWriter.Read(tmp.File("c.jsonl")).ToList();
        Assert.Equal(n, corpusRows.Count);
        Assert.All(corpusRows, r => Assert.DoesNotContain(r.Anchor, r.Negatives));

        // Bad input fails before any output exists: a positives file with the wrong row count, an empty window.
        Assert.NotEqual(0, Program.Main(["mine", "--corpus", tmp.File("base.fvecs"), "--anchors", "corpus",
            "--positives", tmp.File("pos.ivecs"), "--out", tmp.File("y.jsonl")]));
        Assert.NotEqual(0, Program.Main(["mine", "--corpus", tmp.File("base.fvecs"), "--anchors", tmp.File("query.fvecs"),
            "--positives", tmp.File("pos.ivecs"), "--range", "5:5", "--out", tmp.File("x.jsonl")]));
        Assert.False(File.Exists(tmp.File("y.jsonl")));
        Assert.False(File.Exists(tmp.File("x.jsonl")));

        Assert.Equal(0, Program.BuildRoot().Parse(["hubness", "--data", tmp.Path, "--k", "5", "--json", tmp.File("hub.json")]).Invoke());
        Assert.Contains("\"top_hubs\"", File.ReadAllText(tmp.File("hub.json")));
    }
}
