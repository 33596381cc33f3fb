using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

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
        for (int i = 0; i < n; i++)
            Unsafe.Add(ref o, i) = Reduce<TOp>(ref q, ref Unsafe.Add(ref r, (nuint)i * d), d, level);
    }
}
