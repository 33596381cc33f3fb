using System.Collections;
using Engine.Quantization;

namespace Engine.Index.Lists;

/// <summary>
/// Inverted lists (faiss <c>InvertedLists</c>): for each list the ids, numeric attributes, codes and optional refine
/// codes of its rows, kept dense (rows 0..Count-1). Which backing holds a list is per list: <see cref="HeapInvertedList"/>
/// (managed arrays, writable) or <see cref="MappedInvertedList"/> (read-only views into a file mapping). Readers see
/// both through <see cref="InvertedList"/>; writers call <see cref="Writable"/>, which turns a mapped list into a heap
/// list first (copy-on-write), so nothing is ever written into a mapping.
/// </summary>
/// <remarks>
/// <para>The codes of a list are laid out by a <see cref="CodeLayout"/> (row after row, or fast-scan blocks); the
/// lists do not interpret them. A third backing (e.g. SPANN's posting store on a block device) derives from
/// <see cref="InvertedList"/> and materialises a list's spans when it is acquired.</para>
/// <para>Not thread-safe by itself: the owning index serialises writers against readers.</para>
/// <para>Beside the list objects the lists keep a dense table of where each list's rows start
/// (<see cref="Rows(int)"/>): the scattered reads of a search (refine rows and ids of its candidates, the head of the
/// next list) compute their address from that 32-byte entry instead of loading a list object and then an array
/// header, two dependent cache misses before the row's own. Heap lists are therefore allocated pinned, so an
/// address stays valid until the list's storage is replaced, which only happens here (and updates the entry).</para>
/// </remarks>
internal sealed class InvertedLists : IReadOnlyList<InvertedList>
{
    private readonly InvertedList[] _lists;
    private readonly ListRows[] _rows;

    /// <summary>Creates <paramref name="count"/> empty heap lists.</summary>
    /// <param name="count">Number of lists.</param>
    /// <param name="layout">How codes are laid out in a list.</param>
    /// <param name="refineSize">Bytes of one refine code (0 = no refine store).</param>
    public InvertedLists(int count, CodeLayout layout, int refineSize)
    {
        Layout = layout;
        RefineSize = refineSize;
        _lists = new InvertedList[count];
        _rows = new ListRows[count];
        for (int i = 0; i < count; i++) _lists[i] = new HeapInvertedList();
    }

    /// <summary>
    /// Where list <paramref name="list"/>'s ids, codes and refine rows start (valid for readers while no writer runs:
    /// the owning index's read lock).
    /// </summary>
    public ref readonly ListRows Rows(int list) => ref _rows[list];

    private void Point(int list) => _rows[list] = _lists[list].Locate();

    /// <summary>
    /// Requests the cache line of list <paramref name="list"/>'s object (its count and storage fields), which a scan
    /// reads before its rows. The object's address is read as a number and only prefetched, never dereferenced, so a
    /// garbage collection moving it in between costs a wasted line, nothing more.
    /// </summary>
    public unsafe void PrefetchObject(int list) =>
        Runtime.Prefetch.At((void*)System.Runtime.CompilerServices.Unsafe.As<InvertedList, nint>(ref _lists[list]));

    /// <summary>Code layout of every list.</summary>
    public CodeLayout Layout { get; }

    /// <summary>Bytes of one refine code (0 when there is no refine store).</summary>
    public int RefineSize { get; }

    /// <summary>Number of lists.</summary>
    public int Count => _lists.Length;

    /// <summary>List <paramref name="list"/> for reading.</summary>
    public InvertedList this[int list] => _lists[list];

    /// <summary>Code bytes of a list holding <paramref name="rows"/> rows.</summary>
    public int CodeBytes(int rows) => checked((int)Layout.Bytes(rows));

    /// <summary>
    /// List <paramref name="list"/> made writable with room for <paramref name="rows"/> rows: a mapped list is copied
    /// to the heap (sized to the list), a heap list grows when needed.
    /// </summary>
    public HeapInvertedList Writable(int list, int rows)
    {
        switch (_lists[list])
        {
            case HeapInvertedList heap:
                if (heap.EnsureCapacity(rows, Layout, RefineSize)) Point(list);
                return heap;
            case var other:
                var copy = HeapInvertedList.CopyOf(other, rows, Layout, RefineSize);
                _lists[list] = copy;
                Point(list);
                return copy;
        }
    }

    /// <summary>List <paramref name="list"/> as a heap list; only after <see cref="Writable"/>.</summary>
    /// <exception cref="InvalidOperationException">The list is not held on the heap.</exception>
    public HeapInvertedList Owned(int list) => _lists[list] as HeapInvertedList
        ?? throw new InvalidOperationException($"List {list} is memory-mapped: call Writable (copy-on-write) before writing.");

