using System.Numerics;
using Engine.Distance;
using Engine.Index.Lists;
using Engine.Quantization;

namespace Engine.Index.Ivf;

/// <summary>
/// PQ lists scanned with float ADC tables. Residual codes (<see cref="ResidualTables"/> given): the query table
/// (term 3: −2⟨q_m, c_mj⟩ for L2, −⟨q_m, c_mj⟩ for inner product) is built once per query and, for L2, each list adds
/// its term-2 row; the list's coarse key is the bias. Raw codes (no tables): one table of the
/// whole distance (‖q_m − c_mj‖² for L2, −⟨q_m, c_mj⟩ for inner product) serves every list, with no bias
/// (<c>…nr</c> specs).
/// </summary>
internal abstract class PQTableScanner : IvfListScanner
{
    private readonly float[] _term3, _lut, _term2;
    private readonly bool _l2;

    protected PQTableScanner(ProductQuantizer pq, ResidualTables? tables, Metric metric)
    {
        Pq = pq;
        Tables = tables;
        _l2 = metric == Metric.L2;
        int per = pq.M * pq.Ksub;
        _term3 = new float[per];
        _lut = tables is null ? [] : new float[per];
        _term2 = tables is null ? [] : new float[per];
        Table = _term3;
    }

    protected ProductQuantizer Pq { get; }

    /// <summary>Term-2 tables of residual codes; null for raw codes.</summary>
    protected ResidualTables? Tables { get; }

    /// <summary>True when the codes are residuals, so every list has its own bias (and, for L2, its own table).</summary>
    protected bool PerListTables => Tables is not null;

    /// <summary>
    /// True when the float table itself changes from list to list (residual L2: term 2 depends on the list). Residual
    /// inner product keeps one table per query and only the bias (the coarse key) changes.
    /// </summary>
    protected bool TableVariesPerList => Tables is not null && _l2;

    /// <summary>The float table of the current list (M × Ksub).</summary>
    protected float[] Table { get; private set; }

    /// <summary>The coarse key of the current list (0 for raw codes: their table holds the whole distance).</summary>
    protected float CoarseKey { get; private set; }

    public override void SetQuery(ReadOnlySpan<float> query)
    {
        var t = _term3.AsSpan();
        if (Tables is null && _l2) { Pq.L2Table(query, t); return; }
        Pq.InnerProductTable(query, t);
        System.Numerics.Tensors.TensorPrimitives.Multiply(t, _l2 ? -2f : -1f, t);
    }

    public override void SetList(int list, float coarseKey)
    {
        if (Tables is null) return; // raw codes: one table and no bias for every list
        CoarseKey = coarseKey;
        if (!_l2) { Table = _term3; return; }
        ReadOnlySpan<float> t2 = Tables.Term2Row(list, _term2);
        System.Numerics.Tensors.TensorPrimitives.Add(_term3, t2, _lut);
        Table = _lut;
    }

    /// <summary>Float ADC key of one unpacked code.</summary>
    protected float Adc(ReadOnlySpan<byte> code)
    {
        var lut = Table;
        int ksub = Pq.Ksub;
        float key = CoarseKey;
        for (int j = 0; j < Pq.M; j++) key += lut[j * ksub + code[j]];
        return key;
    }
}

/// <summary>PQ lists with one byte per sub-code (<c>PQ{m}</c>, <c>PQ{m}x4</c>).</summary>
internal sealed class PQListScanner(ProductQuantizer pq, ResidualTables? tables, Metric metric) : PQTableScanner(pq, tables, metric)
{
    public override int CandidatesFor(int k, int candidates, bool hasRefine) => hasRefine ? candidates : k;

    public override void ScanCodes(InvertedList list, int probe, ref TopKHeap heap, in ListFilter filter) =>
        Scan(list, probe, ref heap, filter);

