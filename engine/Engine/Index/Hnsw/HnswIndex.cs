using System.Runtime.CompilerServices;
using Engine.Distance;
using Engine.Quantization;
using Engine.Runtime;

namespace Engine.Index.Hnsw;

/// <summary>How a node's neighbours are chosen from the candidates a layer search found.</summary>
public enum NeighborSelection
{
    /// <summary>
    /// The paper's heuristic (Malkov &amp; Yashunin, algorithm 4): a candidate is kept only when it is closer to the
    /// node than to every neighbour kept so far, which keeps links pointing in diverse directions (what makes
    /// clustered data reachable).
    /// </summary>
    Heuristic = 0,

    /// <summary>The M closest candidates (algorithm 3); for comparison.</summary>
    Simple = 1,
}

/// <summary>
/// Hierarchical navigable small world graph (Malkov &amp; Yashunin 2016), the in-memory graph index of hnswlib and
/// faiss <c>IndexHNSW</c>: every vector is a node on level 0 and, with probability falling by a factor M per level
/// (mL = 1/ln M), on higher levels; a search descends greedily from the top level's entry point and runs a
/// best-first search with a candidate list of ef on level 0.
/// </summary>
/// <remarks>
/// <para>Layout (tuned for the search loop): vectors in one contiguous array (f32, f16 or SQ8 rows); level-0 links
/// in one contiguous int array, 1 + 2M ints per node (count, then the slots); upper-level links in one small array
/// per node that has them (1 + M ints per level). A query expands a node by gathering its unvisited neighbours
/// (visited set with epoch tags, no clearing), prefetching their rows, then computing their distances; buffers
/// live in pooled per-thread scratch, so a query allocates nothing after warm-up.</para>
/// <para>Mutations are serialised by a writer lock. <see cref="Add(ReadOnlySpan{float}, ReadOnlySpan{long})"/> first places the batch's vectors in free
/// slots (a short exclusive section that waits for running searches), then links them with no global lock —
/// in parallel over <see cref="BuildThreads"/> with fine-grained per-node locks — while searches continue. A
/// node is linked on all its levels before any other node links to it or it becomes the entry point, so a search
/// never reaches a half-linked node. A single-threaded build is deterministic for a <see cref="Seed"/>.</para>
/// <para><see cref="Remove"/> marks nodes deleted (no longer returned, still traversed). When tombstones pass
/// <see cref="RepairThreshold"/> of the slots, or on <see cref="Maintain"/>, every live node that links to a
/// deleted one is re-linked from its live neighbours and the deleted nodes' neighbours (heuristic selection), the
/// entry point moves to a live node, and the deleted slots are reused by later inserts.</para>
/// <para>Thread safety: any number of concurrent searches, concurrent with one writer.</para>
/// </remarks>
public sealed partial class HnswIndex : IVectorIndex
{
    internal const byte Live = 0, Deleted = 1, Free = 2;

    /// <summary>The highest level a node can be drawn on.</summary>
    internal const int MaxLevel = 31;

    private readonly HnswVectors _vectors;
    private readonly int _m, _m0, _stride0;
    private readonly double _mL;
    private int[] _links0 = [];
    private int[]?[] _upper = [];
    private int[] _levels = [];
    private long[] _ids = [];
    // Attribute per slot; null while no node has one (NaN = no attribute), so an index without attributes pays nothing.
    private double[]? _attrs;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private double Attribute(int node) => _attrs is { } a ? a[node] : double.NaN;
    private byte[] _state = [];
    private int _slots;
    private readonly List<int> _free = new(); // descending, so the smallest free slot is taken first
    private readonly Dictionary<long, int> _nodeOf = new();
    private readonly Lock _mapLock = new();
    private readonly Lock _writer = new();
    private readonly Lock _entryLock = new();
    private readonly IndexLock _resize = new(nameof(HnswIndex));
    private readonly Lock[] _nodeLocks;
    private readonly ScratchPool<HnswScratch> _pool;
    private Random? _levelRng;
    private long _entry = EmptyEntry;
    private int _count;
    private int _tombstones;
    private int _defaultEf = 64;
    private double _repairThreshold = 0.1;
    private int _disposed;
    private Storage.Format.IndexFileMapping? _mapping;

    private const long EmptyEntry = -1L;

