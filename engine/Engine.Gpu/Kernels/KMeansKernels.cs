using ILGPU;
using ILGPU.Runtime;

namespace Engine.Gpu.Kernels;

/// <summary>Shape of a k-means step.</summary>
internal struct KMeansArgs
{
    /// <summary>Vector dimension.</summary>
    public int Dimension;
    /// <summary>Points.</summary>
    public int Points;
    /// <summary>Centroids.</summary>
    public int Clusters;
    /// <summary>Fixed point blocks of the deterministic reduction.</summary>
    public int Blocks;
    /// <summary>1 when the per-cluster penalty view holds <see cref="Clusters"/> entries to add to each cost, else 0.</summary>
    public int HasPenalty;
}

/// <summary>
/// Lloyd step kernels. Assignment is one thread per point (argmin over all centroids, ties to the lower
/// centroid). The update is deterministic: points are cut into <see cref="KMeansArgs.Blocks"/> fixed
/// contiguous blocks; thread (block, j) adds coordinate j of its block's points in point order into a
/// per-block partial sum, and thread (cluster, j) adds the partials in block order. No float atomics, so
/// the result does not depend on scheduling.
/// </summary>
internal static class KMeansKernels
{
    /// <summary>
    /// Thread i: the centroid minimising squared distance (+ penalty[c] when <see cref="KMeansArgs.HasPenalty"/>)
    /// for point i, and its squared distance without the penalty.
    /// </summary>
    public static void Assign(Index1D i, ArrayView<float> points, ArrayView<float> centroids, ArrayView<float> penalty,
        ArrayView<int> assignment, ArrayView<float> distance, KMeansArgs a)
    {
        int d = a.Dimension;
        long pOff = (long)(int)i * d;
        int best = 0;
        float bestCost = float.PositiveInfinity, bestDist = float.PositiveInfinity;
        for (int c = 0; c < a.Clusters; c++)
        {
            long cOff = (long)c * d;
            float acc = 0;
            for (int j = 0; j < d; j++)
            {
                float diff = points[pOff + j] - centroids[cOff + j];
                acc += diff * diff;
            }
            float cost = a.HasPenalty != 0 ? acc + penalty[c] : acc;
            if (cost < bestCost) { bestCost = cost; bestDist = acc; best = c; }
        }
        assignment[i] = best;
        distance[i] = bestDist;
    }

    /// <summary>Thread (block b, coordinate j): partial sums (and, for j = 0, counts) of block b per cluster.</summary>
    public static void PartialSums(Index1D i, ArrayView<float> points, ArrayView<int> assignment,
        ArrayView<float> partialSums, ArrayView<int> partialCounts, KMeansArgs a)
    {
        int d = a.Dimension;
        int b = i / d, j = i - b * d;
        long start = (long)a.Points * b / a.Blocks, end = (long)a.Points * (b + 1) / a.Blocks;
        long sumBase = (long)b * a.Clusters;
        for (long p = start; p < end; p++)
        {
            int c = assignment[p];
            partialSums[(sumBase + c) * d + j] += points[p * d + j];
            if (j == 0) partialCounts[sumBase + c] += 1;
        }
    }

    /// <summary>
    /// Thread (cluster c, coordinate j): adds the block partials in order; writes the mean, or keeps the old
    /// centroid when the cluster is empty. Thread j = 0 also writes the count.
    /// </summary>
    public static void Reduce(Index1D i, ArrayView<float> partialSums, ArrayView<int> partialCounts,
        ArrayView<float> centroids, ArrayView<float> newCentroids, ArrayView<int> counts, KMeansArgs a)
    {
        int d = a.Dimension;
        int c = i / d, j = i - c * d;
        float sum = 0;
        int count = 0;
        for (int b = 0; b < a.Blocks; b++)
        {
            long cell = (long)b * a.Clusters + c;
            sum += partialSums[cell * d + j];
            count += partialCounts[cell];
        }
        newCentroids[i] = count > 0 ? sum / count : centroids[i];
        if (j == 0) counts[c] = count;
    }
}
