using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Distance;

// Many-to-many inner products as a small register-tiled GEMM.
//
// x (the short side: query batches) is packed once per call, k-major, in blocks of W rows
// (W = two vectors: 32 floats at 512 bits): packed[k * W + r] = x[r, k], zero rows padding the last block.
// The micro-kernel then walks k once for a tile of W x-rows by YB y-rows: it loads the two x vectors and,
// for each of the YB y-rows, broadcasts y[j, k] straight from the row-major corpus (folded into the FMA as an
// embedded broadcast) into 2·YB vector accumulators. Each corpus row is therefore streamed from memory once
// per W queries, sequentially; the packed queries stay in L1/L2. The W×YB tile is transposed into the
// row-major result: in registers for a whole 32 × 8 tile at 512 bits (Kernel512 with ny > 0: 1.1–1.8× the GEMM's
// throughput at d = 64–1000 against a scalar scatter through a tile buffer) and for a whole 16 × 6 tile at 256 bits
// (8 × 8 transposes, masked 6-float stores), through the buffer otherwise. Tails:
// the last y tile is copied into a zero-padded scratch, the last x block is padded at packing time, so one kernel
// shape covers every (nx, ny, d).
public static partial class Distances
{
    [ThreadStatic] private static float[]? t_packedX;
    [ThreadStatic] private static float[]? t_yTail;

    internal static void DotManyToManyAt(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int dimension, Span<float> result, SimdLevel level)
    {
        (int nx, int ny) = CheckManyToMany(x.Length, y.Length, dimension, result.Length);
        if (nx == 0 || ny == 0) return;
        if (level == SimdLevel.Scalar)
        {
            for (int i = 0; i < nx; i++)
                OneToMany<DotOp>(x.Slice(i * dimension, dimension), y, ny, result.Slice(i * ny, ny), SimdLevel.Scalar);
            return;
        }
        (int w, int yb) = level switch { SimdLevel.V512 => (32, 8), SimdLevel.V256 => (16, 6), _ => (8, 6) };
        int d = dimension;
        // x is packed in chunks of a few blocks so scratch stays bounded (and L2-sized) however many rows x has;
        // y is streamed once per chunk.
        int chunkRows = XChunkBlocks * w;
        float[] packed = Scratch(ref t_packedX, checked(Math.Min(nx + w - 1, chunkRows) / w * w * d));
        Span<float> tile = stackalloc float[32 * 8];
        for (int x0 = 0; x0 < nx; x0 += chunkRows)
        {
            int rowsInChunk = Math.Min(chunkRows, nx - x0);
            PackX(x.Slice(x0 * d, rowsInChunk * d), rowsInChunk, d, w, packed);
            ManyToManyChunk(packed, rowsInChunk, y, ny, d, w, yb, result[(x0 * ny)..], tile, level);
        }
    }

