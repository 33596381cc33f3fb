using System.Runtime.Intrinsics;
using System.Buffers;
using Engine.Distance;

namespace Engine.Clustering;

/// <summary>Options for <see cref="KMeans.Train(ReadOnlySpan{float}, int, KMeansOptions)"/>.</summary>
/// <param name="Clusters">Number of centroids k (at least 1).</param>
public sealed record KMeansOptions(int Clusters)
{
    /// <summary>Lloyd iterations after the k-means++ initialisation (faiss uses 10 for IVF quantizers).</summary>
    public int Iterations { get; init; } = 10;

    /// <summary>Seed of every random choice (sample, initialisation, empty-cluster repair).</summary>
    public int Seed { get; init; } = 1234;

    /// <summary>Training uses at most <c>Clusters × MaxPointsPerCentroid</c> points (a seeded sample, faiss default 256).</summary>
    public int MaxPointsPerCentroid { get; init; } = 256;

    /// <summary>
    /// Balanced variant: assignments pay a size penalty and a final capacity pass keeps every cluster of the
    /// training sample at most <see cref="BalanceFactor"/> × the mean size.
    /// </summary>
    public bool Balanced { get; init; }

    /// <summary>
    /// Spherical k-means (faiss <c>ClusteringParameters.spherical</c>, which faiss turns on for every inner-product
    /// IVF): centroids are scaled to unit length after the initialisation and after every update. With unit centroids
    /// the nearest centroid by L2 is also the one with the largest inner product, so training, the assignment of an
    /// inner-product IVF and its probes rank centroids the same way, and the lists stay about as balanced as L2
    /// k-means lists (mean centroids of unit vectors are shorter for spread-out clusters, which then lose every
    /// inner-product assignment to tight ones).
    /// </summary>
    public bool Spherical { get; init; }

    /// <summary>Largest allowed cluster size over the mean for <see cref="Balanced"/> (at least 1; default 1.5).</summary>
    public double BalanceFactor { get; init; } = 1.5;

    /// <summary>Worker threads; 0 means <see cref="Environment.ProcessorCount"/>, negative is rejected. Results do not depend on it.</summary>
    public int Threads { get; init; }

    /// <summary>
    /// Where the Lloyd steps (assignment + centroid update) run; null runs them in-process on the caller's rows
    /// without copying them. Initialisation, empty-cluster repair, balancing and the assignment of all rows
    /// (the <c>assignments</c> output) always run on the CPU.
    /// <see cref="CpuKMeansBackend"/> gives the same centroids as null; another backend (e.g. Engine.Gpu's) the same
    /// up to float rounding.
    /// </summary>
    public IKMeansBackend? Backend { get; init; }

    /// <summary>Receives (<c>k-means</c>, iterations done, <see cref="Iterations"/>) after every Lloyd step; null for none.</summary>
    public IProgress<BuildProgress>? Progress { get; init; }
}

/// <summary>
/// Seeded k-means (k-means++ initialisation, Lloyd iterations) on the batched distance kernels.
/// </summary>
/// <remarks>
/// <para>Design: training runs on a seeded sample of at most <c>k × MaxPointsPerCentroid</c> rows; the sample is
/// a list of row numbers into the caller's span, so the data is never copied. Assignment computes blocks of
/// point × centroid distances with <see cref="Distances.SquaredL2ManyToMany"/> and takes the argmin. The
/// update sums each cluster's members in row order (counting sort by cluster, then one task per centroid), so
/// the result is bit-identical for a seed at any thread count. Empty clusters are repaired faiss-style by
/// splitting a large cluster (seeded choice, symmetric perturbation).</para>
/// <para>k-means++ runs on a bounded pool of the sample (at most <c>max(4k, 2048)</c> points) so that its
/// O(pool·k·d) cost stays small next to the Lloyd iterations.</para>
/// <para>The Lloyd steps (assignment + update over the sample) go through an <see cref="IKMeansSession"/>: the
/// in-process one over the caller's pinned rows by default, or one opened on <see cref="KMeansOptions.Backend"/>
/// (e.g. a GPU); the rest of training stays here, so every backend sees the same sample and initialisation.</para>
/// <para>Thread safety: all members are static and re-entrant.</para>
/// </remarks>
public static class KMeans
{
    private const int PointBlock = 256;
    private const int CentroidBlock = 512;

