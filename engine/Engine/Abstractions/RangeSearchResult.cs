namespace Engine;

/// <summary>
/// Variable-length results of <see cref="IVectorIndex.RangeSearch"/>, laid out like faiss' <c>RangeSearchResult</c>:
/// query i owns entries <c>Offsets[i] .. Offsets[i + 1]</c> of <see cref="Ids"/> and <see cref="Distances"/>, best
/// first (ties by id).
/// </summary>
/// <remarks>Distances follow the index metric: squared L2 (smaller is closer) or the similarity (larger is closer).</remarks>
public sealed class RangeSearchResult
{
    /// <summary>Creates a result from CSR arrays (offsets has queries + 1 entries, starting at 0, never decreasing).</summary>
    /// <exception cref="ArgumentException">The arrays do not describe CSR lists.</exception>
    public RangeSearchResult(Metric metric, float radius, long[] offsets, long[] ids, float[] distances)
    {
        ArgumentNullException.ThrowIfNull(offsets);
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(distances);
        if (offsets.Length == 0 || offsets[0] != 0)
            throw new ArgumentException("offsets must hold queries + 1 entries starting at 0.", nameof(offsets));
        for (int i = 1; i < offsets.Length; i++)
            if (offsets[i] < offsets[i - 1])
                throw new ArgumentException($"offsets decrease at query {i - 1}.", nameof(offsets));
        if (ids.Length != offsets[^1] || distances.Length != offsets[^1])
            throw new ArgumentException($"ids ({ids.Length}) and distances ({distances.Length}) must both hold offsets[^1] = {offsets[^1]} entries.", nameof(ids));
        Metric = metric;
        Radius = radius;
        Offsets = offsets;
        Ids = ids;
        Distances = distances;
    }

    /// <summary>The metric of the index that answered.</summary>
    public Metric Metric { get; }

    /// <summary>The radius of the call: the largest squared L2 distance, or the smallest similarity, kept.</summary>
    public float Radius { get; }

    /// <summary>Number of queries.</summary>
    public int QueryCount => Offsets.Length - 1;

    /// <summary>CSR offsets (queries + 1 entries; faiss' <c>lims</c>).</summary>
    public long[] Offsets { get; }

    /// <summary>All result ids, query after query.</summary>
    public long[] Ids { get; }

    /// <summary>All result distances, aligned with <see cref="Ids"/>.</summary>
    public float[] Distances { get; }

    /// <summary>Total number of results.</summary>
    public long TotalCount => Offsets[^1];

    /// <summary>The ids of query <paramref name="query"/>, best first.</summary>
    public ReadOnlySpan<long> IdsOf(int query) => Ids.AsSpan(Start(query), Length(query));

    /// <summary>The distances of query <paramref name="query"/>, best first.</summary>
    public ReadOnlySpan<float> DistancesOf(int query) => Distances.AsSpan(Start(query), Length(query));

    private int Start(int query)
    {
        if ((uint)query >= (uint)QueryCount)
            throw new ArgumentOutOfRangeException(nameof(query), query, $"query must be in 0..{QueryCount - 1}.");
        return (int)Offsets[query];
    }

    private int Length(int query) => (int)(Offsets[query + 1] - Offsets[query]);

    /// <summary>True when <paramref name="distance"/> is inside <paramref name="radius"/> for <paramref name="metric"/>
    /// (distance ≤ r for L2, similarity ≥ r for inner product and cosine).</summary>
    public static bool Within(Metric metric, float distance, float radius) =>
        metric == Metric.L2 ? distance <= radius : distance >= radius;

    /// <summary>
    /// Checks a radius for <paramref name="metric"/>: finite everywhere; ≥ 0 for L2 (a squared distance); in [−1, 1]
    /// for cosine. Inner-product thresholds may be any finite value.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">NaN, ±∞, a negative L2 radius or a cosine threshold outside [−1, 1].</exception>
    public static void CheckRadius(Metric metric, float radius)
    {
        if (!float.IsFinite(radius))
            throw new ArgumentOutOfRangeException(nameof(radius), radius, $"radius must be a finite number, got {radius}.");
        if (metric == Metric.L2 && radius < 0)
            throw new ArgumentOutOfRangeException(nameof(radius), radius,
                $"radius must be >= 0 for l2 (it bounds the squared distance), got {radius}.");
        if (metric == Metric.Cosine && (radius < -1 || radius > 1))
            throw new ArgumentOutOfRangeException(nameof(radius), radius,
                $"radius must be a cosine similarity in [-1, 1] for cosine, got {radius}.");
    }