    /// <summary>Points list <paramref name="list"/> at rows inside a file mapping the caller keeps alive.</summary>
    public unsafe void Map(int list, int count, long* ids, double* attributes, byte* codes, int codeBytes, byte* refine, int refineBytes)
    {
        _lists[list] = new MappedInvertedList(count, ids, attributes, codes, codeBytes, refine, refineBytes);
        Point(list);
    }

    /// <summary>
    /// Shrinks every heap list's arrays to the whole blocks its rows need (the doubling of appends leaves up to half
    /// unused after a load in batches); mapped lists are left alone. Returns the bytes released.
    /// </summary>
    public long TrimExcess()
    {
        long released = 0;
        for (int i = 0; i < _lists.Length; i++)
            if (_lists[i] is HeapInvertedList heap)
            {
                long before = heap.MemoryBytes;
                if (!heap.TrimExcess(Layout, RefineSize)) continue;
                released += before - heap.MemoryBytes;
                Point(i);
            }
        return released;
    }

    /// <summary>Drops every list's storage (owned or mapped); all lists are empty afterwards.</summary>
    public void Release()
    {
        for (int i = 0; i < _lists.Length; i++)
        {
            _lists[i] = new HeapInvertedList();
            _rows[i] = default;
        }
    }

    /// <inheritdoc />
    public IEnumerator<InvertedList> GetEnumerator() => ((IEnumerable<InvertedList>)_lists).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>One inverted list as readers see it, whatever holds it.</summary>
internal abstract class InvertedList
{
    /// <summary>Rows held.</summary>
    public int Count;

    /// <summary>Ids of the rows (Count entries).</summary>
    public abstract ReadOnlySpan<long> Ids { get; }

    /// <summary>Attributes of the rows (Count entries; NaN = none).</summary>
    public abstract ReadOnlySpan<double> Attributes { get; }

    /// <summary>Codes: at least the bytes of Count rows in the lists' layout.</summary>
    public abstract ReadOnlySpan<byte> Codes { get; }

    /// <summary>Refine codes: at least Count rows.</summary>
    public abstract ReadOnlySpan<byte> Refine { get; }

    /// <summary>Heap bytes the list holds.</summary>
    public abstract long MemoryBytes { get; }

    /// <summary>Bytes of the list read in place from a file mapping.</summary>
    public abstract long MappedBytes { get; }

    /// <summary>Where this list's storage starts (stable until the storage is replaced).</summary>
    internal abstract ListRows Locate();
}

/// <summary>
/// Start addresses of one list's ids, codes and refine rows, and its code capacity in bytes (the extent a prefetch of
/// its codes may read); all null/0 for a list with no storage. Rows are read at <c>Refine + row × refine size</c> and
/// <c>Ids[row]</c> for rows below the list's <see cref="InvertedList.Count"/>.
/// </summary>
internal readonly unsafe struct ListRows(long* ids, byte* codes, int codeBytes, byte* refine)
{
    /// <summary>First id.</summary>
    public readonly long* Ids = ids;

    /// <summary>First code byte.</summary>
    public readonly byte* Codes = codes;

    /// <summary>First refine byte (null without a refine store).</summary>
    public readonly byte* Refine = refine;

    /// <summary>Code bytes that may be read from <see cref="Codes"/> (the capacity; 0 = no storage).</summary>
    public readonly int CodeBytes = codeBytes;
}

/// <summary>
/// A list in managed arrays (writable; capacity in whole 32-row blocks). The arrays are pinned (pinned object heap):
/// <see cref="InvertedLists.Rows(int)"/> hands their addresses to searches.
/// </summary>
internal sealed class HeapInvertedList : InvertedList
{
    private long[] _ids = [];
    private double[] _attributes = [];
    private byte[] _codes = [];
    private byte[] _refine = [];

    /// <inheritdoc />
    public override ReadOnlySpan<long> Ids => new(_ids, 0, Count);

    /// <inheritdoc />
    public override ReadOnlySpan<double> Attributes => new(_attributes, 0, Count);

    /// <inheritdoc />
    public override ReadOnlySpan<byte> Codes => _codes;

    /// <inheritdoc />
    public override ReadOnlySpan<byte> Refine => _refine;

    /// <summary>Writable ids.</summary>
    public long[] OwnedIds => _ids;

    /// <summary>Writable attributes.</summary>
    public double[] OwnedAttributes => _attributes;

    /// <summary>Writable codes.</summary>
    public byte[] OwnedCodes => _codes;

    /// <summary>Writable refine codes.</summary>
    public byte[] OwnedRefine => _refine;

    /// <inheritdoc />
    public override long MemoryBytes => (long)_ids.Length * 8 + (long)_attributes.Length * 8 + _codes.Length + _refine.Length;

