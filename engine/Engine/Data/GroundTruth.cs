using System.Buffers;
using Engine.Index.Flat;

namespace Engine.Data;

/// <summary>
/// Exact nearest neighbours of queries (the reference every approximate index is scored against) and the
/// k-recall@k measure.
/// </summary>
/// <remarks>
/// <para>Candidates come from <see cref="FlatIndex"/> (fast float GEMM-style scan, ids = base row numbers), a
/// margin wider than <c>k</c>; they are then re-ranked with distances computed in <see cref="double"/> from the
/// original vectors, ties broken by the smaller row number. The float expansion ‖q‖² + ‖x‖² − 2q·x can swap
/// neighbours whose distances differ by less than its rounding error; the re-rank removes that noise, so the
/// ground truth is exact unless the float error moves a true neighbour past the margin.</para>
/// </remarks>
public static class GroundTruth
{
    /// <summary>The neighbours per query data sets store by default.</summary>
    public const int DefaultK = 100;

    private const int QueryBatch = 1024;

    /// <summary>
    /// Computes the exact top-<paramref name="k"/> base row numbers of every query, closest first.
    /// </summary>
    /// <param name="baseVectors">n × d base vectors, row-major; row number = id.</param>
    /// <param name="queries">nq × d queries, row-major.</param>
    /// <param name="dimension">d.</param>
    /// <param name="metric">L2 (squared distance), inner product or cosine.</param>
    /// <param name="k">Neighbours per query; when n &lt; k the tail of each row is padded with -1.</param>
    /// <param name="threads">Worker threads; 0 = all cores. The result does not depend on it.</param>
    /// <param name="progress">Optional: receives the number of queries done after each batch.</param>
    /// <returns>nq × k ids, row-major.</returns>
    /// <exception cref="ArgumentException">Wrong dimension, non-finite values, k &lt; 1.</exception>
    public static int[] Compute(ReadOnlySpan<float> baseVectors, ReadOnlySpan<float> queries, int dimension, Metric metric,
        int k = DefaultK, int threads = 0, IProgress<int>? progress = null) =>
        Compute(baseVectors.ToArray(), queries.ToArray(), dimension, metric, k, threads, progress);

    /// <summary>
    /// Array form of <see cref="Compute(ReadOnlySpan{float}, ReadOnlySpan{float}, int, Metric, int, int, IProgress{int})"/>:
    /// the same result without copying the inputs (the exact index still holds its own copy of the base).
    /// The arrays must not change during the call.
    /// </summary>
    public static int[] Compute(float[] baseVectors, float[] queries, int dimension, Metric metric,
        int k = DefaultK, int threads = 0, IProgress<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(baseVectors);
        ArgumentNullException.ThrowIfNull(queries);
        int n = Guard.Rows(baseVectors, dimension, nameof(baseVectors));
        int nq = Guard.Rows(queries, dimension, nameof(queries));
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        Guard.Finite(queries, dimension, nameof(queries));
        var result = new int[checked(nq * k)];
        Array.Fill(result, -1);
        if (n == 0 || nq == 0) return result;

        // The re-rank reads the original rows (FlatIndex normalises cosine rows) from the caller's arrays.
        float[] data = baseVectors;
        float[] q = queries;
        int candidates = (int)Math.Min(n, k + Math.Max(16L, k / 2));
        using var index = new FlatIndex(dimension, metric);
        var ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = i;
        index.Add(data, ids);

        var parameters = new SearchParameters { Threads = threads };
        var distances = new float[QueryBatch * candidates];
        var labels = new long[QueryBatch * candidates];
        for (int q0 = 0; q0 < nq; q0 += QueryBatch)
        {
            int qb = Math.Min(QueryBatch, nq - q0);
            index.Search(q.AsSpan(q0 * dimension, qb * dimension), candidates,
                distances.AsSpan(0, qb * candidates), labels.AsSpan(0, qb * candidates), parameters);
            ParallelWork.For(0, qb, threads, i =>
                Rerank(data, q.AsSpan((q0 + i) * dimension, dimension), dimension, metric,
                    labels.AsSpan(i * candidates, candidates), result.AsSpan((q0 + i) * k, k)));
            progress?.Report(q0 + qb);
        }
        return result;
    }

    // Exact double-precision order of one query's candidates; writes the best k (or fewer) into output.
    private static void Rerank(float[] data, ReadOnlySpan<float> query, int d, Metric metric, ReadOnlySpan<long> candidates, Span<int> output)
    {
        int c = 0;
        double[] keys = ArrayPool<double>.Shared.Rent(candidates.Length);
        int[] rows = ArrayPool<int>.Shared.Rent(candidates.Length);
        try
        {
            double qNorm = metric == Metric.Cosine ? Math.Sqrt(Dot(query, query)) : 1;
            foreach (long id in candidates)
            {
                if (id < 0) break;
                var x = data.AsSpan((int)id * d, d);
                double key = metric switch
                {
                    Metric.L2 => SquaredL2(query, x),
                    Metric.InnerProduct => -Dot(query, x),
                    _ => -CosineOf(query, qNorm, x),
                };
                keys[c] = key;
                rows[c] = (int)id;
                c++;
            }
            // Sort by (key, row): smaller key is closer; equal keys keep the smaller row number first.
            var order = rows.AsSpan(0, c);
            var k = keys.AsSpan(0, c);
            k.Sort(order);
            TieBreak(k, order);
            int take = Math.Min(c, output.Length);
            order[..take].CopyTo(output);
        }
        finally
        {
            ArrayPool<double>.Shared.Return(keys);
            ArrayPool<int>.Shared.Return(rows);
        }
    }

