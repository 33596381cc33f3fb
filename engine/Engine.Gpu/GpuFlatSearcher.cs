using System.Buffers;
using Engine.Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Gpu;

/// <summary>
/// Exact k-nearest-neighbour search over a corpus held in device memory, with the per-query top-k fused into
/// the distance kernel (see <see cref="SelectKernels"/>): any k ≥ 1, no cap.
/// </summary>
/// <remarks>
/// <para>Results follow <see cref="IVectorIndex.Search"/>: nq × k row-major, sorted best first, L2 squared
/// distances or inner products / cosine similarities, ties broken by the smaller row, padded with label -1
/// when k exceeds the corpus. Labels are corpus row numbers (0-based).</para>
/// <para>Cosine: corpus rows and queries are L2-normalised before upload, so cosine runs as inner product.</para>
/// <para>Thread safety: calls are serialised on the context's stream; safe to share.</para>
/// </remarks>
public sealed class GpuFlatSearcher : IDisposable
{
    private readonly GpuContext _ctx;
    private MemoryBuffer1D<float, Stride1D.Dense>? _corpus;

    /// <summary>Creates a searcher with an empty corpus.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Dimension not positive or unknown metric.</exception>
    public GpuFlatSearcher(GpuContext context, int dimension, Metric metric)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        if (!Enum.IsDefined(metric)) throw new ArgumentOutOfRangeException(nameof(metric), metric, "Unknown metric.");
        _ctx = context;
        Dimension = dimension;
        Metric = metric;
    }

    /// <summary>Vector dimension d.</summary>
    public int Dimension { get; }

    /// <summary>Metric of the reported distances.</summary>
    public Metric Metric { get; }

    /// <summary>Rows currently on the device.</summary>
    public int Rows { get; private set; }

    /// <summary>Replaces the device corpus with <paramref name="corpus"/> (n × d row-major).</summary>
    /// <exception cref="ArgumentException">Length not a multiple of d, or non-finite values.</exception>
    public void SetCorpus(ReadOnlySpan<float> corpus)
    {
        int n = Guard.Rows(corpus, Dimension, nameof(corpus));
        Guard.Finite(corpus, Dimension, nameof(corpus));
        lock (_ctx.Gate)
        {
            _ctx.ThrowIfDisposed();
            long need = Math.Max(1L, (long)n * Dimension);
            if (_corpus is null || _corpus.Length < need)
            {
                _corpus?.Dispose();
                _corpus = _ctx.Accelerator.Allocate1D<float>(need);
            }
            UploadRows(_ctx, _corpus.View, corpus, Dimension, Metric == Metric.Cosine);
            Rows = n;
        }
    }

    /// <summary>
    /// Searches nq queries (nq × d); writes nq × k distances and row labels (best first, padded with -1).
    /// </summary>
    /// <exception cref="ArgumentException">Wrong dimension, non-finite queries, k ≤ 0 or short output buffers.</exception>
    public void Search(ReadOnlySpan<float> queries, int k, Span<float> distances, Span<long> labels)
    {
        int nq = Guard.Rows(queries, Dimension, nameof(queries));
        Guard.SearchBuffers(nq, k, distances.Length, labels.Length);
        Guard.Finite(queries, Dimension, nameof(queries));
        if (nq == 0) return;
        ulong[] packed = TopKPipeline.RentResult(nq, k);
        try
        {
            lock (_ctx.Gate)
            {
                _ctx.ThrowIfDisposed();
                if (Rows == 0 || _corpus is null)
                {
                    Array.Fill(packed, SelectKernels.Padding, 0, nq * k);
                }
                else
                {
                    var q = _ctx.Scratch<float>("flat.queries", (long)nq * Dimension);
                    UploadRows(_ctx, q, queries, Dimension, Metric == Metric.Cosine);
                    int tile = TopKPipeline.TileSize(_ctx, k);
                    int tiles = (int)((Rows + (long)tile - 1) / tile);
                    var corpus = _corpus.View;
                    var kernel = _ctx.Kernels.FlatTile;
                    TopKPipeline.Run(_ctx, nq, k, tile, tiles, Metric == Metric.L2 ? 0 : 1, Dimension, Rows,
                        (first, config, args, parts) => kernel(config, corpus, q.SubView((long)first * Dimension), parts, args),
                        packed.AsSpan(0, nq * k));
                }
            }
            Unpack(packed.AsSpan(0, nq * k), Metric, distances, labels);
        }
        finally { TopKPipeline.Return(packed); }
    }

    /// <summary>Turns packed entries into metric values and labels (the candidate index, or -1).</summary>
    internal static void Unpack(ReadOnlySpan<ulong> packed, Metric metric, Span<float> distances, Span<long> labels)
    {
        float missing = metric.MissingDistance();
        bool similarity = metric.IsSimilarity();
        for (int i = 0; i < packed.Length; i++)
        {
            ulong e = packed[i];
            if (e == SelectKernels.Padding) { distances[i] = missing; labels[i] = -1; continue; }
            float key = SelectKernels.UnpackKey(e);
            distances[i] = similarity ? -key : key;
            labels[i] = SelectKernels.UnpackIndex(e);
        }
    }

    // Uploads rows in pooled chunks, normalising each row first when asked (cosine).
    private static void UploadRows(GpuContext ctx, ArrayView<float> target, ReadOnlySpan<float> rows, int d, bool normalize)
    {
        if (!normalize) { ctx.Upload(target, rows); return; }
        int chunkRows = Math.Max(1, (1 << 16) / d);
        float[] buf = ArrayPool<float>.Shared.Rent(chunkRows * d);
        try
        {
            for (int r0 = 0; r0 < rows.Length / d; r0 += chunkRows)
            {
                int rc = Math.Min(chunkRows, rows.Length / d - r0);
                var chunk = buf.AsSpan(0, rc * d);
                rows.Slice(r0 * d, rc * d).CopyTo(chunk);
                for (int i = 0; i < rc; i++) Distance.Distances.NormalizeInPlace(chunk.Slice(i * d, d));
                ctx.Upload(target.SubView((long)r0 * d), (ReadOnlySpan<float>)chunk);
            }
        }
        finally { ArrayPool<float>.Shared.Return(buf); }
    }

    /// <summary>Frees the device corpus.</summary>
    public void Dispose()
    {
        lock (_ctx.Gate)
        {
            _corpus?.Dispose();
            _corpus = null;
            Rows = 0;
        }
    }
}
