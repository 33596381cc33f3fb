using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Engine.Distance;

namespace Engine.Quantization;

/// <summary>
/// Multi-bit binary codes by residual binarisation (BEBR, Tencent: "Binary Embedding-based Retrieval at Tencent"):
/// with the per-dimension mean μ and b stages, stage s stores sign bits B_s of the residual r_{s−1} (r_0 = x − μ) and
/// the residual becomes r_s = r_{s−1} − α_s·B_s (B_s as ±1), so x ≈ μ + Σ_s α_s·B_s. The per-stage scales α_s (the
/// mean |r_{s−1}| over a training sample, which minimises the stage's squared error for sign bits) are learnt in
/// <see cref="Train"/>. A code holds b bit planes of ⌈d/64⌉ words each, then two floats: ‖x̂‖² and ⟨μ, x̂ − μ⟩.
/// </summary>
/// <remarks>
/// <para>Distances reduce to popcounts (<see cref="Distances.PopCountXor"/>, <see cref="Distances.PopCountAnd"/>):
/// symmetric (the query encoded too): ⟨x̂, ŷ⟩ = ‖μ‖² + m_x + m_y + Σ_{s,t} α_s α_t (d − 2·popcount(B_s^x ⊕ B_t^y));
/// asymmetric (float query): the query is quantised to 4-bit levels q ≈ lo + Δ·Σ_p 2^p Q_p and
/// ⟨q, B⟩ = 2·Σ_{j∈B} q_j − Σ_j q_j with Σ_{j∈B} q_j ≈ lo·|B| + Δ·Σ_p 2^p·popcount(Q_p ∧ B). L2 follows from the stored
/// norms. Thread-safe once trained; estimators belong to one thread.</para>
/// </remarks>
public sealed class BinaryCodec : IVectorCodec
{
    /// <summary>Largest bits per dimension.</summary>
    public const int MaxBits = 4;

    /// <summary>Query levels of the asymmetric estimator (4 bits).</summary>
    internal const int QueryBits = 4;

    private float[] _mean = [];
    private float[] _scales = [];

    /// <summary>Creates an untrained codec with <paramref name="bits"/> (1..4) bits per dimension.</summary>
    /// <exception cref="ArgumentOutOfRangeException">d ≤ 0 or bits outside 1..4.</exception>
    public BinaryCodec(int dimension, int bits)
    {
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        if (bits < 1 || bits > MaxBits) throw new ArgumentOutOfRangeException(nameof(bits), bits, $"Binary codes take 1..{MaxBits} bits per dimension.");
        Dimension = dimension;
        Bits = bits;
        Words = (dimension + 63) / 64;
        CodeSize = bits * Words * 8 + 2 * sizeof(float);
    }

    /// <inheritdoc />
    public int Dimension { get; }

    /// <summary>Bits per dimension b (stages of residual binarisation).</summary>
    public int Bits { get; }

    /// <summary>64-bit words per bit plane, ⌈d/64⌉.</summary>
    public int Words { get; }

    /// <inheritdoc />
    public int CodeSize { get; }

    /// <inheritdoc />
    public bool IsTrained => _mean.Length == Dimension;

    /// <summary>The learnt per-dimension mean μ and per-stage scales α (for persistence).</summary>
    internal (float[] Mean, float[] Scales) Parameters => (_mean, _scales);

    /// <summary>Installs learnt parameters (d means, b positive finite scales).</summary>
    /// <exception cref="ArgumentException">Wrong lengths or invalid values.</exception>
    internal void SetParameters(float[] mean, float[] scales)
    {
        if (mean.Length != Dimension || scales.Length != Bits) throw new ArgumentException($"Binary codec parameters must hold d={Dimension} means and b={Bits} scales.");
        foreach (float m in mean) if (!float.IsFinite(m)) throw new ArgumentException("A binary codec mean is not finite.");
        foreach (float a in scales) if (!float.IsFinite(a) || a < 0) throw new ArgumentException("A binary codec scale is negative or not finite.");
        (_mean, _scales) = (mean, scales);
    }

