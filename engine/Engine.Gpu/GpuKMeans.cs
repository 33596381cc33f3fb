using System.Buffers;
using Engine.Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Gpu;

/// <summary>Outcome of one Lloyd step.</summary>
/// <param name="Inertia">Sum over points of the squared distance to the centroid they were assigned to (before the update).</param>
/// <param name="EmptyClusters">Clusters that received no point (their centroid is kept unchanged).</param>
public readonly record struct KMeansStepResult(double Inertia, int EmptyClusters);

/// <summary>Result of <see cref="GpuKMeans.Train"/>.</summary>
/// <param name="Centroids">clusters × d row-major.</param>
/// <param name="Assignments">Cluster of each point after the last step's assignment (n).</param>
/// <param name="Counts">Points per cluster in the last step (clusters).</param>
/// <param name="Inertia">Inertia of the last assignment.</param>
/// <param name="Iterations">Lloyd steps run.</param>
public sealed record GpuKMeansResult(float[] Centroids, int[] Assignments, int[] Counts, double Inertia, int Iterations);

/// <summary>
/// Lloyd k-means (L2) on the accelerator: nearest-centroid assignment and a deterministic centroid update
/// (fixed-order block sums, no float atomics; see <see cref="KMeansKernels"/>). A step gives the same kind of
/// result as a plain CPU Lloyd step: each point goes to its nearest centroid (ties to the lower index), each
/// centroid becomes the mean of its points, and empty clusters keep their centroid.
/// </summary>
/// <remarks>Thread safety: calls are serialised on the context's stream.</remarks>
public sealed class GpuKMeans
{
    private readonly GpuContext _ctx;

    /// <summary>Creates the runner on <paramref name="context"/>.</summary>
    public GpuKMeans(GpuContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _ctx = context;
    }

    /// <summary>
    /// One Lloyd step of <paramref name="points"/> (n × d) against <paramref name="centroids"/> (c × d): writes the
    /// updated centroids (c × d), the assignment of each point (n) and the count of each cluster (c).
    /// </summary>
    /// <exception cref="ArgumentException">Shapes do not match, non-finite values, or output spans are too short.</exception>
    public KMeansStepResult Step(ReadOnlySpan<float> points, int d, ReadOnlySpan<float> centroids,
        Span<float> newCentroids, Span<int> assignments, Span<int> counts)
    {
        int n = Guard.Rows(points, d, nameof(points));
        int c = Guard.Rows(centroids, d, nameof(centroids));
        CheckStep(n, c, d, newCentroids.Length, assignments.Length, counts.Length);
        Guard.Finite(points, d, nameof(points));
        Guard.Finite(centroids, d, nameof(centroids));
        if (n == 0) { centroids.CopyTo(newCentroids); counts[..c].Clear(); return new(0, c); }
        lock (_ctx.Gate)
        {
            _ctx.ThrowIfDisposed();
            var p = _ctx.Scratch<float>("km.points", (long)n * d);
            var cur = _ctx.Scratch<float>("km.centA", (long)c * d);
            var next = _ctx.Scratch<float>("km.centB", (long)c * d);
            _ctx.Upload(p, points);
            _ctx.Upload(cur, centroids);
            var r = StepOnDevice(p, cur, next, n, c, d, assignments, counts);
            _ctx.Download(next, newCentroids[..(c * d)]);
            return r;
        }
    }

    /// <summary>
    /// Trains <paramref name="clusters"/> centroids on <paramref name="points"/> (n × d): seeds with distinct
    /// points drawn with <paramref name="seed"/>, then runs <paramref name="iterations"/> Lloyd steps on the device.
    /// </summary>
    /// <exception cref="ArgumentException">Fewer points than clusters, bad shapes or non-finite values.</exception>
    public GpuKMeansResult Train(ReadOnlySpan<float> points, int d, int clusters, int iterations = 20, int seed = 0)
    {
        int n = Guard.Rows(points, d, nameof(points));
        if (clusters <= 0) throw new ArgumentOutOfRangeException(nameof(clusters), clusters, "clusters must be at least 1.");
        if (iterations <= 0) throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "iterations must be at least 1.");
        if (n < clusters) throw new ArgumentException($"k-means needs at least as many points as clusters: got {n} points for {clusters} clusters.", nameof(points));
        Guard.Finite(points, d, nameof(points));

        var centroids = new float[clusters * d];
        var rng = new Random(seed);
        int[] order = ArrayPool<int>.Shared.Rent(n);
        try
        {
            for (int i = 0; i < n; i++) order[i] = i;
            for (int i = 0; i < clusters; i++)
            {
                int j = rng.Next(i, n);
                (order[i], order[j]) = (order[j], order[i]);
                points.Slice(order[i] * d, d).CopyTo(centroids.AsSpan(i * d, d));
            }
        }
        finally { ArrayPool<int>.Shared.Return(order); }

