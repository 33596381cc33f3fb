using System.Text.Json;
using Engine.Cli;
using Engine.Data;
using Engine.Tests.Support;

namespace Engine.Tests.Cli;

/// <summary><c>engine cluster</c>: the bench starts a real silo process on loopback; bad arguments are one-line errors.</summary>
public class DistributedCliTests
{
    [Fact]
    public void ClusterBench_OneSilo_PrintsTheInProcessAndClusterRows()
    {
        using var dir = new TempDir();
        SyntheticData.ClusteredDataSet("tiny", 2000, 30, 16, 8, seed: 7, Metric.L2, groundTruthK: 10).Save(dir.Path);
        var sw = new StringWriter();
        // A port block away from the defaults and from other test runs of this process id.
        int port = 40000 + Environment.ProcessId % 200 * 100;
        var options = new ClusterBenchOptions(dir.Path, "Flat", [1], Shards: 3, Replicas: 2, K: 10, Settings: [], QueryLimit: 0,
            Batch: 10, LatencyQueries: 10, BasePort: port, Baseline: true, Json: true);
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
    }
}
