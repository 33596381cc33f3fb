using Engine.Index.Flat;

namespace Engine.Gpu.Tests;

[Collection("gpu")]
public sealed class GpuFlatIndexTests(GpuFixture fixture) : IDisposable
{
    private readonly GpuContext _ctx = fixture.Context;
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "gpuflat-" + Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(Metric.L2)]
    [InlineData(Metric.InnerProduct)]
    [InlineData(Metric.Cosine)]
    public void MatchesFlatIndexAcrossAddRemoveAndSave(Metric metric)
    {
        const int d = 33, n = 1800, nq = 4, k = 50;
        var x = Data.Gaussian(n, d, seed: 3);
        var ids = Enumerable.Range(0, n).Select(i => 5L * i + 1).ToArray();
        var queries = Data.Gaussian(nq, d, seed: 4);
        using var gpu = new GpuFlatIndex(_ctx, d, metric);
        using var cpu = new FlatIndex(d, metric);
        gpu.Add(x.AsSpan(0, 1000 * d), ids.AsSpan(0, 1000));
        cpu.Add(x.AsSpan(0, 1000 * d), ids.AsSpan(0, 1000));
        Check(gpu, cpu, queries, nq, k);

        // Mutations after a search must reach the device mirror.
        gpu.Add(x.AsSpan(1000 * d), ids.AsSpan(1000));
        cpu.Add(x.AsSpan(1000 * d), ids.AsSpan(1000));
        long[] gone = [ids[3], ids[500], ids[1500]];
        Assert.Equal(3, gpu.Remove(gone));
        cpu.Remove(gone);
        Check(gpu, cpu, queries, nq, k);
        Assert.Equal(cpu.Count, gpu.Count);

        string path = Path.Combine(_dir, "flat.idx");
        gpu.Save(path);
        using var reloaded = GpuFlatIndex.Load(_ctx, path);
        using var cpuReloaded = FlatIndex.Load(path);
        Check(reloaded, cpuReloaded, queries, nq, k);
    }

    [Fact]
    public void FilterAndPaddingFollowTheContract()
    {
        const int d = 7;
        using var gpu = new GpuFlatIndex(_ctx, d, Metric.L2);
        var x = Data.Gaussian(20, d, seed: 9);
        gpu.Add(x, Enumerable.Range(100, 20).Select(i => (long)i).ToArray());
        var dist = new float[30]; var labels = new long[30];
        gpu.Search(x.AsSpan(0, d), 30, dist, labels);
        Assert.Equal(100, labels[0]);
        Assert.All(labels[20..], l => Assert.Equal(-1, l));
        Assert.All(dist[20..], v => Assert.Equal(float.PositiveInfinity, v));

        gpu.Search(x.AsSpan(0, d), 3, dist, labels, new SearchParameters { Filter = new IdAllowListFilter([105, 110]) });
        Assert.Equal(-1, labels[2]);
        Assert.Subset(new HashSet<long> { 105, 110 }, labels[..2].ToHashSet());

        Assert.Throws<ArgumentException>(() => gpu.Search(new float[d + 1], 3, dist, labels));
        Assert.Throws<ArgumentOutOfRangeException>(() => gpu.Search(new float[d], 0, dist, labels));
        float[] bad = [1, 2, 3, float.NaN, 5, 6, 7];
        Assert.Throws<ArgumentException>(() => gpu.Search(bad, 3, dist, labels));
    }

    [Fact]
    public void ParametersOfAnotherFamily_AreRejectedNamingBoth()
    {
        const int d = 7;
        using var gpu = new GpuFlatIndex(_ctx, d, Metric.L2);
        var x = Data.Gaussian(20, d, seed: 11);
        gpu.Add(x, Enumerable.Range(0, 20).Select(i => (long)i).ToArray());
        var dist = new float[3]; var labels = new long[3];
        foreach (var p in new SearchParameters[]
                 {
                     new Engine.Index.Ivf.IvfSearchParameters { Probes = 2 }, new Engine.Index.Hnsw.HnswSearchParameters { Ef = 20 },
                     new Engine.Index.Spann.SpannSearchParameters { Probes = 2 }, new Engine.Index.Binary.BinarySearchParameters { RefineFactor = 2 },
                 })
        {
            // Also with a filter, which the GPU index answers through its CPU copy: the check comes first.
            foreach (var q in new[] { p, WithFilter(p) })
            {
                var e = Assert.Throws<ArgumentException>(() => gpu.Search(x.AsSpan(0, d), 3, dist, labels, q));
                Assert.Equal("parameters", e.ParamName);
                Assert.Contains(p.GetType().Name, e.Message);
                Assert.Contains($"the {p.IndexFamily} family", e.Message);
                Assert.Contains("plain SearchParameters", e.Message);
            }
        }
        gpu.Search(x.AsSpan(0, d), 3, dist, labels, new SearchParameters { Threads = 1 });
        Assert.Equal(0, labels[0]);
    }

    private static SearchParameters WithFilter(SearchParameters p) => p switch
    {
        Engine.Index.Ivf.IvfSearchParameters => new Engine.Index.Ivf.IvfSearchParameters { Probes = 2, Filter = new IdAllowListFilter([1, 2]) },
        Engine.Index.Hnsw.HnswSearchParameters => new Engine.Index.Hnsw.HnswSearchParameters { Ef = 20, Filter = new IdAllowListFilter([1, 2]) },
        Engine.Index.Spann.SpannSearchParameters => new Engine.Index.Spann.SpannSearchParameters { Probes = 2, Filter = new IdAllowListFilter([1, 2]) },
        _ => new Engine.Index.Binary.BinarySearchParameters { RefineFactor = 2, Filter = new IdAllowListFilter([1, 2]) },
    };

    private static void Check(IVectorIndex gpu, IVectorIndex cpu, float[] queries, int nq, int k)
    {
        var cd = new float[nq * k]; var cl = new long[nq * k];
        var gd = new float[nq * k]; var gl = new long[nq * k];
        cpu.Search(queries, k, cd, cl);
        gpu.Search(queries, k, gd, gl);
        Compare.Results(cd, cl, gd, gl, nq, k);
    }
}
