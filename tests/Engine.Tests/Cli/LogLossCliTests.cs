using Engine.Cli;
using Engine.Data;
using Engine.Index.Spann;
using Engine.Tests.Support;

namespace Engine.Tests.Cli;

/// <summary>Issue 11, defect 1 through the CLI: <c>engine search</c> on a SPANN directory whose log is gone.</summary>
public class LogLossCliTests
{
    [Fact]
    public void Search_RefusesAnIndexWithoutItsLog_UntilAcceptLogLossIsGiven()
    {
        using var tmp = new TempDir();
        string data = tmp.File("set");
        SyntheticData.ClusteredDataSet("set", 600, 20, 16, 10, 5, Metric.L2, groundTruthK: 10).Save(data);
        string dir = tmp.File("idx");
        Assert.Equal(0, BuildCommand.Run(data, "SPANN(size=16,max=64)", dir, TextWriter.Null));
        using (var idx = SpannIndex.Open(dir))
        {
            Assert.Equal(Engine.Storage.Wal.WriteAheadLogs.FasterKind, idx.LogKind); // the CLI's default log
            var v = new float[16];
            idx.Add(v, [1_000_000]); // acknowledged, in the log only
        }
        Directory.Delete(Path.Combine(dir, "wal"), recursive: true);

        var (code, err) = BenchAndDemoTests.RunMain("search", "--dir", dir, "--data", data, "--threads", "1");
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", err);
        Assert.Contains(Path.Combine(dir, "wal"), err);
        Assert.Contains("--accept-log-loss", err);
        Assert.False(Directory.Exists(Path.Combine(dir, "wal")), "a refused search created no log");

        (code, err) = BenchAndDemoTests.RunMain("search", "--dir", dir, "--data", data, "--threads", "1", "--accept-log-loss");
        Assert.Equal(0, code);
        Assert.Contains("LOSS ACCEPTED", err);
        (code, err) = BenchAndDemoTests.RunMain("search", "--dir", dir, "--data", data, "--threads", "1");
        Assert.Equal(0, code);
        Assert.Contains("log (faster): replayed 0 record(s)", err);
    }
}
