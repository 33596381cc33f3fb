using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Engine.Storage.Postings;

namespace Engine.Index.Lists;

/// <summary>Where a list's sections lie inside a block payload (byte offsets; -1 = the section is absent).</summary>
/// <param name="Count">Rows held.</param>
/// <param name="Ids">Offset of the ids (i64 × Count).</param>
/// <param name="Versions">Offset of the version bytes (Count bytes), or -1.</param>
/// <param name="RefineOffsets">Offset of the rows' refine-record offsets (i64 × Count), or -1.</param>
/// <param name="Codes">Offset of the codes (in the owner's code layout; raw f32 rows for uncoded postings).</param>
/// <param name="CodeBytes">Bytes of the codes.</param>
internal readonly record struct BlockSections(int Count, int Ids, int Versions, int RefineOffsets, int Codes, int CodeBytes);

/// <summary>Checks a block payload's header against its owner's format and says where its sections lie.</summary>
/// <exception cref="CorruptIndexException">The payload does not match the format (the owner names the file and offset).</exception>
internal delegate BlockSections BlockSectionLocator(ReadOnlySpan<byte> payload, long blockOffset);

/// <summary>
/// The third <see cref="InvertedList"/> backing (after <see cref="HeapInvertedList"/> and <see cref="MappedInvertedList"/>):
/// a list held in one checksummed block of a <see cref="PostingStore"/> on a device (SPANN's postings).
/// <see cref="Acquire(PostingStore, PostingLocation, int, BlockSectionLocator)"/> materialises the list's spans: in
/// place from the store's read-only mapping when the block is mapped and uncompressed (no copy), otherwise from the
/// verified copy <see cref="PostingStore.Read"/> returns (the read cache's, or a fresh one), which this list pins while
/// it holds it. Scanners then read <see cref="InvertedList.Ids"/> and <see cref="InvertedList.Codes"/> exactly as they
/// read a heap or mapped list; the owner's writes read the postings they rewrite the same way.
/// </summary>
/// <remarks>
/// <para>Read-only, like a mapped list: block stores only append, so a list is replaced whole (its owner writes a new
/// block and points its table at it); <see cref="InvertedLists.Writable"/> would copy it to the heap as it does a
/// mapped list. A block has no attributes (every row's attribute is NaN) and no refine rows in the list (SPANN keeps
/// its refine records in a separate file; <see cref="RefineOffsets"/> says where).</para>
/// <para>One instance is meant to be reused per search thread (and SPANN's writer has its own, for the postings an update
/// rewrites): acquiring allocates nothing after the first lists, and <see cref="Release"/> unpins. The spans stay valid
/// until the next acquire or <see cref="Release"/>, and for an in-place list only while the store's mapping lives (the
/// owner's read lock).</para>
/// </remarks>
internal sealed unsafe class DeviceBlockInvertedList : InvertedList
{
    private GCHandle _pin;          // the pinned copy (copied reads), or unallocated
    private byte* _payload;
    private int _length;
    private bool _inPlace;
    private BlockSections _sections;
    private double[] _noAttributes = [];

    /// <summary>True when the last acquire served the block in place from the store's mapping.</summary>
    public bool InPlace => _inPlace;

    /// <summary>True when the last acquire was answered by the store's read cache.</summary>
    public bool FromCache { get; private set; }

    /// <summary>Bytes of the block payload held.</summary>
    public int PayloadBytes => _length;

    /// <summary>
    /// Points this list at block <paramref name="location"/> of <paramref name="store"/>, which must carry
    /// <paramref name="key"/>: read in place when it can be, else copied (and checked) by the store; then
    /// <paramref name="locate"/> checks the payload and says where its sections are.
    /// </summary>
    /// <exception cref="CorruptIndexException">A damaged block, a block of another key, or a payload that does not match the format.</exception>
    public void Acquire(PostingStore store, PostingLocation location, int key, BlockSectionLocator locate)
    {
        Release();
        if (store.TryReadInPlace(location, key, out var mapped))
        {
            _inPlace = true;
            FromCache = false;
            _payload = mapped.IsEmpty ? null : (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(mapped));
            _length = mapped.Length;
        }
        else
        {
            var copy = store.Read(location, key, out bool cached);
            FromCache = cached;
            Hold(copy);
        }
        Locate(locate, location.Offset);
    }

