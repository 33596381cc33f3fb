using Engine.Index.Lists;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Engine.Quantization;
using Engine.Storage.Postings;

namespace Engine.Index.Spann;

/// <summary>
/// A decoded posting: parallel spans of ids and versions, and either full-precision vectors (count × d, raw postings)
/// or refine-file offsets and codes (count × code size, coded postings).
/// </summary>
internal readonly ref struct PostingView
{
    public PostingView(ReadOnlySpan<long> ids, ReadOnlySpan<byte> versions, ReadOnlySpan<float> vectors)
    {
        Ids = ids;
        Versions = versions;
        Vectors = vectors;
    }

    public PostingView(ReadOnlySpan<long> ids, ReadOnlySpan<byte> versions, ReadOnlySpan<long> offsets, ReadOnlySpan<byte> codes, CodeLayout layout)
    {
        Ids = ids;
        Versions = versions;
        Offsets = offsets;
        Codes = codes;
        Layout = layout;
    }

    /// <summary>The entries of a payload whose sections <paramref name="at"/> were located by <see cref="PostingCodec.Sections"/>.</summary>
    public static PostingView Over(ReadOnlySpan<byte> payload, BlockSections at, CodeLayout? layout)
    {
        if (payload.IsEmpty) return default;
        int n = at.Count;
        var ids = MemoryMarshal.Cast<byte, long>(payload.Slice(at.Ids, n * 8));
        var versions = payload.Slice(at.Versions, n);
        var codes = payload.Slice(at.Codes, at.CodeBytes);
        return layout is null
            ? new PostingView(ids, versions, MemoryMarshal.Cast<byte, float>(codes))
            : new PostingView(ids, versions, MemoryMarshal.Cast<byte, long>(payload.Slice(at.RefineOffsets, n * 8)), codes, layout);
    }

    /// <summary>The entries of the posting <paramref name="list"/> holds (acquired with <see cref="PostingCodec.Sections"/>); valid while it holds it.</summary>
    public static PostingView Of(DeviceBlockInvertedList list, CodeLayout? layout) => Over(list.Payload, list.Sections, layout);

    public int Count => Ids.Length;
    public ReadOnlySpan<long> Ids { get; }
    public ReadOnlySpan<byte> Versions { get; }
    public ReadOnlySpan<float> Vectors { get; }
    public ReadOnlySpan<long> Offsets { get; }
    /// <summary>The codes of every entry in <see cref="Layout"/> (rows, or fast-scan blocks).</summary>
    public ReadOnlySpan<byte> Codes { get; }
    public CodeLayout? Layout { get; }

    /// <summary>Entry i's code in place; only for codes stored in rows (<see cref="CodeLayout.Rows"/>).</summary>
    public ReadOnlySpan<byte> Code(int i) => Codes.Slice(i * Layout!.CodeSize, Layout.CodeSize);

    /// <summary>Entry i's code in row format (<see cref="CodeLayout.CodeSize"/> bytes), whatever the layout.</summary>
    public void ReadCode(int i, Span<byte> code) => Layout!.Read(Codes, i, code);
}

/// <summary>
/// The payload format of one posting block (before the store compresses it), defined here once: <see cref="Place"/> says
/// where the sections of n entries lie; <see cref="Write"/>, the one block writer (behind <see cref="Encode"/> and
/// <see cref="EncodeCoded"/>, which build, updates, maintenance and compaction reach through
/// <see cref="PostingBuffer.Encode"/>), fills them; and <see cref="Sections"/>, the one parser (the
/// <see cref="BlockSectionLocator"/> through which searches and writes alike acquire a posting as a
/// <see cref="DeviceBlockInvertedList"/>), checks a payload's header and length and returns the same placement.
/// Raw postings: <c>count i32 | dimension i32 | ids i64[count] | versions u8[count] padded to 8 | vectors f32[count × d]</c>.
/// Coded postings (<see cref="SpannOptions.Codec"/>): <c>count i32 | dimension i32 | codeSize i32 | reserved i32 |
/// ids i64[count] | refine offsets i64[count] | versions u8[count] padded to 8 | codes</c>, the codes in the codec's
/// layout: <c>u8[count × codeSize]</c> in rows, or ⌈count / 32⌉ fast-scan blocks (<c>RaBitQfs{b}</c>).
/// A version byte lets a search tell a live copy from a stale one after a delete and re-insert of the id.
/// </summary>
internal static class PostingCodec
{
    private const int Header = 8;
    private const int CodedHeader = 16;

