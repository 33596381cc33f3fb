using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Distance;

// Population counts of packed bit vectors (ulong words): popcount(a), popcount(a XOR b) (Hamming distance) and
// popcount(a AND b), the inner loops of binary codes. Vector levels count bits with the nibble lookup table of Mula
// et al. (a byte shuffle of a 16-entry table for the low and the high nibble, then a sum of absolute differences
// against zero into 64-bit lanes): AVX-512BW at 512 bits, AVX2 at 256, SSSE3 at 128; the scalar level uses the POPCNT
// instruction through BitOperations. AVX-512 VPOPCNTDQ is detected (Simd.HasVpopcntdq) but .NET 10 exposes no
// intrinsic for it, so the 512-bit level uses the BW table.
public static partial class Distances
{
    /// <summary>Number of set bits in <paramref name="a"/>.</summary>
    public static long PopCount(ReadOnlySpan<ulong> a) => PopCountAt<FirstOp>(a, a, Simd.BestPopCount);

    /// <summary>Hamming distance: set bits of <paramref name="a"/> XOR <paramref name="b"/> (equal lengths).</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static long PopCountXor(ReadOnlySpan<ulong> a, ReadOnlySpan<ulong> b) => PopCountAt<XorOp>(a, b, Simd.BestPopCount);

    /// <summary>Set bits of <paramref name="a"/> AND <paramref name="b"/> (equal lengths).</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public static long PopCountAnd(ReadOnlySpan<ulong> a, ReadOnlySpan<ulong> b) => PopCountAt<AndOp>(a, b, Simd.BestPopCount);

    /// <summary>The kernel the public popcount entry points use on this machine, e.g. <c>avx512bw-lut</c>.</summary>
    public static string PopCountKernel => Simd.BestPopCount switch
    {
        SimdLevel.V512 => Simd.HasVpopcntdq ? "avx512bw-lut (cpu has vpopcntdq; no .NET intrinsic)" : "avx512bw-lut",
        SimdLevel.V256 => "avx2-lut",
        SimdLevel.V128 => "ssse3-lut",
        _ => "popcnt",
    };

    internal static long PopCountAt<TOp>(ReadOnlySpan<ulong> a, ReadOnlySpan<ulong> b, SimdLevel level) where TOp : struct, IBitOp
    {
        if (a.Length != b.Length) ThrowLength(nameof(b));
        ref byte x = ref Unsafe.As<ulong, byte>(ref MemoryMarshal.GetReference(a));
        ref byte y = ref Unsafe.As<ulong, byte>(ref MemoryMarshal.GetReference(b));
        nuint bytes = (nuint)a.Length * 8;
        return level switch
        {
            SimdLevel.V512 => (long)PopCount512<TOp>(ref x, ref y, bytes),
            SimdLevel.V256 => (long)PopCount256<TOp>(ref x, ref y, bytes),
            SimdLevel.V128 => (long)PopCount128<TOp>(ref x, ref y, bytes),
            _ => (long)PopCountScalar<TOp>(ref x, ref y, bytes),
        };
    }

