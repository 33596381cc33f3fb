namespace Engine.Mining.Graph;

/// <summary>
/// Near-duplicate groups: connected components (union-find) of the graph edges inside a threshold (squared L2
/// distance ≤ t, or similarity ≥ t for ip / cosine). A point without such an edge is its own group.
/// </summary>
/// <param name="Ids">The point ids, one per graph row.</param>
/// <param name="Representative">Per row: the id of its group's representative (the smallest id in the group).</param>
/// <param name="GroupCount">Number of groups (= points kept by <see cref="Keep"/>).</param>
public sealed record NearDuplicates(long[] Ids, long[] Representative, int GroupCount)
{
    /// <summary>
    /// Groups the points of <paramref name="graph"/>. Only edges of the graph are seen: two duplicates that are not
    /// within each other's k neighbours join only through a chain of such edges (raise k for large groups).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A NaN/±∞ threshold or a negative L2 threshold.</exception>
    public static NearDuplicates Find(KnnGraph graph, float threshold)
    {
        ArgumentNullException.ThrowIfNull(graph);
        if (!float.IsFinite(threshold) || (graph.Metric == Metric.L2 && threshold < 0))
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold,
                $"threshold must be finite{(graph.Metric == Metric.L2 ? " and >= 0 (a squared L2 distance)" : "")}, got {threshold}.");
        int n = graph.Count;
        var parent = new int[n];
        for (int i = 0; i < n; i++) parent[i] = i;
        for (int i = 0; i < n; i++)
        {
            var nb = graph.NeighborsOf(i);
            var ds = graph.DistancesOf(i);
            for (int j = 0; j < nb.Length; j++)
            {
                if (nb[j] < 0 || !RangeSearchResult.Within(graph.Metric, ds[j], threshold)) continue;
                int other = graph.RowOf(nb[j]);
                if (other >= 0) Union(parent, i, other);
            }
        }
        // Representative: the smallest id among the group's members.
        var best = new long[n];
        Array.Fill(best, long.MaxValue);
        for (int i = 0; i < n; i++)
        {
            int root = Find(parent, i);
            best[root] = Math.Min(best[root], graph.Ids[i]);
        }
        var rep = new long[n];
        int groups = 0;
        for (int i = 0; i < n; i++)
        {
            int root = Find(parent, i);
            rep[i] = best[root];
            if (root == i) groups++;
        }
        return new NearDuplicates(graph.Ids, rep, groups);
    }

    /// <summary>The ids kept by deduplication: one per group (its representative), in row order.</summary>
    public long[] Keep()
    {
        var keep = new List<long>(GroupCount);
        for (int i = 0; i < Ids.Length; i++) if (Representative[i] == Ids[i]) keep.Add(Ids[i]);
        return keep.ToArray();
    }

    /// <summary>The groups with more than one member: representative → members (representative first, then by id).</summary>
    public IReadOnlyList<long[]> Groups()
    {
        var byRep = new SortedDictionary<long, List<long>>();
        for (int i = 0; i < Ids.Length; i++)
        {
            if (!byRep.TryGetValue(Representative[i], out var list)) byRep[Representative[i]] = list = [];
            list.Add(Ids[i]);
        }
        return byRep.Values.Where(l => l.Count > 1).Select(l => l.Order().ToArray()).ToList();
    }

    private static int Find(int[] parent, int x)
    {
        while (parent[x] != x)
        {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        return x;
    }

    private static void Union(int[] parent, int a, int b)
    {
        int ra = Find(parent, a), rb = Find(parent, b);
        if (ra == rb) return;
        if (ra < rb) parent[rb] = ra;
        else parent[ra] = rb;
    }
}
