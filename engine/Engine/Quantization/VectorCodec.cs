using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Engine.Distance;

namespace Engine.Quantization;

/// <summary>How full vectors are kept for exact re-ranking (faiss <c>Refine(...)</c> / <c>RFlat</c>).</summary>
public enum VectorEncoding
{
    /// <summary>32-bit floats (exact).</summary>
    Flat = 0,

    /// <summary>8-bit scalar quantisation with a trained per-dimension range.</summary>
    SQ8 = 1,

    /// <summary>IEEE half precision.</summary>
    F16 = 2,
}

/// <summary>
/// Encodes whole vectors as f32, SQ8 or f16 and computes distances from a float query to an encoded vector.
/// Thread safety: encode/decode/distance are read-only once trained.
/// </summary>
public sealed class VectorCodec : IVectorCodec
{
    private float[] _min = [];
    private float[] _step = [];

    /// <summary>Creates a codec; SQ8 needs <see cref="Train"/> (or <see cref="SetRange"/>) before use.</summary>
    public VectorCodec(int dimension, VectorEncoding encoding)
    {
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        Dimension = dimension;
        Encoding = encoding;
        CodeSize = encoding switch
        {
            VectorEncoding.Flat => dimension * sizeof(float),
            VectorEncoding.SQ8 => dimension,
            VectorEncoding.F16 => dimension * 2,
            _ => throw new ArgumentOutOfRangeException(nameof(encoding), encoding, "Unknown vector encoding."),
        };
    }

    /// <summary>Vector dimension.</summary>
    public int Dimension { get; }

    /// <summary>The encoding.</summary>
    public VectorEncoding Encoding { get; }

    /// <summary>Bytes per encoded vector.</summary>
    public int CodeSize { get; }

    /// <summary>True when the codec can encode (always for Flat and F16).</summary>
    public bool IsTrained => Encoding != VectorEncoding.SQ8 || _min.Length == Dimension;

    /// <summary>SQ8 per-dimension minimum and step (empty for other encodings), for persistence.</summary>
    internal (float[] Min, float[] Step) Range => (_min, _step);

    /// <summary>Learns the SQ8 per-dimension range from n × d rows (no-op for other encodings).</summary>
    public void Train(ReadOnlySpan<float> vectors)
    {
        if (Encoding != VectorEncoding.SQ8) return;
        int n = Guard.Rows(vectors, Dimension, nameof(vectors));
        if (n == 0) throw new ArgumentException("SQ8 training needs at least one vector.", nameof(vectors));
        var min = new float[Dimension];
        var max = new float[Dimension];
        vectors[..Dimension].CopyTo(min);
        vectors[..Dimension].CopyTo(max);
        for (int i = 1; i < n; i++)
        {
            var row = vectors.Slice(i * Dimension, Dimension);
            TensorPrimitives.Min(min, row, min);
            TensorPrimitives.Max(max, row, max);
        }
        var step = new float[Dimension];
        for (int j = 0; j < Dimension; j++) step[j] = (max[j] - min[j]) / 255f;
        SetRange(min, step);
    }

    /// <summary>Installs an SQ8 range (per-dimension minimum and step, d floats each).</summary>
    internal void SetRange(float[] min, float[] step)
    {
        if (min.Length != Dimension || step.Length != Dimension) throw new ArgumentException("SQ8 range must hold d floats.");
        _min = min;
        _step = step;
    }

    /// <inheritdoc />
    void IVectorCodec.Train(ReadOnlySpan<float> vectors, int seed, int threads) => Train(vectors);

    /// <inheritdoc />
    public IDistanceEstimator CreateEstimator(Metric metric) => new VectorCodecEstimator(this, metric);

    /// <summary>Encodes n × d floats (one vector or more) into n × <see cref="CodeSize"/> bytes.</summary>
    public void Encode(ReadOnlySpan<float> x, Span<byte> code)
    {
        int n = Math.Max(1, x.Length / Dimension);
        if (code.Length < n * CodeSize) throw new ArgumentException($"code must hold {n * CodeSize} bytes.", nameof(code));
        for (int i = 0; i < n; i++) EncodeOne(x.Slice(i * Dimension), code.Slice(i * CodeSize, CodeSize));
    }

