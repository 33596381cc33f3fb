using Engine.Distance;
using Engine.Quantization;
using Engine.Runtime;

namespace Engine.Index.Ivf;

/// <summary>
/// Chooses the anisotropic threshold T of an inner-product / cosine IVF-PQ index whose spec leaves it out, on its own
/// training data. ScaNN's weight η(d, T) assumes queries uniform on the sphere; real data is not (MNIST's unit rows all
/// lie in one orthant and their neighbours at ⟨q, x⟩ ≈ 0.9, GloVe's spread far wider), and the best T differed by 6×
/// between the sets measured (docs/ivf.md). So T is picked by what the codes are for: <see cref="QueryRows"/> sampled
/// rows search the other sampled rows (up to <see cref="MaxBaseFloats"/> floats of them: as many as the index holds
/// when it fits, since fewer rows would make the neighbours farther and favour smaller T), exactly, for their
/// <see cref="Pool"/> nearest; then, for each T of <see cref="Thresholds"/>, the pool rows are encoded and ranked by
/// their codes (coarse term included) and the T whose ranking keeps most of the exact top <see cref="K"/> within its
/// top <see cref="Shortlist"/> wins (the smallest T on ties; T = 0, plain codes, is a candidate, so the choice is
/// never worse than plain codes on that sample).
/// </summary>
internal static class AnisotropicTuning
{
    /// <summary>The thresholds tried (0 = plain codes).</summary>
    public static readonly double[] Thresholds = [0, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3];

    /// <summary>Queries, exact neighbours kept per query, neighbours scored and code shortlist of the selection.</summary>
    public const int QueryRows = 200, Pool = 256, K = 10, Shortlist = 40;

    /// <summary>Most floats of sampled rows searched (128 MB).</summary>
    public const long MaxBaseFloats = 32L << 20;

    /// <summary>Rows to sample for <see cref="Choose"/> from an index of n rows of dimension d (queries included).</summary>
    public static int SampleRows(int n, int dimension) => (int)Math.Min(n, Math.Min(262144 + QueryRows, MaxBaseFloats / dimension + QueryRows));

    /// <summary>
    /// The threshold to encode with, and the shortlist recall of every candidate. <paramref name="rows"/> (n × d,
    /// in the index's working space) are sampled rows, the first min(<see cref="QueryRows"/>, n / 10) of them the
    /// queries. <paramref name="quantizer"/> gives the residual centers (null: raw codes).
    /// </summary>
    public static (double Threshold, double[] Recalls) Choose(ProductQuantizer pq, float[] rows, int dimension, ICoarseQuantizer? quantizer, int threads)
    {
        int d = dimension, n = rows.Length / d, nq = Math.Min(QueryRows, n / 10), nb = n - nq;
        var recalls = new double[Thresholds.Length];
        int pool = Math.Min(Pool, nb);
        if (nq < 1 || pool <= Shortlist) return (0, recalls);
        var queries = rows.AsSpan(0, nq * d);
        var near = TopIds(queries, rows.AsSpan(nq * d, nb * d), d, nq, nb, pool, threads); // exact order: the first K are the truth

        // The pool rows (each once), as residuals of their centers, and every query's pool as positions among them.
        var slot = new Dictionary<long, int>();
        foreach (long id in near) slot.TryAdd(id, slot.Count);
        int m = slot.Count;
        var residuals = new float[m * d];
        foreach (var (id, at) in slot) rows.AsSpan((nq + (int)id) * d, d).CopyTo(residuals.AsSpan(at * d, d));
        float[]? centers = null;
        if (quantizer is not null)
        {
            centers = new float[residuals.Length];
            quantizer.ToResiduals(residuals, d, threads, centers);
        }
        var positions = near.Select(id => slot[id]).ToArray();
        double before = pq.AnisotropicThreshold;
        var codes = new byte[m * pq.M];
        var rebuilt = new float[m * d];
        double best = -1, chosen = 0;
        try
        {
            for (int t = 0; t < Thresholds.Length; t++)
            {
                pq.AnisotropicThreshold = Thresholds[t];
                const int Chunk = 512;
                ParallelWork.For(0, (m + Chunk - 1) / Chunk, threads, c =>
                {
                    int s = c * Chunk, e = Math.Min(m, s + Chunk);
                    var r = residuals.AsSpan(s * d, (e - s) * d);
                    var code = codes.AsSpan(s * pq.M, (e - s) * pq.M);
                    var back = rebuilt.AsSpan(s * d, (e - s) * d);
                    if (centers is null) pq.Encode(r, code);
                    else pq.EncodeResiduals(r, centers.AsSpan(s * d, (e - s) * d), code);
                    pq.Decode(code, back);
                    if (centers is not null) System.Numerics.Tensors.TensorPrimitives.Add(back, centers.AsSpan(s * d, (e - s) * d), back);
                });
                long hits = 0;
                var est = new float[pool];
                var order = new int[pool];
                for (int q = 0; q < nq; q++)
                {
                    var mine = positions.AsSpan(q * pool, pool);
                    for (int j = 0; j < pool; j++)
                    {
                        est[j] = -Distances.Dot(queries.Slice(q * d, d), rebuilt.AsSpan(mine[j] * d, d));
                        order[j] = j;
                    }
                    Array.Sort(est, order);
                    foreach (int j in order.AsSpan(0, Shortlist)) if (j < K) hits++; // pool index j < K: one of the exact top K
                }
                recalls[t] = (double)hits / (nq * K);
                if (recalls[t] > best) { best = recalls[t]; chosen = Thresholds[t]; }
            }
        }
        finally { pq.AnisotropicThreshold = before; }
        return (chosen, recalls);
    }

    // The row numbers of the k largest inner products of each query with the rows, best first (blocks of queries on
    // the threads, each with its own score buffer).
    private static unsafe long[] TopIds(ReadOnlySpan<float> queries, ReadOnlySpan<float> rows, int d, int nq, int nb, int k, int threads)
    {
        var ids = new long[nq * k];
        const int Block = 16;
        fixed (float* pq = queries, pr = rows)
        {
            nint qp = (nint)pq, rp = (nint)pr;
            ParallelWork.For(0, (nq + Block - 1) / Block, threads, () => (Scores: new float[Block * nb], Keys: new float[k]), (b, _, local) =>
            {
                int q0 = b * Block, qb = Math.Min(Block, nq - q0);
                var all = new ReadOnlySpan<float>((float*)rp, nb * d);
                Distances.DotManyToMany(new ReadOnlySpan<float>((float*)qp + q0 * d, qb * d), all, d, local.Scores.AsSpan(0, qb * nb));
                for (int q = 0; q < qb; q++)
                {
                    var heap = new TopKHeap(local.Keys, ids.AsSpan((q0 + q) * k, k));
                    var row = local.Scores.AsSpan(q * nb, nb);
                    for (int j = 0; j < nb; j++)
                        if (-row[j] < heap.Threshold) heap.Push(-row[j], j);
                    heap.SortAndPad(float.PositiveInfinity);
                }
                return local;
            }, _ => { });
        }
        return ids;
    }
}
