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
/// </remarks>
internal sealed class InvertedLists : IReadOnlyList<InvertedList>
{
    private readonly InvertedList[] _lists;

    /// <summary>Creates <paramref name="count"/> empty heap lists.</summary>
    /// <param name="count">Number of lists.</param>
    /// <param name="layout">How codes are laid out in a list.</param>
    /// <param name="refineSize">Bytes of one refine code (0 = no refine store).</param>
    public InvertedLists(int count, CodeLayout layout, int refineSize)
    {
        Layout = layout;
        RefineSize = refineSize;
        _lists = new InvertedList[count];
        for (int i = 0; i < count; i++) _lists[i] = new HeapInvertedList();
    }

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
                heap.EnsureCapacity(rows, Layout, RefineSize);
                return heap;
            case var other:
                var copy = HeapInvertedList.CopyOf(other, rows, Layout, RefineSize);
                _lists[list] = copy;
                return copy;
        }
    }

    /// <summary>List <paramref name="list"/> as a heap list; only after <see cref="Writable"/>.</summary>
    /// <exception cref="InvalidOperationException">The list is not held on the heap.</exception>
    public HeapInvertedList Owned(int list) => _lists[list] as HeapInvertedList
        ?? throw new InvalidOperationException($"List {list} is memory-mapped: call Writable (copy-on-write) before writing.");

    /// <summary>Points list <paramref name="list"/> at rows inside a file mapping the caller keeps alive.</summary>
    public unsafe void Map(int list, int count, long* ids, double* attributes, byte* codes, int codeBytes, byte* refine, int refineBytes) =>
        _lists[list] = new MappedInvertedList(count, ids, attributes, codes, codeBytes, refine, refineBytes);

    /// <summary>Drops every list's storage (owned or mapped); all lists are empty afterwards.</summary>
    public void Release()
    {
        for (int i = 0; i < _lists.Length; i++) _lists[i] = new HeapInvertedList();
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
}

/// <summary>A list in managed arrays (writable; capacity in whole 32-row blocks).</summary>
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

    /// <summary>Grows the arrays (doubling, whole blocks) to hold at least <paramref name="rows"/> rows.</summary>
    public void EnsureCapacity(int rows, CodeLayout layout, int refineBytes)
    {
        if (_ids.Length >= rows) return;
        int cap = Math.Max(rows, Math.Max(32, _ids.Length * 2));
        cap = (cap + 31) & ~31; // whole fast-scan blocks
        Array.Resize(ref _ids, cap);
        Array.Resize(ref _attributes, cap);
        Array.Resize(ref _codes, checked((int)layout.Bytes(cap)));
        if (refineBytes > 0) Array.Resize(ref _refine, checked(cap * refineBytes));
    }

    /// <summary>A heap copy of <paramref name="source"/> sized to it (room for at least <paramref name="rows"/> rows).</summary>
    public static HeapInvertedList CopyOf(InvertedList source, int rows, CodeLayout layout, int refineBytes)
    {
        int cap = (Math.Max(rows, source.Count) + 31) & ~31;
        var copy = new HeapInvertedList
        {
            _ids = new long[cap],
            _attributes = new double[cap],
            _codes = new byte[checked((int)layout.Bytes(cap))],
            _refine = refineBytes > 0 ? new byte[checked(cap * refineBytes)] : [],
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
}
