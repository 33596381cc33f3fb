using System.Buffers;

namespace Engine.Index.Hnsw;

public sealed partial class HnswIndex
{
    // Below this many allowed nodes per unit of ef, scanning them is cheaper than a filtered walk (which computes
    // at least about ef × M distances, at random addresses).
    private const int ExactPerEf = 4;

    /// <summary>
    /// Decides whether a filtered call is answered by exact search over the allowed set, and if so collects the
    /// allowed nodes (rented array, ascending: sequential memory access). Exact search wins when the filter's
    /// estimated allowed fraction is at most <paramref name="fallbackSelectivity"/>, or the allowed set holds at
    /// most 4 × ef nodes. A filter that cannot estimate its selectivity is always applied during the walk.
    /// </summary>
    private bool TryCollectAllowed(IIdFilter filter, int ef, double fallbackSelectivity, out int[]? allowed, out int count)
    {
        allowed = null;
        count = 0;
        long total = Volatile.Read(ref _count);
        if (total == 0) return false;
        double sel = filter.EstimatedSelectivity(total);
        if (sel < 0) return false;
        long estimate = (long)Math.Ceiling(sel * total);
        if (estimate > fallbackSelectivity * total && estimate > (long)ExactPerEf * ef) return false;
        var buffer = ArrayPool<int>.Shared.Rent((int)Math.Clamp(estimate, 1, total));
        if (filter is IdAllowListFilter list)
        {
            lock (_mapLock)
            {
                foreach (long id in list.Ids)
                {
                    if (!_nodeOf.TryGetValue(id, out int node)) continue;
                    if (count == buffer.Length) Grow(ref buffer);
                    buffer[count++] = node;
                }
            }
        }
        else
        {
            // A filter that knows its selectivity but cannot list its ids: one pass over the stored ids.
            for (int node = 0; node < _slots; node++)
            {
                if (Volatile.Read(ref _state[node]) != Live || !filter.IsAllowed(_ids[node])) continue;
                if (count == buffer.Length) Grow(ref buffer);
                buffer[count++] = node;
            }
        }
        Array.Sort(buffer, 0, count);
        allowed = buffer;
        return true;
    }

    private static void Grow(ref int[] buffer)
    {
        var bigger = ArrayPool<int>.Shared.Rent(buffer.Length * 2);
        buffer.CopyTo(bigger, 0);
        ArrayPool<int>.Shared.Return(buffer);
        buffer = bigger;
    }

    // Exact top-k of one query over the allowed nodes, ascending into s.Keys / s.Nodes.
    private int ExactOverAllowed(ReadOnlySpan<float> q, ReadOnlySpan<int> allowed, int k, HnswScratch s)
    {
        const int Ahead = 4;
        var res = s.Results;
        res.Clear();
        for (int i = 0; i < Math.Min(Ahead, allowed.Length); i++) _vectors.Prefetch(allowed[i]);
        for (int i = 0; i < allowed.Length; i++)
        {
            if (i + Ahead < allowed.Length) _vectors.Prefetch(allowed[i + Ahead]);
            int node = allowed[i];
            if (Volatile.Read(ref _state[node]) != Live) continue;
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
