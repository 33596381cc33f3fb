namespace Engine.Mining.Graph;

/// <summary>
/// The k nearest neighbours of every point of a set, self excluded: row i (point <see cref="Ids"/>[i]) holds
/// <see cref="K"/> neighbour ids best first in <see cref="Neighbors"/> and their distances (the index metric's values:
/// squared L2, or similarity for ip / cosine) in <see cref="Distances"/>, padded with −1 and the metric's missing value
/// when the index returned fewer.
/// </summary>
public sealed class KnnGraph
{
    private Dictionary<long, int>? _rowOf;

    /// <summary>Wraps graph arrays (n ids, n × k neighbours and distances).</summary>
    /// <exception cref="ArgumentException">Array lengths disagree, k is not positive, a neighbour id is below −1 (−1 is
    /// the padding), or an edge (a neighbour other than −1) has a NaN or infinite distance: such a value would turn
    /// into NaN edge weights in <see cref="LabelPropagation"/> or a silently dropped edge in
    /// <see cref="NearDuplicates"/>. Padding entries may hold any distance.</exception>
    public KnnGraph(Metric metric, int k, long[] ids, long[] neighbors, float[] distances)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(neighbors);
        ArgumentNullException.ThrowIfNull(distances);
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1.");
        if (neighbors.LongLength != (long)ids.Length * k || distances.Length != neighbors.Length)
            throw new ArgumentException($"neighbors ({neighbors.Length}) and distances ({distances.Length}) must hold n × k = {ids.Length} × {k} entries.", nameof(neighbors));
        for (int i = 0; i < neighbors.Length; i++)
        {
            if (neighbors[i] < -1)
                throw new ArgumentException($"neighbors[{i}] = {neighbors[i]} is not an id (ids are >= 0; -1 is the padding).", nameof(neighbors));
            if (neighbors[i] >= 0 && !float.IsFinite(distances[i]))
                throw new ArgumentException($"distances[{i}] = {distances[i]} (the edge to {neighbors[i]} of row {i / k}) is not a finite number.", nameof(distances));
        }
        Metric = metric;
        K = k;
        Ids = ids;
        Neighbors = neighbors;
        Distances = distances;
    }

    /// <summary>The metric of the distances.</summary>
    public Metric Metric { get; }

    /// <summary>Neighbours per point.</summary>
    public int K { get; }

    /// <summary>Number of points (rows).</summary>
    public int Count => Ids.Length;

    /// <summary>The id of each row's point.</summary>
    public long[] Ids { get; }

    /// <summary>Row-major n × k neighbour ids (−1 = none).</summary>
    public long[] Neighbors { get; }

    /// <summary>Row-major n × k distances aligned with <see cref="Neighbors"/>.</summary>
    public float[] Distances { get; }

    /// <summary>Neighbour ids of row <paramref name="row"/>.</summary>
    public ReadOnlySpan<long> NeighborsOf(int row) => Neighbors.AsSpan(row * K, K);

    /// <summary>Distances of row <paramref name="row"/>.</summary>
    public ReadOnlySpan<float> DistancesOf(int row) => Distances.AsSpan(row * K, K);

    /// <summary>The row of point <paramref name="id"/>, or −1 when the id is not a row of the graph.</summary>
    public int RowOf(long id)
    {
        var map = _rowOf;
        if (map is null)
        {
            map = new Dictionary<long, int>(Ids.Length);
            for (int i = 0; i < Ids.Length; i++) map.TryAdd(Ids[i], i);
            _rowOf = map;
        }
        return map.TryGetValue(id, out int r) ? r : -1;
    }

    /// <summary>
    /// recall@k of this graph against an exact one over the same rows: the share of the exact graph's neighbours this
    /// graph also lists (row by row, the first <paramref name="k"/> of each).
    /// </summary>
    /// <exception cref="ArgumentException">The graphs have different rows or k exceeds either graph's K.</exception>
    public double RecallAgainst(KnnGraph exact, int k)
    {
        ArgumentNullException.ThrowIfNull(exact);
        if (exact.Count != Count) throw new ArgumentException($"exact has {exact.Count} rows, this graph {Count}.", nameof(exact));
        if (k < 1 || k > K || k > exact.K) throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be in 1..{Math.Min(K, exact.K)}.");
        long hits = 0, total = 0;
        var mine = new HashSet<long>();
        for (int i = 0; i < Count; i++)
        {
            mine.Clear();
            foreach (long id in NeighborsOf(i)[..k]) if (id >= 0) mine.Add(id);
            foreach (long id in exact.NeighborsOf(i)[..k])
            {
                if (id < 0) continue;
                total++;
                if (mine.Contains(id)) hits++;
            }
        }
        return total == 0 ? 1.0 : hits / (double)total;
    }
}
