using Engine.Distance;
using Engine.Index.Lists;
using Engine.Quantization;

namespace Engine.Index.Ivf;

/// <summary>
/// What the RaBitQ scanners share: each list contributes only its coarse key (‖q − c‖², or −⟨q, c⟩; the codes
/// carry ⟨P c, y⟩ in their additive term) and ‖q − c‖ for the error bound. Without a refine store the keys are the
/// unbiased estimates. With one, candidates are chosen by an optimistic key, estimate − 1.9 × bound (a fixed
/// selection confidence, <see cref="SelectionEpsilon"/>), and the refine stage reads them in order of their lower
/// bound at the caller's ε₀ (<see cref="LowerBound"/>) and stops at the first one that cannot beat its k-th exact
/// distance (<see cref="IvfListScanner.HasErrorBounds"/>). The candidate set does not depend on ε₀, so a wider ε₀
/// only re-scores more of the same candidates: recall never falls as ε₀ grows. (Choosing by the ε₀ bound itself had
/// picked candidates by the size of their error at wide bounds: recall fell from 0.87 at ε₀ 1.9 to 0.49 at 6 on
/// random 32-d data. Choosing by the plain estimate lost 0.03–0.06 recall@10 on 1-bit codes at d = 32 against the
/// optimistic key: a candidate with a wide error is more likely to be a true neighbour than its estimate says.)
/// <para>As a device scanner (<see cref="IDeviceKeyScanner"/>) a row carries (add', rescale', err) with
/// add' = add, rescale' = −2f for L2 and add' = −add, rescale' = −f for inner product, the query's table gives
/// ⟨P q, y⟩ / (TableBias + S × TableScale), and the probe terms carry the coarse key, the bound scale and (fast-scan)
/// the rounding bound per unit of |rescale'|: the CPU key, term by term.</para>
/// </summary>
internal abstract class RaBitQScannerBase : IvfListScanner, IDeviceKeyScanner
{
    private readonly ICoarseQuantizer _quantizer;
    private readonly bool _lowerBounds;

    protected RaBitQScannerBase(RaBitQCodec codec, ICoarseQuantizer quantizer, bool hasRefine)
    {
        Codec = codec;
        _quantizer = quantizer;
        L2 = codec.Metric == Metric.L2;
        _lowerBounds = hasRefine;
    }

    protected RaBitQCodec Codec { get; }

    /// <summary>True for L2 codes (keys ‖q − c‖² + add − 2 ip), false for inner product (−⟨q, c⟩ − add − ip).</summary>
    protected bool L2 { get; }

    /// <summary>The confidence of the optimistic selection key (the default ε₀), whatever ε₀ the caller gives.</summary>
    protected const float SelectionEpsilon = RaBitQCodec.DefaultEpsilon;

    /// <summary>The confidence of the selection key's bound (<see cref="SelectionEpsilon"/>).</summary>
    protected static float Epsilon => SelectionEpsilon;

    /// <summary>‖q‖² of the current query (set by <see cref="SetQueryNorm"/>).</summary>
    private float _queryNorm2;

    /// <summary>The current list's coarse key.</summary>
    protected float Bias { get; private set; }

    /// <summary>What a code's error factor e is multiplied by to give its key's bound (0 without refine).</summary>
    protected float BoundScale { get; private set; }

    // BoundScale of each probed list of the current query, by probe (read back by LowerBound after the last list).
    private float[] _probeScale = new float[64];

    /// <summary>Records the current list's <see cref="BoundScale"/> as that of probe <paramref name="probe"/>.</summary>
    protected void RecordProbe(int probe)
    {
        if (!_lowerBounds) return;
        if (probe >= _probeScale.Length) Array.Resize(ref _probeScale, Math.Max(probe + 1, 2 * _probeScale.Length));
        _probeScale[probe] = BoundScale;
    }

    /// <summary>The scale f and error factor e of row <paramref name="row"/> of <paramref name="list"/>.</summary>
    protected abstract (float F, float Err) Factors(InvertedList list, int row);

