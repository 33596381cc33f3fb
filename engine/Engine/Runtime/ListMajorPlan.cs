namespace Engine;

/// <summary>
/// The work plan of a list-major join (the IVF-Flat batch join, the k-NN self-join): (query, probe) slots grouped by
/// the list they probe, cut into work items of at most a block of slots of one list, so every list is read once per
/// block of queries instead of once per query.
/// </summary>
internal static class ListMajorPlan
{
    /// <summary>
    /// Groups slots (index s = query · probes + probe, <paramref name="probeLists"/>[s] = its list, negative = none)
    /// by list. Returns the slots in list order and the work items (list, first, end) over them, skipping lists
    /// <paramref name="isEmpty"/> says hold no rows.
    /// </summary>
    public static (int[] Slots, List<(int List, int From, int To)> Items) Build(ReadOnlySpan<long> probeLists, int lists, int block,
        Func<int, bool> isEmpty)
    {
        var byList = new int[lists + 1];
        foreach (long l in probeLists) if (l >= 0) byList[l + 1]++;
        for (int l = 0; l < lists; l++) byList[l + 1] += byList[l];
        var slots = new int[byList[lists]];
        var at = byList[..lists];
        for (int s = 0; s < probeLists.Length; s++) if (probeLists[s] >= 0) slots[at[probeLists[s]]++] = s;
        var items = new List<(int List, int From, int To)>();
        for (int l = 0; l < lists; l++)
            if (!isEmpty(l))
                for (int f = byList[l]; f < byList[l + 1]; f += block) items.Add((l, f, Math.Min(byList[l + 1], f + block)));
        return (slots, items);
    }

    /// <summary>
    /// Merges one query's per-probe results (run j: <paramref name="counts"/>[j] entries at j·k of the key and id
    /// spans; rows live in one list, so no id repeats) into its best k, sorted, padded with (+∞, −1). Returns how many
    /// are real.
    /// </summary>
    public static int Merge(ReadOnlySpan<float> runKeys, ReadOnlySpan<long> runIds, ReadOnlySpan<int> counts, int k,
        Span<float> keys, Span<long> ids)
    {
        var heap = new Distance.TopKHeap(keys, ids);
        for (int j = 0; j < counts.Length; j++)
            for (int t = 0; t < counts[j]; t++)
            {
                float key = runKeys[j * k + t];
                if (key <= heap.Threshold) heap.Push(key, runIds[j * k + t]);
            }
        return heap.SortAndPad(float.PositiveInfinity);
    }
}
