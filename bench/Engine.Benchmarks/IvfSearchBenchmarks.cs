using BenchmarkDotNet.Attributes;
using Engine.Data;
using Engine.Index;
using Engine.Index.Ivf;

namespace Engine.Benchmarks;

/// <summary>
/// IVF-PQ fast-scan search with exact refine on seeded clustered data (50k × 128), one thread: a single query and a
/// batch of 64, for every encoding. The Allocated column shows the search path allocates nothing per query after
/// warm-up.
/// </summary>
[MemoryDiagnoser]
public class IvfSearchBenchmarks
{
    private const int K = 10, N = 50_000, D = 128, Batch = 64;
    private IVectorIndex _index = null!;
    private float[] _queries = [], _dist = [];
    private long[] _labels = [];
    private IvfSearchParameters _parameters = null!;

    /// <summary>The composition string under test.</summary>
    [Params("IVF256,Flat", "IVF256,PQ32", "IVF256,PQ64x4fs,RFlat")]
    public string Spec { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        var data = SyntheticData.Clustered(N, D, clusters: 200, seed: 11);
        _queries = SyntheticData.ClusteredQueries(Batch, D, clusters: 200, seed: 11);
        var ids = new long[N];
        for (int i = 0; i < N; i++) ids[i] = i;
        _index = IndexFactory.Create(Spec, D, Metric.L2);
        _index.Train(data);
        _index.Add(data, ids);
        _dist = new float[Batch * K];
        _labels = new long[Batch * K];
        _parameters = new IvfSearchParameters { Probes = 8, RefineFactor = 4, Threads = 1 };
    }

    [GlobalCleanup]
    public void Cleanup() => _index.Dispose();

    [Benchmark]
    public void SingleQuery() => _index.Search(_queries.AsSpan(0, D), K, _dist.AsSpan(0, K), _labels.AsSpan(0, K), _parameters);

    [Benchmark]
    public void Batch64() => _index.Search(_queries, K, _dist, _labels, _parameters);
}
