using Engine.Data;
using Engine.Index;
using Engine.Index.Flat;
using Engine.Tests.Support;

namespace Engine.Tests.Beyond;

public class RangeSearchTests
{
    private const int D = 24;

    // Double-precision reference: (id, value) of every row inside the radius, metric values (cosine on unit rows).
    private static List<(long Id, double Value)> Reference(float[] x, long[] ids, float[] q, Metric metric, double radius)
    {
        var hits = new List<(long, double)>();
        double qn = Math.Sqrt(q.Sum(v => (double)v * v));
        for (int r = 0; r < ids.Length; r++)
        {
            double dot = 0, l2 = 0, xn = 0;
            for (int j = 0; j < D; j++)
            {
                double a = q[j], b = x[r * D + j];
                dot += a * b;
                l2 += (a - b) * (a - b);
                xn += b * b;
            }
            double value = metric switch { Metric.L2 => l2, Metric.InnerProduct => dot, _ => dot / (qn * Math.Sqrt(xn)) };
            bool inside = metric == Metric.L2 ? value <= radius : value >= radius;
            if (inside) hits.Add((ids[r], value));
        }
        return hits;
    }

    // A radius in the middle of the widest gap among the sorted reference values near the wanted rank, so float
    // rounding cannot move a point across it.
    private static float RadiusInGap(float[] x, long[] ids, float[] q, Metric metric, int rank)
    {
        var all = Reference(x, ids, q, metric, metric == Metric.L2 ? double.MaxValue : double.MinValue)
            .Select(h => h.Value).OrderBy(v => metric == Metric.L2 ? v : -v).ToArray();
        int best = rank;
        for (int i = rank - 5; i <= rank + 5; i++)
            if (Math.Abs(all[i + 1] - all[i]) > Math.Abs(all[best + 1] - all[best])) best = i;
        return (float)((all[best] + all[best + 1]) / 2);
    }

    [Theory]
    [InlineData(Metric.L2, 1)]
    [InlineData(Metric.L2, 2)]
    [InlineData(Metric.InnerProduct, 1)]
    [InlineData(Metric.InnerProduct, 2)]
    [InlineData(Metric.Cosine, 1)]
    [InlineData(Metric.Cosine, 2)]
    public void Flat_returns_exactly_the_brute_force_set(Metric metric, int threads)
    {
        const int n = 2500, nq = 9;
        var x = TestData.Gaussian(n, D, seed: 11);
        var ids = TestData.Sequential(n, start: 500);
        var q = TestData.Gaussian(nq, D, seed: 12);
        using var index = new FlatIndex(D, metric);
        index.Add(x, ids);
        for (int i = 0; i < nq; i++)
        {
            var query = q.AsSpan(i * D, D).ToArray();
            float radius = RadiusInGap(x, ids, query, metric, rank: 20 + 17 * i);
            var expect = Reference(x, ids, query, metric, radius);
            var got = index.RangeSearch(query, radius, new SearchParameters { Threads = threads });
            Assert.Equal(1, got.QueryCount);
            Assert.Equal(expect.Select(h => h.Id).Order(), got.IdsOf(0).ToArray().Order());
            var byId = expect.ToDictionary(h => h.Id, h => h.Value);
            var ds = got.DistancesOf(0);
            for (int j = 0; j < ds.Length; j++)
            {
                Assert.Equal(byId[got.IdsOf(0)[j]], ds[j], 1e-3 * Math.Max(1, Math.Abs(byId[got.IdsOf(0)[j]])));
                if (j > 0) Assert.True(metric == Metric.L2 ? ds[j] >= ds[j - 1] : ds[j] <= ds[j - 1], "best first");
            }
        }
    }

    [Fact]
    public void Flat_batch_equals_single_queries_and_honours_the_filter()
    {
        const int n = 3000, nq = 200;
        var x = TestData.Gaussian(n, D, seed: 21);
        var ids = TestData.Sequential(n);
        var q = TestData.Gaussian(nq, D, seed: 22);
        using var index = new FlatIndex(D, Metric.L2);
        index.Add(x, ids);
        const float radius = 30f;
        var batch = index.RangeSearch(q, radius);
        Assert.Equal(nq, batch.QueryCount);
        Assert.True(batch.TotalCount > nq, "the radius keeps several results per query");
        var filter = new IdAllowListFilter(Enumerable.Range(0, n).Where(i => i % 3 == 0).Select(i => (long)i));
        var filtered = index.RangeSearch(q, radius, new SearchParameters { Filter = filter, Threads = 1 });
        for (int i = 0; i < nq; i++)
        {
            var single = index.RangeSearch(q.AsSpan(i * D, D), radius);
            Assert.Equal(batch.IdsOf(i).ToArray(), single.IdsOf(0).ToArray());
            Assert.Equal(batch.IdsOf(i).ToArray().Where(id => id % 3 == 0), filtered.IdsOf(i).ToArray());
        }
    }

    [Fact]
    public void Default_implementation_is_exact_on_an_exact_index_and_grows_past_32()
    {
        // A wrapper that only has Search: the interface default (k doubling) must give Flat's own exact answer.
        const int n = 1500;
        var x = TestData.Gaussian(n, D, seed: 31);
        using var flat = new FlatIndex(D, Metric.InnerProduct);
        flat.Add(x, TestData.Sequential(n));
        IVectorIndex plain = new SearchOnly(flat);
        var q = TestData.Gaussian(5, D, seed: 32);
        var exact = flat.RangeSearch(q, 2.5f);
        var viaK = plain.RangeSearch(q, 2.5f);
        Assert.True(Enumerable.Range(0, 5).Any(i => exact.IdsOf(i).Length > 64), "some query needs k to grow twice");
        for (int i = 0; i < 5; i++)
            Assert.Equal(exact.IdsOf(i).ToArray().Order(), viaK.IdsOf(i).ToArray().Order());
        Assert.Equal(1.0, RangeSearchResult.Recall(exact, viaK));
    }

