using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace Engine.Distance;

// Float query against half-precision (f16) storage. The stored vector is widened chunk by chunk into a
// stack buffer with the vectorised TensorPrimitives conversion (F16C/AVX-512 where present), then reduced
// with the float kernel, so storage halves while the arithmetic stays in float.
public static partial class Distances
{
    private const int HalfChunk = 256;

    /// <summary>Squared Euclidean distance between a float query and a half-precision vector of equal length.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static float SquaredL2(ReadOnlySpan<float> query, ReadOnlySpan<Half> x) => ReduceHalf<L2Op>(query, x, Simd.Best);

    /// <summary>Inner product of a float query with a half-precision vector of equal length.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static float Dot(ReadOnlySpan<float> query, ReadOnlySpan<Half> x) => ReduceHalf<DotOp>(query, x, Simd.Best);

    internal static float SquaredL2At(ReadOnlySpan<float> query, ReadOnlySpan<Half> x, SimdLevel level) => ReduceHalf<L2Op>(query, x, level);

    internal static float DotAt(ReadOnlySpan<float> query, ReadOnlySpan<Half> x, SimdLevel level) => ReduceHalf<DotOp>(query, x, level);

    private static float ReduceHalf<TOp>(ReadOnlySpan<float> query, ReadOnlySpan<Half> x, SimdLevel level) where TOp : struct, IPairOp
    {
        if (query.Length != x.Length) ThrowLength(nameof(x));
        Span<float> buf = stackalloc float[HalfChunk];
        float s = 0;
        for (int i = 0; i < x.Length; i += HalfChunk)
        {
            int len = Math.Min(HalfChunk, x.Length - i);
            var chunk = buf[..len];
            TensorPrimitives.ConvertToSingle(x.Slice(i, len), chunk);
            s += Reduce<TOp>(ref MemoryMarshal.GetReference(query[i..]), ref MemoryMarshal.GetReference(chunk), (nuint)len, level);
        }
        return s;
    }
}
