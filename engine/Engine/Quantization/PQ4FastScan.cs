using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Quantization;

/// <summary>
/// 4-bit PQ fast-scan (faiss "FastScan", André et al. VLDB'15): codes of 32 vectors are packed per block so
/// that one byte-shuffle looks up 16-entry, uint8-quantised distance tables for 32 (AVX2) or 64 (AVX-512)
/// sub-codes at once, accumulated in 16-bit lanes.
/// </summary>
/// <remarks>
/// <para>Block layout (<see cref="BlockBytes"/> bytes for 32 vectors; M padded to a multiple of 4 with zero
/// codes): for each pair p of sub-quantizers (2p, 2p+1), 32 bytes, byte i = code<sub>2p</sub>(vector i) |
/// code<sub>2p+1</sub>(vector i) &lt;&lt; 4. Pairs follow each other, so a group of 4 sub-quantizers is 64
/// bytes: one AVX-512 register, or two AVX2 registers.</para>
/// <para>Table layout (<see cref="LutBytes"/>): per group g of 4 sub-quantizers, 128 bytes: 64 "low nibble"
/// bytes [T<sub>4g</sub>, T<sub>4g</sub>, T<sub>4g+2</sub>, T<sub>4g+2</sub>] and 64 "high nibble" bytes
/// [T<sub>4g+1</sub>, T<sub>4g+1</sub>, T<sub>4g+3</sub>, T<sub>4g+3</sub>], each T a 16-byte table
/// duplicated per 128-bit lane because the shuffle instructions look up within a lane.</para>
/// <para>Accumulation (after faiss kernel_accumulate_block): the two lookups of a code byte (its low and high
/// nibble) are added as bytes — the quantisation keeps every such pair within a byte (<see cref="MaxPairSum"/>) — then
/// added as 16-bit lanes to one accumulator and shifted right by 8 into another; even = lo − (hi &lt;&lt; 8) recovers
/// the even vectors' sums and hi holds the odd ones, exact while every total fits 16 bits (guaranteed by the
/// quantisation). faiss widens each lookup: one shift and one add more per pair of sub-quantizers.</para>
/// </remarks>
internal static class PQ4FastScan
{
    public const int BlockSize = 32;

    /// <summary>M rounded up to a multiple of 4.</summary>
    public static int PaddedM(int m) => (m + 3) & ~3;

    /// <summary>Bytes of one packed block of 32 vectors.</summary>
    public static int BlockBytes(int m) => PaddedM(m) * 16;

    /// <summary>Bytes of one quantised query table.</summary>
    public static int LutBytes(int m) => PaddedM(m) * 32;

    /// <summary>Writes the M unpacked sub-codes of the vector at <paramref name="offset"/> into packed storage.</summary>
    public static void SetCode(Span<byte> packed, int m, int offset, ReadOnlySpan<byte> code)
    {
        int blockBase = offset / BlockSize * BlockBytes(m), i = offset % BlockSize;
        for (int s = 0; s < m; s++)
        {
            ref byte b = ref packed[blockBase + (s >> 1) * 32 + i];
            b = (s & 1) == 0 ? (byte)((b & 0xF0) | (code[s] & 0x0F)) : (byte)((b & 0x0F) | (code[s] << 4));
        }
    }

    /// <summary>Reads the M sub-codes of the vector at <paramref name="offset"/>.</summary>
    public static void GetCode(ReadOnlySpan<byte> packed, int m, int offset, Span<byte> code)
    {
        int blockBase = offset / BlockSize * BlockBytes(m), i = offset % BlockSize;
        for (int s = 0; s < m; s++)
        {
            byte b = packed[blockBase + (s >> 1) * 32 + i];
            code[s] = (byte)((s & 1) == 0 ? b & 0x0F : b >> 4);
        }
    }

