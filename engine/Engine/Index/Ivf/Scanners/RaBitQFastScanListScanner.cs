using System.Numerics;
using Engine.Distance;
using Engine.Index.Lists;
using Engine.Quantization;

namespace Engine.Index.Ivf;

/// <summary>
/// RaBitQ codes in fast-scan blocks (<c>RaBitQfs1</c>, <c>RaBitQfs4</c>): the rotated query's 16-entry table per 4-bit
/// sub-code is built and quantised to bytes once per query (it does not depend on the list), <see cref="PQ4FastScan.ScanBlock"/>
/// sums 32 codes at a time, and each sum becomes ⟨P q, y⟩ ≈ bias + sum / scale, then the key as in
/// <see cref="RaBitQListScanner"/>. With a refine store the keys are lower bounds; the byte rounding of the table is
/// added to the bound (ε₀ standard deviations of the rounding sum, √(M/12) / scale).
/// </summary>
internal sealed class RaBitQFastScanListScanner : RaBitQScannerBase
{
    private readonly RaBitQFastScanLayout _layout;
    private readonly float[] _rotated, _table;
    private readonly byte[] _qlut;
    private readonly ushort[] _out32 = new ushort[32];
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

    public override unsafe void ScanCodes(InvertedList list, int probe, ref TopKHeap heap, in ListFilter filter)
    {
        int m = _layout.M, blockBytes = _layout.BlockBytes, codeBytes = _layout.CodeBlockBytes, count = list.Count;
        float bias = Bias, tableBias = _tableBias, inv = _inv, bound = BoundScale;
        float rounding = KeysAreLowerBounds ? Epsilon * _roundingSd * (L2 ? 2 : 1) : 0;
        bool l2 = L2;
        int blocks = (count + 31) >> 5;
        fixed (byte* codes = list.Codes)
        fixed (byte* qlut = _qlut)
        fixed (ushort* out32 = _out32)
        {
            for (int b = 0; b < blocks; b++)
            {
                byte* block = codes + (long)b * blockBytes;
                PQ4FastScan.ScanBlock(block, qlut, m, ushort.MaxValue, out32);
                float* factors = (float*)(block + codeBytes);
                int valid = Math.Min(32, count - b * 32);
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
}
