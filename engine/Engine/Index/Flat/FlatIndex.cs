using System.Buffers;
using Engine.Distance;
using Engine.Runtime;

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

    // Rows live in blocks of 2^_blockShift rows (at most 1 GiB each), so an index may hold more than the 2^31 − 1
    // floats of one .NET array (10 M × 384 is 3.84 × 10⁹) and grows without copying full blocks; only the last
    // block grows by doubling. Scans never cross a block boundary.
    internal const long BlockFloats = 1L << 28;

    private readonly int _corpusBlock;
    private readonly int _blockShift;
    private readonly IndexLock _lock = new(nameof(FlatIndex));
    private readonly ScratchPool<FlatScratch> _scratch = new(() => new FlatScratch());
    private float[][] _blocks = [];
    private float[] _norms = [];
    private long[] _ids = [];
    private readonly Dictionary<long, int> _rowOf = new();
    private int _count;

    /// <summary>Creates an empty exact index.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Dimension is not positive.</exception>
    public FlatIndex(int dimension, Metric metric = Metric.L2) : this(dimension, metric, BlockFloats) { }

    /// <summary>An index whose row blocks hold about <paramref name="blockFloats"/> floats (tests use tiny blocks).</summary>
    internal FlatIndex(int dimension, Metric metric, long blockFloats)
    {
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        if (!Enum.IsDefined(metric)) throw new ArgumentOutOfRangeException(nameof(metric), metric, "Unknown metric.");
        Dimension = dimension;
        Metric = metric;
        _corpusBlock = Math.Clamp(CorpusBlockBytes / (dimension * sizeof(float)), 64, MaxCorpusBlock);
        long rows = Math.Max(1, blockFloats / dimension);
        _blockShift = 63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)rows); // largest power of two ≤ rows
    }

    private int BlockRows => 1 << _blockShift;

    /// <summary>Row <paramref name="row"/>'s d floats.</summary>
    private Span<float> Row(int row) => _blocks[row >> _blockShift].AsSpan((row & (BlockRows - 1)) * Dimension, Dimension);

    /// <summary><paramref name="count"/> consecutive rows from <paramref name="start"/>, which must not cross a block boundary.</summary>
    private Span<float> RowRange(int start, int count) =>
        _blocks[start >> _blockShift].AsSpan((start & (BlockRows - 1)) * Dimension, count * Dimension);

    /// <summary>How many rows from <paramref name="start"/> lie in its block.</summary>
    private int RowsInBlockFrom(int start) => BlockRows - (start & (BlockRows - 1));

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
            _lock.EnterRead();
            try
            {
                // Capacity is what is resident; the id map costs about 24 bytes per entry.
                long floats = 0;
                foreach (var b in _blocks) floats += b.Length;
                return floats * sizeof(float) + (long)_norms.Length * sizeof(float)
                    + (long)_ids.Length * sizeof(long) + (long)_rowOf.Count * 24;
            }
            finally { _lock.ExitRead(); }
        }
    }

    /// <summary>Read-only view of the stored rows (count × d) when they fit one block. Valid until the next mutation; for
    /// kernels, device copies and tests.</summary>
    /// <exception cref="NotSupportedException">The rows span several blocks (more than <see cref="BlockFloats"/> floats).</exception>
    internal ReadOnlySpan<float> Vectors => _count == 0 ? ReadOnlySpan<float>.Empty : _count <= BlockRows
        ? _blocks[0].AsSpan(0, _count * Dimension)
        : throw new NotSupportedException($"This Flat index holds {_count} × {Dimension} floats in {(_count + BlockRows - 1) / BlockRows} blocks; a single contiguous view holds at most {BlockRows} rows.");

    /// <summary>All stored rows (count × d) as one span: the block itself when there is one, else a copy.</summary>
    /// <exception cref="NotSupportedException">More than one .NET array can hold (2³¹ − 1 floats).</exception>
    internal ReadOnlySpan<float> ContiguousVectors()
    {
        if (_count <= BlockRows) return Vectors;
        long floats = (long)_count * Dimension;
        if (floats > Array.MaxLength)
            throw new NotSupportedException($"This Flat index holds {_count} × {Dimension} = {floats} floats; one contiguous copy holds at most {Array.MaxLength}.");
        var all = GC.AllocateUninitializedArray<float>((int)floats);
        for (int r0 = 0, m; r0 < _count; r0 += m)
        {
            m = Math.Min(_count - r0, RowsInBlockFrom(r0));
            RowRange(r0, m).CopyTo(all.AsSpan(r0 * Dimension));
        }
        return all;
    }

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
        _lock.EnterWrite();
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
            if (newCount > Array.MaxLength)
                throw new InvalidOperationException($"FlatIndex capacity exceeded: {newCount} vectors (at most {Array.MaxLength}).");
            EnsureCapacity((int)newCount);
            int d = Dimension;
            for (int done = 0; done < n;)
            {
                int row0 = _count + done, m = Math.Min(n - done, RowsInBlockFrom(row0));
                var dst = RowRange(row0, m);
                vectors.Slice(done * d, m * d).CopyTo(dst);
                for (int i = 0; i < m; i++)
                {
                    var row = dst.Slice(i * d, d);
                    if (Metric == Metric.Cosine) Distances.NormalizeInPlace(row);
                    _norms[row0 + i] = Distances.SquaredNorm(row);
                    _ids[row0 + i] = ids[done + i];
                    _rowOf[ids[done + i]] = row0 + i;
                }
                done += m;
            }
            Volatile.Write(ref _count, (int)newCount);
        }
        finally { _lock.ExitWrite(); }
    }

    /// <inheritdoc />
    public int Remove(ReadOnlySpan<long> ids)
    {
        _lock.EnterWrite();
        try
        {
            int removed = 0, d = Dimension;
            foreach (long id in ids)
            {
                if (!_rowOf.Remove(id, out int row)) continue;
                int last = _count - 1;
                if (row != last)
                {
                    Row(last).CopyTo(Row(row));
                    _norms[row] = _norms[last];
                    _ids[row] = _ids[last];
                    _rowOf[_ids[row]] = row;
                }
                _count = last;
                removed++;
            }
            return removed;
        }
        finally { _lock.ExitWrite(); }
    }

    /// <inheritdoc />
    public bool TryReconstruct(long id, Span<float> destination)
    {
        if (destination.Length < Dimension)
            throw new ArgumentException($"destination holds {destination.Length} floats; the index dimension is {Dimension}.", nameof(destination));
        _lock.EnterRead();
        try
        {
            if (!_rowOf.TryGetValue(id, out int row)) return false;
            Row(row).CopyTo(destination);
            return true;
        }
        finally { _lock.ExitRead(); }
    }

    /// <summary>True when <paramref name="id"/> is stored.</summary>
    public bool Contains(long id)
    {
        _lock.EnterRead();
        try { return _rowOf.ContainsKey(id); }
        finally { _lock.ExitRead(); }
    }

    private void EnsureCapacity(int rows)
    {
        if (_ids.Length >= rows) return;
        int cap = (int)Math.Min(Array.MaxLength, Math.Max(rows, Math.Max(16, _ids.Length * 2L)));
        Array.Resize(ref _norms, cap);
        Array.Resize(ref _ids, cap);
        // Full blocks stay where they are; the last one grows by doubling until it is full, then new ones follow.
        int need = (cap + BlockRows - 1) >> _blockShift;
        int old = _blocks.Length;
        if (need > old) Array.Resize(ref _blocks, need);
        for (int b = Math.Max(0, old - 1); b < need; b++)
        {
            int rowsHere = (int)Math.Min(BlockRows, cap - ((long)b << _blockShift));
            if (_blocks[b] is { } have && have.Length >= rowsHere * Dimension) continue;
            var grown = new float[(long)rowsHere * Dimension];
            _blocks[b]?.CopyTo(grown, 0);
            _blocks[b] = grown;
        }
    }

    /// <summary>Allocates blocks for exactly <paramref name="rows"/> rows (a load: no spare capacity).</summary>
    private void AllocateExactly(int rows)
    {
        _norms = new float[rows];
        _ids = new long[rows];
        int need = (rows + BlockRows - 1) >> _blockShift;
        _blocks = new float[need][];
        for (int b = 0; b < need; b++)
            _blocks[b] = new float[(long)Math.Min(BlockRows, rows - ((long)b << _blockShift)) * Dimension];
    }

    /// <inheritdoc />
    public void Dispose() => _lock.Close(() => { });
}
