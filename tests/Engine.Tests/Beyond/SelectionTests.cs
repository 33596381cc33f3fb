using Engine.Clustering;
using Engine.Data;
using Engine.Mining;
using Engine.Mining.Selection;
using Engine.Tests.Support;

namespace Engine.Tests.Beyond;

public class SelectionTests
{
    private static SelectionResult Run(float[] x, int d, SelectionOptions o, Metric metric = Metric.L2) =>
        DataSelector.Select(x, d, metric, TestData.Sequential(x.Length / d, start: 1000), o);

    // The numpy-style reference: double-precision distances, first centre = the row with the smallest
    // CounterRng.Hash(seed, 2, row), then argmax of the distance to the chosen set (lowest row on ties).
    private static (List<int> Rows, double Radius) NaiveKCenter(float[] x, int d, int m, ulong seed)
    {
        int n = x.Length / d;
        int first = Enumerable.Range(0, n).OrderBy(i => CounterRng.Hash(seed, 2, (ulong)i)).First();
        var min = Enumerable.Repeat(double.PositiveInfinity, n).ToArray();
        var rows = new List<int> { first };
        while (true)
        {
            int c = rows[^1];
            for (int i = 0; i < n; i++)
            {
                double s = 0;
                for (int j = 0; j < d; j++) s += Math.Pow((double)x[i * d + j] - x[c * d + j], 2);
                min[i] = Math.Min(min[i], s);
            }
            int next = 0;
            for (int i = 1; i < n; i++) if (min[i] > min[next]) next = i;
            if (rows.Count == m) return (rows, min[next]);
            rows.Add(next);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void Kcenter_equals_the_naive_greedy_and_reports_its_radius(int threads)
    {
        const int n = 3000, d = 16, m = 40;
        var x = TestData.Gaussian(n, d, seed: 2);
        var got = Run(x, d, new SelectionOptions { Method = SelectionMethod.KCenter, N = m, Seed = 9, Threads = threads });
        var (rows, radius) = NaiveKCenter(x, d, m, 9);
        Assert.Equal(rows.Select(r => 1000L + r), got.Ids);
        Assert.Equal(radius, (double)got.Report["covering_radius_squared"], 1e-3 * radius);
        var fewer = Run(x, d, new SelectionOptions { Method = SelectionMethod.KCenter, N = m / 2, Seed = 9 });
        Assert.Equal(got.Ids.Take(m / 2), fewer.Ids); // greedy prefix
        Assert.True((double)fewer.Report["covering_radius"] >= (double)got.Report["covering_radius"]);
        Assert.Equal(m, got.Ids.Distinct().Count());
    }

    // Clustered data, many centres and duplicated rows (ties at distance 0): the greedy must still pick exactly the
    // naive greedy's rows, ties included.
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Kcenter_matches_the_naive_greedy_on_clustered_data_with_duplicates(int threads)
    {
        const int n = 2500, d = 12, m = 180;
        var x = SyntheticData.Clustered(n, d, 8, seed: 21);
        for (int i = 0; i < 200; i++) Array.Copy(x, (i * 7) * d, x, (n - 1 - i) * d, d); // exact duplicates
        var got = Run(x, d, new SelectionOptions { Method = SelectionMethod.KCenter, N = m, Seed = 4, Threads = threads });
        var (rows, radius) = NaiveKCenter(x, d, m, 4);
        Assert.Equal(rows.Select(r => 1000L + r), got.Ids);
        Assert.Equal(radius, (double)got.Report["covering_radius_squared"], 1e-3 * radius + 1e-9);
        // The triangle-inequality pruning skips most of the plain greedy's n × m distances on clustered data.
        long evaluated = (long)got.Report["distance_evaluations"];
        Assert.InRange(evaluated, n - 1, (long)n * m / 3);
    }

    // Many centres on larger clustered data: the pruned greedy still takes exactly the plain greedy's rows (its
    // margin covers float rounding), while computing a small share of its distances.
    [Fact]
    public void Kcenter_pruning_keeps_the_plain_greedy_selection_with_many_centres()
    {
        const int n = 6000, d = 24, m = 400;
        var x = SyntheticData.Clustered(n, d, 30, seed: 33);
        var got = Run(x, d, new SelectionOptions { Method = SelectionMethod.KCenter, N = m, Seed = 11, Threads = 2 });
        var (rows, radius) = NaiveKCenter(x, d, m, 11);
        Assert.Equal(rows.Select(r => 1000L + r), got.Ids);
        Assert.Equal(radius, (double)got.Report["covering_radius_squared"], 1e-3 * radius + 1e-9);
        Assert.True((long)got.Report["distance_evaluations"] < (long)n * m / 3, $"{got.Report["distance_evaluations"]} of {(long)n * m}");
    }

    // High-dimensional data where the triangle test prunes nothing: the byte-code bound must rule out most f32
    // distances and still give the naive greedy's exact selection, also when one wide dimension makes the global
    // byte scale coarse for all others (large quantisation errors: the bound must stay a bound).
    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 2)]
    public void Kcenter_byte_bound_keeps_the_naive_greedy_selection(bool wideDimension, int threads)
    {
        const int n = 1500, d = 96, m = 60;
        var x = TestData.Gaussian(n, d, seed: 41);
        if (wideDimension)
            for (int i = 0; i < n; i++) x[i * d + 5] *= 40; // the scale follows this dimension's range
        for (int i = 0; i < 30; i++) Array.Copy(x, i * d, x, (n - 1 - i) * d, d); // exact duplicates (ties at 0)
        var got = Run(x, d, new SelectionOptions { Method = SelectionMethod.KCenter, N = m, Seed = 5, Threads = threads });
        var (rows, radius) = NaiveKCenter(x, d, m, 5);
        Assert.Equal(rows.Select(r => 1000L + r), got.Ids);
        Assert.Equal(radius, (double)got.Report["covering_radius_squared"], 1e-3 * radius);
        long exact = (long)got.Report["distance_evaluations"], bounds = (long)got.Report["bound_evaluations"];
        Assert.True(bounds > 0 && exact <= bounds, $"{exact} f32 distances for {bounds} bounds");
        if (!wideDimension)
        {
            Assert.True(bounds > (long)n * (m - 1) / 2, $"bounds {bounds}"); // the triangle test passes most rows here
            Assert.True(exact < bounds / 4, $"{exact} f32 distances for {bounds} bounds");
        }
    }