    [Theory]
    [InlineData("IVF32,Flat", "probes=8", 0.90)]
    [InlineData("HNSW16", "ef=64", 0.95)]
    public void Approximate_recall_against_flat_has_a_floor(string spec, string setting, double floor)
    {
        const int n = 6000, nq = 60, d = 32;
        var x = SyntheticData.Clustered(n, d, clusters: 40, seed: 41);
        var q = SyntheticData.ClusteredQueries(nq, d, clusters: 40, seed: 41);
        var ids = TestData.Sequential(n);
        using var flat = new FlatIndex(d, Metric.L2);
        flat.Add(x, ids);
        using var approx = IndexFactory.Create(spec, d, Metric.L2);
        approx.Train(x);
        approx.Add(x, ids);
        // A radius around the 30th neighbour's distance.
        var dist = new float[nq * 30];
        var lab = new long[nq * 30];
        flat.Search(q, 30, dist, lab);
        float radius = dist.Where((_, i) => i % 30 == 29).Order().ElementAt(nq / 2);
        var exact = flat.RangeSearch(q, radius);
        var parts = setting.Split('=');
        var parameters = IndexFactory.CreateParameters(approx, new Dictionary<string, string> { [parts[0]] = parts[1] }, 1);
        var got = approx.RangeSearch(q, radius, parameters);
        double recall = RangeSearchResult.Recall(exact, got);
        Assert.True(recall >= floor, $"{spec} range recall {recall:F3} < {floor}");
        Assert.True(exact.TotalCount > nq * 10);
        // Nothing outside the radius, ever.
        Assert.All(got.Distances, v => Assert.True(v <= radius));
    }

    [Theory]
    [InlineData(Metric.L2, -0.5f)]
    [InlineData(Metric.L2, float.NaN)]
    [InlineData(Metric.InnerProduct, float.NaN)]
    [InlineData(Metric.InnerProduct, float.PositiveInfinity)]
    [InlineData(Metric.Cosine, 1.5f)]
    public void Bad_radius_is_a_clear_error(Metric metric, float radius)
    {
        using var flat = new FlatIndex(D, metric);
        flat.Add(TestData.Gaussian(10, D, seed: 1), TestData.Sequential(10));
        var q = TestData.Gaussian(1, D, seed: 2);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => flat.RangeSearch(q, radius));
        Assert.Contains("radius", e.Message);
        IVectorIndex viaDefault = new SearchOnly(flat);
        Assert.Throws<ArgumentOutOfRangeException>(() => viaDefault.RangeSearch(q, radius));
    }

    [Fact]
    public void Negative_threshold_is_valid_for_inner_product_and_wrong_dimension_is_rejected()
    {
        using var flat = new FlatIndex(D, Metric.InnerProduct);
        flat.Add(TestData.Gaussian(50, D, seed: 1), TestData.Sequential(50));
        var all = flat.RangeSearch(TestData.Gaussian(1, D, seed: 2), -1e6f);
        Assert.Equal(50, all.TotalCount);
        Assert.Throws<ArgumentException>(() => flat.RangeSearch(new float[D + 1], 1f));
    }

    [Fact]
    public void Cli_search_radius_reports_results_and_recall()
    {
        using var tmp = new TempDir();
        var set = SyntheticData.ClusteredDataSet("range", 2000, 20, 16, 10, seed: 5, Metric.L2, groundTruthK: 10);
        string data = tmp.File("data"), dir = tmp.File("idx");
        set.Save(data);
        set.SaveGroundTruth(data);
        Assert.Equal(0, Engine.Cli.Program.Main(["build", "--data", data, "--index", "IVF16,Flat", "--dir", dir]));
        var sw = new StringWriter();
        var o = new Engine.Cli.SearchOptions(dir, data, Json: true, Radius: 2.0f, Probes: 16);
        Assert.Equal(0, Engine.Cli.SearchCommand.Run(o, sw));
        using var doc = System.Text.Json.JsonDocument.Parse(sw.ToString());
        Assert.Equal(1.0, doc.RootElement.GetProperty("range_recall").GetDouble()); // all lists probed: exact
        Assert.True(doc.RootElement.GetProperty("results").GetInt64() > 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => Engine.Cli.SearchCommand.Run(o with { Radius = -1f }, new StringWriter()));
    }

    // Delegates Search only, so the interface's default RangeSearch runs.
    private sealed class SearchOnly(IVectorIndex inner) : IVectorIndex
    {
        public int Dimension => inner.Dimension;
        public Metric Metric => inner.Metric;
        public long Count => inner.Count;
        public bool IsTrained => true;
        public string Description => "SearchOnly";
        public long MemoryBytes => 0;
        public void Train(ReadOnlySpan<float> vectors) => inner.Train(vectors);
        public void Add(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids) => inner.Add(vectors, ids);
        public void Search(ReadOnlySpan<float> queries, int k, Span<float> distances, Span<long> labels, SearchParameters? parameters = null) =>
            inner.Search(queries, k, distances, labels, parameters);
        public int Remove(ReadOnlySpan<long> ids) => inner.Remove(ids);
        public bool TryReconstruct(long id, Span<float> destination) => inner.TryReconstruct(id, destination);
        public void Save(string path) => inner.Save(path);
        public void Dispose() { }
    }
}
