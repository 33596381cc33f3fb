using Engine.Index;
using Engine.Index.Ivf;

namespace Engine.Gpu.Tests;

/// <summary>
/// IVF searches over RaBitQ lists (row codes of 1..8 bits, fast-scan RaBitQfs1/RaBitQfs4) whose list scan runs on
/// <see cref="GpuIvfScanProvider"/> (ILGPU's CPU accelerator), against the same index scanned by its CPU scanner and
/// against the exact neighbours.
/// </summary>
[Collection("gpu")]
public sealed class GpuIvfRaBitQScannerTests(GpuFixture fixture)
{
    private const int K = 10, N = 3000, D = 40, Nq = 40;

    public static TheoryData<string, Metric, int> Cases => new()
    {
        // spec, metric, refine factor: estimates as keys (no refine store), and error-bound re-ranking (RFlat, SQ8).
        { "IVF16,RaBitQ", Metric.L2, 1 },
        { "IVF16,RaBitQ", Metric.InnerProduct, 1 },
        { "IVF16,RaBitQ,RFlat", Metric.Cosine, 4 },
        { "IVF16,RaBitQ,Refine(SQ8)", Metric.L2, 4 },
        { "IVF16,RaBitQ2", Metric.InnerProduct, 1 },
        { "IVF16,RaBitQ3,RFlat", Metric.L2, 3 },
        { "IVF16,RaBitQ4", Metric.L2, 1 },
        { "IVF16,RaBitQ4,RFlat", Metric.InnerProduct, 3 },
        { "IVF16,RaBitQ5", Metric.Cosine, 1 },
        { "IVF16,RaBitQ8,RFlat", Metric.L2, 2 },
        { "IVF16,RaBitQfs1", Metric.L2, 1 },
        { "IVF16,RaBitQfs1,RFlat", Metric.InnerProduct, 4 },
        { "IVF16,RaBitQfs1,RFlat", Metric.Cosine, 4 },
        { "IVF16,RaBitQfs4", Metric.Cosine, 1 },
        { "IVF16,RaBitQfs4,RFlat", Metric.L2, 3 },
        { "IVF16,RaBitQfs4,RFlat", Metric.InnerProduct, 2 },
        // SOAR: two copies per vector, one result per id on both sides (the same Finish).
        { "IVF16(soar),RaBitQfs4,RFlat", Metric.L2, 2 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void DeviceScanEqualsCpuScan(string spec, Metric metric, int refine)
    {
        var data = Data.Clustered(N, D, 20, seed: 11 + (int)metric);
        using var index = Build(spec, metric, data);
        var queries = Data.Clustered(Nq, D, 20, seed: 500 + (int)metric);
        var cpuStats = new SearchStats();
        var (cd, cl) = Search(index, queries, Params(refine, cpuStats));
        var counting = new CountingProvider(new GpuIvfScanProvider(fixture.Context));
        index.DeviceScan = counting;
        var devStats = new SearchStats();
        var (gd, gl) = Search(index, queries, Params(refine, devStats));
        Assert.Equal(1, counting.Uploads);
        Assert.True(counting.Launches >= 1, "the search did not launch the device scan");
        AssertSame(spec, cd, cl, gd, gl);
        // Stats are counted the same way: lists, codes and the candidates the error-bound re-ranking re-scored.
        Assert.Equal(cpuStats.ListsProbed, devStats.ListsProbed);
        Assert.Equal(cpuStats.CodesScanned, devStats.CodesScanned);
        Assert.True(Math.Abs(cpuStats.Refined - devStats.Refined) <= 0.02 * cpuStats.Refined, $"{spec}: re-scored {devStats.Refined} vs CPU {cpuStats.Refined}");
        if (!spec.Contains("RFlat", StringComparison.Ordinal) && !spec.Contains("Refine(", StringComparison.Ordinal)) Assert.Equal(0, devStats.Refined);
        var truth = Exact(data, queries, metric);
        double cpuRecall = Recall(cl, truth), devRecall = Recall(gl, truth);
        Assert.True(devRecall >= cpuRecall - 0.01, $"{spec} {metric}: device recall {devRecall} vs CPU {cpuRecall}");
        Search(index, queries, Params(refine, null));
        Assert.Equal(1, counting.Uploads); // the lists stay on the device between searches
    }

    // A wider ε₀ re-ranks by lower bounds that move each key by its own bound (IvfListScanner.LowerBound): the device
    // scanner records each probe's bound scale as the CPU scan does.
    [Theory]
    [InlineData("IVF16,RaBitQ4,RFlat", Metric.L2)]
    [InlineData("IVF16,RaBitQfs1,RFlat", Metric.InnerProduct)]
    public void WiderBoundEpsilonEqualsCpu(string spec, Metric metric)
    {
        var data = Data.Clustered(N, D, 20, seed: 21);
        using var index = Build(spec, metric, data);
        var queries = Data.Clustered(Nq, D, 20, seed: 22);
        var p = new IvfSearchParameters { Probes = 5, RefineFactor = 3, BoundEpsilon = 3.5f, Threads = 1, Stats = new SearchStats() };
        var (cd, cl) = Search(index, queries, p);
        index.DeviceScan = new GpuIvfScanProvider(fixture.Context);
        var q = new IvfSearchParameters { Probes = 5, RefineFactor = 3, BoundEpsilon = 3.5f, Threads = 1, Stats = new SearchStats() };
        var (gd, gl) = Search(index, queries, q);
        AssertSame(spec, cd, cl, gd, gl);
        Assert.True(Math.Abs(p.Stats.Refined - q.Stats.Refined) <= 0.02 * p.Stats.Refined, $"re-scored {q.Stats.Refined} vs CPU {p.Stats.Refined}");
    }

    // More queries than one chunk: chunks run on two threads, their tables built in parallel, each one launch.
    [Fact]
    public void ChunksOnSeveralThreadsEqualCpu()
    {
        const int nq = 150;
        var data = Data.Clustered(N, D, 20, seed: 31);
        using var index = Build("IVF16,RaBitQfs4,RFlat", Metric.L2, data);
        var queries = Data.Clustered(nq, D, 20, seed: 32);
        var p = new IvfSearchParameters { Probes = 4, RefineFactor = 2, Threads = 2 };
        var cd = new float[nq * K]; var cl = new long[nq * K];
        index.Search(queries, K, cd, cl, p);
        var counting = new CountingProvider(new GpuIvfScanProvider(fixture.Context));
        index.DeviceScan = counting;
        var gd = new float[nq * K]; var gl = new long[nq * K];
        index.Search(queries, K, gd, gl, p);
        Assert.True(counting.Launches >= 2, $"{counting.Launches} launches for {nq} queries on two threads");
        AssertSame("chunks", cd, cl, gd, gl);
    }

    [Theory]
    [InlineData("IVF8,RaBitQfs4,RFlat")]
    [InlineData("IVF8,RaBitQ2")]
    public void DeviceCopyFollowsAddsAndRemoves(string spec)
    {
        var data = Data.Clustered(N, D, 20, seed: 41);
        using var index = Build(spec, Metric.L2, data);
        var counting = new CountingProvider(new GpuIvfScanProvider(fixture.Context));
        index.DeviceScan = counting;
        var queries = Data.Clustered(Nq, D, 20, seed: 42);
        var p = new IvfSearchParameters { Probes = 8, Threads = 1 };
        var (_, before) = Search(index, queries, p);
        var gone = before.Where(id => id >= 0).Distinct().Take(25).ToArray();
        Assert.Equal(gone.Length, index.Remove(gone));
        var extra = Data.Clustered(200, D, 20, seed: 43);
        index.Add(extra, Enumerable.Range(0, 200).Select(i => 100_000L + i).ToArray());
        var (gd, gl) = Search(index, queries, p);
        Assert.Equal(2, counting.Uploads);
        Assert.DoesNotContain(gl, id => gone.Contains(id));
        Assert.Contains(gl, id => id >= 100_000);
        index.DeviceScan = null;
        var (cd, cl) = Search(index, queries, p);
        AssertSame("after mutation", cd, cl, gd, gl);
    }

    /// <summary>Switching the provider while searches run: the setter used to dispose the device lists a search in
    /// flight was scanning (its next launch ran on freed lists). It now waits for the searches; every result equals the
    /// CPU scan's.</summary>
    [Fact]
    public async Task SwitchingTheProviderDuringSearches_NeverScansDisposedLists()
    {
        var data = Data.Clustered(N, D, 20, seed: 61);
        using var index = Build("IVF8,RaBitQfs4,RFlat", Metric.L2, data);
        var queries = Data.Clustered(Nq, D, 20, seed: 62);
        var p = new IvfSearchParameters { Probes = 4, RefineFactor = 2, Threads = 1 };
        var (cd, cl) = Search(index, queries, p);
        var disposedScans = 0;
        var searcher = Task.Run(() =>
        {
            for (int n = 0; n < 60; n++)
            {
                var (gd, gl) = Search(index, queries, p);
                AssertSame("while switching", cd, cl, gd, gl);
            }
        });
        int switches = 0;
        while (!searcher.IsCompleted)
        {
            index.DeviceScan = switches++ % 4 == 3 ? null : new DisposeCheckingProvider(new GpuIvfScanProvider(fixture.Context), () => Interlocked.Increment(ref disposedScans));
            Thread.Yield();
        }
        await searcher;
        Assert.True(switches > 10, $"{switches} switches");
        Assert.Equal(0, Volatile.Read(ref disposedScans));
        index.DeviceScan = null;
    }

    /// <summary>Dropping the provider of a disposed index is a no-op (the setter's write lock would throw
    /// ObjectDisposedException); setting one is refused.</summary>
    [Fact]
    public void DroppingTheProviderOfADisposedIndex_IsANoOp()
    {
        var data = Data.Clustered(N, D, 20, seed: 71);
        var index = Build("IVF8,RaBitQfs4,RFlat", Metric.L2, data);
        index.DeviceScan = new GpuIvfScanProvider(fixture.Context);
        Search(index, Data.Clustered(Nq, D, 20, seed: 72), new IvfSearchParameters { Probes = 4, Threads = 1 });
        index.Dispose();
        index.DeviceScan = null;
        Assert.Null(index.DeviceScan);
        Assert.Throws<ObjectDisposedException>(() => index.DeviceScan = new GpuIvfScanProvider(fixture.Context));
    }

    [Fact]
    public void FiltersAndCodeBudgetsKeepTheCpuScanner()
    {
        var data = Data.Clustered(N, D, 20, seed: 51);
        using var index = Build("IVF8,RaBitQ4,RFlat", Metric.L2, data);
        var queries = Data.Clustered(Nq, D, 20, seed: 52);
        var filtered = new IvfSearchParameters { Probes = 4, RefineFactor = 2, Threads = 1, Filter = new OddIds() };
        var budget = new IvfSearchParameters { Probes = 4, RefineFactor = 2, Threads = 1, MaxCodes = 500 };
        var (fd, fl) = Search(index, queries, filtered);
        var (bd, bl) = Search(index, queries, budget);
        var counting = new CountingProvider(new GpuIvfScanProvider(fixture.Context));
        index.DeviceScan = counting;
        var (gfd, gfl) = Search(index, queries, filtered);
        var (gbd, gbl) = Search(index, queries, budget);
        Assert.Equal(0, counting.Launches);
        Assert.All(gfl, id => Assert.True(id < 0 || id % 2 == 1));
        Assert.Equal(fl, gfl);
        Assert.Equal(fd, gfd);
        Assert.Equal(bl, gbl);
        Assert.Equal(bd, gbd);
    }

    [Theory]
    [InlineData("IVF8,RaBitQ")]
    [InlineData("IVF8,RaBitQ7")]
    [InlineData("IVF8,RaBitQfs1,RFlat")]
    public void RaBitQListsHaveADeviceScanner(string spec)
    {
        using var index = new IvfIndex(spec, 16, Metric.L2);
        Assert.True(index.SupportsDeviceScan);
        index.DeviceScan = new GpuIvfScanProvider(fixture.Context);
        Assert.NotNull(index.DeviceScan);
    }

    private static IvfSearchParameters Params(int refine, SearchStats? stats) =>
        new() { Probes = 5, RefineFactor = refine, Threads = 2, Stats = stats };

    private static IvfIndex Build(string spec, Metric metric, float[] data)
    {
        var index = new IvfIndex(spec, D, metric) { TrainingSeed = 3 };
        index.Train(data);
        index.Add(data, Enumerable.Range(0, N).Select(i => (long)i).ToArray());
        return index;
    }

    private static (float[] D, long[] L) Search(IvfIndex index, float[] queries, IvfSearchParameters p)
    {
        int nq = queries.Length / D;
        var dist = new float[nq * K];
        var lab = new long[nq * K];
        index.Search(queries, K, dist, lab, p);
        return (dist, lab);
    }

    // Ids identical position by position except where the CPU's keys tie within 1e-5 relative; keys within 1e-5 relative.
    private static void AssertSame(string what, float[] cd, long[] cl, float[] gd, long[] gl)
    {
        for (int i = 0; i < cd.Length; i++)
        {
            int j = i % K;
            float tol = 1e-5f * Math.Max(1f, Math.Abs(cd[i]));
            Assert.True(cl[i] == -1 == (gl[i] == -1), $"{what}: result {i} padding differs ({cl[i]} vs {gl[i]})");
            if (cl[i] == -1) continue;
            Assert.True(Math.Abs(cd[i] - gd[i]) <= tol, $"{what}: result {i} distance {gd[i]} vs CPU {cd[i]}");
            bool tied = (j > 0 && Math.Abs(cd[i] - cd[i - 1]) <= tol) || (j + 1 < K && cl[i + 1] != -1 && Math.Abs(cd[i] - cd[i + 1]) <= tol);
            if (!tied) Assert.True(cl[i] == gl[i], $"{what}: result {i} id {gl[i]} vs CPU {cl[i]} (distance {cd[i]})");
        }
    }

    // The exact top K of each query (double precision; cosine on normalised rows).
    private static long[][] Exact(float[] data, float[] queries, Metric metric)
    {
        int nq = queries.Length / D;
        var truth = new long[nq][];
        for (int q = 0; q < nq; q++)
        {
            var keys = new double[N];
            for (int i = 0; i < N; i++)
            {
                double dot = 0, l2 = 0, nx = 0;
                for (int j = 0; j < D; j++)
                {
                    double a = queries[q * D + j], b = data[i * D + j];
                    dot += a * b; l2 += (a - b) * (a - b); nx += b * b;
                }
                keys[i] = metric switch { Metric.L2 => l2, Metric.InnerProduct => -dot, _ => -dot / Math.Sqrt(nx) };
            }
            truth[q] = Enumerable.Range(0, N).OrderBy(i => keys[i]).Take(K).Select(i => (long)i).ToArray();
        }
        return truth;
    }

    private static double Recall(long[] labels, long[][] truth)
    {
        int hit = 0;
        for (int q = 0; q < truth.Length; q++) hit += labels.AsSpan(q * K, K).ToArray().Intersect(truth[q]).Count();
        return hit / (double)(truth.Length * K);
    }
}
