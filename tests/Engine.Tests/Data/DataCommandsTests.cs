using Engine.Cli;
using Engine.Data;

namespace Engine.Tests.Data;

public sealed class DataCommandsTests : IDisposable
{
    private readonly DataTempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static int Run(params string[] args) => Program.BuildRoot().Parse(args).Invoke();

    [Fact]
    public void SynthWritesALoadableDataSetAndGtRecomputesIt()
    {
        string outDir = _dir.File("synth");
        Assert.Equal(0, Run("data", "synth", "--n", "400", "--d", "8", "--clusters", "5", "--seed", "3", "--nq", "12",
            "--metric", "ip", "--k", "20", "--threads", "1", "--out", outDir));
        var set = DataSet.Load(outDir);
        Assert.Equal((400, 12, 8, Metric.InnerProduct, 20), (set.Count, set.QueryCount, set.Dimension, set.Metric, set.GroundTruthK));
        Assert.Equal(SyntheticData.Clustered(400, 8, 5, 3), set.Base);
        Assert.NotNull(set.BaseLabels);

        File.Delete(Path.Combine(outDir, DataSet.GroundTruthFile));
        Assert.Equal(0, Run("data", "gt", "--data", outDir, "--k", "20"));
        Assert.Equal(set.GroundTruth, DataSet.Load(outDir).GroundTruth);
    }

    [Fact]
    public void AKAboveTheBaseCount_StoresEveryNeighbour_NotPadding()
    {
        // gt rows padded with -1 past n made an exact index's recall@k below 1: the ground truth holds n neighbours.
        string outDir = _dir.File("small");
        Assert.Equal(0, Run("data", "synth", "--n", "30", "--d", "4", "--nq", "5", "--k", "200", "--threads", "1", "--out", outDir));
        var set = DataSet.Load(outDir);
        Assert.Equal(30, set.GroundTruthK);
        Assert.DoesNotContain(-1, set.GroundTruth!);
        File.Delete(Path.Combine(outDir, DataSet.GroundTruthFile));
        Assert.Equal(0, Run("data", "gt", "--data", outDir, "--k", "100"));
        Assert.Equal(set.GroundTruth, DataSet.Load(outDir).GroundTruth);
    }

    [Fact]
    public void SynthRejectsBadArguments()
    {
        Assert.Equal(2, Run("data", "synth", "--n", "0", "--d", "8", "--out", _dir.File("x")));
        Assert.Equal(2, Run("data", "synth", "--n", "10", "--d", "8", "--metric", "hamming", "--out", _dir.File("x")));
        Assert.Equal(2, Run("data", "fetch", "cifar", "--out", _dir.File("x")));
        Assert.Equal(2, Run("data", "gt", "--data", _dir.File("missing")));
        Assert.False(Directory.Exists(_dir.File("x")));
        Assert.NotEqual(0, Run("data", "synth", "--d", "8", "--out", _dir.File("x"))); // --n is required
    }
}
