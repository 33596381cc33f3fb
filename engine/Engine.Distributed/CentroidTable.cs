using Engine.Clustering;
using Engine.Distance;
using Orleans;

namespace Engine.Distributed;

/// <summary>
/// The coarse quantizer of a collection sharded by <see cref="ShardingMode.CentroidRanges"/>: C centroids, numbered so
/// that each shard owns a contiguous range of them (<see cref="Starts"/>), and the routing both writes and searches use.
/// Trained once on a sample when the collection is created (<see cref="Train"/>), persisted in every replica's
/// directory next to the layout, and fetched from there by the routers; <see cref="ShardLayout.CentroidDigest"/>
/// names it.
/// </summary>
/// <remarks>
/// <para>Routing ranks centroids by squared L2 to the vector or query. For L2 collections that is the IVF assignment;
/// for inner-product and cosine collections the k-means is spherical (unit centroids), and with unit centroids the
/// L2 order is the inner-product order whatever the query's norm, so one kernel serves every metric.</para>
/// <para>The numbering: after k-means the centroids are ordered by recursive bisection along their principal axis
/// (weighted by how many sample rows each attracted), so neighbouring centroids get neighbouring numbers; the order is
/// then cut into S ranges of about equal sample weight. A query's nearest centroids thus tend to fall in few ranges,
/// which is what lets it visit few shards, and every shard receives about the same share of the data.</para>
/// </remarks>
[GenerateSerializer, Immutable, Alias("Engine.Distributed.CentroidTable")]
public sealed record CentroidTable
{
    /// <summary>Vector dimension d.</summary>
    [Id(0)] public required int Dimension { get; init; }

    /// <summary>C × d centroids, row-major, in shard order.</summary>
    [Id(1)] public required float[] Centroids { get; init; }

    /// <summary>S + 1 ascending centroid numbers: shard s owns centroids <c>Starts[s] .. Starts[s+1] − 1</c>.</summary>
    [Id(2)] public required int[] Starts { get; init; }

    /// <summary>Number of centroids C.</summary>
    public int Count => Centroids.Length / Dimension;

    /// <summary>Number of shards S.</summary>
    public int Shards => Starts.Length - 1;

    /// <summary>A 64-bit FNV-1a checksum of the dimension, ranges and centroid bits (never 0).</summary>
    public long Digest
    {
        get
        {
            ulong h = 14695981039346656037UL;
            void Mix(uint v)
            {
                for (int b = 0; b < 4; b++, v >>= 8) h = (h ^ (v & 0xFF)) * 1099511628211UL;
            }
            Mix((uint)Dimension);
            foreach (int s in Starts) Mix((uint)s);
            foreach (float f in Centroids) Mix(BitConverter.SingleToUInt32Bits(f));
            return h == 0 ? 1 : unchecked((long)h);
        }
    }

    /// <summary>Checks the table against <paramref name="layout"/>; throws <see cref="ArgumentException"/> naming the mismatch.</summary>
    public void CheckAgainst(ShardLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        if (!layout.ByCentroid) throw new ArgumentException($"Collection '{layout.Name}' is sharded by key hash; it takes no centroid table.", nameof(layout));
        if (Dimension != layout.Dimension || Centroids is null || Centroids.Length != (long)layout.Centroids * layout.Dimension)
            throw new ArgumentException($"The centroid table holds {Centroids?.Length ?? 0} floats of dimension {Dimension}; layout '{layout.Name}' needs {layout.Centroids} × {layout.Dimension}.", nameof(layout));
        if (Starts is null || Starts.Length != layout.Shards + 1 || Starts[0] != 0 || Starts[^1] != layout.Centroids)
            throw new ArgumentException($"The centroid table's ranges do not cover {layout.Centroids} centroids over {layout.Shards} shards.", nameof(layout));
        for (int s = 0; s < layout.Shards; s++)
            if (Starts[s + 1] <= Starts[s]) throw new ArgumentException($"The centroid table gives shard {s} no centroid.", nameof(layout));
        if (Digest != layout.CentroidDigest)
            throw new ArgumentException($"The centroid table (digest {Digest:X16}) is not the one layout '{layout.Name}' names (digest {layout.CentroidDigest:X16}).", nameof(layout));
    }

