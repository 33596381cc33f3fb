using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Engine.Index.Spann;

/// <summary>A decoded posting: parallel spans of ids, versions and full-precision vectors (count × d).</summary>
internal readonly ref struct PostingView
{
    public PostingView(ReadOnlySpan<long> ids, ReadOnlySpan<byte> versions, ReadOnlySpan<float> vectors)
    {
        Ids = ids;
        Versions = versions;
        Vectors = vectors;
    }

    public int Count => Ids.Length;
    public ReadOnlySpan<long> Ids { get; }
    public ReadOnlySpan<byte> Versions { get; }
    public ReadOnlySpan<float> Vectors { get; }
}

/// <summary>
/// Payload layout of one posting (before the store compresses it):
/// <c>count i32 | dimension i32 | ids i64[count] | versions u8[count] padded to 8 | vectors f32[count × d]</c>.
/// A version byte lets a search tell a live copy from a stale one after a delete and re-insert of the id.
/// </summary>
internal static class PostingCodec
{
    private const int Header = 8;

    private static int VersionBytes(int n) => (n + 7) & ~7;

    public static int Size(int count, int dimension) =>
        checked(Header + count * 8 + VersionBytes(count) + count * dimension * 4);

    public static byte[] Encode(int dimension, ReadOnlySpan<long> ids, ReadOnlySpan<byte> versions, ReadOnlySpan<float> vectors)
    {
        int n = ids.Length;
        var buf = new byte[Size(n, dimension)];
        BinaryPrimitives.WriteInt32LittleEndian(buf, n);
        BinaryPrimitives.WriteInt32LittleEndian(buf.AsSpan(4), dimension);
        MemoryMarshal.AsBytes(ids).CopyTo(buf.AsSpan(Header));
        versions.CopyTo(buf.AsSpan(Header + n * 8));
        MemoryMarshal.AsBytes(vectors[..(n * dimension)]).CopyTo(buf.AsSpan(Header + n * 8 + VersionBytes(n)));
        return buf;
    }

    /// <summary>Decodes a payload; a payload whose counts do not match its length is corruption.</summary>
    public static PostingView Decode(byte[] payload, int dimension, string source, long offset)
    {
        if (payload.Length == 0) return default;
        if (payload.Length < Header) throw new CorruptIndexException(source, offset, "posting payload is shorter than its header");
        int n = BinaryPrimitives.ReadInt32LittleEndian(payload);
        int d = BinaryPrimitives.ReadInt32LittleEndian(payload.AsSpan(4));
        if (n < 0 || d != dimension || (long)Header + n * 8L + VersionBytes(n) + (long)n * d * 4 != payload.Length)
            throw new CorruptIndexException(source, offset, $"posting payload holds {payload.Length} bytes, which does not match {n} entries of dimension {d}");
        var span = payload.AsSpan();
        var ids = MemoryMarshal.Cast<byte, long>(span.Slice(Header, n * 8));
        var versions = span.Slice(Header + n * 8, n);
        var vectors = MemoryMarshal.Cast<byte, float>(span.Slice(Header + n * 8 + VersionBytes(n), n * d * 4));
        return new PostingView(ids, versions, vectors);
    }
}

/// <summary>A growable posting being assembled in memory (ids, versions, vectors).</summary>
internal sealed class PostingBuffer
{
    private readonly int _d;
    private long[] _ids;
    private byte[] _versions;
    private float[] _vectors;

    public PostingBuffer(int dimension, int capacity = 16)
    {
        _d = dimension;
        _ids = new long[Math.Max(1, capacity)];
        _versions = new byte[_ids.Length];
        _vectors = new float[_ids.Length * dimension];
    }

    public int Count { get; private set; }
    public ReadOnlySpan<long> Ids => _ids.AsSpan(0, Count);
    public ReadOnlySpan<byte> Versions => _versions.AsSpan(0, Count);
    public ReadOnlySpan<float> Vectors => _vectors.AsSpan(0, Count * _d);

    /// <summary>The backing array (rows past <see cref="Count"/> are unused capacity).</summary>
    public float[] VectorArray => _vectors;
    public ReadOnlySpan<float> Vector(int i) => _vectors.AsSpan(i * _d, _d);

    public void Add(long id, byte version, ReadOnlySpan<float> vector)
    {
        if (Count == _ids.Length)
        {
            int cap = _ids.Length * 2;
            Array.Resize(ref _ids, cap);
            Array.Resize(ref _versions, cap);
            Array.Resize(ref _vectors, cap * _d);
        }
        _ids[Count] = id;
        _versions[Count] = version;
        vector.CopyTo(_vectors.AsSpan(Count * _d, _d));
        Count++;
    }

    public bool Contains(long id) => Array.IndexOf(_ids, id, 0, Count) >= 0;

    public void RemoveAt(int i)
    {
        int last = Count - 1;
        if (i != last)
        {
            _ids[i] = _ids[last];
            _versions[i] = _versions[last];
            _vectors.AsSpan(last * _d, _d).CopyTo(_vectors.AsSpan(i * _d, _d));
        }
        Count--;
    }

    public byte[] Encode() => PostingCodec.Encode(_d, Ids, Versions, Vectors);
}
