namespace Engine;

/// <summary>
/// Progress of a long library operation (train, add, build, mine), reported through <see cref="IProgress{T}"/>
/// parameters: the stage running now and how far it is.
/// </summary>
/// <param name="Stage">What runs now, e.g. <c>train</c>, <c>k-means</c>, <c>pq codebooks</c>, <c>add</c>, <c>maintain</c>, <c>mine</c>.</param>
/// <param name="Done">Units of the stage done (iterations, vectors, anchors).</param>
/// <param name="Total">Units of the stage in all (at least <paramref name="Done"/>; 0 when unknown).</param>
/// <remarks>Reports arrive on the thread doing the work, in order; an <see cref="IProgress{T}"/> must be cheap and must not throw.</remarks>
public readonly record struct BuildProgress(string Stage, long Done, long Total)
{
    /// <summary>Done / Total in [0, 1] (0 when the total is unknown).</summary>
    public double Fraction => Total <= 0 ? 0 : Math.Clamp((double)Done / Total, 0, 1);

    /// <summary>Rows per <c>Add</c> call when an add reports progress: about 1/50 of the rows, at least 4096.</summary>
    public static int AddBatch(int rows) => Math.Max(4096, (rows + 49) / 50);

    // The batches of a progress-reporting add (rows already checked by the caller): one plain Add per batch of
    // AddBatch(n) rows, a report before the first and after each.
    internal static void AddInBatches(IVectorIndex index, ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids, IProgress<BuildProgress> progress)
    {
        int d = index.Dimension, n = ids.Length;
        int batch = AddBatch(n);
        progress.Report(new BuildProgress("add", 0, n));
        for (int start = 0; start < n; start += batch)
        {
            int rows = Math.Min(batch, n - start);
            index.Add(vectors.Slice(start * d, rows * d), ids.Slice(start, rows));
            progress.Report(new BuildProgress("add", start + rows, n));
        }
        // Storage that grew batch by batch (doubling) gives back what the finished load does not use.
        if (n > batch && index is ITrimmableIndex trimmable) trimmable.TrimExcess();
    }
}

/// <summary>An index whose storage grows geometrically as rows arrive and can give back the unused part.</summary>
internal interface ITrimmableIndex
{
    /// <summary>Releases storage capacity beyond the rows held; returns the bytes released.</summary>
    long TrimExcess();
}