    /// <summary>Zeroes the slot of the vector at <paramref name="offset"/> (all sub-quantizers, padding included).</summary>
    public static void ClearCode(Span<byte> packed, int m, int offset)
    {
        int blockBase = offset / BlockSize * BlockBytes(m), i = offset % BlockSize;
        for (int p = 0; p < PaddedM(m) / 2; p++) packed[blockBase + p * 32 + i] = 0;
    }

    /// <summary>
    /// The largest sum of two quantised entries of the sub-quantizers that share a code byte (2p, 2p + 1): the kernels
    /// add the two lookups of a byte's nibbles as bytes and widen once per pair instead of once per lookup.
    /// </summary>
    public const int MaxPairSum = 254;

    /// <summary>
    /// Quantises a float table (M × 16, smaller is better) to bytes in the kernel layout:
    /// value ≈ <paramref name="bias"/> + Σ q / scale. The scale lets the widest pair of sub-quantizers sharing a code
    /// byte span <see cref="MaxPairSum"/> together (so any two of their entries add up to at most 255 after
    /// rounding) and every total stay within 65 535. Returns the scale.
    /// </summary>
    public static float QuantizeLut(ReadOnlySpan<float> lut, int m, Span<byte> qlut, out float bias)
    {
        float maxPair = 0, sumSpan = 0, pairSpan = 0;
        bias = 0;
        Span<float> mins = m <= 256 ? stackalloc float[m] : new float[m];
        bool simd = Vector512.IsHardwareAccelerated && Avx512F.IsSupported;
        bool simd256 = !simd && Avx2.IsSupported;
        for (int s = 0; s < m; s++)
        {
            var t = lut.Slice(s * 16, 16);
            float lo, hi;
            if (simd)
            {
                var v = Vector512.Create(t);
                lo = Engine.Distance.Lanes.MinAcross(v);
                hi = Engine.Distance.Lanes.MaxAcross(v);
            }
            else if (simd256)
            {
                var v0 = Vector256.Create(t);
                var v1 = Vector256.Create(t[8..]);
                lo = Engine.Distance.Lanes.MinAcross(Vector256.MinNative(v0, v1));
                hi = Engine.Distance.Lanes.MaxAcross(Vector256.MaxNative(v0, v1));
            }
            else
            {
                lo = t[0]; hi = t[0];
                for (int j = 1; j < 16; j++) { lo = MathF.Min(lo, t[j]); hi = MathF.Max(hi, t[j]); }
            }
            mins[s] = lo;
            bias += lo;
            float span = hi - lo;
            sumSpan += span;
            // sub-quantizers 2p and 2p + 1 share a code byte: the kernels add their lookups as bytes
            pairSpan = (s & 1) == 0 ? span : pairSpan + span;
            maxPair = MathF.Max(maxPair, pairSpan);
        }
        float a = maxPair > 0 ? MathF.Min(MaxPairSum / maxPair, (65535f - m) / sumSpan) : 1f;
        int padded = PaddedM(m);
        for (int s = m; s < padded; s++) // padding sub-quantizers look up zeros
        {
            int g = s >> 2, r = s & 3;
            qlut.Slice(g * 128 + (r & 1) * 64 + (r >> 1) * 32, 32).Clear();
        }
        for (int s = 0; s < m; s++)
        {
            int g = s >> 2, r = s & 3;
            int off = g * 128 + (r & 1) * 64 + (r >> 1) * 32;
            var t = lut.Slice(s * 16, 16);
            if (simd)
            {
                var v = (Vector512.Create(t) - Vector512.Create(mins[s])) * a + Vector512.Create(0.5f);
                var q = Vector512.Min(Vector512.Max(Vector512.ConvertToInt32(v), Vector512<int>.Zero), Vector512.Create(255));
                var bytes = Avx512F.ConvertToVector128Byte(q);
                bytes.CopyTo(qlut.Slice(off, 16));
                bytes.CopyTo(qlut.Slice(off + 16, 16));
                continue;
            }
            if (simd256)
            {
                // the same rounding as the AVX-512 path: (x − min) × a + ½ truncated, clamped to 0..255 by the packs
                var min8 = Vector256.Create(mins[s]);
                var half = Vector256.Create(0.5f);
                var q0 = Vector256.ConvertToInt32((Vector256.Create(t) - min8) * a + half);
                var q1 = Vector256.ConvertToInt32((Vector256.Create(t[8..]) - min8) * a + half);
                var w0 = Sse2.PackSignedSaturate(q0.GetLower(), q0.GetUpper());
                var w1 = Sse2.PackSignedSaturate(q1.GetLower(), q1.GetUpper());
                var bytes = Sse2.PackUnsignedSaturate(w0, w1);
                bytes.CopyTo(qlut.Slice(off, 16));
                bytes.CopyTo(qlut.Slice(off + 16, 16));
                continue;
            }
            for (int j = 0; j < 16; j++)
            {
                byte q = (byte)Math.Clamp((int)MathF.Round((t[j] - mins[s]) * a), 0, 255);
                qlut[off + j] = q;
                qlut[off + 16 + j] = q;
            }
        }
        return a;
    }