    protected override void Scan<TSink>(InvertedList list, int probe, ref TSink heap, in ListFilter filter)
    {
        int m = Pq.M, ksub = Pq.Ksub;
        ReadOnlySpan<float> lut = Table;
        float bias = CoarseKey;
        int count = list.Count;
        var codes = list.Codes.Slice(0, count * m);
        for (int off = 0; off < count; off++)
        {
            var code = codes.Slice(off * m, m);
            float key = bias;
            for (int j = 0; j < m; j++) key += lut[j * ksub + code[j]];
            if (key > heap.Threshold || (filter.Active && !filter.Allows(list, off))) continue;
            heap.Push(key, Label(probe, off));
        }
    }
}

/// <summary>
/// 4-bit PQ in fast-scan blocks (<c>PQ{m}x4fs[nr]</c>): the table is quantised to uint8 (per list for residual L2
/// codes, once per query for raw codes and residual inner product) and 32 codes at a time are
/// scored by <see cref="PQ4FastScan.ScanBlock"/> against a 16-bit threshold; survivors get their float key (from the
/// quantised sum, or the exact float ADC when there is no refine store). With a refine store the candidates
/// (k × refine factor of them) gather in a <see cref="CandidateReservoir"/> across the query's lists, drained into the
/// heap by <see cref="Drain"/>: an append per survivor instead of a heap sift, the same candidates.
/// </summary>
internal sealed class FastScanListScanner : PQTableScanner
{
    private readonly byte[] _qlut;
    private readonly ushort[] _out32 = new ushort[32];
    private readonly byte[] _code;
    private readonly bool _exactAdc;
    private readonly int _blockBytes;
    private readonly CandidateReservoir? _reservoir;
    private bool _fresh;
    private float _bias, _scale, _inv, _lutBias;

    public FastScanListScanner(ProductQuantizer pq, ResidualTables? tables, Metric metric, bool hasRefine) : base(pq, tables, metric)
    {
        _qlut = GC.AllocateArray<byte>(PQ4FastScan.LutBytes(pq.M) + 64, pinned: true);
        _code = new byte[PQ4FastScan.PaddedM(pq.M)];
        _exactAdc = !hasRefine;
        _blockBytes = PQ4FastScan.BlockBytes(pq.M);
        // Without a refine store survivors get exact ADC keys the 16-bit pruning does not see, so the result depends
        // on when the threshold tightens: those keep the heap, whose threshold follows every push.
        _reservoir = hasRefine ? new CandidateReservoir() : null;
    }

    public override int CandidatesFor(int k, int candidates, bool hasRefine) => candidates;

    public override void SetQuery(ReadOnlySpan<float> query)
    {
        _fresh = true;
        base.SetQuery(query);
        // Raw codes and residual inner product: one quantised table serves every list of the query.
        if (!TableVariesPerList) Quantize(0);
    }

    public override void SetList(int list, float coarseKey)
    {
        if (!PerListTables) return;
        base.SetList(list, coarseKey);
        if (TableVariesPerList) Quantize(coarseKey);
        else _bias = coarseKey + _lutBias; // residual inner product: same quantised table, the list's own bias
    }

    private void Quantize(float coarseKey)
    {
        _scale = PQ4FastScan.QuantizeLut(Table, Pq.M, _qlut, out _lutBias);
        _bias = coarseKey + _lutBias;
        _inv = 1f / _scale;
    }

    public override void Drain(ref TopKHeap heap)
    {
        if (_reservoir is null || _fresh) return;
        _reservoir.Drain(ref heap);
        _fresh = true;
    }

    public override void ScanCodes(InvertedList list, int probe, ref TopKHeap heap, in ListFilter filter)
    {
        var reservoir = _reservoir;
        if (reservoir is not null && _fresh) { reservoir.Reset(heap.Capacity); _fresh = false; }
        ScanBlocks(list, probe, ref heap, filter, reservoir);
    }

