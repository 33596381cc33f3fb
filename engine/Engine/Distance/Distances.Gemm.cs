using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Engine.Distance;

// Many-to-many inner products as a small register-tiled GEMM.
//
// x (the short side: query batches) is packed once per call, k-major, in blocks of W rows
// (W = two vectors: 32 floats at 512 bits): packed[k * W + r] = x[r, k], zero rows padding the last block.
// The micro-kernel then walks k once for a tile of W x-rows by YB y-rows: it loads the two x vectors and,
// for each of the YB y-rows, broadcasts y[j, k] straight from the row-major corpus (folded into the FMA as an
// embedded broadcast) into 2·YB vector accumulators. Each corpus row is therefore streamed from memory once
// per W queries, sequentially; the packed queries stay in L1/L2. The W×YB tile is transposed into the
// row-major result. Tails: the last y tile is copied into a zero-padded scratch, the last x block is padded
// at packing time, so one kernel shape covers every (nx, ny, d).
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
                switch (level)
                {
                    case SimdLevel.V512: Kernel512(ref pb, ref yt, d, ref t); break;
                    case SimdLevel.V256: Kernel256(ref pb, ref yt, d, ref t); break;
                    default: Kernel128(ref pb, ref yt, d, ref t); break;
                }
                int rows = Math.Min(w, nx - b * w);
                ref float o = ref Unsafe.Add(ref rBase, (nint)b * w * ny + j0);
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
        for (int b = 0; b < blocks; b++)
        {
            var dst = packed.AsSpan(b * w * d, w * d);
            int rows = Math.Min(w, nx - b * w);
            if (rows < w) dst.Clear();
            for (int r = 0; r < rows; r++)
            {
                var src = x.Slice((b * w + r) * d, d);
                for (int k = 0; k < d; k++) dst[k * w + r] = src[k];
            }
        }
    }

    // 32 x-rows (two vectors) × 8 y-rows: 16 accumulators, 2 loads and 8 embedded broadcasts per k.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot SIMD loop: skip tier-0 (short-lived CLI runs spend seconds in it)
    private static void Kernel512(ref float px, ref float y, int d, ref float tile)
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
        c00.StoreUnsafe(ref tile, 0); c01.StoreUnsafe(ref tile, 16);
        c10.StoreUnsafe(ref tile, 32); c11.StoreUnsafe(ref tile, 48);
        c20.StoreUnsafe(ref tile, 64); c21.StoreUnsafe(ref tile, 80);
        c30.StoreUnsafe(ref tile, 96); c31.StoreUnsafe(ref tile, 112);
        c40.StoreUnsafe(ref tile, 128); c41.StoreUnsafe(ref tile, 144);
        c50.StoreUnsafe(ref tile, 160); c51.StoreUnsafe(ref tile, 176);
        c60.StoreUnsafe(ref tile, 192); c61.StoreUnsafe(ref tile, 208);
        c70.StoreUnsafe(ref tile, 224); c71.StoreUnsafe(ref tile, 240);
    }

    // 16 x-rows × 6 y-rows: 12 accumulators fit the 16 registers of AVX2.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot SIMD loop: skip tier-0 (short-lived CLI runs spend seconds in it)
    private static void Kernel256(ref float px, ref float y, int d, ref float tile)
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
