using Engine.Gpu;

namespace Engine.Gpu.Tests;

/// <summary>One CPU-accelerator context shared by the tests of a class (kernel compilation is the slow part).</summary>
public sealed class GpuFixture : IDisposable
{
    public GpuContext Context { get; } = GpuContext.Create(new GpuContextOptions { Device = GpuDeviceKind.Cpu, CpuMultiprocessors = 2 });

    public void Dispose() => Context.Dispose();
}

[CollectionDefinition("gpu")]
public sealed class GpuCollection : ICollectionFixture<GpuFixture>;

internal static class Data
{
    public static float[] Gaussian(int n, int d, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n * d];
        for (int i = 0; i < x.Length; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            x[i] = (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return x;
    }

    /// <summary>n × d points around <paramref name="clusters"/> seeded centres in [−3, 3]^d (spread 0.3).</summary>
    public static float[] Clustered(int n, int d, int clusters, int seed)
    {
        var centres = Gaussian(clusters, d, seed);
        var noise = Gaussian(n, d, seed + 1);
        var rng = new Random(seed + 2);
        var x = new float[n * d];
        for (int i = 0; i < n; i++)
        {
            int c = rng.Next(clusters);
            for (int j = 0; j < d; j++) x[i * d + j] = 3 * centres[c * d + j] + 0.3f * noise[i * d + j];
        }
        return x;
    }
}
