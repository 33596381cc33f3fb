using System.Numerics.Tensors;
using Engine.Distance;

namespace Engine.Quantization;

/// <summary>
/// Optimized Product Quantization rotation (Ge et al., CVPR'13, non-parametric): an orthogonal d × d matrix R
/// learnt so that PQ of <c>x R</c> loses less than PQ of x. Distances are preserved, so an index can work
/// entirely in the rotated space.
/// </summary>
/// <remarks>
/// Training alternates (a) PQ training and encoding of X R with R fixed and (b) the orthogonal Procrustes
/// solution R = U Vᵀ from the SVD of Xᵀ Ŷ (one-sided Jacobi, <see cref="JacobiSvd"/>), starting from a seeded
/// random rotation. The PQ of the alternation has <see cref="Bits"/> bits per sub-code: the list codec's own when
/// the rotation sits in front of PQ codes, 8 in front of any other codec (whose codes have no sub-quantizers of their
/// own). Thread safety: <see cref="Apply"/> and <see cref="Revert"/> are safe once trained.
/// </remarks>
public sealed class OpqRotation : ILearnedTransform
{
    /// <summary>Most rows <see cref="Train(ReadOnlySpan{float}, int, int)"/> learns from (a seeded sample of larger inputs).</summary>
    public const int MaxTrainingRows = 8192;

    private float[] _r;   // R row-major: y_j = Σ_i x_i R[i, j]
    private float[] _rt;  // Rᵀ row-major, so Apply is a DotManyToMany against its rows

    /// <summary>Creates an identity rotation for <paramref name="subQuantizers"/> sub-spaces of d, to be trained with
    /// <paramref name="bits"/>-bit sub-quantizers (4 or 8; 8 unless the codec behind is 4-bit PQ).</summary>
    /// <exception cref="ArgumentException">M does not divide d, or bits is not 4 or 8.</exception>
    public OpqRotation(int dimension, int subQuantizers, int bits = 8)
    {
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        if (subQuantizers <= 0 || dimension % subQuantizers != 0)
            throw new ArgumentException($"OPQ sub-quantizer count M={subQuantizers} must be positive and divide the dimension d={dimension}.", nameof(subQuantizers));
        if (bits != 4 && bits != 8)
            throw new ArgumentException($"OPQ sub-quantizer bits {bits} must be 4 or 8.", nameof(bits));
        Dimension = dimension;
        M = subQuantizers;
        Bits = bits;
        _r = new float[dimension * dimension];
        for (int i = 0; i < dimension; i++) _r[i * dimension + i] = 1;
        _rt = (float[])_r.Clone();
    }

    /// <summary>Dimension d.</summary>
    public int Dimension { get; }

    /// <summary>Sub-quantizers the rotation is optimised for.</summary>
    public int M { get; }

    /// <summary>Bits per sub-code of the PQ that <see cref="Train(ReadOnlySpan{float}, int, int)"/> optimises the rotation for.</summary>
    public int Bits { get; }

    /// <summary>True after training, <see cref="SetMatrix"/> or <see cref="SetParameters"/>.</summary>
    public bool IsTrained { get; private set; }

    /// <summary>The rotation R (d × d row-major, y = x R).</summary>
    public ReadOnlySpan<float> Matrix => _r;

    /// <summary>Installs an externally computed rotation (d × d row-major; not checked for orthogonality).</summary>
    public void SetMatrix(ReadOnlySpan<float> r)
    {
        if (r.Length != Dimension * Dimension) throw new ArgumentException($"The rotation must hold d×d = {Dimension * Dimension} floats.", nameof(r));
        Guard.Finite(r, Dimension, nameof(r));
        _r = r.ToArray();
        _rt = Transpose(_r, Dimension, Dimension);
        IsTrained = true;
    }

    /// <inheritdoc />
    /// <remarks>The matrix R, d × d row-major.</remarks>
    public ReadOnlySpan<float> Parameters => _r;

    /// <inheritdoc />
    /// <remarks>Checks the length (d × d), that every entry is finite and that R is orthogonal: eight seeded random
    /// unit vectors keep their length within 10⁻³ (a damaged entry changes lengths; a trained rotation is orthogonal to
    /// float rounding).</remarks>
    public void SetParameters(ReadOnlySpan<float> parameters)
    {
        if (parameters.Length != Dimension * Dimension)
            throw new ArgumentException($"An OPQ rotation of d={Dimension} holds d×d = {Dimension * Dimension} floats, got {parameters.Length}.", nameof(parameters));
        foreach (float f in parameters)
            if (!float.IsFinite(f)) throw new ArgumentException("An OPQ rotation entry is not finite.", nameof(parameters));
        if (OrthogonalityError(parameters, Dimension) is var err && !(err <= 1e-3))
            throw new ArgumentException($"The OPQ rotation is not orthogonal (a unit vector's squared length changes by {err:G3}).", nameof(parameters));
        SetMatrix(parameters);
    }

