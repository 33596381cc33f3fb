using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Distance;

// One query against many contiguous rows. Memory-bandwidth bound by design: the rows are read exactly once,
// strictly in address order (a single hardware-prefetch stream), each with four independent accumulator
// chains; the query stays in L1. Measured on Zen 4 (see bench `scan`), walking 2 or 4 rows side by side
// (2–4 concurrent streams, query loaded once per group) reached only ~40–60 % of single-thread stream-read
// bandwidth against ~85–95 % for this one-stream order, and software prefetch did not help either layout.
public static partial class Distances
{
    internal static void SquaredL2OneToManyAt(ReadOnlySpan<float> query, ReadOnlySpan<float> rows, Span<float> result, SimdLevel level)
    {
        int n = CheckOneToMany(query.Length, rows.Length, result.Length);
        OneToMany<L2Op>(query, rows, n, result, level);
    }

    internal static void DotOneToManyAt(ReadOnlySpan<float> query, ReadOnlySpan<float> rows, Span<float> result, SimdLevel level)
    {
        int n = CheckOneToMany(query.Length, rows.Length, result.Length);
        OneToMany<DotOp>(query, rows, n, result, level);
    }

    private static void OneToMany<TOp>(ReadOnlySpan<float> query, ReadOnlySpan<float> rows, int n, Span<float> result,
        SimdLevel level) where TOp : struct, IPairOp
    {
        if (n == 0) return;
        ref float q = ref MemoryMarshal.GetReference(query);
        ref float r = ref MemoryMarshal.GetReference(rows);
        ref float o = ref MemoryMarshal.GetReference(result);
        nuint d = (nuint)query.Length;
        int i = 0;
        // Short rows: four rows per step (four accumulator chains, the query chunk loaded once, one horizontal
        // reduction for all four). Four rows of at most 1 KiB are still one contiguous address stream.
        if (d <= BlockedRowMax && level == SimdLevel.V512 && d >= 16) i = OneToMany4x512<TOp>(ref q, ref r, n, d, ref o);
        else if (d <= BlockedRowMax && level == SimdLevel.V256 && d >= 8) i = OneToMany4x256<TOp>(ref q, ref r, n, d, ref o);
        for (; i < n; i++)
            Unsafe.Add(ref o, i) = Reduce<TOp>(ref q, ref Unsafe.Add(ref r, (nuint)i * d), d, level);
    }

    private const nuint BlockedRowMax = 256;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int OneToMany4x512<TOp>(ref float q, ref float r, int n, nuint d, ref float o) where TOp : struct, IPairOp
    {
        nuint full = d & ~(nuint)15;
        int i = 0;
        for (; i + 4 <= n; i += 4)
        {
            ref float r0 = ref Unsafe.Add(ref r, (nuint)i * d);
            ref float r1 = ref Unsafe.Add(ref r0, d);
            ref float r2 = ref Unsafe.Add(ref r1, d);
            ref float r3 = ref Unsafe.Add(ref r2, d);
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (nuint j = 0; j < full; j += 16)
            {
                var qv = Vector512.LoadUnsafe(ref q, j);
                a0 = TOp.Acc(qv, Vector512.LoadUnsafe(ref r0, j), a0);
                a1 = TOp.Acc(qv, Vector512.LoadUnsafe(ref r1, j), a1);
                a2 = TOp.Acc(qv, Vector512.LoadUnsafe(ref r2, j), a2);
                a3 = TOp.Acc(qv, Vector512.LoadUnsafe(ref r3, j), a3);
            }
            var s = Sum4(a0.GetLower() + a0.GetUpper(), a1.GetLower() + a1.GetUpper(), a2.GetLower() + a2.GetUpper(), a3.GetLower() + a3.GetUpper());
            if (full < d) s += Tail4<TOp>(ref q, ref r0, d, full);
            s.StoreUnsafe(ref o, (nuint)i);
        }
        return i;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int OneToMany4x256<TOp>(ref float q, ref float r, int n, nuint d, ref float o) where TOp : struct, IPairOp
    {
        nuint full = d & ~(nuint)7;
        int i = 0;
        for (; i + 4 <= n; i += 4)
        {
            ref float r0 = ref Unsafe.Add(ref r, (nuint)i * d);
            ref float r1 = ref Unsafe.Add(ref r0, d);
            ref float r2 = ref Unsafe.Add(ref r1, d);
            ref float r3 = ref Unsafe.Add(ref r2, d);
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (nuint j = 0; j < full; j += 8)
            {
                var qv = Vector256.LoadUnsafe(ref q, j);
                a0 = TOp.Acc(qv, Vector256.LoadUnsafe(ref r0, j), a0);
                a1 = TOp.Acc(qv, Vector256.LoadUnsafe(ref r1, j), a1);
                a2 = TOp.Acc(qv, Vector256.LoadUnsafe(ref r2, j), a2);
                a3 = TOp.Acc(qv, Vector256.LoadUnsafe(ref r3, j), a3);
            }
            var s = Sum4(a0, a1, a2, a3);
            if (full < d) s += Tail4<TOp>(ref q, ref r0, d, full);
            s.StoreUnsafe(ref o, (nuint)i);
        }
        return i;
    }

    // [sum(a0), sum(a1), sum(a2), sum(a3)] of four 8-lane vectors: halves added, then the 4×4 block of partial
    // sums transposed by unpacks and added (no horizontal-add instructions).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Sum4(Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3)
    {
        Vector128<float> b0 = a0.GetLower() + a0.GetUpper(), b1 = a1.GetLower() + a1.GetUpper();
        Vector128<float> b2 = a2.GetLower() + a2.GetUpper(), b3 = a3.GetLower() + a3.GetUpper();
        if (Sse.IsSupported)
        {
            // s01 = [b0.0+b0.2, b1.0+b1.2, b0.1+b0.3, b1.1+b1.3], s23 likewise
            var s01 = Sse.UnpackLow(b0, b1) + Sse.UnpackHigh(b0, b1);
            var s23 = Sse.UnpackLow(b2, b3) + Sse.UnpackHigh(b2, b3);
            // [s01.0, s01.1, s23.0, s23.1] + [s01.2, s01.3, s23.2, s23.3]
            return Sse.MoveLowToHigh(s01, s23) + Sse.MoveHighToLow(s23, s01);
        }
        return Vector128.Create(Vector128.Sum(b0), Vector128.Sum(b1), Vector128.Sum(b2), Vector128.Sum(b3));
    }

    // The dimensions past the last whole vector of four consecutive rows (row stride d), one value per row.
    private static Vector128<float> Tail4<TOp>(ref float q, ref float r0, nuint d, nuint from) where TOp : struct, IPairOp =>
        Vector128.Create(
            Reduce128<TOp>(ref Unsafe.Add(ref q, from), ref Unsafe.Add(ref r0, from), d - from),
            Reduce128<TOp>(ref Unsafe.Add(ref q, from), ref Unsafe.Add(ref r0, d + from), d - from),
            Reduce128<TOp>(ref Unsafe.Add(ref q, from), ref Unsafe.Add(ref r0, 2 * d + from), d - from),
            Reduce128<TOp>(ref Unsafe.Add(ref q, from), ref Unsafe.Add(ref r0, 3 * d + from), d - from));
}