    /// <summary>
    /// Clusters <paramref name="vectors"/> (n × d row-major) and returns the centroids (k × d row-major).
    /// </summary>
    /// <exception cref="ArgumentException">Bad dimension, non-finite data, k &lt; 1 or fewer points than clusters.</exception>
    public static float[] Train(ReadOnlySpan<float> vectors, int dimension, KMeansOptions options) =>
        Train(vectors, dimension, options, null);

    /// <summary>
    /// Clusters like <see cref="Train(ReadOnlySpan{float}, int, KMeansOptions)"/> and also writes the final cluster
    /// of every row into <paramref name="assignments"/> (length n). Rows of the training sample keep their training
    /// assignment, which for <see cref="KMeansOptions.Balanced"/> is capacity-constrained: no cluster holds more
    /// than <c>BalanceFactor × sample / k</c> sample rows. Other rows go to their nearest centroid.
    /// </summary>
    public static float[] Train(ReadOnlySpan<float> vectors, int dimension, KMeansOptions options, int[]? assignments)
    {
        ArgumentNullException.ThrowIfNull(options);
        int n = Guard.Rows(vectors, dimension, nameof(vectors));
        int k = options.Clusters;
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(options), k, "KMeansOptions.Clusters must be at least 1.");
        if (n < k) throw new ArgumentException($"k-means needs at least as many points as clusters: got {n} points for {k} clusters.", nameof(vectors));
        if (options.Iterations < 0) throw new ArgumentOutOfRangeException(nameof(options), options.Iterations, "Iterations must be >= 0.");
        if (options.MaxPointsPerCentroid < 1) throw new ArgumentOutOfRangeException(nameof(options), options.MaxPointsPerCentroid, "MaxPointsPerCentroid must be >= 1.");
        if (options.Balanced && options.BalanceFactor < 1) throw new ArgumentOutOfRangeException(nameof(options), options.BalanceFactor, "BalanceFactor must be >= 1.");
        SearchParameters.CheckThreads(options.Threads, "KMeansOptions.Threads");
        Guard.Finite(vectors, dimension, nameof(vectors));
        int threads = options.Threads > 0 ? options.Threads : Environment.ProcessorCount;
        var rng = new Random(options.Seed);

        // Seeded sample of row numbers (no copy of the data).
        long cap = (long)k * options.MaxPointsPerCentroid;
        int[] rows = SampleRows(n, (int)Math.Min(n, cap), rng);
        int s = rows.Length, d = dimension;

        if (assignments is not null && assignments.Length != n)
            throw new ArgumentException($"assignments must hold {n} entries.", nameof(assignments));

