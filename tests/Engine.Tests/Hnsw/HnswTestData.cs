using Engine.Index.Hnsw;
using Engine.Tests.Ivf;

namespace Engine.Tests.Hnsw;

/// <summary>Seeded clustered corpora with queries from the same clusters, and small built indexes.</summary>
internal static class HnswTestData
{
    /// <summary>n corpus rows and nq query rows drawn from the same clusters (seeded).</summary>
    public static (float[] Data, float[] Queries) Split(int n, int nq, int d, int clusters, int seed, float spread = 0.3f)
    {
        var all = IvfTestData.Clustered(n + nq, d, clusters, seed, spread);
        return (all[..(n * d)], all[(n * d)..]);
    }

    /// <summary>A sequentially built index (deterministic) over n clustered points with ids 0..n-1.</summary>
    public static (HnswIndex Index, float[] Data, long[] Ids) Built(string spec, int n, int d, int clusters, int seed, double repairThreshold = 0.1)
    {
        var data = IvfTestData.Clustered(n, d, clusters, seed);
        var ids = IvfTestData.Ids(n);
        var index = new HnswIndex(spec, d) { BuildThreads = 1, RepairThreshold = repairThreshold };
        index.Add(data, ids);
        return (index, data, ids);
    }
}
