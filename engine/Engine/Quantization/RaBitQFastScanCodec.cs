using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Quantization;

/// <summary>
/// RaBitQ codes stored in the 32-row fast-scan blocks of <see cref="PQ4FastScan"/> (faiss <c>RaBitQfs</c>): with 1 bit
/// per dimension every 4 dimensions form one 4-bit sub-code (M = ⌈d/4⌉), with 4 bits every dimension is one (M = d).
/// A query's 16-entry table per sub-code (the sum of the rotated query over the sub-code's set bits, or the query
/// coordinate times the value) is quantised to bytes once per query, and the block kernel sums 32 codes at a time with
/// byte shuffles; the per-vector factors follow each block. The codec itself is a <see cref="RaBitQCodec"/>: codes
/// enter and leave the layout in its row format.
/// </summary>
public sealed class RaBitQFastScanCodec : IResidualCodec
{
    /// <summary>Creates the codec for d-dimensional vectors at 1 or 4 bits per dimension.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Bits other than 1 or 4, or a bad dimension or metric.</exception>
    public RaBitQFastScanCodec(int dimension, int bits, Metric metric)
    {
        if (bits != 1 && bits != 4) throw new ArgumentOutOfRangeException(nameof(bits), bits, "RaBitQ fast-scan stores 1 or 4 bits per dimension.");
        Codec = new RaBitQCodec(dimension, bits, metric);
        Layout = new RaBitQFastScanLayout(Codec);
    }

    /// <summary>The RaBitQ codec whose codes are stored.</summary>
    public RaBitQCodec Codec { get; }

    /// <summary>The block layout.</summary>
    internal RaBitQFastScanLayout Layout { get; }

    /// <inheritdoc />
    public int Dimension => Codec.Dimension;

    /// <inheritdoc />
    public int CodeSize => Codec.CodeSize;

    /// <inheritdoc />
    public bool IsTrained => Codec.IsTrained;

    /// <inheritdoc />
    public void Train(ReadOnlySpan<float> vectors, int seed, int threads) => Codec.Train(vectors, seed, threads);

    /// <inheritdoc />
    public void Encode(ReadOnlySpan<float> vectors, Span<byte> codes) => Codec.Encode(vectors, codes);

    /// <inheritdoc />
    public void EncodeResiduals(ReadOnlySpan<float> residuals, ReadOnlySpan<float> centers, Span<byte> codes) => Codec.EncodeResiduals(residuals, centers, codes);

    /// <inheritdoc />
    public void Decode(ReadOnlySpan<byte> codes, Span<float> vectors) => Codec.Decode(codes, vectors);

    /// <inheritdoc />
    public IDistanceEstimator CreateEstimator(Metric metric) => Codec.CreateEstimator(metric);
}

/// <summary>
/// 32-row blocks of RaBitQ codes: the <see cref="PQ4FastScan"/> block of the M 4-bit sub-codes, then 32 × 12 bytes of
/// per-vector factors (row i at offset 12 i). Rows enter and leave in <see cref="RaBitQCodec"/>'s row format.
/// </summary>
internal sealed class RaBitQFastScanLayout : CodeLayout
{
    private readonly RaBitQCodec _codec;

    public RaBitQFastScanLayout(RaBitQCodec codec)
    {
        _codec = codec;
        M = codec.Bits == 1 ? (codec.Dimension + 3) / 4 : codec.Dimension;
        CodeBlockBytes = PQ4FastScan.BlockBytes(M);
        BlockBytes = CodeBlockBytes + PQ4FastScan.BlockSize * RaBitQCodec.FactorBytes;
    }

    /// <summary>4-bit sub-codes per vector.</summary>
    public int M { get; }

    /// <summary>Bytes of the sub-code part of a block.</summary>
    public int CodeBlockBytes { get; }

    /// <summary>Bytes of one 32-row block (sub-codes, then factors).</summary>
    public int BlockBytes { get; }

    public override int CodeSize => _codec.CodeSize;

    public override long Bytes(long rows) => checked((rows + 31) / 32 * BlockBytes);

    public override int ScratchBytes => _codec.CodeSize + PQ4FastScan.PaddedM(M);