    /// <summary>Creates an empty index for <paramref name="spec"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Dimension not positive or unknown metric.</exception>
    public HnswIndex(HnswSpec spec, int dimension, Metric metric = Metric.L2)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        if (!Enum.IsDefined(metric)) throw new ArgumentOutOfRangeException(nameof(metric), metric, "Unknown metric.");
        if (spec.M < 2 || spec.M > HnswSpec.MaxM) throw new ArgumentOutOfRangeException(nameof(spec), spec.M, $"M must be in 2..{HnswSpec.MaxM}.");
        if (spec.EfConstruction < 1 || spec.EfConstruction > HnswSpec.MaxEfConstruction)
            throw new ArgumentOutOfRangeException(nameof(spec), spec.EfConstruction, $"efConstruction must be in 1..{HnswSpec.MaxEfConstruction}.");
        Spec = spec;
        Dimension = dimension;
        Metric = metric;
        _m = spec.M;
        _m0 = 2 * spec.M;
        _stride0 = 1 + _m0;
        _mL = 1.0 / Math.Log(spec.M);
        _vectors = new HnswVectors(dimension, spec.Storage, metric != Metric.L2);
        _pool = new ScratchPool<HnswScratch>(() => new HnswScratch(Dimension, _m0));
        _nodeLocks = new Lock[1024];
        for (int i = 0; i < _nodeLocks.Length; i++) _nodeLocks[i] = new Lock();
    }

    /// <summary>Parses <paramref name="spec"/> (e.g. <c>HNSW32,efC100</c>) and creates the index.</summary>
    public HnswIndex(string spec, int dimension, Metric metric = Metric.L2) : this(HnswSpec.Parse(spec), dimension, metric) { }

    /// <summary>The parsed composition.</summary>
    public HnswSpec Spec { get; }

    /// <inheritdoc />
    public int Dimension { get; }

    /// <inheritdoc />
    public Metric Metric { get; }

    /// <inheritdoc />
    public long Count => Volatile.Read(ref _count);

    /// <summary>True when the vector storage is ready (SQ8 needs <see cref="Train"/>; f32 and f16 always are).</summary>
    public bool IsTrained => _vectors.Codec.IsTrained;

    /// <inheritdoc />
    public string Description => _description ??= Spec.ToString(); // the spec never changes; searches name it without allocating

    private string? _description;

    /// <summary>Seed of the level draws; with <see cref="BuildThreads"/> = 1 the graph is a function of it and the insert order. Default 100.</summary>
    public int Seed { get; init; } = 100;

    /// <summary>Threads that link a batch of inserts; 0 means all processors, 1 a deterministic sequential build.</summary>
    public int BuildThreads { get; init; }

    /// <summary>Neighbour selection (default: the paper's heuristic).</summary>
    public NeighborSelection Selection { get; init; } = NeighborSelection.Heuristic;

    /// <summary>Heuristic option: fill up to M links with the closest pruned candidates (the paper's keepPrunedConnections).</summary>
    public bool KeepPrunedConnections { get; init; }

    /// <summary>Heuristic option: add the candidates' own neighbours to the candidate set (the paper's extendCandidates).</summary>
    public bool ExtendCandidates { get; init; }

    /// <summary>ef used when a call does not set <see cref="HnswSearchParameters.Ef"/>, 1..<see cref="HnswSearchParameters.MaxEf"/>. Default 64.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside 1..<see cref="HnswSearchParameters.MaxEf"/>.</exception>
    public int DefaultEf
    {
        get => _defaultEf;
        set
        {
            if (value < 1 || value > HnswSearchParameters.MaxEf)
                throw new ArgumentOutOfRangeException(nameof(DefaultEf), value, $"DefaultEf must be in 1..{HnswSearchParameters.MaxEf}.");
            _defaultEf = value;
        }
    }

    /// <summary>Fraction of slots holding deleted nodes above which <see cref="Remove"/> repairs the graph (0..1, default 0.1; 1 = only <see cref="Maintain"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside 0..1.</exception>
    public double RepairThreshold
    {
        get => _repairThreshold;
        set
        {
            if (!(value >= 0 && value <= 1))
                throw new ArgumentOutOfRangeException(nameof(RepairThreshold), value, "RepairThreshold must be in 0..1.");
            _repairThreshold = value;
        }
    }

    /// <summary>True while the vectors are read in place from the file mapping of a mapped load.</summary>
    public bool IsMapped => Volatile.Read(ref _mapping) is not null;

    /// <summary>Bytes of vectors read in place from the file mapping (OS page cache, not heap; not in <see cref="MemoryBytes"/>).</summary>
    public long MappedBytes => _vectors.MappedBytes;

    /// <summary>Deleted nodes still in the graph (not yet repaired away).</summary>
    public int DeletedCount => Volatile.Read(ref _tombstones);

    /// <summary>The level of the entry point (-1 when empty).</summary>
    public int TopLevel => EntryLevel(Volatile.Read(ref _entry));

    /// <inheritdoc />
    /// <remarks>Heap memory: vectors (unless mapped), links, ids, attributes, levels, states and the id map.</remarks>
    public long MemoryBytes
    {
        get
        {
            _resize.EnterRead();
            try
            {
                long b = _vectors.MemoryBytes + (long)_links0.Length * 4 + (long)_levels.Length * 4 + (long)_ids.Length * 8 + (_attrs?.LongLength ?? 0) * 8
                    + _state.Length + (long)_upper.Length * 8;
                for (int i = 0; i < _slots; i++) if (_upper[i] is { } u) b += 24 + u.Length * 4L;
                lock (_mapLock) b += _nodeOf.Count * 24L;
                return b;
            }
            finally { _resize.ExitRead(); }
        }
    }

    /// <summary>Learns the SQ8 range (for <c>,SQ8</c> storage) from n × d rows; for f32 and f16 it only validates them.</summary>
    /// <exception cref="InvalidOperationException">SQ8 storage and the index already holds vectors.</exception>
    public void Train(ReadOnlySpan<float> vectors)
    {
        int n = Guard.Rows(vectors, Dimension, nameof(vectors));
        Guard.Finite(vectors, Dimension, nameof(vectors));
        if (Spec.Storage != VectorEncoding.SQ8) return;
        lock (_writer)
        {
            if (_slots > 0) throw new InvalidOperationException("The index already holds vectors; create a new index to retrain.");
            if (n == 0) throw new ArgumentException("SQ8 training needs at least one vector.", nameof(vectors));
            if (Metric == Metric.Cosine)
            {
                var copy = vectors.ToArray();
                for (int i = 0; i < n; i++) Distances.NormalizeInPlace(copy.AsSpan(i * Dimension, Dimension));
                _vectors.Codec.Train(copy);
            }
            else _vectors.Codec.Train(vectors);
        }
    }

    /// <inheritdoc />
    /// <remarks>f16 and SQ8 storage return the decoded vector; cosine vectors come back normalised.</remarks>
    public bool TryReconstruct(long id, Span<float> destination)
    {
        if (destination.Length < Dimension)
            throw new ArgumentException($"destination holds {destination.Length} floats; the index dimension is {Dimension}.", nameof(destination));
        _resize.EnterRead();
        try
        {
            int node;
            lock (_mapLock) if (!_nodeOf.TryGetValue(id, out node)) return false;
            _vectors.Get(node, destination);
            return true;
        }
        finally { _resize.ExitRead(); }
    }

    /// <summary>True when <paramref name="id"/> is stored (and not removed).</summary>
    public bool Contains(long id)
    {
        lock (_mapLock) return _nodeOf.ContainsKey(id);
    }

    /// <summary>Level-0 out-degree of every live node (diagnostics and tests).</summary>
    internal int[] Degrees()
    {
        var result = new List<int>();
        for (int i = 0; i < _slots; i++) if (_state[i] == Live) result.Add(_links0[i * _stride0]);
        return result.ToArray();
    }

    /// <summary>Nodes (live or deleted) on level 1 or higher (diagnostics and tests).</summary>
    internal int UpperNodeCount()
    {
        int c = 0;
        for (int i = 0; i < _slots; i++) if (_state[i] != Free && _levels[i] > 0) c++;
        return c;
    }

    /// <summary>Slots in use (live, deleted or free); free slots are reused before new ones are added.</summary>
    internal int SlotCount => _slots;

    // The link list of `node` on `level`: element 0 is the count, then the slots. Empty when the node has no such level.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Span<int> Links(int node, int level)
    {
        if (level == 0) return _links0.AsSpan(node * _stride0, _stride0);
        var u = _upper[node];
        int at = (level - 1) * (1 + _m);
        return u is null || at >= u.Length ? default : u.AsSpan(at, 1 + _m);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Lock NodeLock(int node) => _nodeLocks[node & (_nodeLocks.Length - 1)];

    private static long PackEntry(int node, int level) => ((long)level << 32) | (uint)node;
    private static int EntryNode(long entry) => (int)(uint)entry;
    private static int EntryLevel(long entry) => (int)(entry >> 32);

    // Copies mapped rows to the heap and unmaps the file; called in the exclusive section before a write.
    private void ReleaseMapping()
    {
        _vectors.EnsureWritable();
        _mapping?.Dispose();
        _mapping = null;
    }

    /// <inheritdoc />
    /// <remarks>Waits for a running mutation and running searches.</remarks>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        lock (_writer)
        {
            _resize.Close(() =>
            {
                _mapping?.Dispose(); // no search runs and none can start: the mapping and the rows can go
                _mapping = null;
                _vectors.Free();
            });
        }
    }
}