    /// <summary>
    /// Accumulates the quantised distances of one block of 32 vectors into <paramref name="out32"/> (vector
    /// order) and returns a bit mask of the vectors whose distance is ≤ <paramref name="threshold"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe uint ScanBlock(byte* block, byte* lut, int m, ushort threshold, ushort* out32)
    {
        int groups = PaddedM(m) >> 2;
        if (Avx512BW.IsSupported) return ScanAvx512(block, lut, groups, threshold, out32);
        if (Avx2.IsSupported) return ScanAvx2(block, lut, groups, threshold, out32);
        return ScanScalar(block, lut, groups, threshold, out32);
    }

    /// <summary>
    /// <see cref="ScanBlock"/> for two queries at once (tables <paramref name="lutA"/> and <paramref name="lutB"/>):
    /// each code byte is loaded and split into its nibbles once for both. Writes each query's 32 sums and returns the
    /// mask of query A (query B's in <paramref name="maskB"/>); the results equal two <see cref="ScanBlock"/> calls.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe uint ScanBlockPair(byte* block, byte* lutA, byte* lutB, int m, ushort thrA, ushort thrB,
        ushort* outA, ushort* outB, out uint maskB)
    {
        int groups = PaddedM(m) >> 2;
        if (Avx512BW.IsSupported) return ScanPairAvx512(block, lutA, lutB, groups, thrA, thrB, outA, outB, out maskB);
        if (Avx2.IsSupported) return ScanPairAvx2(block, lutA, lutB, groups, thrA, thrB, outA, outB, out maskB);
        maskB = ScanScalar(block, lutB, groups, thrB, outB);
        return ScanScalar(block, lutA, groups, thrA, outA);
    }

    internal static unsafe uint ScanPairAvx512(byte* block, byte* lutA, byte* lutB, int groups, ushort thrA, ushort thrB,
        ushort* outA, ushort* outB, out uint maskB)
    {
        var low = Vector512.Create((byte)0x0F);
        var aLo = Vector512<ushort>.Zero;
        var aHi = Vector512<ushort>.Zero;
        var bLo = Vector512<ushort>.Zero;
        var bHi = Vector512<ushort>.Zero;
        byte* end = block + groups * 64;
        for (; block < end; block += 64, lutA += 128, lutB += 128)
        {
            // the code bytes split into nibbles once, each query's tables looked up
            var c = Vector512.Load(block);
            var clo = c & low;
            var chi = Vector512.ShiftRightLogical(c.AsUInt16(), 4).AsByte() & low;
            Lookup(clo, chi, lutA, ref aLo, ref aHi);
            Lookup(clo, chi, lutB, ref bLo, ref bHi);
        }
        maskB = Finish512(bLo, bHi, thrB, outB);
        return Finish512(aLo, aHi, thrA, outA);
    }

    internal static unsafe uint ScanPairAvx2(byte* block, byte* lutA, byte* lutB, int groups, ushort thrA, ushort thrB,
        ushort* outA, ushort* outB, out uint maskB)
    {
        var low = Vector256.Create((byte)0x0F);
        var aLo = Vector256<ushort>.Zero;
        var aHi = Vector256<ushort>.Zero;
        var bLo = Vector256<ushort>.Zero;
        var bHi = Vector256<ushort>.Zero;
        byte* end = block + groups * 64;
        for (; block < end; block += 64, lutA += 128, lutB += 128)
        {
            AccumulatePair(Vector256.Load(block), lutA, lutB, low, ref aLo, ref aHi, ref bLo, ref bHi);
            AccumulatePair(Vector256.Load(block + 32), lutA + 32, lutB + 32, low, ref aLo, ref aHi, ref bLo, ref bHi);
        }
        maskB = Finish256(bLo, bHi, thrB, outB);
        return Finish256(aLo, aHi, thrA, outA);
    }

    // Half a group for two queries: the code bytes split into nibbles once, each query's tables looked up.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void AccumulatePair(Vector256<byte> c, byte* lutA, byte* lutB, Vector256<byte> low,
        ref Vector256<ushort> aLo, ref Vector256<ushort> aHi, ref Vector256<ushort> bLo, ref Vector256<ushort> bHi)
    {
        var clo = c & low;
        var chi = Vector256.ShiftRightLogical(c.AsUInt16(), 4).AsByte() & low;
        Lookup(clo, chi, lutA, ref aLo, ref aHi);
        Lookup(clo, chi, lutB, ref bLo, ref bHi);
    }

    internal static unsafe uint ScanScalar(byte* block, byte* lut, int groups, ushort threshold, ushort* out32)
    {
        uint mask = 0;
        for (int i = 0; i < BlockSize; i++)
        {
            int sum = 0;
            for (int g = 0; g < groups; g++)
            {
                byte* c = block + g * 64 + i;
                byte* t = lut + g * 128;
                byte c0 = c[0], c1 = c[32];
                sum += t[c0 & 0x0F] + t[64 + (c0 >> 4)] + t[32 + (c1 & 0x0F)] + t[96 + (c1 >> 4)];
            }
            out32[i] = (ushort)sum;
            if (sum <= threshold) mask |= 1u << i;
        }
        return mask;
    }

    internal static unsafe uint ScanAvx512(byte* block, byte* lut, int groups, ushort threshold, ushort* out32)
    {
        var low = Vector512.Create((byte)0x0F);
        var accLo = Vector512<ushort>.Zero;
        var accHi = Vector512<ushort>.Zero;
        // Two groups a step over bumped pointers: fewer loop instructions per group, and no index arithmetic left to
        // spill when the loop is inlined into a scanner with many live registers.
        byte* end = block + (groups & ~1) * 64;
        for (; block < end; block += 128, lut += 256)
        {
            Accumulate(Vector512.Load(block), lut, low, ref accLo, ref accHi);
            Accumulate(Vector512.Load(block + 64), lut + 128, low, ref accLo, ref accHi);
        }
        if ((groups & 1) != 0) Accumulate(Vector512.Load(block), lut, low, ref accLo, ref accHi);
        return Finish512(accLo, accHi, threshold, out32);
    }

    // The two 256-bit halves of the AVX-512 accumulators hold the sums of alternate sub-quantizer pairs: add them up.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe uint Finish512(Vector512<ushort> accLo, Vector512<ushort> accHi, ushort threshold, ushort* out32)
    {
        var even512 = accLo - Vector512.ShiftLeft(accHi, 8);
        var even = even512.GetLower() + even512.GetUpper();
        var odd = accHi.GetLower() + accHi.GetUpper();
        return Finish(even, odd, threshold, out32);
    }

    // One group of four sub-quantizers (64 code bytes: two nibbles for 32 vectors each) looked up in its 128 table
    // bytes; the low bytes of the 16-bit lanes add up in accLo (with the high bytes × 256), the high bytes in accHi.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Accumulate(Vector512<byte> c, byte* lut, Vector512<byte> low, ref Vector512<ushort> accLo, ref Vector512<ushort> accHi)
    {
        var clo = c & low;
        var chi = Vector512.ShiftRightLogical(c.AsUInt16(), 4).AsByte() & low;
        Lookup(clo, chi, lut, ref accLo, ref accHi);
    }

    // One table's lookups of a byte's two nibbles, added as bytes (they stay within one: MaxPairSum, so no carry into
    // the next byte), then into the 16-bit accumulators (see the remarks on the class).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Lookup(Vector512<byte> clo, Vector512<byte> chi, byte* lut, ref Vector512<ushort> accLo, ref Vector512<ushort> accHi)
    {
        var r = (Avx512BW.Shuffle(Vector512.Load(lut), clo) + Avx512BW.Shuffle(Vector512.Load(lut + 64), chi)).AsUInt16();
        accLo += r;
        accHi += Vector512.ShiftRightLogical(r, 8);
    }

    internal static unsafe uint ScanAvx2(byte* block, byte* lut, int groups, ushort threshold, ushort* out32)
    {
        var low = Vector256.Create((byte)0x0F);
        var accLo = Vector256<ushort>.Zero;
        var accHi = Vector256<ushort>.Zero;
        // Pointers bumped a group (two halves of 32 code bytes) at a time, as in the AVX-512 loop: no index arithmetic
        // or spilled pointer in the loop when it is inlined into a scanner.
        byte* end = block + groups * 64;
        for (; block < end; block += 64, lut += 128)
        {
            Accumulate(Vector256.Load(block), lut, low, ref accLo, ref accHi);
            Accumulate(Vector256.Load(block + 32), lut + 32, low, ref accLo, ref accHi);
        }
        return Finish256(accLo, accHi, threshold, out32);
    }

    // accLo holds even + 256 × odd sums, accHi the odd ones: recover the even ones.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe uint Finish256(Vector256<ushort> accLo, Vector256<ushort> accHi, ushort threshold, ushort* out32) =>
        Finish(accLo - Vector256.ShiftLeft(accHi, 8), accHi, threshold, out32);

    // Half a group (32 code bytes: two sub-quantizers for 32 vectors) looked up in its table bytes (low nibbles at
    // lut, high nibbles at lut + 64).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Accumulate(Vector256<byte> c, byte* lut, Vector256<byte> low, ref Vector256<ushort> accLo, ref Vector256<ushort> accHi)
    {
        var clo = c & low;
        var chi = Vector256.ShiftRightLogical(c.AsUInt16(), 4).AsByte() & low;
        Lookup(clo, chi, lut, ref accLo, ref accHi);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Lookup(Vector256<byte> clo, Vector256<byte> chi, byte* lut, ref Vector256<ushort> accLo, ref Vector256<ushort> accHi)
    {
        var r = (Avx2.Shuffle(Vector256.Load(lut), clo) + Avx2.Shuffle(Vector256.Load(lut + 64), chi)).AsUInt16();
        accLo += r;
        accHi += Vector256.ShiftRightLogical(r, 8);
    }

    // even/odd hold vectors (2j, 2j+1) in u16 lane j of each 128-bit lane (lane 0: vectors 0-15, lane 1: 16-31).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe uint Finish(Vector256<ushort> even, Vector256<ushort> odd, ushort threshold, ushort* out32)
    {
        var lo = Avx2.UnpackLow(even, odd);   // lane0: vectors 0-7, lane1: 16-23
        var hi = Avx2.UnpackHigh(even, odd);  // lane0: vectors 8-15, lane1: 24-31
        var a = Avx2.Permute2x128(lo, hi, 0x20);
        var b = Avx2.Permute2x128(lo, hi, 0x31);
        a.Store(out32);
        b.Store(out32 + 16);
        var t = Vector256.Create(threshold);
        uint ma = Vector256.LessThanOrEqual(a, t).ExtractMostSignificantBits();
        uint mb = Vector256.LessThanOrEqual(b, t).ExtractMostSignificantBits();
        return ma | (mb << 16);
    }
}
