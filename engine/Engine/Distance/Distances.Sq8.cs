using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Distance;

// Float query against SQ8 codes, where element i of the stored vector is min_i + step_i × code_i. Fused: the codes
// are widened to float in registers, so a distance reads d bytes of code (plus the query and the d-float range,
// which stay in L1) and never writes a decoded copy. Used by refine stores and SQ8 graph storage.
public static partial class Distances
{
    /// <summary>Squared Euclidean distance from <paramref name="query"/> to the SQ8 vector <c>min + step × code</c>.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static float SquaredL2Sq8(ReadOnlySpan<float> query, ReadOnlySpan<float> min, ReadOnlySpan<float> step, ReadOnlySpan<byte> code) =>
        Sq8At(query, min, step, code, dot: false, Simd.Best);

    /// <summary>Inner product of <paramref name="query"/> with the SQ8 vector <c>min + step × code</c>.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static float DotSq8(ReadOnlySpan<float> query, ReadOnlySpan<float> min, ReadOnlySpan<float> step, ReadOnlySpan<byte> code) =>
        Sq8At(query, min, step, code, dot: true, Simd.Best);

    internal static float Sq8At(ReadOnlySpan<float> query, ReadOnlySpan<float> min, ReadOnlySpan<float> step, ReadOnlySpan<byte> code, bool dot, SimdLevel level)
    {
        int n = query.Length;
        if (min.Length != n) ThrowLength(nameof(min));
        if (step.Length != n) ThrowLength(nameof(step));
        if (code.Length != n) ThrowLength(nameof(code));
        ref float q = ref MemoryMarshal.GetReference(query);
        ref float lo = ref MemoryMarshal.GetReference(min);
        ref float st = ref MemoryMarshal.GetReference(step);
        ref byte c = ref MemoryMarshal.GetReference(code);
        nuint i = 0, len = (nuint)n;
        float s = 0;
        if (level == SimdLevel.V512 && len >= 16)
        {
            var acc0 = Vector512<float>.Zero;
            var acc1 = Vector512<float>.Zero;
            for (; i + 32 <= len; i += 32)
            {
                acc0 = Sq8Step(Vector512.LoadUnsafe(ref q, i), Vector512.LoadUnsafe(ref lo, i), Vector512.LoadUnsafe(ref st, i), Widen16(ref Unsafe.Add(ref c, i)), acc0, dot);
                acc1 = Sq8Step(Vector512.LoadUnsafe(ref q, i + 16), Vector512.LoadUnsafe(ref lo, i + 16), Vector512.LoadUnsafe(ref st, i + 16), Widen16(ref Unsafe.Add(ref c, i + 16)), acc1, dot);
            }
            for (; i + 16 <= len; i += 16)
                acc0 = Sq8Step(Vector512.LoadUnsafe(ref q, i), Vector512.LoadUnsafe(ref lo, i), Vector512.LoadUnsafe(ref st, i), Widen16(ref Unsafe.Add(ref c, i)), acc0, dot);
            s = Vector512.Sum(acc0 + acc1);
        }
        else if (level >= SimdLevel.V256 && len >= 8)
        {
            var acc0 = Vector256<float>.Zero;
            var acc1 = Vector256<float>.Zero;
            for (; i + 16 <= len; i += 16)
            {
                acc0 = Sq8Step256(ref q, ref lo, ref st, ref c, i, acc0, dot);
                acc1 = Sq8Step256(ref q, ref lo, ref st, ref c, i + 8, acc1, dot);
            }
            for (; i + 8 <= len; i += 8) acc0 = Sq8Step256(ref q, ref lo, ref st, ref c, i, acc0, dot);
            s = Vector256.Sum(acc0 + acc1);
        }
        else if (level >= SimdLevel.V128 && len >= 4)
        {
            var acc = Vector128<float>.Zero;
            for (; i + 4 <= len; i += 4)
            {
                var x = Vector128.LoadUnsafe(ref lo, i) + Vector128.LoadUnsafe(ref st, i) * Widen4(ref Unsafe.Add(ref c, i));
                var qv = Vector128.LoadUnsafe(ref q, i);
                if (dot) acc += qv * x;
                else { var diff = qv - x; acc += diff * diff; }
            }
            s = Vector128.Sum(acc);
        }
        for (; i < len; i++)
        {
            float x = Unsafe.Add(ref lo, i) + Unsafe.Add(ref st, i) * Unsafe.Add(ref c, i);
            float qv = Unsafe.Add(ref q, i);
            s += dot ? qv * x : (qv - x) * (qv - x);
        }
        return s;
    }

