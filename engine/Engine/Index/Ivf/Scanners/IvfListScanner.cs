using Engine.Distance;
using Engine.Index.Lists;

namespace Engine.Index.Ivf;

/// <summary>
/// Scans the codes of inverted lists for one query at a time (faiss <c>InvertedListScanner</c>): <see cref="SetQuery"/>
/// once per query (query tables), <see cref="SetList"/> once per probed list (list tables), then
/// <see cref="ScanCodes"/> pushes (key, probe &lt;&lt; 32 | row) candidates into a top-k heap. The index picks the
/// scanner for its codec once (one per search thread, pooled with the thread's scratch); the SIMD loops live here
/// and in the kernels, never in the index.
/// </summary>
/// <remarks>Keys are "smaller is better" (squared L2 or negated inner product) and include the coarse term of the
/// list. Not thread-safe: each search thread owns its scanner.</remarks>
internal abstract class IvfListScanner
{
    /// <summary>True when the keys are exact distances (Flat lists): nothing counts as a compressed code.</summary>
    public virtual bool ExactDistances => false;

    /// <summary>
    /// True when the candidates carry error bounds (RaBitQ with a refine store): they are chosen by their keys (the
    /// unbiased estimates), then the refine stage reads them in <see cref="LowerBound"/> order (estimate minus its
    /// error bound) and stops at the first one whose bound exceeds the k-th exact distance found so far, so candidates
    /// that cannot enter the top k are never re-scored. Choosing by the bound instead would pick candidates by the
    /// size of their error as much as by their estimate (recall fell as ε₀ grew).
    /// </summary>
    public virtual bool HasErrorBounds => false;

    /// <summary>
    /// The lower bound of the distance of row <paramref name="row"/> of the <paramref name="probe"/>-th probed list
    /// whose key (the estimate the candidates were chosen by) is <paramref name="key"/>; only called when
    /// <see cref="HasErrorBounds"/> is true, after the query's last list.
    /// </summary>
    public virtual float LowerBound(float key, InvertedList list, int probe, int row) => key;

    /// <summary>True when <see cref="LowerBound"/> differs from the key (false: the keys are the lower bounds, e.g.
    /// RaBitQ at its default ε₀), so callers skip the per-candidate pass.</summary>
    public virtual bool BoundsShiftKeys => false;

    /// <summary>The confidence parameter ε₀ of lower-bound keys (set once per search call; unused by scanners without bounds).</summary>
    public float BoundEpsilon { get; set; } = Quantization.RaBitQCodec.DefaultEpsilon;

    /// <summary>Candidates to gather per query before the refine stage (<paramref name="k"/> when the keys are final).</summary>
    public abstract int CandidatesFor(int k, int candidates, bool hasRefine);

    /// <summary>Sets the query (d floats, working space).</summary>
    public abstract void SetQuery(ReadOnlySpan<float> query);

    /// <summary>Sets the list the next <see cref="ScanCodes"/> reads, with its coarse key (query to centroid).</summary>
    public abstract void SetList(int list, float coarseKey);

    /// <summary>Scores every row of <paramref name="list"/> the filter allows and offers it to <paramref name="heap"/>.</summary>
    public abstract void ScanCodes(InvertedList list, int probe, ref TopKHeap heap, in ListFilter filter);

    /// <summary>
    /// Range scan: scores every row of <paramref name="list"/> the filter allows and appends (key, label) to
    /// <paramref name="candidates"/> for each key ≤ <paramref name="maxKey"/>, in row order. The keys are the ones
    /// <see cref="ScanCodes"/> offers for the same rows (nothing is buffered: <see cref="Drain"/> is not needed).
    /// </summary>
    public void ScanRange(InvertedList list, int probe, float maxKey, List<(float Key, long Label)> candidates, in ListFilter filter)
    {
        var sink = new RangeSink(candidates, maxKey);
        Scan(list, probe, ref sink, filter);
    }

    /// <summary>
    /// Scores every row of <paramref name="list"/> into a caller's sink: each (key, label) whose key is at most
    /// <c>sink.Threshold</c> (read after each offer) is offered, in row order, with no row filter: the sink decides
    /// which offers it keeps (SPANN's: the row's liveness by id and version, the caller's id filter, replicas already
    /// seen in the query's earlier postings), and its threshold may be tighter than a heap's (the fast-scan upper-bound
    /// threshold, <see cref="RaBitQFastScanListScanner.UpperKey"/>). The keys and row order are those
    /// <see cref="ScanCodes"/> and <see cref="ScanRange"/> use (the same loop, <see cref="Scan{TSink}"/>), specialised for
    /// the sink's struct type, so IVF's own scans compile as they did. Nothing is buffered (<see cref="Drain"/> is not needed).
    /// </summary>
    public void ScanTo<TSink>(InvertedList list, int probe, ref TSink sink) where TSink : ICandidateSink, allows ref struct =>
        Scan(list, probe, ref sink, default);

    /// <summary>The row of a label (the low 32 bits; the probe is in the high ones).</summary>
    public static int RowOf(long label) => (int)(uint)label;

