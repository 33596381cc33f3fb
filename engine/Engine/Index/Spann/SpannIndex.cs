using Engine.Index.Flat;
using Engine.Index.Lists;
using Engine.Quantization;
using Engine.Storage;
using Engine.Storage.Devices;
using Engine.Storage.Postings;
using Engine.Storage.Wal;

namespace Engine.Index.Spann;

/// <summary>
/// SPANN-style disk index (Chen et al. 2021) with SPFresh-style updates (LIRE) and durable storage.
/// </summary>
/// <remarks>
/// <para>Design: hierarchical balanced clustering cuts the data into many small postings; their centroids
/// (heads) stay in RAM in an exact head index. Each vector is written to up to <see cref="SpannOptions.Replicas"/>
/// postings whose heads pass the closure rule (within (1+ε₁) of the nearest head) and the RNG rule
/// (skip a head that an already chosen head covers). Postings live on a device as page-aligned, LZ4-compressed,
/// CRC32C-checked blocks (<see cref="PostingStore"/>) holding full-precision vectors, ids and version bytes.
/// A query probes the nearest heads that pass query-aware pruning, reads those postings (cache first),
/// de-duplicates replicas and ranks by exact distance.</para>
/// <para>Updates append to postings and tombstone deletes in the in-RAM id table (id → posting, version);
/// postings that outgrow <see cref="SpannOptions.MaxPostingSize"/> are split by 2-means and nearby vectors
/// reassigned (LIRE); near-empty postings are merged into neighbours. That work runs in the background,
/// one posting at a time under the write lock, so searches interleave with it.</para>
/// <para>Durability (directory-backed indexes from <see cref="Create(IIndexStorage, int, Metric, SpannOptions?, IWriteAheadLogProvider?)"/>/<see cref="Open(IIndexStorage, SpannOpenOptions?)"/>, or their path-based forms): every Add/Remove is
/// written to a write-ahead log and committed before it is applied and acknowledged. A checkpoint flushes the
/// posting file, writes the metadata (options, heads, posting table, id table, log address) as a checksummed
/// <c>IndexFile</c> via temp+rename, then truncates the log. Posting blocks are only appended, so a crash
/// never damages what the last checkpoint references; open replays the log after it.</para>
/// <para>Thread safety: any number of concurrent searches; mutations are serialised. Cosine vectors are
/// normalised and handled as L2 inside (cos = 1 − ‖a−b‖²/2).</para>
/// </remarks>
public sealed partial class SpannIndex : IVectorIndex
{
    /// <summary>Kind written in the metadata file header.</summary>
    public const string FileKind = "spann";

    /// <summary>Name of the metadata (checkpoint) file inside an index directory.</summary>
    public const string MetaFileName = "spann.meta";

    private static readonly SearchParameters SingleThread = new() { Threads = 1 };

    private readonly IndexLock _lock = new(nameof(SpannIndex));
    private readonly object _writerGate = new();
    private readonly FlatIndex _heads;
    private bool _unitHeads; // heads kept at unit length (inner product over unit vectors; set by Train or Open)
    private readonly List<PostingInfo> _postings = new();
    private readonly Stack<int> _freePostings = new();
    // The posting a write reads (an update, split, merge, reassignment, compaction or Verify), acquired as searches
    // acquire theirs; used under the writer gate only, and released before the call that acquired it returns.
    private readonly DeviceBlockInvertedList _writeList = new();
    private readonly Dictionary<long, IdEntry> _idMap = new();
    private PostingStore _store;
    private readonly IVectorCodec? _codec;      // null: postings hold raw f32 vectors
    private readonly CodeLayout? _codeLayout;   // how a coded posting stores its codes (rows, or fast-scan blocks)
    private bool _mapPostings = true;            // SpannOpenOptions.MapPostings
    private VectorRecordStore? _refine;          // coded postings: the full vectors (refine file)
    private long _codecBytes;
    private IWriteAheadLog? _wal;
    private IIndexStorage? _storage;             // durable indexes: the caller's storage (null: in memory)
    private int _generation;
    private long _live;
    private long _garbageBytes;
    private bool _trained;
    private bool _disposed;

    private struct PostingInfo
    {
        public PostingLocation Location;
        public int Entries;   // stored entries, stale ones included
        public int Live;      // estimate of entries whose copy is current (exact for primaries)
        public bool Exists;
    }

    private struct IdEntry
    {
        public int Posting;   // a posting holding a current copy; -1 = deleted (tombstone kept for the version)
        public byte Version;
    }

    /// <summary>Creates an in-memory SPANN index (postings on a <see cref="MemoryDevice"/>, no log).</summary>
    /// <exception cref="ArgumentException">Bad dimension, metric or options.</exception>
    public SpannIndex(int dimension, Metric metric = Metric.L2, SpannOptions? options = null)
        : this(dimension, metric, options, new PostingStore(new MemoryDevice("spann-postings"), new PostingCache((options ?? new()).CacheBytes)), null, null)
    {
    }

    // refine: the coded postings' vector file; null for raw postings, or for an in-memory index (one on a MemoryDevice is made).
    private SpannIndex(int dimension, Metric metric, SpannOptions? options, PostingStore store, IIndexStorage? storage, VectorRecordStore? refine)
    {
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        if (!Enum.IsDefined(metric)) throw new ArgumentOutOfRangeException(nameof(metric), metric, "Unknown metric.");
        Options = options ?? new SpannOptions();
        Options.Validate();
        Dimension = dimension;
        Metric = metric;
        _heads = new FlatIndex(dimension, metric == Metric.InnerProduct ? Metric.InnerProduct : Metric.L2);
        _store = store;
        _storage = storage;
        _codec = Options.CodecSpec()?.Create(dimension, metric == Metric.InnerProduct ? Metric.InnerProduct : Metric.L2);
        _codeLayout = _codec switch { null => null, RaBitQFastScanCodec fs => fs.Layout, _ => CodeLayout.Rows(_codec.CodeSize) };
        if (_codec is not null) _refine = refine ?? new VectorRecordStore(new MemoryDevice("spann-vectors"), dimension, 0);
        else if (refine is not null) throw new ArgumentException("A refine file was given to an index with raw postings (internal error).", nameof(refine));
    }

