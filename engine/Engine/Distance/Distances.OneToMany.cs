using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Engine.Distance;

// One query against many contiguous rows. Memory-bandwidth bound by design: rows are read once, linearly
// (one hardware-prefetch stream), four rows at a time so the query vector is loaded once per four rows and
// four independent accumulator chains hide FMA latency. Each row's tail (< one vector) goes to the narrower
// one-to-one kernel.
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
        int done = level switch
        {
            SimdLevel.V512 => Rows4x512<TOp>(ref q, ref r, d, n, ref o),
            SimdLevel.V256 => Rows4x256<TOp>(ref q, ref r, d, n, ref o),
            SimdLevel.V128 => Rows4x128<TOp>(ref q, ref r, d, n, ref o),
            _ => 0,
        };
        for (int i = done; i < n; i++)
            Unsafe.Add(ref o, i) = Reduce<TOp>(ref q, ref Unsafe.Add(ref r, (nuint)i * d), d, level);
    }

    // Returns the number of rows written (a multiple of 4); the caller finishes the rest.
    private static int Rows4x512<TOp>(ref float q, ref float rows, nuint d, int n, ref float result) where TOp : struct, IPairOp
    {
        if (d < 16) return 0;
        nuint body = d & ~(nuint)15;
        int i = 0;
        for (; i + 4 <= n; i += 4)
        {
            ref float r0 = ref Unsafe.Add(ref rows, (nuint)i * d);
            ref float r1 = ref Unsafe.Add(ref r0, d);
            ref float r2 = ref Unsafe.Add(ref r1, d);
            ref float r3 = ref Unsafe.Add(ref r2, d);
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (nuint k = 0; k < body; k += 16)
            {
                var qv = Vector512.LoadUnsafe(ref q, k);
                a0 = TOp.Acc(qv, Vector512.LoadUnsafe(ref r0, k), a0);
                a1 = TOp.Acc(qv, Vector512.LoadUnsafe(ref r1, k), a1);
                a2 = TOp.Acc(qv, Vector512.LoadUnsafe(ref r2, k), a2);
                a3 = TOp.Acc(qv, Vector512.LoadUnsafe(ref r3, k), a3);
            }
            float s0 = Vector512.Sum(a0), s1 = Vector512.Sum(a1), s2 = Vector512.Sum(a2), s3 = Vector512.Sum(a3);
            if (body != d)
            {
                ref float qt = ref Unsafe.Add(ref q, body);
                nuint t = d - body;
                s0 += Reduce256<TOp>(ref qt, ref Unsafe.Add(ref r0, body), t);
                s1 += Reduce256<TOp>(ref qt, ref Unsafe.Add(ref r1, body), t);
                s2 += Reduce256<TOp>(ref qt, ref Unsafe.Add(ref r2, body), t);
                s3 += Reduce256<TOp>(ref qt, ref Unsafe.Add(ref r3, body), t);
            }
            ref float o = ref Unsafe.Add(ref result, i);
            o = s0; Unsafe.Add(ref o, 1) = s1; Unsafe.Add(ref o, 2) = s2; Unsafe.Add(ref o, 3) = s3;
        }
        return i;
    }

    private static int Rows4x256<TOp>(ref float q, ref float rows, nuint d, int n, ref float result) where TOp : struct, IPairOp
    {
        if (d < 8) return 0;
        nuint body = d & ~(nuint)7;
        int i = 0;
        for (; i + 4 <= n; i += 4)
        {
            ref float r0 = ref Unsafe.Add(ref rows, (nuint)i * d);
            ref float r1 = ref Unsafe.Add(ref r0, d);
            ref float r2 = ref Unsafe.Add(ref r1, d);
            ref float r3 = ref Unsafe.Add(ref r2, d);
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (nuint k = 0; k < body; k += 8)
            {
                var qv = Vector256.LoadUnsafe(ref q, k);
                a0 = TOp.Acc(qv, Vector256.LoadUnsafe(ref r0, k), a0);
                a1 = TOp.Acc(qv, Vector256.LoadUnsafe(ref r1, k), a1);
                a2 = TOp.Acc(qv, Vector256.LoadUnsafe(ref r2, k), a2);
                a3 = TOp.Acc(qv, Vector256.LoadUnsafe(ref r3, k), a3);
            }
            float s0 = Vector256.Sum(a0), s1 = Vector256.Sum(a1), s2 = Vector256.Sum(a2), s3 = Vector256.Sum(a3);
            if (body != d)
            {
                ref float qt = ref Unsafe.Add(ref q, body);
                nuint t = d - body;
                s0 += Reduce128<TOp>(ref qt, ref Unsafe.Add(ref r0, body), t);
                s1 += Reduce128<TOp>(ref qt, ref Unsafe.Add(ref r1, body), t);
                s2 += Reduce128<TOp>(ref qt, ref Unsafe.Add(ref r2, body), t);
                s3 += Reduce128<TOp>(ref qt, ref Unsafe.Add(ref r3, body), t);
            }
            ref float o = ref Unsafe.Add(ref result, i);
            o = s0; Unsafe.Add(ref o, 1) = s1; Unsafe.Add(ref o, 2) = s2; Unsafe.Add(ref o, 3) = s3;
        }
        return i;
    }

    private static int Rows4x128<TOp>(ref float q, ref float rows, nuint d, int n, ref float result) where TOp : struct, IPairOp
    {
        if (d < 4) return 0;
        nuint body = d & ~(nuint)3;
        int i = 0;
        for (; i + 4 <= n; i += 4)
        {
            ref float r0 = ref Unsafe.Add(ref rows, (nuint)i * d);
            ref float r1 = ref Unsafe.Add(ref r0, d);
            ref float r2 = ref Unsafe.Add(ref r1, d);
            ref float r3 = ref Unsafe.Add(ref r2, d);
            Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (nuint k = 0; k < body; k += 4)
            {
                var qv = Vector128.LoadUnsafe(ref q, k);
                a0 = TOp.Acc(qv, Vector128.LoadUnsafe(ref r0, k), a0);
                a1 = TOp.Acc(qv, Vector128.LoadUnsafe(ref r1, k), a1);
                a2 = TOp.Acc(qv, Vector128.LoadUnsafe(ref r2, k), a2);
                a3 = TOp.Acc(qv, Vector128.LoadUnsafe(ref r3, k), a3);
            }
            float s0 = Vector128.Sum(a0), s1 = Vector128.Sum(a1), s2 = Vector128.Sum(a2), s3 = Vector128.Sum(a3);
            if (body != d)
            {
                ref float qt = ref Unsafe.Add(ref q, body);
                nuint t = d - body;
                s0 += ReduceScalar<TOp>(ref qt, ref Unsafe.Add(ref r0, body), t);
                s1 += ReduceScalar<TOp>(ref qt, ref Unsafe.Add(ref r1, body), t);
                s2 += ReduceScalar<TOp>(ref qt, ref Unsafe.Add(ref r2, body), t);
                s3 += ReduceScalar<TOp>(ref qt, ref Unsafe.Add(ref r3, body), t);
            }
            ref float o = ref Unsafe.Add(ref result, i);
            o = s0; Unsafe.Add(ref o, 1) = s1; Unsafe.Add(ref o, 2) = s2; Unsafe.Add(ref o, 3) = s3;
        }
        return i;
    }
}