    /// <summary>The sub-codes of a row code (<see cref="PQ4FastScan.PaddedM"/> bytes, one per byte).</summary>
    public void SubCodes(ReadOnlySpan<byte> code, Span<byte> sub)
    {
        var planes = code[RaBitQCodec.FactorBytes..];
        int pb = _codec.PlaneBytes, d = _codec.Dimension;
        sub[..PQ4FastScan.PaddedM(M)].Clear();
        if (_codec.Bits == 1)
            for (int m = 0; m < M; m++) sub[m] = (byte)((planes[m >> 1] >> ((m & 1) * 4)) & 0x0F);
        else
            for (int i = 0; i < d; i++)
            {
                int v = 0;
                for (int b = 0; b < 4; b++) v |= ((planes[b * pb + (i >> 3)] >> (i & 7)) & 1) << b;
                sub[i] = (byte)v;
            }
    }

    private void Planes(ReadOnlySpan<byte> sub, Span<byte> code)
    {
        var planes = code[RaBitQCodec.FactorBytes..];
        int pb = _codec.PlaneBytes, d = _codec.Dimension;
        planes[..(_codec.Bits * pb)].Clear();
        if (_codec.Bits == 1)
            for (int m = 0; m < M; m++) planes[m >> 1] |= (byte)((sub[m] & 0x0F) << ((m & 1) * 4));
        else
            for (int i = 0; i < d; i++)
                for (int b = 0; b < 4; b++)
                    if (((sub[i] >> b) & 1) != 0) planes[b * pb + (i >> 3)] |= (byte)(1 << (i & 7));
    }

    private (int Block, int Slot) Where(int row) => (row / PQ4FastScan.BlockSize * BlockBytes, row % PQ4FastScan.BlockSize);

    public override void Write(Span<byte> storage, int row, ReadOnlySpan<byte> code)
    {
        var (block, slot) = Where(row);
        Span<byte> sub = stackalloc byte[PQ4FastScan.PaddedM(M)];
        SubCodes(code, sub);
        PQ4FastScan.SetCode(storage.Slice(block, CodeBlockBytes), M, slot, sub);
        code[..RaBitQCodec.FactorBytes].CopyTo(storage.Slice(block + CodeBlockBytes + slot * RaBitQCodec.FactorBytes, RaBitQCodec.FactorBytes));
    }

    public override void Read(ReadOnlySpan<byte> storage, int row, Span<byte> code)
    {
        var (block, slot) = Where(row);
        Span<byte> sub = stackalloc byte[PQ4FastScan.PaddedM(M)];
        PQ4FastScan.GetCode(storage.Slice(block, CodeBlockBytes), M, slot, sub);
        Planes(sub, code);
        storage.Slice(block + CodeBlockBytes + slot * RaBitQCodec.FactorBytes, RaBitQCodec.FactorBytes).CopyTo(code);
    }

    public override void Move(Span<byte> storage, int from, int to, Span<byte> scratch)
    {
        var code = scratch[.._codec.CodeSize];
        Read(storage, from, code);
        Write(storage, to, code);
    }

    public override void Clear(Span<byte> storage, int row)
    {
        var (block, slot) = Where(row);
        PQ4FastScan.ClearCode(storage.Slice(block, CodeBlockBytes), M, slot);
        storage.Slice(block + CodeBlockBytes + slot * RaBitQCodec.FactorBytes, RaBitQCodec.FactorBytes).Clear();
    }
}

/// <summary>
/// A query's quantised fast-scan table for RaBitQ blocks (IVF's and SPANN's fast-scan list scanner):
/// the rotated query's 16-entry table per 4-bit sub-code (the sum of the rotated coordinates over the sub-code's set
/// bits for 1-bit codes, the coordinate times the value for 4-bit codes), quantised to bytes, so that a block sum s
/// gives ⟨P q, y⟩ ≈ <see cref="TableBias"/> + s × <see cref="Inv"/>; and the keys of 16 rows of a block.
/// </summary>
internal sealed class RaBitQFastScanTables
{
    private readonly RaBitQCodec _codec;
    private readonly int _m;
    private readonly float[] _rotated, _table;

    public RaBitQFastScanTables(RaBitQFastScanCodec codec)
    {
        _codec = codec.Codec;
        _m = codec.Layout.M;
        _rotated = new float[_m * 4];
        _table = new float[_m * 16];
        Lut = GC.AllocateArray<byte>(PQ4FastScan.LutBytes(_m) + 64, pinned: true);
    }

    /// <summary>The quantised table (pinned; <see cref="PQ4FastScan.ScanBlock"/>'s layout).</summary>
    public byte[] Lut { get; }

    /// <summary>What one unit of a block sum is worth.</summary>
    public float Inv { get; private set; }

    /// <summary>The table's offset, with the codes' grid offset folded in.</summary>
    public float TableBias { get; private set; }

