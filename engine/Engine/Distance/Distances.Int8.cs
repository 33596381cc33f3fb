using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Distance;

// Exact integer kernels for 8-bit codes (scalar quantisation). Products are widened to 16 bits and summed
// pairwise into 32-bit lanes (AVX-512BW / AVX2 vpmaddwd; AVX-VNNI vpdpbusd for u8×s8 where the CPU has it;
// portable Vector128 widening elsewhere), so the result is exact as long as it fits in an int: always for
// lengths up to 33 025 (squared L2), 66 052 (u8×s8) and 131 072 (s8×s8); longer inputs wrap.
public static partial class Distances
{
    /// <summary>Exact inner product of two signed 8-bit vectors of equal length.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static int Dot(ReadOnlySpan<sbyte> x, ReadOnlySpan<sbyte> y) => DotAt(x, y, Simd.BestInt8);

    /// <summary>Exact squared Euclidean distance between two signed 8-bit vectors of equal length.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static int SquaredL2(ReadOnlySpan<sbyte> x, ReadOnlySpan<sbyte> y) => SquaredL2At(x, y, Simd.BestInt8);

    /// <summary>Exact inner product of an unsigned 8-bit vector with a signed 8-bit vector of equal length.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static int Dot(ReadOnlySpan<byte> x, ReadOnlySpan<sbyte> y) => DotAt(x, y, Simd.BestInt8);

    internal static int DotAt(ReadOnlySpan<sbyte> x, ReadOnlySpan<sbyte> y, SimdLevel level)
    {
        if (x.Length != y.Length) ThrowLength(nameof(y));
        return ReduceInt8<S8DotOp>(ref Bytes(x), ref Bytes(y), (nuint)x.Length, level);
    }

    internal static int SquaredL2At(ReadOnlySpan<sbyte> x, ReadOnlySpan<sbyte> y, SimdLevel level)
    {
        if (x.Length != y.Length) ThrowLength(nameof(y));
        return ReduceInt8<S8L2Op>(ref Bytes(x), ref Bytes(y), (nuint)x.Length, level);
    }

    /// <summary>
    /// Squared Euclidean distance of two signed 8-bit vectors that may stop early: the exact sum when it is below
    /// <paramref name="threshold"/>, otherwise some partial sum that already reaches it (a value between the threshold
    /// and the exact sum). Partial-distance search for filters that only need to know "at least this far".
    /// </summary>
    internal static int SquaredL2AtLeast(ReadOnlySpan<sbyte> x, ReadOnlySpan<sbyte> y, int threshold) =>
        SquaredL2AtLeastAt(x, y, threshold, Simd.BestInt8);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // called millions of times from short runs: skip tier-0
    internal static int SquaredL2AtLeastAt(ReadOnlySpan<sbyte> x, ReadOnlySpan<sbyte> y, int threshold, SimdLevel level)
    {
        if (x.Length != y.Length) ThrowLength(nameof(y));
        ref byte px = ref Bytes(x), py = ref Bytes(y);
        nuint n = (nuint)x.Length, i = 0;
        int s = 0;
        if (level == SimdLevel.V512 && Avx512BW.IsSupported)
        {
            // Blocks of 128 bytes, the running sum checked after each.
            for (; i + 128 <= n; i += 128)
            {
                var a = S8L2Op.Acc(Vector256.LoadUnsafe(ref px, i), Vector256.LoadUnsafe(ref py, i), Vector512<int>.Zero);
                a = S8L2Op.Acc(Vector256.LoadUnsafe(ref px, i + 32), Vector256.LoadUnsafe(ref py, i + 32), a);
                a = S8L2Op.Acc(Vector256.LoadUnsafe(ref px, i + 64), Vector256.LoadUnsafe(ref py, i + 64), a);
                a = S8L2Op.Acc(Vector256.LoadUnsafe(ref px, i + 96), Vector256.LoadUnsafe(ref py, i + 96), a);
                s += Vector512.Sum(a);
                if (s >= threshold) return s;
            }
        }
        else if (level >= SimdLevel.V256 && Avx2.IsSupported)
        {
            for (; i + 64 <= n; i += 64)
            {
                var a = S8L2Op.Acc(Vector128.LoadUnsafe(ref px, i), Vector128.LoadUnsafe(ref py, i), Vector256<int>.Zero);
                a = S8L2Op.Acc(Vector128.LoadUnsafe(ref px, i + 16), Vector128.LoadUnsafe(ref py, i + 16), a);
                a = S8L2Op.Acc(Vector128.LoadUnsafe(ref px, i + 32), Vector128.LoadUnsafe(ref py, i + 32), a);
                a = S8L2Op.Acc(Vector128.LoadUnsafe(ref px, i + 48), Vector128.LoadUnsafe(ref py, i + 48), a);
                s += Vector256.Sum(a);
                if (s >= threshold) return s;
            }
        }
        return s + ReduceInt8<S8L2Op>(ref Unsafe.Add(ref px, i), ref Unsafe.Add(ref py, i), n - i, level);
    }

