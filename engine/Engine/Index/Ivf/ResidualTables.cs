using Engine.Distance;
using Engine.Quantization;

namespace Engine.Index.Ivf;

/// <summary>
/// The list-dependent part of residual PQ distances for L2 (faiss <c>precomputed_table</c>): with
/// d = ‖q − c‖² + (‖r‖² + 2⟨c, r⟩) − 2⟨q, r⟩, term 2 of list l, sub-quantizer m, code j is
/// ‖c_mj‖² + 2⟨centroid_l (sub-vector m), c_mj⟩. Precomputed for all lists when it fits
/// <see cref="MaxFloats"/>, otherwise computed per probed list. Inner product needs no term 2.
/// </summary>
internal sealed class ResidualTables(ICoarseQuantizer quantizer, ProductQuantizer pq, Metric metric)
{
    /// <summary>The largest precomputed table kept (floats); bigger ones are computed per probed list.</summary>
    public const long MaxFloats = 64L << 20;

    private float[]? _term2;

    /// <summary>Heap bytes of the precomputed table.</summary>
    public long MemoryBytes => (_term2?.Length ?? 0) * 4L;

    /// <summary>Precomputes the table of every list when the metric needs it and it fits (drops it otherwise).</summary>
    public void Build(int threads)
    {
        _term2 = null;
        if (metric != Metric.L2) return;
        long size = (long)quantizer.ListCount * pq.M * pq.Ksub;
        if (size > MaxFloats) return;
        var t = new float[size];
        int per = pq.M * pq.Ksub;
        ParallelWork.For(0, quantizer.ListCount, threads, l => Compute(l, t.AsSpan(l * per, per)));
        _term2 = t;
    }

    /// <summary>Term 2 of <paramref name="list"/>: the precomputed row, or computed into <paramref name="scratch"/>.</summary>
    public ReadOnlySpan<float> Term2Row(int list, Span<float> scratch)
    {
        int per = pq.M * pq.Ksub;
        if (_term2 is not null) return _term2.AsSpan(list * per, per);
        Compute(list, scratch[..per]);
        return scratch[..per];
    }

    private void Compute(int list, Span<float> row)
    {
        pq.InnerProductTable(quantizer.Centroid(list), row);
        for (int m = 0; m < pq.M; m++)
            for (int j = 0; j < pq.Ksub; j++)
                row[m * pq.Ksub + j] = 2 * row[m * pq.Ksub + j] + Distances.SquaredNorm(pq.Centroid(m, j));
    }
}
