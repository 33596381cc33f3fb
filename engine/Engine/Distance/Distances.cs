using System.Runtime.Intrinsics;
using System.Runtime.InteropServices;

namespace Engine.Distance;

/// <summary>
/// Distance kernels on row-major float spans. Leaf code: knows nothing of indexes.
/// All methods are allocation-free (after a per-thread warm-up of scratch buffers) and thread-safe.
/// </summary>
/// <remarks>
/// Every kernel has one shape: a span-in/span-out driver that walks Vector512 → Vector256 → Vector128 → scalar,
/// chosen once per process (<c>Vector512.IsHardwareAccelerated</c> etc., so the <c>DOTNET_Enable*</c> switches
/// select narrower paths). Internal overloads taking a <see cref="SimdLevel"/> let tests run every level.
/// Accumulation is in float with fused multiply-add and several independent partial sums, so results differ
/// from a sequential sum by rounding only.
/// </remarks>
public static partial class Distances
{
    /// <summary>Squared Euclidean distance between two vectors of equal length.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static float SquaredL2(ReadOnlySpan<float> x, ReadOnlySpan<float> y) => SquaredL2At(x, y, Simd.Best);

    /// <summary>Inner product of two vectors of equal length.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y) => DotAt(x, y, Simd.Best);

    /// <summary>Squared L2 norm of a vector.</summary>
    public static float SquaredNorm(ReadOnlySpan<float> x) => SquaredNormAt(x, Simd.Best);

    /// <summary>Scales <paramref name="v"/> to unit length in place (a zero vector stays zero): the normalisation of cosine
    /// rows and queries in Flat, IVF and HNSW, and of spherical k-means centroids.</summary>
    internal static void NormalizeInPlace(Span<float> v)
    {
        float norm = SquaredNorm(v);
        if (norm > 0) System.Numerics.Tensors.TensorPrimitives.Multiply(v, 1f / MathF.Sqrt(norm), v);
    }

    /// <summary>Cosine similarity; 0 when either vector is zero.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static float Cosine(ReadOnlySpan<float> x, ReadOnlySpan<float> y) => CosineAt(x, y, Simd.Best);

    /// <summary>Squared L2 from one query to each row of <paramref name="rows"/> (n × d); writes n results.</summary>
    /// <exception cref="ArgumentException">Rows are not a whole number of d-vectors, or result is shorter than n.</exception>
    public static void SquaredL2OneToMany(ReadOnlySpan<float> query, ReadOnlySpan<float> rows, Span<float> result) =>
        SquaredL2OneToManyAt(query, rows, result, Simd.Best);

    /// <summary>Inner product of one query with each row of <paramref name="rows"/> (n × d); writes n results.</summary>
    /// <exception cref="ArgumentException">Rows are not a whole number of d-vectors, or result is shorter than n.</exception>
    public static void DotOneToMany(ReadOnlySpan<float> query, ReadOnlySpan<float> rows, Span<float> result) =>
        DotOneToManyAt(query, rows, result, Simd.Best);

    /// <summary>
    /// Inner products of every row of x (nx × d) with every row of y (ny × d), written row-major into
    /// <paramref name="result"/> (nx × ny): <c>result[i * ny + j] = x_i · y_j</c>.
    /// </summary>
    /// <remarks>A register-tiled GEMM; it is fastest with x the short side (a batch of queries) and y the long one.
    /// Uses a per-thread scratch buffer of about nx·d floats, grown on first use.</remarks>
    /// <exception cref="ArgumentOutOfRangeException">d ≤ 0.</exception>
    /// <exception cref="ArgumentException">x or y is not a whole number of rows, or result is shorter than nx·ny.</exception>
    public static void DotManyToMany(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int dimension, Span<float> result) =>
        DotManyToManyAt(x, y, dimension, result, Simd.Best);

    /// <summary>
    /// Squared L2 between every row of x (nx × d) and every row of y (ny × d), row-major into
    /// <paramref name="result"/> (nx × ny), computed as ‖x‖² + ‖y‖² − 2 x·y from the given squared norms
    /// (lengths nx and ny). Results are clamped at 0.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">d ≤ 0.</exception>
    /// <exception cref="ArgumentException">Bad row counts, short result, or norm spans shorter than the row counts.</exception>
    public static void SquaredL2ManyToMany(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int dimension,
        ReadOnlySpan<float> xNorms, ReadOnlySpan<float> yNorms, Span<float> result) =>
        SquaredL2ManyToManyAt(x, y, dimension, xNorms, yNorms, result, Simd.Best);

