using BenchmarkDotNet.Attributes;
using Engine.Data;
using Engine.Index.Ivf;

namespace Engine.Benchmarks;

/// <summary>
/// Shared set-up of the benchmarks that read a saved IVF index: seeded clustered data (50k × 128) trained, added and
/// saved to a temporary file, and the load mode under test.
/// </summary>
public abstract class IvfStoredIndex
{
    /// <summary>Rows and dimension of the saved index.</summary>
    protected const int N = 50_000, D = 128;

    private string _dir = "";

    /// <summary>How the lists are loaded: <c>heap</c> (copied into arrays) or <c>mapped</c>.</summary>
    [Params("heap", "mapped")]
    public string Storage { get; set; } = "";

    /// <summary>The saved index file.</summary>
    protected string IndexPath { get; private set; } = "";

    /// <summary>True when the benchmark loads memory-mapped.</summary>
    protected bool Mapped => Storage == "mapped";

    /// <summary>Builds and saves a <paramref name="spec"/> index.</summary>
    protected void SaveIndex(string spec)
    {
        var data = SyntheticData.Clustered(N, D, clusters: 200, seed: 11);
        var ids = new long[N];
        for (int i = 0; i < N; i++) ids[i] = i;
        _dir = Path.Combine(Path.GetTempPath(), "ivf-stored-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        IndexPath = Path.Combine(_dir, "index.ivf");
        using var built = new IvfIndex(spec, D, Metric.L2);
        built.Train(data);
        built.Add(data, ids);
        built.Save(IndexPath);
    }

    /// <summary>Deletes the saved index.</summary>
    protected void DeleteIndex() => Directory.Delete(_dir, recursive: true);
}