    /// <summary>
    /// Trains the coarse quantizer of <paramref name="layout"/> (a <see cref="ShardingMode.CentroidRanges"/> layout;
    /// its <see cref="ShardLayout.CentroidDigest"/> is ignored) on <paramref name="sample"/> (n × d, n ≥ C) with the
    /// core's seeded k-means; deterministic for a sample and seed.
    /// </summary>
    /// <exception cref="ArgumentException">Not a centroid layout, a sample of the wrong shape, non-finite values or fewer rows than centroids.</exception>
    public static CentroidTable Train(ShardLayout layout, ReadOnlySpan<float> sample, int seed = 1234)
    {
        ArgumentNullException.ThrowIfNull(layout);
        layout.Validate();
        if (!layout.ByCentroid) throw new ArgumentException($"Collection '{layout.Name}' is sharded by key hash: there is no centroid table to train.", nameof(layout));
        int d = layout.Dimension, c = layout.Centroids, shards = layout.Shards;
        int n = Guard.Rows(sample, d, nameof(sample));
        Guard.Finite(sample, d, nameof(sample));
        if (n < c) throw new ArgumentException($"The training sample holds {n} vectors; {c} centroids need at least {c}.", nameof(sample));
        float[] rows = sample.ToArray();
        if (layout.Metric == Metric.Cosine) Normalize(rows, d);
        var assignment = new int[n];
        var centroids = KMeans.Train(rows, d, new KMeansOptions(c) { Seed = seed, Spherical = layout.Metric != Metric.L2 }, assignment);
        var weight = new double[c];
        foreach (int a in assignment) weight[a]++;
        for (int j = 0; j < c; j++) weight[j] += 1;   // an empty centroid still gets (some) data later
        var order = Enumerable.Range(0, c).ToArray();
        Bisect(centroids, d, weight, order, 0, c);
        var sorted = new float[centroids.Length];
        var sortedWeight = new double[c];
        for (int j = 0; j < c; j++)
        {
            centroids.AsSpan(order[j] * d, d).CopyTo(sorted.AsSpan(j * d, d));
            sortedWeight[j] = weight[order[j]];
        }
        var table = new CentroidTable { Dimension = d, Centroids = sorted, Starts = Cut(sortedWeight, shards) };
        return table;
    }

    private static void Normalize(float[] rows, int d)
    {
        var norms = new float[rows.Length / d];
        Distances.SquaredNorms(rows, d, norms);
        for (int i = 0; i < norms.Length; i++)
            if (norms[i] > 0)
            {
                float inv = 1f / MathF.Sqrt(norms[i]);
                foreach (ref float x in rows.AsSpan(i * d, d)) x *= inv;
            }
    }

    // Orders order[from..to) so that nearby centroids are adjacent: split at the weighted median of the projection on
    // the principal axis (power iteration on the weighted covariance), recurse on both halves.
    private static void Bisect(float[] centroids, int d, double[] weight, int[] order, int from, int to)
    {
        int m = to - from;
        if (m <= 1) return;
        var mean = new double[d];
        double total = 0;
        for (int i = from; i < to; i++)
        {
            int j = order[i];
            total += weight[j];
            for (int t = 0; t < d; t++) mean[t] += weight[j] * centroids[j * d + t];
        }
        for (int t = 0; t < d; t++) mean[t] /= total;
        var axis = new double[d];
        for (int t = 0; t < d; t++) axis[t] = 1.0 / Math.Sqrt(d) * (t % 2 == 0 ? 1 : -0.5);
        var next = new double[d];
        for (int iter = 0; iter < 12; iter++)
        {
            Array.Clear(next);
            for (int i = from; i < to; i++)
            {
                int j = order[i];
                double dot = 0;
                for (int t = 0; t < d; t++) dot += (centroids[j * d + t] - mean[t]) * axis[t];
                for (int t = 0; t < d; t++) next[t] += weight[j] * dot * (centroids[j * d + t] - mean[t]);
            }
            double norm = Math.Sqrt(next.Sum(x => x * x));
            if (norm == 0) break;   // every centroid at the mean: any order will do
            for (int t = 0; t < d; t++) axis[t] = next[t] / norm;
        }
        var projection = new double[centroids.Length / d];
        for (int i = from; i < to; i++)
        {
            int j = order[i];
            double dot = 0;
            for (int t = 0; t < d; t++) dot += (centroids[j * d + t] - mean[t]) * axis[t];
            projection[j] = dot;
        }
        Array.Sort(order, from, m, Comparer<int>.Create((a, b) => projection[a] != projection[b] ? projection[a].CompareTo(projection[b]) : a.CompareTo(b)));
        double half = total / 2, run = 0;
        int split = from + 1;
        for (int i = from; i < to - 1; i++)
        {
            run += weight[order[i]];
            split = i + 1;
            if (run >= half) break;
        }
        Bisect(centroids, d, weight, order, from, split);
        Bisect(centroids, d, weight, order, split, to);
    }

