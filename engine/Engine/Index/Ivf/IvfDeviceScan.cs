namespace Engine.Index.Ivf;

/// <summary>
/// Where an <see cref="IvfIndex"/> scans its PQ lists when they run on an accelerator: the seam between the core
/// (which knows nothing of ILGPU) and an accelerator assembly such as Engine.Gpu (<c>GpuIvfScanProvider</c>). Set it
/// with <see cref="IvfIndex.DeviceScan"/>.
/// </summary>
public interface IIvfDeviceScanProvider
{
    /// <summary>The accelerator, as printed by tools (e.g. <c>gpu:cuda</c>).</summary>
    string Name { get; }

    /// <summary>
    /// Uploads inverted lists once; the returned lists stay on the device until disposed.
    /// </summary>
    /// <param name="codes">total × <paramref name="codeBytes"/> bytes: one byte per sub-quantizer code, lists laid end to end.</param>
    /// <param name="listOffsets">nlist + 1 non-decreasing row offsets, from 0 to total.</param>
    /// <param name="codeBytes">Bytes per code (M, the sub-quantizer count).</param>
    /// <exception cref="ArgumentException">Inconsistent shapes.</exception>
    IIvfDeviceLists Upload(ReadOnlySpan<byte> codes, ReadOnlySpan<int> listOffsets, int codeBytes);
}

/// <summary>
/// Inverted lists resident on an accelerator, scanned with float ADC lookup tables for a batch of queries at once.
/// </summary>
public interface IIvfDeviceLists : IDisposable
{
    /// <summary>Device bytes the lists hold (codes and offsets; per-launch scratch not included).</summary>
    long DeviceBytes { get; }

    /// <summary>
    /// One launch over nq queries × <paramref name="probeCount"/> probed lists. The key of row x of the list of probe
    /// (q, p) is <c>probeBias[q, p] + Σ_j luts[q, p][j × 256 + code_j(x)]</c>, smaller is better; writes each query's
    /// <paramref name="k"/> smallest keys and their global rows (index into the uploaded codes), best first, ties to
    /// the earlier row, padded with +∞ / −1.
    /// </summary>
    /// <param name="probes">nq × probeCount list numbers; −1 skips a slot.</param>
    /// <param name="probeCount">Probes per query.</param>
    /// <param name="luts">nq × probeCount tables of M × 256 floats.</param>
    /// <param name="probeBias">nq × probeCount biases.</param>
    /// <param name="k">Candidates per query.</param>
    /// <param name="keys">nq × k output keys.</param>
    /// <param name="rows">nq × k output rows.</param>
    void Scan(ReadOnlySpan<int> probes, int probeCount, ReadOnlySpan<float> luts, ReadOnlySpan<float> probeBias, int k,
        Span<float> keys, Span<long> rows);
}
