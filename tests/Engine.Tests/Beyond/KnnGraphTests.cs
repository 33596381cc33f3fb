using Engine.Data;
using Engine.Index;
using Engine.Index.Flat;
using Engine.Mining.Graph;
using Engine.Tests.Support;

namespace Engine.Tests.Beyond;

public class KnnGraphTests
{
    private static KnnGraph Exact(float[] x, long[] ids, int d, Metric metric, int k)
    {
        using var flat = new FlatIndex(d, metric);
        flat.Add(x, ids);
        return KnnGraphBuilder.Build(flat, x, ids, new KnnGraphOptions { K = k, ChunkSize = 1 << 20 });
    }

    [Theory]
    [InlineData(Metric.L2)]
    [InlineData(Metric.InnerProduct)]
    [InlineData(Metric.Cosine)]
    public void Flat_graph_is_the_brute_force_graph_without_self(Metric metric)
    {
        const int n = 700, d = 12, k = 7;
        var x = TestData.Gaussian(n, d, seed: 3);
        var ids = TestData.Sequential(n, start: 100);
        using var flat = new FlatIndex(d, metric);
        flat.Add(x, ids);
        var reports = new List<BuildProgress>();
        var graph = KnnGraphBuilder.Build(flat, x, ids, new KnnGraphOptions { K = k, ChunkSize = 37, Threads = 1 },
            new SyncReports(reports));
        int agree = 0;
        for (int i = 0; i < n; i++)
        {
            var expect = TestData.BruteForce(x, ids, d, x.AsSpan(i * d, d).ToArray(), k + 1, metric).Where(id => id != ids[i]).Take(k);
            var row = graph.NeighborsOf(i).ToArray();
            Assert.DoesNotContain(ids[i], row);
            agree += expect.Intersect(row).Count();
        }
        Assert.True(agree >= n * k * 0.995, $"{agree}/{n * k}");
        Assert.Equal(new BuildProgress("knn-graph", n, n), reports[^1]);
        Assert.Equal(1 + (n + 36) / 37, reports.Count);
    }

    [Fact]
    public void Exact_duplicates_exclude_only_the_point_itself()
    {
        const int d = 4;
        float[] x = [1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 5, 5, 5, 5];
        long[] ids = [10, 11, 12, 13];
        var graph = Exact(x, ids, d, Metric.L2, 2);
        Assert.Equal(11, graph.NeighborsOf(0)[0]);
        Assert.Equal(0f, graph.DistancesOf(0)[0]);
        Assert.Equal(10, graph.NeighborsOf(1)[0]);
    }

    [Fact]
    public void Auto_choice_meets_the_recall_target_on_the_whole_graph()
    {
        const int n = 8000, d = 16, k = 10;
        var x = SyntheticData.Clustered(n, d, clusters: 30, seed: 9);
        var (index, options, choice) = KnnGraphBuilder.Auto(x, d, Metric.L2, new KnnGraphOptions { K = k }, 0.95, seed: 3, exactBelow: 1000);
        using (index)
        {
            Assert.StartsWith("IVF", choice.Spec);
            Assert.True(choice.SampledRecall >= 0.955);
            Assert.True(choice.Tried.Count >= 2, "the first (1 probe) setting should not be enough: the check must have chosen");
            var ids = TestData.Sequential(n);
            var graph = KnnGraphBuilder.Build(index, x, ids, options);
            double recall = graph.RecallAgainst(Exact(x, ids, d, Metric.L2, k), k);
            Assert.True(recall >= 0.95, $"whole-graph recall {recall:F4}");
            // Same seed, same choice.
            var again = KnnGraphBuilder.Auto(x, d, Metric.L2, new KnnGraphOptions { K = k }, 0.95, seed: 3, exactBelow: 1000);
            using (again.Index) Assert.Equal(choice.Search["probes"], again.Choice.Search["probes"]);
        }
        var (small, _, exactChoice) = KnnGraphBuilder.Auto(x.AsSpan(0, 500 * d), d, Metric.L2, new KnnGraphOptions { K = k });
        using (small) Assert.Equal("Flat", exactChoice.Spec);
    }

