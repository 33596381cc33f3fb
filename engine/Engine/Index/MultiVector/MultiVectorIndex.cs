using System.Numerics.Tensors;
using Engine.MultiVector;

namespace Engine.Index.MultiVector;

/// <summary>How a <see cref="MultiVectorIndex"/> keeps token vectors for the exact Chamfer re-rank.</summary>
public enum TokenEncoding
{
    /// <summary>32-bit floats.</summary>
    F32 = 0,

    /// <summary>IEEE half precision (half the memory; re-rank arithmetic stays in float).</summary>
    F16 = 1,
}

/// <summary>
/// Multi-vector retrieval with MUVERA: every item is a set of token vectors (stored compactly, f32 or f16) and its
/// fixed-dimensional encoding (<see cref="FixedDimensionalEncoder"/>) lives in a single-vector inner-product index of
/// any spec (Flat, IVF…, HNSW…, SPANN). A search encodes the query, takes the FDE index's top-N candidates and
/// re-ranks them by exact Chamfer (MaxSim) similarity; <see cref="SearchExact"/> is brute-force Chamfer over all items.
/// </summary>
/// <remarks>Scores are Chamfer similarities (larger is closer); missing results are label −1 with −∞. Searches run
/// concurrently; <see cref="Train"/> and <see cref="Add"/> take the write lock.</remarks>
public sealed partial class MultiVectorIndex : IDisposable
{
    private readonly IndexLock _lock = new(nameof(MultiVectorIndex));
    private readonly IVectorIndex _fdeIndex;
    private float[] _f32 = [];
    private Half[] _f16 = [];
    private int[] _offsets = [0];   // token offsets, Count + 1
    private long[] _ids = [];
    private int _count;
    private readonly Dictionary<long, int> _rowOf = [];

    /// <summary>Creates an empty index.</summary>
    /// <param name="dimension">Token dimension d.</param>
    /// <param name="options">FDE parameters.</param>
    /// <param name="fdeSpec">Composition string of the FDE index (any <see cref="IndexFactory"/> spec, e.g. <c>Flat</c>, <c>IVF256,Flat</c>, <c>HNSW32</c>).</param>
    /// <param name="tokens">How tokens are stored.</param>
    /// <param name="buildOptions">Build-time settings passed to the FDE index (k-means backend, SPANN directory).</param>
    /// <exception cref="ArgumentException">A bad option or spec.</exception>
    public MultiVectorIndex(int dimension, MuveraOptions options, string fdeSpec = "Flat", TokenEncoding tokens = TokenEncoding.F16,
        IndexBuildOptions? buildOptions = null)
        : this(new FixedDimensionalEncoder(dimension, options), tokens,
            IndexFactory.Create(fdeSpec, options.OutputDimension(dimension), Metric.InnerProduct, buildOptions))
    {
    }

