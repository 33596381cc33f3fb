using BenchmarkDotNet.Attributes;
using Engine.Data;
using Engine.Index.Ivf;

namespace Engine.Benchmarks;

/// <summary>
/// Loading a saved IVF index (seeded clustered data, 50k × 128, file in the page cache) to the heap or
/// memory-mapped; both verify every checksum. The Allocated column shows what the heap load copies.
/// </summary>
[MemoryDiagnoser]
public class IvfLoadBenchmarks
{
    private const int N = 50_000, D = 128;
    private string _dir = "", _path = "";

    /// <summary>The composition string under test.</summary>
    [Params("IVF256,Flat", "IVF256,PQ64x4fs,RFlat")]
    public string Spec { get; set; } = "";

    /// <summary>Load mode: <c>heap</c> or <c>mapped</c>.</summary>
    [Params("heap", "mapped")]
    public string Storage { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        var data = SyntheticData.Clustered(N, D, clusters: 200, seed: 11);
        var ids = new long[N];
        for (int i = 0; i < N; i++) ids[i] = i;
        _dir = Path.Combine(Path.GetTempPath(), "ivf-load-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _path = Path.Combine(_dir, "index.ivf");
        using var built = new IvfIndex(Spec, D, Metric.L2);
        built.Train(data);
        built.Add(data, ids);
        built.Save(_path);
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_dir, recursive: true);

    [Benchmark]
    public long LoadAndDispose()
    {
        using var index = IvfIndex.Load(_path, mapped: Storage == "mapped");
        return index.MemoryBytes;
    }
}