    /// <summary>The standard deviation of the table's rounding in a block sum (√(M / 12) units).</summary>
    public float RoundingSd { get; private set; }

    /// <summary>Builds the tables of <paramref name="query"/> (d floats, not rotated).</summary>
    public void Set(ReadOnlySpan<float> query)
    {
        int d = _codec.Dimension, m = _m;
        var r = _rotated.AsSpan(0, d);
        query[..d].CopyTo(r);
        _codec.Rotation!.Forward(r);
        float sum = System.Numerics.Tensors.TensorPrimitives.Sum(r);
        if (_codec.Bits == 1)
        {
            _rotated.AsSpan(d).Clear(); // padding dimensions of the last 4-dimension group count zero
            for (int s = 0; s < m; s++)
            {
                var t = _table.AsSpan(s * 16, 16);
                t[0] = 0;
                for (int v = 1; v < 16; v++) t[v] = t[v & (v - 1)] + _rotated[s * 4 + System.Numerics.BitOperations.TrailingZeroCount(v)];
            }
        }
        else
            for (int s = 0; s < m; s++)
                for (int v = 0; v < 16; v++) _table[s * 16 + v] = _rotated[s] * v;
        float scale = PQ4FastScan.QuantizeLut(_table, m, Lut, out float lutBias);
        Inv = 1f / scale;
        TableBias = lutBias - _codec.Offset * sum;
        RoundingSd = MathF.Sqrt(m / 12f) * Inv;
    }

    /// <summary>
    /// The key of one row from its block sum and factors (add, f, err): the estimate (L2: bias + add − 2 ip; inner
    /// product: bias − add − ip) minus <paramref name="bound"/> × err and <paramref name="rounding"/> × |f|.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Key(float sum, float add, float f, float err, float bias, float tableBias, float inv, float bound, float rounding, bool l2)
    {
        float ip = f * (tableBias + sum * inv);
        return (l2 ? bias + add - 2 * ip : bias - add - ip) - bound * err - rounding * MathF.Abs(f);
    }

