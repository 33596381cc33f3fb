using Engine.Index.Spann;

namespace Engine.Index;

/// <summary>One call from rows to a searchable index: train, add, and for SPANN maintenance and a checkpoint.</summary>
public static class IndexBuild
{
    /// <summary>
    /// Trains <paramref name="index"/> on <paramref name="vectors"/> when it is not trained yet, adds them with
    /// <paramref name="ids"/>, and for a <see cref="SpannIndex"/> runs <see cref="SpannIndex.Maintain()"/> and (when it is on disk)
    /// <see cref="SpannIndex.Checkpoint"/>, so the result searches at its steady-state quality.
    /// </summary>
    /// <param name="index">An empty index.</param>
    /// <param name="vectors">Rows, n × d row-major.</param>
    /// <param name="ids">One non-negative id per row.</param>
    /// <param name="progress">Receives the stages' reports (<c>train</c>/<c>k-means</c>/…, <c>add</c>, <c>maintain</c>, <c>checkpoint</c>); null for none.</param>
    /// <exception cref="ArgumentException">Wrong shapes, non-finite values, negative ids, too few rows to train.</exception>
    /// <exception cref="InvalidOperationException">The index already holds vectors.</exception>
    public static void Build(IVectorIndex index, ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids, IProgress<BuildProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(index);
        if (index.Count > 0) throw new InvalidOperationException($"Build needs an empty index; '{index.Description}' holds {index.Count} vectors.");
        if (!index.IsTrained) index.Train(vectors, progress);
        index.Add(vectors, ids, progress);
        if (index is SpannIndex spann)
        {
            spann.Maintain(progress);
            if (spann.Directory is not null)
            {
                progress?.Report(new BuildProgress("checkpoint", 0, 1));
                spann.Checkpoint();
                progress?.Report(new BuildProgress("checkpoint", 1, 1));
            }
        }
    }

    /// <summary><see cref="Build(IVectorIndex, ReadOnlySpan{float}, ReadOnlySpan{long}, IProgress{BuildProgress})"/> with ids 0..n-1 (row numbers).</summary>
    public static void Build(IVectorIndex index, ReadOnlySpan<float> vectors, IProgress<BuildProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(index);
        int n = Guard.Rows(vectors, index.Dimension, nameof(vectors));
        var ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = i;
        Build(index, vectors, ids, progress);
    }
}
