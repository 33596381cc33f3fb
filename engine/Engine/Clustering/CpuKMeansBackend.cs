namespace Engine.Clustering;

/// <summary>
/// The in-process <see cref="IKMeansBackend"/>: blocked SIMD distance kernels for the assignment and a
/// row-ordered double-precision update, exactly the steps <see cref="KMeans"/> runs when no backend is given
/// (so <c>Backend = new CpuKMeansBackend()</c> gives bit-identical centroids to <c>Backend = null</c>).
/// </summary>
/// <remarks>Thread safety: the backend is immutable; each session is for one thread at a time.</remarks>
public sealed class CpuKMeansBackend : IKMeansBackend
{
    private readonly int _threads;

    /// <summary>Creates the backend.</summary>
    /// <param name="threads">Worker threads per step; 0 means all processors. Results do not depend on it.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threads"/> is negative.</exception>
    public CpuKMeansBackend(int threads = 0)
    {
        if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, "threads must be >= 0 (0 = all processors).");
        _threads = threads;
    }

    /// <inheritdoc />
    public string Name => "cpu";

    /// <inheritdoc />
    /// <remarks>Copies the selected rows into one pinned array owned by the session.</remarks>
    public IKMeansSession Open(ReadOnlySpan<float> vectors, int dimension, ReadOnlySpan<int> rows)
    {
        int count = KMeansSessionGuard.Points(vectors, dimension, rows);
        float[] copy = GC.AllocateUninitializedArray<float>(checked(count * dimension), pinned: true);
        if (rows.IsEmpty) vectors.CopyTo(copy);
        else
            for (int i = 0; i < count; i++) vectors.Slice(rows[i] * dimension, dimension).CopyTo(copy.AsSpan(i * dimension, dimension));
        unsafe
        {
            // A pinned array never moves, so the pointer stays valid for the session's lifetime (the session holds it).
            fixed (float* p = copy)
                return new CpuKMeansSession(new RowSource((nint)p, count, dimension), null, _threads > 0 ? _threads : Environment.ProcessorCount, copy);
        }
    }
}

/// <summary>
/// CPU session over rows of a <see cref="RowSource"/>: either rows of a caller span that stays pinned for the
/// session's lifetime (<see cref="KMeans.Train(ReadOnlySpan{float}, int, KMeansOptions, int[])"/>), or an owned
/// pinned copy.
/// </summary>
internal sealed class CpuKMeansSession : IKMeansSession
{
    private readonly RowSource _data;
    private readonly int[]? _rows;
    private readonly int _threads;
    private readonly int[] _assign;
    private readonly float[] _dist;
#pragma warning disable IDE0052 // keeps the pinned copy alive while _data points into it
    private readonly float[]? _owned;
#pragma warning restore IDE0052

    /// <param name="data">Rows; must stay valid while the session is used.</param>
    /// <param name="rows">Row numbers of the points in order, or null for every row of <paramref name="data"/>.</param>
    /// <param name="threads">Worker threads (≥ 1).</param>
    /// <param name="owned">The pinned array <paramref name="data"/> points into, when the session owns it.</param>
    public CpuKMeansSession(RowSource data, int[]? rows, int threads, float[]? owned = null)
    {
        _data = data;
        _rows = rows;
        _threads = threads;
        _owned = owned;
        Points = rows?.Length ?? data.Rows;
        _assign = new int[Points];
        _dist = new float[Points];
    }

    public int Points { get; }

    public int Dimension => _data.Dimension;

    public void Step(ReadOnlySpan<float> centroids, ReadOnlySpan<float> penalty, Span<float> newCentroids,
        Span<int> assignments, Span<float> distances, Span<int> counts)
    {
        int k = KMeansSessionGuard.Check(this, centroids, penalty, newCentroids.Length, assignments.Length, distances.Length, counts.Length, step: true);
        int d = Dimension;
        float[] cur = centroids.ToArray();
        KMeans.AssignRows(_data, _rows, cur, k, _assign, _dist, _threads, penalty.IsEmpty ? null : penalty.ToArray(), Points);
        // Update overwrites non-empty clusters only: empty ones keep the old centroid.
        var counted = new int[k];
        KMeans.Update(_data, _rows, _assign, cur, k, counted, _threads, Points);
        cur.CopyTo(newCentroids[..(k * d)]);
        counted.CopyTo(counts);
        _assign.CopyTo(assignments);
        _dist.CopyTo(distances);
    }

    public void Assign(ReadOnlySpan<float> centroids, Span<int> assignments, Span<float> distances)
    {
        int k = KMeansSessionGuard.Check(this, centroids, [], 0, assignments.Length, distances.Length, 0, step: false);
        KMeans.AssignRows(_data, _rows, centroids.ToArray(), k, _assign, _dist, _threads, null, Points);
        _assign.CopyTo(assignments);
        _dist.CopyTo(distances);
    }

    public void Dispose() { }
}
