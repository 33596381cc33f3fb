using Engine.Clustering;
using Engine.Index;
using Engine.Index.Ivf;
using Engine.Index.Spann;
using Engine.Tests.Ivf;

namespace Engine.Tests.Clustering;

public class KMeansBackendTests
{
    private const int D = 16;

    /// <summary>Wraps the CPU backend and counts what the trainers hand it.</summary>
    private sealed class CountingBackend : IKMeansBackend
    {
        private readonly CpuKMeansBackend _inner = new(threads: 2);

        public int Sessions;
        public int Steps;
        public int PenalisedSteps;

        public string Name => "counting";

        public IKMeansSession Open(ReadOnlySpan<float> vectors, int dimension, ReadOnlySpan<int> rows)
        {
            Interlocked.Increment(ref Sessions);
            return new Session(this, _inner.Open(vectors, dimension, rows));
        }

        private sealed class Session(CountingBackend owner, IKMeansSession inner) : IKMeansSession
        {
            public int Points => inner.Points;

            public int Dimension => inner.Dimension;

            public void Step(ReadOnlySpan<float> centroids, ReadOnlySpan<float> penalty, Span<float> newCentroids, Span<int> assignments, Span<float> distances, Span<int> counts)
            {
                Interlocked.Increment(ref owner.Steps);
                if (!penalty.IsEmpty) Interlocked.Increment(ref owner.PenalisedSteps);
                inner.Step(centroids, penalty, newCentroids, assignments, distances, counts);
            }

            public void Assign(ReadOnlySpan<float> centroids, Span<int> assignments, Span<float> distances) => inner.Assign(centroids, assignments, distances);

            public void Dispose() => inner.Dispose();
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CpuBackendGivesTheSameCentroidsAsInProcessTraining(bool balanced)
    {
        // 3000 rows, 24 clusters × 64 points per centroid: a real sample, so row selection goes through the session.
        var x = IvfTestData.Clustered(3000, D, 12, seed: 21);
        var options = new KMeansOptions(24) { Seed = 4, MaxPointsPerCentroid = 64, Balanced = balanced, Threads = 2 };
        var a1 = new int[3000];
        var a2 = new int[3000];
        var inProcess = KMeans.Train(x, D, options, a1);
        var viaBackend = KMeans.Train(x, D, options with { Backend = new CpuKMeansBackend(threads: 1) }, a2);
        Assert.Equal(inProcess, viaBackend);
        Assert.Equal(a1, a2);
    }

    [Fact]
    public void StepFollowsTheContract()
    {
        // Points 0 and 1 sit on centroid 0, point 2 halfway: ties go to the lower centroid; a penalty moves it.
        float[] x = [0, 0, 0.1f, 0, 1, 0];
        float[] c = [0, 0, 2, 0, 50, 50];
        var next = new float[6];
        var assign = new int[3];
        var dist = new float[3];
        var counts = new int[3];
        KMeans.Step(x, 2, c, [], next, assign, dist, counts);
        Assert.Equal([0, 0, 0], assign);
        Assert.Equal([3, 0, 0], counts);
        Assert.Equal(1f, dist[2], 5);
        AssertClose([1.1 / 3, 0, 2, 0, 50, 50], next);

        KMeans.Step(x, 2, c, [0.5f, 0, 0], next, assign, dist, counts);
        Assert.Equal([0, 0, 1], assign);
        Assert.Equal(1f, dist[2], 5); // reported without the penalty
        Assert.Equal([2, 1, 0], counts);
        AssertClose([0.05, 0, 1, 0, 50, 50], next);
    }

    private static void AssertClose(double[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-6, $"[{i}] {actual[i]} vs {expected[i]}");
    }

