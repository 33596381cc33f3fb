using System.Numerics;
using System.Runtime.CompilerServices;
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
    private readonly RaBitQFastScanTables _tables;
    private readonly ushort[] _out32 = new ushort[32];
    private readonly float[] _keys32 = new float[32];

    public RaBitQFastScanListScanner(RaBitQFastScanCodec codec, ICoarseQuantizer quantizer, bool hasRefine)
        : base(codec.Codec, quantizer, hasRefine)
    {
        _layout = codec.Layout;
        _tables = new RaBitQFastScanTables(codec);
    }

    public override void SetQuery(ReadOnlySpan<float> query)
    {
        _tables.Set(query);
        SetQueryNorm(query);
    }

    public override void ScanCodes(InvertedList list, int probe, ref TopKHeap heap, in ListFilter filter) =>
        Scan(list, probe, ref heap, filter);

    protected override unsafe void Scan<TSink>(InvertedList list, int probe, ref TSink heap, in ListFilter filter)
    {
        int m = _layout.M, blockBytes = _layout.BlockBytes, codeBytes = _layout.CodeBlockBytes, count = list.Count;
        float bias = Bias, tableBias = _tables.TableBias, inv = _tables.Inv, bound = BoundScale;
        float rounding = RoundingBound;
        bool l2 = L2;
        RecordProbe(probe);
        int blocks = (count + 31) >> 5;
        fixed (byte* codes = list.Codes)
        fixed (byte* qlut = _tables.Lut)
        fixed (ushort* out32 = _out32)
        fixed (float* keys = _keys32)
        {
            for (int b = 0; b < blocks; b++)
            {
                // Keys of the block's rows and the mask of those at or below the threshold as it stands; each is
                // checked again against the threshold as the heap tightens.
                uint mask = RaBitQFastScanTables.BlockKeys(codes + (long)b * blockBytes, qlut, m, codeBytes, count - b * 32, out32, keys,
                    bias, tableBias, inv, bound, rounding, l2, heap.Threshold);
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
            }
        }
    }

    /// <summary>
    /// The upper bound of row <paramref name="row"/> of <paramref name="list"/> (of the list last set) whose key, the
    /// lower bound a scan offered, is <paramref name="lowerKey"/>: the estimate plus the same error and rounding bounds
    /// (the true key lies between the two at the bound's confidence). A caller that keeps the k-th smallest upper bound
    /// among the candidates it accepted may use it as a second threshold (SPANN does): an entry whose lower bound exceeds
    /// it cannot be among the k nearest at the confidence the re-ranking stops by. IVF does not use it. Only meaningful
    /// with error bounds (a refine store: <see cref="IvfListScanner.HasErrorBounds"/>); without them it is the key.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The row is not in the list.</exception>
    public float UpperKey(InvertedList list, int row, float lowerKey)
    {
        if ((uint)row >= (uint)list.Count) throw new ArgumentOutOfRangeException(nameof(row), row, $"The list holds {list.Count} rows.");
        var (f, err) = Factors(list, row);
        return lowerKey + 2 * (BoundScale * err + RoundingBound * MathF.Abs(f));
    }

    // Device rows: the M 4-bit sub-codes of a block slot, one per byte, and the slot's factors; the table is the CPU's
    // quantised byte table (as floats) with its offset and unit, so a row's key is the CPU's, bit for bit where the
    // device evaluates it in the same order (ILGPU's CPU accelerator does).
    public override int DeviceCodeBytes => _layout.M;

    public override void WriteRows(InvertedList list, Span<byte> codes, Span<float> factors)
    {
        int m = _layout.M, count = list.Count;
        for (int r = 0; r < count; r++)
        {
            var block = list.Codes.Slice((r >> 5) * _layout.BlockBytes, _layout.BlockBytes);
            PQ4FastScan.GetCode(block[.._layout.CodeBlockBytes], m, r & 31, codes.Slice(r * m, m));
            var f = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(block[_layout.CodeBlockBytes..]).Slice(3 * (r & 31), 3);
            DeviceFactors(f[0], f[1], f[2], factors.Slice(r * 3, 3));
        }
    }

    public override void WriteTable(Span<float> table)
    {
        var lut = _tables.Lut;
        for (int s = 0; s < _layout.M; s++)
        {
            int g = s >> 2, r = s & 3, off = g * 128 + (r & 1) * 64 + (r >> 1) * 32; // PQ4FastScan.QuantizeLut's layout
            var row = table.Slice(s * 256, 256);
            for (int v = 0; v < 16; v++) row[v] = lut[off + v];
            row[16..].Clear();
        }
    }

    protected override (float Bias, float Scale) DeviceTableUnit => (_tables.TableBias, _tables.Inv);

    protected override float RoundingBound => HasErrorBounds ? Epsilon * _tables.RoundingSd * (L2 ? 2 : 1) : 0;

    protected override unsafe (float F, float Err) Factors(InvertedList list, int row)
    {
        fixed (byte* codes = list.Codes)
        {
            float* factors = (float*)(codes + (long)(row >> 5) * _layout.BlockBytes + _layout.CodeBlockBytes) + 3 * (row & 31);
            return (factors[1], factors[2]);
        }
    }
}
