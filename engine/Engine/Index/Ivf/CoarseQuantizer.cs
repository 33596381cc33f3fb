using Engine.Clustering;
using Engine.Distance;

namespace Engine.Index.Ivf;

/// <summary>
/// The coarse quantizer of an IVF index (faiss <c>IndexIVF::quantizer</c>): maps vectors to lists and queries to
/// the lists to probe. The list code, the scanners and the lists only see list numbers and, for residual codes,
/// <see cref="Centroid"/>; so any nearest-neighbour structure over the centroids can serve (exhaustive today,
/// <see cref="IndexCoarseQuantizer"/> wraps any <see cref="IVectorIndex"/>, e.g. HNSW over 65 536+ centroids).
/// </summary>
/// <remarks>Keys are "smaller is better" in the index's working space: squared L2, or the negated inner product.
/// Thread safety: <see cref="Assign"/> and <see cref="Search"/> run concurrently once the centroids are set.</remarks>
internal interface ICoarseQuantizer
{
    /// <summary>Number of lists (centroids).</summary>
    int ListCount { get; }

    /// <summary>Centroid of list <paramref name="list"/> (d floats), for residuals and persistence.</summary>
    ReadOnlySpan<float> Centroid(int list);

    /// <summary>Heap bytes held.</summary>
    long MemoryBytes { get; }

    /// <summary>The nearest list of each of the n rows.</summary>
    int[] Assign(ReadOnlySpan<float> vectors, int threads);

    /// <summary>
    /// The <paramref name="probes"/> nearest lists of each of <paramref name="nq"/> queries, sorted by key, into
    /// <paramref name="keys"/> / <paramref name="lists"/> (nq × probes; -1 pads a short row).
    /// </summary>
    /// <remarks><c>ef</c>: search breadth for approximate quantizers (0 = their default); the exhaustive one ignores it.</remarks>
    void Search(ReadOnlySpan<float> queries, int nq, int probes, Span<float> keys, Span<long> lists, IvfScratch scratch, int? ef = null);
}

internal static class CoarseQuantizerExtensions
{
    /// <summary>
    /// Replaces each of the n × d <paramref name="rows"/> by its residual from the centroid of its nearest list;
    /// with <paramref name="centers"/> (n × d) also writes those centroids there.
    /// </summary>
    public static void ToResiduals(this ICoarseQuantizer quantizer, Span<float> rows, int dimension, int threads, Span<float> centers = default)
    {
        int d = dimension;
        var assign = quantizer.Assign(rows, threads);
        for (int i = 0; i < assign.Length; i++)
        {
            var centroid = quantizer.Centroid(assign[i]);
            if (!centers.IsEmpty) centroid.CopyTo(centers.Slice(i * d, d));
            System.Numerics.Tensors.TensorPrimitives.Subtract(rows.Slice(i * d, d), centroid, rows.Slice(i * d, d));
        }
    }
}

/// <summary>Exhaustive coarse quantizer over nlist × d centroids (one small GEMM per chunk of queries).</summary>
internal sealed class FlatCoarseQuantizer : ICoarseQuantizer
{
    private readonly int _dimension;
    private readonly bool _l2;
    private float[] _centroids;
    private readonly float[] _norms;

    public FlatCoarseQuantizer(int lists, int dimension, Metric metric)
    {
        _dimension = dimension;
        _l2 = metric == Metric.L2;
        _centroids = new float[lists * dimension];
        _norms = new float[lists];
    }

    public int ListCount => _norms.Length;

    /// <summary>All centroids, nlist × d.</summary>
    public float[] Centroids => _centroids;

    /// <summary>Squared norms of the centroids.</summary>
    public float[] Norms => _norms;

    public long MemoryBytes => (long)_centroids.Length * 4;

    public ReadOnlySpan<float> Centroid(int list) => _centroids.AsSpan(list * _dimension, _dimension);

    /// <summary>Installs nlist × d centroids (the array is kept).</summary>
    public void SetCentroids(float[] centroids)
    {
        if (centroids.Length != _centroids.Length)
            throw new ArgumentException($"Centroids must hold nlist×d = {_centroids.Length} floats, got {centroids.Length}.", nameof(centroids));
        _centroids = centroids;
        Distances.SquaredNorms(_centroids, _dimension, _norms);
    }

    // The same ranking as Search: squared L2, or the largest inner product (an IP / cosine index assigned by L2 but
    // probed by inner product files vectors under lists its queries do not probe first).
    public int[] Assign(ReadOnlySpan<float> vectors, int threads) => _l2
        ? KMeans.Assign(vectors, _centroids, _dimension, threads)
        : KMeans.AssignMaxInnerProduct(vectors, _centroids, _dimension, threads);

