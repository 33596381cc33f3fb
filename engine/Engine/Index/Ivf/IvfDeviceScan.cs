using System.Runtime.InteropServices;

namespace Engine.Index.Ivf;

/// <summary>
/// Where an <see cref="IvfIndex"/> scans its lists when they run on an accelerator: the seam between the core (which
/// knows nothing of ILGPU) and an accelerator assembly such as Engine.Gpu (<c>GpuIvfScanProvider</c>). Set it with
/// <see cref="IvfIndex.DeviceScan"/>. One contract serves every codec that has a device scanner (PQ and RaBitQ): a
/// row is a string of byte sub-codes, each indexing a 256-float row of a lookup table, plus optional per-row factors;
/// the key is affine in the table sum (<see cref="IIvfDeviceLists.Scan"/>).
/// </summary>
public interface IIvfDeviceScanProvider
{
    /// <summary>The accelerator, as printed by tools (e.g. <c>gpu:cuda</c>).</summary>
    string Name { get; }

    /// <summary>Uploads inverted lists once; the returned lists stay on the device until disposed.</summary>
    /// <exception cref="ArgumentException">Inconsistent shapes.</exception>
    IIvfDeviceLists Upload(IvfDeviceRows rows);
}

/// <summary>
/// Inverted lists as a device holds them: <see cref="CodeBytes"/> byte sub-codes per row (one byte each, fast-scan
/// and bit-plane layouts unpacked), lists laid end to end, and, for codes with per-row factors (RaBitQ), three floats
/// per row: <c>add</c>, <c>rescale</c> and <c>err</c>.
/// </summary>
public readonly ref struct IvfDeviceRows
{
    /// <summary>Wraps the arrays (not copied until a provider uploads them).</summary>
    /// <param name="codes">total × <paramref name="codeBytes"/> bytes.</param>
    /// <param name="listOffsets">nlist + 1 non-decreasing row offsets, from 0 to total.</param>
    /// <param name="codeBytes">Sub-codes per row.</param>
    /// <param name="factors">total × 3 floats (add, rescale, err), or empty for rows without factors (PQ).</param>
    public IvfDeviceRows(ReadOnlySpan<byte> codes, ReadOnlySpan<int> listOffsets, int codeBytes, ReadOnlySpan<float> factors = default)
    {
        Codes = codes; ListOffsets = listOffsets; CodeBytes = codeBytes; Factors = factors;
    }

    /// <summary>total × <see cref="CodeBytes"/> sub-codes.</summary>
    public ReadOnlySpan<byte> Codes { get; }

    /// <summary>nlist + 1 row offsets.</summary>
    public ReadOnlySpan<int> ListOffsets { get; }

    /// <summary>Sub-codes per row.</summary>
    public int CodeBytes { get; }

    /// <summary>total × 3 floats (add, rescale, err) or empty.</summary>
    public ReadOnlySpan<float> Factors { get; }

    /// <summary>Floats of per-row factors per row (when <see cref="Factors"/> is not empty).</summary>
    public const int FactorsPerRow = 3;
}

/// <summary>
/// The per-(query, probe) terms of a device scan's key (see <see cref="IIvfDeviceLists.Scan"/>). PQ uses only
/// <see cref="Bias"/> (the coarse key of residual codes) with <see cref="TableScale"/> 1; RaBitQ adds the error
/// bound's scale (<see cref="ErrorScale"/>) and, for fast-scan byte tables, the table's offset and unit and the bound
/// of their rounding (<see cref="AbsScale"/>).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public readonly struct IvfProbeTerms
{
    /// <summary>Creates the terms.</summary>
    public IvfProbeTerms(float bias, float tableBias, float tableScale, float errorScale, float absScale)
    {
        Bias = bias; TableBias = tableBias; TableScale = tableScale; ErrorScale = errorScale; AbsScale = absScale;
    }

    /// <summary>Added to every key of the probe (the list's coarse key).</summary>
    public readonly float Bias;

    /// <summary>Added to the table sum before it is scaled.</summary>
    public readonly float TableBias;

    /// <summary>What one unit of the table sum is worth.</summary>
    public readonly float TableScale;

    /// <summary>Multiplies a row's <c>err</c> factor (subtracted).</summary>
    public readonly float ErrorScale;

    /// <summary>Multiplies |<c>rescale</c>| of a row (subtracted).</summary>
    public readonly float AbsScale;

    /// <summary>Terms of a probe whose key is <paramref name="bias"/> plus the table sum (PQ).</summary>
    public static IvfProbeTerms Plain(float bias) => new(bias, 0, 1, 0, 0);
}

/// <summary>One launch: nq queries × <see cref="ProbeCount"/> probed lists with their tables and terms.</summary>
public readonly ref struct IvfDeviceBatch
{
    /// <summary>Wraps the arrays.</summary>
    /// <param name="probes">nq × probeCount list numbers; −1 skips a slot.</param>
    /// <param name="probeCount">Probes per query.</param>
    /// <param name="tables">Lookup tables of CodeBytes × 256 floats: one per (query, probe) when
    /// <paramref name="tablePerProbe"/>, else one per query.</param>
    /// <param name="tablePerProbe">Whether each (query, probe) has its own table.</param>
    /// <param name="terms">nq × probeCount terms.</param>
    public IvfDeviceBatch(ReadOnlySpan<int> probes, int probeCount, ReadOnlySpan<float> tables, bool tablePerProbe, ReadOnlySpan<IvfProbeTerms> terms)
    {
        Probes = probes; ProbeCount = probeCount; Tables = tables; TablePerProbe = tablePerProbe; Terms = terms;
    }

    /// <summary>nq × <see cref="ProbeCount"/> list numbers.</summary>
    public ReadOnlySpan<int> Probes { get; }

    /// <summary>Probes per query.</summary>
    public int ProbeCount { get; }

    /// <summary>The lookup tables.</summary>
    public ReadOnlySpan<float> Tables { get; }

    /// <summary>Whether tables are per (query, probe) rather than per query.</summary>
    public bool TablePerProbe { get; }

    /// <summary>nq × <see cref="ProbeCount"/> terms.</summary>
    public ReadOnlySpan<IvfProbeTerms> Terms { get; }
}

/// <summary>
/// Inverted lists resident on an accelerator, scanned for a batch of queries at once.
/// </summary>
public interface IIvfDeviceLists : IDisposable
{
    /// <summary>Device bytes the lists hold (codes, factors and offsets; per-launch scratch not included).</summary>
    long DeviceBytes { get; }

    /// <summary>
    /// One launch over nq queries × probed lists. With t the terms of probe (q, p) and S = Σ_j table[j × 256 + code_j(x)]
    /// over the row's sub-codes (the table of (q, p), or of q), the key of row x of that probe's list is
    /// <c>t.Bias + add[x] + rescale[x] × (t.TableBias + S × t.TableScale) − t.ErrorScale × err[x] − t.AbsScale × |rescale[x]|</c>
    /// (evaluated in that order), or <c>t.Bias + (t.TableBias + S × t.TableScale)</c> for rows without factors; smaller
    /// is better. Writes each query's <paramref name="k"/> smallest keys and their global rows (index into the uploaded
    /// rows), best first, ties to the earlier row, padded with +∞ / −1. May be called from several threads at once (the
    /// provider serialises its launches).
    /// </summary>
    /// <param name="batch">Probes, tables and terms.</param>
    /// <param name="k">Candidates per query.</param>
    /// <param name="keys">nq × k output keys.</param>
    /// <param name="rows">nq × k output rows.</param>
    void Scan(IvfDeviceBatch batch, int k, Span<float> keys, Span<long> rows);
}
