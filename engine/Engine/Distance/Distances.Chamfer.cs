using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace Engine.Distance;

// Chamfer similarity (ColBERT's MaxSim): for every query token the best inner product with any document token,
// summed over the query tokens. Each inner product is the float dot reduction of the requested SIMD level, so the
// kernel inherits its accuracy (tested against a double reference at every level).
public static partial class Distances
{
    [ThreadStatic] private static float[]? t_chamferHalf;
    [ThreadStatic] private static float[]? t_chamferBest;

    /// <summary>
    /// Chamfer (MaxSim) similarity Σ_i max_j ⟨q_i, x_j⟩ of a query token set (<paramref name="queryTokens"/>,
    /// nq × d row-major) against a document token set (<paramref name="documentTokens"/>, nx × d). 0 for an empty
    /// query; −∞ for a non-empty query against an empty document.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">d is negative.</exception>
    /// <exception cref="ArgumentException">A span is not a whole number of d-vectors.</exception>
    public static float Chamfer(ReadOnlySpan<float> queryTokens, ReadOnlySpan<float> documentTokens, int dimension) =>
        ChamferAt(queryTokens, documentTokens, dimension, Simd.Best);

    /// <summary>
    /// <see cref="Chamfer(ReadOnlySpan{float}, ReadOnlySpan{float}, int)"/> against half-precision document tokens
    /// (widened to float in chunks; the arithmetic stays in float).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">d is negative.</exception>
    /// <exception cref="ArgumentException">A span is not a whole number of d-vectors.</exception>
    public static float Chamfer(ReadOnlySpan<float> queryTokens, ReadOnlySpan<Half> documentTokens, int dimension) =>
        ChamferAt(queryTokens, documentTokens, dimension, Simd.Best);

    internal static float ChamferAt(ReadOnlySpan<float> q, ReadOnlySpan<float> x, int d, SimdLevel level)
    {
        (int nq, int nx) = CheckChamfer(q.Length, x.Length, d);
        if (nq == 0) return 0;
        if (nx == 0) return float.NegativeInfinity;
        if (d == 0) return 0;
        ref float qb = ref MemoryMarshal.GetReference(q);
        ref float xb = ref MemoryMarshal.GetReference(x);
        float sum = 0;
        for (int i = 0; i < nq; i++)
        {
            ref float qi = ref System.Runtime.CompilerServices.Unsafe.Add(ref qb, i * d);
            float best = float.NegativeInfinity;
            for (int j = 0; j < nx; j++)
            {
                float s = Reduce<DotOp>(ref qi, ref System.Runtime.CompilerServices.Unsafe.Add(ref xb, j * d), (nuint)d, level);
                if (s > best) best = s;
            }
            sum += best;
        }
        return sum;
    }

    internal static float ChamferAt(ReadOnlySpan<float> q, ReadOnlySpan<Half> x, int d, SimdLevel level)
    {
        (_, int nx) = CheckChamfer(q.Length, x.Length, d);
        if (nx == 0 || d == 0) return ChamferAt(q, ReadOnlySpan<float>.Empty, d, level);
        // Widen a block of document rows at a time into a stack buffer (bounded size), keeping per-token maxima.
        int rowsPerChunk = Math.Max(1, HalfChunk * 4 / d);
        int nq = q.Length / d;
        var best = Scratch(ref t_chamferBest, nq).AsSpan(0, nq);
        best.Fill(float.NegativeInfinity);
        float[] buffer = Scratch(ref t_chamferHalf, Math.Min(nx, rowsPerChunk) * d);
        for (int j0 = 0; j0 < nx; j0 += rowsPerChunk)
        {
            int rows = Math.Min(rowsPerChunk, nx - j0);
            var chunk = buffer.AsSpan(0, rows * d);
            TensorPrimitives.ConvertToSingle(x.Slice(j0 * d, rows * d), chunk);
            for (int i = 0; i < nq; i++)
            {
                var qi = q.Slice(i * d, d);
                for (int j = 0; j < rows; j++)
                {
                    float s = Reduce<DotOp>(ref MemoryMarshal.GetReference(qi), ref MemoryMarshal.GetReference(chunk[(j * d)..]), (nuint)d, level);
                    if (s > best[i]) best[i] = s;
                }
            }
        }
        float sum = 0;
        for (int i = 0; i < nq; i++) sum += best[i];
        return sum;
    }

    private static (int, int) CheckChamfer(int qLength, int xLength, int d)
    {
        if (d < 0) throw new ArgumentOutOfRangeException("dimension", d, "Dimension must be >= 0.");
        if (d == 0)
        {
            if (qLength != 0) ThrowLength("queryTokens");
            if (xLength != 0) ThrowLength("documentTokens");
            return (0, 0);
        }
        if (qLength % d != 0) ThrowLength("queryTokens");
        if (xLength % d != 0) ThrowLength("documentTokens");
        return (qLength / d, xLength / d);
    }
}
