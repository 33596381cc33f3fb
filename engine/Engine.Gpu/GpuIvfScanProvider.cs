using Engine.Index.Ivf;

namespace Engine.Gpu;

/// <summary>
/// <see cref="IIvfDeviceScanProvider"/> on an ILGPU accelerator: set it as <see cref="IvfIndex.DeviceScan"/> and the
/// index's PQ lists (PQ8 and 4-bit, fast-scan layouts unpacked, residual or <c>nr</c>) are uploaded once and scanned by
/// <see cref="GpuIvfPqScanner"/>, a batch of queries × probed lists per launch, with the top-k candidates selected on
/// the device.
/// </summary>
/// <remarks>Device memory: total × M bytes of codes + (nlist + 1) × 4 bytes of offsets stay resident; a launch adds
/// nq × probes × (M × 256 × 4 + 8) bytes of tables, probes and biases plus the context's top-k scratch
/// (<see cref="GpuContext.ScratchEntries"/> × 8 bytes). Thread safety: launches are serialised on the context.</remarks>
public sealed class GpuIvfScanProvider : IIvfDeviceScanProvider
{
    private readonly GpuContext _ctx;

    /// <summary>Scans on <paramref name="context"/>'s accelerator.</summary>
    public GpuIvfScanProvider(GpuContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _ctx = context;
    }

    /// <summary><c>gpu:cuda</c> or <c>gpu:ilgpu-cpu</c> (<see cref="GpuContext.ShortName"/>).</summary>
    public string Name => _ctx.ShortName;

    /// <inheritdoc />
    public IIvfDeviceLists Upload(ReadOnlySpan<byte> codes, ReadOnlySpan<int> listOffsets, int codeBytes)
    {
        if (listOffsets.IsEmpty) throw new ArgumentException("listOffsets needs nlist + 1 >= 2 entries.", nameof(listOffsets));
        int total = listOffsets[^1];
        if (total < 0) throw new ArgumentException($"listOffsets ends at {total}; the code count cannot be negative.", nameof(listOffsets));
        var rows = new long[total];
        for (int i = 0; i < total; i++) rows[i] = i;
        return new Lists(new GpuIvfPqScanner(_ctx, new IvfPqLists(codes, listOffsets, rows, codeBytes)), (long)codes.Length + (long)listOffsets.Length * sizeof(int));
    }

    private sealed class Lists(GpuIvfPqScanner scanner, long bytes) : IIvfDeviceLists
    {
        public long DeviceBytes => bytes;

        public void Scan(ReadOnlySpan<int> probes, int probeCount, ReadOnlySpan<float> luts, ReadOnlySpan<float> probeBias, int k,
            Span<float> keys, Span<long> rows) =>
            scanner.Search(new IvfPqQueries(probes, probeCount, luts, lutPerProbe: true, probeBias), k, keys, rows);

        public void Dispose() => scanner.Dispose();
    }
}