    /// <summary>
    /// The keys of one 32-row block (<see cref="RaBitQFastScanLayout"/>: sub-codes, then factors at
    /// <paramref name="codeBytes"/>) into <paramref name="keys32"/>, and the mask of the first <paramref name="valid"/>
    /// rows whose key is at most <paramref name="threshold"/>: the block sums of <see cref="PQ4FastScan.ScanBlock"/>,
    /// then <see cref="Keys16"/> twice with AVX-512, else <see cref="Key"/> per row (bit-identical keys either way).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe uint BlockKeys(byte* block, byte* lut, int m, int codeBytes, int valid, ushort* out32, float* keys32,
        float bias, float tableBias, float inv, float bound, float rounding, bool l2, float threshold)
    {
        PQ4FastScan.ScanBlock(block, lut, m, ushort.MaxValue, out32);
        float* factors = (float*)(block + codeBytes);
        uint mask = 0;
        if (Avx512F.IsSupported)
            mask = Keys16(out32, factors, keys32, bias, tableBias, inv, bound, rounding, l2, threshold)
                | Keys16(out32 + 16, factors + 48, keys32 + 16, bias, tableBias, inv, bound, rounding, l2, threshold) << 16;
        else if (Avx2.IsSupported)
            mask = Keys8(out32, factors, keys32, bias, tableBias, inv, bound, rounding, l2, threshold)
                | Keys8(out32 + 8, factors + 24, keys32 + 8, bias, tableBias, inv, bound, rounding, l2, threshold) << 8
                | Keys8(out32 + 16, factors + 48, keys32 + 16, bias, tableBias, inv, bound, rounding, l2, threshold) << 16
                | Keys8(out32 + 24, factors + 72, keys32 + 24, bias, tableBias, inv, bound, rounding, l2, threshold) << 24;
        else
            for (int i = 0; i < 32; i++)
            {
                keys32[i] = Key(out32[i], factors[3 * i], factors[3 * i + 1], factors[3 * i + 2], bias, tableBias, inv, bound, rounding, l2);
                if (keys32[i] <= threshold) mask |= 1u << i;
            }
        return valid >= 32 ? mask : mask & ((1u << valid) - 1);
    }

    /// <summary>
    /// <see cref="Key"/> of 16 rows (sums at <paramref name="out16"/>, factors (add, f, err) interleaved at
    /// <paramref name="factors"/>) into <paramref name="keys16"/> with the same operations in the same order (no fused
    /// multiply-add, so the keys are bit-identical); returns the mask of keys ≤ <paramref name="threshold"/>. AVX-512 only.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe uint Keys16(ushort* out16, float* factors, float* keys16, float bias, float tableBias, float inv,
        float bound, float rounding, bool l2, float threshold)
    {
        var v0 = Vector512.Load(factors);
        var v1 = Vector512.Load(factors + 16);
        var v2 = Vector512.Load(factors + 32);
        var add = Deinterleave(v0, v1, v2, 0);
        var f = Deinterleave(v0, v1, v2, 1);
        var err = Deinterleave(v0, v1, v2, 2);
        var sums = Vector512.ConvertToSingle(Avx512F.ConvertToVector512Int32(Vector256.Load(out16)));
        var ip = f * (Vector512.Create(tableBias) + sums * Vector512.Create(inv));
        var vb = Vector512.Create(bias);
        var x = l2 ? vb + add - Vector512.Create(2f) * ip : vb - add - ip;
        var key = x - Vector512.Create(bound) * err - Vector512.Create(rounding) * Vector512.Abs(f);
        key.Store(keys16);
        return (uint)Vector512.LessThanOrEqual(key, Vector512.Create(threshold)).ExtractMostSignificantBits();
    }

    /// <summary>
    /// <see cref="Keys16"/> for 8 rows at 256 bits (AVX2): the same operations in the same order, bit-identical keys.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe uint Keys8(ushort* out8, float* factors, float* keys8, float bias, float tableBias, float inv,
        float bound, float rounding, bool l2, float threshold)
    {
        var v0 = Vector256.Load(factors);
        var v1 = Vector256.Load(factors + 8);
        var v2 = Vector256.Load(factors + 16);
        var add = Deinterleave(v0, v1, v2, 0);
        var f = Deinterleave(v0, v1, v2, 1);
        var err = Deinterleave(v0, v1, v2, 2);
        var sums = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Vector128.Load(out8)));
        var ip = f * (Vector256.Create(tableBias) + sums * Vector256.Create(inv));
        var vb = Vector256.Create(bias);
        var x = l2 ? vb + add - Vector256.Create(2f) * ip : vb - add - ip;
        var key = x - Vector256.Create(bound) * err - Vector256.Create(rounding) * Vector256.Abs(f);
        key.Store(keys8);
        return Vector256.LessThanOrEqual(key, Vector256.Create(threshold)).ExtractMostSignificantBits();
    }

    // Lanes r, r + 3, …, r + 21 of the 24 floats v0 | v1 | v2: each source permuted so that lane i holds its element
    // (3i + r) mod 8, then lane i taken from the source that holds element 3i + r (blends by a constant mask).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Deinterleave(Vector256<float> v0, Vector256<float> v1, Vector256<float> v2, int r)
    {
        var index = Vector256.Create(r, r + 3, r + 6, r + 9, r + 12, r + 15, r + 18, r + 21);
        var within = index & Vector256.Create(7);
        var source = Vector256.ShiftRightLogical(index, 3); // 0, 1 or 2
        var a = Avx2.PermuteVar8x32(v0, within);
        var b = Avx2.PermuteVar8x32(v1, within);
        var c = Avx2.PermuteVar8x32(v2, within);
        var ab = Vector256.ConditionalSelect(Vector256.Equals(source, Vector256<int>.One).AsSingle(), b, a);
        return Vector256.ConditionalSelect(Vector256.Equals(source, Vector256.Create(2)).AsSingle(), c, ab);
    }

    // Lanes r, r + 3, …, r + 45 of the 48 floats v0 | v1 | v2: two two-source permutes (those below 32 from v0 | v1,
    // then the rest from v2).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Deinterleave(Vector512<float> v0,
        Vector512<float> v1, Vector512<float> v2, int r)
    {
        var first = Vector512.Create(r, r + 3, r + 6, r + 9, r + 12, r + 15, r + 18, r + 21, r + 24, r + 27, r + 30, r + 33, r + 36, r + 39, r + 42, r + 45);
        var t = Avx512F.PermuteVar16x32x2(v0, first & Vector512.Create(31), v1); // lanes with source < 32 are right
        // Second pass: keep t's lane where the source was < 32, else take v2's lane (source − 32) (index 16 + that).
        var fromV2 = Vector512.GreaterThanOrEqual(first, Vector512.Create(32));
        var second = Vector512.ConditionalSelect(fromV2, first - Vector512.Create(16), Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
        return Avx512F.PermuteVar16x32x2(t, second, v2);
    }
}
