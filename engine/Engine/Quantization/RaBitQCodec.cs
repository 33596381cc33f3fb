using System.Runtime.InteropServices;
using Engine.Distance;

namespace Engine.Quantization;

/// <summary>
/// RaBitQ (Gao &amp; Long, SIGMOD 2024) and its extended multi-bit codes (SIGMOD 2025): a vector r (a residual from a
/// center c, or c = 0) is normalised, rotated by a seeded random orthogonal map P (<see cref="HadamardRotation"/>) and
/// snapped to the B-bit grid point y ∈ {−(2^B−1)/2, …, (2^B−1)/2}^d closest in direction (B = 1: the signs). The
/// inner product with any query q is estimated without bias as ⟨q − c, r⟩ ≈ f · ⟨P(q − c), y⟩ with
/// f = ‖r‖ / ⟨y, P r / ‖r‖⟩, and with probability about 1 − 2·exp(−c₀ ε₀²) the error is at most
/// ε₀ · ‖q − c‖ · ‖r‖ · √(1 − a²) / (a √(d − 1)), where a = ⟨y / ‖y‖, P r / ‖r‖⟩ (ε₀ = 1.9 by default).
/// </summary>
/// <remarks>
/// <para>Code layout (<see cref="CodeSize"/> = 12 + B × ⌈d/8⌉ bytes): three floats, then B bit planes of the code
/// values (<see cref="RaBitQKernels"/>). The floats are the additive term <c>add</c>, the multiplier f and the error
/// factor e = ‖r‖ √(1 − a²) / (a √(d − 1)). The additive term folds in everything that does not depend on the query:
/// for L2 ‖r‖² + 2 f ⟨P c, y⟩, so key = ‖q − c‖² + add − 2 f ⟨P q, y⟩; for inner product ⟨c, r⟩ − f ⟨P c, y⟩, so
/// −⟨q, x⟩ ≈ −⟨q, c⟩ − add − f ⟨P q, y⟩. Either way the query side is one rotated query and one byte table per query,
/// shared by every center (list) it is compared with. Hence the codec is made for one metric: L2, or inner product
/// (cosine arrives normalised and is inner product).</para>
/// <para>The query is kept in float (not quantised as in the paper): the estimate is the code's exact inner product
/// with the rotated float query, computed with byte-indexed table look-ups.</para>
/// <para>Training draws the rotation from the seed (no data is needed); thread safety: once trained, encode, decode and
/// estimators may be used from any number of threads.</para>
/// </remarks>
public sealed class RaBitQCodec : IResidualCodec
{
    /// <summary>Bytes of the per-vector factors in front of the bit planes.</summary>
    public const int FactorBytes = 12;

    /// <summary>The confidence parameter ε₀ of the error bound used unless a caller chooses another (the paper's 1.9;
    /// the bound then holds for about 94 % of pairs, see <see cref="Confidence"/>).</summary>
    public const float DefaultEpsilon = 1.9f;

    /// <summary>
    /// The share of (query, vector) pairs whose estimate lies within the bound at <paramref name="epsilon"/>: the
    /// estimate's error is, over the random rotation, close to Gaussian with standard deviation e · ‖q − c‖ (ε₀ counts
    /// standard deviations), so the share is erf(ε₀ / √2): 0.943 at 1.9, 0.999 at 3.3, 0.99994 at 4.
    /// </summary>
    public static double Confidence(double epsilon) => epsilon <= 0 ? 0 : Erf(epsilon / Math.Sqrt(2));

    // Abramowitz–Stegun 7.1.26 (absolute error below 1.5e-7).
    private static double Erf(double x)
    {
        double t = 1 / (1 + 0.3275911 * x);
        double y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.Exp(-x * x);
        return y;
    }

    /// <summary>Creates the codec for d-dimensional vectors at <paramref name="bits"/> bits per dimension.</summary>
    /// <param name="dimension">d.</param>
    /// <param name="bits">Bits per dimension, 1..8.</param>
    /// <param name="metric">The metric the codes serve (cosine is inner product on normalised vectors).</param>
    /// <exception cref="ArgumentOutOfRangeException">Non-positive dimension, bits outside 1..8, or an unknown metric.</exception>
    public RaBitQCodec(int dimension, int bits, Metric metric)
    {
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        if (bits < 1 || bits > 8) throw new ArgumentOutOfRangeException(nameof(bits), bits, "RaBitQ bits per dimension must be in 1..8.");
        if (!Enum.IsDefined(metric)) throw new ArgumentOutOfRangeException(nameof(metric), metric, "Unknown metric.");
        Dimension = dimension;
        Bits = bits;
        Metric = metric;
        PlaneBytes = RaBitQKernels.PlaneBytes(dimension);
        CodeSize = FactorBytes + bits * PlaneBytes;
        ErrorScale = 1f / MathF.Sqrt(Math.Max(1, dimension - 1));
    }