    public void Search(ReadOnlySpan<float> queries, int nq, int probes, Span<float> keys, Span<long> lists, IvfScratch s, int? ef = null)
    {
        int nl = ListCount;
        var dots = s.Coarse.AsSpan(0, nq * nl);
        Distances.DotManyToMany(queries, _centroids, _dimension, dots);
        if (_l2) Distances.SquaredNorms(queries, _dimension, s.QueryNorms);
        for (int i = 0; i < nq; i++)
        {
            var row = dots.Slice(i * nl, nl);
            // keys in place (squared L2, or the negated inner product), then the probes' keys chosen and sorted
            if (_l2) Distances.SquaredL2FromDots(row, s.QueryNorms[i], _norms);
            else System.Numerics.Tensors.TensorPrimitives.Negate(row, row);
            TopKHeap.SmallestSorted(row, 0, keys.Slice(i * probes, probes), lists.Slice(i * probes, probes), float.PositiveInfinity,
                s.CoarseCandKeys, s.CoarseCandIds);
        }
    }
}

/// <summary>
/// A coarse quantizer served by any <see cref="IVectorIndex"/> that holds the centroids under ids 0..nlist-1 (faiss
/// lets an <c>IndexHNSWFlat</c> be the quantizer of an <c>IndexIVF</c> for very large nlist). The index's own search
/// answers the probes; the centroids are read back once (<see cref="IVectorIndex.TryReconstruct"/>) for residuals.
/// </summary>
internal sealed class IndexCoarseQuantizer : ICoarseQuantizer, IDisposable
{
    private readonly IVectorIndex _index;
    private readonly float[] _centroids;
    private readonly int _dimension;
    private readonly Func<int, int?, SearchParameters> _parametersFor;
    private readonly bool _owned;

    /// <param name="index">The index over the centroids; ids must be 0..Count-1.</param>
    /// <param name="parametersFor">Parameters of its searches for a thread count (1 for the probes of one chunk of
    /// queries, the caller's count for assignments) and a search breadth (null = the default).</param>
    /// <param name="owned">Dispose the index with this quantizer.</param>
    public IndexCoarseQuantizer(IVectorIndex index, Func<int, int?, SearchParameters> parametersFor, bool owned)
        : this(index)
    {
        ArgumentNullException.ThrowIfNull(parametersFor);
        _parametersFor = parametersFor;
        _owned = owned;
    }

    /// <param name="index">The index over the centroids; ids must be 0..Count-1.</param>
    /// <param name="parameters">Parameters of its searches (e.g. HNSW ef with Threads = 1, since the IVF search already
    /// runs one chunk of queries per thread); null searches with defaults, one thread per chunk.</param>
    public IndexCoarseQuantizer(IVectorIndex index, SearchParameters? parameters = null)
    {
        ArgumentNullException.ThrowIfNull(index);
        if (index.Count <= 0 || index.Count > IvfSpec.MaxLists)
            throw new ArgumentException($"A coarse quantizer index must hold 1..{IvfSpec.MaxLists} centroids, it holds {index.Count}.", nameof(index));
        _index = index;
        _dimension = index.Dimension;
        // The caller's parameters as given (their thread count included), or plain ones with the asked thread count.
        _parametersFor = (threads, _) => parameters ?? new SearchParameters { Threads = threads };
        _centroids = new float[index.Count * _dimension];
        for (int c = 0; c < index.Count; c++)
            if (!index.TryReconstruct(c, _centroids.AsSpan(c * _dimension, _dimension)))
                throw new ArgumentException($"The coarse quantizer index has no centroid with id {c}: ids must be 0..{index.Count - 1}.", nameof(index));
    }

    public int ListCount => _centroids.Length / _dimension;

    public long MemoryBytes => (long)_centroids.Length * 4 + _index.MemoryBytes;

    public ReadOnlySpan<float> Centroid(int list) => _centroids.AsSpan(list * _dimension, _dimension);

    public int[] Assign(ReadOnlySpan<float> vectors, int threads)
    {
        int n = vectors.Length / _dimension;
        var keys = new float[n];
        var lists = new long[n];
        _index.Search(vectors, 1, keys, lists, _parametersFor(threads, null));
        var assign = new int[n];
        for (int i = 0; i < n; i++) assign[i] = checked((int)lists[i]);
        return assign;
    }

    public void Search(ReadOnlySpan<float> queries, int nq, int probes, Span<float> keys, Span<long> lists, IvfScratch scratch, int? ef = null)
    {
        _index.Search(queries[..(nq * _dimension)], probes, keys[..(nq * probes)], lists[..(nq * probes)], _parametersFor(1, ef));
        if (_index.Metric != Metric.L2) // the index returns similarities; the lists want smaller-is-better keys
            for (int i = 0; i < nq * probes; i++) keys[i] = -keys[i];
    }

    /// <summary>Disposes the index when this quantizer owns it.</summary>
    public void Dispose()
    {
        if (_owned) _index.Dispose();
    }
}
