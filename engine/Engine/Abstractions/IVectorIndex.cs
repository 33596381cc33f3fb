namespace Engine;

/// <summary>
/// The one contract every index implements (exact, IVF, PQ, SPANN), modelled on faiss' <c>Index</c>.
/// </summary>
/// <remarks>
/// <para>Layout: every batch of vectors is a row-major span of <c>n × Dimension</c> floats, element
/// <c>x[i * d + j]</c>. Search results are row-major <c>nq × k</c> spans owned by the caller; rows with fewer
/// than k results are padded with label -1 and <see cref="MetricExtensions.MissingDistance"/>.</para>
/// <para>Thread safety: <see cref="Search"/> may run concurrently from any number of threads. Mutations
/// (<see cref="Train"/>, <see cref="Add"/>, <see cref="Remove"/>) are serialised by the index; whether a
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

    /// <summary>True when the index can accept <see cref="Add"/> (always true for exact indexes).</summary>
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
    /// Searches nq queries (nq × d row-major). Writes nq × k distances and labels, padding missing results
    /// with label -1.
    /// </summary>
    void Search(ReadOnlySpan<float> queries, int k, Span<float> distances, Span<long> labels,
        SearchParameters? parameters = null);

    /// <summary>Removes the given ids; ids that are not present are ignored. Returns how many were removed.</summary>
    int Remove(ReadOnlySpan<long> ids);

    /// <summary>Copies the stored (or decoded) vector with this id into <paramref name="destination"/>.</summary>
    /// <returns>False when the id is not present.</returns>
    bool TryReconstruct(long id, Span<float> destination);

    /// <summary>Writes the index to <paramref name="path"/> atomically (temp file, then rename).</summary>
    void Save(string path);
}
