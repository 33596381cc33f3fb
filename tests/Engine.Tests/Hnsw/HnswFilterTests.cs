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

    private sealed class WindowFilter(long lo, long hi) : IIdFilter
    {
        public bool IsAllowed(long id) => id >= lo && id <= hi;
    }

    [Theory]
    [InlineData(1000, 1019, true, 1.0)]    // 20 nodes: exact over the window
    [InlineData(1000, 1299, false, 0.9)]   // 10 %: filtered walk
    public void AttributeWindowRecall(long lo, long hi, bool exact, double floor)
    {
        // attribute = id - 100 + 0.5: the window [lo, hi] of attributes allows ids lo + 100 .. hi + 100.
        using var index = new HnswIndex("HNSW12,efC64", D) { BuildThreads = 1 };
        index.Add(Data, Ids, Ids.Select(i => i - 100 + 0.5).ToArray());
        var stats = new SearchStats();
        var p = new HnswSearchParameters { Ef = 64, AttributeMin = lo, AttributeMax = hi + 0.9, Stats = stats };
        var truth = IvfTestData.GroundTruth(Data, Ids, Queries, D, K, Metric.L2, new SearchParameters { Filter = new WindowFilter(lo + 100, hi + 100) });
        var got = IvfTestData.SearchLabels(index, Queries, K, p);
        Assert.All(got.Where(l => l >= 0), l => Assert.InRange(l, lo + 100, hi + 100));
        double recall = IvfTestData.Recall(truth, got, NQ, K);
        Assert.True(recall >= floor, $"window [{lo}, {hi}]: recall {recall:F3}");
        Assert.Equal(exact ? 1 : 0, stats.ExactFallbacks);

        // Window and allow-list together; nodes added without an attribute never match a window.
        var both = new HnswSearchParameters { AttributeMin = lo, AttributeMax = hi + 0.9, Filter = new IdAllowListFilter([lo + 100, lo + 101, 5]) };
        Assert.Equal(new long[] { -1, lo + 100, lo + 101 }, IvfTestData.SearchLabels(index, Queries.AsSpan(0, D).ToArray(), 3, both).Order().ToArray());
        index.Add(Queries.AsSpan(0, D), [1_000_000]);
        var near = new HnswSearchParameters { AttributeMin = double.MinValue, AttributeMax = double.MaxValue };
        Assert.DoesNotContain(1_000_000L, IvfTestData.SearchLabels(index, Queries.AsSpan(0, D).ToArray(), K, near));
        Assert.Equal(1_000_000L, IvfTestData.SearchLabels(index, Queries.AsSpan(0, D).ToArray(), 1)[0]);
    }

    // The attribute array exists only once some node has an attribute: nodes added before it never match a window,
    // nodes added with one do, and both survive save / load (mapped or not).
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AttributesArriveAfterNodesWithoutThemAndSurviveSaveLoad(bool mapped)
    {
        using var dir = new Engine.Tests.Support.TempDir();
        string path = Path.Combine(dir.Path, "attrs.hnsw");
        using (var index = new HnswIndex("HNSW8", D))
        {
            index.Add(Data.AsSpan(0, 100 * D), Ids.AsSpan(0, 100));
            long before = index.MemoryBytes;
            var window = new HnswSearchParameters { AttributeMin = 0, AttributeMax = 1000 };
            Assert.All(IvfTestData.SearchLabels(index, Queries.AsSpan(0, D).ToArray(), K, window), l => Assert.Equal(-1, l));
            index.Save(path);
            using (var plain = HnswIndex.Load(path, mapped))
                Assert.All(IvfTestData.SearchLabels(plain, Queries.AsSpan(0, D).ToArray(), K, window), l => Assert.Equal(-1, l));
            index.Add(Data.AsSpan(100 * D, 100 * D), Ids.AsSpan(100, 100), Enumerable.Range(0, 100).Select(i => (double)i).ToArray());
            Assert.True(index.MemoryBytes >= before + 200 * 8, "the attribute array is allocated (and counted) with the first attribute");
            index.Save(path);
        }
        using var loaded = HnswIndex.Load(path, mapped);
        var some = new HnswSearchParameters { AttributeMin = 10, AttributeMax = 19.5, Ef = 64 };
        var got = IvfTestData.SearchLabels(loaded, Queries.AsSpan(0, D).ToArray(), K, some);
        Assert.Equal(Ids.Skip(110).Take(10).Order(), got.Order());
    }

    [Fact]
    public void BadAttributesAndWindowsAreRejected()
    {
        using var index = new HnswIndex("HNSW8", D);
        Assert.Throws<ArgumentException>(() => index.Add(Data.AsSpan(0, 2 * D), [1, 2], [0.5]));
        Assert.Throws<ArgumentException>(() => index.Add(Data.AsSpan(0, 2 * D), [1, 2], [0.5, double.NaN]));
        Assert.Throws<ArgumentException>(() => index.Upsert(Data.AsSpan(0, D), [1], [double.PositiveInfinity]));
        Assert.Equal(0, index.Count);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new HnswSearchParameters { AttributeMin = double.NaN });
        Assert.Equal("AttributeMin", ex.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => new HnswSearchParameters { AttributeMax = double.NaN });
    }
}
