using System.Buffers;

namespace Engine.Index.Hnsw;

public sealed partial class HnswIndex
{
    // Below this many allowed nodes per unit of ef, scanning them is cheaper than a filtered walk (which computes
    // at least about ef × M distances, at random addresses).
    private const int ExactPerEf = 4;

    // Attributes sorted ascending with the slot of each node; built lazily by searches with a window, dropped by every
    // mutation. A stale order can only miss nodes: the exact scan re-checks state, window and filter of every slot.
    private AttributeOrder<int>? _attributeOrder;
    private readonly object _attributeOrderBuild = new();

    // Called under the read lock (slots do not move).
    private AttributeOrder<int> GetAttributeOrder() =>
        AttributeOrder<int>.GetOrBuild(ref _attributeOrder, _attributeOrderBuild, add =>
        {
            int slots = Volatile.Read(ref _slots);
            for (int node = 0; node < slots; node++)
                if (Volatile.Read(ref _state[node]) == Live) add(Attribute(node), node);
        });

    /// <summary>
    /// Decides whether a filtered call is answered by exact search over the allowed set, and if so collects the
    /// allowed nodes (rented array, ascending: sequential memory access). Exact search wins when the estimated
    /// allowed count (the attribute window's size, or the filter's selectivity estimate) is at most
    /// <paramref name="fallbackSelectivity"/> × count, or at most 4 × ef nodes. A filter that cannot estimate its
    /// selectivity and no window: always applied during the walk.
    /// </summary>
    private bool TryCollectAllowed(in Admission admit, int ef, double fallbackSelectivity, out int[]? allowed, out int count)
    {
        allowed = null;
        count = 0;
        long total = Volatile.Read(ref _count);
        if (total == 0) return false;
        var order = admit.HasWindow ? GetAttributeOrder() : null;
        long estimate = AllowedSet.Estimate(order, admit.Lo, admit.Hi, admit.Filter, total, out var range, out long windowCount, out long filterCount);
        if (estimate == long.MaxValue) return false;
        if (estimate > fallbackSelectivity * total && estimate > (long)ExactPerEf * ef) return false;
        var buffer = ArrayPool<int>.Shared.Rent((int)Math.Clamp(estimate, 1, total));
        if (order is not null && windowCount <= filterCount)
        {
            for (int i = range.Start; i < range.End; i++)
            {
                int node = order.Locations[i];
                if (admit.Filter is null || admit.Filter.IsAllowed(_ids[node])) Append(ref buffer, ref count, node);
            }
        }
        else if (admit.Filter is IdAllowListFilter list)
        {
            lock (_mapLock)
            {
                foreach (long id in list.Ids)
                    if (_nodeOf.TryGetValue(id, out int node) && admit.Allows(id, Attribute(node))) Append(ref buffer, ref count, node);
            }
        }
        else
        {
            // A filter that knows its selectivity but cannot list its ids: one pass over the stored ids.
            for (int node = 0; node < _slots; node++)
                if (Volatile.Read(ref _state[node]) == Live && admit.Allows(_ids[node], Attribute(node))) Append(ref buffer, ref count, node);
        }
        Array.Sort(buffer, 0, count);
        allowed = buffer;
        return true;
    }

    private static void Append(ref int[] buffer, ref int count, int node)
    {
        if (count == buffer.Length)
        {
            var bigger = ArrayPool<int>.Shared.Rent(buffer.Length * 2);
            buffer.CopyTo(bigger, 0);
            ArrayPool<int>.Shared.Return(buffer);
            buffer = bigger;
        }
        buffer[count++] = node;
    }

    // Exact top-k of one query over the allowed nodes, ascending into s.Keys / s.Nodes.
    private int ExactOverAllowed(ReadOnlySpan<float> q, ReadOnlySpan<int> allowed, int k, in Admission admit, HnswScratch s)
    {
        const int Ahead = 4;
        var res = s.Results;
        res.Clear();
        for (int i = 0; i < Math.Min(Ahead, allowed.Length); i++) _vectors.Prefetch(allowed[i]);
        for (int i = 0; i < allowed.Length; i++)
        {
            if (i + Ahead < allowed.Length) _vectors.Prefetch(allowed[i + Ahead]);
            int node = allowed[i];
            if (!Eligible(node, in admit)) continue; // re-checked: the node may have changed since it was collected
            float key = _vectors.Key(q, node, s.KeyScratch);
            if (res.Count < k || key < res.TopKey)
            {
                res.Push(key, node);
                if (res.Count > k) res.Pop();
            }
        }
        s.Distances += allowed.Length;
        return DrainResults(s);
    }
}
