using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Engine.Distance;
using Engine.Quantization;
using Engine.Runtime;

namespace Engine.Index.Hnsw;

/// <summary>
/// The vectors of an <see cref="HnswIndex"/>, one row per node slot in one contiguous array: f32 rows, f16 rows
/// (distances by the float×half kernel) or SQ8 codes (decoded into a scratch row, then the float kernel).
/// Distances are keys: squared L2, or the negated inner product, so smaller is always closer.
/// </summary>
internal sealed class HnswVectors
{
    private float[] _f32 = [];
    private Half[] _f16 = [];
    private byte[] _sq8 = [];

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

    public long MemoryBytes => (long)_f32.Length * 4 + (long)_f16.Length * 2 + _sq8.Length;

    /// <summary>Grows to hold <paramref name="rows"/> rows (existing rows kept).</summary>
    public void Resize(int rows)
    {
        long len = (long)rows * Dimension;
        if (len > Array.MaxLength) throw new InvalidOperationException($"HNSW capacity exceeded: {rows} rows of dimension {Dimension} do not fit one array.");
        switch (Encoding)
        {
            case VectorEncoding.Flat: Array.Resize(ref _f32, (int)len); break;
            case VectorEncoding.F16: Array.Resize(ref _f16, (int)len); break;
            default: Array.Resize(ref _sq8, (int)len); break;
        }
    }

    /// <summary>Stores <paramref name="x"/> (already in the working space) in row <paramref name="node"/>.</summary>
    public void Set(int node, ReadOnlySpan<float> x)
    {
        int d = Dimension;
        switch (Encoding)
        {
            case VectorEncoding.Flat: x[..d].CopyTo(_f32.AsSpan(node * d, d)); break;
            case VectorEncoding.F16: System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(x[..d], _f16.AsSpan(node * d, d)); break;
            default: Codec.Encode(x, _sq8.AsSpan(node * d, d)); break;
        }
    }

    /// <summary>Decodes row <paramref name="node"/> into <paramref name="x"/> (d floats).</summary>
    public void Get(int node, Span<float> x)
    {
        int d = Dimension;
        switch (Encoding)
        {
            case VectorEncoding.Flat: _f32.AsSpan(node * d, d).CopyTo(x); break;
            case VectorEncoding.F16: System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(_f16.AsSpan(node * d, d), x[..d]); break;
            default: Codec.Decode(_sq8.AsSpan(node * d, d), x); break;
        }
    }

    /// <summary>Row <paramref name="node"/> as floats: the stored row itself (f32) or decoded into <paramref name="scratch"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<float> Row(int node, Span<float> scratch)
    {
        if (Encoding == VectorEncoding.Flat) return new ReadOnlySpan<float>(_f32, node * Dimension, Dimension);
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
        if (Encoding == VectorEncoding.Flat)
        {
            var x = new ReadOnlySpan<float>(_f32, node * d, d);
            return InnerProduct ? -Distances.Dot(q, x) : Distances.SquaredL2(q, x);
        }
        if (Encoding == VectorEncoding.F16)
        {
            var h = new ReadOnlySpan<Half>(_f16, node * d, d);
            return InnerProduct ? -Distances.Dot(q, h) : Distances.SquaredL2(q, h);
        }
        return Codec.Key(q, new ReadOnlySpan<byte>(_sq8, node * d, d), InnerProduct, scratch);
    }

    /// <summary>Starts loading row <paramref name="node"/> into the cache.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Prefetch(int node)
    {
        int d = Dimension;
        switch (Encoding)
        {
            case VectorEncoding.Flat: Runtime.Prefetch.Range(MemoryMarshal.AsBytes(new ReadOnlySpan<float>(_f32, node * d, d))); break;
            case VectorEncoding.F16: Runtime.Prefetch.Range(MemoryMarshal.AsBytes(new ReadOnlySpan<Half>(_f16, node * d, d))); break;
            default: Runtime.Prefetch.Range(new ReadOnlySpan<byte>(_sq8, node * d, d)); break;
        }
    }

    /// <summary>The first <paramref name="rows"/> rows as bytes (for saving).</summary>
    public ReadOnlySpan<byte> Bytes(int rows) => Encoding switch
    {
        VectorEncoding.Flat => MemoryMarshal.AsBytes(_f32.AsSpan(0, rows * Dimension)),
        VectorEncoding.F16 => MemoryMarshal.AsBytes(_f16.AsSpan(0, rows * Dimension)),
        _ => _sq8.AsSpan(0, rows * Dimension),
    };

    /// <summary>Replaces the rows with <paramref name="bytes"/> (a loaded section).</summary>
    public void SetBytes(byte[] bytes)
    {
        switch (Encoding)
        {
            case VectorEncoding.Flat: _f32 = MemoryMarshal.Cast<byte, float>(bytes).ToArray(); break;
            case VectorEncoding.F16: _f16 = MemoryMarshal.Cast<byte, Half>(bytes).ToArray(); break;
            default: _sq8 = bytes; break;
        }
    }
}