        unsafe
        {
            fixed (float* p = vectors)
            {
                var data = new RowSource((nint)p, n, d);
                float[] centroids = InitPlusPlus(data, rows, k, rng, threads);
                if (options.Spherical) NormalizeRows(centroids, d);
                using IKMeansSession session = options.Backend?.Open(vectors, d, rows) ?? new CpuKMeansSession(data, rows, threads);
                var next = new float[k * d];
                var assign = new int[s];
                var dist = new float[s];
                var counts = new int[k];
                for (int it = 0; it < options.Iterations; it++)
                {
                    float[]? penalty = options.Balanced && it > 0 ? BalancePenalty(dist, counts, s) : null;
                    session.Step(centroids, penalty, next, assign, dist, counts);
                    (centroids, next) = (next, centroids);
                    RepairEmpty(centroids, counts, k, d, rng);
                    if (options.Spherical) NormalizeRows(centroids, d);
                    options.Progress?.Report(new BuildProgress("k-means", it + 1, options.Iterations));
                }
                if (options.Balanced)
                {
                    SplitOversized(session, data, rows, ref centroids, ref next, k, assign, dist, counts, options, rng);
                    session.Assign(centroids, assign, dist);
                    int maxSize = Math.Max(1, (int)Math.Floor(options.BalanceFactor * s / k));
                    EnforceCapacity(data, rows, centroids, k, assign, maxSize);
                    Update(data, rows, assign, centroids, k, counts, threads);
                    if (options.Spherical) NormalizeRows(centroids, d);
                }
                if (assignments is not null)
                {
                    var all = new float[n];
                    AssignRows(data, null, centroids, k, assignments, all, threads, null, n);
                    if (options.Balanced || options.Iterations > 0)
                    {
                        if (!options.Balanced) session.Assign(centroids, assign, dist);
                        for (int i = 0; i < s; i++) assignments[rows[i]] = assign[i];
                    }
                }
                return centroids;
            }
        }
    }

    /// <summary>
    /// One in-process Lloyd step over all rows of <paramref name="vectors"/> (n × d), following the
    /// <see cref="IKMeansSession.Step"/> contract; the reference every <see cref="IKMeansBackend"/> is compared with.
    /// </summary>
    /// <exception cref="ArgumentException">Bad shapes, non-finite values or buffers too short.</exception>
    public static void Step(ReadOnlySpan<float> vectors, int dimension, ReadOnlySpan<float> centroids, ReadOnlySpan<float> penalty,
        Span<float> newCentroids, Span<int> assignments, Span<float> distances, Span<int> counts, int threads = 0)
    {
        Guard.Finite(vectors, dimension, nameof(vectors));
        Guard.Finite(centroids, dimension, nameof(centroids));
        using var session = new CpuKMeansBackend(threads).Open(vectors, dimension, []);
        session.Step(centroids, penalty, newCentroids, assignments, distances, counts);
    }

    /// <summary>
    /// Size penalty of balanced k-means: λ · size / mean, with λ the mean point-to-centroid distance of the last
    /// step, so a cluster twice the mean size pays one typical distance more (SPANN-style balance term, kept
    /// deterministic by using last round's sizes).
    /// </summary>
    private static float[] BalancePenalty(float[] dist, int[] counts, int count)
    {
        int k = counts.Length;
        double mean = 0;
        for (int i = 0; i < count; i++) mean += dist[i];
        float lambda = (float)(mean / Math.Max(1, count));
        float meanSize = count / (float)k;
        var penalty = new float[k];
        for (int j = 0; j < k; j++) penalty[j] = lambda * counts[j] / meanSize;
        return penalty;
    }

    /// <summary>Index of the nearest centroid (squared L2) for every row of <paramref name="vectors"/>.</summary>
    /// <param name="vectors">n × d row-major.</param>
    /// <param name="centroids">k × d row-major.</param>
    /// <param name="dimension">d.</param>
    /// <param name="threads">Worker threads; 0 means all processors.</param>
    /// <returns>n cluster numbers in [0, k).</returns>
    public static int[] Assign(ReadOnlySpan<float> vectors, ReadOnlySpan<float> centroids, int dimension, int threads = 0)
    {
        int n = Guard.Rows(vectors, dimension, nameof(vectors));
        var result = new int[n];
        var dist = new float[n];
        Assign(vectors, centroids, dimension, result, dist, threads);
        return result;
    }

    /// <summary>
    /// Index of the centroid with the largest inner product for every row (ties go to the lower centroid number): the
    /// assignment of an inner-product or cosine IVF, whose probes rank centroids by inner product too. Runs the L2
    /// kernel with a per-centroid offset of −‖c‖², since argmax x·c = argmin ‖x − c‖² − ‖c‖².
    /// </summary>
    /// <param name="vectors">n × d row-major.</param>
    /// <param name="centroids">k × d row-major.</param>
    /// <param name="dimension">d.</param>
    /// <param name="threads">Worker threads; 0 means all processors.</param>
    /// <returns>n cluster numbers in [0, k).</returns>
    public static int[] AssignMaxInnerProduct(ReadOnlySpan<float> vectors, ReadOnlySpan<float> centroids, int dimension, int threads = 0)
    {
        Guard.Rows(vectors, dimension, nameof(vectors));
        int k = Guard.Rows(centroids, dimension, nameof(centroids));
        var cent = centroids.ToArray();
        var offset = new float[k];
        Distances.SquaredNorms(cent, dimension, offset);
        for (int j = 0; j < offset.Length; j++) offset[j] = -offset[j];
        return AssignCore(vectors, cent, dimension, threads, offset).Assignments;
    }

    /// <summary>
    /// Nearest centroid and its squared distance for every row, into caller buffers of length n
    /// (ties go to the lower centroid number).
    /// </summary>
    public static void Assign(ReadOnlySpan<float> vectors, ReadOnlySpan<float> centroids, int dimension,
        Span<int> assignments, Span<float> distances, int threads = 0)
    {
        int n = Guard.Rows(vectors, dimension, nameof(vectors));
        if (assignments.Length < n || distances.Length < n)
            throw new ArgumentException($"Output buffers must hold {n} entries.", nameof(assignments));
        var (a, dd) = AssignCore(vectors, centroids.ToArray(), dimension, threads, null);
        a.CopyTo(assignments);
        dd.CopyTo(distances);
    }

    // Nearest centroid by squared L2 plus an optional per-centroid offset (−‖c‖² turns it into the largest inner
    // product), with the squared L2 distance of each row to its centroid.
    private static (int[] Assignments, float[] Distances) AssignCore(ReadOnlySpan<float> vectors, float[] centroids, int dimension, int threads, float[]? offset)
    {
        int n = Guard.Rows(vectors, dimension, nameof(vectors));
        int k = Guard.Rows(centroids, dimension, nameof(centroids));
        if (k == 0) throw new ArgumentException("No centroids given.", nameof(centroids));
        if (threads <= 0) threads = Environment.ProcessorCount;
        var a = new int[n];
        var dd = new float[n];
        unsafe
        {
            fixed (float* p = vectors)
            {
                AssignRows(new RowSource((nint)p, n, dimension), null, centroids, k, a, dd, threads, offset, n);
            }
        }
        return (a, dd);
    }

    private static int[] SampleRows(int n, int count, Random rng)
    {
        var perm = new int[n];
        for (int i = 0; i < n; i++) perm[i] = i;
        if (count == n) return perm;
        for (int i = 0; i < count; i++)
        {
            int j = i + rng.Next(n - i);
            (perm[i], perm[j]) = (perm[j], perm[i]);
        }
        var rows = perm.AsSpan(0, count).ToArray();
        Array.Sort(rows); // row order keeps memory access sequential
        return rows;
    }

    private static float[] InitPlusPlus(RowSource data, int[] rows, int k, Random rng, int threads)
    {
        int d = data.Dimension;
        int poolSize = Math.Min(rows.Length, Math.Max(4 * k, 2048));
        // The pool is a seeded subset of the sample (first poolSize after a shuffle of positions).
        var pool = new int[poolSize];
        if (poolSize == rows.Length) rows.CopyTo(pool, 0);
        else
        {
            var pos = SampleRows(rows.Length, poolSize, rng);
            for (int i = 0; i < poolSize; i++) pool[i] = rows[pos[i]];
        }
        var centroids = new float[k * d];
        var minDist = new float[poolSize];
        int first = pool[rng.Next(poolSize)];
        data.Row(first).CopyTo(centroids.AsSpan(0, d));
        UpdateMinDist(data, pool, centroids.AsSpan(0, d), minDist, true, threads);
        for (int c = 1; c < k; c++)
        {
            double total = 0;
            for (int i = 0; i < poolSize; i++) total += minDist[i];
            int pick;
            if (total <= 0) pick = rng.Next(poolSize);
            else
            {
                double target = rng.NextDouble() * total, acc = 0;
                pick = poolSize - 1;
                for (int i = 0; i < poolSize; i++)
                {
                    acc += minDist[i];
                    if (acc >= target && minDist[i] > 0) { pick = i; break; }
                }
            }
            var dst = centroids.AsSpan(c * d, d);
            data.Row(pool[pick]).CopyTo(dst);
            UpdateMinDist(data, pool, dst, minDist, false, threads);
        }
        return centroids;
    }

    private static void UpdateMinDist(RowSource data, int[] pool, ReadOnlySpan<float> centroid, float[] minDist, bool first, int threads)
    {
        const int Chunk = 512;
        int chunks = (pool.Length + Chunk - 1) / Chunk;
        float[] c = centroid.ToArray();
        void Work(int ch)
        {
            int end = Math.Min(pool.Length, (ch + 1) * Chunk);
            for (int i = ch * Chunk; i < end; i++)
            {
                float dd = Distances.SquaredL2(data.Row(pool[i]), c);
                if (first || dd < minDist[i]) minDist[i] = dd;
            }
        }
        if (threads == 1 || chunks == 1) for (int ch = 0; ch < chunks; ch++) Work(ch);
        else ParallelWork.For(0, chunks, threads, Work);
    }

    /// <summary>
    /// Assigns rows (all rows when <paramref name="rows"/> is null) to the nearest centroid; with
    /// <paramref name="penalty"/> (length k) the cost adds a per-cluster term (balanced k-means). The reported
    /// distance excludes the penalty.
    /// </summary>
    internal static void AssignRows(RowSource data, int[]? rows, float[] centroids, int k, int[] assign, float[] dist,
        int threads, float[]? penalty, int count)
    {
        int d = data.Dimension;
        var cNorms = new float[k];
        Distances.SquaredNorms(centroids.AsSpan(0, k * d), d, cNorms);
        int blocks = (count + PointBlock - 1) / PointBlock;
        void Work(int b)
        {
            int start = b * PointBlock, nb = Math.Min(PointBlock, count - start);
            float[] x = ArrayPool<float>.Shared.Rent(nb * d);
            float[] xNorms = ArrayPool<float>.Shared.Rent(nb);
            int cb = Math.Min(CentroidBlock, k);
            float[] scratch = ArrayPool<float>.Shared.Rent(nb * cb);
            try
            {
                for (int i = 0; i < nb; i++)
                {
                    int r = rows is null ? start + i : rows[start + i];
                    data.Row(r).CopyTo(x.AsSpan(i * d, d));
                }
                var xs = x.AsSpan(0, nb * d);
                Distances.SquaredNorms(xs, d, xNorms);
                for (int i = 0; i < nb; i++) { assign[start + i] = 0; dist[start + i] = float.PositiveInfinity; }
                float[] best = ArrayPool<float>.Shared.Rent(nb);
                try
                {
                    Array.Fill(best, float.PositiveInfinity, 0, nb);
                    for (int c0 = 0; c0 < k; c0 += cb)
                    {
                        int cn = Math.Min(cb, k - c0);
                        var res = scratch.AsSpan(0, nb * cn);
                        Distances.SquaredL2ManyToMany(xs, centroids.AsSpan(c0 * d, cn * d), d, xNorms, cNorms.AsSpan(c0, cn), res);
                        for (int i = 0; i < nb; i++)
                        {
                            var row = res.Slice(i * cn, cn);
                            float bv = best[i]; int bj = -1;
                            for (int j = 0; j < cn; j++)
                            {
                                float v = penalty is null ? row[j] : row[j] + penalty[c0 + j];
                                if (v < bv) { bv = v; bj = j; }
                            }
                            if (bj >= 0)
                            {
                                best[i] = bv;
                                assign[start + i] = c0 + bj;
                                dist[start + i] = row[bj];
                            }
                        }
                    }
                }
                finally { ArrayPool<float>.Shared.Return(best); }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(x);
                ArrayPool<float>.Shared.Return(xNorms);
                ArrayPool<float>.Shared.Return(scratch);
            }
        }
        if (threads == 1 || blocks == 1) for (int b = 0; b < blocks; b++) Work(b);
        else ParallelWork.For(0, blocks, threads, Work);
    }

    /// <summary>
    /// Centroid j becomes the mean of the rows assigned to it (summed in row order, in double); clusters without
    /// rows keep their centroid. <paramref name="rows"/> null means rows 0..count−1.
    /// </summary>
    internal static void Update(RowSource data, int[]? rows, int[] assign, float[] centroids, int k, int[] counts, int threads, int count = -1)
    {
        int d = data.Dimension, s = rows?.Length ?? count;
        Array.Clear(counts, 0, k);
        for (int i = 0; i < s; i++) counts[assign[i]]++;
        var start = new int[k + 1];
        for (int j = 0; j < k; j++) start[j + 1] = start[j] + counts[j];
        var members = new int[s];
        var fill = start.AsSpan(0, k).ToArray();
        for (int i = 0; i < s; i++) members[fill[assign[i]]++] = rows is null ? i : rows[i];
        void Work(int j)
        {
            if (counts[j] == 0) return;
            var acc = new double[d];
            for (int t = start[j]; t < start[j + 1]; t++) AddWidened(data.Row(members[t]), acc);
            var c = centroids.AsSpan(j * d, d);
            double inv = 1.0 / counts[j];
            for (int e = 0; e < d; e++) c[e] = (float)(acc[e] * inv);
        }
        if (threads == 1) for (int j = 0; j < k; j++) Work(j);
        else ParallelWork.For(0, k, threads, Work);
    }

    // acc[e] += x[e] in double, eight lanes at a time: the same additions in the same order as the scalar loop, so
    // the sums are bit-identical to it (and independent of the SIMD level).
    private static void AddWidened(ReadOnlySpan<float> x, Span<double> acc)
    {
        int e = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; e + 8 <= x.Length; e += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Create(x.Slice(e, 8)));
                (Vector256.Create((ReadOnlySpan<double>)acc.Slice(e, 4)) + lo).CopyTo(acc.Slice(e, 4));
                (Vector256.Create((ReadOnlySpan<double>)acc.Slice(e + 4, 4)) + hi).CopyTo(acc.Slice(e + 4, 4));
            }
        }
        for (; e < x.Length; e++) acc[e] += x[e];
    }

    // Scales every non-zero row to unit length (spherical k-means).
    private static void NormalizeRows(float[] rows, int d)
    {
        for (int off = 0; off < rows.Length; off += d) Distances.NormalizeInPlace(rows.AsSpan(off, d));
    }

    private static void RepairEmpty(float[] centroids, int[] counts, int k, int d, Random rng)
    {
        const float Eps = 1f / 1024;
        long total = 0;
        foreach (int c in counts) total += c;
        for (int j = 0; j < k; j++)
        {
            if (counts[j] != 0) continue;
            // Pick a cluster to split with probability proportional to size (faiss' choice), then move both
            // halves apart symmetrically.
            int big = 0;
            while (true)
            {
                double r = rng.NextDouble() * total, acc = 0;
                for (big = 0; big < k; big++) { acc += counts[big]; if (acc > r) break; }
                if (big < k && counts[big] > 1) break;
                if (!Array.Exists(counts, c => c > 1)) return; // nothing left to split
            }
            var src = centroids.AsSpan(big * d, d);
            var dst = centroids.AsSpan(j * d, d);
            src.CopyTo(dst);
            for (int e = 0; e < d; e++)
            {
                float delta = (e % 2 == 0 ? Eps : -Eps) * (MathF.Abs(src[e]) + 1e-3f);
                dst[e] = src[e] * (1 + (e % 2 == 0 ? Eps : -Eps)) + delta;
                src[e] = src[e] * (1 - (e % 2 == 0 ? Eps : -Eps)) - delta;
            }
            counts[j] = counts[big] / 2;
            counts[big] -= counts[j];
        }
    }

    /// <summary>
    /// Nearest-centroid balance: while some cluster holds more than the allowed size, the smallest clusters'
    /// centroids are moved next to the oversize ones (a split, as for empty clusters) and two Lloyd rounds
    /// follow. Bounded number of rounds; deterministic.
    /// </summary>
    private static void SplitOversized(IKMeansSession session, RowSource data, int[] rows, ref float[] centroids, ref float[] next,
        int k, int[] assign, float[] dist, int[] counts, KMeansOptions options, Random rng)
    {
        int s = rows.Length, d = data.Dimension;
        int maxSize = Math.Max(1, (int)Math.Floor(options.BalanceFactor * s / k));
        const float Eps = 1f / 1024;
        for (int round = 0; round < 16; round++)
        {
            session.Assign(centroids, assign, dist);
            Array.Clear(counts);
            for (int i = 0; i < s; i++) counts[assign[i]]++;
            var oversize = Enumerable.Range(0, k).Where(j => counts[j] > maxSize).OrderByDescending(j => counts[j]).ThenBy(j => j).ToArray();
            if (oversize.Length == 0) return;
            var small = Enumerable.Range(0, k).Where(j => counts[j] <= maxSize).OrderBy(j => counts[j]).ThenBy(j => j).ToArray();
            int moves = Math.Min(oversize.Length, small.Length);
            for (int t = 0; t < moves; t++)
            {
                int big = oversize[t], from = small[t];
                if (counts[from] * 2 > s / k) break; // only clusters under half the mean give up their centroid
                var src = centroids.AsSpan(big * d, d);
                var dst = centroids.AsSpan(from * d, d);
                for (int e = 0; e < d; e++)
                {
                    float delta = (e % 2 == 0 ? Eps : -Eps) * (MathF.Abs(src[e]) + 1e-3f);
                    dst[e] = src[e] + delta;
                    src[e] -= delta;
                }
            }
            for (int it = 0; it < 2; it++)
            {
                session.Step(centroids, null, next, assign, dist, counts);
                (centroids, next) = (next, centroids);
                RepairEmpty(centroids, counts, k, d, rng);
            }
        }
    }

    /// <summary>
    /// Moves points out of clusters larger than <paramref name="maxSize"/> into the nearest cluster with room,
    /// cheapest moves first (sequential, deterministic).
    /// </summary>
    private static void EnforceCapacity(RowSource data, int[] rows, float[] centroids, int k, int[] assign, int maxSize)
    {
        int d = data.Dimension, s = rows.Length;
        var counts = new int[k];
        for (int i = 0; i < s; i++) counts[assign[i]]++;
        if (counts.Max() <= maxSize) return;
        // For points of oversize clusters, the extra cost of moving to each other cluster.
        var over = new List<int>();
        for (int i = 0; i < s; i++) if (counts[assign[i]] > maxSize) over.Add(i);
        var cost = new float[over.Count];
        var own = new float[over.Count];
        for (int t = 0; t < over.Count; t++)
        {
            var x = data.Row(rows[over[t]]);
            own[t] = Distances.SquaredL2(x, centroids.AsSpan(assign[over[t]] * d, d));
            float best = float.PositiveInfinity;
            for (int j = 0; j < k; j++)
            {
                if (j == assign[over[t]]) continue;
                float v = Distances.SquaredL2(x, centroids.AsSpan(j * d, d));
                if (v < best) best = v;
            }
            cost[t] = best - own[t];
        }
        var order = Enumerable.Range(0, over.Count).OrderBy(t => cost[t]).ThenBy(t => over[t]).ToArray();
        foreach (int t in order)
        {
            int i = over[t], from = assign[i];
            if (counts[from] <= maxSize) continue;
            var x = data.Row(rows[i]);
            float best = float.PositiveInfinity; int to = -1;
            for (int j = 0; j < k; j++)
            {
                if (j == from || counts[j] >= maxSize) continue;
                float v = Distances.SquaredL2(x, centroids.AsSpan(j * d, d));
                if (v < best) { best = v; to = j; }
            }
            if (to < 0) break;
            assign[i] = to;
            counts[from]--;
            counts[to]++;
        }
    }
}

/// <summary>Rows of a pinned caller span, usable from worker threads while the caller keeps it fixed.</summary>
internal readonly unsafe struct RowSource(nint pointer, int rows, int dimension)
{
    public int Dimension => dimension;

    public int Rows => rows;

    public ReadOnlySpan<float> Row(int i) => new((float*)pointer + (long)i * dimension, dimension);

    public ReadOnlySpan<float> Range(int start, int count) => new((float*)pointer + (long)start * dimension, count * dimension);
}
