using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Engine.Distance;

namespace Engine.Quantization;

/// <summary>
/// Multi-bit binary codes by residual binarisation (BEBR, Tencent: "Binary Embedding-based Retrieval at Tencent"):
/// with the per-dimension mean μ and b stages, stage s stores sign bits B_s of the residual r_{s−1} (r_0 = x − μ) and
/// the residual becomes r_s = r_{s−1} − α_s ⊙ B_s (B_s as ±1), so x ≈ μ + Σ_s α_s ⊙ B_s. The scales α_{s,j} are learnt
/// per stage and per dimension in <see cref="Train"/> (the mean |r_{s−1,j}| over a training sample, which minimises
/// the stage's squared error in each dimension for sign bits): one scale per stage would spend the same ±α on a
/// dimension that never varies (an image border) as on the busiest one. A code holds b bit planes of ⌈d/64⌉ words
/// each, then two floats: ‖x̂‖² and ⟨μ, x̂ − μ⟩.
/// </summary>
/// <remarks>
/// <para>Distances reduce to popcounts (<see cref="Distances.PopCountXor"/>, <see cref="Distances.PopCountAnd"/>).
/// Asymmetric (float query): for each stage the weighted query w_s = α_s ⊙ q is quantised to 4-bit levels on a grid
/// that holds 0 exactly (w_s ≈ lo_s + Δ_s·Σ_p 2^p W_{s,p}; sparse queries and residuals are mostly zeros, and a grid
/// that missed 0 would bias every selected zero the same way), and
/// ⟨q, x̂ − μ⟩ = Σ_s (2·Σ_{j∈B_s} w_{s,j} − Σ_j w_{s,j}) with Σ_{j∈B_s} w_{s,j} ≈ lo_s·|B_s| + Δ_s·Σ_p 2^p·popcount(W_{s,p} ∧ B_s)
/// and Σ_j w_{s,j} taken over the same quantised levels, so the rounding of bits set and bits clear cancels.
/// Symmetric (the query encoded too): ⟨x̂, ŷ⟩ = ‖μ‖² + m_x + m_y + Σ_{s,t} (Σ_j ω_{st,j} − 2·Σ_{j∈B_s^x ⊕ B_t^y} ω_{st,j})
/// with ω_{st} = α_s ⊙ α_t; when every stage has one scale for all dimensions this is one XOR-popcount per pair
/// (exact), otherwise ω_{st} is held in 8-bit level planes (fixed at training) and the XOR is AND-counted against them.
/// L2 follows from the stored norms. Thread-safe once trained; estimators belong to one thread.</para>
/// </remarks>
public sealed class BinaryCodec : IVectorCodec
{
    /// <summary>Largest bits per dimension.</summary>
    public const int MaxBits = 4;

    /// <summary>Query levels of the asymmetric estimator (4 bits).</summary>
    internal const int QueryBits = 4;

    /// <summary>Level bits of the symmetric estimator's per-dimension pair weights ω_{st}.</summary>
    internal const int WeightBits = 8;

    private float[] _mean = [];
    private float[] _scales = [];            // b × d, stage-major
    private bool _uniform;                   // every stage has one scale for all dimensions
    private ulong[] _weightPlanes = [];      // b² pairs × WeightBits planes × Words (non-uniform scales only)
    private float[] _weightSteps = [], _weightTotals = []; // per pair: level step and Σ_j ω̃_{st,j}

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

    /// <summary>The learnt per-dimension mean μ and the b × d stage scales α (stage-major; for persistence).</summary>
    internal (float[] Mean, float[] Scales) Parameters => (_mean, _scales);

    /// <summary>True when every stage has one scale for all dimensions (the symmetric estimator is then exact).</summary>
    internal bool UniformScales => _uniform;