    /// <summary>Learns μ and the stage scales from up to 65 536 rows (a seeded sample of larger inputs).</summary>
    /// <exception cref="ArgumentException">No rows, or rows that are not whole d-vectors.</exception>
    public void Train(ReadOnlySpan<float> vectors, int seed, int threads)
    {
        int n = Guard.Rows(vectors, Dimension, nameof(vectors));
        if (n == 0) throw new ArgumentException("Binary codec training needs at least one vector.", nameof(vectors));
        int d = Dimension, m = Math.Min(n, 65536);
        var sample = new float[(long)m * d];
        if (m == n) vectors.CopyTo(sample);
        else
        {
            var rng = new Random(seed);
            var picks = new int[n];
            for (int i = 0; i < n; i++) picks[i] = i;
            for (int i = 0; i < m; i++) { int j = rng.Next(i, n); (picks[i], picks[j]) = (picks[j], picks[i]); }
            for (int i = 0; i < m; i++) vectors.Slice(picks[i] * d, d).CopyTo(sample.AsSpan(i * d, d));
        }
        var mean = new double[d];
        for (int i = 0; i < m; i++) for (int j = 0; j < d; j++) mean[j] += sample[(long)i * d + j];
        var mu = new float[d];
        for (int j = 0; j < d; j++) mu[j] = (float)(mean[j] / m);
        for (int i = 0; i < m; i++) TensorPrimitives.Subtract(sample.AsSpan(i * d, d), mu, sample.AsSpan(i * d, d));
        var scales = new float[Bits];
        for (int s = 0; s < Bits; s++)
        {
            double abs = 0;
            foreach (float r in sample) abs += Math.Abs(r);
            float alpha = (float)(abs / sample.Length);
            scales[s] = alpha;
            for (int i = 0; i < sample.Length; i++) sample[i] -= sample[i] >= 0 ? alpha : -alpha;
        }
        SetParameters(mu, scales);
    }

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The codec is not trained.</exception>
    public void Encode(ReadOnlySpan<float> vectors, Span<byte> codes)
    {
        CheckTrained();
        int n = Guard.Rows(vectors, Dimension, nameof(vectors));
        if (codes.Length < (long)n * CodeSize) throw new ArgumentException($"codes must hold {n} × {CodeSize} bytes.", nameof(codes));
        var residual = new float[Dimension];
        var recon = new float[Dimension];
        for (int i = 0; i < n; i++) EncodeOne(vectors.Slice(i * Dimension, Dimension), codes.Slice(i * CodeSize, CodeSize), residual, recon);
    }

    private void EncodeOne(ReadOnlySpan<float> x, Span<byte> code, float[] r, float[] recon)
    {
        int d = Dimension;
        code.Clear();
        TensorPrimitives.Subtract(x, _mean, r);
        var words = MemoryMarshal.Cast<byte, ulong>(code[..(Bits * Words * 8)]);
        for (int s = 0; s < Bits; s++)
        {
            float alpha = _scales[s];
            var plane = words.Slice(s * Words, Words);
            for (int j = 0; j < d; j++)
            {
                if (r[j] >= 0) { plane[j >> 6] |= 1UL << (j & 63); r[j] -= alpha; }
                else r[j] += alpha;
            }
        }
        TensorPrimitives.Subtract(x, r, recon); // x̂ = x − final residual
        var tail = MemoryMarshal.Cast<byte, float>(code[(Bits * Words * 8)..]);
        tail[0] = TensorPrimitives.Dot(recon, recon);
        TensorPrimitives.Subtract(recon, _mean, r);
        tail[1] = TensorPrimitives.Dot(_mean, r);
    }

    /// <inheritdoc />
    public void Decode(ReadOnlySpan<byte> codes, Span<float> vectors)
    {
        CheckTrained();
        int n = codes.Length / CodeSize;
        if (codes.Length != n * CodeSize) throw new ArgumentException($"codes must be a whole number of {CodeSize}-byte codes.", nameof(codes));
        if (vectors.Length < (long)n * Dimension) throw new ArgumentException($"vectors must hold {n} × {Dimension} floats.", nameof(vectors));
        for (int i = 0; i < n; i++)
        {
            var x = vectors.Slice(i * Dimension, Dimension);
            _mean.CopyTo(x);
            var words = MemoryMarshal.Cast<byte, ulong>(codes.Slice(i * CodeSize, Bits * Words * 8));
            for (int s = 0; s < Bits; s++)
                for (int j = 0; j < Dimension; j++)
                    x[j] += (words[s * Words + (j >> 6)] >> (j & 63) & 1) != 0 ? _scales[s] : -_scales[s];
        }
    }

    /// <summary>The asymmetric estimator: float query (quantised to 4-bit levels) against codes, by AND-popcounts.</summary>
    public IDistanceEstimator CreateEstimator(Metric metric) { CheckTrained(); return new BinaryAsymmetricEstimator(this, metric); }

    /// <summary>The symmetric estimator: the query is encoded like the data and compared by XOR-popcounts.</summary>
    public IDistanceEstimator CreateSymmetricEstimator(Metric metric) { CheckTrained(); return new BinarySymmetricEstimator(this, metric); }

    /// <summary>Encodes one vector into <paramref name="code"/> (internal: estimators encode queries).</summary>
    internal void EncodeQuery(ReadOnlySpan<float> x, Span<byte> code, float[] scratchA, float[] scratchB) => EncodeOne(x, code, scratchA, scratchB);

