namespace Engine.Mining.Output;

/// <summary>
/// sentence-transformers' text semantics for mining inputs: the corpus is de-duplicated by text (a copy of a text is
/// the same document, so it is indexed once and a copy of a positive is the positive) and queries with the same text
/// are one query (their positives pooled). What <c>minedex.mine_hard_negatives</c> does in Python and
/// <c>engine mine --query-texts / --corpus-texts</c> does in the CLI.
/// </summary>
public static class TextDeduplication
{
    /// <summary>For each row, the first row with the same text (ordinal comparison); equal to the row when its text
    /// is new.</summary>
    public static int[] CanonicalRows(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var first = new Dictionary<string, int>(StringComparer.Ordinal);
        var canonical = new int[texts.Count];
        for (int i = 0; i < texts.Count; i++)
        {
            var t = texts[i] ?? throw new ArgumentException($"Text {i} is null.", nameof(texts));
            if (!first.TryGetValue(t, out int row)) first[t] = row = i;
            canonical[i] = row;
        }
        return canonical;
    }

    /// <summary>
    /// Merges rows with the same text, in order of first appearance: each unique text keeps its first row, and the
    /// per-row id lists (positives, exclusions) of all its rows pooled in row order without repeats.
    /// </summary>
    /// <returns>The kept rows and, per kept row, each pooled list (same order as <paramref name="perRow"/>).</returns>
    /// <exception cref="ArgumentException">A list of another length than the texts, or a null text.</exception>
    public static (int[] Rows, long[][][] Pooled) MergeByText(IReadOnlyList<string> texts, params IReadOnlyList<long[]>?[] perRow)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(perRow);
        foreach (var lists in perRow)
            if (lists is not null && lists.Count != texts.Count)
                throw new ArgumentException($"{lists.Count} id lists for {texts.Count} texts.", nameof(perRow));
        var canonical = CanonicalRows(texts);
        var slot = new Dictionary<int, int>();
        var rows = new List<int>();
        for (int i = 0; i < canonical.Length; i++)
            if (canonical[i] == i) { slot[i] = rows.Count; rows.Add(i); }
        var pooled = new long[perRow.Length][][];
        for (int l = 0; l < perRow.Length; l++)
        {
            var acc = new List<long>[rows.Count];
            for (int s = 0; s < acc.Length; s++) acc[s] = [];
            if (perRow[l] is { } lists)
                for (int i = 0; i < canonical.Length; i++)
                    acc[slot[canonical[i]]].AddRange(lists[i] ?? []);
            pooled[l] = acc.Select(a => a.Distinct().ToArray()).ToArray();
        }
        return (rows.ToArray(), pooled);
    }
}