    private static readonly Vector128<byte> NibbleCounts = Vector128.Create((byte)0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ulong PopCount512<TOp>(ref byte x, ref byte y, nuint n) where TOp : struct, IBitOp
    {
        nuint i = 0;
        ulong s = 0;
        if (n >= 64)
        {
            var lut = Vector512.Create(Vector256.Create(NibbleCounts, NibbleCounts), Vector256.Create(NibbleCounts, NibbleCounts));
            var mask = Vector512.Create((byte)0x0F);
            Vector512<ulong> acc = default;
            for (; i + 64 <= n; i += 64)
            {
                var v = TOp.Apply(Vector512.LoadUnsafe(ref x, i), Vector512.LoadUnsafe(ref y, i));
                var lo = Avx512BW.Shuffle(lut, v & mask);
                var hi = Avx512BW.Shuffle(lut, Avx512BW.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask);
                acc += Avx512BW.SumAbsoluteDifferences(lo + hi, Vector512<byte>.Zero).AsUInt64();
            }
            s = Vector512.Sum(acc);
        }
        return i == n ? s : s + PopCount256<TOp>(ref Unsafe.Add(ref x, i), ref Unsafe.Add(ref y, i), n - i);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ulong PopCount256<TOp>(ref byte x, ref byte y, nuint n) where TOp : struct, IBitOp
    {
        nuint i = 0;
        ulong s = 0;
        if (n >= 32)
        {
            var lut = Vector256.Create(NibbleCounts, NibbleCounts);
            var mask = Vector256.Create((byte)0x0F);
            Vector256<ulong> acc = default;
            for (; i + 32 <= n; i += 32)
            {
                var v = TOp.Apply(Vector256.LoadUnsafe(ref x, i), Vector256.LoadUnsafe(ref y, i));
                var lo = Avx2.Shuffle(lut, v & mask);
                var hi = Avx2.Shuffle(lut, Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask);
                acc += Avx2.SumAbsoluteDifferences(lo + hi, Vector256<byte>.Zero).AsUInt64();
            }
            s = Vector256.Sum(acc);
        }
        return i == n ? s : s + PopCount128<TOp>(ref Unsafe.Add(ref x, i), ref Unsafe.Add(ref y, i), n - i);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ulong PopCount128<TOp>(ref byte x, ref byte y, nuint n) where TOp : struct, IBitOp
    {
        nuint i = 0;
        ulong s = 0;
        if (n >= 16)
        {
            var mask = Vector128.Create((byte)0x0F);
            Vector128<ulong> acc = default;
            for (; i + 16 <= n; i += 16)
            {
                var v = TOp.Apply(Vector128.LoadUnsafe(ref x, i), Vector128.LoadUnsafe(ref y, i));
                var lo = Ssse3.Shuffle(NibbleCounts, v & mask);
                var hi = Ssse3.Shuffle(NibbleCounts, Sse2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask);
                acc += Sse2.SumAbsoluteDifferences(lo + hi, Vector128<byte>.Zero).AsUInt64();
            }
            s = Vector128.Sum(acc);
        }
        return i == n ? s : s + PopCountScalar<TOp>(ref Unsafe.Add(ref x, i), ref Unsafe.Add(ref y, i), n - i);
    }

    private static ulong PopCountScalar<TOp>(ref byte x, ref byte y, nuint n) where TOp : struct, IBitOp
    {
        ulong s = 0;
        for (nuint i = 0; i + 8 <= n; i += 8)
            s += (ulong)BitOperations.PopCount(TOp.Apply(Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref x, i)), Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref y, i))));
        return s;
    }
}

/// <summary>The bitwise combination a popcount kernel counts (first operand, XOR, AND) at every width.</summary>
internal interface IBitOp
{
    static abstract ulong Apply(ulong x, ulong y);
    static abstract Vector128<byte> Apply(Vector128<byte> x, Vector128<byte> y);
    static abstract Vector256<byte> Apply(Vector256<byte> x, Vector256<byte> y);
    static abstract Vector512<byte> Apply(Vector512<byte> x, Vector512<byte> y);
}

/// <summary>x (a plain popcount).</summary>
internal readonly struct FirstOp : IBitOp
{
    public static ulong Apply(ulong x, ulong y) => x;
    public static Vector128<byte> Apply(Vector128<byte> x, Vector128<byte> y) => x;
    public static Vector256<byte> Apply(Vector256<byte> x, Vector256<byte> y) => x;
    public static Vector512<byte> Apply(Vector512<byte> x, Vector512<byte> y) => x;
}

/// <summary>x XOR y (Hamming distance).</summary>
internal readonly struct XorOp : IBitOp
{
    public static ulong Apply(ulong x, ulong y) => x ^ y;
    public static Vector128<byte> Apply(Vector128<byte> x, Vector128<byte> y) => x ^ y;
    public static Vector256<byte> Apply(Vector256<byte> x, Vector256<byte> y) => x ^ y;
    public static Vector512<byte> Apply(Vector512<byte> x, Vector512<byte> y) => x ^ y;
}

/// <summary>x AND y.</summary>
internal readonly struct AndOp : IBitOp
{
    public static ulong Apply(ulong x, ulong y) => x & y;
    public static Vector128<byte> Apply(Vector128<byte> x, Vector128<byte> y) => x & y;
    public static Vector256<byte> Apply(Vector256<byte> x, Vector256<byte> y) => x & y;
    public static Vector512<byte> Apply(Vector512<byte> x, Vector512<byte> y) => x & y;
}
