using Engine.Data;

namespace Engine.Tests.Data;

public sealed class MnistTests : IDisposable
{
    private readonly DataTempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static byte[] Pixels(int n, int seed)
    {
        var rng = new Random(seed);
        var b = new byte[n * 4 * 4];
        rng.NextBytes(b);
        return b;
    }

    private void WriteSet(bool gz, int trainLabels = 30)
    {
        string ext = gz ? ".gz" : "";
        VectorFiles.Write(_dir.File("train-images-idx3-ubyte" + ext), Pixels(30, 1), 16, rowShape: [4, 4]);
        VectorFiles.Write(_dir.File("train-labels-idx1-ubyte" + ext), Enumerable.Range(0, trainLabels).Select(i => (byte)(i % 10)).ToArray(), 1, rowShape: []);
        VectorFiles.Write(_dir.File("t10k-images-idx3-ubyte" + ext), Pixels(5, 2), 16, rowShape: [4, 4]);
        VectorFiles.Write(_dir.File("t10k-labels-idx1-ubyte" + ext), new byte[] { 9, 8, 7, 6, 5 }, 1, rowShape: []);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LoadsRawAndGzippedIdx(bool gz)
    {
        WriteSet(gz);
        var set = Mnist.Load(_dir.Path);
        Assert.Equal(Mnist.DataSetName, set.Name);
        Assert.Equal(Metric.L2, set.Metric);
        Assert.Equal((30, 5, 16), (set.Count, set.QueryCount, set.Dimension));
        Assert.Equal(Pixels(30, 1).Select(b => (float)b), set.Base);
        Assert.Equal(new byte[] { 9, 8, 7, 6, 5 }, set.QueryLabels);
        Assert.Equal(3, set.BaseLabels![13]);
    }

    [Fact]
    public void FetchFromALocalDirectoryWritesTheDataSet()
    {
        WriteSet(gz: true);
        string outDir = _dir.File("out");
        Assert.Equal(0, Engine.Cli.Program.BuildRoot().Parse(["data", "fetch", "mnist", "--from", _dir.Path, "--out", outDir, "--k", "7"]).Invoke());
        var set = DataSet.Load(outDir);
        Assert.Equal((30, 5, 16, 7), (set.Count, set.QueryCount, set.Dimension, set.GroundTruthK));
        Assert.Equal(GroundTruth.Compute(set.Base, set.Queries, 16, Metric.L2, 7), set.GroundTruth);
        Assert.Equal(new byte[] { 9, 8, 7, 6, 5 }, set.QueryLabels);
    }

    [Fact]
    public void MissingOrMismatchedFilesAreClearErrors()
    {
        WriteSet(false, trainLabels: 29);
        Assert.Contains("29 labels for 30 images", Assert.Throws<DataFormatException>(() => Mnist.Load(_dir.Path)).Message);
        File.Delete(_dir.File("t10k-images-idx3-ubyte"));
        File.Delete(_dir.File("train-labels-idx1-ubyte"));
        WriteSet(false);
        File.Delete(_dir.File("t10k-labels-idx1-ubyte"));
        var ex = Assert.Throws<FileNotFoundException>(() => Mnist.Load(_dir.Path));
        Assert.Contains("t10k-labels-idx1-ubyte", ex.Message);
    }
}
