using Engine.Index.Flat;

namespace Engine.Gpu.Tests;

[Collection("gpu")]
public sealed class FlatSearchTests(GpuFixture fixture)
{
    private readonly GpuContext _ctx = fixture.Context;

    public static TheoryData<int, int, int, int, Metric> Cases => new()
    {
        { 500, 7, 7, 1, Metric.L2 },
        { 1, 1, 3, 1, Metric.L2 },
        { 700, 1, 5, 10, Metric.L2 },
        { 3000, 33, 6, 10, Metric.InnerProduct },
        { 2500, 100, 4, 100, Metric.L2 },
        { 1500, 33, 3, 1000, Metric.L2 },
        { 1200, 7, 3, 1000, Metric.Cosine },
        { 5000, 16, 2, 1000, Metric.InnerProduct },
        { 300, 7, 2, 1000, Metric.L2 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesFlatIndex(int n, int d, int nq, int k, Metric metric)
    {
        var corpus = Data.Gaussian(n, d, seed: n * 31 + d);
        var queries = Data.Gaussian(nq, d, seed: 7 + k);
        using var flat = new FlatIndex(d, metric);
        flat.Add(corpus, Enumerable.Range(0, n).Select(i => (long)i).ToArray());
        var cpuD = new float[nq * k]; var cpuL = new long[nq * k];
        flat.Search(queries, k, cpuD, cpuL, new SearchParameters { Threads = 1 });

        var gpuD = new float[nq * k]; var gpuL = new long[nq * k];
        GpuFlatSearch.Search(_ctx, corpus, d, metric, queries, k, gpuD, gpuL);

        Compare.Results(cpuD, cpuL, gpuD, gpuL, nq, k);
    }
}

internal static class Compare
{
    /// <summary>Same labels where the distance is not tied with a neighbour; distances within tolerance.</summary>
    public static void Results(float[] cpuD, long[] cpuL, float[] gpuD, long[] gpuL, int nq, int k)
    {
        for (int q = 0; q < nq; q++)
        {
            for (int j = 0; j < k; j++)
            {
                int i = q * k + j;
                Assert.True(cpuL[i] == -1 == (gpuL[i] == -1), $"query {q} rank {j}: padding differs ({cpuL[i]} vs {gpuL[i]})");
                if (cpuL[i] == -1) { Assert.Equal(cpuD[i], gpuD[i]); continue; }
                float tol = 1e-3f * Math.Max(1f, Math.Abs(cpuD[i]));
                Assert.True(Math.Abs(cpuD[i] - gpuD[i]) <= tol, $"query {q} rank {j}: distance {gpuD[i]} vs {cpuD[i]}");
                bool tiedBefore = j > 0 && Math.Abs(cpuD[i] - cpuD[i - 1]) <= tol;
                bool tiedAfter = j + 1 < k && cpuL[i + 1] != -1 && Math.Abs(cpuD[i] - cpuD[i + 1]) <= tol;
                if (!tiedBefore && !tiedAfter)
                    Assert.True(cpuL[i] == gpuL[i], $"query {q} rank {j}: label {gpuL[i]} vs {cpuL[i]} (distance {cpuD[i]})");
            }
        }
    }
}

[Collection("gpu")]
public sealed class FlatSearchChunkingTests
{
    [Theory]
    [InlineData(20000, 5, 3, 1000, 0)]
    [InlineData(9000, 3, 5, 100, 0)]
    [InlineData(5000, 9, 3, 10, 16)]
    [InlineData(6000, 4, 2, 1000, 8)]
    public void SmallScratchForcesQueryBatchesAndTileChunks(int n, int d, int nq, int k, int groupSize)
    {
        // 4096 scratch entries: with k = 1000 only 4 partial lists fit, one query per batch, two merge passes.
        // A forced group size runs the GPU-shaped sort (several threads, shared stages with barriers).
        using var ctx = GpuContext.Create(new GpuContextOptions
        {
            Device = GpuDeviceKind.Cpu, CpuMultiprocessors = 2, ScratchEntries = 4096, ScanGroupSize = groupSize,
        });
        var corpus = Data.Gaussian(n, d, seed: 11);
        var queries = Data.Gaussian(nq, d, seed: 12);
        using var flat = new FlatIndex(d, Metric.L2);
        flat.Add(corpus, Enumerable.Range(0, n).Select(i => (long)i).ToArray());
        var cpuD = new float[nq * k]; var cpuL = new long[nq * k];
        flat.Search(queries, k, cpuD, cpuL);
        var gpuD = new float[nq * k]; var gpuL = new long[nq * k];
        GpuFlatSearch.Search(ctx, corpus, d, Metric.L2, queries, k, gpuD, gpuL);
        Compare.Results(cpuD, cpuL, gpuD, gpuL, nq, k);
    }
}