    [Fact]
    public void Stratified_quotas_follow_cluster_sizes_weights_and_exclusions()
    {
        const int n = 2400, d = 8, m = 300, clusters = 6;
        var x = SyntheticData.Clustered(n, d, clusters, seed: 4);
        var prop = Run(x, d, new SelectionOptions { Method = SelectionMethod.Stratified, N = m, Clusters = clusters, Seed = 3 });
        var sizes = (int[])prop.Report["cluster_sizes"];
        var quotas = (int[])prop.Report["cluster_quotas"];
        Assert.Equal(m, quotas.Sum());
        Assert.Equal(m, prop.Ids.Distinct().Count());
        for (int c = 0; c < clusters; c++) Assert.True(Math.Abs(quotas[c] - m * sizes[c] / (double)n) < 1.0, $"cluster {c}");

        // The selected ids really come from their clusters in those numbers (same seeded k-means).
        var assign = new int[n];
        KMeans.Train(x, d, new KMeansOptions(clusters) { Seed = unchecked((int)(3UL ^ (3UL >> 32))) }, assign);
        var perCluster = prop.Ids.GroupBy(id => assign[id - 1000]).ToDictionary(g => g.Key, g => g.Count());
        for (int c = 0; c < clusters; c++) Assert.Equal(quotas[c], perCluster.GetValueOrDefault(c));

        var equal = Run(x, d, new SelectionOptions { Method = SelectionMethod.Stratified, N = m, Clusters = clusters, Seed = 3, Quota = StratifiedQuota.Equal });
        var eq = (int[])equal.Report["cluster_quotas"];
        Assert.True(eq.Max() - eq.Min() <= 1);

        var weights = new double[clusters];
        weights[0] = 1;
        weights[1] = 3;
        var weighted = Run(x, d, new SelectionOptions { Method = SelectionMethod.Stratified, N = 100, Clusters = clusters, Seed = 3, ClusterWeights = weights, Quota = StratifiedQuota.Equal });
        var wq = (int[])weighted.Report["cluster_quotas"];
        Assert.Equal([25, 75, 0, 0, 0, 0], wq);

        var round2 = Run(x, d, new SelectionOptions { Method = SelectionMethod.Stratified, N = m, Clusters = clusters, Seed = 3, Exclude = prop.Ids.ToHashSet() });
        Assert.Empty(round2.Ids.Intersect(prop.Ids));
    }