    private MultiVectorIndex(FixedDimensionalEncoder encoder, TokenEncoding tokens, IVectorIndex fdeIndex)
    {
        if (tokens is not (TokenEncoding.F32 or TokenEncoding.F16))
            throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "Unknown token encoding.");
        Encoder = encoder;
        TokenStorage = tokens;
        _fdeIndex = fdeIndex;
    }

    /// <summary>Token dimension d.</summary>
    public int Dimension => Encoder.Dimension;

    /// <summary>The FDE encoder (its options and random parameters).</summary>
    public FixedDimensionalEncoder Encoder { get; }

    /// <summary>How tokens are stored.</summary>
    public TokenEncoding TokenStorage { get; }

    /// <summary>The single-vector index over the documents' FDEs (inner product).</summary>
    public IVectorIndex FdeIndex => _fdeIndex;

    /// <summary>Number of items.</summary>
    public long Count => Volatile.Read(ref _count);

    /// <summary>Tokens over all items.</summary>
    public long TokenCount { get { _lock.EnterRead(); try { return _offsets[_count]; } finally { _lock.ExitRead(); } } }

    /// <summary>True when the FDE index is trained (items can be added).</summary>
    public bool IsTrained => _fdeIndex.IsTrained;

    /// <summary>E.g. <c>MUVERA(ksim=4,dproj=16,reps=20,final=0,fill=1,seed=42),F16|HNSW32</c>: FDE options, token storage, FDE index spec.</summary>
    public string Description => $"{Encoder.Options},{TokenStorage}|{_fdeIndex.Description}";

    /// <summary>Resident bytes: tokens, offsets, ids, the FDE index and the encoder's random parameters.</summary>
    public long MemoryBytes
    {
        get
        {
            var (h, p, fi, fs) = Encoder.Parameters;
            return (long)_f32.Length * 4 + (long)_f16.Length * 2 + (long)_offsets.Length * 4 + (long)_ids.Length * 8 * 3
                + _fdeIndex.MemoryBytes + (h.Length + p.Length + fi.Length + fs.Length) * 4L;
        }
    }

    /// <summary>Trains the FDE index (IVF centroids, codebooks…) on the document FDEs of <paramref name="sample"/>; a no-op for indexes without training.</summary>
    /// <exception cref="ArgumentException">Tokens of another dimension, or too few items for the FDE index's training.</exception>
    public void Train(MultiVectorSet sample, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(sample);
        Encoder.CheckDimension(sample);
        SearchParameters.CheckThreads(threads, nameof(threads));
        var fdes = new float[(long)sample.Count * Encoder.OutputDimension];
        Encoder.EncodeAll(sample, document: true, fdes, 0, threads);
        _lock.EnterWrite();
        try { _fdeIndex.Train(fdes); }
        finally { _lock.ExitWrite(); }
    }

    /// <summary>Adds items with caller-chosen non-negative ids (unique in the index). An empty batch (with no ids) adds
    /// nothing, whatever its <see cref="MultiVectorSet.Dimension"/>, as an empty batch adds nothing to a single-vector index.</summary>
    /// <exception cref="ArgumentException">Tokens of another dimension, a wrong id count, a negative or duplicate id.</exception>
    /// <exception cref="InvalidOperationException">The FDE index is not trained.</exception>
    public void Add(MultiVectorSet items, ReadOnlySpan<long> ids, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(items);
        Encoder.CheckDimension(items);
        SearchParameters.CheckThreads(threads, nameof(threads));
        if (ids.Length != items.Count) throw new ArgumentException($"ids holds {ids.Length} entries for {items.Count} items.", nameof(ids));
        var seen = new HashSet<long>();
        for (int i = 0; i < ids.Length; i++)
        {
            if (ids[i] < 0) throw new ArgumentException($"ids[{i}] = {ids[i]} is negative; ids must be >= 0.", nameof(ids));
            if (!seen.Add(ids[i])) throw new ArgumentException($"ids[{i}] = {ids[i]} appears twice in the batch.", nameof(ids));
        }
        if (TokenStorage == TokenEncoding.F16 && items.TotalTokens > 0 && TensorPrimitives.MaxMagnitude(items.Tokens) > (float)Half.MaxValue)
            throw new ArgumentException($"A token value exceeds the half-precision range (|x| <= {(float)Half.MaxValue}); store tokens as F32 or scale them.", nameof(items));
        int od = Encoder.OutputDimension;
        var fdes = new float[(long)items.Count * od];
        Encoder.EncodeAll(items, document: true, fdes, 0, threads);
        _lock.EnterWrite();
        try
        {
            if (!_fdeIndex.IsTrained) throw new InvalidOperationException($"The FDE index '{_fdeIndex.Description}' is not trained; call Train first.");
            for (int i = 0; i < ids.Length; i++)
                if (_rowOf.ContainsKey(ids[i])) throw new ArgumentException($"ids[{i}] = {ids[i]} is already in the index.", nameof(ids));
            long tokens = (long)_offsets[_count] + items.TotalTokens;
            if (tokens * Dimension > Array.MaxLength) throw new ArgumentException($"The index would hold {tokens} tokens × d={Dimension}, more than one array ({Array.MaxLength}).", nameof(items));
            _fdeIndex.Add(fdes, ids);
            AppendTokens(items.Tokens, (int)tokens);
            int n = _count + items.Count;
            EnsureRows(n);
            for (int i = 0; i < items.Count; i++)
            {
                _offsets[_count + i + 1] = _offsets[_count + i] + items.TokenCount(i);
                _ids[_count + i] = ids[i];
                _rowOf[ids[i]] = _count + i;
            }
            Volatile.Write(ref _count, n);
        }
        finally { _lock.ExitWrite(); }
    }

    /// <summary>Trains (when needed) and adds <paramref name="items"/> with ids 0..n−1.</summary>
    public void Build(MultiVectorSet items, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (!IsTrained) Train(items, threads);
        var ids = new long[items.Count];
        for (int i = 0; i < ids.Length; i++) ids[i] = i;
        Add(items, ids, threads);
    }

    /// <summary>Copies the tokens of item <paramref name="id"/> (decoded to float) into a new array; null when absent.</summary>
    public float[]? GetTokens(long id)
    {
        _lock.EnterRead();
        try
        {
            if (!_rowOf.TryGetValue(id, out int row)) return null;
            var result = new float[(_offsets[row + 1] - _offsets[row]) * Dimension];
            int from = _offsets[row] * Dimension;
            if (TokenStorage == TokenEncoding.F32) _f32.AsSpan(from, result.Length).CopyTo(result);
            else TensorPrimitives.ConvertToSingle(_f16.AsSpan(from, result.Length), result);
            return result;
        }
        finally { _lock.ExitRead(); }
    }

    private void AppendTokens(ReadOnlySpan<float> tokens, int totalTokens)
    {
        int from = _offsets[_count] * Dimension, need = totalTokens * Dimension;
        if (TokenStorage == TokenEncoding.F32)
        {
            if (_f32.Length < need) Array.Resize(ref _f32, Grow(_f32.Length, need));
            tokens.CopyTo(_f32.AsSpan(from));
        }
        else
        {
            if (_f16.Length < need) Array.Resize(ref _f16, Grow(_f16.Length, need));
            TensorPrimitives.ConvertToHalf(tokens, _f16.AsSpan(from, tokens.Length));
        }
    }

    private void EnsureRows(int rows)
    {
        if (_ids.Length < rows) Array.Resize(ref _ids, Grow(_ids.Length, rows));
        if (_offsets.Length < rows + 1) Array.Resize(ref _offsets, Grow(_offsets.Length, rows + 1));
    }

    private static int Grow(int have, int need) => (int)Math.Min(Array.MaxLength, Math.Max(need, (long)have * 3 / 2 + 16));

    /// <summary>Chamfer similarity of <paramref name="query"/> (n × d) with stored row <paramref name="row"/> (caller holds the read lock).</summary>
    private float ChamferWithRow(ReadOnlySpan<float> query, int row)
    {
        int from = _offsets[row] * Dimension, length = (_offsets[row + 1] - _offsets[row]) * Dimension;
        return TokenStorage == TokenEncoding.F32
            ? Distance.Distances.Chamfer(query, _f32.AsSpan(from, length), Dimension)
            : Distance.Distances.Chamfer(query, _f16.AsSpan(from, length), Dimension);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _lock.Close(() => _fdeIndex.Dispose());
    }
}
