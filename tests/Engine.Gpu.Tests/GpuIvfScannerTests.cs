using Engine.Index;
using Engine.Index.Ivf;

namespace Engine.Gpu.Tests;

/// <summary>
/// IVF-PQ searches whose list scan runs on <see cref="GpuIvfScanProvider"/> (ILGPU's CPU accelerator) against the
/// same index scanned on the CPU.
/// </summary>
[Collection("gpu")]
public sealed class GpuIvfScannerTests(GpuFixture fixture)
{
    private const int K = 10, N = 3000, Nq = 40;

    public static TheoryData<string, int, Metric, int> ExactAdcCases => new()
    {
        // spec, d, metric, refine factor: float-ADC lists (PQListScanner) give the same keys on both sides.
        { "IVF16,PQ8", 24, Metric.L2, 1 },
        { "IVF16,PQ8nr", 24, Metric.L2, 1 },
        { "IVF16,PQ6", 18, Metric.InnerProduct, 1 },
        { "IVF16,PQ6nr", 18, Metric.InnerProduct, 1 },
        { "IVF12,PQ8", 16, Metric.Cosine, 1 },
        { "IVF16,PQ8x4", 24, Metric.L2, 1 },
        { "IVF16,PQ8x4nr", 24, Metric.Cosine, 1 },
        { "IVF16,PQ8,RFlat", 24, Metric.L2, 4 },
        { "OPQ4,IVF16,PQ4,RFlat", 16, Metric.InnerProduct, 3 },
        // SOAR: two copies of each vector; both sides return each id once (the same Finish).
        { "IVF16(soar),PQ8", 24, Metric.L2, 1 },
        { "IVF16(soar=2),PQ8nr,RFlat", 24, Metric.InnerProduct, 2 },
    };

    [Theory]
    [MemberData(nameof(ExactAdcCases))]
    public void DeviceScanEqualsCpuScan(string spec, int d, Metric metric, int refine)
    {
        using var index = Build(spec, d, metric, seed: d + (int)metric);
        var queries = Data.Clustered(Nq, d, 20, seed: 900 + d);
        var p = new IvfSearchParameters { Probes = 5, RefineFactor = refine, Threads = 2 };
        var (cd, cl) = Search(index, queries, p);
        var counting = new CountingProvider(new GpuIvfScanProvider(fixture.Context));
        index.DeviceScan = counting;
        var (gd, gl) = Search(index, queries, p);
        Assert.Equal(1, counting.Uploads);
        Assert.True(counting.Launches >= 1, "the search did not launch the device scan");
        AssertSame(spec, cd, cl, gd, gl);
        Search(index, queries, p);
        Assert.Equal(1, counting.Uploads); // the lists stay on the device between searches
    }

    [Theory]
    [InlineData("IVF16,PQ8x4fs,RFlat", Metric.L2)]
    [InlineData("IVF16,PQ8x4fsnr,RFlat", Metric.InnerProduct)]
    [InlineData("IVF16,PQ8x4fs,RFlat", Metric.Cosine)]
    public void DeviceScanOfFastScanCodesMatchesCpuAfterRefine(string spec, Metric metric)
    {
        // The CPU fast-scan gathers candidates by 8-bit quantised tables, the device by float tables of the same
        // codes: with a generous refine factor both candidate sets hold the exact top 10.
        const int d = 24;
        using var index = Build(spec, d, metric, seed: 31 + (int)metric);
        var queries = Data.Clustered(Nq, d, 20, seed: 77);
        var p = new IvfSearchParameters { Probes = 4, RefineFactor = 20, Threads = 2 };
        var (_, cl) = Search(index, queries, p);
        index.DeviceScan = new GpuIvfScanProvider(fixture.Context);
        var (_, gl) = Search(index, queries, p);
        int same = 0;
        for (int q = 0; q < Nq; q++) same += gl.AsSpan(q * K, K).ToArray().Intersect(cl.AsSpan(q * K, K).ToArray()).Count();
        Assert.True(same >= 0.97 * Nq * K, $"{spec} {metric}: device and CPU share {same} of {Nq * K} results");
    }

    // The device path writes each batch's results as it finishes them, and the search reads the caller's query rows in
    // place: with k > d a query's results reach rows still to be read, so the search must copy the queries first.
    [Fact]
    public void ResultsWrittenOverTheQueriesEqualSeparateBuffers()
    {
        const int d = 8, k = 40;
        using var index = Build("IVF16,PQ4,RFlat", d, Metric.L2, seed: 77);
        index.DeviceScan = new GpuIvfScanProvider(fixture.Context);
        var queries = Data.Clustered(Nq, d, 20, seed: 901);
        var p = new IvfSearchParameters { Probes = 5, RefineFactor = 2, Threads = 2 };
        var expectedKeys = new float[Nq * k];
        var expectedIds = new long[Nq * k];
        index.Search(queries, k, expectedKeys, expectedIds, p);
        var shared = new float[Nq * k];
        queries.CopyTo(shared, 0);
        var ids = new long[Nq * k];
        index.Search(shared.AsSpan(0, Nq * d), k, shared, ids, p);
        Assert.Equal(expectedIds, ids);
        Assert.Equal(expectedKeys, shared);
    }