    /// <summary>
    /// Installs learnt parameters: d means and either b × d stage scales (stage-major) or b scales, one per stage for
    /// every dimension (files written before per-dimension scales).
    /// </summary>
    /// <exception cref="ArgumentException">Wrong lengths or invalid values.</exception>
    internal void SetParameters(float[] mean, float[] scales)
    {
        int d = Dimension, b = Bits;
        if (mean.Length != d || (scales.Length != b && scales.Length != b * d))
            throw new ArgumentException($"Binary codec parameters must hold d={d} means and b×d={b * d} (or b={b}) scales, got {mean.Length} and {scales.Length}.");
        foreach (float m in mean) if (!float.IsFinite(m)) throw new ArgumentException("A binary codec mean is not finite.");
        foreach (float a in scales) if (!float.IsFinite(a) || a < 0) throw new ArgumentException("A binary codec scale is negative or not finite.");
        var full = scales;
        if (scales.Length == b && d > 1)
        {
            full = new float[b * d];
            for (int s = 0; s < b; s++) full.AsSpan(s * d, d).Fill(scales[s]);
        }
        bool uniform = true;
        for (int s = 0; s < b && uniform; s++)
            for (int j = 1; j < d; j++)
                if (full[s * d + j] != full[s * d]) { uniform = false; break; }
        var (planes, steps, totals) = uniform ? ([], [], []) : WeightPlanes(full);
        (_weightPlanes, _weightSteps, _weightTotals, _uniform) = (planes, steps, totals, uniform);
        (_mean, _scales) = (mean, full);
    }

    // The symmetric estimator's pair weights ω_{st,j} = α_{s,j}·α_{t,j} (≥ 0) in WeightBits level planes from 0
    // (word-interleaved, as the asymmetric estimator's query planes).
    private (ulong[] Planes, float[] Steps, float[] Totals) WeightPlanes(float[] scales)
    {
        int d = Dimension, b = Bits, w = Words, levels = (1 << WeightBits) - 1;
        var planes = new ulong[b * b * WeightBits * w];
        var steps = new float[b * b];
        var totals = new float[b * b];
        var omega = new float[d];
        for (int s = 0; s < b; s++)
            for (int t = 0; t < b; t++)
            {
                int pair = s * b + t;
                TensorPrimitives.Multiply(scales.AsSpan(s * d, d), scales.AsSpan(t * d, d), omega);
                float max = TensorPrimitives.Max(omega), step = max > 0 ? max / levels : 0;
                steps[pair] = step;
                if (step > 0)
                    totals[pair] = step * QuantizeToPlanes(omega, 0, step, levels, planes.AsSpan(pair * WeightBits * w, WeightBits * w), WeightBits, w);
            }
        return (planes, steps, totals);
    }

    /// <summary>
    /// Rounds each w_j to its level u_j = ⌊(w_j − lo)/step + ½⌋ in 0..<paramref name="levels"/> and writes bit p of
    /// every u_j into plane p, word-interleaved: word k of plane p at [k·planeCount + p] (<paramref name="words"/> ×
    /// <paramref name="planeCount"/> words, every one written; bits past w's length are 0). Returns Σ_j u_j. One 64-coordinate word at a time: the levels by
    /// Vector256 arithmetic, each plane's word by sign-bit extraction of the levels shifted left.
    /// </summary>
    internal static long QuantizeToPlanes(ReadOnlySpan<float> w, float lo, float step, int levels, Span<ulong> planes, int planeCount, int words)
    {
        float inv = 1 / step;
        int d = w.Length;
        long sum = 0;
        Span<int> u = stackalloc int[64];
        ref float w0 = ref MemoryMarshal.GetReference(w);
        ref int u0 = ref MemoryMarshal.GetReference(u);
        bool vector = Vector256.IsHardwareAccelerated;
        for (int k = 0; k < words; k++)
        {
            int j0 = k * 64, len = Math.Min(64, d - j0), t = 0;
            if (vector)
            {
                var vlo = Vector256.Create(lo);
                var vinv = Vector256.Create(inv);
                var half = Vector256.Create(0.5f);
                var top = Vector256.Create(levels);
                var acc = Vector256<int>.Zero;
                for (; t + 8 <= len; t += 8)
                {
                    var f = Vector256.Floor((Vector256.LoadUnsafe(ref w0, (nuint)(j0 + t)) - vlo) * vinv + half);
                    var level = Vector256.Min(Vector256.Max(Vector256.ConvertToInt32(f), Vector256<int>.Zero), top);
                    level.StoreUnsafe(ref u0, (nuint)t);
                    acc += level;
                }
                sum += Vector256.Sum(acc);
            }
            for (; t < len; t++)
            {
                int level = Math.Clamp((int)MathF.Floor((w[j0 + t] - lo) * inv + 0.5f), 0, levels);
                u[t] = level;
                sum += level;
            }
            u[len..].Clear();
            for (int p = 0; p < planeCount; p++)
            {
                ulong bits = 0;
                if (vector)
                    for (int c = 0; c < 8; c++)
                        bits |= (ulong)Vector256.ExtractMostSignificantBits(Vector256.ShiftLeft(Vector256.LoadUnsafe(ref u0, (nuint)(c * 8)), 31 - p)) << (c * 8);
                else
                    for (int c = 0; c < 64; c++) bits |= (ulong)((u[c] >> p) & 1) << c;
                planes[k * planeCount + p] = bits;
            }
        }
        return sum;
    }