    internal static int DotAt(ReadOnlySpan<byte> x, ReadOnlySpan<sbyte> y, SimdLevel level)
    {
        if (x.Length != y.Length) ThrowLength(nameof(y));
        return ReduceInt8<U8S8DotOp>(ref MemoryMarshal.GetReference(x), ref Bytes(y), (nuint)x.Length, level);
    }

    private static ref byte Bytes(ReadOnlySpan<sbyte> s) => ref Unsafe.As<sbyte, byte>(ref MemoryMarshal.GetReference(s));

    private static int ReduceInt8<TOp>(ref byte x, ref byte y, nuint n, SimdLevel level) where TOp : struct, IInt8Op
    {
        nuint i = 0;
        int s = 0;
        if (level == SimdLevel.V512 && Avx512BW.IsSupported)
        {
            Vector512<int> a0 = default, a1 = default;
            for (; i + 64 <= n; i += 64)
            {
                a0 = TOp.Acc(Vector256.LoadUnsafe(ref x, i), Vector256.LoadUnsafe(ref y, i), a0);
                a1 = TOp.Acc(Vector256.LoadUnsafe(ref x, i + 32), Vector256.LoadUnsafe(ref y, i + 32), a1);
            }
            for (; i + 32 <= n; i += 32) a0 = TOp.Acc(Vector256.LoadUnsafe(ref x, i), Vector256.LoadUnsafe(ref y, i), a0);
            s = Vector512.Sum(a0 + a1);
        }
        if (level >= SimdLevel.V256 && Avx2.IsSupported)
        {
            Vector256<int> a0 = default, a1 = default;
            for (; i + 32 <= n; i += 32)
            {
                a0 = TOp.Acc(Vector128.LoadUnsafe(ref x, i), Vector128.LoadUnsafe(ref y, i), a0);
                a1 = TOp.Acc(Vector128.LoadUnsafe(ref x, i + 16), Vector128.LoadUnsafe(ref y, i + 16), a1);
            }
            for (; i + 16 <= n; i += 16) a0 = TOp.Acc(Vector128.LoadUnsafe(ref x, i), Vector128.LoadUnsafe(ref y, i), a0);
            s += Vector256.Sum(a0 + a1);
        }
        if (level >= SimdLevel.V128)
        {
            Vector128<int> a0 = default;
            for (; i + 16 <= n; i += 16) a0 = TOp.AccPortable(Vector128.LoadUnsafe(ref x, i), Vector128.LoadUnsafe(ref y, i), a0);
            s += Vector128.Sum(a0);
        }
        for (; i < n; i++) s += TOp.Acc(Unsafe.Add(ref x, i), Unsafe.Add(ref y, i));
        return s;
    }

    /// <summary>One 8-bit operation at each width; operands arrive as raw bytes and the op decides their sign.</summary>
    private interface IInt8Op
    {
        /// <summary>32 byte pairs into 16 int lanes (AVX-512BW).</summary>
        static abstract Vector512<int> Acc(Vector256<byte> x, Vector256<byte> y, Vector512<int> acc);
        /// <summary>16 byte pairs into 8 int lanes (AVX2).</summary>
        static abstract Vector256<int> Acc(Vector128<byte> x, Vector128<byte> y, Vector256<int> acc);
        /// <summary>16 byte pairs into 4 int lanes with portable widening (SSE2, NEON).</summary>
        static abstract Vector128<int> AccPortable(Vector128<byte> x, Vector128<byte> y, Vector128<int> acc);
        /// <summary>One pair.</summary>
        static abstract int Acc(byte x, byte y);
    }

