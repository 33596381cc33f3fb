using Engine.Distance;
using Engine.Index.Lists;
using Engine.Quantization;

namespace Engine.Index.Ivf;

/// <summary>
/// The scanner of codes behind a transform (<see cref="TransformedCodec"/>, e.g. SPANN's <c>OPQ{m},PQ{m}</c> postings):
/// the query is transformed once per <see cref="SetQuery"/>, then the inner codec's own scanner (the PQ table scanner
/// for PQ codes) does everything else in the transformed space. With a rotation the keys are those of the original
/// space (distances and norms are preserved), so coarse keys and error bounds pass through unchanged.
/// </summary>
internal sealed class TransformedListScanner(IVectorTransform transform, IvfListScanner inner) : IvfListScanner
{
    private readonly float[] _query = new float[transform.Dimension];

    /// <summary>The scanner of the codec behind the transform.</summary>
    public IvfListScanner Inner => inner;

    public override bool ExactDistances => inner.ExactDistances;

    public override bool HasErrorBounds => inner.HasErrorBounds;

    public override bool BoundsShiftKeys => inner.BoundsShiftKeys;

    public override float LowerBound(float key, InvertedList list, int probe, int row) => inner.LowerBound(key, list, probe, row);

    public override int CandidatesFor(int k, int candidates, bool hasRefine) => inner.CandidatesFor(k, candidates, hasRefine);

    public override void SetQuery(ReadOnlySpan<float> query)
    {
        inner.BoundEpsilon = BoundEpsilon; // set per search call on this scanner
        transform.Apply(query[.._query.Length], _query);
        inner.SetQuery(_query);
    }

    public override void SetList(int list, float coarseKey) => inner.SetList(list, coarseKey);

    public override void ScanCodes(InvertedList list, int probe, ref TopKHeap heap, in ListFilter filter) => inner.ScanCodes(list, probe, ref heap, filter);

    protected override void Scan<TSink>(InvertedList list, int probe, ref TSink sink, in ListFilter filter) => ScanWith(inner, list, probe, ref sink, filter);

    public override void Drain(ref TopKHeap heap) => inner.Drain(ref heap);
}