    /// <inheritdoc />
    public override long MappedBytes => 0;

    /// <summary>
    /// Grows the arrays (doubling, whole blocks) to hold at least <paramref name="rows"/> rows; true when they were
    /// replaced (new addresses).
    /// </summary>
    public bool EnsureCapacity(int rows, CodeLayout layout, int refineBytes)
    {
        if (_ids.Length >= rows) return false;
        int cap = Math.Max(rows, Math.Max(32, _ids.Length * 2));
        Resize((cap + 31) & ~31, layout, refineBytes); // whole fast-scan blocks
        return true;
    }

    /// <summary>
    /// Shrinks the arrays to <see cref="InvertedList.Count"/> rows rounded up to whole 32-row blocks; true when they
    /// were replaced (new addresses).
    /// </summary>
    public bool TrimExcess(CodeLayout layout, int refineBytes)
    {
        int cap = (Count + 31) & ~31;
        if (_ids.Length <= cap) return false;
        Resize(cap, layout, refineBytes);
        return true;
    }

    // Every array to cap rows (the first rows kept), pinned: the one place a heap list's storage is replaced.
    private void Resize(int cap, CodeLayout layout, int refineBytes)
    {
        Grow(ref _ids, cap);
        Grow(ref _attributes, cap);
        Grow(ref _codes, checked((int)layout.Bytes(cap)));
        if (refineBytes > 0) Grow(ref _refine, checked(cap * refineBytes));
    }

    // Array.Resize, into a pinned array.
    private static void Grow<T>(ref T[] array, int length)
    {
        var grown = GC.AllocateArray<T>(length, pinned: true);
        array.AsSpan(0, Math.Min(array.Length, length)).CopyTo(grown);
        array = grown;
    }

    /// <inheritdoc />
    internal override unsafe ListRows Locate() => new(
        (long*)Address(_ids), (byte*)Address(_codes), _codes.Length, _refine.Length == 0 ? null : (byte*)Address(_refine));

    // The first element's address of a pinned array (null when empty: nothing may be read there).
    private static unsafe void* Address<T>(T[] array) => array.Length == 0 ? null
        : System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(array));

    /// <summary>A heap copy of <paramref name="source"/> sized to it (room for at least <paramref name="rows"/> rows).</summary>
    public static HeapInvertedList CopyOf(InvertedList source, int rows, CodeLayout layout, int refineBytes)
    {
        int cap = (Math.Max(rows, source.Count) + 31) & ~31;
        var copy = new HeapInvertedList
        {
            _ids = GC.AllocateArray<long>(cap, pinned: true),
            _attributes = GC.AllocateArray<double>(cap, pinned: true),
            _codes = GC.AllocateArray<byte>(checked((int)layout.Bytes(cap)), pinned: true),
            _refine = refineBytes > 0 ? GC.AllocateArray<byte>(checked(cap * refineBytes), pinned: true) : [],
            Count = source.Count,
        };
        source.Ids.CopyTo(copy._ids);
        source.Attributes.CopyTo(copy._attributes);
        source.Codes.CopyTo(copy._codes);
        source.Refine.CopyTo(copy._refine);
        return copy;
    }
}

/// <summary>A read-only list inside a file mapping (the owner keeps the mapping alive and checked the alignment).</summary>
internal sealed unsafe class MappedInvertedList : InvertedList
{
    private readonly long* _ids;
    private readonly double* _attributes;
    private readonly byte* _codes;
    private readonly byte* _refine;
    private readonly int _codeBytes, _refineBytes;

    /// <summary>Views <paramref name="count"/> rows at the given pointers.</summary>
    public MappedInvertedList(int count, long* ids, double* attributes, byte* codes, int codeBytes, byte* refine, int refineBytes)
    {
        Count = count;
        _ids = ids;
        _attributes = attributes;
        _codes = codes;
        _refine = refine;
        _codeBytes = codeBytes;
        _refineBytes = refineBytes;
    }

    /// <inheritdoc />
    public override ReadOnlySpan<long> Ids => new(_ids, Count);

    /// <inheritdoc />
    public override ReadOnlySpan<double> Attributes => new(_attributes, Count);

    /// <inheritdoc />
    public override ReadOnlySpan<byte> Codes => new(_codes, _codeBytes);

    /// <inheritdoc />
    public override ReadOnlySpan<byte> Refine => new(_refine, _refineBytes);

    /// <inheritdoc />
    public override long MemoryBytes => 0;

    /// <inheritdoc />
    public override long MappedBytes => (long)Count * 16 + _codeBytes + _refineBytes;

    /// <inheritdoc />
    internal override ListRows Locate() => new(_ids, _codes, _codeBytes, _refineBytes == 0 ? null : _refine);
}