    // Below the exact threshold the automatic join has one list: it is the brute-force graph, for every metric,
    // streamed in row order chunk by chunk.
    [Theory]
    [InlineData(Metric.L2, 1)]
    [InlineData(Metric.InnerProduct, 3)]
    [InlineData(Metric.Cosine, 2)]
    public void BuildAuto_below_the_threshold_is_the_brute_force_graph(Metric metric, int threads)
    {
        const int n = 700, d = 12, k = 7;
        var x = TestData.Gaussian(n, d, seed: 3);
        var ids = TestData.Sequential(n);
        var reports = new List<BuildProgress>();
        var (graph, choice) = KnnGraphBuilder.BuildAuto(x, d, metric, new KnnGraphOptions { K = k, ChunkSize = 37, Threads = threads },
            progress: new SyncReports(reports));
        Assert.Equal("Flat", choice.Spec);
        var exact = Exact(x, ids, d, metric, k);
        int agree = 0;
        for (int i = 0; i < n; i++)
        {
            var row = graph.NeighborsOf(i).ToArray();
            Assert.DoesNotContain((long)i, row);
            agree += exact.NeighborsOf(i).ToArray().Intersect(row).Count();
            for (int j = 0; j < k; j++)
                Assert.Equal(exact.DistancesOf(i)[j], graph.DistancesOf(i)[j], 1e-4f * Math.Max(1f, Math.Abs(exact.DistancesOf(i)[j])));
        }
        Assert.True(agree >= n * k * 0.998, $"{agree}/{n * k}");
        Assert.Equal(new BuildProgress("knn-graph", n, n), reports[^1]);
    }

    // Above it: the list-major join picks its probes from the sample's exact neighbours; the whole graph meets the
    // target on every metric, the same seed gives the same graph at any thread count.
    [Theory]
    [InlineData(Metric.L2)]
    [InlineData(Metric.InnerProduct)]
    [InlineData(Metric.Cosine)]
    public void BuildAuto_join_meets_the_recall_target_on_the_whole_graph(Metric metric)
    {
        const int n = 6000, d = 16, k = 10;
        var x = SyntheticData.Clustered(n, d, clusters: 30, seed: 9);
        var (graph, choice) = KnnGraphBuilder.BuildAuto(x, d, metric, new KnnGraphOptions { K = k, ChunkSize = 1000, Threads = 2 }, 0.95, seed: 3, exactBelow: 1000);
        Assert.StartsWith("IVF", choice.Spec);
        Assert.True(choice.SampledRecall >= 0.955, $"sampled {choice.SampledRecall}");
        Assert.True(choice.Tried.Count >= 2, "one probe should not be enough: the check must have chosen");
        double recall = graph.RecallAgainst(Exact(x, TestData.Sequential(n), d, metric, k), k);
        Assert.True(recall >= 0.95, $"whole-graph recall {recall:F4}");
        // The sampled recall is exact for the sample, so it predicts the whole graph closely.
        Assert.True(Math.Abs(recall - choice.SampledRecall) < 0.03, $"whole {recall:F4} vs sampled {choice.SampledRecall:F4}");
        for (int i = 0; i < n; i++) Assert.DoesNotContain((long)i, graph.NeighborsOf(i).ToArray());
        var (again, _) = KnnGraphBuilder.BuildAuto(x, d, metric, new KnnGraphOptions { K = k, ChunkSize = 333, Threads = 1 }, 0.95, seed: 3, exactBelow: 1000);
        Assert.Equal(graph.Neighbors, again.Neighbors);
        Assert.Equal(graph.Distances, again.Distances);
    }

