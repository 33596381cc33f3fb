namespace Engine;

/// <summary>
/// The one contract every index implements (exact, IVF, PQ, SPANN), modelled on faiss' <c>Index</c>.
/// </summary>
/// <remarks>
/// <para>Layout: every batch of vectors is a row-major span of <c>n × Dimension</c> floats, element
/// <c>x[i * d + j]</c>. Search results are row-major <c>nq × k</c> spans owned by the caller; rows with fewer
/// than k results are padded with label -1 and <see cref="MetricExtensions.MissingDistance"/>.</para>
/// <para>Thread safety: <see cref="Search"/> may run concurrently from any number of threads. Mutations
/// (<see cref="Train(ReadOnlySpan{float})"/>, <see cref="Add(ReadOnlySpan{float}, ReadOnlySpan{long})"/>, <see cref="Remove"/>) are serialised by the index; whether a
/// search may run while a writer mutates is stated by each implementation.</para>
/// </remarks>
public interface IVectorIndex : IDisposable
{
    /// <summary>Vector dimension d.</summary>
    int Dimension { get; }

    /// <summary>The metric distances are reported in.</summary>
    Metric Metric { get; }

    /// <summary>Number of live (not removed) vectors.</summary>
    long Count { get; }

    /// <summary>True when the index can accept <see cref="Add(ReadOnlySpan{float}, ReadOnlySpan{long})"/> (always true for exact indexes).</summary>
    bool IsTrained { get; }

    /// <summary>The composition string that describes this index, e.g. <c>Flat</c> or <c>IVF1024,PQ32x4fs</c>.</summary>
    string Description { get; }

    /// <summary>Resident memory held by the index in bytes (vectors, codes, ids, centroids, side tables).</summary>
    long MemoryBytes { get; }

    /// <summary>Trains the index (clustering, codebooks) on <paramref name="vectors"/> (n × d row-major).</summary>
    void Train(ReadOnlySpan<float> vectors);

    /// <summary>Adds n vectors (n × d row-major) with caller-chosen non-negative ids (length n).</summary>
    void Add(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids);

    /// <summary>
    /// <see cref="Train(ReadOnlySpan{float})"/> that reports progress. Indexes whose training has stages (IVF:
    /// OPQ, coarse k-means iterations, PQ codebooks) report each; the default reports the start and the end.
    /// </summary>
    /// <param name="vectors">Training vectors, n × d row-major.</param>
    /// <param name="progress">Receives <see cref="BuildProgress"/> reports on the training thread; null for none.</param>
    void Train(ReadOnlySpan<float> vectors, IProgress<BuildProgress>? progress)
    {
        progress?.Report(new BuildProgress("train", 0, 1));
        Train(vectors);
        progress?.Report(new BuildProgress("train", 1, 1));
    }

    /// <summary>
    /// <see cref="Add(ReadOnlySpan{float}, ReadOnlySpan{long})"/> that reports progress: the rows go in batches of
    /// <see cref="BuildProgress.AddBatch"/>, each followed by a report (<c>add</c>, rows added, n). Shapes, values and
    /// ids are checked for all rows before the first batch; an index-level failure in a later batch (a duplicate
    /// id, say) leaves the earlier batches added, as separate <c>Add</c> calls would. With a null
    /// <paramref name="progress"/> this is one plain <c>Add</c>.
    /// </summary>
    /// <exception cref="ArgumentException">Wrong shapes, non-finite values or a negative id.</exception>
    void Add(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids, IProgress<BuildProgress>? progress)
    {
        if (progress is null)
        {
            Add(vectors, ids);
            return;
        }
        int d = Dimension;
        int n = Guard.Rows(vectors, d, nameof(vectors));
        if (ids.Length != n) throw new ArgumentException($"ids holds {ids.Length} entries for {n} vectors.", nameof(ids));
        Guard.Finite(vectors, d, nameof(vectors));
        for (int i = 0; i < n; i++)
            if (ids[i] < 0) throw new ArgumentException($"ids[{i}] = {ids[i]} is negative; ids must be >= 0.", nameof(ids));
        BuildProgress.AddInBatches(this, vectors, ids, progress);
    }

    /// <summary>
    /// Searches nq queries (nq × d row-major). Writes nq × k distances and labels, padding missing results
    /// with label -1.
    /// </summary>
    void Search(ReadOnlySpan<float> queries, int k, Span<float> distances, Span<long> labels,
        SearchParameters? parameters = null);

    /// <summary>
    /// All stored vectors within <paramref name="radius"/> of each query: squared L2 distance ≤ r, or inner-product /
    /// cosine similarity ≥ r. Results are variable-length per query (<see cref="RangeSearchResult"/>, best first).
    /// </summary>
    /// <remarks>Exact on <c>Flat</c> (one scan). IVF scans its probed lists once with the codec's list scanner
    /// (<c>IvfIndex.RangeSearch</c>). The default, used by the other approximate indexes, runs k-NN searches whose k
    /// doubles until the k-th result leaves the radius, so it returns what the index's approximate search reaches
    /// inside the radius (HNSW: the ef-bounded, ef ≥ k, walk). Recalls against Flat are measured in
    /// docs/beyond-negatives.md.</remarks>
    /// <param name="queries">nq × d row-major queries.</param>
    /// <param name="radius">Squared-distance bound (L2, ≥ 0) or similarity threshold (IP: any finite value; cosine: −1..1).</param>
    /// <param name="parameters">Per-call knobs of the index (probes, ef, filter, threads).</param>
    /// <exception cref="ArgumentOutOfRangeException">NaN/±∞ radius, negative L2 radius, cosine threshold outside [−1, 1].</exception>
    /// <exception cref="ArgumentException">Wrong query dimension or non-finite queries.</exception>
    RangeSearchResult RangeSearch(ReadOnlySpan<float> queries, float radius, SearchParameters? parameters = null) =>
        RangeSearchResult.ByGrowingK(this, queries, radius, parameters);

    /// <summary>Removes the given ids; ids that are not present are ignored. Returns how many were removed.</summary>
    int Remove(ReadOnlySpan<long> ids);

    /// <summary>Copies the stored (or decoded) vector with this id into <paramref name="destination"/>.</summary>
    /// <returns>False when the id is not present.</returns>
    bool TryReconstruct(long id, Span<float> destination);

    /// <summary>Writes the index to <paramref name="path"/> atomically (temp file, then rename).</summary>
    void Save(string path);
}