    // Largest |‖x R‖² − 1| over eight seeded random unit vectors x.
    private static double OrthogonalityError(ReadOnlySpan<float> r, int d)
    {
        var rng = new Random(0x0F9);
        var x = new double[d];
        double worst = 0;
        for (int probe = 0; probe < 8; probe++)
        {
            double norm = 0;
            for (int i = 0; i < d; i++) { x[i] = rng.NextDouble() * 2 - 1; norm += x[i] * x[i]; }
            norm = Math.Sqrt(norm);
            double len = 0;
            for (int j = 0; j < d; j++)
            {
                double y = 0;
                for (int i = 0; i < d; i++) y += x[i] * r[i * d + j];
                len += y * y;
            }
            worst = Math.Max(worst, Math.Abs(len / (norm * norm) - 1));
        }
        return worst;
    }

    /// <inheritdoc />
    /// <remarks>Learns from at most <see cref="MaxTrainingRows"/> rows (a seeded sample of larger inputs) with
    /// <see cref="Bits"/>-bit sub-quantizers, 6 alternations (2 above 256 dimensions, where each SVD costs d³).</remarks>
    /// <exception cref="ArgumentException">Fewer rows than the 2^bits centroids of a sub-quantizer.</exception>
    public void Train(ReadOnlySpan<float> vectors, int seed, int threads)
    {
        int n = Guard.Rows(vectors, Dimension, nameof(vectors)), d = Dimension;
        if (n < 1 << Bits)
            throw new ArgumentException($"OPQ training needs at least 2^{Bits} = {1 << Bits} vectors (its {Bits}-bit sub-quantizers), got {n}.", nameof(vectors));
        ReadOnlySpan<float> rows = vectors;
        if (n > MaxTrainingRows)
        {
            var pick = Enumerable.Range(0, n).ToArray();
            new Random(seed).Shuffle(pick);
            Array.Sort(pick, 0, MaxTrainingRows);
            var sample = new float[MaxTrainingRows * d];
            for (int i = 0; i < MaxTrainingRows; i++) vectors.Slice(pick[i] * d, d).CopyTo(sample.AsSpan(i * d, d));
            rows = sample;
        }
        Train(rows, Bits, seed, threads, iterations: d > 256 ? 2 : 6);
    }

    /// <summary>y = x R for n rows (n × d in, n × d out; may not alias).</summary>
    public void Apply(ReadOnlySpan<float> x, Span<float> y) => Distances.DotManyToMany(x, _rt, Dimension, y);

    /// <summary>x = y Rᵀ for n rows (the inverse rotation).</summary>
    public void Revert(ReadOnlySpan<float> y, Span<float> x) => Distances.DotManyToMany(y, _r, Dimension, x);

    /// <summary>Trains R on n × d rows (use a sample of a few thousand rows).</summary>
    public void Train(ReadOnlySpan<float> vectors, int bits, int seed, int threads, int iterations = 6)
    {
        int n = Guard.Rows(vectors, Dimension, nameof(vectors));
        int d = Dimension;
        var x = vectors.ToArray();
        // Seeded random rotation (Gram–Schmidt of a Gaussian matrix) spreads variance over the sub-spaces.
        SetMatrix(RandomOrthogonal(d, seed));
        var y = new float[n * d];
        var codes = new byte[n * M];
        var yHat = new float[n * d];
        var xt = Transpose(x, n, d);
        for (int it = 0; it < iterations; it++)
        {
            Apply(x, y);
            var pq = new ProductQuantizer(d, M, bits);
            pq.Train(y, seed + 1000 * it, threads, iterations: 4);
            pq.Encode(y, codes);
            pq.Decode(codes, yHat);
            var yt = Transpose(yHat, n, d);
            var a = new float[d * d];
            Distances.DotManyToMany(xt, yt, n, a); // a = Xᵀ Ŷ (d × d)
            var (u, _, v) = JacobiSvd.Decompose(ToDouble(a), d);
            var r = new float[d * d];
            for (int i = 0; i < d; i++)
                for (int j = 0; j < d; j++)
                {
                    double s = 0;
                    for (int k = 0; k < d; k++) s += u[i * d + k] * v[j * d + k];
                    r[i * d + j] = (float)s;
                }
            SetMatrix(r);
        }
    }

    private static float[] RandomOrthogonal(int d, int seed)
    {
        var rng = new Random(seed);
        var q = new double[d * d]; // rows are the basis vectors
        for (int i = 0; i < d * d; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            q[i] = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        }
        JacobiSvd.OrthonormalizeRows(q, d, d);
        var r = new float[d * d];
        for (int i = 0; i < r.Length; i++) r[i] = (float)q[i];
        return r;
    }

