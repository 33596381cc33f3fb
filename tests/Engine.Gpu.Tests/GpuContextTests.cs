namespace Engine.Gpu.Tests;

public sealed class GpuContextTests
{
    [Fact]
    public void CpuKindIsForcedAndDescribed()
    {
        using var ctx = GpuContext.Create(new GpuContextOptions { Device = GpuDeviceKind.Cpu, CpuMultiprocessors = 3 });
        Assert.Equal(GpuDeviceKind.Cpu, ctx.Kind);
        Assert.True(ctx.IsCpuSimulator);
        Assert.Contains("CPU accelerator", ctx.Describe());
        Assert.Contains("3 multiprocessors", ctx.Describe());
    }

    [Fact]
    public void AutoPicksCudaOrFallsBackToCpu()
    {
        using var ctx = GpuContext.Create(GpuDeviceKind.Auto);
        Assert.True(ctx.Kind is GpuDeviceKind.Cuda or GpuDeviceKind.Cpu);
        Assert.Equal(ctx.Kind == GpuDeviceKind.Cuda, ctx.Describe().StartsWith("CUDA:", StringComparison.Ordinal));
    }

    [Fact]
    public void ForcedCudaEitherRunsOnCudaOrSaysThereIsNone()
    {
        try
        {
            using var ctx = GpuContext.Create(GpuDeviceKind.Cuda);
            Assert.Equal(GpuDeviceKind.Cuda, ctx.Kind);
        }
        catch (InvalidOperationException e)
        {
            Assert.Contains("no CUDA device", e.Message);
        }
    }

    [Fact]
    public void RejectsBadOptions()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => GpuContext.Create((GpuDeviceKind)7));
        Assert.Throws<ArgumentOutOfRangeException>(() => GpuContext.Create(new GpuContextOptions { ScratchEntries = 10 }));
        var ctx = GpuContext.Create(GpuDeviceKind.Cpu);
        ctx.Dispose();
        Assert.Throws<ObjectDisposedException>(() => GpuFlatSearch.Search(ctx, new float[4], 2, Metric.L2, new float[2], 1, new float[1], new long[1]));
    }
}

[Collection("gpu")]
public sealed class GpuBenchTests(GpuFixture fixture)
{
    [Fact]
    public void ReportsEveryKernelAndEndToEndTiming()
    {
        var sw = new StringWriter();
        GpuBench.Run(fixture.Context, new GpuBenchOptions { Corpus = 2000, Queries = 8, Dimension = 12, K = 5, Clusters = 8, Iterations = 2, SubQuantizers = 4, Repeats = 1 }, sw);
        string text = sw.ToString();
        foreach (var line in new[] { "accelerator: ILGPU CPU accelerator", "flat L2 scan + top-5", "flat search end to end", "k-means step (n=2000, c=8)",
                     "k-means train end to end", "IVF build k-means (IVF8,Flat train", "mining end to end (8 anchors", "IVF-PQ ADC scan (m=4" })
            Assert.Contains(line, text);
        Assert.Equal(3, System.Text.RegularExpressions.Regex.Matches(text, "GFLOP/s").Count); // flat scan, k-means step, ADC
        Assert.Throws<ArgumentNullException>(() => GpuBench.Run(fixture.Context, null!, sw));
    }
}