    [Fact]
    public void Bad_inputs_are_clear_errors()
    {
        const int d = 4;
        var x = TestData.Gaussian(5, d, seed: 1);
        var ids = TestData.Sequential(5);
        using var flat = new FlatIndex(d);
        flat.Add(x, ids);
        var e = Assert.Throws<ArgumentException>(() => KnnGraphBuilder.Build(flat, x, ids, new KnnGraphOptions { K = 5 }));
        Assert.Contains("below the number", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => KnnGraphBuilder.Build(flat, x, ids, new KnnGraphOptions { K = 0 }));
        Assert.Throws<ArgumentException>(() => KnnGraphBuilder.Auto(x, d, Metric.L2, new KnnGraphOptions { K = 5 }));
        Assert.Throws<ArgumentException>(() => KnnGraphBuilder.BuildAuto(x, d, Metric.L2, new KnnGraphOptions { K = 5 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => KnnGraphBuilder.BuildAuto(x, d, Metric.L2, new KnnGraphOptions { K = 2 }, targetRecall: 1.5));
        var nan = (float[])x.Clone();
        nan[3] = float.NaN;
        Assert.Throws<ArgumentException>(() => KnnGraphBuilder.BuildAuto(nan, d, Metric.L2, new KnnGraphOptions { K = 2 }));
        Assert.Throws<ArgumentException>(() => KnnGraphBuilder.Build(flat, x, ids.AsSpan(0, 4), new KnnGraphOptions { K = 2 }));
        var graph = Exact(x, ids, d, Metric.L2, 2);
        Assert.Throws<ArgumentOutOfRangeException>(() => NearDuplicates.Find(graph, -1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => NearDuplicates.Find(graph, float.NaN));
        Assert.Throws<ArgumentException>(() => LabelPropagation.Run(graph, [-1, -1, -1, -1, -1], 2));
        Assert.Throws<ArgumentException>(() => LabelPropagation.Run(graph, [0, 2, -1, -1, -1], 2));
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void A_non_finite_edge_distance_or_a_bad_neighbour_id_is_refused_not_propagated(float bad)
    {
        // A NaN similarity used to become a NaN edge weight in LabelPropagation (every score NaN, predictions -1) and an
        // edge silently ignored by NearDuplicates; the C ABI and Python pass caller graphs straight to this constructor.
        const int d = 4, k = 2;
        var x = TestData.Gaussian(6, d, seed: 2);
        var ids = TestData.Sequential(6);
        var graph = Exact(x, ids, d, Metric.Cosine, k);
        var distances = (float[])graph.Distances.Clone();
        distances[3] = bad;
        var e = Assert.Throws<ArgumentException>(() => new KnnGraph(Metric.Cosine, k, ids, (long[])graph.Neighbors.Clone(), distances));
        Assert.Contains("distances[3]", e.Message);
        var neighbors = (long[])graph.Neighbors.Clone();
        neighbors[5] = -7;
        e = Assert.Throws<ArgumentException>(() => new KnnGraph(Metric.Cosine, k, ids, neighbors, (float[])graph.Distances.Clone()));
        Assert.Contains("neighbors[5]", e.Message);
        // Padding (-1) may carry any distance: the builders write +inf / -inf there.
        neighbors = (long[])graph.Neighbors.Clone();
        distances = (float[])graph.Distances.Clone();
        neighbors[1] = -1;
        distances[1] = bad;
        var padded = new KnnGraph(Metric.Cosine, k, ids, neighbors, distances);
        var (scores, _) = LabelPropagation.Run(padded, [0, 1, -1, -1, -1, -1], 2);
        Assert.All(scores, s => Assert.True(float.IsFinite(s)));
    }

    [Fact]
    public void Near_duplicate_groups_equal_brute_force_components()
    {
        const int d = 8, originals = 300;
        var rng = new Random(5);
        var x = new List<float>();
        var baseRows = TestData.Gaussian(originals, d, seed: 6, scale: 3);
        // Every third original gets 1..3 near copies (noise 1e-3); the rest stay alone.
        for (int i = 0; i < originals; i++)
        {
            x.AddRange(baseRows.AsSpan(i * d, d).ToArray());
            if (i % 3 == 0)
                for (int c = 0, copies = 1 + i % 4; c < copies; c++)
                    x.AddRange(baseRows.AsSpan(i * d, d).ToArray().Select(v => v + (float)(rng.NextDouble() - 0.5) * 1e-3f));
        }
        var data = x.ToArray();
        int n = data.Length / d;
        var ids = TestData.Sequential(n);
        var graph = Exact(data, ids, d, Metric.L2, 5);
        const float threshold = 0.01f;
        var dup = NearDuplicates.Find(graph, threshold);

        // Reference: union-find over all pairs within the threshold.
        var comp = Enumerable.Range(0, n).ToArray();
        int Root(int a) => comp[a] == a ? a : comp[a] = Root(comp[a]);
        for (int a = 0; a < n; a++)
            for (int b = a + 1; b < n; b++)
            {
                double s = 0;
                for (int j = 0; j < d; j++) s += Math.Pow(data[a * d + j] - data[b * d + j], 2);
                if (s <= threshold) comp[Root(b)] = Root(a);
            }
        var expected = Enumerable.Range(0, n).GroupBy(Root).Where(g => g.Count() > 1)
            .Select(g => g.Select(i => (long)i).Order().ToArray()).OrderBy(g => g[0]).ToList();
        var got = dup.Groups();
        Assert.Equal(expected.Count, got.Count);
        for (int i = 0; i < expected.Count; i++) Assert.Equal(expected[i], got[i]);
        Assert.Equal(originals, dup.GroupCount);
        var kept = dup.Keep();
        Assert.Equal(originals, kept.Length);
        Assert.All(got, g => Assert.Contains(g[0], kept));
        Assert.All(got, g => Assert.All(g.Skip(1), m => Assert.DoesNotContain(m, kept)));
    }

    [Theory]
    [InlineData(Metric.L2)]
    [InlineData(Metric.Cosine)]
    public void Label_propagation_spreads_few_labels_over_clusters(Metric metric)
    {
        const int n = 1200, d = 8, clusters = 4;
        var set = SyntheticData.ClusteredDataSet("lp", n, 0, d, clusters, seed: 8, metric, groundTruthK: 0, spread: 0.15f);
        var truth = set.BaseLabels!.Select(b => (int)b).ToArray();
        var ids = TestData.Sequential(n);
        var graph = Exact(set.Base, ids, d, metric, 10);
        var labels = Enumerable.Repeat(-1, n).ToArray();
        for (int c = 0; c < clusters; c++)
            foreach (int i in Enumerable.Range(0, n).Where(i => truth[i] == c).Take(3)) labels[i] = c;
        var (scores, predicted) = LabelPropagation.Run(graph, labels, clusters);
        Assert.Equal(n * clusters, scores.Length);
        double accuracy = Enumerable.Range(0, n).Count(i => predicted[i] == truth[i]) / (double)n;
        Assert.True(accuracy >= 0.95, $"accuracy {accuracy:F3}");
        for (int i = 0; i < n; i++) if (labels[i] >= 0) Assert.Equal(labels[i], predicted[i]);
    }

    [Fact]
    public void Cli_writes_the_graph_and_dedup_ids()
    {
        using var tmp = new TempDir();
        const int n = 900, d = 8;
        var x = TestData.Gaussian(n, d, seed: 4);
        Array.Copy(x, 0, x, d, d); // row 1 duplicates row 0
        string vectors = tmp.File("x.fvecs");
        VectorFiles.Write(vectors, x, d);
        var input = Engine.Cli.VectorInput.Load(null, vectors, "l2");
        var sw = new StringWriter();
        var request = new Engine.Cli.KnnGraphRequest(5, null, null, 0.95, tmp.File("g.ivecs"), Chunk: 100, Dedup: 1e-6f, DedupOut: tmp.File("keep.ivecs"), Json: true);
        Assert.Equal(0, Engine.Cli.KnnGraphCommand.Run(input, request, sw, Engine.Cli.Steps.Plain(TextWriter.Null)));
        var ids = VectorFiles.ReadInts(tmp.File("g.ivecs"));
        var dist = VectorFiles.ReadFloats(tmp.File("g.distances.fvecs"));
        var expect = Exact(x, TestData.Sequential(n), d, Metric.L2, 5);
        Assert.Equal(expect.Neighbors.Select(v => (int)v), ids.Data);
        AssertClose(expect.Distances, dist.Data);
        Assert.Equal(n - 1, VectorFiles.ReadInts(tmp.File("keep.ivecs")).Rows);
        using var doc = System.Text.Json.JsonDocument.Parse(sw.ToString());
        Assert.Equal(1, doc.RootElement.GetProperty("removed").GetInt32());
        Assert.Equal("Flat", doc.RootElement.GetProperty("index").GetString());

        // npy output with an explicit index; k >= n is refused before anything is written.
        var npy = request with { Out = tmp.File("g.npy"), Index = "Flat", Dedup = null, DedupOut = null };
        Assert.Equal(0, Engine.Cli.KnnGraphCommand.Run(input, npy, new StringWriter(), Engine.Cli.Steps.Plain(TextWriter.Null)));
        AssertClose(expect.Distances, VectorFiles.ReadFloats(tmp.File("g.distances.npy")).Data);
        Assert.Throws<ArgumentException>(() => Engine.Cli.KnnGraphCommand.Run(input, npy with { K = n, Out = tmp.File("h.npy") }, new StringWriter(), Engine.Cli.Steps.Plain(TextWriter.Null)));
        Assert.False(File.Exists(tmp.File("h.npy")));
    }

    // The blocked GEMM sums in another order for another batch split: equal to float rounding.
    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 1e-4f * Math.Max(1f, Math.Abs(expected[i])));
    }

    private sealed class SyncReports(List<BuildProgress> into) : IProgress<BuildProgress>
    {
        public void Report(BuildProgress value) => into.Add(value);
    }
}