    // Within runs of equal keys, order rows ascending (Span.Sort is not stable).
    private static void TieBreak(ReadOnlySpan<double> keys, Span<int> rows)
    {
        for (int i = 0; i < keys.Length;)
        {
            int j = i + 1;
            while (j < keys.Length && keys[j] == keys[i]) j++;
            if (j - i > 1) rows[i..j].Sort();
            i = j;
        }
    }

    private static double SquaredL2(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) { double t = (double)a[i] - b[i]; s += t * t; }
        return s;
    }

    private static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }

    private static double CosineOf(ReadOnlySpan<float> q, double qNorm, ReadOnlySpan<float> x)
    {
        double xNorm = Math.Sqrt(Dot(x, x));
        return qNorm == 0 || xNorm == 0 ? 0 : Dot(q, x) / (qNorm * xNorm);
    }

    /// <summary>
    /// k-recall@k: for each query, the number of distinct ids among the first <paramref name="k"/> results that are
    /// also among the first <paramref name="k"/> ground-truth ids, divided by k, averaged over queries (the measure
    /// of ann-benchmarks and <c>peers.py</c>): the hits summed over queries, divided by the ground-truth ids summed over
    /// queries. Negative (missing) result ids never count. Ground truth padded with -1 (a base set smaller than k)
    /// counts only its real ids among the first k in that denominator, so an exact search still scores 1 (with no
    /// padding the denominator is nq × k, the usual average).
    /// </summary>
    /// <param name="labels">Result ids, nq × <paramref name="labelsPerQuery"/>, row-major.</param>
    /// <param name="labelsPerQuery">Row stride of <paramref name="labels"/>, ≥ k.</param>
    /// <param name="groundTruth">Exact ids, nq × <paramref name="groundTruthPerQuery"/>, closest first.</param>
    /// <param name="groundTruthPerQuery">Row stride of <paramref name="groundTruth"/>, ≥ k.</param>
    /// <param name="k">The k of k-recall@k.</param>
    /// <returns>Recall in [0, 1]; 1 when there are no queries.</returns>
    /// <exception cref="ArgumentException">k out of range, strides that do not divide the spans, different query counts, or
    /// a ground truth with no ids (all -1) among the first k of every query.</exception>
    public static double RecallAtK(ReadOnlySpan<long> labels, int labelsPerQuery, ReadOnlySpan<int> groundTruth, int groundTruthPerQuery, int k)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        if (labelsPerQuery < k) throw new ArgumentException($"Results hold {labelsPerQuery} ids per query, fewer than k={k}.", nameof(labelsPerQuery));
        if (groundTruthPerQuery < k) throw new ArgumentException($"Ground truth holds {groundTruthPerQuery} ids per query, fewer than k={k}.", nameof(groundTruthPerQuery));
        if (labels.Length % labelsPerQuery != 0) throw new ArgumentException($"labels length {labels.Length} is not a multiple of {labelsPerQuery}.", nameof(labels));
        if (groundTruth.Length % groundTruthPerQuery != 0) throw new ArgumentException($"groundTruth length {groundTruth.Length} is not a multiple of {groundTruthPerQuery}.", nameof(groundTruth));
        int nq = labels.Length / labelsPerQuery;
        if (groundTruth.Length / groundTruthPerQuery != nq)
            throw new ArgumentException($"Results cover {nq} queries but the ground truth {groundTruth.Length / groundTruthPerQuery}.", nameof(groundTruth));
        if (nq == 0) return 1.0;

        long[] truth = ArrayPool<long>.Shared.Rent(k);
        long[] found = ArrayPool<long>.Shared.Rent(k);
        try
        {
            long hits = 0, real = 0;
            for (int q = 0; q < nq; q++)
            {
                var t = truth.AsSpan(0, k);
                var f = found.AsSpan(0, k);
                for (int j = 0; j < k; j++)
                    if ((t[j] = groundTruth[q * groundTruthPerQuery + j]) >= 0) real++;
                labels.Slice(q * labelsPerQuery, k).CopyTo(f);
                t.Sort();
                f.Sort();
                hits += CountCommonDistinct(t, f);
            }
            if (real == 0) throw new ArgumentException($"The ground truth holds no ids among the first k={k} of any of its {nq} queries (all -1).", nameof(groundTruth));
            return hits / (double)real;
        }
        finally
        {
            ArrayPool<long>.Shared.Return(truth);
            ArrayPool<long>.Shared.Return(found);
        }
    }

    // Distinct non-negative values present in both sorted spans.
    private static int CountCommonDistinct(ReadOnlySpan<long> a, ReadOnlySpan<long> b)
    {
        int i = 0, j = 0, common = 0;
        long last = -1;
        while (i < a.Length && j < b.Length)
        {
            if (a[i] < b[j]) i++;
            else if (a[i] > b[j]) j++;
            else
            {
                if (a[i] >= 0 && a[i] != last) { common++; last = a[i]; }
                i++;
                j++;
            }
        }
        return common;
    }
}
