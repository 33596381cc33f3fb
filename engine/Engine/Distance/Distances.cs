using System.Numerics.Tensors;

namespace Engine.Distance;

/// <summary>
/// Distance kernels on row-major float spans. Leaf code: knows nothing of indexes.
/// All methods are allocation-free and thread-safe.
/// </summary>
public static partial class Distances
{
    /// <summary>Squared Euclidean distance between two vectors of equal length.</summary>
    public static float SquaredL2(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        if (x.Length != y.Length) ThrowLength(nameof(y));
        float s = 0;
        for (int i = 0; i < x.Length; i++) { float d = x[i] - y[i]; s += d * d; }
        return s;
    }

    /// <summary>Inner product of two vectors of equal length.</summary>
    public static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        if (x.Length != y.Length) ThrowLength(nameof(y));
        return TensorPrimitives.Dot(x, y);
    }

    /// <summary>Squared L2 norm of a vector.</summary>
    public static float SquaredNorm(ReadOnlySpan<float> x) => TensorPrimitives.Dot(x, x);

    /// <summary>Cosine similarity; 0 when either vector is zero.</summary>
    public static float Cosine(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        if (x.Length != y.Length) ThrowLength(nameof(y));
        float nx = SquaredNorm(x), ny = SquaredNorm(y);
        if (nx == 0 || ny == 0) return 0;
        return Dot(x, y) / MathF.Sqrt(nx * ny);
    }

    /// <summary>Squared L2 from one query to each row of <paramref name="rows"/> (n × d); writes n results.</summary>
    public static void SquaredL2OneToMany(ReadOnlySpan<float> query, ReadOnlySpan<float> rows, Span<float> result)
    {
        int d = query.Length;
        int n = CheckOneToMany(d, rows.Length, result.Length);
        for (int i = 0; i < n; i++) result[i] = SquaredL2(query, rows.Slice(i * d, d));
    }

    /// <summary>Inner product of one query with each row of <paramref name="rows"/> (n × d); writes n results.</summary>
    public static void DotOneToMany(ReadOnlySpan<float> query, ReadOnlySpan<float> rows, Span<float> result)
    {
        int d = query.Length;
        int n = CheckOneToMany(d, rows.Length, result.Length);
        for (int i = 0; i < n; i++) result[i] = TensorPrimitives.Dot(query, rows.Slice(i * d, d));
    }

    /// <summary>
    /// Inner products of every row of x (nx × d) with every row of y (ny × d), written row-major into
    /// <paramref name="result"/> (nx × ny): <c>result[i * ny + j] = x_i · y_j</c>.
    /// </summary>
    public static void DotManyToMany(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int dimension, Span<float> result)
    {
        (int nx, int ny) = CheckManyToMany(x.Length, y.Length, dimension, result.Length);
        for (int i = 0; i < nx; i++)
            DotOneToMany(x.Slice(i * dimension, dimension), y, result.Slice(i * ny, ny));
    }

    /// <summary>
    /// Squared L2 between every row of x (nx × d) and every row of y (ny × d), row-major into
    /// <paramref name="result"/> (nx × ny), computed as ‖x‖² + ‖y‖² − 2 x·y from the given squared norms
    /// (lengths nx and ny). Results are clamped at 0.
    /// </summary>
    public static void SquaredL2ManyToMany(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int dimension,
        ReadOnlySpan<float> xNorms, ReadOnlySpan<float> yNorms, Span<float> result)
    {
        (int nx, int ny) = CheckManyToMany(x.Length, y.Length, dimension, result.Length);
        if (xNorms.Length < nx || yNorms.Length < ny) throw new ArgumentException("Norm spans are shorter than the row counts.");
        DotManyToMany(x, y, dimension, result);
        for (int i = 0; i < nx; i++)
        {
            var row = result.Slice(i * ny, ny);
            for (int j = 0; j < ny; j++) row[j] = MathF.Max(0, xNorms[i] + yNorms[j] - 2 * row[j]);
        }
    }

    /// <summary>Squared norms of each row of <paramref name="rows"/> (n × d) into <paramref name="norms"/> (n).</summary>
    public static void SquaredNorms(ReadOnlySpan<float> rows, int dimension, Span<float> norms)
    {
        int n = rows.Length / dimension;
        for (int i = 0; i < n; i++) norms[i] = SquaredNorm(rows.Slice(i * dimension, dimension));
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
        if (d <= 0) throw new ArgumentOutOfRangeException(nameof(d), d, "Dimension must be positive.");
        if (xLength % d != 0) ThrowLength("x");
        if (yLength % d != 0) ThrowLength("y");
        int nx = xLength / d, ny = yLength / d;
        if ((long)nx * ny > resultLength) ThrowLength("result");
        return (nx, ny);
    }

    private static void ThrowLength(string name) =>
        throw new ArgumentException($"Span '{name}' has a length that does not match the vector dimension or row count.", name);
}
