using Engine.Index.Flat;

namespace Engine.Gpu;

/// <summary>
/// Exact index whose searches run on the accelerator. Storage, ids, removal, reconstruction and files are
/// those of <see cref="FlatIndex"/> (a saved file loads with <c>FlatIndex.Load</c> / <c>IndexFactory.Load</c>);
/// only <see cref="Search"/> differs, and it returns the same results as <see cref="FlatIndex"/>: same ids
/// where distances are not tied, distances equal up to float rounding.
/// </summary>
/// <remarks>
/// <para>The device holds a mirror of the rows, refreshed by the first search after a mutation.</para>
/// <para>Searches with a <see cref="SearchParameters.Filter"/> run on the CPU index (the kernels scan whole
/// tiles and know nothing of ids).</para>
/// <para>Thread safety: searches and mutations may run from any threads; device searches run one at a time.</para>
/// </remarks>
public sealed class GpuFlatIndex : IVectorIndex
{
    private readonly FlatIndex _flat;
    private readonly GpuFlatSearcher _searcher;
    private readonly object _sync = new();
    private long[] _rowIds = [];
    private bool _dirty = true;

    /// <summary>Creates an empty index on <paramref name="context"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Dimension not positive or unknown metric.</exception>
    public GpuFlatIndex(GpuContext context, int dimension, Metric metric = Metric.L2)
        : this(context, new FlatIndex(dimension, metric)) { }

    private GpuFlatIndex(GpuContext context, FlatIndex flat)
    {
        ArgumentNullException.ThrowIfNull(context);
        _flat = flat;
        _searcher = new GpuFlatSearcher(context, flat.Dimension, flat.Metric);
        Context = context;
    }

    /// <summary>Loads a flat index file (written by <see cref="Save"/> or <see cref="FlatIndex.Save"/>).</summary>
    /// <exception cref="CorruptIndexException">Truncated or corrupted file.</exception>
    public static GpuFlatIndex Load(GpuContext context, string path) => new(context, FlatIndex.Load(path));

    /// <summary>The accelerator context searches run on.</summary>
    public GpuContext Context { get; }

    /// <inheritdoc />
    public int Dimension => _flat.Dimension;

    /// <inheritdoc />
    public Metric Metric => _flat.Metric;

    /// <inheritdoc />
    public long Count => _flat.Count;

    /// <inheritdoc />
    public bool IsTrained => true;

    /// <inheritdoc />
    public string Description => _flat.Description;

    /// <summary>Host memory of the CPU-side storage (the device mirror is not counted).</summary>
    public long MemoryBytes => _flat.MemoryBytes + (long)_rowIds.Length * sizeof(long);

    /// <inheritdoc />
    public void Train(ReadOnlySpan<float> vectors) => _flat.Train(vectors);

    /// <inheritdoc />
    public void Add(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids)
    {
        lock (_sync)
        {
            _flat.Add(vectors, ids);
            _dirty = true;
        }
    }

    /// <inheritdoc />
    public int Remove(ReadOnlySpan<long> ids)
    {
        lock (_sync)
        {
            int removed = _flat.Remove(ids);
            _dirty |= removed > 0;
            return removed;
        }
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">Wrong query dimension, non-finite queries, k ≤ 0, short output buffers, or parameters of another index family.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Negative <see cref="SearchParameters.Threads"/>.</exception>
    public void Search(ReadOnlySpan<float> queries, int k, Span<float> distances, Span<long> labels,
        SearchParameters? parameters = null)
    {
        parameters?.Validate();
        SearchParameters.CheckFamily(parameters, null, this);
        if (parameters?.Filter is not null)
        {
            _flat.Search(queries, k, distances, labels, parameters);
            return;
        }
        int nq = Guard.Rows(queries, Dimension, nameof(queries));
        Guard.SearchBuffers(nq, k, distances.Length, labels.Length);
        Guard.Finite(queries, Dimension, nameof(queries));
        lock (_sync)
        {
            if (_dirty)
            {
                _searcher.SetCorpus(_flat.ContiguousVectors());
                _rowIds = _flat.RowIds.ToArray();
                _dirty = false;
            }
            _searcher.Search(queries, k, distances, labels);
            parameters?.Stats?.Add(queries: nq, distances: (long)nq * _rowIds.Length);
            var rows = labels[..(nq * k)];
            for (int i = 0; i < rows.Length; i++)
                if (rows[i] >= 0) rows[i] = _rowIds[rows[i]];
        }
    }

    /// <inheritdoc />
    public bool TryReconstruct(long id, Span<float> destination) => _flat.TryReconstruct(id, destination);

    /// <inheritdoc />
    public void Save(string path) => _flat.Save(path);

    /// <summary>Frees the device mirror and the CPU-side storage.</summary>
    public void Dispose()
    {
        _searcher.Dispose();
        _flat.Dispose();
    }
}
