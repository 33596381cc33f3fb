using Engine.Mining;
using Engine.Mining.Batches;
using Engine.Mining.Hubness;

namespace Engine.Tests.Mining;

public class HubnessAndBatchTests
{
    [Fact]
    public void Hubness_FindsPlantedHubs()
    {
        var data = MiningTestData.Create(seed: 21, anchors: 0, background: 600, hubs: 4);
        using var index = data.BuildIndex(Metric.L2);
        var report = HubnessAnalyzer.Analyze(index, data.CorpusIds, new HubnessOptions { K = 10, TopHubs = 4 });
        Assert.Equal(data.Hubs.Order(), report.TopHubs.Select(h => h.Id).Order());
        Assert.True(report.Skewness > 1, $"planted hubs should skew N_k, got {report.Skewness}");
        Assert.True(report.HubShare > 0);
        Assert.Equal(600 * 10 + 4 * 10, report.Occurrence.Values.Sum()); // every query contributes k
        Assert.InRange(report.RobinHood, 0, 1);
        Assert.InRange(report.Gini, 0, 1);
        Assert.InRange(report.AntihubShare, 0, 1);

        // Uniform data has no hubs of that size: the statistic separates the two.
        var flat = MiningTestData.Create(seed: 21, anchors: 0, background: 600, hubs: 0);
        using var flatIndex = flat.BuildIndex(Metric.L2);
        var flatReport = HubnessAnalyzer.Analyze(flatIndex, flat.CorpusIds, new HubnessOptions { K = 10 });
        Assert.True(report.TopHubs[0].Count > 2 * flatReport.TopHubs[0].Count);

        // A seeded sample is reproducible and smaller.
        var s1 = HubnessAnalyzer.Analyze(index, data.CorpusIds, new HubnessOptions { K = 10, SampleSize = 200, Seed = 5 });
        var s2 = HubnessAnalyzer.Analyze(index, data.CorpusIds, new HubnessOptions { K = 10, SampleSize = 200, Seed = 5 });
        Assert.Equal(200, s1.QueryCount);
        Assert.Equal(s1.Occurrence.OrderBy(p => p.Key), s2.Occurrence.OrderBy(p => p.Key));
    }

    [Fact]
    public void Statistics_MatchHandComputedValues()
    {
        Assert.Equal(0, Statistics.Skewness([1, 2, 3]), 12);
        // scipy.stats.skew([1, 1, 1, 10]) = 1.1547005383792515
        Assert.Equal(1.1547005383792515, Statistics.Skewness([1, 1, 1, 10]), 9);
        Assert.Equal(0.5, HubnessNormalizer.Erfc(0.4769362762044699), 6);
    }

    [Theory]
    [InlineData(NormalizerKind.Csls)]
    [InlineData(NormalizerKind.MutualProximity)]
    [InlineData(NormalizerKind.LocalScaling)]
    [InlineData(NormalizerKind.Nicdm)]
    [InlineData(NormalizerKind.QbNorm)]
    public void Normalizers_ReduceHubOccurrence(NormalizerKind kind)
    {
        // One planted hub: several hubs next to each other would be each other's neighbours and skew their own statistics.
        var data = MiningTestData.Create(seed: 22, anchors: 0, background: 500, hubs: 1);
        using var index = data.BuildIndex(Metric.L2);
        var norm = HubnessNormalizer.Build(kind, index, data.CorpusIds, k: kind == NormalizerKind.QbNorm ? 1 : 10, beta: 1);
        // Fresh queries from the same distribution: count how often a planted hub lands in a top-10.
        var r = new Random(99);
        int nq = 200, k = 10;
        var queries = Enumerable.Range(0, nq * MiningTestData.D).Select(_ => MiningTestData.Gaussian(r)).ToArray();
        var dist = new float[nq * k]; var ids = new long[nq * k];
        index.Search(queries, k, dist, ids);
        int raw = ids.Count(data.Hubs.Contains);
        var scores = new float[nq * k];
        NormalizedSearch.Search(index, norm, queries, k, 50, scores, ids);
        int reduced = ids.Count(data.Hubs.Contains);
        Assert.True(reduced < raw, $"{norm.Name}: hub occurrences {raw} -> {reduced}");
        Assert.All(ids, id => Assert.True(id >= 0));
    }