    /// <inheritdoc />
    public int Dimension { get; }

    /// <summary>Bits per dimension B.</summary>
    public int Bits { get; }

    /// <summary>The metric the codes serve.</summary>
    public Metric Metric { get; }

    /// <inheritdoc />
    public int CodeSize { get; }

    /// <summary>Bytes of one bit plane (⌈d/8⌉).</summary>
    public int PlaneBytes { get; }

    /// <summary>1 / √(d − 1), the dimension part of the error bound.</summary>
    internal float ErrorScale { get; }

    /// <summary>The random rotation (null until trained).</summary>
    public HadamardRotation? Rotation { get; private set; }

    /// <inheritdoc />
    public bool IsTrained => Rotation is not null;

    /// <summary>(2^B − 1) / 2: code value v stands for the grid coordinate v − <see cref="Offset"/>.</summary>
    internal float Offset => ((1 << Bits) - 1) / 2f;

    /// <inheritdoc />
    /// <remarks>Draws the rotation from <paramref name="seed"/>; the vectors are not needed (may be empty).</remarks>
    public void Train(ReadOnlySpan<float> vectors, int seed, int threads) => UseRotationSeed(seed);

    /// <summary>Installs the rotation of <paramref name="seed"/> and <paramref name="rounds"/> (what an index file stores).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Rounds outside 1..16.</exception>
    public void UseRotationSeed(int seed, int rounds = HadamardRotation.DefaultRounds) => Rotation = new HadamardRotation(Dimension, seed, rounds);

    /// <inheritdoc />
    public void Encode(ReadOnlySpan<float> vectors, Span<byte> codes) => EncodeCore(vectors, default, codes);

    /// <inheritdoc />
    public void EncodeResiduals(ReadOnlySpan<float> residuals, ReadOnlySpan<float> centers, Span<byte> codes)
    {
        if (centers.Length != residuals.Length)
            throw new ArgumentException($"centers must hold one row per residual ({residuals.Length} floats), got {centers.Length}.", nameof(centers));
        EncodeCore(residuals, centers, codes);
    }

    private void EncodeCore(ReadOnlySpan<float> vectors, ReadOnlySpan<float> centers, Span<byte> codes)
    {
        var rotation = Rotation ?? throw new InvalidOperationException("The RaBitQ codec is not trained (no rotation): call Train or UseRotationSeed first.");
        int d = Dimension;
        int n = Guard.Rows(vectors, d, nameof(vectors));
        if (codes.Length < (long)n * CodeSize) throw new ArgumentException($"codes must hold {(long)n * CodeSize} bytes.", nameof(codes));
        var u = new float[d];
        var pc = new float[d];
        var values = new byte[d];
        for (int i = 0; i < n; i++)
        {
            var r = vectors.Slice(i * d, d);
            var code = codes.Slice(i * CodeSize, CodeSize);
            var c = centers.IsEmpty ? default : centers.Slice(i * d, d);
            double norm2 = 0;
            foreach (float v in r) norm2 += (double)v * v;
            float norm = (float)Math.Sqrt(norm2);
            if (!(norm > 0))
            {
                // The zero residual: any code, multiplier and error 0; the additive term is exact (0 for both metrics).
                code.Clear();
                continue;
            }
            r.CopyTo(u);
            rotation.Forward(u);
            System.Numerics.Tensors.TensorPrimitives.Multiply(u, 1f / norm, u);
            var (dot, yNorm2) = RaBitQKernels.Quantize(u, Bits, values);
            RaBitQKernels.Pack(values, Bits, code[FactorBytes..]);
            float a = dot / MathF.Sqrt(yNorm2);
            float f = norm / dot;
            float e = norm * MathF.Sqrt(MathF.Max(0, 1 - a * a)) / a * ErrorScale;
            float g = 0;
            if (!c.IsEmpty)
            {
                c.CopyTo(pc);
                rotation.Forward(pc);
                g = GridDot(pc, values);
            }
            float add = Metric == Metric.L2
                ? (float)norm2 + 2 * f * g
                : (c.IsEmpty ? 0 : Distances.Dot(c, r)) - f * g;
            WriteFactors(code, add, f, e);
        }
    }

    // ⟨x, y⟩ with y_i = value_i − offset.
    private float GridDot(ReadOnlySpan<float> x, ReadOnlySpan<byte> values)
    {
        double s = 0, off = Offset;
        for (int i = 0; i < x.Length; i++) s += x[i] * (values[i] - off);
        return (float)s;
    }

    private static void WriteFactors(Span<byte> code, float add, float mul, float err)
    {
        var f = MemoryMarshal.Cast<byte, float>(code[..FactorBytes]);
        f[0] = add;
        f[1] = mul;
        f[2] = err;
    }

