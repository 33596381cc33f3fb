using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Engine.Gpu;

/// <summary>
/// One ILGPU context and accelerator plus the compiled kernels and reusable device scratch buffers.
/// </summary>
/// <remarks>
/// <para>Choice of accelerator: <see cref="GpuDeviceKind.Auto"/> takes the first CUDA device when the CUDA
/// driver reports one and falls back to ILGPU's CPU accelerator; <see cref="GpuDeviceKind.Cuda"/> and
/// <see cref="GpuDeviceKind.Cpu"/> force one. <see cref="Describe"/> says which one runs.</para>
/// <para>Thread safety: every operation runs on the accelerator's default stream under one lock, so any
/// number of threads may share a context; their calls run one after another.</para>
/// </remarks>
public sealed class GpuContext : IDisposable
{
    private readonly Context _context;
    private readonly Dictionary<string, MemoryBuffer> _scratch = new();
    private bool _disposed;
    private Kernels.KernelSet? _kernels;

    private GpuContext(Context context, Accelerator accelerator, GpuDeviceKind kind, int scratchEntries, int scanGroupSize)
    {
        ScanGroupSize = scanGroupSize;
        _context = context;
        Accelerator = accelerator;
        Kind = kind;
        ScratchEntries = scratchEntries;
    }

    /// <summary>The accelerator kind actually in use (<see cref="GpuDeviceKind.Cuda"/> or <see cref="GpuDeviceKind.Cpu"/>).</summary>
    public GpuDeviceKind Kind { get; }

    /// <summary>True when kernels run on ILGPU's CPU accelerator rather than a GPU.</summary>
    public bool IsCpuSimulator => Kind == GpuDeviceKind.Cpu;

    /// <summary>Device scratch budget for partial top-k lists, in 8-byte entries.</summary>
    public int ScratchEntries { get; }

    /// <summary>Forced threads per scan group (tests), or 0.</summary>
    internal int ScanGroupSize { get; }

    /// <summary>Lock that serialises all use of the accelerator stream.</summary>
    internal object Gate { get; } = new();

    internal Accelerator Accelerator { get; }

    internal Kernels.KernelSet Kernels => _kernels ??= new Kernels.KernelSet(Accelerator);

    /// <summary>Creates a context on the default (<see cref="GpuDeviceKind.Auto"/>) accelerator.</summary>
    public static GpuContext Create() => Create(new GpuContextOptions());

    /// <summary>Creates a context on the given accelerator kind.</summary>
    public static GpuContext Create(GpuDeviceKind device) => Create(new GpuContextOptions { Device = device });

    /// <summary>Creates a context as the options say.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Unknown device kind or a negative option.</exception>
    /// <exception cref="InvalidOperationException"><see cref="GpuDeviceKind.Cuda"/> was requested and no CUDA device is present.</exception>
    public static GpuContext Create(GpuContextOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!Enum.IsDefined(options.Device))
            throw new ArgumentOutOfRangeException(nameof(options), options.Device, "Unknown GPU device kind.");
        if (options.CpuMultiprocessors < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.CpuMultiprocessors, "CpuMultiprocessors must be >= 0.");
        if (options.ScratchEntries < 1 << 12)
            throw new ArgumentOutOfRangeException(nameof(options), options.ScratchEntries, "ScratchEntries must be at least 4096.");

        int mps = options.CpuMultiprocessors > 0 ? options.CpuMultiprocessors : Environment.ProcessorCount;
        // Warp of 4 threads, 4 warps: groups of up to 16 simulated threads, one group per multiprocessor at a time.
        var cpuDevice = new CPUDevice(numThreadsPerWarp: 4, numWarpsPerMultiprocessor: 4, numMultiprocessors: mps);
        var context = Context.Create(b =>
        {
            b.Optimize(OptimizationLevel.O2).EnableAlgorithms().CPU(cpuDevice);
            if (options.Device != GpuDeviceKind.Cpu) TryEnableCuda(b);
        });
        try
        {
            Accelerator accelerator;
            GpuDeviceKind kind;
            var cuda = options.Device == GpuDeviceKind.Cpu ? [] : CudaDevices(context);
            if (cuda.Count > 0)
            {
                accelerator = cuda[0].CreateAccelerator(context);
                kind = GpuDeviceKind.Cuda;
            }
            else if (options.Device == GpuDeviceKind.Cuda)
            {
                throw new InvalidOperationException("GPU device 'cuda' was requested but no CUDA device is present (no driver or no GPU). Use 'auto' (CUDA when present, else ILGPU's CPU accelerator; the CLI's --device gpu) or 'cpu'.");
            }
            else
            {
                accelerator = context.GetCPUDevice(0).CreateAccelerator(context);
                kind = GpuDeviceKind.Cpu;
            }
            return new GpuContext(context, accelerator, kind, options.ScratchEntries, options.ScanGroupSize);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    private static void TryEnableCuda(Context.Builder builder)
    {
        // A machine without the CUDA driver library may throw while probing; that simply means "no CUDA".
        try { builder.Cuda(); }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException or BadImageFormatException) { }
    }

    private static IReadOnlyList<Device> CudaDevices(Context context)
    {
        try
        {
            var list = new List<Device>();
            foreach (var device in context.GetCudaDevices()) list.Add(device);
            return list;
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException) { return []; }
    }

    /// <summary>
    /// One line naming the accelerator in use, e.g. <c>CUDA: NVIDIA H100 (132 SMs, 80 GiB)</c> or
    /// <c>ILGPU CPU accelerator (simulated GPU, no CUDA device in use): 8 multiprocessors × 16 threads</c>.
    /// </summary>
    public string Describe()
    {
        var a = Accelerator;
        return Kind == GpuDeviceKind.Cuda
            ? $"CUDA: {a.Name} ({a.NumMultiprocessors} SMs, {a.MemorySize / (1L << 30)} GiB, warp {a.WarpSize}, max group {a.MaxNumThreadsPerGroup})"
            : $"ILGPU CPU accelerator (simulated GPU, no CUDA device in use): {a.NumMultiprocessors} multiprocessors × {a.MaxNumThreadsPerGroup} threads per group, warp {a.WarpSize}";
    }

    /// <summary>A device buffer for <paramref name="slot"/> of at least <paramref name="length"/> elements, reused across calls.</summary>
    internal ArrayView<T> Scratch<T>(string slot, long length) where T : unmanaged
    {
        length = Math.Max(1, length);
        string key = slot + ":" + typeof(T).Name;
        _scratch.TryGetValue(key, out var buffer);
        if (buffer is MemoryBuffer1D<T, Stride1D.Dense> typed && typed.Length >= length)
            return typed.View.SubView(0, length);
        long capacity = Math.Max(length, buffer is null ? 0 : buffer.Length * 3 / 2);
        buffer?.Dispose();
        var fresh = Accelerator.Allocate1D<T>(capacity);
        _scratch[key] = fresh;
        return fresh.View.SubView(0, length);
    }

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>True once <see cref="Dispose"/> ran (device buffers are gone with the accelerator).</summary>
    internal bool IsDisposed => _disposed;

    /// <summary>Short accelerator name used in reports: <c>gpu:cuda</c> or <c>gpu:ilgpu-cpu</c>.</summary>
    public string ShortName => IsCpuSimulator ? "gpu:ilgpu-cpu" : "gpu:cuda";

    /// <summary>Releases device buffers, the accelerator and the ILGPU context.</summary>
    public void Dispose()
    {
        lock (Gate)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var b in _scratch.Values) b.Dispose();
            _scratch.Clear();
            Accelerator.Dispose();
            _context.Dispose();
        }
    }
}