    /// <summary>Level planes (Words × WeightBits, word-interleaved), step and total of the pair weights ω_{st} (non-uniform scales).</summary>
    internal (ReadOnlyMemory<ulong> Planes, float Step, float Total) PairWeights(int s, int t)
    {
        int pair = s * Bits + t;
        return (_weightPlanes.AsMemory(pair * WeightBits * Words, WeightBits * Words), _weightSteps[pair], _weightTotals[pair]);
    }

    /// <summary>Learns μ and the per-stage, per-dimension scales from up to 65 536 rows (a seeded sample of larger inputs).</summary>
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
        var scales = new float[Bits * d];
        var abs = new double[d];
        for (int s = 0; s < Bits; s++)
        {
            Array.Clear(abs);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < d; j++) abs[j] += Math.Abs(sample[(long)i * d + j]);
            var alpha = scales.AsSpan(s * d, d);
            for (int j = 0; j < d; j++) alpha[j] = (float)(abs[j] / m);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < d; j++)
                {
                    ref float r = ref sample[(long)i * d + j];
                    r -= r >= 0 ? alpha[j] : -alpha[j];
                }
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
            var alpha = _scales.AsSpan(s * d, d);
            var plane = words.Slice(s * Words, Words);
            for (int j = 0; j < d; j++)
            {
                if (r[j] >= 0) { plane[j >> 6] |= 1UL << (j & 63); r[j] -= alpha[j]; }
                else r[j] += alpha[j];
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
                    x[j] += (words[s * Words + (j >> 6)] >> (j & 63) & 1) != 0 ? _scales[s * Dimension + j] : -_scales[s * Dimension + j];
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


/// <summary>
/// Symmetric binary distance: both sides encoded; per stage pair Σ_j ω_{st,j} − 2·Σ_{j∈B_s ⊕ B_t} ω_{st,j}, one
/// XOR-popcount when the scales are uniform, otherwise the XOR AND-counted against the pair's weight level planes.
/// </summary>
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
        if (codec.UniformScales)
        {
            for (int s = 0; s < bits; s++)
                for (int t = 0; t < bits; t++)
                    dot += scales[s * d] * scales[t * d] * (d - 2 * Distances.PopCountXor(qw.Slice(s * w, w), xw.Slice(t * w, w)));
        }
        else
        {
            for (int s = 0; s < bits; s++)
                for (int t = 0; t < bits; t++)
                {
                    var a = qw.Slice(s * w, w);
                    var b = xw.Slice(t * w, w);
                    var (planes, step, total) = codec.PairWeights(s, t);
                    var ps = planes.Span;
                    long levels = 0;
                    for (int k = 0; k < w; k++)
                    {
                        ulong x = a[k] ^ b[k];
                        var pk = ps.Slice(k * BinaryCodec.WeightBits, BinaryCodec.WeightBits);
                        for (int p = 0; p < BinaryCodec.WeightBits; p++)
                            levels += (long)BitOperations.PopCount(x & pk[p]) << p;
                    }
                    dot += total - 2 * step * levels;
                }
        }
        var qt = MemoryMarshal.Cast<byte, float>(_query.AsSpan(bits * w * 8));
        var xt = MemoryMarshal.Cast<byte, float>(code.Slice(bits * w * 8, 8));
        dot += _meanNorm + qt[1] + xt[1];
        return _innerProduct ? -dot : qt[0] + xt[0] - 2 * dot;
    }
}

