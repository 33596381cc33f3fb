using System.Runtime.CompilerServices;
using Engine.Clustering;
using Engine.Distance;

namespace Engine.Mining.Selection;

/// <summary>
/// Data selection from embeddings: k-center, cluster-stratified, coverage-centric (CCS), k-means sensitivity sampling
/// and the random baselines, deterministic for a seed at any thread count.
/// </summary>
/// <remarks>Random choices use <see cref="CounterRng"/> keyed by (seed, stream, row): a uniform subset is the rows with
/// the smallest hashes, so it does not depend on processing order and is easy to reproduce elsewhere.</remarks>
public static class DataSelector
{
    private const ulong StreamSubset = 1, StreamFirstCenter = 2, StreamDraw = 3;

    /// <summary>Selects points of <paramref name="vectors"/> (n × d, row i has id <paramref name="ids"/>[i]).</summary>
    /// <exception cref="ArgumentException">Shapes disagree, non-finite vectors, N above the eligible points, coverage
    /// without scores or with a score count other than n.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public static SelectionResult Select(ReadOnlySpan<float> vectors, int dimension, Metric metric, ReadOnlySpan<long> ids,
        SelectionOptions options, IProgress<BuildProgress>? progress = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var result = SelectCore(vectors, dimension, metric, ids, options, progress);
        ((Dictionary<string, object>)result.Report)["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 3);
        return result;
    }