    private static long VersionBytes(long n) => (n + 7) & ~7L;

    // Payload bytes of n entries, in long so that a damaged count cannot overflow the check against a payload's length.
    private static long Bytes(long n, int dimension, CodeLayout? codes) => codes is null
        ? Header + n * 8 + VersionBytes(n) + n * dimension * 4
        : CodedHeader + n * 16 + VersionBytes(n) + codes.Bytes(n);

    /// <summary>Payload bytes of <paramref name="count"/> entries; no <paramref name="codes"/> layout = raw vectors.</summary>
    public static int Size(int count, int dimension, CodeLayout? codes = null) => checked((int)Bytes(count, dimension, codes));

    /// <summary>
    /// Where the sections of a payload of <paramref name="count"/> entries lie (the payload is
    /// <see cref="Size"/> bytes): the codes are the coded area, or the raw f32 rows of an uncoded posting.
    /// </summary>
    public static BlockSections Place(int count, int dimension, CodeLayout? codes)
    {
        int n = count, versions = checked((int)VersionBytes(n));
        return codes is null
            ? new BlockSections(n, Header, Header + n * 8, -1, Header + n * 8 + versions, checked(n * dimension * 4))
            : new BlockSections(n, CodedHeader, CodedHeader + n * 16, CodedHeader + n * 8, CodedHeader + n * 16 + versions, checked((int)codes.Bytes(n)));
    }

    /// <summary>
    /// The payload of one posting block; no <paramref name="layout"/> = raw postings. <paramref name="codes"/> holds the
    /// entries' codes in row format (<see cref="CodeLayout.CodeSize"/> bytes each), which the layout places, or for raw
    /// postings the f32 rows as bytes; <paramref name="offsets"/> (coded postings only) the refine-record offsets.
    /// </summary>
    private static byte[] Write(int dimension, CodeLayout? layout, ReadOnlySpan<long> ids, ReadOnlySpan<byte> versions,
        ReadOnlySpan<long> offsets, ReadOnlySpan<byte> codes)
    {
        int n = ids.Length;
        var buf = new byte[Size(n, dimension, layout)];
        var at = Place(n, dimension, layout);
        BinaryPrimitives.WriteInt32LittleEndian(buf, n);
        BinaryPrimitives.WriteInt32LittleEndian(buf.AsSpan(4), dimension);
        MemoryMarshal.AsBytes(ids).CopyTo(buf.AsSpan(at.Ids));
        versions[..n].CopyTo(buf.AsSpan(at.Versions));
        var area = buf.AsSpan(at.Codes, at.CodeBytes);
        if (layout is null)
        {
            codes[..at.CodeBytes].CopyTo(area);
            return buf;
        }
        int codeSize = layout.CodeSize;
        BinaryPrimitives.WriteInt32LittleEndian(buf.AsSpan(8), codeSize);
        MemoryMarshal.AsBytes(offsets[..n]).CopyTo(buf.AsSpan(at.RefineOffsets));
        for (int i = 0; i < n; i++) layout.Write(area, i, codes.Slice(i * codeSize, codeSize));
        return buf;
    }

    /// <summary>A raw payload (<see cref="Write"/> with no layout).</summary>
    public static byte[] Encode(int dimension, ReadOnlySpan<long> ids, ReadOnlySpan<byte> versions, ReadOnlySpan<float> vectors) =>
        Write(dimension, null, ids, versions, default, MemoryMarshal.AsBytes(vectors[..(ids.Length * dimension)]));

    /// <summary>A coded payload (<see cref="Write"/>); <paramref name="codes"/> holds the entries' codes in row format, stored in <paramref name="layout"/>.</summary>
    public static byte[] EncodeCoded(int dimension, CodeLayout layout, ReadOnlySpan<long> ids, ReadOnlySpan<byte> versions,
        ReadOnlySpan<long> offsets, ReadOnlySpan<byte> codes) => Write(dimension, layout, ids, versions, offsets, codes);

