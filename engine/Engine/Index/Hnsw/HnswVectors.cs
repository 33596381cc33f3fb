using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Engine.Distance;
using Engine.Quantization;

namespace Engine.Index.Hnsw;

/// <summary>
/// The vectors of an <see cref="HnswIndex"/>, one row per node slot in one contiguous block: f32 rows, f16 rows
/// (distances by the float×half kernel) or SQ8 codes (decoded into a scratch row, then the float kernel). The block
/// is native memory (64-byte aligned, sized in 64-bit bytes: 1 M rows of d = 384 f32 are 1.5 GB and grow past what one
/// .NET array holds) or, after a mapped load, the VECS section of the file's read-only mapping; both are read
/// through one base pointer, so the distance path has no branch on where the rows live. The first write after a
/// mapped load copies the rows to the heap (<see cref="EnsureWritable"/>). Distances are keys: squared L2, or the
/// negated inner product, so smaller is always closer.
/// </summary>
/// <remarks>Growing or copying the block replaces the base pointer and frees the old block: callers do it only while no
/// reader runs (the index's exclusive section); so does <see cref="Free"/> (the index's Dispose). A block never freed
/// that way is freed by the finalizer.</remarks>
internal sealed unsafe class HnswVectors
{
    private byte* _owned;     // the native block when the rows live in memory (null while mapped or empty)
    private long _ownedBytes;
    private byte* _base;
    private int _rows;        // capacity in rows

    public HnswVectors(int dimension, VectorEncoding encoding, bool innerProduct)
    {
        Dimension = dimension;
        Encoding = encoding;
        InnerProduct = innerProduct;
        Codec = new VectorCodec(dimension, encoding);
    }

    public int Dimension { get; }
    public VectorEncoding Encoding { get; }
    public bool InnerProduct { get; }

    /// <summary>The codec (SQ8 range, encode/decode).</summary>
    public VectorCodec Codec { get; }

    /// <summary>Bytes per stored row.</summary>
    public int RowBytes => Codec.CodeSize;

    /// <summary>True while the rows are read from a file mapping.</summary>
    public bool IsMapped { get; private set; }

    /// <summary>Memory bytes held (0 while mapped).</summary>
    public long MemoryBytes => _ownedBytes;

    /// <summary>Bytes read in place from the mapping (0 on the heap).</summary>
    public long MappedBytes => IsMapped ? (long)_rows * RowBytes : 0;

    /// <summary>Grows (or copies from the mapping) to a memory block of <paramref name="rows"/> rows; existing rows are kept.</summary>
    /// <exception cref="OutOfMemoryException">The block cannot be allocated.</exception>
    public void Resize(int rows)
    {
        long bytes = (long)rows * RowBytes;
        byte* block = bytes > 0 ? (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64) : null;
        long keep = Math.Min((long)_rows * RowBytes, bytes);
        if (keep > 0) Buffer.MemoryCopy(_base, block, bytes, keep);
        FreeOwned();
        if (bytes > 0) GC.AddMemoryPressure(bytes);
        _owned = block;
        _ownedBytes = bytes;
        _base = block;
        _rows = rows;
        IsMapped = false;
    }

    /// <summary>Frees the memory block (the index is disposed: no reader runs and none can start).</summary>
    public void Free()
    {
        FreeOwned();
        _base = null;
        _rows = 0;
        IsMapped = false;
        GC.SuppressFinalize(this);
    }

    ~HnswVectors() => FreeOwned();

    private void FreeOwned()
    {
        if (_owned is null) return;
        NativeMemory.AlignedFree(_owned);
        GC.RemoveMemoryPressure(_ownedBytes);
        _owned = null;
        _ownedBytes = 0;
    }

    /// <summary>Copies mapped rows to the heap before the first write.</summary>
    public void EnsureWritable()
    {
        if (IsMapped) Resize(_rows);
    }

    /// <summary>Reads <paramref name="rows"/> rows in place at <paramref name="pointer"/> (a verified mapped section).</summary>
    public void MapTo(byte* pointer, int rows)
    {
        FreeOwned();
        _base = pointer;
        _rows = rows;
        IsMapped = true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte* RowPointer(int node) => _base + (long)node * RowBytes;

    /// <summary>Stores <paramref name="x"/> (already in the working space) in row <paramref name="node"/> (heap rows only).</summary>
    public void Set(int node, ReadOnlySpan<float> x)
    {
        int d = Dimension;
        byte* p = RowPointer(node);
        switch (Encoding)
        {
            case VectorEncoding.Flat: x[..d].CopyTo(new Span<float>(p, d)); break;
            case VectorEncoding.F16: System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(x[..d], new Span<Half>(p, d)); break;
            default: Codec.Encode(x, new Span<byte>(p, d)); break;
        }
    }

    /// <summary>Decodes row <paramref name="node"/> into <paramref name="x"/> (d floats).</summary>
    public void Get(int node, Span<float> x)
    {
        int d = Dimension;
        byte* p = RowPointer(node);
        switch (Encoding)
        {
            case VectorEncoding.Flat: new ReadOnlySpan<float>(p, d).CopyTo(x); break;
            case VectorEncoding.F16: System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(p, d), x[..d]); break;
            default: Codec.Decode(new ReadOnlySpan<byte>(p, d), x); break;
        }
    }

    /// <summary>Row <paramref name="node"/> as floats: the stored row itself (f32) or decoded into <paramref name="scratch"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<float> Row(int node, Span<float> scratch)
    {
        if (Encoding == VectorEncoding.Flat) return new ReadOnlySpan<float>(RowPointer(node), Dimension);
        Get(node, scratch);
        return scratch[..Dimension];
    }

    /// <summary>
    /// The key from <paramref name="q"/> to row <paramref name="node"/>; <paramref name="scratch"/> (d floats) is
    /// used by SQ8 only.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Key(ReadOnlySpan<float> q, int node, Span<float> scratch)
    {
        int d = Dimension;
        byte* p = RowPointer(node);
        if (Encoding == VectorEncoding.Flat)
        {
            var x = new ReadOnlySpan<float>(p, d);
            return InnerProduct ? -Distances.Dot(q, x) : Distances.SquaredL2(q, x);
        }
        if (Encoding == VectorEncoding.F16)
        {
            var h = new ReadOnlySpan<Half>(p, d);
            return InnerProduct ? -Distances.Dot(q, h) : Distances.SquaredL2(q, h);
        }
        return Codec.Key(q, new ReadOnlySpan<byte>(p, d), InnerProduct, scratch);
    }

    /// <summary>Starts loading row <paramref name="node"/> into the cache.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Prefetch(int node) => Runtime.Prefetch.Range(new ReadOnlySpan<byte>(RowPointer(node), RowBytes));

    /// <summary>
    /// <paramref name="length"/> bytes of the rows from byte <paramref name="offset"/> (saving writes the rows in
    /// pieces: all of them may pass what one span holds).
    /// </summary>
    public ReadOnlySpan<byte> Bytes(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset + length > (long)_rows * RowBytes) throw new ArgumentOutOfRangeException(nameof(offset));
        return new ReadOnlySpan<byte>(_base + offset, length);
    }

    /// <summary>Copies <paramref name="rows"/> rows from <paramref name="source"/> into a fresh memory block.</summary>
    public void CopyFrom(byte* source, int rows)
    {
        _rows = 0;
        Resize(rows);
        long bytes = (long)rows * RowBytes;
        if (bytes > 0) Buffer.MemoryCopy(source, _base, bytes, bytes);
    }
}
