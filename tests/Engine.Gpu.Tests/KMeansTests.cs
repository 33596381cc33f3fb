using Engine.Distance;

namespace Engine.Gpu.Tests;

[Collection("gpu")]
public sealed class KMeansTests(GpuFixture fixture)
{
    private readonly GpuContext _ctx = fixture.Context;

    // Plain CPU Lloyd step: nearest centroid (ties to lower index), means in double, empty clusters keep theirs.
    private static (float[] Centroids, int[] Assign, int[] Counts, double Inertia) CpuStep(float[] x, int d, float[] c)
    {
        int n = x.Length / d, k = c.Length / d;
        var assign = new int[n]; var counts = new int[k]; var sums = new double[k * d];
        double inertia = 0;
        for (int i = 0; i < n; i++)
        {
            int best = 0; float bestD = float.PositiveInfinity;
            for (int j = 0; j < k; j++)
            {
                float dist = Distances.SquaredL2(x.AsSpan(i * d, d), c.AsSpan(j * d, d));
                if (dist < bestD) { bestD = dist; best = j; }
            }
            assign[i] = best; counts[best]++; inertia += bestD;
            for (int t = 0; t < d; t++) sums[best * d + t] += x[i * d + t];
        }
        var next = (float[])c.Clone();
        for (int j = 0; j < k; j++)
            if (counts[j] > 0) for (int t = 0; t < d; t++) next[j * d + t] = (float)(sums[j * d + t] / counts[j]);
        return (next, assign, counts, inertia);
    }

    [Theory]
    [InlineData(1000, 1, 4)]
    [InlineData(2000, 7, 16)]
    [InlineData(1500, 33, 10)]
    [InlineData(600, 100, 5)]
    public void StepMatchesCpuLloyd(int n, int d, int k)
    {
        var x = Data.Gaussian(n, d, seed: n + d);
        var c = x.AsSpan(0, k * d).ToArray();
        var cpu = CpuStep(x, d, c);
        var next = new float[k * d]; var assign = new int[n]; var counts = new int[k];
        var r = new GpuKMeans(_ctx).Step(x, d, c, next, assign, counts);

        Assert.Equal(cpu.Assign, assign);
        Assert.Equal(cpu.Counts, counts);
        Assert.Equal(cpu.Inertia, r.Inertia, cpu.Inertia * 1e-4);
        for (int i = 0; i < next.Length; i++) Assert.True(Math.Abs(cpu.Centroids[i] - next[i]) <= 1e-4f * Math.Max(1, Math.Abs(cpu.Centroids[i])), $"coordinate {i}: {next[i]} vs {cpu.Centroids[i]}");
    }

    [Fact]
    public void EmptyClusterKeepsItsCentroid()
    {
        int d = 3;
        float[] x = [0, 0, 0, 1, 0, 0, 0, 1, 0];
        float[] c = [0, 0, 0, 100, 100, 100];
        var next = new float[6]; var assign = new int[3]; var counts = new int[2];
        var r = new GpuKMeans(_ctx).Step(x, d, c, next, assign, counts);
        Assert.Equal(1, r.EmptyClusters);
        Assert.Equal([3, 0], counts);
        Assert.Equal([1 / 3f, 1 / 3f, 0, 100, 100, 100], next);
    }

    [Fact]
    public void TrainIsDeterministicAndLowersInertia()
    {
        var x = Data.Gaussian(3000, 8, seed: 5);
        var km = new GpuKMeans(_ctx);
        var a = km.Train(x, 8, 20, iterations: 6, seed: 42);
        var b = km.Train(x, 8, 20, iterations: 6, seed: 42);
        Assert.Equal(a.Centroids, b.Centroids);
        Assert.Equal(a.Assignments, b.Assignments);
        var one = km.Train(x, 8, 20, iterations: 1, seed: 42);
        Assert.True(a.Inertia < one.Inertia, $"inertia after 6 steps {a.Inertia} should be below after 1 step {one.Inertia}");
        Assert.Equal(3000, a.Counts.Sum());
    }

    [Fact]
    public void RejectsBadInput()
    {
        var km = new GpuKMeans(_ctx);
        Assert.Throws<ArgumentException>(() => km.Train(new float[10], 5, 3));
        Assert.Throws<ArgumentException>(() => km.Step(new float[10], 3, new float[3], new float[3], new int[3], new int[1]));
        float[] nan = [float.NaN, 0, 0];
        Assert.Throws<ArgumentException>(() => km.Step(nan, 3, new float[3], new float[3], new int[1], new int[1]));
    }
}
