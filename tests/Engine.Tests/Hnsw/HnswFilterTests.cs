using Engine.Index.Hnsw;
using Engine.Tests.Ivf;

namespace Engine.Tests.Hnsw;

public class HnswFilterTests
{
    private const int N = 3000, D = 16, NQ = 50, K = 10;
    private static readonly (float[] Data, float[] Queries) Set = HnswTestData.Split(N, NQ, D, 30, seed: 51);
    private static readonly float[] Data = Set.Data, Queries = Set.Queries;
    private static readonly long[] Ids = IvfTestData.Ids(N, 100);

    private static HnswIndex Build()
    {
        var index = new HnswIndex("HNSW12,efC64", D) { BuildThreads = 1 };
        index.Add(Data, Ids);
        return index;
    }

    private sealed class ModuloFilter(int modulus) : IIdFilter
    {
        public bool IsAllowed(long id) => id % modulus == 0;
    }

    [Theory]
    [InlineData(0.01, true, 1.0)]
    [InlineData(0.10, false, 0.9)]
    public void FilteredRecallAtSelectivity(double selectivity, bool exact, double floor)
    {
        using var index = Build();
        var rng = new Random(52);
        var allowed = Ids.Where(_ => rng.NextDouble() < selectivity).ToArray();
        var filter = new IdAllowListFilter(allowed);
        var stats = new SearchStats();
        var truth = IvfTestData.GroundTruth(Data, Ids, Queries, D, K, Metric.L2, new SearchParameters { Filter = filter });
        var got = IvfTestData.SearchLabels(index, Queries, K, new HnswSearchParameters { Ef = 64, Filter = filter, Stats = stats });
        Assert.All(got.Where(l => l >= 0), l => Assert.Contains(l, allowed));
        double recall = IvfTestData.Recall(truth, got, NQ, K);
        Assert.True(recall >= floor, $"selectivity {selectivity}: recall {recall:F3}");
        Assert.Equal(exact ? 1 : 0, stats.ExactFallbacks);
    }

    [Fact]
    public void FilterWithoutSelectivityIsAppliedDuringTheWalk()
    {
        using var index = Build();
        var filter = new ModuloFilter(5);
        var stats = new SearchStats();
        var truth = IvfTestData.GroundTruth(Data, Ids, Queries, D, K, Metric.L2, new SearchParameters { Filter = filter });
        var got = IvfTestData.SearchLabels(index, Queries, K, new HnswSearchParameters { Ef = 64, Filter = filter, Stats = stats });
        Assert.All(got, l => Assert.True(l >= 0 && l % 5 == 0));
        Assert.Equal(0, stats.ExactFallbacks);
        Assert.Equal(NQ, stats.Queries);
        double recall = IvfTestData.Recall(truth, got, NQ, K);
        Assert.True(recall >= 0.95, $"recall {recall:F3}");
    }

    [Fact]
    public void ExactFallbackSkipsRemovedIds()
    {
        using var index = Build();
        var filter = new IdAllowListFilter([100, 101, 102, 5_000_000]);
        index.Remove([101]);
        var got = IvfTestData.SearchLabels(index, Queries.AsSpan(0, D).ToArray(), 4, new HnswSearchParameters { Filter = filter });
        Assert.Equal(new long[] { -1, -1, 100, 102 }, got.Order().ToArray());
    }
}
