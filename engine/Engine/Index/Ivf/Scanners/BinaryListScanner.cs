using Engine.Distance;
using Engine.Index.Lists;
using Engine.Quantization;

namespace Engine.Index.Ivf;

/// <summary>
/// Binary lists (<c>BIN{b}</c>, <c>BIN{b}nr</c>): keys from the codec's asymmetric popcount estimator
/// (<see cref="BinaryCodec.CreateEstimator"/>; the float query in 4-bit level planes, AND-popcounts against each
/// stage's bit plane). Residual codes under L2 re-set the estimator's query to q − c for each probed list (one pass
/// over d), since ‖q − (c + r̂)‖² = ‖(q − c) − r̂‖²; residual codes under inner product keep one query and add the
/// list's coarse key, since −⟨q, c + r̂⟩ = −⟨q, c⟩ − ⟨q, r̂⟩; raw codes use the estimate as it is. With a refine store
/// the keys only rank candidates for the exact stage.
/// </summary>
internal sealed class BinaryListScanner : IvfListScanner
{
    private readonly BinaryCodec _codec;
    private readonly ICoarseQuantizer _quantizer;
    private readonly IDistanceEstimator _estimator;
    private readonly bool _l2, _residual;
    private readonly float[] _query, _shifted;
    private float _bias;

    public BinaryListScanner(BinaryCodec codec, ICoarseQuantizer quantizer, Metric metric, bool residual)
    {
        _codec = codec;
        _quantizer = quantizer;
        _l2 = metric == Metric.L2;
        _residual = residual;
        _estimator = codec.CreateEstimator(_l2 ? Metric.L2 : Metric.InnerProduct);
        _query = new float[codec.Dimension];
        _shifted = new float[codec.Dimension];
    }

    public override int CandidatesFor(int k, int candidates, bool hasRefine) => hasRefine ? candidates : k;

    public override void SetQuery(ReadOnlySpan<float> query)
    {
        query[.._codec.Dimension].CopyTo(_query);
        if (!(_residual && _l2)) _estimator.SetQuery(_query);
    }

    public override void SetList(int list, float coarseKey)
    {
        _bias = 0;
        if (!_residual) return;
        if (_l2)
        {
            System.Numerics.Tensors.TensorPrimitives.Subtract(_query, _quantizer.Centroid(list), _shifted);
            _estimator.SetQuery(_shifted);
        }
        else _bias = coarseKey;
    }

    public override void ScanCodes(InvertedList list, int probe, ref TopKHeap heap, in ListFilter filter) =>
        Scan(list, probe, ref heap, filter);

    protected override void Scan<TSink>(InvertedList list, int probe, ref TSink heap, in ListFilter filter)
    {
        int cs = _codec.CodeSize, count = list.Count;
        var codes = list.Codes;
        float bias = _bias;
        for (int off = 0; off < count; off++)
        {
            float key = bias + _estimator.Distance(codes.Slice(off * cs, cs));
            if (key > heap.Threshold || (filter.Active && !filter.Allows(list, off))) continue;
            heap.Push(key, Label(probe, off));
        }
    }
}