    [Fact]
    public void Allocation_caps_groups_and_moves_the_rest()
    {
        Assert.Equal([2, 4, 4], DataSelector.Allocate([1, 1, 1], [2, 100, 100], 10));
        Assert.Equal([2, 5, 4], DataSelector.Allocate([1, 1, 1], [2, 100, 100], 11));
        Assert.Equal([1, 1, 0], DataSelector.Allocate([1, 1, 0], [1, 1, 5], 2));
        Assert.Equal([1, 1, 3], DataSelector.Allocate([1, 1, 0], [1, 1, 5], 5));
    }

    [Fact]
    public void Coverage_prunes_the_hardest_and_samples_across_strata()
    {
        const int n = 2000, d = 4, m = 200;
        var x = TestData.Gaussian(n, d, seed: 5);
        var rng = new Random(6);
        // Skewed difficulty: most points easy, few hard.
        var scores = Enumerable.Range(0, n).Select(_ => (float)Math.Pow(rng.NextDouble(), 4)).ToArray();
        var result = Run(x, d, new SelectionOptions { Method = SelectionMethod.Coverage, N = m, Scores = scores, Strata = 10, PruneRate = 0.1, Seed = 2 });
        Assert.Equal(m, result.Ids.Distinct().Count());
        var hardest = Enumerable.Range(0, n).OrderByDescending(i => scores[i]).ThenBy(i => i).Take(200).Select(i => 1000L + i).ToHashSet();
        Assert.DoesNotContain(result.Ids, hardest.Contains);
        var sizes = (int[])result.Report["stratum_sizes"];
        var taken = (int[])result.Report["stratum_taken"];
        Assert.Equal(m, taken.Sum());
        // Even coverage: strata not taken whole all get the same share (± 1, integer division), and every stratum
        // no larger than that share is taken whole.
        var unfilled = Enumerable.Range(0, sizes.Length).Where(s => taken[s] < sizes[s]).ToArray();
        Assert.NotEmpty(unfilled);
        int level = unfilled.Min(s => taken[s]);
        Assert.True(unfilled.Max(s => taken[s]) - level <= 1);
        for (int s = 0; s < sizes.Length; s++) if (sizes[s] <= level) Assert.Equal(sizes[s], taken[s]);
        // Uniform would take ~90% from the easiest strata; coverage reaches the rare hard strata.
        Assert.True(taken[^1] > 0);
        Assert.Throws<ArgumentException>(() => Run(x, d, new SelectionOptions { Method = SelectionMethod.Coverage, N = m }));
        Assert.Throws<ArgumentException>(() => Run(x, d, new SelectionOptions { Method = SelectionMethod.Coverage, N = m, Scores = scores[..10] }));
    }

    [Fact]
    public void Sensitivity_weights_estimate_the_count_and_the_kmeans_cost()
    {
        const int n = 6000, d = 8, m = 1500;
        var x = SyntheticData.Clustered(n, d, 12, seed: 7);
        var result = Run(x, d, new SelectionOptions { Method = SelectionMethod.Sensitivity, N = m, Clusters = 12, Seed = 4 });
        var w = result.Weights!;
        Assert.Equal(result.Ids.Length, w.Length);
        Assert.All(w, v => Assert.True(v > 0));
        Assert.InRange(w.Sum(v => (double)v), n * 0.85, n * 1.15);
        // Weighted cost of the sample against fixed centres estimates the full cost.
        var centres = KMeans.Train(x, d, new KMeansOptions(12) { Seed = 99 });
        double Cost(int row) => Enumerable.Range(0, 12).Min(c => Enumerable.Range(0, d).Sum(j => Math.Pow(x[row * d + j] - centres[c * d + j], 2)));
        double full = Enumerable.Range(0, n).Sum(Cost);
        double estimate = result.Ids.Select((id, i) => w[i] * Cost((int)id - 1000)).Sum();
        Assert.InRange(estimate / full, 0.85, 1.15);
        Assert.Equal(result.Ids, Run(x, d, new SelectionOptions { Method = SelectionMethod.Sensitivity, N = m, Clusters = 12, Seed = 4, Threads = 1 }).Ids);
    }