    /// <summary>
    /// Checks a payload (no <paramref name="codes"/> layout = raw vectors) and says where its sections lie (the
    /// <see cref="BlockSectionLocator"/> of <see cref="DeviceBlockInvertedList"/>); an empty payload has no sections.
    /// </summary>
    /// <exception cref="CorruptIndexException">A payload whose counts, dimension or code size do not match its length
    /// or the index (naming <paramref name="source"/> and <paramref name="offset"/>).</exception>
    public static BlockSections Sections(ReadOnlySpan<byte> payload, int dimension, CodeLayout? codes, string source, long offset)
    {
        if (payload.Length == 0) return default;
        int n;
        if (codes is null)
        {
            if (payload.Length < Header) throw new CorruptIndexException(source, offset, "posting payload is shorter than its header");
            n = BinaryPrimitives.ReadInt32LittleEndian(payload);
            int d = BinaryPrimitives.ReadInt32LittleEndian(payload[4..]);
            if (n < 0 || d != dimension || Bytes(n, dimension, null) != payload.Length)
                throw new CorruptIndexException(source, offset, $"posting payload holds {payload.Length} bytes, which does not match {n} entries of dimension {d}");
        }
        else
        {
            if (payload.Length < CodedHeader) throw new CorruptIndexException(source, offset, "coded posting payload is shorter than its header");
            n = BinaryPrimitives.ReadInt32LittleEndian(payload);
            int d = BinaryPrimitives.ReadInt32LittleEndian(payload[4..]);
            int cs = BinaryPrimitives.ReadInt32LittleEndian(payload[8..]);
            if (d != dimension || cs != codes.CodeSize)
                throw new CorruptIndexException(source, offset, $"coded posting has dimension {d} and code size {cs}, but the index has dimension {dimension} and code size {codes.CodeSize}");
            if (n < 0 || Bytes(n, dimension, codes) != payload.Length)
                throw new CorruptIndexException(source, offset, $"coded posting payload holds {payload.Length} bytes, which does not match {n} entries of {cs}-byte codes");
        }
        return Place(n, dimension, codes);
    }

    /// <summary>Checks a payload in hand (<see cref="Sections"/>) and views its entries; the index acquires its postings
    /// as a <see cref="DeviceBlockInvertedList"/> instead and views them with <see cref="PostingView.Of"/>.</summary>
    /// <exception cref="CorruptIndexException">As <see cref="Sections"/>.</exception>
    public static PostingView Decode(ReadOnlySpan<byte> payload, int dimension, CodeLayout? codes, string source, long offset) =>
        PostingView.Over(payload, Sections(payload, dimension, codes, source, offset), codes);
}

/// <summary>
/// A growable posting being assembled in memory: ids and versions, plus full vectors (raw postings, or a coded posting
/// whose vectors were read from the refine file for a split or merge) and, for coded postings, refine offsets and
/// codes. Coded entries are copied byte for byte between postings (codes do not depend on the posting).
/// </summary>
internal sealed class PostingBuffer
{
    private readonly int _d;
    private readonly int _codeSize;
    private readonly CodeLayout? _layout;
    private long[] _ids;
    private byte[] _versions;
    private long[] _offsets;
    private byte[] _codes;
    private float[] _vectors;

    /// <param name="dimension">d.</param>
    /// <param name="layout">How the encoded posting stores codes; null for raw postings (which always hold vectors).
    /// The buffer holds codes in row format (<see cref="CodeLayout.CodeSize"/> bytes each).</param>
    /// <param name="withVectors">Coded postings: also hold full vectors.</param>
    /// <param name="capacity">Initial entries.</param>
    public PostingBuffer(int dimension, CodeLayout? layout = null, bool withVectors = true, int capacity = 16)
    {
        _d = dimension;
        _layout = layout;
        int codeSize = _codeSize = layout?.CodeSize ?? 0;
        HasVectors = codeSize == 0 || withVectors;
        int cap = Math.Max(1, capacity);
        _ids = new long[cap];
        _versions = new byte[cap];
        _offsets = codeSize == 0 ? [] : new long[cap];
        _codes = codeSize == 0 ? [] : new byte[cap * codeSize];
        _vectors = HasVectors ? new float[cap * dimension] : [];
    }

    public int Count { get; private set; }
    public bool HasVectors { get; private set; }
    public bool IsCoded => _codeSize != 0;
    public ReadOnlySpan<long> Ids => _ids.AsSpan(0, Count);
    public ReadOnlySpan<byte> Versions => _versions.AsSpan(0, Count);
    public ReadOnlySpan<float> Vectors => VectorArray.AsSpan(0, Count * _d);