    private readonly struct S8DotOp : IInt8Op
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<int> Acc(Vector256<byte> x, Vector256<byte> y, Vector512<int> acc) =>
            acc + Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(x.AsSByte()), Avx512BW.ConvertToVector512Int16(y.AsSByte()));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Acc(Vector128<byte> x, Vector128<byte> y, Vector256<int> acc) =>
            acc + Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(x.AsSByte()), Avx2.ConvertToVector256Int16(y.AsSByte()));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<int> AccPortable(Vector128<byte> x, Vector128<byte> y, Vector128<int> acc)
        {
            var (xl, xh) = Vector128.Widen(x.AsSByte());
            var (yl, yh) = Vector128.Widen(y.AsSByte());
            return AddWidened(AddWidened(acc, xl * yl), xh * yh); // |product| ≤ 16384 fits in short
        }

        public static int Acc(byte x, byte y) => (sbyte)x * (sbyte)y;
    }

    private readonly struct S8L2Op : IInt8Op
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<int> Acc(Vector256<byte> x, Vector256<byte> y, Vector512<int> acc)
        {
            var d = Avx512BW.ConvertToVector512Int16(x.AsSByte()) - Avx512BW.ConvertToVector512Int16(y.AsSByte());
            return acc + Avx512BW.MultiplyAddAdjacent(d, d);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Acc(Vector128<byte> x, Vector128<byte> y, Vector256<int> acc)
        {
            var d = Avx2.ConvertToVector256Int16(x.AsSByte()) - Avx2.ConvertToVector256Int16(y.AsSByte());
            return acc + Avx2.MultiplyAddAdjacent(d, d);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<int> AccPortable(Vector128<byte> x, Vector128<byte> y, Vector128<int> acc)
        {
            var (xl, xh) = Vector128.Widen(x.AsSByte());
            var (yl, yh) = Vector128.Widen(y.AsSByte());
            Vector128<short> dl = xl - yl, dh = xh - yh;
            // d² ≤ 65025 overflows short but fits ushort: the wrapped bits are the unsigned product.
            return AddWidenedUnsigned(AddWidenedUnsigned(acc, (dl * dl).AsUInt16()), (dh * dh).AsUInt16());
        }

        public static int Acc(byte x, byte y) { int d = (sbyte)x - (sbyte)y; return d * d; }
    }

    private readonly struct U8S8DotOp : IInt8Op
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<int> Acc(Vector256<byte> x, Vector256<byte> y, Vector512<int> acc) =>
            acc + Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(x), Avx512BW.ConvertToVector512Int16(y.AsSByte()));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Acc(Vector128<byte> x, Vector128<byte> y, Vector256<int> acc)
        {
            if (AvxVnni.IsSupported)
            {
                // vpdpbusd on the 16 bytes zero-extended to 32: the upper half contributes 0.
                return AvxVnni.MultiplyWideningAndAdd(acc, Vector256.Create(x, Vector128<byte>.Zero), Vector256.Create(y, Vector128<byte>.Zero).AsSByte());
            }
            return acc + Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(x), Avx2.ConvertToVector256Int16(y.AsSByte()));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<int> AccPortable(Vector128<byte> x, Vector128<byte> y, Vector128<int> acc)
        {
            var (xl, xh) = Vector128.Widen(x);
            var (yl, yh) = Vector128.Widen(y.AsSByte());
            // u8·s8 ∈ [−32640, 32385] fits in short.
            return AddWidened(AddWidened(acc, xl.AsInt16() * yl), xh.AsInt16() * yh);
        }

        public static int Acc(byte x, byte y) => x * (sbyte)y;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> AddWidened(Vector128<int> acc, Vector128<short> v)
    {
        var (lo, hi) = Vector128.Widen(v);
        return acc + lo + hi;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> AddWidenedUnsigned(Vector128<int> acc, Vector128<ushort> v)
    {
        var (lo, hi) = Vector128.Widen(v);
        return acc + lo.AsInt32() + hi.AsInt32();
    }
}
