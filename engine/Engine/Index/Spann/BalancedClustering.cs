using Engine.Distance;

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
    private const int Block = 256;

    /// <summary>Returns the leaf centroids (count × d, row-major).</summary>
    public static float[] BuildHeads(float[] data, int dimension, int leafSize, int seed)
    {
        int n = data.Length / dimension;
        var rng = new Random(seed);
        var heads = new List<float>();
        var stack = new Stack<int[]>();
        stack.Push(Enumerable.Range(0, n).ToArray());
        while (stack.Count > 0)
        {
            int[] members = stack.Pop();
            if (members.Length <= leafSize)
            {
                if (members.Length > 0) AddMean(data, dimension, members, heads);
                continue;
            }
            int k = Math.Min(Branching, (members.Length + leafSize - 1) / leafSize);
            var clusters = Split(data, dimension, members, k, rng);
            if (clusters.Count(c => c.Length > 0) <= 1)
            {
                // Identical points: k-means cannot separate them; cut into leaf-sized chunks.
                for (int s = 0; s < members.Length; s += leafSize)
                    AddMean(data, dimension, members.AsSpan(s, Math.Min(leafSize, members.Length - s)).ToArray(), heads);
                continue;
            }
            foreach (var c in clusters) if (c.Length > 0) stack.Push(c);
        }
        return heads.ToArray();
    }

    private static void AddMean(float[] data, int d, int[] members, List<float> heads)
    {
        var mean = new double[d];
        foreach (int m in members)
        {
            var row = data.AsSpan(m * d, d);
            for (int j = 0; j < d; j++) mean[j] += row[j];
        }
        for (int j = 0; j < d; j++) heads.Add((float)(mean[j] / members.Length));
    }

    /// <summary>Balanced k-means of <paramref name="members"/> into k groups.</summary>
    internal static List<int[]> Split(float[] data, int d, int[] members, int k, Random rng)
    {
        int m = members.Length;
        var centroids = new float[k * d];
        var perm = members.OrderBy(_ => rng.Next()).Take(k).ToArray();
        for (int c = 0; c < k; c++) data.AsSpan(perm[c] * d, d).CopyTo(centroids.AsSpan(c * d, d));
        var labels = new int[m];
        var bestDists = new float[m];
        var counts = new int[k];
        var prevCounts = new int[k];
        var cNorms = new float[k];
        int blocks = (m + Block - 1) / Block;
        // Sums are accumulated per fixed slice of points and reduced in slice order, so the result does not depend on
        // the thread count or scheduling.
        int slices = Math.Min(blocks, Math.Max(1, Environment.ProcessorCount * 2));
        var sliceSums = new double[slices][];
        var sliceCounts = new int[slices][];
        for (int t = 0; t < slices; t++) { sliceSums[t] = new double[k * d]; sliceCounts[t] = new int[k]; }
        var sums = new double[k * d];
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount };
        double prevMeanDist = 0;
        for (int iter = 0; iter < Iterations; iter++)
        {
            Distances.SquaredNorms(centroids, d, cNorms);
            // λ scales the size penalty to the typical distance so a cluster twice the mean size costs about one
            // mean distance more.
            float lambda = iter == 0 ? 0 : (float)(prevMeanDist / Math.Max(1.0, (double)m / k));
            Parallel.For(0, slices, parallel, t =>
            {
                var block = new float[Block * d];
                var blockNorms = new float[Block];
                var dist = new float[Block * k];
                var localSums = sliceSums[t];
                var localCounts = sliceCounts[t];
                Array.Clear(localSums);
                Array.Clear(localCounts);
                for (int bi = (int)((long)t * blocks / slices); bi < (int)((long)(t + 1) * blocks / slices); bi++)
                {
                    int s = bi * Block, b = Math.Min(Block, m - s);
                    for (int i = 0; i < b; i++) data.AsSpan(members[s + i] * d, d).CopyTo(block.AsSpan(i * d, d));
                    Distances.SquaredNorms(block.AsSpan(0, b * d), d, blockNorms);
                    Distances.SquaredL2ManyToMany(block.AsSpan(0, b * d), centroids, d, blockNorms, cNorms, dist.AsSpan(0, b * k));
                    for (int i = 0; i < b; i++)
                    {
                        var row = dist.AsSpan(i * k, k);
                        int best = 0; float bestCost = float.PositiveInfinity; float bestDist = 0;
                        for (int c = 0; c < k; c++)
                        {
                            float cost = row[c] + lambda * prevCounts[c];
                            if (cost < bestCost) { bestCost = cost; best = c; bestDist = row[c]; }
                        }
                        labels[s + i] = best;
                        bestDists[s + i] = bestDist;
                        localCounts[best]++;
                        var x = block.AsSpan(i * d, d);
                        int off = best * d;
                        for (int j = 0; j < d; j++) localSums[off + j] += x[j];
                    }
                }
            });
            double total = 0;
            for (int i = 0; i < m; i++) total += bestDists[i];
            Array.Clear(counts);
            Array.Clear(sums);
            for (int t = 0; t < slices; t++)
            {
                var ls = sliceSums[t];
                var lc = sliceCounts[t];
                for (int c = 0; c < k; c++) counts[c] += lc[c];
                for (int j = 0; j < sums.Length; j++) sums[j] += ls[j];
            }
            prevMeanDist = total / m;
            Array.Copy(counts, prevCounts, k);
            for (int c = 0; c < k; c++)
            {
                if (counts[c] == 0)
                {
                    // Re-seed an empty cluster on a random member so k stays useful.
                    data.AsSpan(members[rng.Next(m)] * d, d).CopyTo(centroids.AsSpan(c * d, d));
                    continue;
                }
                for (int j = 0; j < d; j++) centroids[c * d + j] = (float)(sums[c * d + j] / counts[c]);
            }
        }
        var result = new List<int>[k];
        for (int c = 0; c < k; c++) result[c] = new List<int>(counts[c]);
        for (int i = 0; i < m; i++) result[labels[i]].Add(members[i]);
        return result.Select(r => r.ToArray()).ToList();
    }
}