    /// <summary>
    /// Maps the posting file for in-place reads (<see cref="PostingStore.TryReadInPlace"/>) when blocks written since
    /// the last mapping make up more than an eighth of it (<paramref name="force"/>: whenever any were written), so
    /// searches read most postings without a copy while writes do not remap each time. The caller holds the write lock
    /// or no search can run yet: the old mapping is released.
    /// </summary>
    private void RefreshPostingMap(bool force = false)
    {
        if (!_mapPostings) return;
        long mapped = _store.MappedLength, unmapped = _store.Length - mapped;
        if (force ? unmapped != 0 : unmapped > mapped / 8) _store.MapForReads();
    }

    /// <summary>
    /// How posting blocks are compressed: coded postings never (their codes are near-random: LZ4 saved ~10 % of GloVe's
    /// RaBitQfs4 postings, and decompressing took 30 % of a query that reads them in place otherwise); raw postings
    /// when LZ4 saves an eighth (integer-valued data such as MNIST's pixels, not real-valued embeddings, which LZ4
    /// shrinks by under 1 %).
    /// </summary>
    private BlockCompression BlockCompressionOf => _codec is null ? BlockCompression.WhenWorthIt : BlockCompression.Never;

    /// <summary>Bytes per posting code; 0 for raw postings.</summary>
    private int CodeSize => _codec?.CodeSize ?? 0;

    /// <summary>True when postings hold codes (<see cref="SpannOptions.Codec"/>) and full vectors live in the refine file.</summary>
    public bool IsCoded => _codec is not null;

    /// <summary>Bytes of the refine file (coded postings: one record of 24 + 4·d bytes per insert); 0 for raw postings.</summary>
    public long RefineBytes => _refine?.Length ?? 0;

    /// <summary>Settings this index was built with.</summary>
    public SpannOptions Options { get; }

    /// <inheritdoc />
    public int Dimension { get; }

    /// <inheritdoc />
    public Metric Metric { get; }

    /// <inheritdoc />
    public long Count => Interlocked.Read(ref _live);

    /// <inheritdoc />
    public bool IsTrained => Volatile.Read(ref _trained);

    /// <inheritdoc />
    public string Description => SpannSpec.Format(Options);

    /// <summary>The directory of a durable index in files (<see cref="FileIndexStorage"/>), or null for one in memory
    /// or in other storage.</summary>
    public string? Directory => (_storage as FileIndexStorage)?.Directory;

    /// <summary>The storage of a durable index (<see cref="Create(IIndexStorage, int, Metric, SpannOptions?, IWriteAheadLogProvider?)"/>,
    /// <see cref="Open(IIndexStorage, SpannOpenOptions?)"/>), or null for an in-memory one.</summary>
    public IIndexStorage? Storage => _storage;

    /// <summary>Number of postings (heads).</summary>
    public int PostingCount => (int)_heads.Count;

    /// <summary>Bytes of the posting file (live and garbage blocks).</summary>
    public long DiskBytes => _store.Length;

    /// <inheritdoc />
    /// <remarks>Heads, the posting table, the id table (28 bytes per allocated slot: at least one per id), the trained
    /// posting codec's parameters and the read cache's current contents. Posting data and the refine file on the
    /// device are not resident and not counted.</remarks>
    public long MemoryBytes
    {
        get
        {
            _lock.EnterRead();
            try
            {
                // Allocated capacity, not the count: a dictionary entry is hash + next + key + value, plus a bucket.
                long idTable = (long)_idMap.Capacity * (8 + 8 + System.Runtime.CompilerServices.Unsafe.SizeOf<IdEntry>() + 4);
                long postings = (long)_postings.Capacity * System.Runtime.CompilerServices.Unsafe.SizeOf<PostingInfo>();
                return _heads.MemoryBytes + postings + idTable + _staleIds.Length * 8L + Volatile.Read(ref _codecBytes) + _store.Cache.Bytes;
            }
            finally { _lock.ExitRead(); }
        }
    }

    private bool IsCosine => Metric == Metric.Cosine;

    private ReadOnlySpan<float> HeadVector(int posting, Span<float> scratch)
    {
        if (!_heads.TryReconstruct(posting, scratch))
            throw new InvalidOperationException($"Head of posting {posting} is missing (internal error).");
        return scratch;
    }

    /// <summary>Tests: the head vector of posting <paramref name="posting"/>, when that posting exists.</summary>
    internal bool TryHeadVector(int posting, Span<float> destination)
    {
        _lock.EnterRead();
        try { return posting >= 0 && posting < _postings.Count && _postings[posting].Exists && _heads.TryReconstruct(posting, destination); }
        finally { _lock.ExitRead(); }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>Stops background maintenance, closes the log and files. Does not checkpoint.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        WaitForMaintenance();
        lock (_writerGate)
        {
            _disposed = true;
            _wal?.Dispose();
            // Under the write lock: a search still in flight reads postings and refine records in place from their
            // mappings, so it finishes before they are unmapped (later ones fail with ObjectDisposedException).
            _lock.Close(() =>
            {
                _store.Dispose();
                _refine?.Dispose();
                _heads.Dispose();
            });
        }
    }
}