        var assignments = new int[n];
        var counts = new int[clusters];
        KMeansStepResult last = default;
        lock (_ctx.Gate)
        {
            _ctx.ThrowIfDisposed();
            var p = _ctx.Scratch<float>("km.points", (long)n * d);
            var a = _ctx.Scratch<float>("km.centA", (long)clusters * d);
            var b = _ctx.Scratch<float>("km.centB", (long)clusters * d);
            _ctx.Upload(p, points);
            _ctx.Upload(a, (ReadOnlySpan<float>)centroids);
            for (int it = 0; it < iterations; it++)
            {
                last = StepOnDevice(p, a, b, n, clusters, d, assignments, counts);
                (a, b) = (b, a);
            }
            _ctx.Download(a, centroids.AsSpan());
        }
        return new GpuKMeansResult(centroids, assignments, counts, last.Inertia, iterations);
    }

    // Assign + update with points and centroids already on the device; writes `next`, downloads assignments, counts
    // and (when `distances` is not empty) the per-point distances.
    internal KMeansStepResult StepOnDevice(ArrayView<float> points, ArrayView<float> cur, ArrayView<float> next,
        int n, int c, int d, Span<int> assignments, Span<int> counts, ReadOnlySpan<float> penalty = default, Span<float> distances = default)
    {
        var k = _ctx.Kernels;
        int blocks = (int)Math.Clamp(Math.Min((n + 255L) / 256, 2L * _ctx.ScratchEntries / ((long)c * d)), 1, n);
        var args = new KMeansArgs { Dimension = d, Points = n, Clusters = c, Blocks = blocks };
        var assign = _ctx.Scratch<int>("km.assign", n);
        var dist = _ctx.Scratch<float>("km.dist", n);
        var sums = _ctx.Scratch<float>("km.sums", (long)blocks * c * d);
        var partCounts = _ctx.Scratch<int>("km.partCounts", (long)blocks * c);
        var outCounts = _ctx.Scratch<int>("km.counts", c);
        var stream = _ctx.Accelerator.DefaultStream;

        AssignKernel(points, cur, n, c, penalty, ref args, assign, dist);
        sums.MemSetToZero(stream);
        partCounts.MemSetToZero(stream);
        k.PartialSums(blocks * d, points, assign, sums, partCounts, args);
        k.Reduce(c * d, sums, partCounts, cur, next, outCounts, args);

        _ctx.Download(assign, assignments[..n]);
        _ctx.Download(outCounts, counts[..c]);
        double inertia = DownloadDistances(dist, n, distances);
        int empty = 0;
        for (int i = 0; i < c; i++) if (counts[i] == 0) empty++;
        return new KMeansStepResult(inertia, empty);
    }

    // Nearest centroid of each point already on the device; downloads assignments and distances.
    internal void AssignOnDevice(ArrayView<float> points, ArrayView<float> cur, int n, int c, int d, Span<int> assignments, Span<float> distances)
    {
        var args = new KMeansArgs { Dimension = d, Points = n, Clusters = c, Blocks = 1 };
        var assign = _ctx.Scratch<int>("km.assign", n);
        var dist = _ctx.Scratch<float>("km.dist", n);
        AssignKernel(points, cur, n, c, default, ref args, assign, dist);
        _ctx.Download(assign, assignments[..n]);
        DownloadDistances(dist, n, distances);
    }

    private void AssignKernel(ArrayView<float> points, ArrayView<float> cur, int n, int c, ReadOnlySpan<float> penalty,
        ref KMeansArgs args, ArrayView<int> assign, ArrayView<float> dist)
    {
        var pen = _ctx.Scratch<float>("km.penalty", c);
        args.HasPenalty = penalty.IsEmpty ? 0 : 1;
        if (!penalty.IsEmpty) _ctx.Upload(pen, penalty[..c]);
        _ctx.Kernels.Assign(n, points, cur, pen, assign, dist, args);
    }

    // Downloads the n distances (into `target` when it is not empty) and returns their sum.
    private double DownloadDistances(ArrayView<float> dist, int n, Span<float> target)
    {
        float[]? pooled = target.IsEmpty ? ArrayPool<float>.Shared.Rent(n) : null;
        try
        {
            var host = pooled is null ? target[..n] : pooled.AsSpan(0, n);
            _ctx.Download(dist, host);
            double inertia = 0;
            for (int i = 0; i < n; i++) inertia += host[i];
            return inertia;
        }
        finally { if (pooled is not null) ArrayPool<float>.Shared.Return(pooled); }
    }

    private static void CheckStep(int n, int c, int d, int newCentroids, int assignments, int counts)
    {
        if (c == 0) throw new ArgumentException("centroids is empty: at least one centroid is needed.", "centroids");
        if (newCentroids < (long)c * d) throw new ArgumentException($"newCentroids holds {newCentroids} floats but {c} centroids × d={d} need {(long)c * d}.", nameof(newCentroids));
        if (assignments < n) throw new ArgumentException($"assignments holds {assignments} entries but there are {n} points.", nameof(assignments));
        if (counts < c) throw new ArgumentException($"counts holds {counts} entries but there are {c} centroids.", nameof(counts));
    }
}
