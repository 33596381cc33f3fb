using Engine.Distance;

namespace Engine.Index.Ivf;

public sealed partial class IvfIndex
{
    // Attributes sorted ascending with the (list, offset) of each vector; built lazily by searches with a window,
    // dropped by every mutation.
    private AttributeOrder<long>? _attributeOrder;
    private readonly object _attributeOrderBuild = new();

    // Called under the read lock: the lists do not change while it runs.
    private AttributeOrder<long> GetAttributeOrder() =>
        AttributeOrder<long>.GetOrBuild(ref _attributeOrder, _attributeOrderBuild, add =>
        {
            for (int li = 0; li < _lists.Count; li++)
            {
                var list = _lists[li];
                for (int off = 0; off < list.Count; off++)
                    if (IsFirstCopy(li, off)) add(list.Attributes[off], Pack(li, off));
            }
        });

    /// <summary>
    /// Decides whether a filtered call is answered by exact search over the allowed set, and if so collects the
    /// allowed (list, offset) locations (rented array). Exact search wins when the allowed fraction is at most
    /// <see cref="IvfSearchParameters.ExactFallbackSelectivity"/> or the allowed set is smaller than what the
    /// probes would scan.
    /// </summary>
    private bool TryCollectAllowed(in SearchContext ctx, int probes, out long[]? allowed, out int count)
    {
        allowed = null;
        count = 0;
        long total = _count;
        if (total == 0) return false;
        var order = ctx.HasWindow ? GetAttributeOrder() : null;
        long estimate = AllowedSet.Estimate(order, ctx.Lo, ctx.Hi, ctx.Filter, total, out var range, out long windowCount, out long filterCount);
        if (estimate == long.MaxValue) return false; // unknown selectivity: filter inside the scan
        double expectedScanned = (double)total * probes / ListCount;
        if (estimate > ctx.FallbackSelectivity * total && estimate > expectedScanned) return false;

        var buffer = System.Buffers.ArrayPool<long>.Shared.Rent((int)Math.Max(1, Math.Min(estimate, total)));
        if (order is not null && windowCount <= filterCount)
        {
            for (int i = range.Start; i < range.End; i++)
            {
                var (li, off) = Unpack(order.Locations[i]);
                if (ctx.Filter is null || ctx.Filter.IsAllowed(_lists[li].Ids[off])) buffer[count++] = order.Locations[i];
            }
        }
        else if (ctx.Filter is IdAllowListFilter allowList)
        {
            foreach (long id in allowList.Ids)
            {
                if (!_directMap.TryGetValue(id, out long loc)) continue;
                var (li, off) = Unpack(loc);
                if (!ctx.HasWindow || ctx.Allows(_lists[li], off))
                {
                    if (count == buffer.Length) Grow(ref buffer);
                    buffer[count++] = loc;
                }
            }
        }
        else
        {
            // A filter that knows its selectivity but cannot list its ids: one pass over the stored ids.
            for (int li = 0; li < _lists.Count; li++)
                for (int off = 0; off < _lists[li].Count; off++)
                {
                    if (!ctx.Allows(_lists[li], off) || !IsFirstCopy(li, off)) continue;
                    if (count == buffer.Length) Grow(ref buffer);
                    buffer[count++] = Pack(li, off);
                }
        }
        Array.Sort(buffer, 0, count); // list order: sequential memory access
        allowed = buffer;
        return true;
    }

    // True unless (li, off) holds the second copy of a SOAR index's vector: sets of locations list each id once.
    private bool IsFirstCopy(int li, int off) =>
        _spillMap is null || (_directMap.TryGetValue(_lists[li].Ids[off], out long at) && at == Pack(li, off));

    private static void Grow(ref long[] buffer)
    {
        var bigger = System.Buffers.ArrayPool<long>.Shared.Rent(buffer.Length * 2);
        buffer.CopyTo(bigger, 0);
        System.Buffers.ArrayPool<long>.Shared.Return(buffer);
        buffer = bigger;
    }

    // Exact top-k of one query over the allowed locations (refine store, Flat lists or PQ reconstruction).
    private void ExactOverAllowed(ReadOnlySpan<float> q, ReadOnlySpan<long> allowed, Span<float> outKeys, Span<long> outIds, IvfScratch s, in SearchContext ctx)
    {
        var heap = new TopKHeap(outKeys, outIds);
        bool ip = Metric != Metric.L2;
        foreach (long loc in allowed)
        {
            var (li, off) = Unpack(loc);
            var list = _lists[li];
            float key;
            if (_refine is not null) key = _refine.Key(q, list.Refine.Slice(off * _refine.CodeSize, _refine.CodeSize), ip, s.Vector);
            else
            {
                ExactVector(li, off, s.Vector, s.Code);
                key = ip ? -Distances.Dot(q, s.Vector) : Distances.SquaredL2(q, s.Vector);
            }
            heap.Push(key, list.Ids[off]);
        }
        heap.SortAndPad(float.PositiveInfinity);
        ctx.Stats?.Add(distances: allowed.Length);
    }
}
