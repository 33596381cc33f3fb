using System.Globalization;
using Engine.Clustering;
using Engine.Distance;

namespace Engine.Mining.Graph;

/// <summary>
/// The automatic k-NN graph as a list-major self-join. The points are clustered (k-means, ≈ √n lists) and stored
/// list by list; each point probes its p nearest lists. Instead of one scan per point (a memory-bound pass over p
/// lists for every point), the pairs (point, list) of a chunk of points are grouped by list and every list is joined
/// with all the points that probe it as one small GEMM (<see cref="Distances.DotManyToMany"/>): each list's rows are
/// read once per block of points instead of once per point. p is the smallest power of two whose recall@k on a seeded
/// sample reaches the target; that recall is exact for the sample (a true neighbour is found exactly when its list is
/// among the p probed), so no trial joins are run. With one list (small n) the join is the exact graph.
/// </summary>
internal static class KnnSelfJoin
{
    private const int QueryBlock = 128;    // points joined with one list per GEMM call
    private const int MemberBlock = 2048;  // list rows per GEMM call
    // Per-thread scratch (large buffers would otherwise be fresh large-object-heap garbage for every work item).
    [ThreadStatic] private static float[]? t_a, t_b, t_c;

    private static Span<float> Scratch(ref float[]? slot, int length)
    {
        if (slot is null || slot.Length < length) slot = new float[length];
        return slot.AsSpan(0, length);
    }

    private const long MaxSlotEntries = 1 << 22; // (point, probe, neighbour) results held at once (50 MB)