    /// <summary>
    /// The scoring loop, generic over where candidates go (a k-NN heap or a range collector): every row the filter
    /// allows whose key is at most <c>sink.Threshold</c> (read after each offer) is offered to <paramref name="sink"/>.
    /// </summary>
    protected abstract void Scan<TSink>(InvertedList list, int probe, ref TSink sink, in ListFilter filter) where TSink : ICandidateSink, allows ref struct;

    /// <summary>
    /// Moves candidates the scanner buffered itself (instead of pushing them into the heap offered to
    /// <see cref="ScanCodes"/>) into <paramref name="heap"/>; called once per query after its last list, before the
    /// heap is read. Scanners that push directly do nothing.
    /// </summary>
    public virtual void Drain(ref TopKHeap heap) { }

    /// <summary>The label of row <paramref name="row"/> of the <paramref name="probe"/>-th probed list.</summary>
    protected static long Label(int probe, int row) => ((long)probe << 32) | (uint)row;

    /// <summary>Runs another scanner's scoring loop (for scanners that wrap one, <see cref="TransformedListScanner"/>).</summary>
    protected static void ScanWith<TSink>(IvfListScanner scanner, InvertedList list, int probe, ref TSink sink, in ListFilter filter)
        where TSink : ICandidateSink, allows ref struct => scanner.Scan(list, probe, ref sink, filter);
}

/// <summary>The sink of a range scan: a fixed threshold (the largest key kept), every offer appended.</summary>
internal readonly struct RangeSink(List<(float Key, long Label)> candidates, float maxKey) : ICandidateSink
{
    /// <inheritdoc />
    public float Threshold => maxKey;

    /// <inheritdoc />
    public void Push(float key, long id) => candidates.Add((key, id));
}

/// <summary>Which rows of a list a search may return: an id filter and/or an attribute window.</summary>
internal readonly struct ListFilter(IIdFilter? filter, bool hasWindow, double lo, double hi)
{
    /// <summary>The id filter, if any.</summary>
    public readonly IIdFilter? Filter = filter;

    /// <summary>True when an attribute window applies.</summary>
    public readonly bool HasWindow = hasWindow;

    /// <summary>Inclusive window bounds.</summary>
    public readonly double Lo = lo, Hi = hi;

    /// <summary>True when some rows may be excluded.</summary>
    public readonly bool Active = filter is not null || hasWindow;

    /// <summary>True when row <paramref name="row"/> of <paramref name="list"/> passes.</summary>
    public bool Allows(InvertedList list, int row) =>
        (!HasWindow || (list.Attributes[row] >= Lo && list.Attributes[row] <= Hi)) && (Filter is null || Filter.IsAllowed(list.Ids[row]));
}

/// <summary>Flat lists: exact distances to the stored f32 rows.</summary>
internal sealed class FlatListScanner(int dimension, Metric metric) : IvfListScanner
{
    private readonly float[] _query = new float[dimension];
    private readonly bool _innerProduct = metric != Metric.L2;

    public override bool ExactDistances => true;

    public override int CandidatesFor(int k, int candidates, bool hasRefine) => k;

    public override void SetQuery(ReadOnlySpan<float> query) => query.CopyTo(_query);

    public override void SetList(int list, float coarseKey) { }

    public override void ScanCodes(InvertedList list, int probe, ref TopKHeap heap, in ListFilter filter)
    {
        if (filter.Active) { Scan(list, probe, ref heap, filter); return; }
        // Unfiltered k-NN: a block's keys go to the heap 16 at a time against its threshold (TopKHeap.PushAll: the same
        // content as pushing them one by one), so once the heap is tight a key costs a fraction of a compare.
        var rows = Rows(list);
        for (int b = 0; b < list.Count; b += Block)
            heap.PushAll(BlockKeys(rows, b, Math.Min(Block, list.Count - b)), Label(probe, b)); // consecutive rows, consecutive labels
    }

    // Rows are scored a block at a time by the one-to-many kernels (four short rows per step), then offered.
    private const int Block = 128;
    private readonly float[] _keys = new float[Block];

    private ReadOnlySpan<float> Rows(InvertedList list) =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(list.Codes.Slice(0, list.Count * _query.Length * sizeof(float)));

    // Keys (smaller is better: squared L2, or the negated inner product) of rows [b, b + m), in the scanner's buffer.
    private Span<float> BlockKeys(ReadOnlySpan<float> rows, int b, int m)
    {
        int d = _query.Length;
        var block = rows.Slice(b * d, m * d);
        var keys = _keys.AsSpan(0, m);
        if (_innerProduct)
        {
            Distances.DotOneToMany(_query, block, keys);
            System.Numerics.Tensors.TensorPrimitives.Negate(keys, keys);
        }
        else Distances.SquaredL2OneToMany(_query, block, keys);
        return keys;
    }

    protected override void Scan<TSink>(InvertedList list, int probe, ref TSink heap, in ListFilter filter)
    {
        var rows = Rows(list);
        for (int b = 0; b < list.Count; b += Block)
        {
            var keys = BlockKeys(rows, b, Math.Min(Block, list.Count - b));
            for (int j = 0; j < keys.Length; j++)
            {
                if (keys[j] > heap.Threshold || (filter.Active && !filter.Allows(list, b + j))) continue;
                heap.Push(keys[j], Label(probe, b + j));
            }
        }
    }
}