    /// <summary>The three factors of a code: additive term, multiplier f, error factor e.</summary>
    public static (float Add, float Mul, float Err) Factors(ReadOnlySpan<byte> code)
    {
        var f = MemoryMarshal.Cast<byte, float>(code[..FactorBytes]);
        return (f[0], f[1], f[2]);
    }

    /// <inheritdoc />
    /// <remarks>The reconstruction ‖r‖ · Pᵀ y / ‖y‖ (‖r‖ and a are recovered from f and e); the center is not added.</remarks>
    public void Decode(ReadOnlySpan<byte> codes, Span<float> vectors)
    {
        var rotation = Rotation ?? throw new InvalidOperationException("The RaBitQ codec is not trained (no rotation).");
        int d = Dimension, n = codes.Length / CodeSize;
        if (vectors.Length < (long)n * d) throw new ArgumentException($"vectors must hold {(long)n * d} floats.", nameof(vectors));
        var values = new byte[d];
        for (int i = 0; i < n; i++)
        {
            var code = codes.Slice(i * CodeSize, CodeSize);
            var x = vectors.Slice(i * d, d);
            var (_, f, e) = Factors(code);
            if (f == 0) { x.Clear(); continue; }
            RaBitQKernels.Unpack(code[FactorBytes..], Bits, values);
            double yNorm2 = 0;
            for (int j = 0; j < d; j++)
            {
                float y = values[j] - Offset;
                x[j] = y;
                yNorm2 += y * y;
            }
            float s = e / (ErrorScale * f * (float)Math.Sqrt(yNorm2)); // √(1 − a²)
            float a = MathF.Sqrt(MathF.Max(0, 1 - s * s));
            System.Numerics.Tensors.TensorPrimitives.Multiply(x, f * a, x);
            rotation.Backward(x);
        }
    }

    /// <summary>
    /// The unbiased estimate f · ⟨q, Pᵀ y⟩ of a code's inner product with a vector, the rotated query given
    /// (<paramref name="rotatedQuery"/> = P q): the code's "decoded" inner product, for tests and references.
    /// </summary>
    internal float EstimateInnerProduct(ReadOnlySpan<float> rotatedQuery, ReadOnlySpan<byte> code)
    {
        var values = new byte[Dimension];
        RaBitQKernels.Unpack(code[FactorBytes..], Bits, values);
        return Factors(code).Mul * GridDot(rotatedQuery, values);
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The metric is not the one the codes were made for (L2 vs inner product / cosine).</exception>
    public IDistanceEstimator CreateEstimator(Metric metric)
    {
        if ((metric == Metric.L2) != (Metric == Metric.L2))
            throw new ArgumentException($"These RaBitQ codes were made for {Metric}; an estimator for {metric} needs codes made for it.", nameof(metric));
        if (!IsTrained) throw new InvalidOperationException("The RaBitQ codec is not trained (no rotation).");
        return new RaBitQEstimator(this);
    }
}

/// <summary>
/// Estimator of <see cref="RaBitQCodec"/> codes made with the center at the origin: rotates the query and builds its byte
/// table once, then each distance is B × ⌈d/8⌉ look-ups. <see cref="Bound"/> gives the error bound of the last key.
/// </summary>
internal sealed class RaBitQEstimator(RaBitQCodec codec) : IBoundedDistanceEstimator
{
    private readonly float[] _rotated = new float[codec.Dimension];
    private readonly float[] _lut = new float[RaBitQKernels.LutFloats(codec.Dimension)];
    private float _sum, _norm2, _norm;

    public void SetQuery(ReadOnlySpan<float> query)
    {
        query[..codec.Dimension].CopyTo(_rotated);
        codec.Rotation!.Forward(_rotated);
        RaBitQKernels.BuildLut(_rotated, _lut);
        _sum = System.Numerics.Tensors.TensorPrimitives.Sum(_rotated);
        _norm2 = Distances.SquaredNorm(query[..codec.Dimension]);
        _norm = MathF.Sqrt(_norm2);
    }

    /// <summary>⟨P q, y⟩ of one code.</summary>
    private unsafe float GridDot(ReadOnlySpan<byte> code)
    {
        fixed (byte* c = code)
        fixed (float* lut = _lut)
            return RaBitQKernels.PlaneDot(c + RaBitQCodec.FactorBytes, codec.PlaneBytes, codec.Bits, lut) - codec.Offset * _sum;
    }

    public float Distance(ReadOnlySpan<byte> code)
    {
        var (add, f, _) = RaBitQCodec.Factors(code);
        float ip = f * GridDot(code);
        return codec.Metric == Metric.L2 ? _norm2 + add - 2 * ip : -add - ip;
    }

    /// <summary>The error bound of <see cref="Distance"/> for <paramref name="code"/> at confidence ε₀.</summary>
    public float Bound(ReadOnlySpan<byte> code, float epsilon)
    {
        float b = epsilon * RaBitQCodec.Factors(code).Err * _norm;
        return codec.Metric == Metric.L2 ? 2 * b : b;
    }
}
