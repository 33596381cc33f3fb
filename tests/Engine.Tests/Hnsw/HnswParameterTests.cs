using Engine.Index;
using Engine.Index.Hnsw;
using Engine.Quantization;

namespace Engine.Tests.Hnsw;

public class HnswParameterTests
{
    private const int D = 8;

    [Theory]
    [InlineData("HNSW32", 32, 200, VectorEncoding.Flat)]
    [InlineData("HNSW16,efC100", 16, 100, VectorEncoding.Flat)]
    [InlineData("HNSW32,SQ8", 32, 200, VectorEncoding.SQ8)]
    [InlineData("HNSW8,efC40,F16", 8, 40, VectorEncoding.F16)]
    public void CompositionStringsRoundTrip(string spec, int m, int efc, VectorEncoding storage)
    {
        var parsed = HnswSpec.Parse(spec);
        Assert.Equal(new HnswSpec(m, efc, storage), parsed);
        Assert.Equal(spec, parsed.ToString());
        using var index = IndexFactory.Create(spec, D, Metric.L2);
        Assert.IsType<HnswIndex>(index);
        Assert.Equal(spec, index.Description);
        Assert.Equal(storage != VectorEncoding.SQ8, index.IsTrained);
        Assert.Equal("HNSW32", HnswSpec.Parse("HNSW32,efC200,Flat").ToString());
    }

    [Theory]
    [InlineData("HNSW")]
    [InlineData("HNSW1")]
    [InlineData("HNSW0")]
    [InlineData("HNSW513")]
    [InlineData("HNSW32,efC0")]
    [InlineData("HNSW32,efC")]
    [InlineData("HNSW32,PQ8")]
    [InlineData("HNSW32,SQ8,F16")]
    [InlineData("HNSW32,efC10,efC20")]
    [InlineData("HNSWx")]
    public void BadCompositionStringsAreRejected(string spec)
    {
        var ex = Assert.Throws<ArgumentException>(() => IndexFactory.Create(spec, D, Metric.L2));
        Assert.Contains(spec, ex.Message);
    }

    [Fact]
    public void BadSearchParametersAreRejected()
    {
        var ef = Assert.Throws<ArgumentOutOfRangeException>(() => new HnswSearchParameters { Ef = 0 });
        Assert.Equal("Ef", ef.ParamName);
        Assert.Contains("1..", ef.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new HnswSearchParameters { Ef = HnswSearchParameters.MaxEf + 1 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new HnswSearchParameters { ExactFallbackSelectivity = -0.1 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new HnswSearchParameters { ExactFallbackSelectivity = double.NaN });

        using var index = new HnswIndex("HNSW8", D);
        index.Add(new float[4 * D], [1, 2, 3, 4]);
        var dist = new float[4];
        var lab = new long[4];
        var threads = Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(new float[D], 4, dist, lab, new HnswSearchParameters { Threads = -1 }));
        Assert.Equal("Threads", threads.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(new float[D], 0, dist, lab));
        Assert.Throws<ArgumentException>(() => index.Search(new float[D + 1], 4, dist, lab));
        Assert.Throws<ArgumentException>(() => index.Search([float.NaN, 0, 0, 0, 0, 0, 0, 0], 4, dist, lab));
        Assert.Throws<ArgumentException>(() => index.Search(new float[D], 5, dist, lab));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.DefaultEf = 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => index.RepairThreshold = 1.5);

        var settings = new Dictionary<string, string> { ["ef"] = "0" };
        Assert.Throws<ArgumentOutOfRangeException>(() => IndexFactory.CreateParameters(index, settings, 1));
        settings = new Dictionary<string, string> { ["probes"] = "4" };
        Assert.Contains("known: ef", Assert.Throws<ArgumentException>(() => IndexFactory.CreateParameters(index, settings, 1)).Message);
        var p = Assert.IsType<HnswSearchParameters>(IndexFactory.CreateParameters(index, new Dictionary<string, string> { ["ef"] = "128" }, 2));
        Assert.Equal(128, p.Ef);
        Assert.Equal(2, p.Threads);
    }

    [Fact]
    public void BadInputsAreRejectedWithoutChangingTheIndex()
    {
        using var index = new HnswIndex("HNSW8", D);
        Assert.Throws<ArgumentException>(() => index.Add(new float[D + 1], [1]));
        Assert.Throws<ArgumentException>(() => index.Add(new float[D], [-1]));
        Assert.Throws<ArgumentException>(() => index.Add(new float[2 * D], [1]));
        var nan = new float[D];
        nan[3] = float.PositiveInfinity;
        Assert.Throws<ArgumentException>(() => index.Add(nan, [1]));
        Assert.Equal(0, index.Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => new HnswIndex("HNSW8", 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HnswIndex(new HnswSpec(1, 10, VectorEncoding.Flat), D));
        Assert.Throws<ArgumentException>(() => index.TryReconstruct(1, new float[D - 1]));

        using var sq8 = new HnswIndex("HNSW8,SQ8", D);
        Assert.Contains("Train", Assert.Throws<InvalidOperationException>(() => sq8.Add(new float[D], [1])).Message);
        Assert.Throws<ArgumentException>(() => sq8.Train(ReadOnlySpan<float>.Empty));
        sq8.Train(new float[2 * D]);
        sq8.Add(new float[D], [1]);
        Assert.Throws<InvalidOperationException>(() => sq8.Train(new float[D]));
    }
}
