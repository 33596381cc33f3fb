using System.Buffers;
using Engine.Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Gpu;

/// <summary>
/// Host driver shared by the tiled scans: splits queries into batches and tiles into chunks so the partial
/// lists fit the context's scratch budget, launches the scan kernel per chunk and rank-merges each chunk's
/// partial lists into the running top-k (double-buffered on the device).
/// </summary>
internal static class TopKPipeline
{
    private const int MinTile = 1024;
    private const int MaxTile = 4096;
    private const int MaxPartsPerMerge = 8; // merge work grows with parts², so merge often

    /// <summary>Launches a scan for the queries of one batch: (kernel config, tile args, partial-list output).</summary>
    public delegate void TileLauncher(int firstQuery, KernelConfig config, TileArgs args, ArrayView<ulong> parts);

    /// <summary>Tile size for k: a power of two ≥ 4k within [1024, 4096] that fits the group's shared memory.</summary>
    public static int TileSize(GpuContext ctx, int k)
    {
        int limit = MaxTile;
        while (limit > 64 && (long)limit * sizeof(ulong) > ctx.Accelerator.MaxSharedMemoryPerGroup) limit >>= 1;
        int t = MinTile;
        while (t < limit && t < 4L * k) t <<= 1;
        return Math.Min(t, limit);
    }

    /// <summary>
    /// Runs the whole selection for <paramref name="nq"/> queries whose candidate sequences span at most
    /// <paramref name="tilesPerQuery"/> tiles, and writes the sorted packed entries (nq × k) to
    /// <paramref name="result"/>. Must be called under <see cref="GpuContext.Gate"/>.
    /// </summary>
    public static void Run(GpuContext ctx, int nq, int k, int tileSize, int tilesPerQuery, int similarity,
        int dimension, int rows, TileLauncher launch, Span<ulong> result)
    {
        var kernels = ctx.Kernels;
        var acc = ctx.Accelerator;
        int kept = Math.Min(k, tileSize);
        int parts = Math.Max(1, Math.Min(Math.Min(tilesPerQuery, MaxPartsPerMerge), ctx.ScratchEntries / kept));
        int batch = (int)Math.Clamp(ctx.ScratchEntries / ((long)parts * kept), 1, nq);
        batch = (int)Math.Min(batch, Math.Max(1, (1L << 26) / k)); // running lists stay modest too
        int group = GroupSize(ctx, tileSize);
        var shared = SharedMemoryConfig.RequestDynamic<ulong>(tileSize);

        var partsView = ctx.Scratch<ulong>("topk.parts", (long)batch * parts * kept);
        var runA = ctx.Scratch<ulong>("topk.runA", (long)batch * k);
        var runB = ctx.Scratch<ulong>("topk.runB", (long)batch * k);
        for (int q0 = 0; q0 < nq; q0 += batch)
        {
            int qb = Math.Min(batch, nq - q0);
            var cur = runA.SubView(0, (long)qb * k);
            var next = runB.SubView(0, (long)qb * k);
            kernels.Fill((int)cur.Length, cur);
            for (int t0 = 0; t0 < tilesPerQuery; t0 += parts)
            {
                int tc = Math.Min(parts, tilesPerQuery - t0);
                var args = new TileArgs
                {
                    TileSize = tileSize, TilesInChunk = tc, FirstTile = t0, Kept = kept,
                    Dimension = dimension, Rows = rows, Similarity = similarity,
                };
                var p = partsView.SubView(0, (long)qb * tc * kept);
                launch(q0, new KernelConfig(qb * tc, group, shared), args, p);
                var shape = new MergeShape { K = k, Parts = tc, PartLength = kept };
                kernels.Merge((int)((long)qb * (k + (long)tc * kept)), cur, p, next, shape);
                (cur, next) = (next, cur);
            }
            ctx.Download(cur, result.Slice(q0 * k, qb * k));
        }
    }

    /// <summary>
    /// Threads per scan group: a power of two ≤ min(256, tile / 2) on a GPU. On the CPU simulator a group of
    /// one thread sorts its tile without any barrier and groups run in parallel on the cores instead.
    /// </summary>
    private static int GroupSize(GpuContext ctx, int tileSize)
    {
        if (ctx.ScanGroupSize > 0) return Math.Min(ctx.ScanGroupSize, tileSize / 2);
        if (ctx.IsCpuSimulator) return 1;
        int g = 1;
        while (g * 2 <= Math.Min(Math.Min(256, ctx.Accelerator.MaxNumThreadsPerGroup), tileSize / 2)) g <<= 1;
        return g;
    }

    /// <summary>Rents a host buffer for nq × k packed entries.</summary>
    public static ulong[] RentResult(int nq, int k) => ArrayPool<ulong>.Shared.Rent(checked(nq * k));

    /// <summary>Returns a buffer from <see cref="RentResult"/>.</summary>
    public static void Return(ulong[] buffer) => ArrayPool<ulong>.Shared.Return(buffer);
}
