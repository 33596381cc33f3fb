using BenchmarkDotNet.Attributes;
using Engine.Index.Ivf;

namespace Engine.Benchmarks;

/// <summary>
/// Loading a saved IVF index (file in the page cache) to the heap or memory-mapped; both verify every checksum.
/// The Allocated column shows what the heap load copies.
/// </summary>
[MemoryDiagnoser]
public class IvfLoadBenchmarks : IvfStoredIndex
{
    /// <summary>The composition string under test.</summary>
    [Params("IVF256,Flat", "IVF256,PQ64x4fs,RFlat")]
    public string Spec { get; set; } = "";

    [GlobalSetup]
    public void Setup() => SaveIndex(Spec);

    [GlobalCleanup]
    public void Cleanup() => DeleteIndex();

    [Benchmark]
    public long LoadAndDispose()
    {
        using var index = IvfIndex.Load(IndexPath, mapped: Mapped);
        return index.MemoryBytes;
    }
}
