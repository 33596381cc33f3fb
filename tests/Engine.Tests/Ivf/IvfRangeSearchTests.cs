using Engine.Index.Flat;
using Engine.Index.Hnsw;
using Engine.Index.Ivf;

namespace Engine.Tests.Ivf;

/// <summary>IvfIndex.RangeSearch: the in-list range scan against Flat's exact range search and the k-NN keys.</summary>
public class IvfRangeSearchTests
{
    private const int D = 24, N = 3000, Lists = 16;

    private static (float[] X, long[] Ids) Data(Metric metric, int seed) =>
        (IvfTestData.Clustered(N, D, clusters: 30, seed: seed, spread: 0.5f), IvfTestData.Ids(N, offset: 1000));

    // For each query, a radius midway in the widest gap between consecutive exact distances around rank 10..30, so
    // float summation order (GEMM in Flat, row kernels in IVF) cannot move a point across it.
    private static float[] RadiiInGaps(FlatIndex flat, float[] q, int nq)
    {
        const int k = 40;
        var dist = new float[nq * k];
        var lab = new long[nq * k];
        flat.Search(q, k, dist, lab);
        var radii = new float[nq];
        for (int i = 0; i < nq; i++)
        {
            var row = dist.AsSpan(i * k, k);
            int best = 10;
            for (int j = 10; j < 30; j++)
                if (Math.Abs(row[j + 1] - row[j]) > Math.Abs(row[best + 1] - row[best])) best = j;
            radii[i] = (row[best] + row[best + 1]) / 2;
        }
        return radii;
    }

    private static void AssertSameResult(RangeSearchResult expect, RangeSearchResult got, int expectQuery = 0)
    {
        Assert.Equal(expect.IdsOf(expectQuery).ToArray(), got.IdsOf(0).ToArray());
        var e = expect.DistancesOf(expectQuery);
        var g = got.DistancesOf(0);
        for (int j = 0; j < e.Length; j++) Assert.Equal(e[j], g[j], 1e-4 * Math.Max(1, Math.Abs(e[j])));
    }

    [Theory]
    [InlineData("IVF16,Flat", Metric.L2)]
    [InlineData("IVF16,Flat", Metric.InnerProduct)]
    [InlineData("IVF16,Flat", Metric.Cosine)]
    [InlineData("IVF16,PQ8x4fs,RFlat", Metric.L2)]
    [InlineData("IVF16,PQ8x4fs,RFlat", Metric.InnerProduct)]
    [InlineData("IVF16,PQ8x4fs,RFlat", Metric.Cosine)]
    [InlineData("IVF16,PQ8,RFlat", Metric.L2)]
    [InlineData("IVF16,RaBitQ,RFlat", Metric.InnerProduct)]
    public void All_lists_probed_with_flat_or_refined_codes_equal_flat_exactly(string spec, Metric metric)
    {
        var (x, ids) = Data(metric, seed: 3);
        const int nq = 12;
        var q = IvfTestData.Clustered(nq, D, clusters: 30, seed: 4, spread: 0.5f);
        using var flat = new FlatIndex(D, metric);
        flat.Add(x, ids);
        using var ivf = IvfTestData.Build(spec, D, metric, x, ids);
        var radii = RadiiInGaps(flat, q, nq);
        bool refined = spec.EndsWith(",RFlat");
        for (int i = 0; i < nq; i++)
        {
            var query = q.AsSpan(i * D, D).ToArray();
            var expect = flat.RangeSearch(query, radii[i]);
            Assert.InRange(expect.TotalCount, 11, 31);
            // A slack wider than any score makes every code of every list a candidate: the refine store decides alone.
            var p = new IvfSearchParameters { Probes = Lists, Threads = 1 + i % 2, RangeSlack = refined ? 1e4f : null };
            AssertSameResult(expect, ivf.RangeSearch(query, radii[i], p));
        }
    }

