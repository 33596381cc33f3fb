namespace Engine.Distributed;

/// <summary>
/// Merges per-shard top-k lists into the global top-k: per query, every shard's hits ordered by distance (ascending
/// for L2, descending for similarities), ties by id, first k kept. Shards hold disjoint ids, so for exact indexes the
/// result is the single-index result. An id reported by two shards (only while centroid-range sharding moves it) is
/// kept once, at its best distance.
/// </summary>
internal static class TopKMerge
{
    public static SearchResponse Merge(Metric metric, int nq, int k, int d, IReadOnlyList<SearchResponse> parts, bool includeVectors)
    {
        var distances = new float[(long)nq * k];
        var labels = new long[(long)nq * k];
        var vectors = includeVectors ? new float[(long)nq * k * d] : null;
        bool similarity = metric.IsSimilarity();
        var candidates = new List<(float Distance, long Id, int Part, int Slot)>(parts.Count * k);
        var taken = new HashSet<long>(k);
        for (int q = 0; q < nq; q++)
        {
            candidates.Clear();
            for (int p = 0; p < parts.Count; p++)
                for (int j = 0; j < k; j++)
                {
                    int slot = q * k + j;
                    long id = parts[p].Labels[slot];
                    if (id >= 0) candidates.Add((parts[p].Distances[slot], id, p, slot));
                }
            candidates.Sort((a, b) =>
            {
                int c = similarity ? b.Distance.CompareTo(a.Distance) : a.Distance.CompareTo(b.Distance);
                return c != 0 ? c : a.Id.CompareTo(b.Id);
            });
            taken.Clear();
            int next = 0;
            for (int j = 0; j < k; j++)
            {
                int o = q * k + j;
                // An id seen twice (centroid-range sharding, while a re-upsert moves it between shards) counts once.
                while (next < candidates.Count && !taken.Add(candidates[next].Id)) next++;
                if (next < candidates.Count)
                {
                    var (dist, id, p, slot) = candidates[next++];
                    distances[o] = dist;
                    labels[o] = id;
                    if (vectors is not null) parts[p].Vectors.AsSpan(slot * d, d).CopyTo(vectors.AsSpan(o * d, d));
                }
                else
                {
                    distances[o] = metric.MissingDistance();
                    labels[o] = -1;
                }
            }
        }
        return new SearchResponse
        {
            Distances = distances, Labels = labels, Vectors = vectors,
            ShardsAnswered = parts.Sum(p => p.ShardsAnswered), Failovers = parts.Sum(p => p.Failovers),
        };
    }
}
