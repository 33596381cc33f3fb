using Engine.Index;
using Engine.Index.Ivf;
using Engine.Tests.Hnsw;

namespace Engine.Tests.Ivf;

/// <summary><c>IVF{n}_HNSW{M}</c>: an HNSW graph over the centroids answers the probes (faiss' IVF65536_HNSW32 form).</summary>
public sealed class IvfHnswQuantizerTests
{
    private const int D = 16, K = 10, N = 6000, NQ = 100;
    private static readonly (float[] Data, float[] Queries) Set = HnswTestData.Split(N, NQ, D, 40, seed: 61);

    [Theory]
    [InlineData("IVF256_HNSW32,PQ8x4fs")]
    [InlineData("OPQ4,IVF1024_HNSW16,PQ4,RFlat")]
    [InlineData("IVF64_HNSW8,Flat,Refine(SQ8)")]
    public void SpecRoundTrips(string spec)
    {
        var parsed = IvfSpec.Parse(spec);
        Assert.Equal(spec, parsed.ToString());
        Assert.True(parsed.CoarseHnswM > 0);
        Assert.Equal(parsed, IvfSpec.Parse(parsed.ToString()));
        Assert.Equal(0, IvfSpec.Parse("IVF64,Flat").CoarseHnswM);
    }

    [Theory]
    [InlineData("IVF64_HNSW0,Flat", "must be a positive integer")]
    [InlineData("IVF64_HNSW,Flat", "expected 'IVF{nlist}'")]
    [InlineData("IVF64_HNSW1,Flat", "out of range 2..512")]
    [InlineData("IVF64_HNSW513,Flat", "out of range 2..512")]
    public void BadCoarseHnswSpecsAreRejected(string spec, string message)
    {
        var ex = Assert.ThrowsAny<ArgumentException>(() => IndexFactory.Create(spec, D, Metric.L2));
        Assert.Contains(message, ex.Message);
    }

    [Theory]
    [InlineData(Metric.L2)]
    [InlineData(Metric.InnerProduct)]
    [InlineData(Metric.Cosine)]
    public void HnswProbesFindTheListsTheExhaustiveQuantizerFinds(Metric metric)
    {
        var (data, queries) = Set;
        var ids = IvfTestData.Ids(N);
        using var flat = (IvfIndex)IndexFactory.Create("IVF128,Flat", D, metric);
        using var graph = (IvfIndex)IndexFactory.Create("IVF128_HNSW16,Flat", D, metric);
        foreach (var index in new[] { flat, graph })
        {
            index.Train(data);
            index.Add(data, ids);
        }
        Assert.Equal("IVF128_HNSW16,Flat", graph.Description);
        var truth = IvfTestData.GroundTruth(data, ids, queries, D, K, metric);
        var p = new IvfSearchParameters { Probes = 8 };
        double rFlat = IvfTestData.Recall(truth, IvfTestData.SearchLabels(flat, queries, K, p), NQ, K);
        double rGraph = IvfTestData.Recall(truth, IvfTestData.SearchLabels(graph, queries, K, p), NQ, K);
        Assert.True(rFlat > 0.8, $"{metric}: flat quantizer recall {rFlat:F3}");
        Assert.True(rGraph >= rFlat - 0.01, $"{metric}: HNSW quantizer recall {rGraph:F3}, flat quantizer {rFlat:F3}");
        Assert.True(graph.MemoryBytes > flat.MemoryBytes, "the graph over the centroids is counted");
    }

    // A per-call ef for the graph over the centroids: ef 1 finds worse lists than a wide search (measured against the
    // exhaustive quantizer's recall), and an index without the graph rejects the knob instead of ignoring it.
    [Fact]
    public void QuantizerEfIsPerCallAndRejectedWithoutAGraph()
    {
        var (data, queries) = Set;
        var ids = IvfTestData.Ids(N);
        using var graph = (IvfIndex)IndexFactory.Create("IVF512_HNSW4,Flat", D, Metric.L2);
        graph.Train(data);
        graph.Add(data, ids);
        var truth = IvfTestData.GroundTruth(data, ids, queries, D, K, Metric.L2);
        double Recall(int? ef) => IvfTestData.Recall(truth,
            IvfTestData.SearchLabels(graph, queries, K, new IvfSearchParameters { Probes = 4, QuantizerEf = ef }), NQ, K);
        double narrow = Recall(1), wide = Recall(256), byDefault = Recall(null);
        Assert.True(wide > narrow, $"ef 256 recall {wide:F3} < ef 1 recall {narrow:F3}");
        Assert.True(byDefault >= narrow, $"default ef recall {byDefault:F3} < ef 1 recall {narrow:F3}");
        using var flat = IndexFactory.Create("IVF64,Flat", D, Metric.L2);
        flat.Train(data);
        flat.Add(data, ids);
        var ex = Assert.Throws<ArgumentException>(() => IvfTestData.SearchLabels(flat, queries, K, new IvfSearchParameters { QuantizerEf = 32 }));
        Assert.Contains("QuantizerEf", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => IvfTestData.SearchLabels(graph, queries, K, new IvfSearchParameters { QuantizerEf = 0 }));
        // The settings path shared by engine bench --sweep, the C ABI's search_with and Python: the same knob and errors.
        var fromSettings = (IvfSearchParameters)IndexFactory.CreateParameters(graph, new Dictionary<string, string> { ["quantizer_ef"] = "48" }, 1);
        Assert.Equal(48, fromSettings.QuantizerEf);
        var flatError = Assert.Throws<ArgumentException>(() =>
            IndexFactory.CreateParameters(flat, new Dictionary<string, string> { ["quantizer_ef"] = "48" }, 1));
        Assert.Contains("'quantizer_ef' is not understood", flatError.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => IndexFactory.CreateParameters(graph, new Dictionary<string, string> { ["quantizer_ef"] = "0" }, 1));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SavedAndLoadedIndexSearchesAlike(bool mapped)
    {
        var (data, queries) = Set;
        var ids = IvfTestData.Ids(N);
        using var dir = new Engine.Tests.Support.TempDir();
        string path = dir.File("ivf-hnsw.ivf");
        using var index = IndexFactory.Create("IVF64_HNSW8,PQ4x4fs,RFlat", D, Metric.L2);
        index.Train(data);
        index.Add(data, ids);
        index.Save(path);
        using var loaded = IndexFactory.Load(path, mapped);
        Assert.Equal(index.Description, loaded.Description);
        var p = new IvfSearchParameters { Probes = 6 };
        int n = queries.Length / D;
        var d1 = new float[n * K];
        var l1 = new long[n * K];
        var d2 = new float[n * K];
        var l2 = new long[n * K];
        index.Search(queries, K, d1, l1, p);
        loaded.Search(queries, K, d2, l2, p);
        Assert.Equal(l1, l2);
        Assert.Equal(d1, d2);
    }
}
