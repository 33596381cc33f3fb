using Engine.Clustering;

namespace Engine.Gpu.Tests;

/// <summary><see cref="GpuKMeansBackend"/> against the engine's CPU Lloyd step (<see cref="KMeans.Step"/>).</summary>
[Collection("gpu")]
public sealed class KMeansBackendTests(GpuFixture fixture)
{
    private readonly GpuKMeansBackend _backend = new(fixture.Context);

    public static TheoryData<int, int, int, bool, bool> Cases => new()
    {
        // n, d, k, penalty, row subset
        { 1000, 1, 4, false, false },
        { 2000, 7, 16, true, false },
        { 1500, 33, 10, false, true },
        { 800, 129, 1, true, true },
        { 3000, 17, 257, true, false },
        { 257, 3, 64, false, true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void StepMatchesTheCpuLloydStep(int n, int d, int k, bool withPenalty, bool subset)
    {
        var all = Data.Gaussian(n, d, seed: n + 3 * d + k);
        int[] rows = subset ? Enumerable.Range(0, n).Where(i => i % 3 != 1).Reverse().ToArray() : [];
        float[] x = subset ? rows.SelectMany(r => all.AsSpan(r * d, d).ToArray()).ToArray() : all;
        int m = x.Length / d;
        var centroids = x.AsSpan(0, k * d).ToArray();
        var rng = new Random(k);
        float[] penalty = withPenalty ? Enumerable.Range(0, k).Select(_ => (float)rng.NextDouble() * d * 0.5f).ToArray() : [];

        var cpu = (C: new float[k * d], A: new int[m], D: new float[m], N: new int[k]);
        KMeans.Step(x, d, centroids, penalty, cpu.C, cpu.A, cpu.D, cpu.N);
        var gpu = (C: new float[k * d], A: new int[m], D: new float[m], N: new int[k]);
        using (var session = _backend.Open(all, d, rows))
        {
            Assert.Equal(m, session.Points);
            session.Step(centroids, penalty, gpu.C, gpu.A, gpu.D, gpu.N);
        }

        var same = CompareAssignments(x, d, centroids, penalty, cpu.A, gpu.A);
        for (int i = 0; i < m; i++)
            Assert.True(Math.Abs(cpu.D[i] - gpu.D[i]) <= 1e-4f * Math.Max(1, cpu.D[i]) || cpu.A[i] != gpu.A[i], $"point {i}: distance {gpu.D[i]} vs {cpu.D[i]}");
        // Clusters whose members agree must have equal counts and centroids within float tolerance.
        for (int c = 0; c < k; c++)
        {
            if (!same[c]) continue;
            Assert.Equal(cpu.N[c], gpu.N[c]);
            for (int j = 0; j < d; j++)
            {
                float a = cpu.C[c * d + j], b = gpu.C[c * d + j];
                Assert.True(Math.Abs(a - b) <= 1e-4f * Math.Max(1, Math.Abs(a)), $"cluster {c} coordinate {j}: {b} vs {a}");
            }
        }
        Assert.Equal(m, gpu.N.Sum());
    }

    [Theory]
    [InlineData(900, 5, 7)]
    [InlineData(400, 65, 33)]
    public void AssignMatchesTheCpuAssignment(int n, int d, int k)
    {
        var x = Data.Gaussian(n, d, seed: 77 + d);
        var centroids = Data.Gaussian(k, d, seed: 78 + d);
        var cpuA = new int[n]; var cpuD = new float[n];
        KMeans.Assign(x, centroids, d, cpuA, cpuD);
        var gpuA = new int[n]; var gpuD = new float[n];
        using (var session = _backend.Open(x, d, []))
            session.Assign(centroids, gpuA, gpuD);
        CompareAssignments(x, d, centroids, [], cpuA, gpuA);
        for (int i = 0; i < n; i++) Assert.True(Math.Abs(cpuD[i] - gpuD[i]) <= 1e-4f * Math.Max(1, cpuD[i]), $"point {i}: {gpuD[i]} vs {cpuD[i]}");
    }

    [Fact]
    public void TrainingThroughTheBackendMatchesCpuTraining()
    {
        // Well separated clusters: the trained centroids agree with CPU training to float tolerance, and so does the
        // objective (a near-tie could move one point, so the objective is the robust check).
        var x = Data.Clustered(4000, 9, 12, seed: 8);
        var options = new KMeansOptions(12) { Seed = 3, Iterations = 6 };
        var cpu = KMeans.Train(x, 9, options);
        var gpu = KMeans.Train(x, 9, options with { Backend = _backend });
        Assert.Equal(Objective(x, 9, cpu), Objective(x, 9, gpu), Objective(x, 9, cpu) * 1e-4);
        for (int i = 0; i < cpu.Length; i++) Assert.True(Math.Abs(cpu[i] - gpu[i]) <= 1e-3f * Math.Max(1, Math.Abs(cpu[i])), $"[{i}] {gpu[i]} vs {cpu[i]}");
    }

    [Fact]
    public void RejectsBadInputAndUseAfterDispose()
    {
        Assert.Equal(fixture.Context.IsCpuSimulator ? "gpu:ilgpu-cpu" : "gpu:cuda", _backend.Name);
        var x = Data.Gaussian(20, 3, seed: 1);
        Assert.Throws<ArgumentException>(() => _backend.Open(x, 3, [20]));
        Assert.Throws<ArgumentException>(() => _backend.Open(x, 7, []));
        float[] nan = [1, 2, float.NaN];
        Assert.Throws<ArgumentException>(() => _backend.Open(nan, 3, []));
        var session = _backend.Open(x, 3, []);
        var c = x.AsSpan(0, 6).ToArray();
        Assert.Throws<ArgumentException>(() => session.Step(c, [1], new float[6], new int[20], new float[20], new int[2]));
        Assert.Throws<ArgumentException>(() => session.Step(c, [], new float[6], new int[19], new float[20], new int[2]));
        Assert.Throws<ArgumentException>(() => session.Assign(c, new int[20], new float[3]));
        session.Dispose();
        Assert.Throws<ObjectDisposedException>(() => session.Assign(c, new int[20], new float[20]));
    }

    // Assignments must agree wherever the choice is not a near-tie (computed in double); returns, per cluster,
    // whether its member set is the same on both sides.
    private static bool[] CompareAssignments(float[] x, int d, float[] centroids, float[] penalty, int[] cpu, int[] gpu)
    {
        int n = x.Length / d, k = centroids.Length / d;
        var same = Enumerable.Repeat(true, k).ToArray();
        for (int i = 0; i < n; i++)
        {
            if (cpu[i] == gpu[i]) continue;
            double Cost(int c)
            {
                double s = penalty.Length > 0 ? penalty[c] : 0;
                for (int j = 0; j < d; j++) { double t = x[i * d + j] - centroids[c * d + j]; s += t * t; }
                return s;
            }
            double a = Cost(cpu[i]), b = Cost(gpu[i]);
            Assert.True(Math.Abs(a - b) <= 1e-4 * Math.Max(1, Math.Abs(a)), $"point {i}: cluster {gpu[i]} (cost {b}) vs {cpu[i]} (cost {a}) is not a tie");
            same[cpu[i]] = same[gpu[i]] = false;
        }
        return same;
    }

    private static double Objective(float[] x, int d, float[] centroids)
    {
        var a = new int[x.Length / d]; var dist = new float[x.Length / d];
        KMeans.Assign(x, centroids, d, a, dist);
        return dist.Sum(v => (double)v);
    }
}