    /// <summary>
    /// The sink-generic loop (range scans; the k-NN scan keeps <see cref="ScanCodes"/>, whose pruning and reservoir
    /// are tuned for a heap): the 16-bit sums prefilter the codes, then each survivor's key is compared with the sink's
    /// threshold. With a refine store the key is the dequantised sum (as the k-NN scan's candidates); without one it
    /// is the exact float ADC key, and the prefilter is widened by M quantisation steps (each table entry is rounded by
    /// at most one step) so no code whose float key is inside the threshold is cut by the rounding.
    /// </summary>
    protected override unsafe void Scan<TSink>(InvertedList list, int probe, ref TSink sink, in ListFilter filter)
    {
        int m = Pq.M, blockBytes = _blockBytes, count = list.Count;
        float bias = _bias, scale = _scale, inv = _inv, widen = _exactAdc ? m * inv : 0;
        bool exactAdc = _exactAdc;
        float threshold = sink.Threshold;
        ushort thr = Threshold16(threshold + widen, bias, scale);
        if (thr == 0 && threshold + widen < bias) return;
        int blocks = (count + 31) >> 5;
        var listCodes = list.Codes;
        fixed (byte* codes = listCodes)
        fixed (byte* qlut = _qlut)
        fixed (ushort* out32 = _out32)
        {
            for (int b = 0; b < blocks; b++)
            {
                uint mask = BlockMask(codes + (long)b * blockBytes, qlut, m, thr, out32, count - b * 32);
                while (mask != 0)
                {
                    int i = BitOperations.TrailingZeroCount(mask);
                    mask &= mask - 1;
                    int off = b * 32 + i;
                    float key = bias + out32[i] * inv;
                    if (exactAdc)
                    {
                        PQ4FastScan.GetCode(listCodes, m, off, _code);
                        key = Adc(_code);
                    }
                    if (key > threshold || (filter.Active && !filter.Allows(list, off))) continue;
                    sink.Push(key, Label(probe, off));
                    threshold = sink.Threshold;
                    thr = Threshold16(threshold + widen, bias, scale);
                }
            }
        }
    }

    /// <summary>
    /// True when <see cref="ScanCodesPair"/> can scan this scanner's next list together with another query's: survivors
    /// go to a block-appending reservoir (a refine store, AVX2 or AVX-512) and no row filter is active.
    /// </summary>
    public bool CanPair(in ListFilter filter) => _reservoir is { TakesBlocks: true } && !filter.Active;

    /// <summary>
    /// <see cref="ScanCodes"/> of one list for this scanner's query and <paramref name="other"/>'s (both set on the
    /// list, both <see cref="CanPair"/>): each block's codes are read once for both queries
    /// (<see cref="PQ4FastScan.ScanBlockPair"/>); each query keeps its own tables, threshold and reservoir, so the
    /// candidates equal two separate scans'.
    /// </summary>
    public unsafe void ScanCodesPair(InvertedList list, int probe, ref TopKHeap heap, FastScanListScanner other, int otherProbe, ref TopKHeap otherHeap)
    {
        var ra = _reservoir!;
        var rb = other._reservoir!;
        if (_fresh) { ra.Reset(heap.Capacity); _fresh = false; }
        if (other._fresh) { rb.Reset(otherHeap.Capacity); other._fresh = false; }
        float biasA = _bias, scaleA = _scale, invA = _inv, biasB = other._bias, scaleB = other._scale, invB = other._inv;
        ushort thrA = Threshold16(ra.Threshold, biasA, scaleA), thrB = Threshold16(rb.Threshold, biasB, scaleB);
        // a query none of whose codes here can enter its candidates scans nothing; the other scans alone
        bool doneA = thrA == 0 && ra.Threshold < biasA, doneB = thrB == 0 && rb.Threshold < biasB;
        if (doneA || doneB)
        {
            if (!doneA) ScanBlocks(list, probe, ref heap, default, ra);
            if (!doneB) other.ScanBlocks(list, otherProbe, ref otherHeap, default, rb);
            return;
        }
        int m = Pq.M, blockBytes = _blockBytes, count = list.Count, blocks = (count + 31) >> 5;
        fixed (byte* codes = list.Codes)
        fixed (byte* lutA = _qlut, lutB = other._qlut)
        fixed (ushort* outA = _out32, outB = other._out32)
        {
            for (int b = 0; b < blocks; b++)
            {
                uint maskA = PQ4FastScan.ScanBlockPair(codes + (long)b * blockBytes, lutA, lutB, m, thrA, thrB, outA, outB, out uint maskB);
                int valid = count - b * 32;
                if (valid < 32)
                {
                    maskA &= (1u << valid) - 1;
                    maskB &= (1u << valid) - 1;
                }
                if (maskA != 0 && ra.AddBlock(outA, maskA, biasA, invA, Label(probe, b * 32)))
                    thrA = Threshold16(ra.Threshold, biasA, scaleA);
                if (maskB != 0 && rb.AddBlock(outB, maskB, biasB, invB, Label(otherProbe, b * 32)))
                    thrB = Threshold16(rb.Threshold, biasB, scaleB);
            }
        }
    }

