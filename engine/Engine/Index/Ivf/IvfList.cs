namespace Engine.Index.Ivf;

/// <summary>
/// One inverted list: ids, numeric attributes, codes and (optionally) refine codes of its vectors, kept
/// dense (offsets 0..Count-1). Codes are <c>CodeSize</c> bytes per vector, or packed 32-vector blocks for
/// fast-scan. Not thread-safe by itself: the owning index serialises writers.
/// </summary>
/// <remarks>
/// Storage is either owned managed arrays or, after a mapped load, read-only views into the index file's
/// memory mapping (<see cref="MapTo"/>; no copy). Readers use the span properties, which work for both. Writers
/// must call <see cref="EnsureCapacity"/> first: on a mapped list it copies the list into managed arrays
/// (copy-on-write), so nothing is ever written into the mapping; the <c>Owned*</c> arrays are only valid after it.
/// </remarks>
internal sealed unsafe class IvfList
{
    private long[] _ids = [];
    private double[] _attributes = [];
    private byte[] _codes = [];
    private byte[] _refine = [];
    private long* _mappedIds;
    private double* _mappedAttributes;
    private byte* _mappedCodes;
    private byte* _mappedRefine;
    private int _mappedCodeBytes, _mappedRefineBytes;

    public int Count;

    /// <summary>True while the list's storage points into a file mapping.</summary>
    public bool IsMapped { get; private set; }

    /// <summary>Ids of the stored vectors (Count entries).</summary>
    public ReadOnlySpan<long> Ids => IsMapped ? new(_mappedIds, Count) : new(_ids, 0, Count);

    /// <summary>Attributes of the stored vectors (Count entries; NaN = none).</summary>
    public ReadOnlySpan<double> Attributes => IsMapped ? new(_mappedAttributes, Count) : new(_attributes, 0, Count);

    /// <summary>Codes: at least the bytes of Count rows (whole 32-row blocks for fast-scan).</summary>
    public ReadOnlySpan<byte> Codes => IsMapped ? new ReadOnlySpan<byte>(_mappedCodes, _mappedCodeBytes) : _codes;

    /// <summary>Refine codes: at least Count rows.</summary>
    public ReadOnlySpan<byte> Refine => IsMapped ? new ReadOnlySpan<byte>(_mappedRefine, _mappedRefineBytes) : _refine;

    /// <summary>Writable ids; only after <see cref="EnsureCapacity"/>.</summary>
    public long[] OwnedIds => IsMapped ? throw MappedWrite() : _ids;

    /// <summary>Writable attributes; only after <see cref="EnsureCapacity"/>.</summary>
    public double[] OwnedAttributes => IsMapped ? throw MappedWrite() : _attributes;

    /// <summary>Writable codes; only after <see cref="EnsureCapacity"/>.</summary>
    public byte[] OwnedCodes => IsMapped ? throw MappedWrite() : _codes;

    /// <summary>Writable refine codes; only after <see cref="EnsureCapacity"/>.</summary>
    public byte[] OwnedRefine => IsMapped ? throw MappedWrite() : _refine;

    /// <summary>Heap bytes held by the list (0 while mapped: mapped pages belong to the OS page cache).</summary>
    public long MemoryBytes => IsMapped ? 0 : (long)_ids.Length * 8 + (long)_attributes.Length * 8 + _codes.Length + _refine.Length;

    /// <summary>Bytes of the list that live in the file mapping (0 when owned).</summary>
    public long MappedBytes => IsMapped ? (long)Count * 16 + _mappedCodeBytes + _mappedRefineBytes : 0;

    /// <summary>
    /// Points the list at <paramref name="count"/> rows inside a mapping (the caller keeps the mapping alive and
    /// checked the alignment of each pointer for its type).
    /// </summary>
    public void MapTo(int count, long* ids, double* attributes, byte* codes, int codeBytes, byte* refine, int refineBytes)
    {
        _ids = []; _attributes = []; _codes = []; _refine = [];
        _mappedIds = ids; _mappedAttributes = attributes; _mappedCodes = codes; _mappedRefine = refine;
        _mappedCodeBytes = codeBytes; _mappedRefineBytes = refineBytes;
        Count = count;
        IsMapped = true;
    }

    /// <summary>
    /// Makes the list writable with room for <paramref name="rows"/> vectors: copies a mapped list into managed
    /// arrays (copy-on-write), grows owned arrays when needed.
    /// </summary>
    public void EnsureCapacity(int rows, int codeBytesPerRow, int blockBytes, int refineBytes)
    {
        if (!IsMapped && _ids.Length >= rows) return;
        // A copy-on-write sizes the arrays to the list (later adds grow them by doubling).
        int cap = IsMapped ? Math.Max(rows, Count) : Math.Max(rows, Math.Max(32, _ids.Length * 2));
        cap = (cap + 31) & ~31; // whole fast-scan blocks
        long codeBytes = blockBytes > 0 ? (long)cap / 32 * blockBytes : (long)cap * codeBytesPerRow;
        if (IsMapped)
        {
            var ids = new long[cap];
            var attributes = new double[cap];
            var codes = new byte[checked((int)codeBytes)];
            var refine = refineBytes > 0 ? new byte[checked(cap * refineBytes)] : [];
            Ids.CopyTo(ids);
            Attributes.CopyTo(attributes);
            Codes.CopyTo(codes);
            Refine.CopyTo(refine);
            _ids = ids; _attributes = attributes; _codes = codes; _refine = refine;
            _mappedIds = null; _mappedAttributes = null; _mappedCodes = null; _mappedRefine = null;
            _mappedCodeBytes = _mappedRefineBytes = 0;
            IsMapped = false;
            return;
        }
        Array.Resize(ref _ids, cap);
        Array.Resize(ref _attributes, cap);
        Array.Resize(ref _codes, checked((int)codeBytes));
        if (refineBytes > 0) Array.Resize(ref _refine, checked(cap * refineBytes));
    }

    /// <summary>Drops the storage (owned or mapped); the list is empty afterwards.</summary>
    public void Release()
    {
        MapTo(0, null, null, null, 0, null, 0);
        IsMapped = false;
    }

    private static InvalidOperationException MappedWrite() =>
        new("The list is memory-mapped: call EnsureCapacity (copy-on-write) before writing.");
}
