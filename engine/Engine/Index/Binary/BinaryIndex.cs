using System.Numerics.Tensors;
using Engine.Distance;
using Engine.Quantization;

namespace Engine.Index.Binary;

/// <summary>
/// Binary-code index of the Flat family (<c>BIN{b}[,RFlat]</c>): every vector is kept as a <see cref="BinaryCodec"/>
/// code (b bits per dimension, residual binarisation) and scanned exhaustively by popcount estimators (asymmetric by
/// default, symmetric per call), optionally re-ranked with an exact store (<c>RFlat</c>, <c>Refine(F16|SQ8)</c>).
/// </summary>
/// <remarks>Cosine vectors are normalised on entry. Searches run concurrently; mutations take the write lock.
/// <see cref="Remove"/> moves the last row into the hole.</remarks>
public sealed partial class BinaryIndex : IVectorIndex
{
    private readonly IndexLock _lock = new(nameof(BinaryIndex));
    private readonly Engine.Runtime.ScratchPool<BinaryScratch> _scratch = new(() => new BinaryScratch());
    private readonly BinaryCodec _codec;
    private readonly VectorCodec? _refine;
    private byte[] _codes = [];
    private byte[] _refineCodes = [];
    private long[] _ids = [];
    private int _count;
    private readonly Dictionary<long, int> _rowOf = [];

