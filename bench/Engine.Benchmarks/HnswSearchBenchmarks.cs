using BenchmarkDotNet.Attributes;

using Engine.Index.Hnsw;

namespace Engine.Benchmarks;

/// <summary>
/// HNSW search on 20k clustered 64-d vectors (HNSW16, efConstruction 100), one thread: a single query at ef 16 and
/// 64 (the memory diagnoser must report 0 B allocated: scratch is pooled) and a batch of 64 queries.
/// Run: <c>dotnet run -c Release --project bench/Engine.Benchmarks -- --filter '*HnswSearch*' --job short</c>.
/// </summary>
[MemoryDiagnoser]
public class HnswSearchBenchmarks
{
    private const int N = 20_000, D = 64, K = 10, Nq = 64;
    private HnswIndex _index = null!;
    private float[] _queries = [], _dist = [];
    private long[] _labels = [];
    private HnswSearchParameters _ef16 = null!, _ef64 = null!;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(5);
        var centres = Workloads.RandomFloats(6, 100L * D);
        var data = new float[(N + Nq) * D];
        for (int i = 0; i < N + Nq; i++)
        {
            int c = rng.Next(100);
            for (int j = 0; j < D; j++) data[i * D + j] = centres[c * D + j] + 0.3f * (float)(rng.NextDouble() - 0.5);
        }
        _index = new HnswIndex("HNSW16,efC100", D);
        _index.Add(data.AsSpan(0, N * D), Enumerable.Range(0, N).Select(i => (long)i).ToArray());
        _queries = data[(N * D)..];
        _dist = new float[Nq * K];
        _labels = new long[Nq * K];
        _ef16 = new HnswSearchParameters { Ef = 16, Threads = 1 };
        _ef64 = new HnswSearchParameters { Ef = 64, Threads = 1 };
    }

    [GlobalCleanup]
    public void Cleanup() => _index.Dispose();

    [Benchmark]
    public void SingleQueryEf16() => _index.Search(_queries.AsSpan(0, D), K, _dist.AsSpan(0, K), _labels.AsSpan(0, K), _ef16);

    [Benchmark]
    public void SingleQueryEf64() => _index.Search(_queries.AsSpan(0, D), K, _dist.AsSpan(0, K), _labels.AsSpan(0, K), _ef64);

    [Benchmark]
    public void Batch64Ef64() => _index.Search(_queries, K, _dist, _labels, _ef64);
}