    /// <summary>What a key's bound holds per unit of |f| beyond the code's error (the fast-scan table's rounding; 0 for rows).</summary>
    protected virtual float RoundingBound => 0;

    /// <summary>
    /// The key's bound was taken at <see cref="SelectionEpsilon"/>; the lower bound at the caller's ε₀ moves it by
    /// (ε₀ / 1.9 − 1) bounds. At the default ε₀ the key is the lower bound.
    /// </summary>
    public sealed override bool BoundsShiftKeys => _lowerBounds && BoundEpsilon != SelectionEpsilon;

    public sealed override float LowerBound(float key, InvertedList list, int probe, int row)
    {
        float extra = BoundEpsilon / SelectionEpsilon - 1;
        if (extra == 0) return key;
        var (f, err) = Factors(list, row);
        return key - extra * (_probeScale[probe] * err + RoundingBound * MathF.Abs(f));
    }

    public sealed override bool HasErrorBounds => _lowerBounds;

    public sealed override int CandidatesFor(int k, int candidates, bool hasRefine) => hasRefine ? candidates : k;

    /// <summary>Records ‖q‖² (inner product needs it for ‖q − c‖).</summary>
    protected void SetQueryNorm(ReadOnlySpan<float> query) => _queryNorm2 = Distances.SquaredNorm(query);

    public abstract int DeviceCodeBytes { get; }

    public bool HasRowFactors => true;

    public bool TablePerList => false; // the table is the rotated query's; a list adds only its coarse key

    public abstract void WriteRows(InvertedList list, Span<byte> codes, Span<float> factors);

    public abstract void WriteTable(Span<float> table);

    /// <summary>The device table's offset and unit (⟨P q, y⟩ = bias + S × scale; 0 and 1 when the table holds it outright).</summary>
    protected virtual (float Bias, float Scale) DeviceTableUnit => (0, 1);

    public IvfProbeTerms ProbeTerms(int probe)
    {
        RecordProbe(probe);
        var (tableBias, tableScale) = DeviceTableUnit;
        // the rounding bound is per unit of |f|; |rescale'| is 2|f| for L2 (halving and doubling are exact)
        return new IvfProbeTerms(Bias, tableBias, tableScale, BoundScale, L2 ? RoundingBound / 2 : RoundingBound);
    }

    /// <summary>A row's device factors (add', rescale', err) from its code factors.</summary>
    protected void DeviceFactors(float add, float f, float err, Span<float> to)
    {
        to[0] = L2 ? add : -add;
        to[1] = L2 ? -2 * f : -f;
        to[2] = err;
    }

    public sealed override void SetList(int list, float coarseKey)
    {
        Bias = coarseKey;
        // ‖q − c‖: the L2 coarse key is its square; for inner product ‖q‖² + ‖c‖² − 2⟨q, c⟩ with −⟨q, c⟩ the key.
        float dist2 = L2 ? coarseKey : _queryNorm2 + Distances.SquaredNorm(_quantizer.Centroid(list)) + 2 * coarseKey;
        float bound = Epsilon * MathF.Sqrt(MathF.Max(0, dist2));
        BoundScale = _lowerBounds ? (L2 ? 2 * bound : bound) : 0;
    }
}

/// <summary>
/// Residual RaBitQ lists in rows (<c>RaBitQ</c>, <c>RaBitQ{b}</c>): the query is rotated and turned into a byte table
/// once per query (<see cref="RaBitQKernels.BuildLut"/>); each code costs B × ⌈d/8⌉ look-ups.
/// </summary>
internal sealed class RaBitQListScanner : RaBitQScannerBase
{
    private readonly float[] _rotated, _lut;
    private float _sum;

    public RaBitQListScanner(RaBitQCodec codec, ICoarseQuantizer quantizer, bool hasRefine)
        : base(codec, quantizer, hasRefine)
    {
        _rotated = new float[codec.Dimension];
        _lut = GC.AllocateArray<float>(RaBitQKernels.LutFloats(codec.Dimension), pinned: true);
    }