    private void EncodeOne(ReadOnlySpan<float> x, Span<byte> code)
    {
        switch (Encoding)
        {
            case VectorEncoding.Flat: MemoryMarshal.AsBytes(x[..Dimension]).CopyTo(code); break;
            case VectorEncoding.F16: TensorPrimitives.ConvertToHalf(x[..Dimension], MemoryMarshal.Cast<byte, Half>(code[..CodeSize])); break;
            default:
                for (int j = 0; j < Dimension; j++)
                {
                    float v = _step[j] > 0 ? (x[j] - _min[j]) / _step[j] : 0;
                    code[j] = (byte)Math.Clamp((int)MathF.Round(v), 0, 255);
                }
                break;
        }
    }

    /// <summary>Decodes n codes (n × <see cref="CodeSize"/> bytes, one or more) into n × d floats.</summary>
    public void Decode(ReadOnlySpan<byte> code, Span<float> x)
    {
        int n = Math.Max(1, code.Length / CodeSize);
        if (x.Length < n * Dimension) throw new ArgumentException($"x must hold {n * Dimension} floats.", nameof(x));
        for (int i = 0; i < n; i++) DecodeOne(code.Slice(i * CodeSize), x.Slice(i * Dimension, Dimension));
    }

    private void DecodeOne(ReadOnlySpan<byte> code, Span<float> x)
    {
        switch (Encoding)
        {
            case VectorEncoding.Flat: MemoryMarshal.Cast<byte, float>(code[..CodeSize]).CopyTo(x); break;
            case VectorEncoding.F16: TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(code[..CodeSize]), x[..Dimension]); break;
            default:
                for (int j = 0; j < Dimension; j++) x[j] = _min[j] + code[j] * _step[j];
                break;
        }
    }

    /// <summary>
    /// Prepares <paramref name="query"/> for many <see cref="PreparedKey"/> calls (re-ranking a query's candidates):
    /// for SQ8 writes q − min (L2) or q × step (inner product) into <paramref name="prepared"/> (d floats) and returns
    /// the constant term (⟨q, min⟩ for inner product, else 0); other encodings need nothing and return 0.
    /// </summary>
    internal float Prepare(ReadOnlySpan<float> query, bool innerProduct, Span<float> prepared)
    {
        if (Encoding != VectorEncoding.SQ8) return 0;
        var q = query[..Dimension];
        var p = prepared[..Dimension];
        if (!innerProduct)
        {
            TensorPrimitives.Subtract(q, _min, p);
            return 0;
        }
        TensorPrimitives.Multiply(q, _step, p);
        return Distances.Dot(q, _min);
    }

    /// <summary>
    /// <see cref="Key"/> after <see cref="Prepare"/>: the same key (up to float rounding) from the prepared form and
    /// its constant; <paramref name="scratch"/> as for <see cref="Key"/>.
    /// </summary>
    internal float PreparedKey(ReadOnlySpan<float> query, ReadOnlySpan<float> prepared, float constant, ReadOnlySpan<byte> code, bool innerProduct, Span<float> scratch)
    {
        if (Encoding != VectorEncoding.SQ8) return Key(query, code, innerProduct, scratch);
        var c = code[..CodeSize];
        var p = prepared[..Dimension];
        return innerProduct ? -(constant + Distances.DotBytes(p, c)) : Distances.SquaredL2Sq8Shifted(p, _step, c);
    }

    /// <summary>
    /// Distance key (smaller is better: squared L2, or negated inner product) from <paramref name="query"/> to a
    /// code; <paramref name="scratch"/> (d floats) is used for F16 (SQ8 distances are fused, see <see cref="Distances.SquaredL2Sq8"/>).
    /// </summary>
    public float Key(ReadOnlySpan<float> query, ReadOnlySpan<byte> code, bool innerProduct, Span<float> scratch)
    {
        ReadOnlySpan<float> x;
        if (Encoding == VectorEncoding.SQ8) // fused: the codes are widened in registers, never decoded to scratch
        {
            var c = code[..CodeSize];
            return innerProduct ? -Distances.DotSq8(query[..Dimension], _min, _step, c) : Distances.SquaredL2Sq8(query[..Dimension], _min, _step, c);
        }
        if (Encoding == VectorEncoding.Flat) x = MemoryMarshal.Cast<byte, float>(code[..CodeSize]);
        else { DecodeOne(code, scratch); x = scratch[..Dimension]; }
        if (innerProduct) return -Distances.Dot(query, x);
        return Distances.SquaredL2(query, x);
    }
}