    /// <summary>
    /// Recall of an approximate range search against the exact one for the same queries and radius: the share of the
    /// exact (query, id) pairs the approximate result also holds (1 when the exact result is empty).
    /// </summary>
    /// <exception cref="ArgumentException">The two results cover different query counts.</exception>
    public static double Recall(RangeSearchResult exact, RangeSearchResult approximate)
    {
        ArgumentNullException.ThrowIfNull(exact);
        ArgumentNullException.ThrowIfNull(approximate);
        if (exact.QueryCount != approximate.QueryCount)
            throw new ArgumentException($"exact covers {exact.QueryCount} queries but approximate {approximate.QueryCount}.", nameof(approximate));
        if (exact.TotalCount == 0) return 1.0;
        long hits = 0;
        var seen = new HashSet<long>();
        for (int i = 0; i < exact.QueryCount; i++)
        {
            seen.Clear();
            foreach (long id in approximate.IdsOf(i)) seen.Add(id);
            foreach (long id in exact.IdsOf(i)) if (seen.Contains(id)) hits++;
        }
        return hits / (double)exact.TotalCount;
    }

    /// <summary>Builds a result from per-query lists, sorting each best first (ties by id).</summary>
    internal static RangeSearchResult FromLists(Metric metric, float radius, List<(float Distance, long Id)>[] lists)
    {
        var offsets = new long[lists.Length + 1];
        for (int i = 0; i < lists.Length; i++) offsets[i + 1] = offsets[i] + lists[i].Count;
        if (offsets[^1] > Array.MaxLength)
            throw new InvalidOperationException($"The range search found {offsets[^1]} results, more than one array holds; lower the radius or split the queries.");
        var ids = new long[offsets[^1]];
        var distances = new float[offsets[^1]];
        bool similarity = metric.IsSimilarity();
        for (int i = 0; i < lists.Length; i++)
        {
            var list = lists[i];
            list.Sort((a, b) =>
            {
                int c = similarity ? b.Distance.CompareTo(a.Distance) : a.Distance.CompareTo(b.Distance);
                return c != 0 ? c : a.Id.CompareTo(b.Id);
            });
            int o = (int)offsets[i];
            for (int j = 0; j < list.Count; j++)
            {
                ids[o + j] = list[j].Id;
                distances[o + j] = list[j].Distance;
            }
        }
        return new RangeSearchResult(metric, radius, offsets, ids, distances);
    }

    /// <summary>
    /// The generic range search every index gets: a k-NN search whose k doubles (from 32) for the queries whose k-th
    /// result is still inside the radius, until it is outside, the index returns fewer than k results, or k reaches the
    /// index count. Exact on an exact index; on an approximate index it returns what the approximate top-k search
    /// sees inside the radius (IVF: the probed lists once k covers them; HNSW: ef grows with k).
    /// </summary>
    internal static RangeSearchResult ByGrowingK(IVectorIndex index, ReadOnlySpan<float> queries, float radius,
        SearchParameters? parameters)
    {
        CheckRadius(index.Metric, radius);
        int d = index.Dimension;
        int nq = Guard.Rows(queries, d, nameof(queries));
        Guard.Finite(queries, d, nameof(queries));
        parameters?.Validate();
        var lists = new List<(float, long)>[nq];
        for (int i = 0; i < nq; i++) lists[i] = new List<(float, long)>();
        long count = index.Count;
        if (nq == 0 || count == 0) return FromLists(index.Metric, radius, lists);

        var pending = Enumerable.Range(0, nq).ToArray();
        int k = (int)Math.Min(count, 32);
        float[] q = queries.ToArray();
        while (pending.Length > 0)
        {
            // Bound the buffers: queries go through in slices of at most ~4M results.
            int slice = Math.Max(1, (1 << 22) / k);
            var next = new List<int>();
            for (int s0 = 0; s0 < pending.Length; s0 += slice)
            {
                int sn = Math.Min(slice, pending.Length - s0);
                var batch = new float[sn * d];
                for (int i = 0; i < sn; i++) q.AsSpan(pending[s0 + i] * d, d).CopyTo(batch.AsSpan(i * d, d));
                var dist = new float[sn * k];
                var labels = new long[sn * k];
                index.Search(batch, k, dist, labels, parameters);
                for (int i = 0; i < sn; i++)
                {
                    int qi = pending[s0 + i];
                    var row = labels.AsSpan(i * k, k);
                    var rowD = dist.AsSpan(i * k, k);
                    bool full = row[k - 1] >= 0;
                    if (full && Within(index.Metric, rowD[k - 1], radius) && k < count)
                    {
                        next.Add(qi);
                        continue;
                    }
                    for (int j = 0; j < k && row[j] >= 0; j++)
                        if (Within(index.Metric, rowD[j], radius)) lists[qi].Add((rowD[j], row[j]));
                }
            }
            pending = next.ToArray();
            k = (int)Math.Min(Math.Min(count, (long)k * 2), Array.MaxLength);
        }
        return FromLists(index.Metric, radius, lists);
    }
}
