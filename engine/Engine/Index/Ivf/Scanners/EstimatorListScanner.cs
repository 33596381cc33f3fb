using Engine.Distance;
using Engine.Index.Lists;
using Engine.Quantization;

namespace Engine.Index.Ivf;

/// <summary>
/// Row codes scored through their codec's own <see cref="IDistanceEstimator"/> (one call per row): the scanner of codecs
/// that have no table-driven scanner of their own, such as SPANN's SQ8 and BIN postings (whole-vector codes, no coarse
/// term: the coarse key is ignored). Keys are the estimator's distances; they are not error-bounded.
/// </summary>
internal sealed class EstimatorListScanner(IVectorCodec codec, Metric metric) : IvfListScanner
{
    private readonly IDistanceEstimator _estimator = codec.CreateEstimator(metric);
    private readonly int _codeSize = codec.CodeSize;

    public override int CandidatesFor(int k, int candidates, bool hasRefine) => hasRefine ? candidates : k;

    public override void SetQuery(ReadOnlySpan<float> query) => _estimator.SetQuery(query);

    public override void SetList(int list, float coarseKey) { }

    public override void ScanCodes(InvertedList list, int probe, ref TopKHeap heap, in ListFilter filter) => Scan(list, probe, ref heap, filter);

    protected override void Scan<TSink>(InvertedList list, int probe, ref TSink sink, in ListFilter filter)
    {
        int size = _codeSize, count = list.Count;
        var codes = list.Codes.Slice(0, count * size);
        for (int row = 0; row < count; row++)
        {
            float key = _estimator.Distance(codes.Slice(row * size, size));
            if (key > sink.Threshold || (filter.Active && !filter.Allows(list, row))) continue;
            sink.Push(key, Label(probe, row));
        }
    }
}