    // S contiguous ranges of about equal weight, each holding at least one centroid.
    private static int[] Cut(double[] weight, int shards)
    {
        int c = weight.Length;
        var starts = new int[shards + 1];
        starts[shards] = c;
        double total = weight.Sum(), run = 0;
        int j = 0;
        for (int s = 1; s < shards; s++)
        {
            double goal = total * s / shards;
            while (j < c && run + weight[j] / 2 < goal) run += weight[j++];
            starts[s] = Math.Clamp(j, starts[s - 1] + 1, c - (shards - s));
            while (j < starts[s]) run += weight[j++];
            while (j > starts[s]) run -= weight[--j];
        }
        return starts;
    }

    /// <summary>The shard owning centroid <paramref name="centroid"/>.</summary>
    public int ShardOfCentroid(int centroid)
    {
        int i = Array.BinarySearch(Starts, centroid);
        return i >= 0 ? Math.Min(i, Shards - 1) : ~i - 1;
    }

    /// <summary>The shard each of the n × d <paramref name="vectors"/> belongs to: the owner of its nearest centroid.</summary>
    public int[] ShardsOf(ReadOnlySpan<float> vectors)
    {
        var nearest = KMeans.Assign(vectors, Centroids, Dimension, threads: 1);
        for (int i = 0; i < nearest.Length; i++) nearest[i] = ShardOfCentroid(nearest[i]);
        return nearest;
    }

    /// <summary>
    /// For each of the nq × d <paramref name="queries"/>, the shards owning its <paramref name="probes"/> nearest
    /// centroids (ties to the lower number), ascending.
    /// </summary>
    public int[][] ProbeShards(ReadOnlySpan<float> queries, int probes)
    {
        int d = Dimension, c = Count;
        int nq = Guard.Rows(queries, d, nameof(queries));
        if (probes < 1 || probes > c) throw new ArgumentOutOfRangeException(nameof(probes), probes, $"probes must be in 1..{c}.");
        var result = new int[nq][];
        if (probes == c)
        {
            var all = Enumerable.Range(0, Shards).ToArray();
            for (int q = 0; q < nq; q++) result[q] = all;
            return result;
        }
        var centroidNorms = new float[c];
        Distances.SquaredNorms(Centroids, d, centroidNorms);
        const int block = 64;
        var queryNorms = new float[block];
        var dist = new float[block * c];
        var index = new int[c];
        var keys = new float[c];
        var visit = new bool[Shards];
        var byDistance = Comparer<int>.Create((a, b) => keys[a] != keys[b] ? keys[a].CompareTo(keys[b]) : a.CompareTo(b));
        for (int q0 = 0; q0 < nq; q0 += block)
        {
            int m = Math.Min(block, nq - q0);
            var qs = queries.Slice(q0 * d, m * d);
            Distances.SquaredNorms(qs, d, queryNorms.AsSpan(0, m));
            Distances.SquaredL2ManyToMany(qs, Centroids, d, queryNorms.AsSpan(0, m), centroidNorms, dist.AsSpan(0, m * c));
            for (int i = 0; i < m; i++)
            {
                dist.AsSpan(i * c, c).CopyTo(keys);
                for (int j = 0; j < c; j++) index[j] = j;
                Array.Sort(index, byDistance);
                Array.Clear(visit);
                for (int j = 0; j < probes; j++) visit[ShardOfCentroid(index[j])] = true;
                result[q0 + i] = Enumerable.Range(0, Shards).Where(s => visit[s]).ToArray();
            }
        }
        return result;
    }
}