    [Theory]
    [InlineData("IVF16,PQ8", Metric.L2)]
    [InlineData("IVF16,PQ8nr", Metric.InnerProduct)]
    [InlineData("IVF16,PQ8x4fs", Metric.L2)]
    [InlineData("IVF16,PQ8x4fs", Metric.Cosine)]
    [InlineData("IVF16,RaBitQ", Metric.L2)]
    [InlineData("IVF16,RaBitQfs1", Metric.InnerProduct)]
    [InlineData("IVF16,BIN2", Metric.L2)]
    public void Without_refine_the_range_holds_every_code_whose_knn_key_is_inside(string spec, Metric metric)
    {
        // The scanners' range keys are their k-NN keys: a k-NN search for every vector (all lists probed) cut at the
        // radius is the range result, same ids and bit-identical distances.
        var (x, ids) = Data(metric, seed: 5);
        const int nq = 6;
        var q = IvfTestData.Clustered(nq, D, clusters: 30, seed: 6, spread: 0.5f);
        using var ivf = IvfTestData.Build(spec, D, metric, x, ids);
        var p = new IvfSearchParameters { Probes = Lists, Threads = 1 };
        var dist = new float[nq * N];
        var lab = new long[nq * N];
        ivf.Search(q, N, dist, lab, p);
        for (int i = 0; i < nq; i++)
        {
            float radius = dist[i * N + 25];
            var got = ivf.RangeSearch(q.AsSpan(i * D, D), radius, p);
            var expect = Enumerable.Range(0, N).Select(j => (Id: lab[i * N + j], Dist: dist[i * N + j]))
                .Where(h => h.Id >= 0 && RangeSearchResult.Within(metric, h.Dist, radius))
                .OrderBy(h => metric == Metric.L2 ? h.Dist : -h.Dist).ThenBy(h => h.Id).ToArray();
            Assert.True(expect.Length >= 26, $"{spec}: {expect.Length} results");
            Assert.Equal(expect.Select(h => h.Id), got.IdsOf(0).ToArray());
            Assert.Equal(expect.Select(h => h.Dist), got.DistancesOf(0).ToArray());
        }
    }

    // Floors measured on this data (recall 0.315 / 0.670 / 0.839 for IVF32,Flat at 1 / 4 / 8 probes, the refined
    // PQ the same at 4 and 8 probes and 1.000 at 32, RaBitQ,RFlat 0.995, PQ8 without refine 0.874), set a little below.
    [Theory]
    [InlineData("IVF32,Flat", 1, 0.25)]
    [InlineData("IVF32,Flat", 4, 0.60)]
    [InlineData("IVF32,PQ8x4fs,RFlat", 4, 0.60)]
    [InlineData("IVF32,Flat", 8, 0.78)]
    [InlineData("IVF32,PQ8x4fs,RFlat", 8, 0.78)]
    [InlineData("IVF32,PQ8x4fs,RFlat", 32, 0.99)]
    [InlineData("IVF32,RaBitQ,RFlat", 32, 0.98)]
    [InlineData("IVF32,PQ8", 32, 0.80)]
    public void Approximate_settings_have_a_measured_recall_floor_against_flat(string spec, int probes, double floor)
    {
        const int nq = 80;
        var x = IvfTestData.Clustered(N * 2, D, clusters: 40, seed: 7, spread: 0.5f);
        var ids = IvfTestData.Ids(N * 2);
        var q = IvfTestData.Clustered(nq, D, clusters: 40, seed: 8, spread: 0.5f);
        using var flat = new FlatIndex(D, Metric.L2);
        flat.Add(x, ids);
        using var ivf = IvfTestData.Build(spec, D, Metric.L2, x, ids);
        var dist = new float[nq * 50];
        flat.Search(q, 50, dist, new long[nq * 50]);
        float radius = dist.Where((_, i) => i % 50 == 49).Order().ElementAt(nq / 2); // about 50 results per query
        var exact = flat.RangeSearch(q, radius);
        var got = ivf.RangeSearch(q, radius, new IvfSearchParameters { Probes = probes });
        double recall = RangeSearchResult.Recall(exact, got);
        Assert.True(recall >= floor, $"{spec} probes={probes}: range recall {recall:F3} < {floor}");
        Assert.True(exact.TotalCount > nq * 20);
        if (spec.EndsWith(",RFlat") || spec.EndsWith(",Flat"))
        {
            // Refined or exact distances: nothing outside the radius and no false positive.
            Assert.All(got.Distances, v => Assert.True(v <= radius));
            var truth = new HashSet<(int, long)>();
            for (int i = 0; i < nq; i++) foreach (long id in exact.IdsOf(i)) truth.Add((i, id));
            for (int i = 0; i < nq; i++) Assert.All(got.IdsOf(i).ToArray(), id => Assert.Contains((i, id), truth));
        }
    }