    /// <summary>The backing array (rows past <see cref="Count"/> are unused capacity).</summary>
    public float[] VectorArray => HasVectors ? _vectors : throw new InvalidOperationException("This posting buffer holds no vectors (internal error).");
    public ReadOnlySpan<float> Vector(int i) => VectorArray.AsSpan(i * _d, _d);
    public long Offset(int i) => _offsets[i];
    public ReadOnlySpan<byte> Code(int i) => _codes.AsSpan(i * _codeSize, _codeSize);

    private int Grow()
    {
        if (Count == _ids.Length)
        {
            int cap = _ids.Length * 2;
            Array.Resize(ref _ids, cap);
            Array.Resize(ref _versions, cap);
            if (IsCoded) { Array.Resize(ref _offsets, cap); Array.Resize(ref _codes, cap * _codeSize); }
            if (HasVectors) Array.Resize(ref _vectors, cap * _d);
        }
        return Count++;
    }

    /// <summary>Adds a raw entry.</summary>
    public void Add(long id, byte version, ReadOnlySpan<float> vector)
    {
        if (IsCoded) throw new InvalidOperationException("A coded posting needs the entry's code and refine offset (internal error).");
        int i = Grow();
        _ids[i] = id;
        _versions[i] = version;
        vector.CopyTo(_vectors.AsSpan(i * _d, _d));
    }

    /// <summary>Adds a coded entry; <paramref name="vector"/> is kept when the buffer holds vectors.</summary>
    public void Add(long id, byte version, long offset, ReadOnlySpan<byte> code, ReadOnlySpan<float> vector)
    {
        int i = Grow();
        _ids[i] = id;
        _versions[i] = version;
        _offsets[i] = offset;
        code.CopyTo(_codes.AsSpan(i * _codeSize, _codeSize));
        if (HasVectors) vector.CopyTo(_vectors.AsSpan(i * _d, _d));
    }

    /// <summary>Copies entry <paramref name="i"/> of <paramref name="source"/> (same layout).</summary>
    public void AddFrom(PostingBuffer source, int i)
    {
        if (!IsCoded) Add(source._ids[i], source._versions[i], source.Vector(i));
        else Add(source._ids[i], source._versions[i], source._offsets[i], source.Code(i), source.HasVectors ? source.Vector(i) : default);
    }

    /// <summary>Copies entry <paramref name="i"/> of a decoded posting (same layout; no vectors for coded ones).</summary>
    public void AddFrom(PostingView view, int i)
    {
        if (!IsCoded) Add(view.Ids[i], view.Versions[i], view.Vectors.Slice(i * _d, _d));
        else
        {
            Span<byte> code = _codeSize <= 1024 ? stackalloc byte[_codeSize] : new byte[_codeSize];
            view.ReadCode(i, code);
            Add(view.Ids[i], view.Versions[i], view.Offsets[i], code, default);
        }
    }

    /// <summary>Coded postings: reads every entry's full vector from the refine file (for a split or merge).</summary>
    public void LoadVectors(VectorRecordStore refine)
    {
        if (HasVectors) return;
        var vectors = new float[_ids.Length * _d];
        for (int i = 0; i < Count; i++) refine.Read(_offsets[i], _ids[i], _versions[i], vectors.AsSpan(i * _d, _d));
        _vectors = vectors;
        HasVectors = true;
    }

    public bool Contains(long id) => Array.IndexOf(_ids, id, 0, Count) >= 0;

    public void RemoveAt(int i)
    {
        int last = Count - 1;
        if (i != last)
        {
            _ids[i] = _ids[last];
            _versions[i] = _versions[last];
            if (IsCoded)
            {
                _offsets[i] = _offsets[last];
                _codes.AsSpan(last * _codeSize, _codeSize).CopyTo(_codes.AsSpan(i * _codeSize, _codeSize));
            }
            if (HasVectors) _vectors.AsSpan(last * _d, _d).CopyTo(_vectors.AsSpan(i * _d, _d));
        }
        Count--;
    }

    /// <summary>The block payload of the entries (written by <see cref="PostingCodec"/>'s one writer).</summary>
    public byte[] Encode() => IsCoded
        ? PostingCodec.EncodeCoded(_d, _layout!, Ids, Versions, _offsets.AsSpan(0, Count), _codes.AsSpan(0, Count * _codeSize))
        : PostingCodec.Encode(_d, Ids, Versions, Vectors);
}
