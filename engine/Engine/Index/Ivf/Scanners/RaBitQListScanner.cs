using Engine.Distance;
using Engine.Index.Lists;
using Engine.Quantization;

namespace Engine.Index.Ivf;

/// <summary>
/// What the RaBitQ scanners share: each list contributes only its coarse key (‖q − c‖², or −⟨q, c⟩; the codes
/// carry ⟨P c, y⟩ in their additive term) and ‖q − c‖ for the error bound. Without a refine store the keys are the
/// unbiased estimates; with one they are lower bounds (estimate − ε₀ × bound), so the refine stage can stop at the
/// first candidate whose lower bound cannot beat its k-th exact distance (<see cref="IvfListScanner.KeysAreLowerBounds"/>).
/// </summary>
internal abstract class RaBitQScannerBase : IvfListScanner
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

    /// <summary>The confidence parameter ε₀ of the bounds.</summary>
    protected float Epsilon => BoundEpsilon;

    /// <summary>‖q‖² of the current query (set by <see cref="SetQueryNorm"/>).</summary>
    private float _queryNorm2;

    /// <summary>The current list's coarse key.</summary>
    protected float Bias { get; private set; }

    /// <summary>What a code's error factor e is multiplied by to give its key's bound (0 without refine).</summary>
    protected float BoundScale { get; private set; }

    public sealed override bool KeysAreLowerBounds => _lowerBounds;

    public sealed override int CandidatesFor(int k, int candidates, bool hasRefine) => hasRefine ? candidates : k;

    /// <summary>Records ‖q‖² (inner product needs it for ‖q − c‖).</summary>
    protected void SetQueryNorm(ReadOnlySpan<float> query) => _queryNorm2 = Distances.SquaredNorm(query);

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

    protected override unsafe void Scan<TSink>(InvertedList list, int probe, ref TSink heap, in ListFilter filter)
    {
        int cs = Codec.CodeSize, pb = Codec.PlaneBytes, bits = Codec.Bits, count = list.Count;
        float bias = Bias, sum = _sum, boundScale = BoundScale;
        bool l2 = L2;
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
}
