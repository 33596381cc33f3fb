using Engine.Index.Hnsw;
using Engine.Tests.Ivf;
using Engine.Tests.Support;

namespace Engine.Tests.Hnsw;

public class HnswGraphTests
{
    private const int D = 16, K = 10;

    private static double Recall(HnswIndex index, float[] data, long[] ids, float[] queries, int ef, Metric metric = Metric.L2)
    {
        int nq = queries.Length / D;
        var truth = IvfTestData.GroundTruth(data, ids, queries, D, K, metric);
        var got = IvfTestData.SearchLabels(index, queries, K, new HnswSearchParameters { Ef = ef, Threads = 1 });
        return IvfTestData.Recall(truth, got, nq, K);
    }

    [Fact]
    public void HeuristicSelectionBeatsSimpleOnClusteredData()
    {
        // Many tight, far-apart clusters: the M closest candidates of a node all lie in its own cluster, so simple
        // selection leaves clusters poorly connected; the heuristic keeps links that leave the cluster.
        var (data, queries) = HnswTestData.Split(2000, 100, D, 100, seed: 31, spread: 0.02f);
        var ids = IvfTestData.Ids(2000);
        double Build(NeighborSelection selection)
        {
            using var index = new HnswIndex("HNSW4,efC32", D) { BuildThreads = 1, Selection = selection };
            index.Add(data, ids);
            return Recall(index, data, ids, queries, ef: 16);
        }
        double heuristic = Build(NeighborSelection.Heuristic), simple = Build(NeighborSelection.Simple);
        Assert.True(heuristic >= simple + 0.2, $"heuristic {heuristic:F3}, simple {simple:F3}");
        Assert.True(heuristic >= 0.95, $"heuristic {heuristic:F3}");
    }

    [Fact]
    public void HeuristicOptionsKeepRecall()
    {
        var data = IvfTestData.Clustered(2000, D, 20, seed: 33);
        var queries = IvfTestData.Clustered(50, D, 20, seed: 34);
        var ids = IvfTestData.Ids(2000);
        using var index = new HnswIndex("HNSW8,efC64", D) { BuildThreads = 1, KeepPrunedConnections = true, ExtendCandidates = true };
        index.Add(data, ids);
        double recall = Recall(index, data, ids, queries, ef: 64);
        Assert.True(recall >= 0.95, $"recall {recall:F3}");
        // keepPrunedConnections fills every level-0 list of the new nodes to M at least (when there are M candidates).
        Assert.True(index.Degrees().Min() >= 8, $"min degree {index.Degrees().Min()}");
    }

    [Fact]
    public void SingleThreadedBuildIsDeterministic()
    {
        var data = IvfTestData.Clustered(1500, D, 20, seed: 35);
        var ids = IvfTestData.Ids(1500);
        using var dir = new TempDir();
        for (int run = 0; run < 2; run++)
        {
            using var index = new HnswIndex("HNSW8,efC40", D) { BuildThreads = 1, Seed = 7 };
            index.Add(data.AsSpan(0, 1000 * D), ids.AsSpan(0, 1000));
            index.Add(data.AsSpan(1000 * D), ids.AsSpan(1000));
            index.Save(dir.File($"run{run}.hnsw"));
        }
        Assert.Equal(File.ReadAllBytes(dir.File("run0.hnsw")), File.ReadAllBytes(dir.File("run1.hnsw")));
        using (var other = new HnswIndex("HNSW8,efC40", D) { BuildThreads = 1, Seed = 8 })
        {
            other.Add(data, ids);
            other.Save(dir.File("seed8.hnsw"));
        }
        Assert.NotEqual(File.ReadAllBytes(dir.File("run0.hnsw")), File.ReadAllBytes(dir.File("seed8.hnsw")));
    }

    [Fact]
    public void ParallelBuildReachesTheSameRecall()
    {
        var data = IvfTestData.Clustered(3000, D, 30, seed: 36);
        var queries = IvfTestData.Clustered(100, D, 30, seed: 37);
        var ids = IvfTestData.Ids(3000);
        using var serial = new HnswIndex("HNSW12,efC64", D) { BuildThreads = 1 };
        serial.Add(data, ids);
        using var parallel = new HnswIndex("HNSW12,efC64", D) { BuildThreads = 4 };
        parallel.Add(data, ids);
        Assert.Equal(3000, parallel.Count);
        double rs = Recall(serial, data, ids, queries, 48), rp = Recall(parallel, data, ids, queries, 48);
        Assert.True(rp >= rs - 0.02 && rp >= 0.93, $"parallel {rp:F3}, serial {rs:F3}");
    }

    [Fact]
    public void LevelsFollowTheExponentialDistribution()
    {
        var data = TestData.Gaussian(4000, D, seed: 38);
        using var index = new HnswIndex("HNSW8,efC16", D) { BuildThreads = 1 };
        index.Add(data, TestData.Sequential(4000));
        // P(level ≥ 1) = 1/M: about 500 of 4000 nodes; the top level is about log_M(n) ≈ 4.
        int upper = index.UpperNodeCount();
        Assert.InRange(upper, 400, 600);
        Assert.InRange(index.TopLevel, 2, 7);
    }

    [Fact]
    public void SearchAllocatesNothingAfterWarmUp()
    {
        var data = IvfTestData.Clustered(1000, D, 10, seed: 39);
        using var index = new HnswIndex("HNSW8,efC32", D) { BuildThreads = 1 };
        index.Add(data, IvfTestData.Ids(1000));
        var q = data.AsSpan(0, D).ToArray();
        var dist = new float[K];
        var lab = new long[K];
        var p = new HnswSearchParameters { Ef = 32, Threads = 1 };
        for (int i = 0; i < 5; i++) index.Search(q, K, dist, lab, p);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 20; i++) index.Search(q, K, dist, lab, p);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.Equal(0, lab[0]);
    }
}
