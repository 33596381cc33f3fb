namespace Engine.Gpu;

/// <summary>Which ILGPU accelerator a <see cref="GpuContext"/> runs its kernels on.</summary>
public enum GpuDeviceKind
{
    /// <summary>The first CUDA device when one is present, otherwise ILGPU's CPU accelerator.</summary>
    Auto = 0,

    /// <summary>The first CUDA device; creating the context fails when there is none.</summary>
    Cuda = 1,

    /// <summary>ILGPU's CPU accelerator (a multi-threaded GPU simulator; for tests and machines without a GPU).</summary>
    Cpu = 2,
}

/// <summary>Options for <see cref="GpuContext.Create(GpuContextOptions)"/>.</summary>
public sealed class GpuContextOptions
{
    /// <summary>Which accelerator to use; <see cref="GpuDeviceKind.Auto"/> by default.</summary>
    public GpuDeviceKind Device { get; init; } = GpuDeviceKind.Auto;

    /// <summary>
    /// Multiprocessors the CPU accelerator simulates (each runs one thread group at a time); 0 means
    /// <see cref="Environment.ProcessorCount"/>. Ignored on CUDA.
    /// </summary>
    public int CpuMultiprocessors { get; init; }

    /// <summary>
    /// Upper bound on the device scratch used for per-tile partial top-k lists, in entries of 8 bytes
    /// (default 4 Mi entries = 32 MiB). Larger values mean fewer merge passes per query batch.
    /// </summary>
    public int ScratchEntries { get; init; } = 1 << 22;

    /// <summary>
    /// Tests only: threads per scan group (a power of two), so the GPU-shaped multi-thread sort runs on the
    /// CPU simulator too. 0 chooses automatically.
    /// </summary>
    internal int ScanGroupSize { get; init; }
}