    /// <summary>Runs the join; rows are streamed to <paramref name="sink"/> in row order, ids are row numbers.</summary>
    public static KnnGraphChoice Run(ReadOnlySpan<float> vectors, int d, Metric metric, KnnGraphOptions options,
        double targetRecall, int seed, int exactBelow, KnnGraphRows sink, IProgress<BuildProgress>? progress)
    {
        int n = vectors.Length / d, k = options.K;
        int threads = options.Threads > 0 ? options.Threads : Environment.ProcessorCount;
        bool cosine = metric == Metric.Cosine, similarity = metric != Metric.L2;

        // 1. Lists: k-means on a seeded sample (64 points per list), every point assigned to its nearest centroid.
        int lists = n < exactBelow ? 1 : Math.Clamp((int)Math.Round(Math.Sqrt(n)), 16, 65536);
        float[] centroids;
        if (lists == 1) centroids = new float[d];
        else
        {
            var rng = new Random(seed);
            int trainRows = Math.Min(n, lists * 64);
            var picked = KnnGraphBuilder.SampleRows(n, trainRows, rng);
            var train = new float[(long)trainRows * d];
            for (int i = 0; i < trainRows; i++) CopyRow(vectors, picked[i], d, cosine, train.AsSpan(i * d, d));
            centroids = KMeans.Train(train, d, new KMeansOptions(lists) { Seed = seed, Threads = threads, Progress = progress });
        }
        var coarse = new Coarse(centroids, d, lists, metric);
        var primary = new int[n];
        if (lists > 1)
        {
            // In blocks: the caller's span cannot enter the parallel loops, and a block bounds the copy.
            const int AssignBlock = 1 << 15;
            var buffer = new float[(long)Math.Min(n, AssignBlock) * d];
            var nearest = new long[Math.Min(n, AssignBlock)];
            for (int r0 = 0; r0 < n; r0 += AssignBlock)
            {
                int rb = Math.Min(AssignBlock, n - r0);
                for (int i = 0; i < rb; i++) CopyRow(vectors, r0 + i, d, cosine, buffer.AsSpan(i * d, d));
                coarse.Nearest(buffer, 0, rb, 1, nearest, threads);
                for (int i = 0; i < rb; i++) primary[r0 + i] = (int)nearest[i];
            }
        }

        // 2. The points stored list by list (counting sort), with their squared norms: the only copy of the vectors.
        var offsets = new int[lists + 1];
        foreach (int l in primary) offsets[l + 1]++;
        for (int l = 0; l < lists; l++) offsets[l + 1] += offsets[l];
        var fill = offsets[..lists];
        var rowAt = new int[n];
        var posOf = new int[n];
        for (int r = 0; r < n; r++)
        {
            int t = fill[primary[r]]++;
            rowAt[t] = r;
            posOf[r] = t;
        }
        var sorted = new float[(long)n * d];
        for (int t = 0; t < n; t++) CopyRow(vectors, rowAt[t], d, cosine, sorted.AsSpan(t * d, d));
        var norms = new float[n];
        Distances.SquaredNorms(sorted, d, norms);
        var join = new Join(sorted, norms, rowAt, posOf, offsets, d, k, similarity);

        // 3. Probes: recall@k of p probes on a seeded sample, from the sample's exact neighbours.
        var search = new Dictionary<string, string>();
        var tried = new List<(string, double)>();
        int probes = 1;
        double recall = 1.0;
        int sampleSize = 0;
        if (lists > 1)
        {
            sampleSize = Math.Min(n, KnnGraphBuilder.RecallSample);
            var sample = KnnGraphBuilder.SampleRows(n, sampleSize, new Random(seed + 1));
            var ranks = join.ExactNeighbourListRanks(sample, primary, coarse, threads);
            for (probes = 1; ; probes = Math.Min(lists, probes * 2))
            {
                long found = 0;
                foreach (int rank in ranks) if (rank < probes) found++;
                recall = ranks.Length == 0 ? 1.0 : (double)found / ranks.Length;
                tried.Add(("probes=" + probes.ToString(CultureInfo.InvariantCulture), recall));
                progress?.Report(new BuildProgress("knn-graph auto", tried.Count, 0));
                if (recall >= Math.Min(1.0, targetRecall + 0.005) || probes == lists) break;
            }
            search["probes"] = probes.ToString(CultureInfo.InvariantCulture);
        }

        // 4. The join, chunk by chunk of points.
        int chunk = (int)Math.Max(1, Math.Min(options.ChunkSize, MaxSlotEntries / ((long)probes * k)));
        var slotKeys = new float[(long)Math.Min(chunk, n) * probes * k];
        var slotIds = new long[slotKeys.Length];
        var slotCounts = new int[Math.Min(chunk, n) * probes];
        var probeLists = new long[slotCounts.Length];
        var chunkRows = new float[(long)Math.Min(chunk, n) * d];
        var outIds = new long[Math.Min(chunk, n) * k];
        var outDist = new float[outIds.Length];
        float missing = metric.MissingDistance();
        progress?.Report(new BuildProgress("knn-graph", 0, n));
        for (int start = 0; start < n; start += chunk)
        {
            int c = Math.Min(chunk, n - start);
            join.Gather(start, c, chunkRows);
            coarse.Nearest(chunkRows, 0, c, probes, probeLists, threads);
            Array.Clear(slotCounts, 0, c * probes);
            join.Chunk(chunkRows, start, c, probes, probeLists, slotKeys, slotIds, slotCounts, threads);
            ParallelWork.For(0, c, threads, i =>
            {
                var keys = outDist.AsSpan(i * k, k);
                int got = ListMajorPlan.Merge(slotKeys.AsSpan(i * probes * k, probes * k), slotIds.AsSpan(i * probes * k, probes * k),
                    slotCounts.AsSpan(i * probes, probes), k, keys, outIds.AsSpan(i * k, k));
                for (int t = 0; t < k; t++)
                    keys[t] = t >= got ? missing : similarity ? -keys[t] : keys[t];
            });
            sink(start, outIds.AsSpan(0, c * k), outDist.AsSpan(0, c * k));
            progress?.Report(new BuildProgress("knn-graph", start + c, n));
        }
        string spec = lists == 1 ? "Flat" : string.Create(CultureInfo.InvariantCulture, $"IVF{lists},Flat");
        return new KnnGraphChoice(spec, search, recall, sampleSize, tried);
    }

    // Row `row` of the caller's vectors into `into`, unit length for cosine.
    private static void CopyRow(ReadOnlySpan<float> vectors, int row, int d, bool normalize, Span<float> into)
    {
        vectors.Slice(row * d, d).CopyTo(into);
        if (normalize) Normalize(into);
    }