    /// <summary>
    /// Σ (shifted_i − step_i·code_i)²: the squared Euclidean distance from a query q to the SQ8 vector
    /// <c>min + step × code</c> when <paramref name="shifted"/> = q − min was computed once for the query (re-ranking
    /// reads many codes per query: one float stream fewer per element, and four accumulators in flight).
    /// </summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    internal static float SquaredL2Sq8Shifted(ReadOnlySpan<float> shifted, ReadOnlySpan<float> step, ReadOnlySpan<byte> code) =>
        Sq8PreparedAt(shifted, step, code, dot: false, Simd.Best);

    /// <summary>
    /// Σ weight_i·code_i: with <paramref name="weight"/> = q × step (once per query), the inner product of q with the SQ8
    /// vector <c>min + step × code</c> is ⟨q, min⟩ + this sum.
    /// </summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    internal static float DotBytes(ReadOnlySpan<float> weight, ReadOnlySpan<byte> code) =>
        Sq8PreparedAt(weight, default, code, dot: true, Simd.Best);

    // dot: Σ a_i·c_i (step unused); otherwise Σ (a_i − step_i·c_i)².
    internal static float Sq8PreparedAt(ReadOnlySpan<float> a, ReadOnlySpan<float> step, ReadOnlySpan<byte> code, bool dot, SimdLevel level)
    {
        int n = a.Length;
        if (!dot && step.Length != n) ThrowLength(nameof(step));
        if (code.Length != n) ThrowLength(nameof(code));
        ref float pa = ref MemoryMarshal.GetReference(a);
        ref float st = ref MemoryMarshal.GetReference(step);
        ref byte c = ref MemoryMarshal.GetReference(code);
        nuint i = 0, len = (nuint)n;
        float s = 0;
        if (level == SimdLevel.V512 && len >= 16)
        {
            var acc0 = Vector512<float>.Zero;
            var acc1 = Vector512<float>.Zero;
            var acc2 = Vector512<float>.Zero;
            var acc3 = Vector512<float>.Zero;
            for (; i + 64 <= len; i += 64)
            {
                acc0 = PreparedStep(ref pa, ref st, ref c, i, acc0, dot);
                acc1 = PreparedStep(ref pa, ref st, ref c, i + 16, acc1, dot);
                acc2 = PreparedStep(ref pa, ref st, ref c, i + 32, acc2, dot);
                acc3 = PreparedStep(ref pa, ref st, ref c, i + 48, acc3, dot);
            }
            for (; i + 16 <= len; i += 16) acc0 = PreparedStep(ref pa, ref st, ref c, i, acc0, dot);
            s = Vector512.Sum((acc0 + acc1) + (acc2 + acc3));
        }
        else if (level >= SimdLevel.V256 && len >= 8)
        {
            // Four accumulators: each step ends in a dependent add (3-4 cycles), so two chains left the FMA ports idle
            // half the time on MNIST's 784-byte refine rows (Zen 3).
            var acc0 = Vector256<float>.Zero;
            var acc1 = Vector256<float>.Zero;
            var acc2 = Vector256<float>.Zero;
            var acc3 = Vector256<float>.Zero;
            for (; i + 32 <= len; i += 32)
            {
                acc0 = PreparedStep256(ref pa, ref st, ref c, i, acc0, dot);
                acc1 = PreparedStep256(ref pa, ref st, ref c, i + 8, acc1, dot);
                acc2 = PreparedStep256(ref pa, ref st, ref c, i + 16, acc2, dot);
                acc3 = PreparedStep256(ref pa, ref st, ref c, i + 24, acc3, dot);
            }
            for (; i + 8 <= len; i += 8) acc0 = PreparedStep256(ref pa, ref st, ref c, i, acc0, dot);
            s = Vector256.Sum((acc0 + acc1) + (acc2 + acc3));
        }
        else if (level >= SimdLevel.V128 && len >= 4)
        {
            var acc = Vector128<float>.Zero;
            for (; i + 4 <= len; i += 4)
            {
                var cv = Widen4(ref Unsafe.Add(ref c, i));
                var av = Vector128.LoadUnsafe(ref pa, i);
                if (dot) acc += av * cv;
                else { var t = av - Vector128.LoadUnsafe(ref st, i) * cv; acc += t * t; }
            }
            s = Vector128.Sum(acc);
        }
        for (; i < len; i++)
        {
            float av = Unsafe.Add(ref pa, i);
            byte cv = Unsafe.Add(ref c, i);
            if (dot) s += av * cv;
            else { float t = av - Unsafe.Add(ref st, i) * cv; s += t * t; }
        }
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> PreparedStep(ref float a, ref float step, ref byte code, nuint i, Vector512<float> acc, bool dot)
    {
        var c = Widen16(ref Unsafe.Add(ref code, i));
        var av = Vector512.LoadUnsafe(ref a, i);
        if (dot) return Vector512.FusedMultiplyAdd(av, c, acc);
        var t = Vector512.FusedMultiplyAdd(-Vector512.LoadUnsafe(ref step, i), c, av);
        return Vector512.FusedMultiplyAdd(t, t, acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> PreparedStep256(ref float a, ref float step, ref byte code, nuint i, Vector256<float> acc, bool dot)
    {
        // MultiplyAddEstimate: one FMA where the CPU has it (every AVX2 machine in practice), multiply + add otherwise.
        var c = Widen8(ref Unsafe.Add(ref code, i));
        var av = Vector256.LoadUnsafe(ref a, i);
        if (dot) return Vector256.MultiplyAddEstimate(av, c, acc);
        var t = Vector256.MultiplyAddEstimate(-Vector256.LoadUnsafe(ref step, i), c, av);
        return Vector256.MultiplyAddEstimate(t, t, acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Sq8Step256(ref float q, ref float lo, ref float st, ref byte code, nuint i, Vector256<float> acc, bool dot)
    {
        var x = Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref st, i), Widen8(ref Unsafe.Add(ref code, i)), Vector256.LoadUnsafe(ref lo, i));
        var qv = Vector256.LoadUnsafe(ref q, i);
        if (dot) return Vector256.MultiplyAddEstimate(qv, x, acc);
        var diff = qv - x;
        return Vector256.MultiplyAddEstimate(diff, diff, acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Sq8Step(Vector512<float> q, Vector512<float> lo, Vector512<float> st, Vector512<float> code, Vector512<float> acc, bool dot)
    {
        var x = Vector512.FusedMultiplyAdd(st, code, lo);
        if (dot) return Vector512.FusedMultiplyAdd(q, x, acc);
        var diff = q - x;
        return Vector512.FusedMultiplyAdd(diff, diff, acc);
    }

    // 16 / 8 / 4 code bytes widened to floats (vpmovzxbd + vcvtdq2ps on x86).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen16(ref byte p)
    {
        var b = Vector128.LoadUnsafe(ref p);
        if (Avx512F.IsSupported) return Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(b));
        var w = Vector256.Create(Vector128.WidenLower(b), Vector128.WidenUpper(b));
        return Vector512.ConvertToSingle(Vector512.Create(Vector256.WidenLower(w), Vector256.WidenUpper(w)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen8(ref byte p)
    {
        var b = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<ulong>(ref p)).AsByte();
        if (Avx2.IsSupported) return Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(b));
        var w = Vector128.WidenLower(b);
        return Vector256.ConvertToSingle(Vector256.Create(Vector128.WidenLower(w), Vector128.WidenUpper(w)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Widen4(ref byte p)
    {
        var b = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<uint>(ref p)).AsByte();
        return Vector128.ConvertToSingle(Vector128.WidenLower(Vector128.WidenLower(b)));
    }
}