    // Survivors go to the reservoir when there is one (refine store), else to the heap (exact ADC keys without one).
    private unsafe void ScanBlocks(InvertedList list, int probe, ref TopKHeap heap, in ListFilter filter, CandidateReservoir? reservoir)
    {
        int m = Pq.M, blockBytes = _blockBytes, count = list.Count;
        float bias = _bias, scale = _scale, inv = _inv;
        bool exactAdc = _exactAdc;
        int blocks = (count + 31) >> 5;
        var listCodes = list.Codes;
        fixed (byte* codes = listCodes)
        fixed (byte* qlut = _qlut)
        fixed (ushort* out32 = _out32)
        {
            float threshold = reservoir?.Threshold ?? heap.Threshold;
            ushort thr = Threshold16(threshold, bias, scale);
            if (thr == 0 && threshold < bias) return;
            if (reservoir is not null && reservoir.TakesBlocks && !filter.Active)
            {
                // every survivor of a block appended at once (compress-stores), no branch per survivor
                for (int b = 0; b < blocks; b++)
                {
                    uint mask = BlockMask(codes + (long)b * blockBytes, qlut, m, thr, out32, count - b * 32);
                    if (mask != 0 && reservoir.AddBlock(out32, mask, bias, inv, Label(probe, b * 32)))
                        thr = Threshold16(reservoir.Threshold, bias, scale);
                }
                return;
            }
            for (int b = 0; b < blocks; b++)
            {
                uint mask = BlockMask(codes + (long)b * blockBytes, qlut, m, thr, out32, count - b * 32);
                while (mask != 0)
                {
                    int i = BitOperations.TrailingZeroCount(mask);
                    mask &= mask - 1;
                    float key = bias + out32[i] * inv;
                    if (key > threshold) continue;
                    int off = b * 32 + i;
                    if (filter.Active && !filter.Allows(list, off)) continue;
                    if (reservoir is not null)
                    {
                        if (!reservoir.Add(key, Label(probe, off))) continue;
                        threshold = reservoir.Threshold; // the buffer was cut: the threshold tightened
                    }
                    else
                    {
                        // Without a refine store the float table gives the final distance (undoing the uint8 rounding).
                        if (exactAdc)
                        {
                            PQ4FastScan.GetCode(listCodes, m, off, _code);
                            key = Adc(_code);
                        }
                        heap.Push(key, Label(probe, off));
                        threshold = heap.Threshold;
                    }
                    thr = Threshold16(threshold, bias, scale);
                }
            }
        }
    }

    // Scores one block of 32 codes into out32; the mask of those at or below thr among the block's valid rows.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static unsafe uint BlockMask(byte* block, byte* qlut, int m, ushort thr, ushort* out32, int valid)
    {
        uint mask = PQ4FastScan.ScanBlock(block, qlut, m, thr, out32);
        return valid < 32 ? mask & ((1u << valid) - 1) : mask;
    }

    // The largest quantised value whose dequantised distance can still enter the heap.
    private static ushort Threshold16(float threshold, float bias, float scale)
    {
        if (float.IsPositiveInfinity(threshold)) return ushort.MaxValue;
        float t = (threshold - bias) * scale;
        if (t < 0) return 0;
        return t >= ushort.MaxValue ? ushort.MaxValue : (ushort)t;
    }
}