    /// <summary>
    /// Turns a row of dot products with y (length n) into squared L2 distances in place: max(0, (qn + ‖y_j‖²) − 2 dot_j),
    /// with the operations in that order at every SIMD level (bit-identical to the scalar formula). Not
    /// <see cref="SquaredL2ManyToMany"/>'s tail, which adds in another order ((−2 dot + ‖y‖²) + ‖x‖²): the IVF coarse
    /// quantizer keeps the rounding its probe order (and its recorded golden results) were made with.
    /// </summary>
    /// <param name="dots">⟨x, y_j⟩ for j &lt; n, overwritten with the distances.</param>
    /// <param name="xNorm">‖x‖².</param>
    /// <param name="yNorms">‖y_j‖², at least n of them.</param>
    internal static void SquaredL2FromDots(Span<float> dots, float xNorm, ReadOnlySpan<float> yNorms)
    {
        yNorms = yNorms[..dots.Length];
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var qn = Vector512.Create(xNorm);
            var two = Vector512.Create(2f);
            for (; j + 16 <= dots.Length; j += 16)
            {
                var v = Vector512.Max(Vector512<float>.Zero, qn + Vector512.Create(yNorms.Slice(j, 16)) - two * Vector512.Create(dots.Slice(j, 16)));
                v.CopyTo(dots.Slice(j, 16));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var qn = Vector256.Create(xNorm);
            var two = Vector256.Create(2f);
            for (; j + 8 <= dots.Length; j += 8)
            {
                var v = Vector256.Max(Vector256<float>.Zero, qn + Vector256.Create(yNorms.Slice(j, 8)) - two * Vector256.Create(dots.Slice(j, 8)));
                v.CopyTo(dots.Slice(j, 8));
            }
        }
        for (; j < dots.Length; j++) dots[j] = MathF.Max(0, xNorm + yNorms[j] - 2 * dots[j]);
    }

    /// <summary>Squared norms of each row of <paramref name="rows"/> (n × d) into <paramref name="norms"/> (n).</summary>
    /// <exception cref="ArgumentOutOfRangeException">d ≤ 0.</exception>
    /// <exception cref="ArgumentException">Rows are not a whole number of d-vectors, or norms is shorter than n.</exception>
    public static void SquaredNorms(ReadOnlySpan<float> rows, int dimension, Span<float> norms) =>
        SquaredNormsAt(rows, dimension, norms, Simd.Best);

    internal static float SquaredNormAt(ReadOnlySpan<float> x, SimdLevel level)
    {
        ref float p = ref MemoryMarshal.GetReference(x);
        return Reduce<DotOp>(ref p, ref p, (nuint)x.Length, level);
    }

    internal static float CosineAt(ReadOnlySpan<float> x, ReadOnlySpan<float> y, SimdLevel level)
    {
        float dot = DotAt(x, y, level);
        float nx = SquaredNormAt(x, level), ny = SquaredNormAt(y, level);
        if (nx == 0 || ny == 0) return 0;
        // Product of square roots: nx * ny alone overflows for norms above ~1e19.
        return dot / (MathF.Sqrt(nx) * MathF.Sqrt(ny));
    }

    internal static void SquaredNormsAt(ReadOnlySpan<float> rows, int dimension, Span<float> norms, SimdLevel level)
    {
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        if (rows.Length % dimension != 0) ThrowLength(nameof(rows));
        int n = rows.Length / dimension;
        if (norms.Length < n) ThrowLength(nameof(norms));
        for (int i = 0; i < n; i++) norms[i] = SquaredNormAt(rows.Slice(i * dimension, dimension), level);
    }

    private static int CheckOneToMany(int d, int rowsLength, int resultLength)
    {
        if (d == 0) { if (rowsLength != 0) ThrowLength("rows"); return 0; }
        if (rowsLength % d != 0) ThrowLength("rows");
        int n = rowsLength / d;
        if (resultLength < n) ThrowLength("result");
        return n;
    }

    private static (int, int) CheckManyToMany(int xLength, int yLength, int d, int resultLength)
    {
        if (d <= 0) throw new ArgumentOutOfRangeException("dimension", d, "Dimension must be positive.");
        if (xLength % d != 0) ThrowLength("x");
        if (yLength % d != 0) ThrowLength("y");
        int nx = xLength / d, ny = yLength / d;
        if ((long)nx * ny > resultLength) ThrowLength("result");
        return (nx, ny);
    }

    private static void ThrowLength(string name) =>
        throw new ArgumentException($"Span '{name}' has a length that does not match the vector dimension or row count.", name);

    /// <summary>
    /// True when a sample of at most 1 000 of the <paramref name="n"/> rows (fixed stride) all have norms within
    /// 1 ± 1e-3: data on the unit sphere (normalised embeddings), which inner-product partitions treat by angle.
    /// </summary>
    internal static bool SampledUnitRows(ReadOnlySpan<float> rows, int n, int dimension)
    {
        int step = Math.Max(1, n / 1000);
        for (int i = 0; i < n; i += step)
        {
            var row = rows.Slice(i * dimension, dimension);
            if (MathF.Abs(MathF.Sqrt(Dot(row, row)) - 1) > 1e-3f) return false;
        }
        return n > 0;
    }
}