    private static void Normalize(Span<float> v)
    {
        float norm = MathF.Sqrt(Distances.Dot(v, v));
        if (norm > 0) for (int j = 0; j < v.Length; j++) v[j] /= norm;
    }

    // Ranks lists for a point: ‖c‖² − 2 x·c (L2 and cosine: the squared distance up to ‖x‖²) or −x·c (inner product).
    private sealed class Coarse(float[] centroids, int d, int lists, Metric metric)
    {
        private readonly float[] _offset = Offsets(centroids, d, lists, metric);

        private static float[] Offsets(float[] centroids, int d, int lists, Metric metric)
        {
            var o = new float[lists];
            if (metric != Metric.InnerProduct) Distances.SquaredNorms(centroids, d, o);
            return o;
        }

        /// <summary>The <paramref name="p"/> best lists of rows <paramref name="start"/> .. + <paramref name="count"/> − 1
        /// of <paramref name="x"/>, best first (ties to the lower list), into <paramref name="result"/>[i·p ..].</summary>
        public void Nearest(float[] x, int start, int count, int p, long[] result, int threads)
        {
            if (lists == 1)
            {
                Array.Clear(result, 0, count * p);
                return;
            }
            int block = Math.Clamp((1 << 18) / lists, 16, 1024);
            ParallelWork.For(0, (count + block - 1) / block, threads, b =>
            {
                int r0 = b * block, rb = Math.Min(block, count - r0);
                var scores = Scratch(ref t_a, rb * lists);
                Distances.DotManyToMany(x.AsSpan((start + r0) * d, rb * d), centroids, d, scores);
                var keys = new float[p];
                var ids = new long[p];
                for (int i = 0; i < rb; i++)
                {
                    var row = scores.Slice(i * lists, lists);
                    var heap = new TopKHeap(keys, ids);
                    for (int l = 0; l < lists; l++)
                    {
                        float key = metric == Metric.InnerProduct ? -row[l] : _offset[l] - 2 * row[l];
                        if (key <= heap.Threshold) heap.Push(key, l);
                    }
                    heap.SortAndPad(float.PositiveInfinity);
                    for (int j = 0; j < p; j++) result[(r0 + i) * p + j] = ids[j];
                }
            });
        }

        /// <summary>Every list's rank (0 = best) for one row.</summary>
        public int[] Ranks(ReadOnlySpan<float> row)
        {
            var scores = new float[lists];
            Distances.DotManyToMany(row, centroids, d, scores);
            var order = new int[lists];
            var keys = new float[lists];
            for (int l = 0; l < lists; l++)
            {
                order[l] = l;
                keys[l] = metric == Metric.InnerProduct ? -scores[l] : _offset[l] - 2 * scores[l];
            }
            Array.Sort(order, (a, b) => keys[a] != keys[b] ? keys[a].CompareTo(keys[b]) : a.CompareTo(b));
            var rank = new int[lists];
            for (int r = 0; r < lists; r++) rank[order[r]] = r;
            return rank;
        }
    }

    // The points stored list by list: rows offsets[l] .. offsets[l+1] − 1 of `sorted` are list l, row t is point rowAt[t].
    private sealed class Join(float[] sorted, float[] norms, int[] rowAt, int[] posOf, int[] offsets, int d, int k, bool similarity)
    {
        private readonly long[] rowIds = Array.ConvertAll(rowAt, r => (long)r); // the heaps' ids: row numbers

        /// <summary>Rows start .. start + count − 1 (in the caller's order) into <paramref name="into"/>.</summary>
        public void Gather(int start, int count, float[] into)
        {
            for (int i = 0; i < count; i++) sorted.AsSpan(posOf[start + i] * d, d).CopyTo(into.AsSpan(i * d, d));
        }

