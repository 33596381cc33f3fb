using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;

using Engine.Index.Flat;

namespace Engine.Benchmarks;

/// <summary>
/// Exact search on 60k × 784 random vectors, one thread, next to a single-thread stream read of 256 MB so the
/// scan's GB/s can be compared with this machine's read bandwidth in the same run.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(Cfg))]
public class FlatSearchBenchmarks
{
    private const int K = 10;
    private static readonly SearchParameters OneThread = new() { Threads = 1 };
    private FlatIndex _index = null!;
    private float[] _queries = [], _dist = [];
    private long[] _labels = [];
    private float[] _stream = [];

    private sealed class Cfg : ManualConfig
    {
        public Cfg() => AddColumn(new RateColumn("GB/s", c => c.Descriptor.WorkloadMethod.Name switch
        {
            nameof(StreamRead) => Workloads.StreamBytes,
            nameof(SingleQuery) => (double)Workloads.FlatRows * Workloads.FlatDim * sizeof(float),
            _ => null,
        }));
    }

    [GlobalSetup]
    public void Setup()
    {
        _index = Workloads.BuildFlat();
        _queries = Workloads.RandomFloats(7, 32L * Workloads.FlatDim);
        _dist = new float[32 * K];
        _labels = new long[32 * K];
        _stream = Workloads.RandomFloats(8, Workloads.StreamBytes / sizeof(float));
    }

    [GlobalCleanup]
    public void Cleanup() => _index.Dispose();

    [Benchmark] public float StreamRead() => Workloads.StreamSum(_stream);

    [Benchmark]
    public void SingleQuery() =>
        _index.Search(_queries.AsSpan(0, Workloads.FlatDim), K, _dist.AsSpan(0, K), _labels.AsSpan(0, K), OneThread);

    [Benchmark]
    public void Batch32() => _index.Search(_queries, K, _dist, _labels, OneThread);
}
