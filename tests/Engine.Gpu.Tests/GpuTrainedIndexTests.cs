using Engine.Data;
using Engine.Index;
using Engine.Index.Flat;
using Engine.Index.Ivf;
using Engine.Mining;

namespace Engine.Gpu.Tests;

/// <summary>IVF and SPANN indexes whose training k-means runs on <see cref="GpuKMeansBackend"/>, and mining on the device.</summary>
[Collection("gpu")]
public sealed class GpuTrainedIndexTests(GpuFixture fixture)
{
    private const int K = 10;
    private readonly GpuKMeansBackend _backend = new(fixture.Context);

    public static TheoryData<string, int, Metric, bool, string> IvfCases => new()
    {
        // spec, d, metric, balanced lists, search settings
        { "IVF32,Flat", 24, Metric.L2, false, "probes=1" },
        { "IVF32,PQ8", 24, Metric.L2, false, "probes=6" },
        { "IVF24,Flat", 13, Metric.Cosine, true, "probes=2" },
        { "OPQ4,IVF16,PQ4", 16, Metric.InnerProduct, false, "probes=4" },
    };

    [Theory]
    [MemberData(nameof(IvfCases))]
    public void GpuTrainedIvfReachesTheRecallOfCpuTraining(string spec, int d, Metric metric, bool balanced, string settings)
    {
        var data = SyntheticData.ClusteredDataSet("ivf", 6000, 100, d, 40, seed: d * 7 + (int)metric, metric, groundTruthK: K, threads: 2);
        using var cpu = new IvfIndex(spec, d, metric) { BalancedLists = balanced, TrainingSeed = 5 };
        using var gpu = new IvfIndex(spec, d, metric) { BalancedLists = balanced, TrainingSeed = 5, ClusteringBackend = _backend };
        double cpuRecall = Recall(cpu, data, settings), gpuRecall = Recall(gpu, data, settings);
        Assert.True(cpuRecall >= 0.6, $"CPU-trained recall {cpuRecall} is too low for the comparison to mean anything");
        Assert.True(Math.Abs(gpuRecall - cpuRecall) <= 0.03, $"{spec}: GPU-trained recall {gpuRecall} vs CPU-trained {cpuRecall}");
    }

    [Theory]
    [InlineData(16, Metric.L2)]
    [InlineData(11, Metric.Cosine)]
    public void GpuTrainedSpannReachesTheRecallOfCpuTraining(int d, Metric metric)
    {
        var data = SyntheticData.ClusteredDataSet("spann", 5000, 100, d, 30, seed: 40 + d, metric, groundTruthK: K, threads: 2);
        const string spec = "SPANN(size=32,probes=8)";
        using var cpu = IndexFactory.Create(spec, d, metric);
        using var gpu = IndexFactory.Create(spec, d, metric, new IndexBuildOptions { ClusteringBackend = _backend });
        double cpuRecall = Recall(cpu, data, ""), gpuRecall = Recall(gpu, data, "");
        Assert.True(cpuRecall >= 0.6, $"CPU-trained recall {cpuRecall} is too low for the comparison to mean anything");
        Assert.True(Math.Abs(gpuRecall - cpuRecall) <= 0.03, $"SPANN d={d}: GPU-trained recall {gpuRecall} vs CPU-trained {cpuRecall}");
    }

    [Theory]
    [InlineData(Metric.Cosine)]
    [InlineData(Metric.L2)]
    public void MiningOverGpuFlatIndexMatchesFlatIndex(Metric metric)
    {
        const int n = 3000, d = 19, anchors = 40;
        var corpus = Data.Clustered(n, d, 25, seed: 61);
        var ids = Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        using var flat = new FlatIndex(d, metric);
        using var gpu = new GpuFlatIndex(fixture.Context, d, metric);
        flat.Add(corpus, ids);
        gpu.Add(corpus, ids);
        var positives = Enumerable.Range(0, anchors).Select(a => new long[] { a * 7 }).ToArray();
        var input = MiningInput.FromCorpusIds(Enumerable.Range(0, anchors).Select(a => (long)a * 7 + 1).ToArray(), positives);
        var options = new MiningOptions { NumNegatives = 5, RangeMin = 2, RangeMax = 40, Seed = 9, Threads = 2 };
        var expected = new HardNegativeMiner(flat, options).MineAll(input, out var cpuReport);
        var actual = new HardNegativeMiner(gpu, options).MineAll(input, out var gpuReport);
        Assert.Equal(cpuReport.RowsWritten, gpuReport.RowsWritten);
        Assert.True(cpuReport.RowsWritten > 0);
        Assert.Equal(expected.Count, actual.Count);
        for (int r = 0; r < expected.Count; r++)
        {
            var (e, a) = (expected[r], actual[r]);
            Assert.Equal(e.Anchor, a.Anchor);
            Assert.Equal(e.Negatives.Length, a.Negatives.Length);
            for (int j = 0; j < e.Negatives.Length; j++)
            {
                float tol = 1e-4f * Math.Max(1, Math.Abs(e.Scores[j]));
                Assert.True(Math.Abs(e.Scores[j] - a.Scores[j]) <= tol, $"row {r} negative {j}: score {a.Scores[j]} vs {e.Scores[j]}");
                bool tied = (j > 0 && Math.Abs(e.Scores[j] - e.Scores[j - 1]) <= tol) || (j + 1 < e.Scores.Length && Math.Abs(e.Scores[j] - e.Scores[j + 1]) <= tol);
                if (!tied) Assert.Equal(e.Negatives[j], a.Negatives[j]);
            }
        }
    }

    private static double Recall(IVectorIndex index, DataSet data, string settings)
    {
        var ids = Enumerable.Range(0, data.Count).Select(i => (long)i).ToArray();
        index.Train(data.Base);
        index.Add(data.Base, ids);
        if (index is Engine.Index.Spann.SpannIndex spann) spann.WaitForMaintenance();
        var parsed = settings.Length == 0 ? new Dictionary<string, string>()
            : settings.Split(',').Select(s => s.Split('=')).ToDictionary(p => p[0], p => p[1]);
        var parameters = IndexFactory.CreateParameters(index, parsed, threads: 2);
        var dist = new float[data.QueryCount * K];
        var labels = new long[data.QueryCount * K];
        index.Search(data.Queries, K, dist, labels, parameters);
        return data.RecallAtK(labels, K, K);
    }
}
