using Engine.Data;

namespace Engine.Tests.Data;

public sealed class DataSetTests : IDisposable
{
    private readonly DataTempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static DataSet Small(bool labels = true) =>
        SyntheticData.ClusteredDataSet("small", n: 300, nq: 20, d: 8, clusters: 5, seed: 7, Metric.L2, groundTruthK: 10, threads: 1);

    [Fact]
    public void SaveThenLoadRoundTrips()
    {
        var set = Small();
        set.Save(_dir.Path);
        var back = DataSet.Load(_dir.Path);
        Assert.Equal(set.Meta, back.Meta);
        Assert.Equal(set.Base, back.Base);
        Assert.Equal(set.Queries, back.Queries);
        Assert.Equal(set.GroundTruth, back.GroundTruth);
        Assert.Equal(10, back.GroundTruthK);
        Assert.Equal(set.BaseLabels, back.BaseLabels);
        Assert.Equal(set.QueryLabels, back.QueryLabels);
        Assert.Empty(Directory.GetFiles(_dir.Path, "*.tmp-*"));
    }

    [Theory]
    [InlineData(DataSet.BaseFile)]
    [InlineData(DataSet.QueryFile)]
    [InlineData(DataSet.MetaFile)]
    [InlineData(DataSet.GroundTruthFile)]
    public void MissingFileIsNamed(string file)
    {
        Small().Save(_dir.Path);
        File.Delete(_dir.File(file));
        var ex = Assert.Throws<FileNotFoundException>(() => DataSet.Load(_dir.Path));
        Assert.Equal(_dir.File(file), ex.FileName);
        Assert.Contains(file, ex.Message);
    }

    [Fact]
    public void GroundTruthIsOptionalWhenAsked()
    {
        Small().Save(_dir.Path);
        File.Delete(_dir.File(DataSet.GroundTruthFile));
        var set = DataSet.Load(_dir.Path, new DataSetLoadOptions { RequireGroundTruth = false });
        Assert.Null(set.GroundTruth);
        Assert.Throws<InvalidOperationException>(() => set.RecallAtK(new long[20 * 10], 10, 10));
        Assert.Throws<DirectoryNotFoundException>(() => DataSet.Load(_dir.File("nope")));
    }

    [Fact]
    public void MaxQueriesLoadsAPrefix()
    {
        var set = Small();
        set.Save(_dir.Path);
        var part = DataSet.Load(_dir.Path, new DataSetLoadOptions { MaxQueries = 5 });
        Assert.Equal(5, part.QueryCount);
        Assert.Equal(set.Queries.AsSpan(0, 5 * 8).ToArray(), part.Queries);
        Assert.Equal(set.GroundTruth!.AsSpan(0, 5 * 10).ToArray(), part.GroundTruth);
        Assert.Equal(set.QueryLabels!.AsSpan(0, 5).ToArray(), part.QueryLabels);
        Assert.Equal(set.Count, part.Count);
    }

    [Fact]
    public void FilesThatDisagreeWithMetaAreRejected()
    {
        var set = Small();
        set.Save(_dir.Path);
        new DataSetMeta("small", Metric.L2, 299, 20, 8).Write(_dir.File(DataSet.MetaFile));
        var ex = Assert.Throws<DataFormatException>(() => DataSet.Load(_dir.Path));
        Assert.Contains(DataSet.BaseFile, ex.Message);

        set.Meta.Write(_dir.File(DataSet.MetaFile));
        File.WriteAllBytes(_dir.File(DataSet.BaseLabelsFile), new byte[3]);
        Assert.Contains(DataSet.BaseLabelsFile, Assert.Throws<DataFormatException>(() => DataSet.Load(_dir.Path)).Message);

        File.Delete(_dir.File(DataSet.BaseLabelsFile));
        VectorFiles.Write(_dir.File(DataSet.GroundTruthFile), Enumerable.Repeat(300, 20 * 10).ToArray(), 10);
        Assert.Contains("not a base row number", Assert.Throws<DataFormatException>(() => DataSet.Load(_dir.Path)).Message);
    }

    [Theory]
    [InlineData("{\"name\":\"x\",\"metric\":\"l2\",\"n\":1,\"nq\":1}", "\"d\"")]
    [InlineData("{\"name\":\"x\",\"metric\":\"hamming\",\"n\":1,\"nq\":1,\"d\":2}", "hamming")]
    [InlineData("{\"name\":\"x\",\"metric\":\"l2\",\"n\":-1,\"nq\":1,\"d\":2}", "non-negative")]
    [InlineData("{\"name\":\"x\",\"metric\":\"l2\",\"n\":\"1\",\"nq\":1,\"d\":2}", "non-negative")]
    [InlineData("[1,2]", "object")]
    [InlineData("{\"name\":", "not valid JSON")]
    public void BadMetaIsAClearError(string json, string expected)
    {
        string path = _dir.File(DataSet.MetaFile);
        File.WriteAllText(path, json);
        var ex = Assert.Throws<DataFormatException>(() => DataSetMeta.Read(path));
        Assert.Contains(expected, ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void MetaIgnoresUnknownPropertiesAndRoundTrips()
    {
        string path = _dir.File(DataSet.MetaFile);
        File.WriteAllText(path, "{\"name\":\"glove\",\"source\":{\"a\":[1,2]},\"metric\":\"cosine\",\"n\":10,\"nq\":2,\"d\":3}");
        var meta = DataSetMeta.Read(path);
        Assert.Equal(new DataSetMeta("glove", Metric.Cosine, 10, 2, 3), meta);
        meta.Write(path);
        Assert.Equal(meta, DataSetMeta.Read(path));
        Assert.Contains("\"metric\": \"cosine\"", File.ReadAllText(path));
    }

    [Fact]
    public void ConstructorValidatesSizes()
    {
        Assert.Throws<ArgumentException>(() => new DataSet("x", Metric.L2, 3, new float[7], new float[3]));
        Assert.Throws<ArgumentException>(() => new DataSet("x", Metric.L2, 3, new float[6], new float[3], baseLabels: new byte[3]));
        Assert.Throws<ArgumentException>(() => new DataSet("x", Metric.L2, 3, new float[6], new float[3], new int[3], 2));
        var ok = new DataSet("x", Metric.L2, 3, new float[6], new float[3], [0, 1], 2);
        Assert.Equal(2, ok.Count);
    }
}
