using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Engine.Distance;

/// <summary>
/// The per-element accumulation of a pairwise reduction (squared difference or product) at every vector width.
/// Kernels are generic over a struct implementing it, so the JIT emits one specialised loop per operation.
/// </summary>
internal interface IPairOp
{
    static abstract float Acc(float x, float y, float acc);
    static abstract Vector128<float> Acc(Vector128<float> x, Vector128<float> y, Vector128<float> acc);
    static abstract Vector256<float> Acc(Vector256<float> x, Vector256<float> y, Vector256<float> acc);
    static abstract Vector512<float> Acc(Vector512<float> x, Vector512<float> y, Vector512<float> acc);
}

/// <summary>acc + (x − y)².</summary>
internal readonly struct L2Op : IPairOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Acc(float x, float y, float acc) { float d = x - y; return d * d + acc; }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Acc(Vector128<float> x, Vector128<float> y, Vector128<float> acc)
    { var d = x - y; return Vector128.FusedMultiplyAdd(d, d, acc); }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Acc(Vector256<float> x, Vector256<float> y, Vector256<float> acc)
    { var d = x - y; return Vector256.FusedMultiplyAdd(d, d, acc); }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Acc(Vector512<float> x, Vector512<float> y, Vector512<float> acc)
    { var d = x - y; return Vector512.FusedMultiplyAdd(d, d, acc); }
}

/// <summary>acc + x·y.</summary>
internal readonly struct DotOp : IPairOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Acc(float x, float y, float acc) => x * y + acc;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Acc(Vector128<float> x, Vector128<float> y, Vector128<float> acc) =>
        Vector128.FusedMultiplyAdd(x, y, acc);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Acc(Vector256<float> x, Vector256<float> y, Vector256<float> acc) =>
        Vector256.FusedMultiplyAdd(x, y, acc);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Acc(Vector512<float> x, Vector512<float> y, Vector512<float> acc) =>
        Vector512.FusedMultiplyAdd(x, y, acc);
}