    /// <summary>Creates an empty, untrained index.</summary>
    /// <exception cref="ArgumentException">Bad dimension or metric.</exception>
    public BinaryIndex(BinarySpec spec, int dimension, Metric metric = Metric.L2)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (!Enum.IsDefined(metric)) throw new ArgumentOutOfRangeException(nameof(metric), metric, "Unknown metric.");
        Spec = spec;
        Metric = metric;
        _codec = new BinaryCodec(dimension, spec.Bits);
        if (spec.Refine is { } r) _refine = new VectorCodec(dimension, r);
    }

    /// <summary>The parsed composition.</summary>
    public BinarySpec Spec { get; }

    /// <summary>The codec (its bits, words and learnt parameters).</summary>
    public BinaryCodec Codec => _codec;

    /// <inheritdoc />
    public int Dimension => _codec.Dimension;

    /// <inheritdoc />
    public Metric Metric { get; }

    /// <inheritdoc />
    public long Count => Volatile.Read(ref _count);

    /// <inheritdoc />
    public bool IsTrained => _codec.IsTrained && (_refine?.IsTrained ?? true);

    /// <inheritdoc />
    public string Description => Spec.ToString();

    /// <summary>Bytes per vector: the binary code plus the refine code (the id map is not counted).</summary>
    public int BytesPerVector => _codec.CodeSize + (_refine?.CodeSize ?? 0);

    /// <inheritdoc />
    public long MemoryBytes => _codes.LongLength + _refineCodes.LongLength + _ids.LongLength * 8 * 3 + (Dimension + Spec.Bits) * 4L;

    /// <inheritdoc />
    /// <exception cref="ArgumentException">No rows, wrong shapes or non-finite values.</exception>
    public void Train(ReadOnlySpan<float> vectors)
    {
        int n = Guard.Rows(vectors, Dimension, nameof(vectors));
        if (n == 0) throw new ArgumentException("Training a binary index needs at least one vector.", nameof(vectors));
        Guard.Finite(vectors, Dimension, nameof(vectors));
        var x = Entry(vectors);
        _lock.EnterWrite();
        try
        {
            _codec.Train(x, seed: 1234, threads: 0);
            _refine?.Train(x);
            _scratch.Clear(); // pooled estimators hold parameters of the old training (the symmetric one its mean norm)
        }
        finally { _lock.ExitWrite(); }
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">Wrong shapes, non-finite values, negative or duplicate ids.</exception>
    /// <exception cref="InvalidOperationException">The index is not trained.</exception>
    public void Add(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids)
    {
        int n = Guard.Rows(vectors, Dimension, nameof(vectors));
        if (ids.Length != n) throw new ArgumentException($"ids holds {ids.Length} entries for {n} vectors.", nameof(ids));
        Guard.Finite(vectors, Dimension, nameof(vectors));
        var seen = new HashSet<long>();
        for (int i = 0; i < n; i++)
        {
            if (ids[i] < 0) throw new ArgumentException($"ids[{i}] = {ids[i]} is negative; ids must be >= 0.", nameof(ids));
            if (!seen.Add(ids[i])) throw new ArgumentException($"ids[{i}] = {ids[i]} appears twice in the batch.", nameof(ids));
        }
        if (!IsTrained) throw new InvalidOperationException($"The '{Description}' index is not trained; call Train first.");
        var x = Entry(vectors);
        var codes = new byte[(long)n * _codec.CodeSize];
        _codec.Encode(x, codes);
        var refine = _refine is null ? [] : new byte[(long)n * _refine.CodeSize];
        if (_refine is not null && n > 0) _refine.Encode(x, refine);
        _lock.EnterWrite();
        try
        {
            for (int i = 0; i < n; i++)
                if (_rowOf.ContainsKey(ids[i])) throw new ArgumentException($"ids[{i}] = {ids[i]} is already in the index.", nameof(ids));
            int total = checked(_count + n);
            if ((long)total * BytesPerVector > Array.MaxLength) throw new ArgumentException($"The index would hold {total} codes, more than one array allows.", nameof(vectors));
            Grow(ref _codes, (long)total * _codec.CodeSize);
            codes.CopyTo(_codes.AsSpan(_count * _codec.CodeSize));
            if (_refine is not null)
            {
                Grow(ref _refineCodes, (long)total * _refine.CodeSize);
                refine.CopyTo(_refineCodes.AsSpan(_count * _refine.CodeSize));
            }
            if (_ids.Length < total) Array.Resize(ref _ids, (int)Math.Max(total, Math.Min(Array.MaxLength, _ids.Length * 3L / 2 + 16)));
            for (int i = 0; i < n; i++) { _ids[_count + i] = ids[i]; _rowOf[ids[i]] = _count + i; }
            Volatile.Write(ref _count, total);
        }
        finally { _lock.ExitWrite(); }
    }

    private static void Grow(ref byte[] array, long need)
    {
        if (array.LongLength >= need) return;
        Array.Resize(ref array, (int)Math.Min(Array.MaxLength, Math.Max(need, array.LongLength * 3 / 2 + 1024)));
    }

    /// <inheritdoc />
    public int Remove(ReadOnlySpan<long> ids)
    {
        _lock.EnterWrite();
        try
        {
            int removed = 0, cs = _codec.CodeSize, rs = _refine?.CodeSize ?? 0;
            foreach (long id in ids)
            {
                if (!_rowOf.Remove(id, out int row)) continue;
                int last = _count - 1;
                if (row != last)
                {
                    _codes.AsSpan(last * cs, cs).CopyTo(_codes.AsSpan(row * cs, cs));
                    if (rs > 0) _refineCodes.AsSpan(last * rs, rs).CopyTo(_refineCodes.AsSpan(row * rs, rs));
                    _ids[row] = _ids[last];
                    _rowOf[_ids[row]] = row;
                }
                Volatile.Write(ref _count, last);
                removed++;
            }
            return removed;
        }
        finally { _lock.ExitWrite(); }
    }

    /// <inheritdoc />
    /// <remarks>The refine store's vector when there is one, else the binary reconstruction. Cosine vectors come back normalised.</remarks>
    public bool TryReconstruct(long id, Span<float> destination)
    {
        if (destination.Length < Dimension) throw new ArgumentException($"destination must hold d={Dimension} floats.", nameof(destination));
        _lock.EnterRead();
        try
        {
            if (!_rowOf.TryGetValue(id, out int row)) return false;
            if (_refine is not null) _refine.Decode(_refineCodes.AsSpan(row * _refine.CodeSize, _refine.CodeSize), destination[..Dimension]);
            else _codec.Decode(_codes.AsSpan(row * _codec.CodeSize, _codec.CodeSize), destination[..Dimension]);
            return true;
        }
        finally { _lock.ExitRead(); }
    }

    /// <summary>The rows as the index sees them: a copy normalised for cosine, the input itself otherwise.</summary>
    private ReadOnlySpan<float> Entry(ReadOnlySpan<float> vectors)
    {
        if (Metric != Metric.Cosine) return vectors;
        var x = vectors.ToArray();
        for (int i = 0; i < x.Length; i += Dimension)
        {
            var row = x.AsSpan(i, Dimension);
            float norm = MathF.Sqrt(TensorPrimitives.Dot(row, row));
            if (norm > 0) TensorPrimitives.Multiply(row, 1 / norm, row);
        }
        return x;
    }

    /// <inheritdoc />
    public void Dispose() => _lock.Close(() => { });
}
