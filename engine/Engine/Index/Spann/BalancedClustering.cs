using Engine.Clustering;

namespace Engine.Index.Spann;

/// <summary>
/// Hierarchical balanced k-means (SPTAG's BKT build in spirit): split the set into up to
/// <see cref="Branching"/> clusters with k-means whose assignment adds a balance penalty λ·|cluster|
/// (counts from the previous iteration), and recurse into every cluster larger than the leaf size. The
/// centroids of the leaves become SPANN heads, so postings come out small and near-uniform in size.
/// </summary>
internal static class BalancedClustering
{
    public const int Branching = 32;
    private const int Iterations = 8;
    private static readonly CpuKMeansBackend DefaultBackend = new();

    /// <summary>Returns the leaf centroids (count × d, row-major); every split's Lloyd steps run on <paramref name="backend"/> (null: CPU).</summary>
    public static float[] BuildHeads(ReadOnlySpan<float> data, int dimension, int leafSize, int seed, IKMeansBackend? backend = null,
        IProgress<BuildProgress>? progress = null)
    {
        int n = data.Length / dimension;
        var rng = new Random(seed);
        // Progress: rows placed in a leaf (a head) out of n, reported when another 1 % is placed and at the end.
        long placed = 0, reported = 0, step = Math.Max(1, n / 100);
        progress?.Report(new BuildProgress("balanced clustering", 0, n));
        void Placed(int rows)
        {
            placed += rows;
            if (progress is null || (placed - reported < step && placed < n)) return;
            reported = placed;
            progress.Report(new BuildProgress("balanced clustering", placed, n));
        }
        var heads = new List<float>();
        var stack = new Stack<int[]>();
        stack.Push(Enumerable.Range(0, n).ToArray());
        while (stack.Count > 0)
        {
            int[] members = stack.Pop();
            if (members.Length <= leafSize)
            {
                if (members.Length > 0) AddMean(data, dimension, members, heads);
                Placed(members.Length);
                continue;
            }
            int k = Math.Min(Branching, (members.Length + leafSize - 1) / leafSize);
            var clusters = Split(data, dimension, members, k, rng, backend);
            if (clusters.Count(c => c.Length > 0) <= 1)
            {
                // Identical points: k-means cannot separate them; cut into leaf-sized chunks.
                for (int s = 0; s < members.Length; s += leafSize)
                    AddMean(data, dimension, members.AsSpan(s, Math.Min(leafSize, members.Length - s)).ToArray(), heads);
                Placed(members.Length);
                continue;
            }
            foreach (var c in clusters) if (c.Length > 0) stack.Push(c);
        }
        return heads.ToArray();
    }

    private static void AddMean(ReadOnlySpan<float> data, int d, int[] members, List<float> heads)
    {
        var mean = new double[d];
        foreach (int m in members)
        {
            var row = data.Slice(m * d, d);
            for (int j = 0; j < d; j++) mean[j] += row[j];
        }
        for (int j = 0; j < d; j++) heads.Add((float)(mean[j] / members.Length));
    }

    /// <summary>
    /// Balanced k-means of <paramref name="members"/> into k groups; the Lloyd steps run on
    /// <paramref name="backend"/> (null: in-process <see cref="CpuKMeansBackend"/>).
    /// </summary>
    internal static List<int[]> Split(ReadOnlySpan<float> data, int d, int[] members, int k, Random rng, IKMeansBackend? backend = null)
    {
        int m = members.Length;
        var centroids = new float[k * d];
        var next = new float[k * d];
        var perm = members.OrderBy(_ => rng.Next()).Take(k).ToArray();
        for (int c = 0; c < k; c++) data.Slice(perm[c] * d, d).CopyTo(centroids.AsSpan(c * d, d));
        var labels = new int[m];
        var dist = new float[m];
        var counts = new int[k];
        var penalty = new float[k];
        using var session = (backend ?? DefaultBackend).Open(data, d, members);
        for (int iter = 0; iter < Iterations; iter++)
        {
            if (iter > 0)
            {
                // λ scales the size penalty to the typical distance so a cluster twice the mean size costs
                // about one mean distance more; sizes are those of the previous iteration.
                double total = 0;
                for (int i = 0; i < m; i++) total += dist[i];
                float lambda = (float)(total / m / Math.Max(1.0, (double)m / k));
                for (int c = 0; c < k; c++) penalty[c] = lambda * counts[c];
            }
            session.Step(centroids, iter > 0 ? penalty : [], next, labels, dist, counts);
            (centroids, next) = (next, centroids);
            for (int c = 0; c < k; c++)
            {
                // Re-seed an empty cluster on a random member so k stays useful.
                if (counts[c] == 0) data.Slice(members[rng.Next(m)] * d, d).CopyTo(centroids.AsSpan(c * d, d));
            }
        }
        var result = new List<int>[k];
        for (int c = 0; c < k; c++) result[c] = new List<int>(counts[c]);
        for (int i = 0; i < m; i++) result[labels[i]].Add(members[i]);
        return result.Select(r => r.ToArray()).ToList();
    }
}
