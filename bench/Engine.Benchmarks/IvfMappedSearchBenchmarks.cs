using BenchmarkDotNet.Attributes;
using Engine.Data;
using Engine.Index.Ivf;

namespace Engine.Benchmarks;

/// <summary>
/// IVF search over an index loaded from disk, with its lists copied to the heap or memory-mapped (one thread,
/// probes 8, refine factor 4). Compares the two load modes of <see cref="IvfIndex.Load"/>.
/// </summary>
[MemoryDiagnoser]
public class IvfMappedSearchBenchmarks : IvfStoredIndex
{
    private const int K = 10, Batch = 64;
    private IvfIndex _index = null!;
    private float[] _queries = [], _dist = [];
    private long[] _labels = [];
    private IvfSearchParameters _parameters = null!;

    /// <summary>The composition string under test.</summary>
    [Params("IVF256,Flat", "IVF256,PQ32", "IVF256,PQ64x4fs,RFlat")]
    public string Spec { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        SaveIndex(Spec);
        _queries = SyntheticData.ClusteredQueries(Batch, D, clusters: 200, seed: 11);
        _index = IvfIndex.Load(IndexPath, mapped: Mapped);
        _dist = new float[Batch * K];
        _labels = new long[Batch * K];
        _parameters = new IvfSearchParameters { Probes = 8, RefineFactor = 4, Threads = 1 };
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _index.Dispose();
        DeleteIndex();
    }

    [Benchmark]
    public void SingleQuery() => _index.Search(_queries.AsSpan(0, D), K, _dist.AsSpan(0, K), _labels.AsSpan(0, K), _parameters);

    [Benchmark]
    public void Batch64() => _index.Search(_queries, K, _dist, _labels, _parameters);
}
