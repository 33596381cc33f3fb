using Engine.Cli;
using Engine.Index;
using Engine.Index.Ivf;

namespace Engine.Tests.Cli;

/// <summary><c>--device gpu|cuda</c> moving the IVF list scan (PQ and RaBitQ lists) to the device (<see cref="IvfIndex.DeviceScan"/>).</summary>
public class DeviceScanCliTests
{
    [Theory]
    [InlineData("IVF8,PQ4")]
    [InlineData("IVF8,PQ4x4fsnr,RFlat")]
    [InlineData("IVF8,RaBitQ")]
    [InlineData("IVF8,RaBitQ4,RFlat")]
    [InlineData("IVF8,RaBitQfs1,RFlat")]
    public void Gpu_device_puts_pq_and_rabitq_lists_on_the_device(string spec)
    {
        using var index = DeviceIndexes.Create(spec, 8, Metric.L2, "gpu");
        var ivf = Assert.IsType<IvfIndex>(index);
        Assert.NotNull(ivf.DeviceScan);
        Assert.StartsWith("gpu:", ivf.DeviceScan!.Name);
        using var cpu = DeviceIndexes.Create(spec, 8, Metric.L2, "cpu");
        Assert.Null(Assert.IsType<IvfIndex>(cpu).DeviceScan);
    }

    [Fact]
    public void Gpu_device_keeps_lists_without_a_device_scanner_on_the_cpu_scan()
    {
        using var index = DeviceIndexes.Create("IVF8,Flat", 8, Metric.L2, "gpu");
        Assert.Null(Assert.IsType<IvfIndex>(index).DeviceScan);
        var e = Assert.Throws<ArgumentException>(() => DeviceIndexes.Attach(index, "gpu"));
        Assert.Contains("no device list scanner", e.Message);
    }

    [Fact]
    public void Unknown_device_is_named()
    {
        using var index = new IvfIndex("IVF8,PQ4", 8, Metric.L2);
        var e = Assert.Throws<ArgumentException>(() => DeviceIndexes.Attach(index, "tpu"));
        Assert.Contains("'tpu'", e.Message);
        Assert.Same(index, DeviceIndexes.Attach(index, "cpu"));
        Assert.Null(index.DeviceScan);
    }

    [Fact]
    public void Cuda_device_never_falls_back_to_the_cpu_accelerator()
    {
        using var index = new IvfIndex("IVF8,PQ4", 8, Metric.L2);
        try
        {
            DeviceIndexes.Attach(index, "cuda");
            Assert.Equal("gpu:cuda", index.DeviceScan!.Name); // a CUDA machine
        }
        catch (InvalidOperationException e)
        {
            Assert.Contains("'cuda'", e.Message);
            Assert.Contains("no CUDA device", e.Message);
            Assert.Null(index.DeviceScan);
        }
    }
}