    [Fact]
    public void Random_baselines_are_seeded_distinct_subsets()
    {
        const int n = 500, d = 3;
        var x = TestData.Gaussian(n, d, seed: 8);
        var a = Run(x, d, new SelectionOptions { Method = SelectionMethod.Random, N = 50, Seed = 1 });
        var b = Run(x, d, new SelectionOptions { Method = SelectionMethod.Random, N = 50, Seed = 1 });
        var c = Run(x, d, new SelectionOptions { Method = SelectionMethod.Random, N = 50, Seed = 2 });
        Assert.Equal(a.Ids, b.Ids);
        Assert.NotEqual(a.Ids, c.Ids);
        Assert.Equal(50, a.Ids.Distinct().Count());
        var epochs = Run(x, d, new SelectionOptions { Method = SelectionMethod.RandomPerEpoch, N = 50, Epochs = 4, Seed = 1 });
        Assert.Equal(4, epochs.Epochs!.Length);
        Assert.All(epochs.Epochs, e => Assert.Equal(50, e.Distinct().Count()));
        Assert.True(epochs.Epochs[1].Intersect(epochs.Epochs[2]).Count() < 25, "epochs draw fresh subsets");
        // Each point is about equally likely over many seeds (no positional bias).
        var counts = new int[n];
        for (ulong s = 0; s < 400; s++)
            foreach (long id in Run(x, d, new SelectionOptions { Method = SelectionMethod.Random, N = 50, Seed = s }).Ids) counts[id - 1000]++;
        Assert.InRange(counts.Take(250).Sum() / (double)counts.Sum(), 0.46, 0.54);
    }

    [Fact]
    public void Bad_inputs_are_clear_errors()
    {
        var x = TestData.Gaussian(10, 2, seed: 1);
        Assert.Throws<ArgumentException>(() => Run(x, 2, new SelectionOptions { Method = SelectionMethod.KCenter, N = 11 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => Run(x, 2, new SelectionOptions { N = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => Run(x, 2, new SelectionOptions { Method = SelectionMethod.Coverage, N = 2, PruneRate = 1 }));
        Assert.Throws<ArgumentException>(() => SelectionOptions.ParseMethod("greedy"));
        Assert.Throws<ArgumentException>(() => Run(x, 2, new SelectionOptions { Method = SelectionMethod.Stratified, N = 4, Clusters = 2, ClusterWeights = [1.0] }));
    }

    [Fact]
    public void Cli_select_writes_ids_weights_and_report()
    {
        using var tmp = new TempDir();
        var x = TestData.Gaussian(800, 6, seed: 3);
        string vectors = tmp.File("x.npy");
        VectorFiles.Write(vectors, x, 6);
        var input = Engine.Cli.VectorInput.Load(null, vectors, null);
        Assert.Equal(0, Engine.Cli.SelectCommand.Run(input, new SelectionOptions { Method = SelectionMethod.KCenter, N = 20, Seed = 5 }, tmp.File("k.txt"), null, TextWriter.Null, Engine.Cli.Steps.Plain(TextWriter.Null)));
        var ids = File.ReadAllLines(tmp.File("k.txt")).Select(long.Parse).ToArray();
        Assert.Equal(DataSelector.Select(x, 6, Metric.L2, TestData.Sequential(800), new SelectionOptions { Method = SelectionMethod.KCenter, N = 20, Seed = 5 }).Ids, ids);
        using (var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(tmp.File("k.txt.json"))))
            Assert.True(doc.RootElement.GetProperty("covering_radius").GetDouble() > 0);
        Assert.Equal(0, Engine.Cli.SelectCommand.Run(input, new SelectionOptions { Method = SelectionMethod.Sensitivity, N = 100, Seed = 5 }, tmp.File("s.npy"), tmp.File("s.json"), TextWriter.Null, Engine.Cli.Steps.Plain(TextWriter.Null)));
        Assert.Equal(VectorFiles.ReadInts(tmp.File("s.npy")).Data.Length, VectorFiles.ReadFloats(tmp.File("s.weights.npy")).Rows);
        Assert.Equal(0, Engine.Cli.SelectCommand.Run(input, new SelectionOptions { Method = SelectionMethod.RandomPerEpoch, N = 10, Epochs = 3 }, tmp.File("e.ivecs"), null, TextWriter.Null, Engine.Cli.Steps.Plain(TextWriter.Null)));
        Assert.Equal(3, VectorFiles.ReadInts(tmp.File("e.ivecs")).Rows);
        Assert.Throws<ArgumentException>(() => Engine.Cli.SelectCommand.Run(input, new SelectionOptions { N = 10 }, tmp.File("e.csv"), null, TextWriter.Null, Engine.Cli.Steps.Plain(TextWriter.Null)));
    }
}
