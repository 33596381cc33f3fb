using Engine.Gpu;
using Engine.Index;
using Engine.Index.Spann;

namespace Engine.Cli;

/// <summary>
/// <c>--device cpu|gpu</c>, the one place that chooses where an index runs. <c>cpu</c> builds the index with
/// <see cref="IndexFactory"/>. <c>gpu</c> uses one ILGPU accelerator shared by the process (CUDA when present,
/// else ILGPU's CPU accelerator): <c>Flat</c> becomes a <see cref="GpuFlatIndex"/> (exact search on the device);
/// IVF and SPANN specs are the usual CPU indexes whose training k-means runs on <see cref="GpuKMeansBackend"/>, and
/// IVF indexes with PQ lists (PQ8, 4-bit, fast-scan; residual or nr) or RaBitQ lists (1..8 bits, fast-scan) scan their lists on the device
/// (<see cref="GpuIvfScanProvider"/>, <see cref="Engine.Index.Ivf.IvfIndex.DeviceScan"/>). <c>cuda</c> is <c>gpu</c>
/// that refuses to run anywhere but a CUDA device: no CUDA device is an error naming it, never the CPU accelerator.
/// The CLI is a JIT application, so referencing ILGPU here keeps the NativeAOT bindings free of it.
/// </summary>
internal static class DeviceIndexes
{
    private static readonly Lock Gate = new();
    private static GpuContext? _context;
    private static GpuContext? _cudaContext;

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
            case "cuda":
                var ctx = Context(device);
                if (spec.Trim().Equals("Flat", StringComparison.OrdinalIgnoreCase)) return new GpuFlatIndex(ctx, dimension, metric);
                return AttachScanner(IndexFactory.Create(spec, dimension, metric,
                    new IndexBuildOptions { Directory = directory, ClusteringBackend = new GpuKMeansBackend(ctx) }), ctx);
            default:
                throw new ArgumentException($"Unknown --device '{device}': expected cpu, gpu or cuda.");
        }
    }

    /// <summary>
    /// Moves the list scan of an opened index to <paramref name="device"/>: on <c>gpu</c>/<c>cuda</c> an IVF index with
    /// PQ or RaBitQ lists scans them on the device; other indexes (Flat or binary lists, SPANN, HNSW files) are refused, as
    /// they have no device scanner. <c>cpu</c> leaves the index as it is.
    /// </summary>
    /// <exception cref="ArgumentException">Unknown device, or an index without a device scanner.</exception>
    public static IVectorIndex Attach(IVectorIndex index, string device)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(device);
        switch (device.Trim().ToLowerInvariant())
        {
            case "cpu": return index;
            case "gpu":
            case "cuda":
                if (index is not Engine.Index.Ivf.IvfIndex { SupportsDeviceScan: true })
                    throw new ArgumentException($"--device {device}: '{index.Description}' has no device list scanner (only IVF indexes with PQ or RaBitQ lists scan on the device); use --device cpu.");
                return AttachScanner(index, Context(device));
            default:
                throw new ArgumentException($"Unknown --device '{device}': expected cpu, gpu or cuda.");
        }
    }

    /// <summary>The accelerator that serves <paramref name="device"/>, as printed in the <c>device</c> field.</summary>
    public static string Describe(string device) => device.Trim().ToLowerInvariant() switch
    {
        "gpu" when _context is not null => _context.ShortName,
        "cuda" when _cudaContext is not null => _cudaContext.ShortName,
        _ => "cpu",
    };

    /// <summary>
    /// The <c>device</c> field of a row of <paramref name="index"/>: the accelerator of <paramref name="device"/> when
    /// it did part of the work (exact search of a device Flat index, an IVF list scan, the k-means training of IVF and
    /// SPANN), <c>cpu</c> for an index the device never touched (HNSW, binary codes), whatever --device said.
    /// </summary>
    public static string DescribeUse(IVectorIndex index, string device) =>
        index is GpuFlatIndex or Engine.Index.Ivf.IvfIndex or SpannIndex ? Describe(device) : "cpu";

    private static IVectorIndex AttachScanner(IVectorIndex index, GpuContext ctx)
    {
        if (index is Engine.Index.Ivf.IvfIndex { SupportsDeviceScan: true } ivf) ivf.DeviceScan = new GpuIvfScanProvider(ctx);
        return index;
    }

    // gpu: CUDA when present, else ILGPU's CPU accelerator (printed as gpu:ilgpu-cpu); cuda: CUDA or an error.
    private static GpuContext Context(string device)
    {
        bool strict = device.Trim().Equals("cuda", StringComparison.OrdinalIgnoreCase);
        lock (Gate) return strict ? _cudaContext ??= GpuContext.Create(GpuDeviceKind.Cuda) : _context ??= GpuContext.Create();
    }
}