    [Fact]
    public void SessionsRejectBadShapes()
    {
        var backend = new CpuKMeansBackend();
        var x = IvfTestData.Clustered(50, 3, 2, seed: 1);
        Assert.Throws<ArgumentException>(() => backend.Open(x, 3, [0, 50]));
        Assert.Throws<ArgumentException>(() => backend.Open(x, 4, []));
        Assert.Throws<ArgumentException>(() => backend.Open([], 3, []));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CpuKMeansBackend(-1));
        using var s = backend.Open(x, 3, [1, 2, 3]);
        Assert.Equal(3, s.Points);
        var c = new float[6];
        Assert.Throws<ArgumentException>(() => s.Step(c, [1, 2, 3], new float[6], new int[3], new float[3], new int[2]));
        Assert.Throws<ArgumentException>(() => s.Step(c, [], new float[5], new int[3], new float[3], new int[2]));
        Assert.Throws<ArgumentException>(() => s.Step(c, [], new float[6], new int[2], new float[3], new int[2]));
        Assert.Throws<ArgumentException>(() => s.Assign(new float[7], new int[3], new float[3]));
        Assert.Throws<ArgumentException>(() => s.Assign(c, new int[3], new float[2]));
        Assert.Throws<ArgumentException>(() => s.Assign([], new int[3], new float[3]));
    }

    [Theory]
    [InlineData("IVF16,Flat", false)]
    [InlineData("IVF16,PQ4", true)]
    public void IvfTrainingRunsOnTheGivenBackendWithUnchangedResults(string spec, bool balanced)
    {
        var x = IvfTestData.Clustered(4000, D, 16, seed: 31);
        var q = IvfTestData.Clustered(20, D, 16, seed: 32);
        var backend = new CountingBackend();
        using var plain = new IvfIndex(spec, D) { BalancedLists = balanced, DefaultProbes = 4 };
        using var viaBackend = new IvfIndex(spec, D) { BalancedLists = balanced, DefaultProbes = 4, ClusteringBackend = backend };
        foreach (var index in new[] { plain, viaBackend })
        {
            index.Train(x);
            index.Add(x, IvfTestData.Ids(4000));
        }
        Assert.Equal(1, backend.Sessions);
        // 10 Lloyd iterations (penalised after the first when balanced); balancing adds its own unpenalised steps.
        if (balanced) Assert.True(backend.Steps >= 10, $"{backend.Steps} steps");
        else Assert.Equal(10, backend.Steps);
        Assert.Equal(balanced ? 9 : 0, backend.PenalisedSteps);
        Assert.Equal(plain.ListSizes(), viaBackend.ListSizes());
        Assert.Equal(IvfTestData.SearchLabels(plain, q, 10), IvfTestData.SearchLabels(viaBackend, q, 10));
    }

    [Fact]
    public void SpannBuildRunsOnTheGivenBackendWithUnchangedResults()
    {
        var x = IvfTestData.Clustered(3000, D, 10, seed: 41);
        var q = IvfTestData.Clustered(20, D, 10, seed: 42);
        var backend = new CountingBackend();
        using var plain = IndexFactory.Create("SPANN(size=32)", D, Metric.L2);
        using var viaBackend = IndexFactory.Create("SPANN(size=32)", D, Metric.L2, new IndexBuildOptions { ClusteringBackend = backend });
        Assert.Same(backend, ((SpannIndex)viaBackend).Options.ClusteringBackend);
        Assert.Equal(plain.Description, viaBackend.Description);
        foreach (var index in new[] { plain, viaBackend })
        {
            index.Train(x);
            index.Add(x, IvfTestData.Ids(3000));
            ((SpannIndex)index).WaitForMaintenance();
        }
        Assert.True(backend.Sessions >= 2, $"{backend.Sessions} splits");   // 3000 / 32 leaves need more than one level
        Assert.Equal(8 * backend.Sessions, backend.Steps);                  // 8 balanced iterations per split
        Assert.Equal(7 * backend.Sessions, backend.PenalisedSteps);
        Assert.Equal(IvfTestData.SearchLabels(plain, q, 10), IvfTestData.SearchLabels(viaBackend, q, 10));
    }
}