        /// <summary>
        /// For each sample point, the rank (in the point's own list order) of the list of each of its k exact
        /// neighbours: the neighbour is found with p probes exactly when that rank is below p.
        /// </summary>
        public int[] ExactNeighbourListRanks(int[] sample, int[] primary, Coarse coarse, int threads)
        {
            int s = sample.Length, n = rowAt.Length;
            var ranks = new int[s * k];
            // Blocks of sample points against every stored row (one GEMM per block of rows).
            ParallelWork.For(0, (s + 63) / 64, threads, b =>
            {
                int i0 = b * 64, qb = Math.Min(64, s - i0);
                var q = new float[qb * d];
                var qNorms = new float[qb];
                for (int i = 0; i < qb; i++) sorted.AsSpan(posOf[sample[i0 + i]] * d, d).CopyTo(q.AsSpan(i * d, d));
                Distances.SquaredNorms(q, d, qNorms);
                var keys = new float[qb * k];
                var ids = new long[qb * k];
                var counts = new int[qb];
                var dots = new float[qb * MemberBlock];
                for (int t0 = 0; t0 < n; t0 += MemberBlock)
                {
                    int mb = Math.Min(MemberBlock, n - t0);
                    Distances.DotManyToMany(q, sorted.AsSpan(t0 * d, mb * d), d, dots.AsSpan(0, qb * mb));
                    for (int i = 0; i < qb; i++)
                    {
                        var heap = new TopKHeap(keys.AsSpan(i * k, k), ids.AsSpan(i * k, k), counts[i]);
                        Push(ref heap, dots.AsSpan(i * mb, mb), similarity ? 0f : qNorms[i], t0, sample[i0 + i]);
                        counts[i] = heap.Count;
                    }
                }
                for (int i = 0; i < qb; i++)
                {
                    int got = new TopKHeap(keys.AsSpan(i * k, k), ids.AsSpan(i * k, k), counts[i]).SortAndPad(float.PositiveInfinity);
                    var listRank = coarse.Ranks(q.AsSpan(i * d, d));
                    for (int j = 0; j < k; j++) ranks[(i0 + i) * k + j] = j < got ? listRank[primary[ids[i * k + j]]] : 0;
                }
            });
            return ranks;
        }

        /// <summary>Joins points start .. start + count − 1 (their probed lists in <paramref name="probeLists"/>) into the
        /// per-(point, probe) result slots.</summary>
        public void Chunk(float[] chunkRows, int start, int count, int p, long[] probeLists, float[] slotKeys, long[] slotIds,
            int[] slotCounts, int threads)
        {
            var (slots, items) = ListMajorPlan.Build(probeLists.AsSpan(0, count * p), offsets.Length - 1, QueryBlock, l => offsets[l + 1] == offsets[l]);
            ParallelWork.For(0, items.Count, threads, w =>
            {
                var (l, from, to) = items[w];
                int qb = to - from;
                var q = Scratch(ref t_a, qb * d);
                var qNorms = Scratch(ref t_b, qb);
                for (int i = 0; i < qb; i++)
                {
                    int local = slots[from + i] / p;
                    chunkRows.AsSpan(local * d, d).CopyTo(q.Slice(i * d, d));
                }
                if (!similarity) Distances.SquaredNorms(q, d, qNorms);
                int m0 = offsets[l], m1 = offsets[l + 1];
                var dots = Scratch(ref t_c, qb * Math.Min(MemberBlock, m1 - m0));
                for (int t0 = m0; t0 < m1; t0 += MemberBlock)
                {
                    int mb = Math.Min(MemberBlock, m1 - t0);
                    Distances.DotManyToMany(q, sorted.AsSpan(t0 * d, mb * d), d, dots[..(qb * mb)]);
                    for (int i = 0; i < qb; i++)
                    {
                        int slot = slots[from + i];
                        int self = start + slot / p;
                        var heap = new TopKHeap(slotKeys.AsSpan(slot * k, k), slotIds.AsSpan(slot * k, k), slotCounts[slot]);
                        Push(ref heap, dots.Slice(i * mb, mb), qNorms[i], t0, self);
                        slotCounts[slot] = heap.Count;
                    }
                }
            });
        }

        private void Push(ref TopKHeap heap, ReadOnlySpan<float> dots, float qNorm, int t0, int self) =>
            Distances.PushKeys(ref heap, dots, qNorm, norms.AsSpan(t0, dots.Length), rowIds.AsSpan(t0, dots.Length), similarity, self);
    }
}
