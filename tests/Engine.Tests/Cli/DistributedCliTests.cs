using System.Text.Json;
using Engine.Cli;
using Engine.Data;
using Engine.Tests.Support;

namespace Engine.Tests.Cli;

/// <summary><c>engine cluster</c>: the bench starts a real silo process on loopback; bad arguments are one-line errors.</summary>
public class DistributedCliTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ClusterBench_OneSilo_PrintsTheInProcessAndClusterRows(bool records)
    {
        using var dir = new TempDir();
        SyntheticData.ClusteredDataSet("tiny", 2000, 30, 16, 8, seed: 7, Metric.L2, groundTruthK: 10).Save(dir.Path);
        var sw = new StringWriter();
        // A port block away from the defaults and from other test runs of this process id.
        int port = 40000 + Environment.ProcessId % 200 * 100 + (records ? 20 : 0);
        var options = new ClusterBenchOptions(dir.Path, "Flat", [1], Shards: 3, Replicas: 2, K: 10, Settings: [], QueryLimit: 0,
            Batch: 10, LatencyQueries: 10, BasePort: port, Baseline: true, Json: true, Records: records, WarmUpSeconds: 0);
        Assert.Equal(0, ClusterBench.Run(options, sw, TextWriter.Null));
        var rows = sw.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal(2, rows.Length);
        Assert.Equal(0, rows[0].GetProperty("silos").GetInt32());
        var cluster = rows[1];
        Assert.Equal(1, cluster.GetProperty("silos").GetInt32());
        Assert.Equal(3, cluster.GetProperty("shards").GetInt32());
        Assert.Equal(1, cluster.GetProperty("replicas").GetInt32());   // R capped at the silo count
        Assert.Equal(1.0, cluster.GetProperty("recall").GetDouble(), 6); // exact spec: the single index's answers
        foreach (var field in new[] { "qps", "p50_ms", "p99_ms" }) Assert.True(cluster.GetProperty(field).GetDouble() > 0, field);
        // --records: the rows loaded as records (key = row number) into a record collection, local and distributed.
        Assert.All(rows, r => Assert.Equal(records, r.GetProperty("records").GetBoolean()));
        Assert.Equal(1.0, rows[0].GetProperty("recall").GetDouble(), 6);
    }

    [Fact]
    public async Task MineAgainstACluster_WritesTheRowsOfALocalMine()
    {
        using var dir = new TempDir();
        SyntheticData.ClusteredDataSet("tiny", 1500, 40, 16, 8, seed: 8, Metric.L2, groundTruthK: 10).Save(dir.Path);
        string corpus = Path.Combine(dir.Path, "base.fvecs"), anchors = Path.Combine(dir.Path, "query.fvecs");
        // Positives: each query's nearest base row (the ground truth's first column).
        string positives = Path.Combine(dir.Path, "pos.ivecs");
        var data = DataSet.Load(dir.Path);
        using (var w = new BinaryWriter(File.Create(positives)))
            for (int q = 0; q < data.QueryCount; q++) { w.Write(1); w.Write(data.GroundTruth![q * data.GroundTruthK]); }
        int port = 40050 + Environment.ProcessId % 200 * 100;
        using var silo = ClusterBench.StartSilo(port, port + 1, dir.File("silo"), seed: null);
        try
        {
            await ClusterBench.WaitReady(silo);
            string gateway = $"127.0.0.1:{port + 1}";
            Assert.Equal(0, BenchAndDemoTests.RunMain("cluster", "load", "--cluster", gateway, "--collection", "c", "--corpus", corpus, "--shards", "3", "--replicas", "1").Code);
            string[] common = ["mine", "--corpus", corpus, "--anchors", anchors, "--positives", positives, "--negatives", "4", "--range", "0:30", "--shortfall", "keep"];
            Assert.Equal(0, BenchAndDemoTests.RunMain([.. common, "--out", dir.File("local.jsonl")]).Code);
            var (code, err) = BenchAndDemoTests.RunMain([.. common, "--cluster", gateway, "--collection", "c", "--out", dir.File("cluster.jsonl")]);
            Assert.True(code == 0, err);
            Assert.Equal(File.ReadAllLines(dir.File("local.jsonl")), File.ReadAllLines(dir.File("cluster.jsonl")));
            (code, err) = BenchAndDemoTests.RunMain([.. common, "--cluster", gateway, "--collection", "nope", "--out", dir.File("x.jsonl")]);
            Assert.Equal(2, code);
            Assert.Contains("no collection 'nope'", err);
        }
        finally
        {
            silo.Kill(entireProcessTree: true);
            silo.WaitForExit(10000);
        }
    }

    [Fact]
    public void Cluster_BadArguments_AreOneLineErrors()
    {
        var (code, err) = BenchAndDemoTests.RunMain("cluster", "bench", "--data", "/nonexistent-engine-dir", "--silos", "1,0");
        Assert.Equal(2, code);
        Assert.Contains("--silos entry '0'", err);
        (code, err) = BenchAndDemoTests.RunMain("cluster", "bench", "--data", "/x", "--set", "probes");
        Assert.Equal(2, code);
        Assert.Contains("NAME=VALUE", err);
        (code, err) = BenchAndDemoTests.RunMain("cluster", "silo", "--port", "30001", "--gateway", "30001", "--data-dir", "/tmp/x");
        Assert.Equal(2, code);
        Assert.Contains("must differ", err);
        (code, err) = BenchAndDemoTests.RunMain("cluster", "silo", "--port", "30001", "--gateway", "30002", "--data-dir", "/tmp/x", "--seed", "nohost");
        Assert.Equal(2, code);
        Assert.Contains("HOST:PORT", err);
        (code, err) = BenchAndDemoTests.RunMain("cluster", "silo", "--port", "30001", "--gateway", "30002", "--data-dir", "/tmp/x", "--record-memory-mb", "8");
        Assert.Equal(2, code);
        Assert.Contains("--record-memory-mb must be in 16..", err);
        (code, err) = BenchAndDemoTests.RunMain("cluster", "bench", "--data", "/x", "--records", "--sharding", "centroid");
        Assert.Equal(2, code);
        Assert.Contains("--records shards by key hash only", err);
    }
}
