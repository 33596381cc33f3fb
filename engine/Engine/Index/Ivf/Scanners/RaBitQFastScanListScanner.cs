using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Distance;
using Engine.Index.Lists;
using Engine.Quantization;

namespace Engine.Index.Ivf;

/// <summary>
/// RaBitQ codes in fast-scan blocks (<c>RaBitQfs1</c>, <c>RaBitQfs4</c>): the rotated query's 16-entry table per 4-bit
/// sub-code is built and quantised to bytes once per query (it does not depend on the list), <see cref="PQ4FastScan.ScanBlock"/>
/// sums 32 codes at a time, and each sum becomes ⟨P q, y⟩ ≈ bias + sum / scale, then the key as in
/// <see cref="RaBitQListScanner"/>. With a refine store the byte rounding of the table is added to the bound (ε₀
/// standard deviations of the rounding sum, √(M/12) / scale).
/// </summary>
internal sealed class RaBitQFastScanListScanner : RaBitQScannerBase
{
    private readonly RaBitQFastScanLayout _layout;
    private readonly float[] _rotated, _table;
    private readonly byte[] _qlut;
    private readonly ushort[] _out32 = new ushort[32];
    private readonly float[] _keys32 = new float[32];
    private float _tableBias, _inv, _roundingSd;

    public RaBitQFastScanListScanner(RaBitQFastScanCodec codec, ICoarseQuantizer quantizer, bool hasRefine)
        : base(codec.Codec, quantizer, hasRefine)
    {
        _layout = codec.Layout;
        _rotated = new float[_layout.M * 4];
        _table = new float[_layout.M * 16];
        _qlut = GC.AllocateArray<byte>(PQ4FastScan.LutBytes(_layout.M) + 64, pinned: true);
    }

    public override void SetQuery(ReadOnlySpan<float> query)
    {
        int d = Codec.Dimension, m = _layout.M;
        var r = _rotated.AsSpan(0, d);
        query.CopyTo(r);
        Codec.Rotation!.Forward(r);
        float sum = System.Numerics.Tensors.TensorPrimitives.Sum(r);
        if (Codec.Bits == 1)
        {
            _rotated.AsSpan(d).Clear(); // padding dimensions of the last 4-dimension group count zero
            for (int s = 0; s < m; s++)
            {
                var t = _table.AsSpan(s * 16, 16);
                t[0] = 0;
                for (int v = 1; v < 16; v++) t[v] = t[v & (v - 1)] + _rotated[s * 4 + BitOperations.TrailingZeroCount(v)];
            }
        }
        else
            for (int s = 0; s < m; s++)
                for (int v = 0; v < 16; v++) _table[s * 16 + v] = _rotated[s] * v;
        float scale = PQ4FastScan.QuantizeLut(_table, m, _qlut, out float lutBias);
        _inv = 1f / scale;
        _tableBias = lutBias - Codec.Offset * sum;
        _roundingSd = MathF.Sqrt(m / 12f) * _inv;
        SetQueryNorm(query);
    }

    public override void ScanCodes(InvertedList list, int probe, ref TopKHeap heap, in ListFilter filter) =>
        Scan(list, probe, ref heap, filter);

    protected override unsafe void Scan<TSink>(InvertedList list, int probe, ref TSink heap, in ListFilter filter)
    {
        int m = _layout.M, blockBytes = _layout.BlockBytes, codeBytes = _layout.CodeBlockBytes, count = list.Count;
        float bias = Bias, tableBias = _tableBias, inv = _inv, bound = BoundScale;
        float rounding = RoundingBound;
        bool l2 = L2, simd = Avx512F.IsSupported;
        RecordProbe(probe);
        int blocks = (count + 31) >> 5;
        fixed (byte* codes = list.Codes)
        fixed (byte* qlut = _qlut)
        fixed (ushort* out32 = _out32)
        fixed (float* keys = _keys32)
        {
            for (int b = 0; b < blocks; b++)
            {
                byte* block = codes + (long)b * blockBytes;
                PQ4FastScan.ScanBlock(block, qlut, m, ushort.MaxValue, out32);
                float* factors = (float*)(block + codeBytes);
                int valid = Math.Min(32, count - b * 32);
                if (simd)
                {
                    // 16 keys per step with the scalar loop's operations in its order (no fused multiply-add), so
                    // the keys are bit-identical; only keys at or below the threshold reach the scalar loop below.
                    uint mask = 0;
                    for (int h = 0; h < 2; h++)
                        mask |= Keys16(out32 + 16 * h, factors + 48 * h, keys + 16 * h, bias, tableBias, inv, bound, rounding, l2, heap.Threshold) << (16 * h);
                    if (valid < 32) mask &= (1u << valid) - 1;
                    while (mask != 0)
                    {
                        int i = BitOperations.TrailingZeroCount(mask);
                        mask &= mask - 1;
                        float key = keys[i];
                        if (key > heap.Threshold) continue;
                        int off = b * 32 + i;
                        if (filter.Active && !filter.Allows(list, off)) continue;
                        heap.Push(key, Label(probe, off));
                    }
                    continue;
                }
                for (int i = 0; i < valid; i++)
                {
                    float add = factors[3 * i], f = factors[3 * i + 1], err = factors[3 * i + 2];
                    float ip = f * (tableBias + out32[i] * inv);
                    float key = (l2 ? bias + add - 2 * ip : bias - add - ip) - bound * err - rounding * MathF.Abs(f);
                    if (key > heap.Threshold) continue;
                    int off = b * 32 + i;
                    if (filter.Active && !filter.Allows(list, off)) continue;
                    heap.Push(key, Label(probe, off));
                }
            }
        }
    }

    protected override float RoundingBound => HasErrorBounds ? Epsilon * _roundingSd * (L2 ? 2 : 1) : 0;

    protected override unsafe (float F, float Err) Factors(InvertedList list, int row)
    {
        fixed (byte* codes = list.Codes)
        {
            float* factors = (float*)(codes + (long)(row >> 5) * _layout.BlockBytes + _layout.CodeBlockBytes) + 3 * (row & 31);
            return (factors[1], factors[2]);
        }
    }

    // Keys of 16 vectors (sums at out16, factors (add, f, err) interleaved at factors) into keys16; returns the mask of
    // keys ≤ threshold. Same operations and order as the scalar loop.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe uint Keys16(ushort* out16, float* factors, float* keys16, float bias, float tableBias, float inv,
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

    // Lanes r, r + 3, …, r + 45 of the 48 floats v0 | v1 | v2: two two-source permutes (those below 32 from v0 | v1,
    // then the rest from v2).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Deinterleave(Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, int r)
    {
        var first = Vector512.Create(r, r + 3, r + 6, r + 9, r + 12, r + 15, r + 18, r + 21, r + 24, r + 27, r + 30, r + 33, r + 36, r + 39, r + 42, r + 45);
        var t = Avx512F.PermuteVar16x32x2(v0, first & Vector512.Create(31), v1); // lanes with source < 32 are right
        // Second pass: keep t's lane where the source was < 32, else take v2's lane (source − 32) (index 16 + that).
        var fromV2 = Vector512.GreaterThanOrEqual(first, Vector512.Create(32));
        var second = Vector512.ConditionalSelect(fromV2, first - Vector512.Create(16), Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
        return Avx512F.PermuteVar16x32x2(t, second, v2);
    }
}
