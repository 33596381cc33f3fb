namespace Engine.Clustering;

/// <summary>
/// Where the Lloyd steps of k-means run. Training code (<see cref="KMeans"/>, IVF coarse quantizers, SPANN's
/// balanced clustering) keeps its own initialisation, empty-cluster repair and balancing on the CPU and hands
/// only the assignment + centroid update — the O(n·k·d) part — to a backend. <see cref="CpuKMeansBackend"/> is
/// the built-in one; <c>Engine.Gpu</c> provides one on an ILGPU accelerator, so the core never references ILGPU.
/// </summary>
/// <remarks>
/// <para>Contract of a step (every implementation must follow it; results may differ only by float rounding):
/// point i goes to <c>argmin_c ‖x_i − c‖² + penalty[c]</c> (ties to the lower c); its reported distance is
/// <c>‖x_i − c‖²</c> without the penalty; each new centroid is the mean of its points; a cluster without
/// points keeps its old centroid and reports count 0.</para>
/// <para>Thread safety: a backend may be shared by any number of threads; a session is used by one thread.</para>
/// </remarks>
public interface IKMeansBackend
{
    /// <summary>Short name of where steps run, e.g. <c>cpu</c>, <c>gpu:cuda</c> or <c>gpu:ilgpu-cpu</c>.</summary>
    string Name { get; }

    /// <summary>
    /// Prepares a series of steps over a fixed point set: rows <paramref name="rows"/> of <paramref name="vectors"/>
    /// (n × d row-major), in that order, or every row when <paramref name="rows"/> is empty. The backend copies
    /// what it needs; the caller's span may change or go away after the call.
    /// </summary>
    /// <exception cref="ArgumentException">Bad dimension, a row number out of range, or no points.</exception>
    IKMeansSession Open(ReadOnlySpan<float> vectors, int dimension, ReadOnlySpan<int> rows);
}

/// <summary>A point set held by an <see cref="IKMeansBackend"/> for repeated Lloyd steps. Dispose to free it.</summary>
public interface IKMeansSession : IDisposable
{
    /// <summary>Number of points (n), in the order given to <see cref="IKMeansBackend.Open"/>.</summary>
    int Points { get; }

    /// <summary>Vector dimension (d).</summary>
    int Dimension { get; }

    /// <summary>
    /// One Lloyd step against <paramref name="centroids"/> (k × d): writes <paramref name="assignments"/> and
    /// <paramref name="distances"/> (n each), the updated centroids (k × d) and the cluster sizes (k).
    /// </summary>
    /// <param name="centroids">Current centroids, k × d row-major.</param>
    /// <param name="penalty">Per-cluster cost added to the squared distance when choosing (length k), or empty for none.</param>
    /// <param name="newCentroids">Receives the means (k × d); may not overlap <paramref name="centroids"/>.</param>
    /// <param name="assignments">Receives the chosen cluster of each point (n).</param>
    /// <param name="distances">Receives the squared distance to the chosen centroid, without the penalty (n).</param>
    /// <param name="counts">Receives the number of points per cluster (k).</param>
    /// <exception cref="ArgumentException">Shapes do not match or a buffer is too short.</exception>
    void Step(ReadOnlySpan<float> centroids, ReadOnlySpan<float> penalty, Span<float> newCentroids,
        Span<int> assignments, Span<float> distances, Span<int> counts);

    /// <summary>Assignment only: nearest centroid (ties to the lower index) and its squared distance for every point.</summary>
    /// <exception cref="ArgumentException">Shapes do not match or a buffer is too short.</exception>
    void Assign(ReadOnlySpan<float> centroids, Span<int> assignments, Span<float> distances);
}

/// <summary>Argument checks shared by <see cref="IKMeansSession"/> implementations.</summary>
internal static class KMeansSessionGuard
{
    /// <summary>
    /// Validates the buffers of a step (or of an assignment when <paramref name="step"/> is false) and returns k.
    /// </summary>
    /// <exception cref="ArgumentException">A shape does not match; the message names the buffer.</exception>
    public static int Check(IKMeansSession session, ReadOnlySpan<float> centroids, ReadOnlySpan<float> penalty,
        int newCentroids, int assignments, int distances, int counts, bool step)
    {
        ArgumentNullException.ThrowIfNull(session);
        int d = session.Dimension, n = session.Points;
        int k = Guard.Rows(centroids, d, nameof(centroids));
        if (k == 0) throw new ArgumentException("centroids is empty: at least one centroid is needed.", nameof(centroids));
        if (assignments < n) throw new ArgumentException($"assignments holds {assignments} entries but the session has {n} points.", nameof(assignments));
        if (distances < n) throw new ArgumentException($"distances holds {distances} entries but the session has {n} points.", nameof(distances));
        if (!step) return k;
        if (penalty.Length != 0 && penalty.Length != k) throw new ArgumentException($"penalty holds {penalty.Length} entries; expected 0 or k={k}.", nameof(penalty));
        if (newCentroids < (long)k * d) throw new ArgumentException($"newCentroids holds {newCentroids} floats but {k} centroids × d={d} need {(long)k * d}.", nameof(newCentroids));
        if (counts < k) throw new ArgumentException($"counts holds {counts} entries but there are {k} centroids.", nameof(counts));
        return k;
    }

    /// <summary>Checks <paramref name="rows"/> against n = rows of <paramref name="vectors"/> and returns the point count.</summary>
    /// <exception cref="ArgumentException">Bad dimension, a row out of range, or no points.</exception>
    public static int Points(ReadOnlySpan<float> vectors, int dimension, ReadOnlySpan<int> rows)
    {
        int n = Guard.Rows(vectors, dimension, nameof(vectors));
        foreach (int r in rows)
            if ((uint)r >= (uint)n) throw new ArgumentException($"Row {r} is outside the {n} rows of vectors.", nameof(rows));
        int count = rows.IsEmpty ? n : rows.Length;
        if (count == 0) throw new ArgumentException("A k-means session needs at least one point.", nameof(vectors));
        return count;
    }
}
