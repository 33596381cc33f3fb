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
        nuint bytes = (nuint)a.Length * 8, i = 0;
        // The widest level counts whole blocks, each narrower one the blocks left, the scalar loop the last words.
        ulong s = 0;
        if (level >= SimdLevel.V512) s += PopCountLut<Lut512, Vector512<byte>, TOp>(ref x, ref y, bytes, ref i);
        if (level >= SimdLevel.V256) s += PopCountLut<Lut256, Vector256<byte>, TOp>(ref x, ref y, bytes, ref i);
        if (level >= SimdLevel.V128) s += PopCountLut<Lut128, Vector128<byte>, TOp>(ref x, ref y, bytes, ref i);
        for (; i + 8 <= bytes; i += 8)
            s += (ulong)BitOperations.PopCount(TOp.Apply(Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref x, i)), Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref y, i))));
        return (long)s;
    }

    /// <summary>The 16 nibble bit counts, the lookup table of every vector level.</summary>
    internal static readonly Vector128<byte> NibbleTable = Vector128.Create((byte)0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);

    /// <summary>
    /// Set bits of TOp(x, y) over the whole <typeparamref name="TLanes"/> blocks from byte <paramref name="i"/> to
    /// <paramref name="n"/>; advances <paramref name="i"/> past them. One loop for every width: the lanes type supplies
    /// the width's loads, table shuffle and sums.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ulong PopCountLut<TLanes, TVector, TOp>(ref byte x, ref byte y, nuint n, ref nuint i)
        where TLanes : struct, ILutLanes<TVector> where TVector : struct where TOp : struct, IBitOp
    {
        if (i + TLanes.Bytes > n) return 0;
        var acc = TLanes.Zero;
        var table = TLanes.Table; // a local: static fields are not constants in AggressiveOptimization code
        for (; i + TLanes.Bytes <= n; i += TLanes.Bytes)
            acc = TLanes.AddCounts<TOp>(acc, table, TLanes.Load(ref x, i), TLanes.Load(ref y, i));
        return TLanes.Sum(acc);
    }
}

/// <summary>
/// One vector width of the nibble-table popcount (Mula et al.): load a block, count the bits of each byte of
/// TOp(x, y) with two byte shuffles of the 16-entry table, and add them into 64-bit lanes with a sum of absolute
/// differences against zero.
/// </summary>
internal interface ILutLanes<TVector> where TVector : struct
{
    /// <summary>Bytes per block.</summary>
    static abstract nuint Bytes { get; }

    /// <summary>The empty accumulator.</summary>
    static abstract TVector Zero { get; }

    /// <summary>The nibble table repeated across the width.</summary>
    static abstract TVector Table { get; }

    /// <summary>The block at byte offset <paramref name="i"/>.</summary>
    static abstract TVector Load(ref byte p, nuint i);

    /// <summary><paramref name="acc"/> (64-bit lanes) plus the bit counts of TOp(x, y), looked up in <paramref name="table"/>.</summary>
    static abstract TVector AddCounts<TOp>(TVector acc, TVector table, TVector x, TVector y) where TOp : struct, IBitOp;

    /// <summary>The sum of the accumulator's 64-bit lanes.</summary>
    static abstract ulong Sum(TVector acc);
}

/// <summary>AVX-512BW lanes.</summary>
internal readonly struct Lut512 : ILutLanes<Vector512<byte>>
{
    public static nuint Bytes => 64;
    public static Vector512<byte> Table => Vector512.Create(Lut256.Table, Lut256.Table);
    public static Vector512<byte> Zero => default;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Load(ref byte p, nuint i) => Vector512.LoadUnsafe(ref p, i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> AddCounts<TOp>(Vector512<byte> acc, Vector512<byte> table, Vector512<byte> x, Vector512<byte> y) where TOp : struct, IBitOp
    {
        var v = TOp.Apply(x, y);
        var mask = Vector512.Create((byte)0x0F);
        var counts = Avx512BW.Shuffle(table, v & mask) + Avx512BW.Shuffle(table, Avx512BW.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask);
        return (acc.AsUInt64() + Avx512BW.SumAbsoluteDifferences(counts, Vector512<byte>.Zero).AsUInt64()).AsByte();
    }
    public static ulong Sum(Vector512<byte> acc) => Vector512.Sum(acc.AsUInt64());
}

/// <summary>AVX2 lanes.</summary>
internal readonly struct Lut256 : ILutLanes<Vector256<byte>>
{
    public static nuint Bytes => 32;
    public static Vector256<byte> Table => Vector256.Create(Lut128.Table, Lut128.Table);
    public static Vector256<byte> Zero => default;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Load(ref byte p, nuint i) => Vector256.LoadUnsafe(ref p, i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> AddCounts<TOp>(Vector256<byte> acc, Vector256<byte> table, Vector256<byte> x, Vector256<byte> y) where TOp : struct, IBitOp
    {
        var v = TOp.Apply(x, y);
        var mask = Vector256.Create((byte)0x0F);
        var counts = Avx2.Shuffle(table, v & mask) + Avx2.Shuffle(table, Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask);
        return (acc.AsUInt64() + Avx2.SumAbsoluteDifferences(counts, Vector256<byte>.Zero).AsUInt64()).AsByte();
    }
    public static ulong Sum(Vector256<byte> acc) => Vector256.Sum(acc.AsUInt64());
}

/// <summary>SSSE3 lanes.</summary>
internal readonly struct Lut128 : ILutLanes<Vector128<byte>>
{
    public static nuint Bytes => 16;
    public static Vector128<byte> Table => Distances.NibbleTable;
    public static Vector128<byte> Zero => default;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Load(ref byte p, nuint i) => Vector128.LoadUnsafe(ref p, i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> AddCounts<TOp>(Vector128<byte> acc, Vector128<byte> table, Vector128<byte> x, Vector128<byte> y) where TOp : struct, IBitOp
    {
        var v = TOp.Apply(x, y);
        var mask = Vector128.Create((byte)0x0F);
        var counts = Ssse3.Shuffle(table, v & mask) + Ssse3.Shuffle(table, Sse2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask);
        return (acc.AsUInt64() + Sse2.SumAbsoluteDifferences(counts, Vector128<byte>.Zero).AsUInt64()).AsByte();
    }
    public static ulong Sum(Vector128<byte> acc) => Vector128.Sum(acc.AsUInt64());
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
