namespace Engine.Mining.Training;

/// <summary>
/// Builds the one known positive per item that <see cref="ContrastiveTrainer"/> trains on. A one-positive setting
/// needs a <em>strong</em> positive: the margin guards (NV-Retriever TopK-PercPos) compare every candidate with
/// the positive's score, and a weak positive (a random item of the class) scores below most of the anchor's
/// neighbours, so the guard drops them all.
/// </summary>
public static class DesignatedPositives
{
    /// <summary>
    /// For every row, its nearest other row with the same label in the input space (an exact search per label);
    /// −1 for a row that is alone in its label.
    /// </summary>
    /// <param name="x">n × d rows.</param>
    /// <param name="dimension">d.</param>
    /// <param name="labels">n labels.</param>
    /// <param name="createIndex">Creates an empty exact index of a dimension (e.g. Flat, L2).</param>
    /// <param name="threads">Search threads (0 = all cores).</param>
    /// <exception cref="ArgumentException">Sizes disagree.</exception>
    public static long[] NearestWithSameLabel(float[] x, int dimension, int[] labels, Func<int, IVectorIndex> createIndex, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(createIndex);
        int n = Guard.Rows(x, dimension, nameof(x));
        if (labels.Length != n) throw new ArgumentException($"labels has {labels.Length} entries for {n} rows.", nameof(labels));
        var positive = new long[n];
        Array.Fill(positive, -1L);
        foreach (var group in Enumerable.Range(0, n).GroupBy(i => labels[i]))
        {
            int[] members = group.ToArray();
            if (members.Length < 2) continue;
            var rows = new float[checked(members.Length * dimension)];
            var ids = new long[members.Length];
            for (int i = 0; i < members.Length; i++)
            {
                x.AsSpan(members[i] * dimension, dimension).CopyTo(rows.AsSpan(i * dimension, dimension));
                ids[i] = members[i];
            }
            using var index = createIndex(dimension);
            index.Train(rows);
            index.Add(rows, ids);
            var dist = new float[members.Length * 2];
            var found = new long[members.Length * 2];
            index.Search(rows, 2, dist, found, new SearchParameters { Threads = threads });
            for (int i = 0; i < members.Length; i++)
                positive[members[i]] = found[2 * i] != members[i] ? found[2 * i] : found[2 * i + 1];
        }
        return positive;
    }
}
