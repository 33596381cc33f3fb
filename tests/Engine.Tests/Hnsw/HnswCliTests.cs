using System.Text.Json;
using Engine.Cli;
using Engine.Data;
using Engine.Mining.Output;
using Engine.Tests.Mining;
using Engine.Tests.Support;
using TempDir = Engine.Tests.Support.TempDir;

namespace Engine.Tests.Hnsw;

public class HnswCliTests
{
    [Fact]
    public void BenchSweepsEfAndBuildSearchRoundTrips()
    {
        using var dir = new TempDir();
        string data = dir.File("set");
        SyntheticData.ClusteredDataSet("set", 3000, 40, 16, 12, seed: 81, Metric.L2, groundTruthK: 10).Save(data);
        var sw = new StringWriter();
        var options = new BenchOptions(data, "HNSW12,efC64", 10, 2, BenchOptions.ParseSweeps(["ef=4,64"]), Json: true, Repeats: 1, QueryLimit: 0);
        Assert.Equal(0, BenchRunner.Run(options, sw));
        var rows = sw.ToString().Trim().Split('\n').Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToArray();
        Assert.Equal(2, rows.Length);
        Assert.Equal("HNSW12,efC64", rows[0].GetProperty("spec").GetString());
        Assert.Equal(64, rows[1].GetProperty("params").GetProperty("ef").GetInt32());
        double low = rows[0].GetProperty("recall").GetDouble(), high = rows[1].GetProperty("recall").GetDouble();
        Assert.True(high >= 0.95 && high >= low, $"recall ef=4 {low:F3}, ef=64 {high:F3}");

        string indexDir = dir.File("idx");
        Assert.Equal(0, BuildCommand.Run(data, "HNSW12,efC64", indexDir, TextWriter.Null));
        var out1 = new StringWriter();
        Assert.Equal(0, SearchCommand.Run(new SearchOptions(indexDir, data, K: 10, Threads: 2, Json: true, Ef: 64), out1));
        var row = JsonDocument.Parse(out1.ToString().Trim()).RootElement;
        Assert.True(row.GetProperty("recall").GetDouble() >= 0.95); // a parallel build: not the bench's graph
        Assert.Throws<ArgumentException>(() => SearchCommand.Run(new SearchOptions(indexDir, data, Probes: 4), TextWriter.Null));
    }

    [Fact]
    public void MineWithAnHnswIndex()
    {
        var data = MiningTestData.Create(seed: 82, anchors: 20, background: 200, hubs: 1);
        using var tmp = new TempDir();
        MineCliTests.WriteVecs(tmp.File("base.fvecs"), data.Corpus, MiningTestData.D);
        MineCliTests.WriteVecs(tmp.File("query.fvecs"), data.Anchors, MiningTestData.D);
        MineCliTests.WriteIvecs(tmp.File("pos.ivecs"), data.Positives);
        string outPath = tmp.File("neg.jsonl");
        int rc = Program.BuildRoot().Parse([
            "mine", "--corpus", tmp.File("base.fvecs"), "--anchors", tmp.File("query.fvecs"), "--positives", tmp.File("pos.ivecs"),
            "--index", "HNSW16", "--ef", "64", "--negatives", "4", "--range", "2:30", "--seed", "9", "--threads", "2", "--out", outPath]).Invoke();
        Assert.Equal(0, rc);
        var rows = JsonlMiningWriter.Read(outPath).ToList();
        Assert.Equal(20, rows.Count);
        Assert.All(rows, r => Assert.Equal(4, r.Negatives.Length));
        Assert.All(rows, r => Assert.DoesNotContain(r.Negatives, n => data.Positives[r.Anchor].Contains(n)));
    }
}