    /// <summary>
    /// Points this list at a block payload already read and verified (e.g. by <see cref="PostingStore.ReadFromDevice"/>,
    /// for a deep check of what is on disk), which it pins while it holds it; <paramref name="locate"/> checks it.
    /// </summary>
    /// <exception cref="CorruptIndexException">A payload that does not match the format.</exception>
    public void Acquire(byte[] payload, long blockOffset, BlockSectionLocator locate)
    {
        Release();
        FromCache = false;
        Hold(payload);
        Locate(locate, blockOffset);
    }

    // Pins a copied payload (the list holds it until Release).
    private void Hold(byte[] copy)
    {
        _inPlace = false;
        if (copy.Length > 0)
        {
            _pin = GCHandle.Alloc(copy, GCHandleType.Pinned);
            _payload = (byte*)_pin.AddrOfPinnedObject();
        }
        _length = copy.Length;
    }

    // Asks the owner's locator where the held payload's sections lie; a payload it refuses is dropped (unpinned).
    private void Locate(BlockSectionLocator locate, long blockOffset)
    {
        try { Point(_length == 0 ? default : locate(new ReadOnlySpan<byte>(_payload, _length), blockOffset)); }
        catch
        {
            Release();
            throw;
        }
    }

    /// <summary>Points this list at a payload the caller keeps alive and unmoved (tests, and blocks already in hand).</summary>
    public void AcquirePayload(byte* payload, int length, BlockSections sections)
    {
        Release();
        _payload = payload;
        _length = length;
        _inPlace = true;
        Point(sections);
    }

    private void Point(BlockSections sections)
    {
        long need(int at, long bytes) => at < 0 ? 0 : at + bytes;
        int n = sections.Count;
        if (n < 0 || need(sections.Ids, 8L * n) > _length || need(sections.Versions, n) > _length
            || need(sections.RefineOffsets, 8L * n) > _length || sections.Codes < 0 || sections.CodeBytes < 0 || need(sections.Codes, sections.CodeBytes) > _length)
            throw new ArgumentException($"Sections {sections} do not fit a {_length}-byte payload (internal error: the locator checks the format).", nameof(sections));
        _sections = sections;
        Count = n;
        if (_noAttributes.Length < n)
        {
            _noAttributes = new double[Math.Max(n, 2 * _noAttributes.Length)];
            _noAttributes.AsSpan().Fill(double.NaN);
        }
    }

    /// <summary>Drops the block (unpins a copy); the list is empty afterwards.</summary>
    public void Release()
    {
        if (_pin.IsAllocated) _pin.Free();
        _payload = null;
        _length = 0;
        _inPlace = false;
        _sections = default;
        Count = 0;
    }

    /// <inheritdoc />
    public override ReadOnlySpan<long> Ids => Count == 0 ? default : new(_payload + _sections.Ids, Count);

    /// <inheritdoc />
    public override ReadOnlySpan<double> Attributes => _noAttributes.AsSpan(0, Count);

    /// <inheritdoc />
    public override ReadOnlySpan<byte> Codes => Count == 0 ? default : new(_payload + _sections.Codes, _sections.CodeBytes);

    /// <inheritdoc />
    public override ReadOnlySpan<byte> Refine => default;

    /// <summary>The block payload held (empty when none).</summary>
    public ReadOnlySpan<byte> Payload => _length == 0 ? default : new(_payload, _length);

    /// <summary>Where the held payload's sections lie, as its locator said (default when none is held).</summary>
    public BlockSections Sections => _sections;

    /// <summary>Version bytes of the rows (empty when the format has none).</summary>
    public ReadOnlySpan<byte> Versions => Count == 0 || _sections.Versions < 0 ? default : new(_payload + _sections.Versions, Count);

    /// <summary>Where each row's full vector lies in the owner's refine file (empty when the format has none).</summary>
    public ReadOnlySpan<long> RefineOffsets => Count == 0 || _sections.RefineOffsets < 0 ? default : new(_payload + _sections.RefineOffsets, Count);

    /// <inheritdoc />
    public override long MemoryBytes => _inPlace ? 0 : _length;

    /// <inheritdoc />
    public override long MappedBytes => _inPlace ? _length : 0;

    /// <inheritdoc />
    internal override ListRows Locate() => Count == 0 ? default
        : new((long*)(_payload + _sections.Ids), _payload + _sections.Codes, _sections.CodeBytes, null);
}