    private static float[] Transpose(float[] a, int rows, int cols)
    {
        var t = new float[a.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
        return t;
    }

    private static double[] ToDouble(float[] a)
    {
        var r = new double[a.Length];
        for (int i = 0; i < a.Length; i++) r[i] = a[i];
        return r;
    }
}

/// <summary>Singular value decomposition of a square matrix by one-sided (Hestenes) Jacobi rotations.</summary>
internal static class JacobiSvd
{
    /// <summary>
    /// Decomposes A (n × n row-major) as U diag(S) Vᵀ. U and V are returned row-major; columns of U for
    /// (near-)zero singular values are completed to an orthonormal basis.
    /// </summary>
    public static (double[] U, double[] S, double[] V) Decompose(double[] a, int n, int maxSweeps = 30)
    {
        // Work on columns: w[j] is column j of A, v[j] column j of V (both stored as rows for locality).
        var w = new double[n * n];
        var v = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            v[i * n + i] = 1;
            for (int j = 0; j < n; j++) w[j * n + i] = a[i * n + j];
        }
        const double Eps = 1e-12;
        for (int sweep = 0; sweep < maxSweeps; sweep++)
        {
            bool rotated = false;
            for (int p = 0; p < n - 1; p++)
            {
                var wp = w.AsSpan(p * n, n);
                for (int q = p + 1; q < n; q++)
                {
                    var wq = w.AsSpan(q * n, n);
                    double alpha = TensorPrimitives.Dot<double>(wp, wp), beta = TensorPrimitives.Dot<double>(wq, wq);
                    double gamma = TensorPrimitives.Dot<double>(wp, wq);
                    if (Math.Abs(gamma) <= Eps * Math.Sqrt(alpha * beta) || gamma == 0) continue;
                    rotated = true;
                    double zeta = (beta - alpha) / (2 * gamma);
                    double t = Math.Sign(zeta == 0 ? 1 : zeta) / (Math.Abs(zeta) + Math.Sqrt(1 + zeta * zeta));
                    double c = 1 / Math.Sqrt(1 + t * t), s = c * t;
                    Rotate(wp, wq, c, s);
                    Rotate(v.AsSpan(p * n, n), v.AsSpan(q * n, n), c, s);
                }
            }
            if (!rotated) break;
        }
        var sv = new double[n];
        var u = new double[n * n]; // rows = columns of U for now
        double maxS = 0;
        for (int j = 0; j < n; j++) { sv[j] = Math.Sqrt(TensorPrimitives.Dot<double>(w.AsSpan(j * n, n), w.AsSpan(j * n, n))); maxS = Math.Max(maxS, sv[j]); }
        var valid = new bool[n];
        for (int j = 0; j < n; j++)
        {
            if (sv[j] > maxS * 1e-10 && sv[j] > 0)
            {
                for (int i = 0; i < n; i++) u[j * n + i] = w[j * n + i] / sv[j];
                valid[j] = true;
            }
        }
        Complete(u, valid, n);
        // Transpose the column stores into row-major U and V.
        var ur = new double[n * n];
        var vr = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) { ur[i * n + j] = u[j * n + i]; vr[i * n + j] = v[j * n + i]; }
        return (ur, sv, vr);
    }

    /// <summary>Gram–Schmidt (twice) on the rows of a (rows × n), in place.</summary>
    public static void OrthonormalizeRows(double[] a, int rows, int n)
    {
        for (int i = 0; i < rows; i++)
        {
            var ri = a.AsSpan(i * n, n);
            for (int pass = 0; pass < 2; pass++)
                for (int j = 0; j < i; j++)
                {
                    var rj = a.AsSpan(j * n, n);
                    double dot = TensorPrimitives.Dot<double>(ri, rj);
                    for (int e = 0; e < n; e++) ri[e] -= dot * rj[e];
                }
            double norm = Math.Sqrt(TensorPrimitives.Dot<double>(ri, ri));
            for (int e = 0; e < n; e++) ri[e] /= norm;
        }
    }

    // Fills the rows of u not marked valid with unit vectors orthogonal to all others.
    private static void Complete(double[] u, bool[] valid, int n)
    {
        int candidate = 0;
        for (int j = 0; j < n; j++)
        {
            if (valid[j]) continue;
            var rj = u.AsSpan(j * n, n);
            while (true)
            {
                rj.Clear();
                rj[candidate++ % n] = 1;
                for (int pass = 0; pass < 2; pass++)
                    for (int o = 0; o < n; o++)
                    {
                        if (!valid[o]) continue;
                        var ro = u.AsSpan(o * n, n);
                        double dot = TensorPrimitives.Dot<double>(rj, ro);
                        for (int e = 0; e < n; e++) rj[e] -= dot * ro[e];
                    }
                double norm = Math.Sqrt(TensorPrimitives.Dot<double>(rj, rj));
                if (norm > 1e-6) { for (int e = 0; e < n; e++) rj[e] /= norm; break; }
                if (candidate > 2 * n) throw new InvalidOperationException("Could not complete an orthonormal basis.");
            }
            valid[j] = true;
        }
    }

    private static void Rotate(Span<double> x, Span<double> y, double c, double s)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double a = x[i], b = y[i];
            x[i] = c * a - s * b;
            y[i] = s * a + c * b;
        }
    }
}