/// <summary>
/// Asymmetric binary distance: per stage s the weighted query α_s ⊙ q in 4-bit levels on a grid through 0,
/// ⟨q, α_s ⊙ B_s⟩ from AND-popcounts of its level planes against the stage's bit plane.
/// </summary>
internal sealed class BinaryAsymmetricEstimator : IDistanceEstimator
{
    private readonly BinaryCodec _codec;
    private readonly ulong[] _planes;      // Bits × QueryBits planes of Words words
    private readonly float[] _lo, _step, _total, _weighted;
    private readonly bool _innerProduct;
    private float _qMean, _qNorm;

    public BinaryAsymmetricEstimator(BinaryCodec codec, Metric metric)
    {
        _codec = codec;
        _planes = new ulong[codec.Bits * BinaryCodec.QueryBits * codec.Words];
        _lo = new float[codec.Bits];
        _step = new float[codec.Bits];
        _total = new float[codec.Bits];
        _weighted = new float[codec.Dimension];
        _innerProduct = metric != Metric.L2;
    }

    /// <summary>
    /// Level grid of values in [lo, hi] with <paramref name="levels"/> + 1 points that holds 0 exactly: (start, step).
    /// </summary>
    internal static (float Lo, float Step) ZeroGrid(float lo, float hi, int levels)
    {
        lo = MathF.Min(lo, 0);
        hi = MathF.Max(hi, 0);
        if (!(hi > lo)) return (lo, 0);
        if (lo < 0 && hi > 0)
        {
            float step = (hi - lo) / (levels - 1);
            return (MathF.Floor(lo / step) * step, step);
        }
        return (lo, (hi - lo) / levels);
    }

    public void SetQuery(ReadOnlySpan<float> query)
    {
        int d = _codec.Dimension, w = _codec.Words, bits = _codec.Bits;
        var q = query[..d];
        var scales = _codec.Parameters.Scales;
        int levels = (1 << BinaryCodec.QueryBits) - 1;
        var wq = _weighted.AsSpan();
        for (int s = 0; s < bits; s++)
        {
            TensorPrimitives.Multiply(q, scales.AsSpan(s * d, d), wq);
            var (lo, step) = ZeroGrid(TensorPrimitives.Min(wq), TensorPrimitives.Max(wq), levels);
            var planes = _planes.AsSpan(s * BinaryCodec.QueryBits * w, BinaryCodec.QueryBits * w);
            long sum = 0;
            if (step > 0) sum = BinaryCodec.QuantizeToPlanes(wq, lo, step, levels, planes, BinaryCodec.QueryBits, w);
            else planes.Clear(); // every weighted coordinate is lo
            _lo[s] = lo;
            _step[s] = step;
            _total[s] = lo * d + step * sum; // Σ_j of the quantised weighted query
        }
        _qMean = TensorPrimitives.Dot(q, _codec.Parameters.Mean);
        _qNorm = TensorPrimitives.Dot(q, q);
    }

    public float Distance(ReadOnlySpan<byte> code)
    {
        int w = _codec.Words, bits = _codec.Bits;
        var xw = MemoryMarshal.Cast<byte, ulong>(code[..(bits * w * 8)]);
        float dot = _qMean;
        for (int s = 0; s < bits; s++)
        {
            // One pass over the stage's words: |B_s| and the level-weighted AND counts (query planes word-interleaved).
            var plane = xw.Slice(s * w, w);
            var q = _planes.AsSpan(s * BinaryCodec.QueryBits * w, BinaryCodec.QueryBits * w);
            long count = 0, levelSum = 0;
            for (int k = 0; k < plane.Length; k++)
            {
                ulong x = plane[k];
                var qk = q.Slice(k * BinaryCodec.QueryBits, BinaryCodec.QueryBits);
                count += BitOperations.PopCount(x);
                levelSum += BitOperations.PopCount(x & qk[0]) + (BitOperations.PopCount(x & qk[1]) << 1)
                    + (BitOperations.PopCount(x & qk[2]) << 2) + (BitOperations.PopCount(x & qk[3]) << 3);
            }
            dot += 2 * (_lo[s] * count + _step[s] * levelSum) - _total[s]; // Σ_{j∈B_s} α_{s,j} q_j twice, less the whole sum
        }
        if (_innerProduct) return -dot;
        float norm = MemoryMarshal.Cast<byte, float>(code.Slice(bits * w * 8, 4))[0];
        return _qNorm + norm - 2 * dot;
    }
}
