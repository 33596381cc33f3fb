using Engine.Gpu;
using Engine.Index;

namespace Engine.Cli;

/// <summary>
/// <c>--device cpu|gpu</c>: cpu builds the index with <see cref="IndexFactory"/>; gpu runs exact search on the ILGPU
/// accelerator (CUDA when present, else ILGPU's CPU accelerator) through <see cref="GpuFlatIndex"/>.
/// The CLI is a JIT application, so referencing ILGPU here keeps NativeAOT bindings free of it.
/// </summary>
internal static class DeviceIndexes
{
    private static GpuContext? _context;

    /// <summary>Creates an empty index for <paramref name="spec"/> on the named device.</summary>
    public static IVectorIndex Create(string spec, int dimension, Metric metric, string device)
    {
        switch (device.Trim().ToLowerInvariant())
        {
            case "cpu":
                return IndexFactory.Create(spec, dimension, metric);
            case "gpu":
                if (!spec.Trim().Equals("Flat", StringComparison.OrdinalIgnoreCase))
                    throw new ArgumentException($"--device gpu supports the Flat spec only (got '{spec}').");
                _context ??= GpuContext.Create();
                return new GpuFlatIndex(_context, dimension, metric);
            default:
                throw new ArgumentException($"Unknown --device '{device}': expected cpu or gpu.");
        }
    }

    /// <summary>The accelerator that serves <paramref name="device"/>, as printed in the <c>device</c> field.</summary>
    public static string Describe(string device) =>
        device.Trim().Equals("gpu", StringComparison.OrdinalIgnoreCase) && _context is not null
            ? (_context.IsCpuSimulator ? "gpu:ilgpu-cpu" : "gpu:cuda")
            : "cpu";
}
