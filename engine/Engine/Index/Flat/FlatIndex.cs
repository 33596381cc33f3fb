using System.Buffers;
using Engine.Distance;

namespace Engine.Index.Flat;

/// <summary>
/// Exact (brute-force) index: stores full-precision vectors and scans all of them.
/// </summary>
/// <remarks>
/// <para>Design: vectors live in one contiguous row-major array with their squared norms beside them, so a
/// batch of queries is answered like a small GEMM (<see cref="Distances.DotManyToMany"/>) over cache-sized
/// blocks, with ‖q‖² + ‖x‖² − 2 q·x for L2; a few queries are answered by a bandwidth-bound one-to-many scan.
/// Large batches are split over queries, small ones over the corpus (each thread scans a shard, heaps merge).</para>
/// <para>Ids are caller-chosen and unique; <see cref="Remove"/> moves the last row into the hole (O(d)).
/// Cosine vectors are normalised on insertion and queries on search, so cosine is inner product inside.</para>
/// <para>Thread safety: any number of concurrent searches; mutations take an exclusive lock and wait for
/// running searches, so a search never sees a half-applied mutation.</para>
/// </remarks>
public sealed partial class FlatIndex : IVectorIndex
{
    // A query block is reused against every corpus block, and a corpus block against every query in the block: with
    // 128 queries per pass the corpus streams from DRAM once per 128 queries (not once per 32), and a corpus block of
    // ~512 KB stays in L2 while the GEMM walks the queries.
    internal const int QueryBlock = 128;
    internal const int CorpusBlockBytes = 512 * 1024;
    internal const int MaxCorpusBlock = 1024;
    private const int OneToManyMaxQueries = 4;

    private readonly int _corpusBlock;
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private float[] _data = [];
    private float[] _norms = [];
    private long[] _ids = [];
    private readonly Dictionary<long, int> _rowOf = new();
    private int _count;

    /// <summary>Creates an empty exact index.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Dimension is not positive.</exception>
    public FlatIndex(int dimension, Metric metric = Metric.L2)
    {
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        if (!Enum.IsDefined(metric)) throw new ArgumentOutOfRangeException(nameof(metric), metric, "Unknown metric.");
        Dimension = dimension;
        Metric = metric;
        _corpusBlock = Math.Clamp(CorpusBlockBytes / (dimension * sizeof(float)), 64, MaxCorpusBlock);
    }

    /// <inheritdoc />
    public int Dimension { get; }

    /// <inheritdoc />
    public Metric Metric { get; }

    /// <inheritdoc />
    public long Count => Volatile.Read(ref _count);

    /// <inheritdoc />
    public bool IsTrained => true;

    /// <inheritdoc />
    public string Description => "Flat";

    /// <inheritdoc />
    public long MemoryBytes
    {
        get
        {
            _lock.EnterReadLock();
            try
            {
                // Capacity is what is resident; the id map costs about 24 bytes per entry.
                return (long)_data.Length * sizeof(float) + (long)_norms.Length * sizeof(float)
                    + (long)_ids.Length * sizeof(long) + (long)_rowOf.Count * 24;
            }
            finally { _lock.ExitReadLock(); }
        }
    }

    /// <summary>Read-only view of the stored rows (count × d). Valid until the next mutation; for kernels and tests.</summary>
    internal ReadOnlySpan<float> Vectors => _data.AsSpan(0, _count * Dimension);

    /// <summary>The id stored in each row (count).</summary>
    internal ReadOnlySpan<long> RowIds => _ids.AsSpan(0, _count);

    /// <summary>An exact index needs no training; the call only validates its input.</summary>
    public void Train(ReadOnlySpan<float> vectors)
    {
        Guard.Rows(vectors, Dimension, nameof(vectors));
        Guard.Finite(vectors, Dimension, nameof(vectors));
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">Wrong dimension, non-finite values, negative or duplicate ids.</exception>
    public void Add(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids)
    {
        int n = Guard.Rows(vectors, Dimension, nameof(vectors));
        Guard.Ids(ids, n);
        Guard.Finite(vectors, Dimension, nameof(vectors));
        if (n == 0) return;
        _lock.EnterWriteLock();
        try
        {
            // Validate every id before touching state, so a rejected call changes nothing.
            var seen = new HashSet<long>();
            for (int i = 0; i < n; i++)
            {
                if (_rowOf.ContainsKey(ids[i]) || !seen.Add(ids[i]))
                    throw new ArgumentException($"Id {ids[i]} is already present; ids must be unique (remove it first to replace the vector).", nameof(ids));
            }
            long newCount = (long)_count + n;
            if (newCount * Dimension > Array.MaxLength)
                throw new InvalidOperationException($"FlatIndex capacity exceeded: {newCount} vectors of dimension {Dimension} do not fit one array.");
            EnsureCapacity((int)newCount);
            int d = Dimension;
            var dst = _data.AsSpan(_count * d, n * d);
            vectors.CopyTo(dst);
            for (int i = 0; i < n; i++)
            {
                var row = dst.Slice(i * d, d);
                if (Metric == Metric.Cosine) NormalizeInPlace(row);
                _norms[_count + i] = Distances.SquaredNorm(row);
                _ids[_count + i] = ids[i];
                _rowOf[ids[i]] = _count + i;
            }
            Volatile.Write(ref _count, (int)newCount);
        }
        finally { _lock.ExitWriteLock(); }
    }

    /// <inheritdoc />
    public int Remove(ReadOnlySpan<long> ids)
    {
        _lock.EnterWriteLock();
        try
        {
            int removed = 0, d = Dimension;
            foreach (long id in ids)
            {
                if (!_rowOf.Remove(id, out int row)) continue;
                int last = _count - 1;
                if (row != last)
                {
                    _data.AsSpan(last * d, d).CopyTo(_data.AsSpan(row * d, d));
                    _norms[row] = _norms[last];
                    _ids[row] = _ids[last];
                    _rowOf[_ids[row]] = row;
                }
                _count = last;
                removed++;
            }
            return removed;
        }
        finally { _lock.ExitWriteLock(); }
    }

    /// <inheritdoc />
    public bool TryReconstruct(long id, Span<float> destination)
    {
        if (destination.Length < Dimension)
            throw new ArgumentException($"destination holds {destination.Length} floats; the index dimension is {Dimension}.", nameof(destination));
        _lock.EnterReadLock();
        try
        {
            if (!_rowOf.TryGetValue(id, out int row)) return false;
            _data.AsSpan(row * Dimension, Dimension).CopyTo(destination);
            return true;
        }
        finally { _lock.ExitReadLock(); }
    }

    /// <summary>True when <paramref name="id"/> is stored.</summary>
    public bool Contains(long id)
    {
        _lock.EnterReadLock();
        try { return _rowOf.ContainsKey(id); }
        finally { _lock.ExitReadLock(); }
    }

    private void EnsureCapacity(int rows)
    {
        if (_ids.Length >= rows) return;
        int cap = Math.Max(rows, Math.Max(16, (int)Math.Min(Array.MaxLength / Dimension, _ids.Length * 2L)));
        Array.Resize(ref _data, cap * Dimension);
        Array.Resize(ref _norms, cap);
        Array.Resize(ref _ids, cap);
    }

    internal static void NormalizeInPlace(Span<float> v) => Distances.NormalizeInPlace(v);

    /// <inheritdoc />
    public void Dispose() => _lock.Dispose();
}
