namespace Engine.Bench;

/// <summary>The recall–QPS Pareto front: the settings no other setting beats on both recall and QPS.</summary>
public static class Pareto
{
    /// <summary>
    /// The rows on the front, by increasing recall (so by decreasing QPS). A row is dominated when another has
    /// recall at least as high and strictly more QPS, or the same QPS and strictly higher recall; of exact ties the
    /// first is kept.
    /// </summary>
    public static IReadOnlyList<BenchResult> Front(IEnumerable<BenchResult> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        // Best recall first; among equal recall the fastest first. Walking down, a row is on the front when it is
        // faster than everything with higher (or equal, already seen) recall.
        var sorted = rows.OrderByDescending(r => r.Recall).ThenByDescending(r => r.Qps).ToList();
        var front = new List<BenchResult>();
        double bestQps = double.NegativeInfinity;
        foreach (var r in sorted)
        {
            if (r.Qps > bestQps)
            {
                front.Add(r);
                bestQps = r.Qps;
            }
        }
        front.Reverse();
        return front;
    }
}
