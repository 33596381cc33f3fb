using BenchmarkDotNet.Attributes;
using Engine.Data;
using Engine.Index.Ivf;

namespace Engine.Benchmarks;

/// <summary>
/// IVF search over an index loaded from disk, with its lists copied to the heap or memory-mapped (seeded clustered
/// data, 50k × 128, one thread, probes 8, refine factor 4). Compares the two load modes of <see cref="IvfIndex.Load"/>.
/// </summary>
[MemoryDiagnoser]
public class IvfMappedSearchBenchmarks
{
    private const int K = 10, N = 50_000, D = 128, Batch = 64;
    private IvfIndex _index = null!;
    private string _dir = "";
    private float[] _queries = [], _dist = [];
    private long[] _labels = [];
    private IvfSearchParameters _parameters = null!;

    /// <summary>The composition string under test.</summary>
    [Params("IVF256,Flat", "IVF256,PQ32", "IVF256,PQ64x4fs,RFlat")]
    public string Spec { get; set; } = "";

    /// <summary>How the lists are loaded: <c>heap</c> (copied into arrays) or <c>mapped</c>.</summary>
    [Params("heap", "mapped")]
    public string Storage { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        var data = SyntheticData.Clustered(N, D, clusters: 200, seed: 11);
        _queries = SyntheticData.ClusteredQueries(Batch, D, clusters: 200, seed: 11);
        var ids = new long[N];
        for (int i = 0; i < N; i++) ids[i] = i;
        _dir = Path.Combine(Path.GetTempPath(), "ivf-mapped-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        string path = Path.Combine(_dir, "index.ivf");
        using (var built = new IvfIndex(Spec, D, Metric.L2))
        {
            built.Train(data);
            built.Add(data, ids);
            built.Save(path);
        }
        _index = IvfIndex.Load(path, mapped: Storage == "mapped");
        _dist = new float[Batch * K];
        _labels = new long[Batch * K];
        _parameters = new IvfSearchParameters { Probes = 8, RefineFactor = 4, Threads = 1 };
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _index.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark]
    public void SingleQuery() => _index.Search(_queries.AsSpan(0, D), K, _dist.AsSpan(0, K), _labels.AsSpan(0, K), _parameters);

    [Benchmark]
    public void Batch64() => _index.Search(_queries, K, _dist, _labels, _parameters);
}