    private const int XChunkBlocks = 4;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot SIMD loop: skip tier-0 (short-lived CLI runs spend seconds in it)
    private static void ManyToManyChunk(float[] packed, int nx, ReadOnlySpan<float> y, int ny, int d, int w, int yb,
        Span<float> result, Span<float> tile, SimdLevel level)
    {
        int blocks = (nx + w - 1) / w;
        bool direct = level == SimdLevel.V512 && Avx512F.IsSupported; // whole tiles stored by Kernel512 itself
        bool direct256 = level == SimdLevel.V256 && Avx.IsSupported && w == 16 && yb == 6; // and by Kernel256
        ref float yBase = ref MemoryMarshal.GetReference(y);
        ref float rBase = ref MemoryMarshal.GetReference(result);
        ref float t = ref MemoryMarshal.GetReference(tile);
        for (int j0 = 0; j0 < ny; j0 += yb)
        {
            int cols = Math.Min(yb, ny - j0);
            ref float yt = ref Unsafe.Add(ref yBase, (nint)j0 * d);
            if (cols < yb)
            {
                float[] tail = Scratch(ref t_yTail, yb * d);
                y.Slice(j0 * d, cols * d).CopyTo(tail);
                tail.AsSpan(cols * d, (yb - cols) * d).Clear();
                yt = ref MemoryMarshal.GetArrayDataReference(tail);
            }
            for (int b = 0; b < blocks; b++)
            {
                ref float pb = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(packed), (nint)b * w * d);
                int rows = Math.Min(w, nx - b * w);
                ref float o = ref Unsafe.Add(ref rBase, (nint)b * w * ny + j0);
                if (direct && rows == 32 && cols == 8)
                {
                    // A whole 32 × 8 tile: transposed in registers and stored row by row (no scalar scatter).
                    Kernel512(ref pb, ref yt, d, ref t, ref o, ny);
                    continue;
                }
                if (direct256 && rows == 16 && cols == 6)
                {
                    Kernel256(ref pb, ref yt, d, ref t, ref o, ny);
                    continue;
                }
                switch (level)
                {
                    case SimdLevel.V512: Kernel512(ref pb, ref yt, d, ref t, ref t, 0); break;
                    case SimdLevel.V256: Kernel256(ref pb, ref yt, d, ref t, ref t, 0); break;
                    default: Kernel128(ref pb, ref yt, d, ref t); break;
                }
                for (int r = 0; r < rows; r++)
                {
                    ref float orow = ref Unsafe.Add(ref o, (nint)r * ny);
                    for (int c = 0; c < cols; c++) Unsafe.Add(ref orow, c) = Unsafe.Add(ref t, c * w + r);
                }
            }
        }
    }

    internal static void SquaredL2ManyToManyAt(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int dimension,
        ReadOnlySpan<float> xNorms, ReadOnlySpan<float> yNorms, Span<float> result, SimdLevel level)
    {
        (int nx, int ny) = CheckManyToMany(x.Length, y.Length, dimension, result.Length);
        if (xNorms.Length < nx || yNorms.Length < ny) throw new ArgumentException("Norm spans are shorter than the row counts.");
        DotManyToManyAt(x, y, dimension, result, level);
        var yn = yNorms[..ny];
        for (int i = 0; i < nx; i++)
        {
            var row = result.Slice(i * ny, ny);
            // ‖x‖² + ‖y‖² − 2 x·y, clamped: rounding can make it slightly negative for near-duplicates.
            TensorPrimitives.MultiplyAdd(row, -2f, yn, row);
            TensorPrimitives.Add(row, xNorms[i], row);
            TensorPrimitives.Max(row, 0f, row);
        }
    }

    private static float[] Scratch(ref float[]? slot, int length)
    {
        if (slot is null || slot.Length < length) slot = new float[Math.Max(length, slot is null ? 0 : slot.Length * 2)];
        return slot;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot SIMD loop: skip tier-0 (short-lived CLI runs spend seconds in it)
    private static void PackX(ReadOnlySpan<float> x, int nx, int d, int w, float[] packed)
    {
        int blocks = (nx + w - 1) / w;
        bool simd = Avx512F.IsSupported && w % 8 == 0;
        bool simd256 = !simd && Avx.IsSupported && w % 8 == 0;
        for (int b = 0; b < blocks; b++)
        {
            var dst = packed.AsSpan(b * w * d, w * d);
            int rows = Math.Min(w, nx - b * w);
            if (rows < w) dst.Clear();
            int r = 0;
            if (simd)
            {
                // 8 rows × 16 columns at a time: the rows' 16-float slices are transposed in registers and each
                // column's 8 values leave as one 256-bit store (the scalar loop below stores one float per value).
                ref float src0 = ref MemoryMarshal.GetReference(x);
                ref float out0 = ref MemoryMarshal.GetArrayDataReference(packed);
                for (; r + 8 <= rows; r += 8)
                {
                    ref float s = ref Unsafe.Add(ref src0, (nint)(b * w + r) * d);
                    int k = 0;
                    for (; k + 16 <= d; k += 16)
                        StoreTransposed(Vector512.LoadUnsafe(ref s, (nuint)k), Vector512.LoadUnsafe(ref s, (nuint)(d + k)),
                            Vector512.LoadUnsafe(ref s, (nuint)(2 * d + k)), Vector512.LoadUnsafe(ref s, (nuint)(3 * d + k)),
                            Vector512.LoadUnsafe(ref s, (nuint)(4 * d + k)), Vector512.LoadUnsafe(ref s, (nuint)(5 * d + k)),
                            Vector512.LoadUnsafe(ref s, (nuint)(6 * d + k)), Vector512.LoadUnsafe(ref s, (nuint)(7 * d + k)),
                            ref Unsafe.Add(ref out0, (nint)b * w * d + (nint)k * w + r), w);
                    for (; k < d; k++)
                        for (int i = 0; i < 8; i++) dst[k * w + r + i] = Unsafe.Add(ref s, (nint)i * d + k);
                }
            }
            else if (simd256)
            {
                // 8 rows × 8 columns at a time, transposed in registers (AVX): each column's 8 values leave as one store.
                ref float src0 = ref MemoryMarshal.GetReference(x);
                ref float out0 = ref MemoryMarshal.GetArrayDataReference(packed);
                for (; r + 8 <= rows; r += 8)
                {
                    ref float s = ref Unsafe.Add(ref src0, (nint)(b * w + r) * d);
                    int k = 0;
                    for (; k + 8 <= d; k += 8)
                        StoreTransposed256(ref Unsafe.Add(ref s, k), d, ref Unsafe.Add(ref out0, (nint)b * w * d + (nint)k * w + r), w);
                    for (; k < d; k++)
                        for (int i = 0; i < 8; i++) dst[k * w + r + i] = Unsafe.Add(ref s, (nint)i * d + k);
                }
            }
            for (; r < rows; r++)
            {
                var src = x.Slice((b * w + r) * d, d);
                for (int k = 0; k < d; k++) dst[k * w + r] = src[k];
            }
        }
    }

    // 32 x-rows (two vectors) × 8 y-rows: 16 accumulators, 2 loads and 8 embedded broadcasts per k. With ny > 0 (a whole
    // tile, AVX-512F) the accumulators (y-row j: c_j0 = x-rows 0..15, c_j1 = x-rows 16..31) are transposed in registers,
    // 8 × 16 at a time, and each x-row's 8 results leave as one 256-bit store into the row-major result (row stride ny);
    // otherwise they go to the column-major tile.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot SIMD loop: skip tier-0 (short-lived CLI runs spend seconds in it)
    private static void Kernel512(ref float px, ref float y, int d, ref float tile, ref float result, int ny)
    {
        nint n = d;
        ref float y0 = ref y;
        ref float y1 = ref Unsafe.Add(ref y0, n);
        ref float y2 = ref Unsafe.Add(ref y1, n);
        ref float y3 = ref Unsafe.Add(ref y2, n);
        ref float y4 = ref Unsafe.Add(ref y3, n);
        ref float y5 = ref Unsafe.Add(ref y4, n);
        ref float y6 = ref Unsafe.Add(ref y5, n);
        ref float y7 = ref Unsafe.Add(ref y6, n);
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default;
        for (nint k = 0; k < n; k++)
        {
            var b0 = Vector512.LoadUnsafe(ref px);
            var b1 = Vector512.LoadUnsafe(ref px, 16);
            px = ref Unsafe.Add(ref px, 32);
            var a = Vector512.Create(Unsafe.Add(ref y0, k)); c00 = Vector512.FusedMultiplyAdd(a, b0, c00); c01 = Vector512.FusedMultiplyAdd(a, b1, c01);
            a = Vector512.Create(Unsafe.Add(ref y1, k)); c10 = Vector512.FusedMultiplyAdd(a, b0, c10); c11 = Vector512.FusedMultiplyAdd(a, b1, c11);
            a = Vector512.Create(Unsafe.Add(ref y2, k)); c20 = Vector512.FusedMultiplyAdd(a, b0, c20); c21 = Vector512.FusedMultiplyAdd(a, b1, c21);
            a = Vector512.Create(Unsafe.Add(ref y3, k)); c30 = Vector512.FusedMultiplyAdd(a, b0, c30); c31 = Vector512.FusedMultiplyAdd(a, b1, c31);
            a = Vector512.Create(Unsafe.Add(ref y4, k)); c40 = Vector512.FusedMultiplyAdd(a, b0, c40); c41 = Vector512.FusedMultiplyAdd(a, b1, c41);
            a = Vector512.Create(Unsafe.Add(ref y5, k)); c50 = Vector512.FusedMultiplyAdd(a, b0, c50); c51 = Vector512.FusedMultiplyAdd(a, b1, c51);
            a = Vector512.Create(Unsafe.Add(ref y6, k)); c60 = Vector512.FusedMultiplyAdd(a, b0, c60); c61 = Vector512.FusedMultiplyAdd(a, b1, c61);
            a = Vector512.Create(Unsafe.Add(ref y7, k)); c70 = Vector512.FusedMultiplyAdd(a, b0, c70); c71 = Vector512.FusedMultiplyAdd(a, b1, c71);
        }
        if (ny > 0)
        {
            StoreTransposed(c00, c10, c20, c30, c40, c50, c60, c70, ref result, ny);
            StoreTransposed(c01, c11, c21, c31, c41, c51, c61, c71, ref Unsafe.Add(ref result, (nint)16 * ny), ny);
            return;
        }
        c00.StoreUnsafe(ref tile, 0); c01.StoreUnsafe(ref tile, 16);
        c10.StoreUnsafe(ref tile, 32); c11.StoreUnsafe(ref tile, 48);
        c20.StoreUnsafe(ref tile, 64); c21.StoreUnsafe(ref tile, 80);
        c30.StoreUnsafe(ref tile, 96); c31.StoreUnsafe(ref tile, 112);
        c40.StoreUnsafe(ref tile, 128); c41.StoreUnsafe(ref tile, 144);
        c50.StoreUnsafe(ref tile, 160); c51.StoreUnsafe(ref tile, 176);
        c60.StoreUnsafe(ref tile, 192); c61.StoreUnsafe(ref tile, 208);
        c70.StoreUnsafe(ref tile, 224); c71.StoreUnsafe(ref tile, 240);
    }

    // a_j holds column j (j = 0..5) of 8 rows; writes row r's 6 columns (a_0[r] … a_5[r]) at result[r * ny] with a
    // masked store (the two lanes past them are left as they are).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreTransposed6(Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3,
        Vector256<float> a4, Vector256<float> a5, ref float result, int ny)
    {
        Vector256<float> a6 = default, a7 = default;
        Transpose8x8(ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
        var mask = Vector256.Create(-1, -1, -1, -1, -1, -1, 0, 0).AsSingle();
        fixed (float* o = &result)
        {
            nint s = ny;
            Avx.MaskStore(o, mask, a0);
            Avx.MaskStore(o + s, mask, a1);
            Avx.MaskStore(o + 2 * s, mask, a2);
            Avx.MaskStore(o + 3 * s, mask, a3);
            Avx.MaskStore(o + 4 * s, mask, a4);
            Avx.MaskStore(o + 5 * s, mask, a5);
            Avx.MaskStore(o + 6 * s, mask, a6);
            Avx.MaskStore(o + 7 * s, mask, a7);
        }
    }

    // Rows 0..7 of an 8 × 8 float block (row stride d) written as its columns: column j's 8 values at dst[j * w].
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreTransposed256(ref float src, int d, ref float dst, int w)
    {
        var r0 = Vector256.LoadUnsafe(ref src);
        var r1 = Vector256.LoadUnsafe(ref src, (nuint)d);
        var r2 = Vector256.LoadUnsafe(ref src, (nuint)(2 * d));
        var r3 = Vector256.LoadUnsafe(ref src, (nuint)(3 * d));
        var r4 = Vector256.LoadUnsafe(ref src, (nuint)(4 * d));
        var r5 = Vector256.LoadUnsafe(ref src, (nuint)(5 * d));
        var r6 = Vector256.LoadUnsafe(ref src, (nuint)(6 * d));
        var r7 = Vector256.LoadUnsafe(ref src, (nuint)(7 * d));
        Transpose8x8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        nuint s = (nuint)w;
        r0.StoreUnsafe(ref dst);
        r1.StoreUnsafe(ref dst, s);
        r2.StoreUnsafe(ref dst, 2 * s);
        r3.StoreUnsafe(ref dst, 3 * s);
        r4.StoreUnsafe(ref dst, 4 * s);
        r5.StoreUnsafe(ref dst, 5 * s);
        r6.StoreUnsafe(ref dst, 6 * s);
        r7.StoreUnsafe(ref dst, 7 * s);
    }

    // The 8 × 8 block whose row j is r_j, transposed in place (AVX): afterwards r_j holds column j.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(ref Vector256<float> r0, ref Vector256<float> r1, ref Vector256<float> r2, ref Vector256<float> r3,
        ref Vector256<float> r4, ref Vector256<float> r5, ref Vector256<float> r6, ref Vector256<float> r7)
    {
        // Within each 128-bit lane: interleave row pairs, then row quads (u_m: column m of rows 0-3 in lane 0, column
        // 4 + m of rows 0-3 in lane 1; v_m the same for rows 4-7); the lanes are exchanged last.
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var v0 = Avx.Shuffle(t4, t6, 0x44); var v1 = Avx.Shuffle(t4, t6, 0xEE);
        var v2 = Avx.Shuffle(t5, t7, 0x44); var v3 = Avx.Shuffle(t5, t7, 0xEE);
        r0 = Avx.Permute2x128(u0, v0, 0x20);
        r1 = Avx.Permute2x128(u1, v1, 0x20);
        r2 = Avx.Permute2x128(u2, v2, 0x20);
        r3 = Avx.Permute2x128(u3, v3, 0x20);
        r4 = Avx.Permute2x128(u0, v0, 0x31);
        r5 = Avx.Permute2x128(u1, v1, 0x31);
        r6 = Avx.Permute2x128(u2, v2, 0x31);
        r7 = Avx.Permute2x128(u3, v3, 0x31);
    }

    // a_j holds column j (j = 0..7) of 16 rows; writes row r's 8 columns (a_0[r] … a_7[r]) at result[r * ny].
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreTransposed(Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3,
        Vector512<float> a4, Vector512<float> a5, Vector512<float> a6, Vector512<float> a7, ref float result, int ny)
    {
        // Within each 128-bit lane L: t0 = a0[4L], a1[4L], a0[4L+1], a1[4L+1]; t1 the same for 4L+2, 4L+3.
        var t0 = Avx512F.UnpackLow(a0, a1); var t1 = Avx512F.UnpackHigh(a0, a1);
        var t2 = Avx512F.UnpackLow(a2, a3); var t3 = Avx512F.UnpackHigh(a2, a3);
        var t4 = Avx512F.UnpackLow(a4, a5); var t5 = Avx512F.UnpackHigh(a4, a5);
        var t6 = Avx512F.UnpackLow(a6, a7); var t7 = Avx512F.UnpackHigh(a6, a7);
        // u_m (m = 0..3), lane L: columns 0..3 of row 4L + m; v_m: columns 4..7 of the same row.
        var u0 = Avx512F.Shuffle(t0, t2, 0x44); var u1 = Avx512F.Shuffle(t0, t2, 0xEE);
        var u2 = Avx512F.Shuffle(t1, t3, 0x44); var u3 = Avx512F.Shuffle(t1, t3, 0xEE);
        var v0 = Avx512F.Shuffle(t4, t6, 0x44); var v1 = Avx512F.Shuffle(t4, t6, 0xEE);
        var v2 = Avx512F.Shuffle(t5, t7, 0x44); var v3 = Avx512F.Shuffle(t5, t7, 0xEE);
        StoreRows(u0, v0, ref result, 0, ny);
        StoreRows(u1, v1, ref result, 1, ny);
        StoreRows(u2, v2, ref result, 2, ny);
        StoreRows(u3, v3, ref result, 3, ny);
    }

    // Rows m, 4 + m, 8 + m and 12 + m from u (columns 0..3 by lane) and v (columns 4..7 by lane).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRows(Vector512<float> u, Vector512<float> v, ref float result, int m, int ny)
    {
        // lo = u.L0, u.L1, v.L0, v.L1 → reordered to u.L0, v.L0 (row m) | u.L1, v.L1 (row 4 + m); hi likewise for 8 + m, 12 + m.
        var a = Avx512F.Shuffle4x128(u, v, 0x44);
        var b = Avx512F.Shuffle4x128(u, v, 0xEE);
        var lo = Avx512F.Shuffle4x128(a, a, 0xD8);
        var hi = Avx512F.Shuffle4x128(b, b, 0xD8);
        lo.GetLower().StoreUnsafe(ref result, (nuint)(m * ny));
        lo.GetUpper().StoreUnsafe(ref result, (nuint)((4 + m) * ny));
        hi.GetLower().StoreUnsafe(ref result, (nuint)((8 + m) * ny));
        hi.GetUpper().StoreUnsafe(ref result, (nuint)((12 + m) * ny));
    }

    // 16 x-rows × 6 y-rows: 12 accumulators fit the 16 registers of AVX2.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot SIMD loop: skip tier-0 (short-lived CLI runs spend seconds in it)
    private static void Kernel256(ref float px, ref float y, int d, ref float tile, ref float result, int ny)
    {
        nint n = d;
        ref float y0 = ref y;
        ref float y1 = ref Unsafe.Add(ref y0, n);
        ref float y2 = ref Unsafe.Add(ref y1, n);
        ref float y3 = ref Unsafe.Add(ref y2, n);
        ref float y4 = ref Unsafe.Add(ref y3, n);
        ref float y5 = ref Unsafe.Add(ref y4, n);
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (nint k = 0; k < n; k++)
        {
            var b0 = Vector256.LoadUnsafe(ref px);
            var b1 = Vector256.LoadUnsafe(ref px, 8);
            px = ref Unsafe.Add(ref px, 16);
            var a = Vector256.Create(Unsafe.Add(ref y0, k)); c00 = Vector256.FusedMultiplyAdd(a, b0, c00); c01 = Vector256.FusedMultiplyAdd(a, b1, c01);
            a = Vector256.Create(Unsafe.Add(ref y1, k)); c10 = Vector256.FusedMultiplyAdd(a, b0, c10); c11 = Vector256.FusedMultiplyAdd(a, b1, c11);
            a = Vector256.Create(Unsafe.Add(ref y2, k)); c20 = Vector256.FusedMultiplyAdd(a, b0, c20); c21 = Vector256.FusedMultiplyAdd(a, b1, c21);
            a = Vector256.Create(Unsafe.Add(ref y3, k)); c30 = Vector256.FusedMultiplyAdd(a, b0, c30); c31 = Vector256.FusedMultiplyAdd(a, b1, c31);
            a = Vector256.Create(Unsafe.Add(ref y4, k)); c40 = Vector256.FusedMultiplyAdd(a, b0, c40); c41 = Vector256.FusedMultiplyAdd(a, b1, c41);
            a = Vector256.Create(Unsafe.Add(ref y5, k)); c50 = Vector256.FusedMultiplyAdd(a, b0, c50); c51 = Vector256.FusedMultiplyAdd(a, b1, c51);
        }
        if (ny > 0)
        {
            // A whole 16 × 6 tile: x-rows 0-7, then 8-15, transposed in registers; each row's 6 results leave as one
            // masked store into the row-major result (row stride ny).
            StoreTransposed6(c00, c10, c20, c30, c40, c50, ref result, ny);
            StoreTransposed6(c01, c11, c21, c31, c41, c51, ref Unsafe.Add(ref result, (nint)8 * ny), ny);
            return;
        }
        c00.StoreUnsafe(ref tile, 0); c01.StoreUnsafe(ref tile, 8);
        c10.StoreUnsafe(ref tile, 16); c11.StoreUnsafe(ref tile, 24);
        c20.StoreUnsafe(ref tile, 32); c21.StoreUnsafe(ref tile, 40);
        c30.StoreUnsafe(ref tile, 48); c31.StoreUnsafe(ref tile, 56);
        c40.StoreUnsafe(ref tile, 64); c41.StoreUnsafe(ref tile, 72);
        c50.StoreUnsafe(ref tile, 80); c51.StoreUnsafe(ref tile, 88);
    }

    // 8 x-rows × 6 y-rows at 128 bits (SSE / NEON).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot SIMD loop: skip tier-0 (short-lived CLI runs spend seconds in it)
    private static void Kernel128(ref float px, ref float y, int d, ref float tile)
    {
        nint n = d;
        ref float y0 = ref y;
        ref float y1 = ref Unsafe.Add(ref y0, n);
        ref float y2 = ref Unsafe.Add(ref y1, n);
        ref float y3 = ref Unsafe.Add(ref y2, n);
        ref float y4 = ref Unsafe.Add(ref y3, n);
        ref float y5 = ref Unsafe.Add(ref y4, n);
        Vector128<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (nint k = 0; k < n; k++)
        {
            var b0 = Vector128.LoadUnsafe(ref px);
            var b1 = Vector128.LoadUnsafe(ref px, 4);
            px = ref Unsafe.Add(ref px, 8);
            var a = Vector128.Create(Unsafe.Add(ref y0, k)); c00 = Vector128.FusedMultiplyAdd(a, b0, c00); c01 = Vector128.FusedMultiplyAdd(a, b1, c01);
            a = Vector128.Create(Unsafe.Add(ref y1, k)); c10 = Vector128.FusedMultiplyAdd(a, b0, c10); c11 = Vector128.FusedMultiplyAdd(a, b1, c11);
            a = Vector128.Create(Unsafe.Add(ref y2, k)); c20 = Vector128.FusedMultiplyAdd(a, b0, c20); c21 = Vector128.FusedMultiplyAdd(a, b1, c21);
            a = Vector128.Create(Unsafe.Add(ref y3, k)); c30 = Vector128.FusedMultiplyAdd(a, b0, c30); c31 = Vector128.FusedMultiplyAdd(a, b1, c31);
            a = Vector128.Create(Unsafe.Add(ref y4, k)); c40 = Vector128.FusedMultiplyAdd(a, b0, c40); c41 = Vector128.FusedMultiplyAdd(a, b1, c41);
            a = Vector128.Create(Unsafe.Add(ref y5, k)); c50 = Vector128.FusedMultiplyAdd(a, b0, c50); c51 = Vector128.FusedMultiplyAdd(a, b1, c51);
        }
        c00.StoreUnsafe(ref tile, 0); c01.StoreUnsafe(ref tile, 4);
        c10.StoreUnsafe(ref tile, 8); c11.StoreUnsafe(ref tile, 12);
        c20.StoreUnsafe(ref tile, 16); c21.StoreUnsafe(ref tile, 20);
        c30.StoreUnsafe(ref tile, 24); c31.StoreUnsafe(ref tile, 28);
        c40.StoreUnsafe(ref tile, 32); c41.StoreUnsafe(ref tile, 36);
        c50.StoreUnsafe(ref tile, 40); c51.StoreUnsafe(ref tile, 44);
    }
}
