using Engine.Gpu;
using Engine.Index;
using Engine.Index.Spann;

namespace Engine.Cli;

/// <summary>
/// <c>--device cpu|gpu</c>, the one place that chooses where an index runs. <c>cpu</c> builds the index with
/// <see cref="IndexFactory"/>. <c>gpu</c> uses one ILGPU accelerator shared by the process (CUDA when present,
/// else ILGPU's CPU accelerator): <c>Flat</c> becomes a <see cref="GpuFlatIndex"/> (exact search on the device);
/// IVF and SPANN specs are the usual CPU indexes whose training k-means runs on <see cref="GpuKMeansBackend"/>.
/// The CLI is a JIT application, so referencing ILGPU here keeps the NativeAOT bindings free of it.
/// </summary>
internal static class DeviceIndexes
{
    private static readonly Lock Gate = new();
    private static GpuContext? _context;

    /// <summary>
    /// Creates an empty index for <paramref name="spec"/> on the named device; a SPANN spec is created on disk in
    /// <paramref name="directory"/> when one is given.
    /// </summary>
    /// <exception cref="ArgumentException">Unknown device or spec.</exception>
    public static IVectorIndex Create(string spec, int dimension, Metric metric, string device, string? directory = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(device);
        switch (device.Trim().ToLowerInvariant())
        {
            case "cpu":
                return IndexFactory.Create(spec, dimension, metric, new IndexBuildOptions { Directory = directory });
            case "gpu":
                var ctx = Context();
                if (spec.Trim().Equals("Flat", StringComparison.OrdinalIgnoreCase)) return new GpuFlatIndex(ctx, dimension, metric);
                return IndexFactory.Create(spec, dimension, metric,
                    new IndexBuildOptions { Directory = directory, ClusteringBackend = new GpuKMeansBackend(ctx) });
            default:
                throw new ArgumentException($"Unknown --device '{device}': expected cpu or gpu.");
        }
    }

    /// <summary>The accelerator that serves <paramref name="device"/>, as printed in the <c>device</c> field.</summary>
    public static string Describe(string device) =>
        device.Trim().Equals("gpu", StringComparison.OrdinalIgnoreCase) && _context is not null ? _context.ShortName : "cpu";

    private static GpuContext Context()
    {
        lock (Gate) return _context ??= GpuContext.Create();
    }
}
