using Engine.Index;
using Engine.Index.Hnsw;
using Engine.Tests.Ivf;

namespace Engine.Tests.Hnsw;

public class HnswRecallTests
{
    private const int N = 2000, D = 24, NQ = 100, K = 10;
    private static readonly float[] Data = IvfTestData.Clustered(N, D, 30, seed: 21);
    private static readonly float[] Queries = IvfTestData.Clustered(NQ, D, 30, seed: 22);
    private static readonly long[] Ids = IvfTestData.Ids(N, 500);

    [Theory]
    [InlineData("HNSW16,efC64", Metric.L2, 0.97)]
    [InlineData("HNSW16,efC64", Metric.InnerProduct, 0.93)]
    [InlineData("HNSW16,efC64", Metric.Cosine, 0.97)]
    [InlineData("HNSW16,efC64,F16", Metric.L2, 0.95)]
    [InlineData("HNSW16,efC64,SQ8", Metric.L2, 0.85)]
    [InlineData("HNSW16,efC64,SQ8", Metric.Cosine, 0.85)]
    public void RecallAgainstFlatIsAboveFloor(string spec, Metric metric, double floor)
    {
        Assert.Equal(spec, IndexFactory.Create(spec, D, metric).Description);
        using var index = new HnswIndex(spec, D, metric) { BuildThreads = 1 };
        index.Train(Data);
        index.Add(Data, Ids);
        Assert.Equal(N, index.Count);
        var truth = IvfTestData.GroundTruth(Data, Ids, Queries, D, K, metric);
        var got = IvfTestData.SearchLabels(index, Queries, K, new HnswSearchParameters { Ef = 64 });
        double recall = IvfTestData.Recall(truth, got, NQ, K);
        Assert.True(recall >= floor, $"{spec} {metric}: recall@{K} = {recall:F3} < {floor}");
    }

    [Fact]
    public void DistancesMatchTheExactIndex()
    {
        foreach (var metric in new[] { Metric.L2, Metric.InnerProduct, Metric.Cosine })
        {
            using var index = new HnswIndex("HNSW16,efC64", D, metric) { BuildThreads = 1 };
            index.Add(Data, Ids);
            using var flat = new Engine.Index.Flat.FlatIndex(D, metric);
            flat.Add(Data, Ids);
            var d1 = new float[NQ * K]; var l1 = new long[NQ * K];
            var d2 = new float[NQ * K]; var l2 = new long[NQ * K];
            index.Search(Queries, K, d1, l1, new HnswSearchParameters { Ef = 200 });
            flat.Search(Queries, K, d2, l2);
            for (int i = 0; i < NQ * K; i++)
                if (l1[i] == l2[i]) Assert.True(Math.Abs(d2[i] - d1[i]) <= 1e-4 * Math.Max(1, Math.Abs(d2[i])), $"{metric}: {d1[i]} vs {d2[i]}");
            for (int q = 0; q < NQ; q++)
                for (int j = 1; j < K; j++)
                    Assert.True(metric == Metric.L2 ? d1[q * K + j] >= d1[q * K + j - 1] : d1[q * K + j] <= d1[q * K + j - 1]);
        }
    }
}
