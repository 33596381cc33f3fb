using Engine.Distance;
using Engine.Index.Lists;
using Engine.Quantization;

namespace Engine.Index.Ivf;

/// <summary>
/// Residual RaBitQ lists (<c>RaBitQ</c>, <c>RaBitQ{b}</c>): the query is rotated and turned into a byte table once
/// per query; every code made against its list's centroid c stores ⟨P c, y⟩ in its additive term, so a list only
/// contributes its coarse key (‖q − c‖², or −⟨q, c⟩) and ‖q − c‖ for the error bound. Without a refine store the keys
/// are the unbiased estimates; with one they are the estimates' lower bounds (estimate − ε₀ × bound), so the refine
/// stage can stop at the first candidate whose lower bound cannot beat its k-th exact distance
/// (<see cref="IvfListScanner.KeysAreLowerBounds"/>).
/// </summary>
internal sealed class RaBitQListScanner : IvfListScanner
{
    private readonly RaBitQCodec _codec;
    private readonly ICoarseQuantizer _quantizer;
    private readonly bool _l2, _lowerBounds;
    private readonly float[] _rotated, _lut;
    private readonly float _epsilon;
    private float _sum, _queryNorm2, _bias, _boundScale;

    public RaBitQListScanner(RaBitQCodec codec, ICoarseQuantizer quantizer, bool hasRefine, float epsilon = RaBitQCodec.DefaultEpsilon)
    {
        _codec = codec;
        _quantizer = quantizer;
        _l2 = codec.Metric == Metric.L2;
        _lowerBounds = hasRefine;
        _epsilon = epsilon;
        _rotated = new float[codec.Dimension];
        _lut = GC.AllocateArray<float>(RaBitQKernels.LutFloats(codec.Dimension), pinned: true);
    }

    public override bool KeysAreLowerBounds => _lowerBounds;

    public override int CandidatesFor(int k, int candidates, bool hasRefine) => hasRefine ? candidates : k;

    public override void SetQuery(ReadOnlySpan<float> query)
    {
        query.CopyTo(_rotated);
        _codec.Rotation!.Forward(_rotated);
        RaBitQKernels.BuildLut(_rotated, _lut);
        _sum = System.Numerics.Tensors.TensorPrimitives.Sum(_rotated) * _codec.Offset;
        _queryNorm2 = Distances.SquaredNorm(query);
    }

    public override void SetList(int list, float coarseKey)
    {
        _bias = coarseKey;
        // ‖q − c‖: the L2 coarse key is its square; for inner product ‖q‖² + ‖c‖² − 2⟨q, c⟩ with −⟨q, c⟩ the key.
        float dist2 = _l2 ? coarseKey : _queryNorm2 + Distances.SquaredNorm(_quantizer.Centroid(list)) + 2 * coarseKey;
        float bound = _epsilon * MathF.Sqrt(MathF.Max(0, dist2));
        _boundScale = _lowerBounds ? (_l2 ? 2 * bound : bound) : 0;
    }

    public override unsafe void ScanCodes(InvertedList list, int probe, ref TopKHeap heap, in ListFilter filter)
    {
        int cs = _codec.CodeSize, pb = _codec.PlaneBytes, bits = _codec.Bits, count = list.Count;
        float bias = _bias, sum = _sum, boundScale = _boundScale;
        bool l2 = _l2;
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