    [Fact]
    public void DeviceCopyFollowsAddsAndRemoves()
    {
        const int d = 16;
        using var index = Build("IVF8,PQ8", d, Metric.L2, seed: 5);
        index.DeviceScan = new GpuIvfScanProvider(fixture.Context);
        var queries = Data.Clustered(Nq, d, 20, seed: 6);
        var p = new IvfSearchParameters { Probes = 8, Threads = 1 };
        var (_, before) = Search(index, queries, p);
        var gone = before.Where(id => id >= 0).Distinct().Take(25).ToArray();
        Assert.Equal(gone.Length, index.Remove(gone));
        var extra = Data.Clustered(200, d, 20, seed: 7);
        index.Add(extra, Enumerable.Range(0, 200).Select(i => 100_000L + i).ToArray());
        var (gd, gl) = Search(index, queries, p);
        Assert.DoesNotContain(gl, id => gone.Contains(id));
        Assert.Contains(gl, id => id >= 100_000);
        var device = index.DeviceScan;
        index.DeviceScan = null;
        var (cd, cl) = Search(index, queries, p);
        AssertSame("after mutation", cd, cl, gd, gl);
        index.DeviceScan = device;
    }

    [Fact]
    public void FilteredSearchesKeepTheCpuScannerAndAgree()
    {
        const int d = 16;
        using var index = Build("IVF8,PQ8", d, Metric.L2, seed: 8);
        var queries = Data.Clustered(Nq, d, 20, seed: 9);
        var p = new IvfSearchParameters { Probes = 4, Threads = 1, Filter = new OddIds() };
        var (cd, cl) = Search(index, queries, p);
        index.DeviceScan = new GpuIvfScanProvider(fixture.Context);
        var (gd, gl) = Search(index, queries, p);
        Assert.All(gl, id => Assert.True(id < 0 || id % 2 == 1));
        Assert.Equal(cl, gl);
        Assert.Equal(cd, gd);
    }

    [Theory]
    [InlineData("IVF8,Flat")]
    [InlineData("IVF8,BIN1")]
    [InlineData("IVF8,BIN2nr,RFlat")]
    public void ListsWithoutADeviceScannerAreRejected(string spec)
    {
        using var index = new IvfIndex(spec, 16, Metric.L2);
        Assert.False(index.SupportsDeviceScan);
        var e = Assert.Throws<NotSupportedException>(() => index.DeviceScan = new GpuIvfScanProvider(fixture.Context));
        Assert.Contains("device list scanner", e.Message);
        Assert.Contains(index.Description, e.Message);
        Assert.Null(index.DeviceScan);
    }

    [Fact]
    public void ProviderRejectsInconsistentLists()
    {
        var provider = new GpuIvfScanProvider(fixture.Context);
        Assert.Equal(fixture.Context.ShortName, provider.Name);
        Assert.Throws<ArgumentException>(() => provider.Upload(new IvfDeviceRows(new byte[10], [0, 3], 4)));
        Assert.Throws<ArgumentException>(() => provider.Upload(new IvfDeviceRows(new byte[8], [], 4)));
        Assert.Throws<ArgumentException>(() => provider.Upload(new IvfDeviceRows(new byte[8], [0, 2], 4, new float[5])));
        using var lists = provider.Upload(new IvfDeviceRows(new byte[8], [0, 2], 4));
        Assert.Equal(16, lists.DeviceBytes);
        using var withFactors = provider.Upload(new IvfDeviceRows(new byte[8], [0, 2], 4, new float[6]));
        Assert.Equal(16 + 24, withFactors.DeviceBytes);
    }

    private static IvfIndex Build(string spec, int d, Metric metric, int seed)
    {
        var data = Data.Clustered(N, d, 20, seed);
        var index = new IvfIndex(spec, d, metric) { TrainingSeed = 3 };
        index.Train(data);
        index.Add(data, Enumerable.Range(0, N).Select(i => (long)i).ToArray());
        return index;
    }

    private static (float[] D, long[] L) Search(IvfIndex index, float[] queries, IvfSearchParameters p)
    {
        var dist = new float[Nq * K];
        var lab = new long[Nq * K];
        index.Search(queries, K, dist, lab, p);
        return (dist, lab);
    }

    // Same ids position by position, except where two results' keys tie to float tolerance (summation order).
    private static void AssertSame(string what, float[] cd, long[] cl, float[] gd, long[] gl)
    {
        int swapped = 0;
        for (int i = 0; i < cd.Length; i++)
        {
            float tol = 1e-4f * Math.Max(1f, Math.Abs(cd[i]));
            Assert.True(Math.Abs(cd[i] - gd[i]) <= tol, $"{what}: result {i} distance {gd[i]} vs CPU {cd[i]}");
            if (cl[i] != gl[i]) swapped++;
        }
        Assert.True(swapped <= 2, $"{what}: {swapped} results differ in id beyond key ties");
        Assert.Equal(cl.Where(x => x >= 0).Order(), gl.Where(x => x >= 0).Order());
    }
}
