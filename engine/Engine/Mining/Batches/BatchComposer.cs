namespace Engine.Mining.Batches;

/// <summary>One training example for batch composition: an anchor and the corpus ids that are its positives.</summary>
/// <param name="Anchor">Anchor id.</param>
/// <param name="Positives">Positive corpus ids (the first one is the in-batch target).</param>
public sealed record TrainingExample(long Anchor, long[] Positives);

/// <summary>
/// A batch: example indices plus the in-batch false-negative mask built from ids (never from embeddings, which
/// dropout makes unequal for equal texts). <c>Mask[i * Size + j]</c> is true when example j's target must not be
/// used as a negative for example i: j ≠ i and j's target is i's target, one of i's positives, or i's anchor.
/// </summary>
public sealed class Batch
{
    internal Batch(int[] examples, bool[] mask) { Examples = examples; Mask = mask; }

    /// <summary>Indices into the example list.</summary>
    public IReadOnlyList<int> Examples { get; }

    /// <summary>Row-major Size × Size false-negative mask.</summary>
    public IReadOnlyList<bool> Mask { get; }

    /// <summary>Number of examples.</summary>
    public int Size => Examples.Count;

    /// <summary>True when example j is a false negative for example i.</summary>
    public bool IsFalseNegative(int i, int j) => Mask[i * Size + j];
}

/// <summary>
/// Builds training batches: random, cluster-homogeneous (TAS-B / NGAME style; the cluster of each corpus item can
/// come from an IVF index's lists) and duplicate-free (sentence-transformers <c>NoDuplicatesBatchSampler</c>).
/// Every shuffle is keyed by (seed, epoch), so batches are reproducible.
/// </summary>
public static class BatchComposer
{
    /// <summary>Random batches of <paramref name="batchSize"/> (the last may be smaller).</summary>
    public static IEnumerable<Batch> Random(IReadOnlyList<TrainingExample> examples, int batchSize, ulong seed, int epoch = 0)
    {
        Check(examples, batchSize);
        int[] order = Shuffled(Enumerable.Range(0, examples.Count).ToArray(), seed, epoch, 0);
        for (int s = 0; s < order.Length; s += batchSize)
            yield return Make(examples, order.AsSpan(s, Math.Min(batchSize, order.Length - s)).ToArray());
    }

    /// <summary>
    /// Cluster-homogeneous batches: examples are grouped by the cluster of their first positive
    /// (<paramref name="clusterOf"/>[corpus id]), shuffled within clusters, cut into batches inside each cluster
    /// (a cluster's remainder is merged with the next cluster's remainder), and the batch order is shuffled.
    /// </summary>
    /// <exception cref="ArgumentException">A positive id outside <paramref name="clusterOf"/>.</exception>
    public static IEnumerable<Batch> ClusterHomogeneous(IReadOnlyList<TrainingExample> examples, int[] clusterOf,
        int batchSize, ulong seed, int epoch = 0)
    {
        Check(examples, batchSize);
        ArgumentNullException.ThrowIfNull(clusterOf);
        var groups = new SortedDictionary<int, List<int>>();
        for (int i = 0; i < examples.Count; i++)
        {
            long p = examples[i].Positives[0];
            if (p < 0 || p >= clusterOf.Length)
                throw new ArgumentException($"Example {i}: positive id {p} has no cluster assignment (clusterOf has {clusterOf.Length} entries).", nameof(clusterOf));
            int c = clusterOf[p];
            if (!groups.TryGetValue(c, out var list)) groups[c] = list = new List<int>();
            list.Add(i);
        }
        var batches = new List<int[]>();
        var remainder = new List<int>();
        foreach (var (cluster, members) in groups)
        {
            int[] m = Shuffled(members.ToArray(), seed, epoch, (ulong)cluster + 1);
            int full = m.Length / batchSize * batchSize;
            for (int s = 0; s < full; s += batchSize) batches.Add(m[s..(s + batchSize)]);
            remainder.AddRange(m[full..]);
            while (remainder.Count >= batchSize) { batches.Add(remainder.GetRange(0, batchSize).ToArray()); remainder.RemoveRange(0, batchSize); }
        }
        if (remainder.Count > 0) batches.Add(remainder.ToArray());
        int[] order = Shuffled(Enumerable.Range(0, batches.Count).ToArray(), seed, epoch, ulong.MaxValue);
        foreach (int b in order) yield return Make(examples, batches[b]);
    }

    /// <summary>
    /// Batches in which no corpus id (anchor or positive) appears twice: examples are taken in shuffled order and
    /// one that collides with the batch so far waits for a later batch.
    /// </summary>
    public static IEnumerable<Batch> NoDuplicates(IReadOnlyList<TrainingExample> examples, int batchSize, ulong seed, int epoch = 0)
    {
        Check(examples, batchSize);
        var pending = new List<int>(Shuffled(Enumerable.Range(0, examples.Count).ToArray(), seed, epoch, 0));
        while (pending.Count > 0)
        {
            var batch = new List<int>(batchSize);
            var seen = new HashSet<long>();
            var rest = new List<int>();
            foreach (int i in pending)
            {
                var e = examples[i];
                if (batch.Count < batchSize && !seen.Contains(e.Anchor) && !e.Positives.Any(seen.Contains))
                {
                    batch.Add(i);
                    seen.Add(e.Anchor);
                    foreach (long p in e.Positives) seen.Add(p);
                }
                else rest.Add(i);
            }
            pending = rest;
            yield return Make(examples, batch.ToArray());
        }
    }

    /// <summary>The false-negative mask for the given example indices (see <see cref="Batch"/>).</summary>
    public static bool[] FalseNegativeMask(IReadOnlyList<TrainingExample> examples, ReadOnlySpan<int> members)
    {
        int b = members.Length;
        var mask = new bool[b * b];
        for (int i = 0; i < b; i++)
        {
            var ei = examples[members[i]];
            for (int j = 0; j < b; j++)
            {
                if (i == j) continue;
                long target = examples[members[j]].Positives[0];
                mask[i * b + j] = target == ei.Positives[0] || target == ei.Anchor || Array.IndexOf(ei.Positives, target) >= 0;
            }
        }
        return mask;
    }

    private static Batch Make(IReadOnlyList<TrainingExample> examples, int[] members) =>
        new(members, FalseNegativeMask(examples, members));

    private static int[] Shuffled(int[] items, ulong seed, int epoch, ulong stream)
    {
        // Fisher–Yates driven by the counter RNG keyed by (seed, epoch·stream, step).
        ulong key = ((ulong)(uint)epoch << 32) ^ stream * 0x9E3779B97F4A7C15UL;
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = (int)(CounterRng.Hash(seed, key, (ulong)i) % (ulong)(i + 1));
            (items[i], items[j]) = (items[j], items[i]);
        }
        return items;
    }

    private static void Check(IReadOnlyList<TrainingExample> examples, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (batchSize <= 0) throw new ArgumentException($"batchSize must be at least 1 (got {batchSize}).", nameof(batchSize));
        for (int i = 0; i < examples.Count; i++)
            if (examples[i]?.Positives is not { Length: > 0 })
                throw new ArgumentException($"Example {i} has no positives.", nameof(examples));
    }
}