    [Fact]
    public void Miner_WithNormalizer_AndHubnessGamma_AvoidsHubs()
    {
        var data = MiningTestData.Create(seed: 23, anchors: 80, background: 300, hubs: 3, dupsPerPositive: 0);
        using var index = data.BuildIndex(Metric.L2);
        var hub = HubnessAnalyzer.Analyze(index, data.CorpusIds, new HubnessOptions { K = 10 });
        var input = MiningInput.FromVectors(data.Anchors, MiningTestData.D, data.Positives);
        var plain = new MiningOptions { NumNegatives = 5, RangeMax = 30, Sampling = SamplingStrategy.Uniform, Seed = 1 };
        int HubCount(MiningOptions o) => new HardNegativeMiner(index, o).MineAll(input, out _).Sum(row => row.Negatives.Count(data.Hubs.Contains));
        int baseline = HubCount(plain);
        Assert.True(baseline > 0);
        Assert.True(HubCount(plain with { HubnessGamma = 2, KOccurrence = hub.Occurrence }) < baseline);
        var csls = HubnessNormalizer.Build(NormalizerKind.Csls, index, data.CorpusIds, k: 10);
        Assert.True(HubCount(plain with { Sampling = SamplingStrategy.Top, Normalizer = csls }) < HubCount(plain with { Sampling = SamplingStrategy.Top }));
    }

    private static List<TrainingExample> Examples(int n, int dupEvery)
    {
        // Example i has target i, except every dupEvery-th reuses target 0 (a duplicate positive).
        return Enumerable.Range(0, n).Select(i => new TrainingExample(1000 + i, [i % dupEvery == 0 ? 0 : i])).ToList();
    }

    [Fact]
    public void Batches_CoverEveryExampleOnce_AndMasksComeFromIds()
    {
        var ex = Examples(50, 7);
        var clusterOf = Enumerable.Range(0, 50).Select(i => i % 5).ToArray();
        foreach (var batches in new[]
        {
            BatchComposer.Random(ex, 8, seed: 1).ToList(),
            BatchComposer.ClusterHomogeneous(ex, clusterOf, 8, seed: 1).ToList(),
            BatchComposer.NoDuplicates(ex, 8, seed: 1).ToList(),
        })
        {
            Assert.Equal(Enumerable.Range(0, 50), batches.SelectMany(b => b.Examples).Order());
            foreach (var b in batches)
                for (int i = 0; i < b.Size; i++)
                    for (int j = 0; j < b.Size; j++)
                        Assert.Equal(i != j && ex[b.Examples[i]].Positives[0] == ex[b.Examples[j]].Positives[0], b.IsFalseNegative(i, j));
        }
        // Random batches with duplicates do get masked pairs; no-duplicate batches never do.
        Assert.Contains(BatchComposer.Random(ex, 25, seed: 1), b => b.Mask.Any(m => m));
        Assert.All(BatchComposer.NoDuplicates(ex, 25, seed: 1), b => Assert.DoesNotContain(true, b.Mask));
        // Cluster batches are homogeneous except those made of merged remainders (at most one per cluster).
        var cb = BatchComposer.ClusterHomogeneous(ex, clusterOf, 5, seed: 2).ToList();
        int mixed = cb.Count(b => b.Examples.Select(i => clusterOf[ex[i].Positives[0]]).Distinct().Count() > 1);
        Assert.InRange(mixed, 0, 5);
        Assert.True(cb.Count - mixed >= 7, $"expected mostly homogeneous batches, {mixed} of {cb.Count} mixed");
        // Reproducible per (seed, epoch), different across epochs.
        Assert.Equal(BatchComposer.Random(ex, 8, 1, 3).SelectMany(b => b.Examples), BatchComposer.Random(ex, 8, 1, 3).SelectMany(b => b.Examples));
        Assert.NotEqual(BatchComposer.Random(ex, 8, 1, 3).SelectMany(b => b.Examples), BatchComposer.Random(ex, 8, 1, 4).SelectMany(b => b.Examples));
        Assert.Throws<ArgumentException>(() => BatchComposer.ClusterHomogeneous(ex, new int[3], 8, 1).ToList());
    }
}