    public override void SetQuery(ReadOnlySpan<float> query)
    {
        query.CopyTo(_rotated);
        Codec.Rotation!.Forward(_rotated);
        RaBitQKernels.BuildLut(_rotated, _lut);
        _sum = System.Numerics.Tensors.TensorPrimitives.Sum(_rotated) * Codec.Offset;
        SetQueryNorm(query);
    }

    public override void ScanCodes(InvertedList list, int probe, ref TopKHeap heap, in ListFilter filter) =>
        Scan(list, probe, ref heap, filter);

    // Device rows: g = ⌊8 / B⌋ coordinates per sub-code byte (B = 1: the code's plane bytes; B = 4: two per byte; B ≥ 5:
    // one), coordinate t of a group in bits tB .. tB + B − 1; the table entry of a group's byte is
    // Σ_t (P q)_t × (v_t − (2^B − 1) / 2), so the table sum is ⟨P q, y⟩ itself.
    private int GroupDims => 8 / Codec.Bits;

    public override int DeviceCodeBytes => (Codec.Dimension + GroupDims - 1) / GroupDims;

    public override void WriteRows(InvertedList list, Span<byte> codes, Span<float> factors)
    {
        int cs = Codec.CodeSize, bits = Codec.Bits, d = Codec.Dimension, g = GroupDims, m = DeviceCodeBytes, count = list.Count;
        Span<byte> values = d <= 4096 ? stackalloc byte[d] : new byte[d];
        for (int r = 0; r < count; r++)
        {
            var code = list.Codes.Slice(r * cs, cs);
            var (add, f, err) = RaBitQCodec.Factors(code);
            DeviceFactors(add, f, err, factors.Slice(r * 3, 3));
            RaBitQKernels.Unpack(code[RaBitQCodec.FactorBytes..], bits, values);
            var row = codes.Slice(r * m, m);
            for (int j = 0; j < m; j++)
            {
                int c = 0;
                for (int t = 0; t < g && j * g + t < d; t++) c |= values[j * g + t] << (t * bits);
                row[j] = (byte)c;
            }
        }
    }

    public override void WriteTable(Span<float> table)
    {
        int bits = Codec.Bits, d = Codec.Dimension, g = GroupDims, m = DeviceCodeBytes, entries = 1 << (g * bits), mask = (1 << bits) - 1;
        double offset = Codec.Offset;
        for (int j = 0; j < m; j++)
        {
            var row = table.Slice(j * 256, 256);
            for (int c = 0; c < entries; c++)
            {
                double s = 0;
                for (int t = 0; t < g && j * g + t < d; t++) s += _rotated[j * g + t] * (((c >> (t * bits)) & mask) - offset);
                row[c] = (float)s;
            }
            row[entries..].Clear();
        }
    }

    protected override unsafe void Scan<TSink>(InvertedList list, int probe, ref TSink heap, in ListFilter filter)
    {
        int cs = Codec.CodeSize, pb = Codec.PlaneBytes, bits = Codec.Bits, count = list.Count;
        float bias = Bias, sum = _sum, boundScale = BoundScale;
        bool l2 = L2;
        RecordProbe(probe);
        fixed (byte* codes = list.Codes)
        fixed (float* lut = _lut)
        {
            for (int off = 0; off < count; off++)
            {
                byte* code = codes + (long)off * cs;
                float* factors = (float*)code;
                float add = factors[0], f = factors[1], err = factors[2];
                float ip = f * (RaBitQKernels.PlaneDot(code + RaBitQCodec.FactorBytes, pb, bits, lut) - sum);
                float key = (l2 ? bias + add - 2 * ip : bias - add - ip) - boundScale * err;
                if (key > heap.Threshold || (filter.Active && !filter.Allows(list, off))) continue;
                heap.Push(key, Label(probe, off));
            }
        }
    }

    protected override unsafe (float F, float Err) Factors(InvertedList list, int row)
    {
        fixed (byte* codes = list.Codes)
        {
            float* factors = (float*)(codes + (long)row * Codec.CodeSize);
            return (factors[1], factors[2]);
        }
    }
}