    internal float MeanNorm => TensorPrimitives.Dot(_mean, _mean);

    private void CheckTrained()
    {
        if (!IsTrained) throw new InvalidOperationException("The binary codec is not trained.");
    }
}

/// <summary>Symmetric binary distance: both sides encoded; Σ_{s,t} α_s α_t (d − 2·popcount(B_s ⊕ B_t)).</summary>
internal sealed class BinarySymmetricEstimator(BinaryCodec codec, Metric metric) : IDistanceEstimator
{
    private readonly byte[] _query = new byte[codec.CodeSize];
    private readonly float[] _a = new float[codec.Dimension], _b = new float[codec.Dimension];
    private readonly bool _innerProduct = metric != Metric.L2;
    private readonly float _meanNorm = codec.MeanNorm;

    public void SetQuery(ReadOnlySpan<float> query) => codec.EncodeQuery(query[..codec.Dimension], _query, _a, _b);

    public float Distance(ReadOnlySpan<byte> code)
    {
        int w = codec.Words, bits = codec.Bits, d = codec.Dimension;
        var scales = codec.Parameters.Scales;
        var qw = MemoryMarshal.Cast<byte, ulong>(_query.AsSpan(0, bits * w * 8));
        var xw = MemoryMarshal.Cast<byte, ulong>(code[..(bits * w * 8)]);
        float dot = 0;
        for (int s = 0; s < bits; s++)
            for (int t = 0; t < bits; t++)
                dot += scales[s] * scales[t] * (d - 2 * Distances.PopCountXor(qw.Slice(s * w, w), xw.Slice(t * w, w)));
        var qt = MemoryMarshal.Cast<byte, float>(_query.AsSpan(bits * w * 8));
        var xt = MemoryMarshal.Cast<byte, float>(code.Slice(bits * w * 8, 8));
        dot += _meanNorm + qt[1] + xt[1];
        return _innerProduct ? -dot : qt[0] + xt[0] - 2 * dot;
    }
}

/// <summary>Asymmetric binary distance: the float query in 4-bit levels, ⟨q, B⟩ from AND-popcounts per level plane.</summary>
internal sealed class BinaryAsymmetricEstimator : IDistanceEstimator
{
    private readonly BinaryCodec _codec;
    private readonly ulong[] _planes;      // QueryBits planes of Words words
    private readonly bool _innerProduct;
    private float _lo, _step, _sum, _qMean, _qNorm;

    public BinaryAsymmetricEstimator(BinaryCodec codec, Metric metric)
    {
        _codec = codec;
        _planes = new ulong[BinaryCodec.QueryBits * codec.Words];
        _innerProduct = metric != Metric.L2;
    }

    public void SetQuery(ReadOnlySpan<float> query)
    {
        int d = _codec.Dimension, w = _codec.Words;
        var q = query[..d];
        _lo = TensorPrimitives.Min(q);
        float hi = TensorPrimitives.Max(q);
        int levels = (1 << BinaryCodec.QueryBits) - 1;
        _step = hi > _lo ? (hi - _lo) / levels : 0;
        Array.Clear(_planes);
        for (int j = 0; j < d; j++)
        {
            int u = _step > 0 ? Math.Clamp((int)MathF.Round((q[j] - _lo) / _step), 0, levels) : 0;
            for (int p = 0; p < BinaryCodec.QueryBits; p++)
                if ((u >> p & 1) != 0) _planes[p * w + (j >> 6)] |= 1UL << (j & 63);
        }
        _sum = TensorPrimitives.Sum(q);
        _qMean = TensorPrimitives.Dot(q, _codec.Parameters.Mean);
        _qNorm = TensorPrimitives.Dot(q, q);
    }

    public float Distance(ReadOnlySpan<byte> code)
    {
        int w = _codec.Words, bits = _codec.Bits;
        var scales = _codec.Parameters.Scales;
        var xw = MemoryMarshal.Cast<byte, ulong>(code[..(bits * w * 8)]);
        float dot = _qMean;
        for (int s = 0; s < bits; s++)
        {
            var plane = xw.Slice(s * w, w);
            long levelSum = 0;
            for (int p = 0; p < BinaryCodec.QueryBits; p++)
                levelSum += Distances.PopCountAnd(_planes.AsSpan(p * w, w), plane) << p;
            float selected = _lo * Distances.PopCount(plane) + _step * levelSum; // Σ_{j∈B} q_j
            dot += scales[s] * (2 * selected - _sum);
        }
        if (_innerProduct) return -dot;
        float norm = MemoryMarshal.Cast<byte, float>(code.Slice(bits * w * 8, 4))[0];
        return _qNorm + norm - 2 * dot;
    }
}
