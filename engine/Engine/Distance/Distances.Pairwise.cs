using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Engine.Distance;

// One-to-one reductions. Each level runs its own width with four independent accumulators (to hide FMA
// latency) and hands the remainder (< one vector) to the next narrower level, so the tail is handled once.
public static partial class Distances
{
    internal static float SquaredL2At(ReadOnlySpan<float> x, ReadOnlySpan<float> y, SimdLevel level)
    {
        if (x.Length != y.Length) ThrowLength(nameof(y));
        return Reduce<L2Op>(ref MemoryMarshal.GetReference(x), ref MemoryMarshal.GetReference(y), (nuint)x.Length, level);
    }

    internal static float DotAt(ReadOnlySpan<float> x, ReadOnlySpan<float> y, SimdLevel level)
    {
        if (x.Length != y.Length) ThrowLength(nameof(y));
        return Reduce<DotOp>(ref MemoryMarshal.GetReference(x), ref MemoryMarshal.GetReference(y), (nuint)x.Length, level);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Reduce<TOp>(ref float x, ref float y, nuint n, SimdLevel level) where TOp : struct, IPairOp =>
        level switch
        {
            SimdLevel.V512 => Reduce512<TOp>(ref x, ref y, n),
            SimdLevel.V256 => Reduce256<TOp>(ref x, ref y, n),
            SimdLevel.V128 => Reduce128<TOp>(ref x, ref y, n),
            _ => ReduceScalar<TOp>(ref x, ref y, n),
        };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot SIMD loop: skip tier-0 (short-lived CLI runs spend seconds in it)
    private static float Reduce512<TOp>(ref float x, ref float y, nuint n) where TOp : struct, IPairOp
    {
        nuint i = 0;
        float s = 0;
        if (n >= 16)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 64 <= n; i += 64)
            {
                a0 = TOp.Acc(Vector512.LoadUnsafe(ref x, i), Vector512.LoadUnsafe(ref y, i), a0);
                a1 = TOp.Acc(Vector512.LoadUnsafe(ref x, i + 16), Vector512.LoadUnsafe(ref y, i + 16), a1);
                a2 = TOp.Acc(Vector512.LoadUnsafe(ref x, i + 32), Vector512.LoadUnsafe(ref y, i + 32), a2);
                a3 = TOp.Acc(Vector512.LoadUnsafe(ref x, i + 48), Vector512.LoadUnsafe(ref y, i + 48), a3);
            }
            for (; i + 16 <= n; i += 16)
                a0 = TOp.Acc(Vector512.LoadUnsafe(ref x, i), Vector512.LoadUnsafe(ref y, i), a0);
            s = Vector512.Sum((a0 + a1) + (a2 + a3));
        }
        return i == n ? s : s + Reduce256<TOp>(ref Unsafe.Add(ref x, i), ref Unsafe.Add(ref y, i), n - i);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot SIMD loop: skip tier-0 (short-lived CLI runs spend seconds in it)
    private static float Reduce256<TOp>(ref float x, ref float y, nuint n) where TOp : struct, IPairOp
    {
        nuint i = 0;
        float s = 0;
        if (n >= 8)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 32 <= n; i += 32)
            {
                a0 = TOp.Acc(Vector256.LoadUnsafe(ref x, i), Vector256.LoadUnsafe(ref y, i), a0);
                a1 = TOp.Acc(Vector256.LoadUnsafe(ref x, i + 8), Vector256.LoadUnsafe(ref y, i + 8), a1);
                a2 = TOp.Acc(Vector256.LoadUnsafe(ref x, i + 16), Vector256.LoadUnsafe(ref y, i + 16), a2);
                a3 = TOp.Acc(Vector256.LoadUnsafe(ref x, i + 24), Vector256.LoadUnsafe(ref y, i + 24), a3);
            }
            for (; i + 8 <= n; i += 8)
                a0 = TOp.Acc(Vector256.LoadUnsafe(ref x, i), Vector256.LoadUnsafe(ref y, i), a0);
            s = Vector256.Sum((a0 + a1) + (a2 + a3));
        }
        return i == n ? s : s + Reduce128<TOp>(ref Unsafe.Add(ref x, i), ref Unsafe.Add(ref y, i), n - i);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot SIMD loop: skip tier-0 (short-lived CLI runs spend seconds in it)
    private static float Reduce128<TOp>(ref float x, ref float y, nuint n) where TOp : struct, IPairOp
    {
        nuint i = 0;
        float s = 0;
        if (n >= 4)
        {
            Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 16 <= n; i += 16)
            {
                a0 = TOp.Acc(Vector128.LoadUnsafe(ref x, i), Vector128.LoadUnsafe(ref y, i), a0);
                a1 = TOp.Acc(Vector128.LoadUnsafe(ref x, i + 4), Vector128.LoadUnsafe(ref y, i + 4), a1);
                a2 = TOp.Acc(Vector128.LoadUnsafe(ref x, i + 8), Vector128.LoadUnsafe(ref y, i + 8), a2);
                a3 = TOp.Acc(Vector128.LoadUnsafe(ref x, i + 12), Vector128.LoadUnsafe(ref y, i + 12), a3);
            }
            for (; i + 4 <= n; i += 4)
                a0 = TOp.Acc(Vector128.LoadUnsafe(ref x, i), Vector128.LoadUnsafe(ref y, i), a0);
            s = Vector128.Sum((a0 + a1) + (a2 + a3));
        }
        return i == n ? s : s + ReduceScalar<TOp>(ref Unsafe.Add(ref x, i), ref Unsafe.Add(ref y, i), n - i);
    }

    private static float ReduceScalar<TOp>(ref float x, ref float y, nuint n) where TOp : struct, IPairOp
    {
        float s0 = 0, s1 = 0;
        nuint i = 0;
        for (; i + 2 <= n; i += 2)
        {
            s0 = TOp.Acc(Unsafe.Add(ref x, i), Unsafe.Add(ref y, i), s0);
            s1 = TOp.Acc(Unsafe.Add(ref x, i + 1), Unsafe.Add(ref y, i + 1), s1);
        }
        if (i < n) s0 = TOp.Acc(Unsafe.Add(ref x, i), Unsafe.Add(ref y, i), s0);
        return s0 + s1;
    }
}