    private static SelectionResult SelectCore(ReadOnlySpan<float> vectors, int dimension, Metric metric, ReadOnlySpan<long> ids,
        SelectionOptions options, IProgress<BuildProgress>? progress)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        int n = Guard.Rows(vectors, dimension, nameof(vectors));
        if (ids.Length != n) throw new ArgumentException($"ids holds {ids.Length} entries for {n} vectors.", nameof(ids));
        Guard.Finite(vectors, dimension, nameof(vectors));
        var eligible = new bool[n];
        int eligibleCount = 0;
        for (int i = 0; i < n; i++)
            if (options.Exclude is null || !options.Exclude.Contains(ids[i])) { eligible[i] = true; eligibleCount++; }
        if (options.Method != SelectionMethod.Sensitivity && options.N > eligibleCount)
            throw new ArgumentException($"N = {options.N} is more than the {eligibleCount} points that can be selected.", nameof(options));
        float[] x = vectors.ToArray();
        if (metric == Metric.Cosine) Normalize(x, dimension);
        var report = new Dictionary<string, object>
        {
            ["method"] = options.Method.ToString().ToLowerInvariant(),
            ["n"] = n,
            ["selected"] = options.N,
            ["seed"] = options.Seed,
        };
        var idArr = ids.ToArray();
        switch (options.Method)
        {
            case SelectionMethod.KCenter:
            {
                var (rows, radius, evaluated, bounded) = KCenter(x, dimension, eligible, options, progress);
                report["covering_radius"] = Math.Sqrt(radius);
                // f32 distances computed (rows × centres for the plain greedy; fewer where the triangle inequality or
                // the byte-code bound prunes) and byte-code bounds computed.
                report["distance_evaluations"] = evaluated;
                report["bound_evaluations"] = bounded;
                report["covering_radius_squared"] = radius;
                report["distance"] = metric == Metric.Cosine ? "euclidean on unit vectors" : "euclidean";
                return new SelectionResult(options.Method, Map(rows, idArr), null, null, report);
            }
            case SelectionMethod.Random:
                return new SelectionResult(options.Method, Map(SmallestHashes(eligible, options.N, options.Seed, StreamSubset), idArr), null, null, report);
            case SelectionMethod.RandomPerEpoch:
            {
                var epochs = new long[options.Epochs][];
                for (int e = 0; e < epochs.Length; e++)
                    epochs[e] = Map(SmallestHashes(eligible, options.N, options.Seed + (ulong)e * 0x9E3779B97F4A7C15UL, StreamSubset), idArr);
                report["epochs"] = options.Epochs;
                return new SelectionResult(options.Method, epochs[0], null, epochs, report);
            }
            case SelectionMethod.Stratified:
                return Stratified(x, dimension, eligible, idArr, options, report, progress);
            case SelectionMethod.Coverage:
                return Coverage(eligible, idArr, options, report);
            default:
                return Sensitivity(x, dimension, eligible, idArr, options, report, progress);
        }
    }

    // ---------------------------------------------------------------------------------------------- k-center
    /// <summary>
    /// Greedy farthest-point: the first centre is the eligible row with the smallest hash (seed, stream 2, row); each
    /// next one the eligible row farthest (squared Euclidean) from the chosen set, ties to the lowest row. Returns the
    /// rows, the squared covering radius (largest distance of an eligible row to its nearest centre) and the number of
    /// row-to-centre distances computed.
    /// </summary>
    /// <remarks>
    /// Each row belongs to the group of its nearest centre so far. When centre c is added, a row x of group j can only
    /// move to c if ‖c − c_j‖ &lt; 2‖x − c_j‖ (triangle inequality), so a whole group is skipped when ‖c − c_j‖ ≥ 2 ×
    /// its radius, and a row when ‖c − c_j‖ ≥ 2‖x − c_j‖; both tests carry a 0.1 % margin for float rounding, so the
    /// distances actually computed, and hence the selection, equal those of the plain greedy (one pass over every row
    /// per centre; tests compare the two). The next centre is the best of the groups' farthest rows.
    /// A row that passes the triangle test is next checked against a certified lower bound from a byte copy of the
    /// rows (<see cref="KCenterBound"/>, a quarter of the memory traffic); only rows whose bound is below their current
    /// distance (with the same margin) get an f32 distance. In high dimensions, where distances concentrate and the
    /// triangle test prunes little, this bound is what saves the passes over the f32 rows.
    /// </remarks>
    private static (int[] Rows, double Radius, long Evaluated, long Bounded) KCenter(float[] x, int d, bool[] eligible, SelectionOptions options, IProgress<BuildProgress>? progress)
    {
        int n = eligible.Length, m = options.N;
        int threads = options.Threads > 0 ? options.Threads : Environment.ProcessorCount;
        // Worth a pass when there is more than one later centre to check rows against.
        var bound = m > 2 && d <= KCenterBound.MaxDimension ? KCenterBound.Build(x, d, threads) : null;
        var state = new KCenterState(x, d, n, bound);
        var chosen = new int[m];
        chosen[0] = SmallestHashes(eligible, 1, options.Seed, StreamFirstCenter)[0];
        var groups = new KCenterGroup[m];
        progress?.Report(new BuildProgress("k-center", 0, m));

        // The first centre: one pass over every row.
        var first = x.AsSpan(chosen[0] * d, d).ToArray();
        var all = new List<int>(n);
        for (int i = 0; i < n; i++)
        {
            if (!eligible[i] || i == chosen[0]) { state.MinDist[i] = float.NegativeInfinity; state.GroupOf[i] = -1; continue; }
            all.Add(i);
        }
        var rowsOfFirst = all.ToArray();
        ParallelWork.For(0, (rowsOfFirst.Length + Chunk - 1) / Chunk, threads, b =>
        {
            int r1 = Math.Min(rowsOfFirst.Length, (b + 1) * Chunk);
            for (int t = b * Chunk; t < r1; t++) state.MinDist[rowsOfFirst[t]] = Distances.SquaredL2(first, x.AsSpan(rowsOfFirst[t] * d, d));
        });
        groups[0] = new KCenterGroup(rowsOfFirst, rowsOfFirst.Length);
        groups[0].Refresh(state.MinDist);
        var centreDist = new float[m];
        var active = new bool[m];
        long evaluated = rowsOfFirst.Length, bounded = 0;
        for (int c = 1; ; c++)
        {
            // The next centre: the farthest row of all groups, lowest row on ties.
            int next = -1;
            float far = float.NegativeInfinity;
            for (int j = 0; j < c; j++)
            {
                var g = groups[j];
                if (g.Best >= 0 && (g.BestValue > far || (g.BestValue == far && g.Best < next))) { far = g.BestValue; next = g.Best; }
            }
            progress?.Report(new BuildProgress("k-center", c, m));
            if (c == m) return (chosen, next < 0 ? 0 : far, evaluated, bounded);
            chosen[c] = next;
            int home = state.GroupOf[next];
            state.MinDist[next] = float.NegativeInfinity; // a centre: leaves its group at that group's next scan
            state.GroupOf[next] = -1;
            var centre = x.AsSpan(next * d, d).ToArray();
            ParallelWork.For(0, c, threads, j => centreDist[j] = Distances.SquaredL2(centre, x.AsSpan(chosen[j] * d, d)));
            // A group is visited unless no member can get strictly closer to the new centre; the centre's own group
            // always is (it loses its farthest row).
            long activeRows = 0;
            for (int j = 0; j < c; j++)
            {
                var g = groups[j];
                active[j] = g.Count > 0 && (centreDist[j] < Margin * 4 * g.RadiusSquared || j == home);
                if (active[j]) activeRows += g.Count;
            }
            int[] movedRows;
            if (activeRows * 4 >= n)
            {
                // Most rows are candidates: one pass in memory order (streams the codes and rows), then the visited
                // groups drop the rows that moved.
                int chunks = (n + Chunk - 1) / Chunk;
                var movedByChunk = new int[chunks][];
                ParallelWork.For(0, chunks, threads, b =>
                {
                    var r = state.VisitRange(b * Chunk, Math.Min(n, (b + 1) * Chunk), c, centre, next, centreDist, active);
                    movedByChunk[b] = r.Moved;
                    Interlocked.Add(ref evaluated, r.Computed);
                    Interlocked.Add(ref bounded, r.Bounds);
                });
                movedRows = Concat(movedByChunk);
                ParallelWork.For(0, c, threads, j => { if (active[j]) groups[j].Drop(j, state); });
            }
            else
            {
                // Few candidates (clustered data, many centres): visit the active groups' rows only.
                var movedByGroup = new int[c][];
                ParallelWork.For(0, c, threads, j =>
                {
                    if (!active[j]) { movedByGroup[j] = []; return; }
                    var r = groups[j].Scan(state, c, centre, next, centreDist[j]);
                    movedByGroup[j] = r.Moved;
                    Interlocked.Add(ref evaluated, r.Computed);
                    Interlocked.Add(ref bounded, r.Bounds);
                });
                movedRows = Concat(movedByGroup);
            }
            groups[c] = new KCenterGroup(movedRows, movedRows.Length);
            groups[c].Refresh(state.MinDist);
        }
    }

    private const int Chunk = 2048;

    private static int[] Concat(int[][] parts)
    {
        int total = 0;
        foreach (var p in parts) total += p.Length;
        var all = new int[total];
        int at = 0;
        foreach (var p in parts)
        {
            p.CopyTo(all, at);
            at += p.Length;
        }
        return all;
    }

    // The pruning tests compare squared distances with this relative margin (0.1 % on the distances).
    private const float Margin = 1.002f;

    // Per-row state of the greedy: the squared distance to the nearest centre so far (−∞ for centres and rows that
    // cannot be selected) and that centre's index (−1 for those rows).
    private sealed class KCenterState(float[] x, int d, int n, KCenterBound? bound)
    {
        public readonly float[] MinDist = new float[n];
        public readonly int[] GroupOf = new int[n];

        /// <summary>
        /// Decides whether row <paramref name="r"/> (current squared distance <paramref name="cur"/>, its centre at
        /// squared distance <paramref name="cc"/> from the new one) moves to the new centre <paramref name="c"/>:
        /// the triangle test, then the byte-code bound, then the f32 distance. Counts what it computed.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool Moves(int r, float cur, float cc, int c, float[] centre, int next, ref int computed, ref int bounds)
        {
            if (!(cc < Margin * 4 * cur)) return false;
            if (bound is not null)
            {
                bounds++;
                if (bound.AtLeast(next, r, Margin * (double)cur)) return false;
            }
            float dd = Distances.SquaredL2(centre, x.AsSpan(r * d, d));
            computed++;
            if (!(dd < cur)) return false;
            MinDist[r] = dd;
            GroupOf[r] = c;
            return true;
        }

        /// <summary>Visits rows <paramref name="start"/>..<paramref name="end"/> in memory order, skipping rows of
        /// inactive groups. Returns the rows that moved to the new centre <paramref name="c"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot loop of short CLI runs: skip tier-0
        public (int[] Moved, int Computed, int Bounds) VisitRange(int start, int end, int c, float[] centre, int next,
            float[] centreDist, bool[] active)
        {
            int computed = 0, bounds = 0, count = 0;
            int[]? moved = null;
            const int Ahead = 4;
            for (int r = start; r < end; r++)
            {
                int g = GroupOf[r];
                if (g < 0 || !active[g]) continue;
                if (bound is not null && r + Ahead < end) bound.Prefetch(r + Ahead);
                if (Moves(r, MinDist[r], centreDist[g], c, centre, next, ref computed, ref bounds))
                    (moved ??= new int[end - r])[count++] = r;
            }
            return (moved is null ? [] : moved[..count], computed, bounds);
        }
    }

    // The rows whose nearest centre so far is one centre, with their largest squared distance to it and the farthest
    // row (lowest on ties).
    private sealed class KCenterGroup(int[] rows, int count)
    {
        public readonly int[] Rows = rows;
        public int Count = count;
        public float RadiusSquared;
        public int Best = -1;
        public float BestValue = float.NegativeInfinity;

        /// <summary>
        /// Checks this group's rows against the new centre <paramref name="c"/> (‖centre − this group's centre‖² =
        /// <paramref name="cc"/>): rows that get strictly closer take their new distance and leave the group.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot loop of short CLI runs: skip tier-0
        public (int[] Moved, int Computed, int Bounds) Scan(KCenterState state, int c, float[] centre, int next, float cc)
        {
            int keep = 0, out_ = 0, computed = 0, bounds = 0;
            int[]? mv = null;
            for (int t = 0; t < Count; t++)
            {
                int r = Rows[t];
                float cur = state.MinDist[r];
                if (cur == float.NegativeInfinity) continue; // the new centre
                if (state.Moves(r, cur, cc, c, centre, next, ref computed, ref bounds))
                {
                    (mv ??= new int[Count - t])[out_++] = r;
                    continue;
                }
                Rows[keep++] = r;
            }
            Count = keep;
            Refresh(state.MinDist);
            return (mv is null ? [] : mv[..out_], computed, bounds);
        }

        /// <summary>Removes the rows that left group <paramref name="self"/> (moved or became a centre) after a pass
        /// in memory order, and refreshes the farthest row.</summary>
        public void Drop(int self, KCenterState state)
        {
            int keep = 0;
            for (int t = 0; t < Count; t++)
            {
                int r = Rows[t];
                if (state.GroupOf[r] == self) Rows[keep++] = r;
            }
            Count = keep;
            Refresh(state.MinDist);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Refresh(float[] minDist)
        {
            Best = -1;
            BestValue = float.NegativeInfinity;
            for (int t = 0; t < Count; t++)
            {
                int r = Rows[t];
                float v = minDist[r];
                if (v > BestValue || (v == BestValue && r < Best)) { BestValue = v; Best = r; }
            }
            RadiusSquared = Math.Max(0, BestValue);
        }
    }

    // ---------------------------------------------------------------------------------------------- stratified
    private static SelectionResult Stratified(float[] x, int d, bool[] eligible, long[] ids, SelectionOptions options,
        Dictionary<string, object> report, IProgress<BuildProgress>? progress)
    {
        var (assign, clusters) = Cluster(x, d, options, progress);
        if (options.ClusterWeights is { } w && w.Count != clusters)
            throw new ArgumentException($"ClusterWeights holds {w.Count} weights for {clusters} clusters.", nameof(options));
        var members = new List<int>[clusters];
        for (int c = 0; c < clusters; c++) members[c] = [];
        for (int i = 0; i < assign.Length; i++) if (eligible[i]) members[assign[i]].Add(i);
        var weight = new double[clusters];
        for (int c = 0; c < clusters; c++)
        {
            double cw = options.ClusterWeights?[c] ?? 1.0;
            weight[c] = (options.Quota == StratifiedQuota.Proportional ? members[c].Count : (members[c].Count > 0 ? 1 : 0)) * cw;
        }
        var sizes = members.Select(l => l.Count).ToArray();
        var quota = Allocate(weight, sizes, options.N);
        var rows = new List<int>(options.N);
        for (int c = 0; c < clusters; c++)
        {
            // Within a cluster: the quota members with the smallest hashes.
            var inCluster = new bool[eligible.Length];
            foreach (int r in members[c]) inCluster[r] = true;
            rows.AddRange(SmallestHashes(inCluster, quota[c], options.Seed, StreamSubset));
        }
        report["clusters"] = clusters;
        report["quota"] = options.Quota.ToString().ToLowerInvariant();
        report["cluster_sizes"] = sizes;
        report["cluster_quotas"] = quota;
        return new SelectionResult(options.Method, Map(rows.ToArray(), ids), null, null, report);
    }

    /// <summary>
    /// Splits <paramref name="total"/> over groups ∝ <paramref name="weight"/>, each capped at its size: largest
    /// remainders round up (ties to the lower group); what a capped group cannot take goes to the others by weight,
    /// then to any group with room.
    /// </summary>
    internal static int[] Allocate(double[] weight, int[] size, int total)
    {
        int g = weight.Length;
        var quota = new int[g];
        int left = total;
        while (left > 0)
        {
            double sum = 0;
            for (int c = 0; c < g; c++) if (quota[c] < size[c]) sum += weight[c];
            if (sum <= 0)
            {
                // Zero-weight groups with room take the rest in order.
                for (int c = 0; c < g && left > 0; c++)
                {
                    int take = Math.Min(size[c] - quota[c], left);
                    quota[c] += take;
                    left -= take;
                }
                break;
            }
            var share = new double[g];
            int given = 0;
            for (int c = 0; c < g; c++)
            {
                if (quota[c] >= size[c]) continue;
                share[c] = left * weight[c] / sum;
                int whole = Math.Min((int)Math.Floor(share[c]), size[c] - quota[c]);
                quota[c] += whole;
                given += whole;
                share[c] = quota[c] < size[c] ? share[c] - Math.Floor(share[c]) : -1;
            }
            int rest = left - given;
            foreach (int c in Enumerable.Range(0, g).Where(c => share[c] > 0).OrderByDescending(c => share[c]).ThenBy(c => c))
            {
                if (rest == 0) break;
                quota[c]++;
                rest--;
            }
            if (rest == left) break; // no progress possible (every group full)
            left = rest;
        }
        return quota;
    }

    // ---------------------------------------------------------------------------------------------- coverage (CCS)
    /// <summary>
    /// Coverage-centric coreset selection (Zheng et al., ICLR 2023): drop the hardest <c>PruneRate</c> share, cut the
    /// remaining score range into equal-width strata, then repeatedly give the smallest non-empty stratum
    /// min(its size, budget / strata left) and sample that many of its points uniformly.
    /// </summary>
    private static SelectionResult Coverage(bool[] eligible, long[] ids, SelectionOptions options, Dictionary<string, object> report)
    {
        var scores = options.Scores ?? throw new ArgumentException("The coverage method needs a difficulty score per point (Scores).", nameof(options));
        int n = eligible.Length;
        if (scores.Count != n) throw new ArgumentException($"Scores holds {scores.Count} values for {n} points.", nameof(options));
        for (int i = 0; i < n; i++)
            if (!float.IsFinite(scores[i])) throw new ArgumentException($"Scores[{i}] = {scores[i]} is not finite.", nameof(options));
        var order = Enumerable.Range(0, n).Where(i => eligible[i]).OrderByDescending(i => scores[i]).ThenBy(i => i).ToArray();
        int pruned = (int)Math.Floor(order.Length * options.PruneRate);
        var kept = order.Skip(pruned).ToArray();
        if (kept.Length < options.N)
            throw new ArgumentException($"After pruning the hardest {pruned} points only {kept.Length} remain, fewer than N = {options.N}; lower PruneRate.", nameof(options));
        float lo = kept.Min(i => scores[i]), hi = kept.Max(i => scores[i]);
        int k = options.Strata;
        var strata = new List<int>[k];
        for (int s = 0; s < k; s++) strata[s] = [];
        foreach (int i in kept)
        {
            int s = hi > lo ? Math.Min(k - 1, (int)((scores[i] - lo) / (hi - lo) * k)) : 0;
            strata[s].Add(i);
        }
        var open = Enumerable.Range(0, k).Where(s => strata[s].Count > 0).ToList();
        int budget = options.N;
        var rows = new List<int>(budget);
        var taken = new int[k];
        while (budget > 0 && open.Count > 0)
        {
            int smallest = open.OrderBy(s => strata[s].Count).ThenBy(s => s).First();
            int take = Math.Min(strata[smallest].Count, budget / open.Count);
            if (take == 0) take = 1; // budget < strata left: one each, smallest strata first
            var mask = new bool[n];
            foreach (int r in strata[smallest]) mask[r] = true;
            rows.AddRange(SmallestHashes(mask, take, options.Seed + (ulong)smallest, StreamSubset));
            taken[smallest] = take;
            budget -= take;
            open.Remove(smallest);
        }
        report["pruned"] = pruned;
        report["prune_rate"] = options.PruneRate;
        report["strata"] = k;
        report["stratum_sizes"] = strata.Select(s => s.Count).ToArray();
        report["stratum_taken"] = taken;
        report["score_range"] = new[] { (double)lo, hi };
        return new SelectionResult(options.Method, Map(rows.ToArray(), ids), null, null, report);
    }

    // ---------------------------------------------------------------------------------------------- sensitivity
    /// <summary>
    /// k-means sensitivity sampling (Bachem, Lucic, Krause 2017, "Practical coreset constructions"): with k-means
    /// centres B, cost φ = Σ d(x, B)² and cluster sizes |B_x|, the sensitivity bound
    /// s(x) = α·d(x,B)²/φ + 2α·Σ_{x'∈B_x} d(x',B)²/(|B_x|·φ) + 4n/|B_x| with α = 2; N draws i.i.d. with
    /// q(x) = s(x)/Σs, weight 1/(N·q(x)) per draw, duplicate draws merged (their weights add), so Σ weights estimates n
    /// and the weighted k-means cost is an unbiased estimate of the full cost.
    /// </summary>
    private static SelectionResult Sensitivity(float[] x, int d, bool[] eligible, long[] ids, SelectionOptions options,
        Dictionary<string, object> report, IProgress<BuildProgress>? progress)
    {
        var (assign, clusters, centroids) = ClusterWithCentroids(x, d, options, progress);
        int n = eligible.Length;
        var dist = new double[n];
        var clusterCost = new double[clusters];
        var clusterSize = new int[clusters];
        double phi = 0;
        int m = 0;
        for (int i = 0; i < n; i++)
        {
            if (!eligible[i]) continue;
            dist[i] = Distances.SquaredL2(x.AsSpan(i * d, d), centroids.AsSpan(assign[i] * d, d));
            clusterCost[assign[i]] += dist[i];
            clusterSize[assign[i]]++;
            phi += dist[i];
            m++;
        }
        if (m == 0) throw new ArgumentException("No point can be selected (all excluded).", nameof(options));
        const double alpha = 2;
        var s = new double[n];
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            if (!eligible[i]) continue;
            int c = assign[i];
            double costTerm = phi > 0 ? alpha * dist[i] / phi + 2 * alpha * clusterCost[c] / (clusterSize[c] * phi) : 0;
            s[i] = costTerm + 4.0 * m / clusterSize[c];
            total += s[i];
        }
        // Inverse-CDF draws with counter-based uniforms.
        var cdf = new double[n];
        double acc = 0;
        for (int i = 0; i < n; i++) { acc += s[i]; cdf[i] = acc; }
        var weightOf = new Dictionary<int, double>();
        var order = new List<int>();
        for (int t = 0; t < options.N; t++)
        {
            double u = CounterRng.Uniform(options.Seed, StreamDraw, (ulong)t) * total;
            int row = Array.BinarySearch(cdf, u);
            if (row < 0) row = ~row;
            while (row < n - 1 && !eligible[row]) row++;
            double w = total / (options.N * s[row]);
            if (weightOf.TryGetValue(row, out double had)) weightOf[row] = had + w;
            else { weightOf[row] = w; order.Add(row); }
        }
        var weights = order.Select(r => (float)weightOf[r]).ToArray();
        report["clusters"] = clusters;
        report["draws"] = options.N;
        report["distinct"] = order.Count;
        report["kmeans_cost"] = phi;
        report["weight_sum"] = weights.Sum(w => (double)w);
        report["selected"] = order.Count;
        return new SelectionResult(options.Method, Map(order.ToArray(), ids), weights, null, report);
    }

    // ---------------------------------------------------------------------------------------------- helpers
    private static (int[] Assign, int Clusters) Cluster(float[] x, int d, SelectionOptions options, IProgress<BuildProgress>? progress)
    {
        var (a, c, _) = ClusterWithCentroids(x, d, options, progress);
        return (a, c);
    }

    private static (int[] Assign, int Clusters, float[] Centroids) ClusterWithCentroids(float[] x, int d, SelectionOptions options, IProgress<BuildProgress>? progress)
    {
        int n = x.Length / d;
        int clusters = options.Clusters > 0 ? options.Clusters : Math.Max(2, (int)Math.Round(Math.Sqrt(options.N)));
        clusters = Math.Min(clusters, n);
        var assign = new int[n];
        var centroids = KMeans.Train(x, d, new KMeansOptions(clusters)
        {
            Seed = unchecked((int)(options.Seed ^ (options.Seed >> 32))),
            Threads = options.Threads,
            Progress = progress,
        }, assign);
        return (assign, clusters, centroids);
    }

    /// <summary>The <paramref name="count"/> rows allowed by <paramref name="mask"/> with the smallest
    /// <see cref="CounterRng.Hash"/>(seed, stream, row), in hash order.</summary>
    internal static int[] SmallestHashes(bool[] mask, int count, ulong seed, ulong stream)
    {
        if (count <= 0) return [];
        var keys = new List<(ulong Key, int Row)>();
        for (int i = 0; i < mask.Length; i++) if (mask[i]) keys.Add((CounterRng.Hash(seed, stream, (ulong)i), i));
        keys.Sort((a, b) => a.Key != b.Key ? a.Key.CompareTo(b.Key) : a.Row.CompareTo(b.Row));
        return keys.Take(count).Select(k => k.Row).ToArray();
    }

    private static long[] Map(int[] rows, long[] ids) => Array.ConvertAll(rows, r => ids[r]);

    private static void Normalize(float[] x, int d)
    {
        for (int i = 0; i < x.Length / d; i++)
        {
            var row = x.AsSpan(i * d, d);
            float norm = MathF.Sqrt(Distances.SquaredNorm(row));
            if (norm > 0) for (int j = 0; j < d; j++) row[j] /= norm;
        }
    }
}
