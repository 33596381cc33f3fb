using System.Buffers;
using Engine.Clustering;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Gpu;

/// <summary>
/// <see cref="IKMeansBackend"/> on an ILGPU accelerator: the Lloyd steps of <see cref="KMeans"/> (IVF coarse
/// quantizers, via <see cref="KMeansOptions.Backend"/> / <c>IvfIndex.ClusteringBackend</c>) and of SPANN's
/// balanced clustering (<c>SpannOptions.ClusteringBackend</c>) run as the <see cref="GpuKMeans"/> kernels, with
/// the point set resident on the device for the whole training.
/// </summary>
/// <remarks>
/// <para>Results follow the <see cref="IKMeansSession"/> contract; against <see cref="CpuKMeansBackend"/> they
/// differ only by float rounding: the device sums squared differences directly (the CPU expands
/// ‖x‖² + ‖c‖² − 2x·c) and sums cluster members in float over fixed blocks (the CPU in double), so assignments
/// agree except for near-ties and centroids agree to float tolerance.</para>
/// <para>Thread safety: sessions share the context, whose lock serialises their steps.</para>
/// </remarks>
public sealed class GpuKMeansBackend : IKMeansBackend
{
    private readonly GpuContext _ctx;
    private readonly GpuKMeans _kmeans;

    /// <summary>Runs steps on <paramref name="context"/>'s accelerator.</summary>
    public GpuKMeansBackend(GpuContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _ctx = context;
        _kmeans = new GpuKMeans(context);
    }

    /// <summary><c>gpu:cuda</c> or <c>gpu:ilgpu-cpu</c> (<see cref="GpuContext.ShortName"/>).</summary>
    public string Name => _ctx.ShortName;

    /// <inheritdoc />
    /// <remarks>Uploads the selected rows (gathered in pooled host chunks) into a device buffer the session owns.</remarks>
    /// <exception cref="ArgumentException">Bad shapes, a row out of range, no points, or non-finite values.</exception>
    public IKMeansSession Open(ReadOnlySpan<float> vectors, int dimension, ReadOnlySpan<int> rows)
    {
        int count = KMeansSessionGuard.Points(vectors, dimension, rows);
        Guard.Finite(vectors, dimension, nameof(vectors));
        lock (_ctx.Gate)
        {
            _ctx.ThrowIfDisposed();
            var buffer = _ctx.Accelerator.Allocate1D<float>(checked((long)count * dimension));
            try
            {
                int chunkRows = Math.Max(1, (1 << 16) / dimension);
                float[] host = ArrayPool<float>.Shared.Rent(chunkRows * dimension);
                try
                {
                    for (int r0 = 0; r0 < count; r0 += chunkRows)
                    {
                        int rc = Math.Min(chunkRows, count - r0);
                        var chunk = host.AsSpan(0, rc * dimension);
                        if (rows.IsEmpty) vectors.Slice(r0 * dimension, rc * dimension).CopyTo(chunk);
                        else
                            for (int i = 0; i < rc; i++)
                                vectors.Slice(rows[r0 + i] * dimension, dimension).CopyTo(chunk.Slice(i * dimension, dimension));
                        _ctx.Upload(((ArrayView<float>)buffer.View).SubView((long)r0 * dimension), (ReadOnlySpan<float>)chunk);
                    }
                    _ctx.Accelerator.DefaultStream.Synchronize(); // the pooled chunk is reused after this call
                }
                finally { ArrayPool<float>.Shared.Return(host); }
                return new GpuKMeansSession(_ctx, _kmeans, buffer, count, dimension);
            }
            catch
            {
                buffer.Dispose();
                throw;
            }
        }
    }

    private sealed class GpuKMeansSession(GpuContext ctx, GpuKMeans kmeans, MemoryBuffer1D<float, Stride1D.Dense> points, int count, int dimension)
        : IKMeansSession
    {
        private bool _disposed;

        public int Points => count;

        public int Dimension => dimension;

        public void Step(ReadOnlySpan<float> centroids, ReadOnlySpan<float> penalty, Span<float> newCentroids,
            Span<int> assignments, Span<float> distances, Span<int> counts)
        {
            int k = KMeansSessionGuard.Check(this, centroids, penalty, newCentroids.Length, assignments.Length, distances.Length, counts.Length, step: true);
            lock (ctx.Gate)
            {
                ThrowIfDisposed();
                var (cur, next) = (ctx.Scratch<float>("kms.cur", (long)k * dimension), ctx.Scratch<float>("kms.next", (long)k * dimension));
                ctx.Upload(cur, centroids[..(k * dimension)]);
                kmeans.StepOnDevice(points.View, cur, next, count, k, dimension, assignments, counts, penalty, distances[..count]);
                ctx.Download(next, newCentroids[..(k * dimension)]);
            }
        }

        public void Assign(ReadOnlySpan<float> centroids, Span<int> assignments, Span<float> distances)
        {
            int k = KMeansSessionGuard.Check(this, centroids, [], 0, assignments.Length, distances.Length, 0, step: false);
            lock (ctx.Gate)
            {
                ThrowIfDisposed();
                var cur = ctx.Scratch<float>("kms.cur", (long)k * dimension);
                ctx.Upload(cur, centroids[..(k * dimension)]);
                kmeans.AssignOnDevice(points.View, cur, count, k, dimension, assignments, distances[..count]);
            }
        }

        private void ThrowIfDisposed()
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ctx.ThrowIfDisposed();
        }

        public void Dispose()
        {
            lock (ctx.Gate)
            {
                if (_disposed) return;
                _disposed = true;
                if (!ctx.IsDisposed) points.Dispose(); // a disposed context already freed its accelerator's buffers
            }
        }
    }
}
