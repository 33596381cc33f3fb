using Engine.Index.Ivf;

namespace Engine.Gpu;

/// <summary>
/// <see cref="IIvfDeviceScanProvider"/> on an ILGPU accelerator: set it as <see cref="IvfIndex.DeviceScan"/> and the
/// index's lists (PQ: PQ8 and 4-bit, fast-scan layouts unpacked, residual or <c>nr</c>; RaBitQ: 1..8 bits and the
/// fast-scan <c>RaBitQfs1</c>/<c>RaBitQfs4</c>, unpacked to byte sub-codes with their per-row factors) are uploaded once
/// and scanned by <see cref="GpuIvfPqScanner"/>, a chunk of queries × probed lists per launch, with the top-k
/// candidates selected on the device.
/// </summary>
/// <remarks>Device memory: total × codeBytes bytes of sub-codes, total × 12 bytes of factors (RaBitQ) and
/// (nlist + 1) × 4 bytes of offsets stay resident; a launch adds its tables (codeBytes × 1 KiB each, per query or per
/// (query, probe)), 24 bytes of terms and probe per (query, probe), and the context's top-k scratch
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
    public IIvfDeviceLists Upload(IvfDeviceRows rows)
    {
        var offsets = rows.ListOffsets;
        if (offsets.IsEmpty) throw new ArgumentException("ListOffsets needs nlist + 1 >= 2 entries.", nameof(rows));
        int total = offsets[^1];
        if (total < 0) throw new ArgumentException($"ListOffsets ends at {total}; the row count cannot be negative.", nameof(rows));
        var ids = new long[total];
        for (int i = 0; i < total; i++) ids[i] = i;
        var scanner = new GpuIvfPqScanner(_ctx, new IvfPqLists(rows.Codes, offsets, ids, rows.CodeBytes, rows.Factors));
        long bytes = rows.Codes.Length + (long)offsets.Length * sizeof(int) + (long)rows.Factors.Length * sizeof(float);
        return new Lists(scanner, bytes);
    }

    private sealed class Lists(GpuIvfPqScanner scanner, long bytes) : IIvfDeviceLists
    {
        public long DeviceBytes => bytes;

        public void Scan(IvfDeviceBatch batch, int k, Span<float> keys, Span<long> rows) =>
            scanner.Search(new IvfPqQueries(batch.Probes, batch.ProbeCount, batch.Tables, batch.TablePerProbe, probeTerms: batch.Terms), k, keys, rows);

        public void Dispose() => scanner.Dispose();
    }
}
