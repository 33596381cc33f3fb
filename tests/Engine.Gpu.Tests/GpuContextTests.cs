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