    [Fact]
    public void Batch_threads_and_filters_agree_with_single_queries()
    {
        var (x, ids) = Data(Metric.L2, seed: 9);
        const int nq = 70;
        var q = IvfTestData.Clustered(nq, D, clusters: 30, seed: 10, spread: 0.5f);
        using var ivf = IvfTestData.Build("IVF16,PQ8x4fs,RFlat", D, Metric.L2, x, ids);
        const float radius = 14f;
        var one = ivf.RangeSearch(q, radius, new IvfSearchParameters { Probes = 4, Threads = 1 });
        var many = ivf.RangeSearch(q, radius, new IvfSearchParameters { Probes = 4, Threads = 3 });
        Assert.True(one.TotalCount > nq * 5, $"{one.TotalCount} results");
        Assert.Equal(one.Offsets, many.Offsets);
        Assert.Equal(one.Ids, many.Ids);
        Assert.Equal(one.Distances, many.Distances);
        var filter = new IdAllowListFilter(ids.Where(id => id % 2 == 0));
        var filtered = ivf.RangeSearch(q, radius, new IvfSearchParameters { Probes = 4, Filter = filter, Threads = 2 });
        for (int i = 0; i < nq; i += 7)
        {
            AssertSameResult(one, ivf.RangeSearch(q.AsSpan(i * D, D), radius, new IvfSearchParameters { Probes = 4 }), i);
            Assert.Equal(one.IdsOf(i).ToArray().Where(id => id % 2 == 0), filtered.IdsOf(i).ToArray());
        }
        var empty = ivf.RangeSearch(ReadOnlySpan<float>.Empty, radius);
        Assert.Equal(0, empty.QueryCount);
    }

    [Theory]
    [InlineData(Metric.L2, -0.5f)]
    [InlineData(Metric.L2, float.NaN)]
    [InlineData(Metric.InnerProduct, float.NaN)]
    [InlineData(Metric.InnerProduct, float.NegativeInfinity)]
    [InlineData(Metric.Cosine, 1.5f)]
    public void Bad_radius_throws_what_flat_throws(Metric metric, float radius)
    {
        var (x, ids) = Data(metric, seed: 11);
        using var flat = new FlatIndex(D, metric);
        flat.Add(x, ids);
        using var ivf = IvfTestData.Build("IVF16,Flat", D, metric, x, ids);
        var q = IvfTestData.Clustered(1, D, clusters: 3, seed: 12);
        var fromFlat = Assert.Throws<ArgumentOutOfRangeException>(() => flat.RangeSearch(q, radius));
        var fromIvf = Assert.Throws<ArgumentOutOfRangeException>(() => ivf.RangeSearch(q, radius));
        Assert.Equal(fromFlat.ParamName, fromIvf.ParamName);
        Assert.Equal(fromFlat.Message, fromIvf.Message);
    }

    [Fact]
    public void Bad_queries_and_knobs_are_clear_errors()
    {
        var (x, ids) = Data(Metric.L2, seed: 13);
        using var flat = new FlatIndex(D, Metric.L2);
        flat.Add(x, ids);
        using var ivf = IvfTestData.Build("IVF16,Flat", D, Metric.L2, x, ids);
        using var refined = IvfTestData.Build("IVF16,PQ8,RFlat", D, Metric.L2, x, ids);
        var q = IvfTestData.Clustered(2, D, clusters: 3, seed: 14);
        Assert.Throws<ArgumentException>(() => flat.RangeSearch(new float[D + 1], 1f));
        Assert.Throws<ArgumentException>(() => ivf.RangeSearch(new float[D + 1], 1f));
        var nan = (float[])q.Clone();
        nan[3] = float.NaN;
        Assert.Throws<ArgumentException>(() => flat.RangeSearch(nan, 1f));
        Assert.Throws<ArgumentException>(() => ivf.RangeSearch(nan, 1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => ivf.RangeSearch(q, 1f, new IvfSearchParameters { Probes = Lists + 1 }));
        Assert.Throws<ArgumentException>(() => ivf.RangeSearch(q, 1f, new HnswSearchParameters { Ef = 8 }));
        var e = Assert.Throws<ArgumentException>(() => ivf.RangeSearch(q, 1f, new IvfSearchParameters { RangeSlack = 1f }));
        Assert.Contains("RangeSlack", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => refined.RangeSearch(q, 1f, new IvfSearchParameters { RangeSlack = -1f }));
        Assert.Throws<ArgumentOutOfRangeException>(() => refined.RangeSearch(q, 1f, new IvfSearchParameters { RangeSlack = float.NaN }));
        using var untrained = (IvfIndex)Engine.Index.IndexFactory.Create("IVF16,Flat", D, Metric.L2);
        Assert.Throws<InvalidOperationException>(() => untrained.RangeSearch(q, 1f));
    }
}
