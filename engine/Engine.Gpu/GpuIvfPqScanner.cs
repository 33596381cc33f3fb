using Engine.Index.Ivf;
using System.Buffers;
using Engine.Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Gpu;

/// <summary>
/// Inverted lists of byte sub-codes as plain arrays: list l holds codes <c>ListOffsets[l] .. ListOffsets[l + 1] - 1</c>;
/// code i is bytes <c>Codes[i × m .. i × m + m - 1]</c>, has id <c>Ids[i]</c> and, optionally, three factors
/// <c>Factors[3i .. 3i + 2]</c> (add, rescale, err: RaBitQ's per-vector terms, see <see cref="IvfPqQueries"/>).
/// </summary>
public readonly ref struct IvfPqLists
{
    /// <summary>Wraps the arrays (not copied until a scanner uploads them).</summary>
    /// <param name="codes">total × m code bytes, lists laid end to end.</param>
    /// <param name="listOffsets">nlist + 1 non-decreasing offsets into the codes, starting at 0 and ending at total.</param>
    /// <param name="ids">total ids, one per code.</param>
    /// <param name="subQuantizers">m: bytes per code (each indexes a 256-entry LUT row).</param>
    /// <param name="factors">total × 3 floats (add, rescale, err), or empty: codes without factors.</param>
    public IvfPqLists(ReadOnlySpan<byte> codes, ReadOnlySpan<int> listOffsets, ReadOnlySpan<long> ids, int subQuantizers,
        ReadOnlySpan<float> factors = default)
    {
        Codes = codes; ListOffsets = listOffsets; Ids = ids; SubQuantizers = subQuantizers; Factors = factors;
    }

    /// <summary>total × m code bytes.</summary>
    public ReadOnlySpan<byte> Codes { get; }
    /// <summary>nlist + 1 offsets.</summary>
    public ReadOnlySpan<int> ListOffsets { get; }
    /// <summary>total ids.</summary>
    public ReadOnlySpan<long> Ids { get; }
    /// <summary>m.</summary>
    public int SubQuantizers { get; }
    /// <summary>total × 3 factors, or empty.</summary>
    public ReadOnlySpan<float> Factors { get; }
}

/// <summary>
/// The per-query input of an ADC scan: which lists each query probes and the lookup tables. The distance of
/// code x for query q in probe p is <c>bias[q, p] + Σ_s LUT[q(, p)][s][x_s]</c>; with per-probe terms t
/// (<see cref="IvfProbeTerms"/>) and S the LUT sum it is <c>t.Bias + (t.TableBias + S × t.TableScale)</c>, and for codes
/// with factors <c>t.Bias + add + rescale × (t.TableBias + S × t.TableScale) − t.ErrorScale × err − t.AbsScale × |rescale|</c>
/// (<see cref="IIvfDeviceLists.Scan"/>).
/// </summary>
public readonly ref struct IvfPqQueries
{
    /// <summary>Wraps the arrays.</summary>
    /// <param name="probes">nq × probeCount list numbers; -1 skips a slot.</param>
    /// <param name="probeCount">Probes per query.</param>
    /// <param name="luts">Lookup tables, each m × 256 floats: nq × probeCount of them when <paramref name="lutPerProbe"/>
    /// (e.g. L2 on residuals), else nq (one per query, e.g. inner product).</param>
    /// <param name="lutPerProbe">Whether each (query, probe) has its own table.</param>
    /// <param name="probeBias">Optional nq × probeCount term added to every code of that probe (e.g. the coarse
    /// distance or ‖q − c‖² part); empty for none.</param>
    /// <param name="probeTerms">Optional nq × probeCount terms (instead of <paramref name="probeBias"/>); required when
    /// the lists carry factors.</param>
    public IvfPqQueries(ReadOnlySpan<int> probes, int probeCount, ReadOnlySpan<float> luts, bool lutPerProbe,
        ReadOnlySpan<float> probeBias = default, ReadOnlySpan<IvfProbeTerms> probeTerms = default)
    {
        Probes = probes; ProbeCount = probeCount; Luts = luts; LutPerProbe = lutPerProbe; ProbeBias = probeBias; ProbeTerms = probeTerms;
    }

    /// <summary>nq × probeCount list numbers.</summary>
    public ReadOnlySpan<int> Probes { get; }
    /// <summary>Probes per query.</summary>
    public int ProbeCount { get; }
    /// <summary>The lookup tables.</summary>
    public ReadOnlySpan<float> Luts { get; }
    /// <summary>Whether tables are per (query, probe).</summary>
    public bool LutPerProbe { get; }
    /// <summary>nq × probeCount biases, or empty.</summary>
    public ReadOnlySpan<float> ProbeBias { get; }
    /// <summary>nq × probeCount terms, or empty.</summary>
    public ReadOnlySpan<IvfProbeTerms> ProbeTerms { get; }
}

/// <summary>
/// IVF-PQ asymmetric-distance scan on the accelerator: inverted lists live in device memory; each search
/// scans the probed lists of every query with its LUTs and keeps the top-k with the same fused tile selection
/// as the flat scan (any k). Codes with per-row factors (RaBitQ, unpacked to byte sub-codes) take per-probe terms
/// (<see cref="IvfPqQueries"/>). Knows nothing of how codes or LUTs were made.
/// </summary>
/// <remarks>Results: nq × k, best first, ties to the earlier code, padded with label -1. Thread safety:
/// calls are serialised on the context's stream.</remarks>
public sealed class GpuIvfPqScanner : IDisposable
{
    private const int Ksub = 256;
    private readonly GpuContext _ctx;
    private readonly MemoryBuffer1D<byte, Stride1D.Dense> _codes;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _offsets;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _factors;
    private readonly long[] _ids;
    private readonly int[] _listSizes;

    /// <summary>Uploads the lists.</summary>
    /// <exception cref="ArgumentException">Inconsistent lengths or offsets.</exception>
    public GpuIvfPqScanner(GpuContext context, IvfPqLists lists)
    {
        ArgumentNullException.ThrowIfNull(context);
        int m = lists.SubQuantizers;
        if (m <= 0) throw new ArgumentOutOfRangeException(nameof(lists), m, "SubQuantizers must be positive.");
        var off = lists.ListOffsets;
        if (off.Length < 2) throw new ArgumentException("ListOffsets needs nlist + 1 >= 2 entries.", nameof(lists));
        int total = lists.Ids.Length;
        if (off[0] != 0 || off[^1] != total)
            throw new ArgumentException($"ListOffsets must start at 0 and end at the code count {total}; got {off[0]} .. {off[^1]}.", nameof(lists));
        if ((long)total * m != lists.Codes.Length)
            throw new ArgumentException($"Codes holds {lists.Codes.Length} bytes but {total} codes × m={m} need {(long)total * m}.", nameof(lists));
        if (!lists.Factors.IsEmpty && lists.Factors.Length != 3L * total)
            throw new ArgumentException($"Factors holds {lists.Factors.Length} floats but {total} codes × 3 need {3L * total} (or none).", nameof(lists));
        foreach (float f in lists.Factors)
            if (!float.IsFinite(f)) throw new ArgumentException("Factors holds a non-finite value.", nameof(lists));
        _listSizes = new int[off.Length - 1];
        for (int l = 0; l < _listSizes.Length; l++)
        {
            if (off[l + 1] < off[l]) throw new ArgumentException($"ListOffsets decreases at list {l}.", nameof(lists));
            _listSizes[l] = off[l + 1] - off[l];
        }
        _ctx = context;
        SubQuantizers = m;
        HasFactors = !lists.Factors.IsEmpty;
        _ids = lists.Ids.ToArray();
        lock (_ctx.Gate)
        {
            _ctx.ThrowIfDisposed();
            try
            {
                _codes = _ctx.Accelerator.Allocate1D<byte>(Math.Max(1, lists.Codes.Length));
                _offsets = _ctx.Accelerator.Allocate1D<int>(off.Length);
                _factors = _ctx.Accelerator.Allocate1D<float>(Math.Max(1, lists.Factors.Length));
                _ctx.Upload(_codes.View, lists.Codes);
                _ctx.Upload(_offsets.View, off);
                _ctx.Upload(_factors.View, lists.Factors);
            }
            catch
            {
                // a failed allocation or upload (device memory full): free what was allocated, not at finalisation
                _codes?.Dispose();
                _offsets?.Dispose();
                _factors?.Dispose();
                throw;
            }
        }
    }

    /// <summary>m: bytes per code.</summary>
    public int SubQuantizers { get; }

    /// <summary>True when the codes carry factors (add, rescale, err).</summary>
    public bool HasFactors { get; }

    /// <summary>Number of inverted lists.</summary>
    public int ListCount => _listSizes.Length;

    /// <summary>Codes held.</summary>
    public int CodeCount => _ids.Length;

    /// <summary>
    /// Scans the probed lists of each query; writes nq × k distances and ids (best first, padded with -1).
    /// </summary>
    /// <param name="queries">Probes and LUTs.</param>
    /// <param name="k">Results per query (any k ≥ 1).</param>
    /// <param name="distances">nq × k output.</param>
    /// <param name="labels">nq × k output ids.</param>
    /// <param name="largerIsBetter">True when LUT sums are similarities (inner product): best = largest.</param>
    /// <exception cref="ArgumentException">Bad shapes, list numbers out of range, k ≤ 0 or short outputs.</exception>
    public void Search(IvfPqQueries queries, int k, Span<float> distances, Span<long> labels, bool largerIsBetter = false)
    {
        int np = queries.ProbeCount;
        if (np <= 0) throw new ArgumentOutOfRangeException(nameof(queries), np, "ProbeCount must be positive.");
        if (queries.Probes.Length % np != 0) throw new ArgumentException($"Probes holds {queries.Probes.Length} entries, not a multiple of ProbeCount {np}.", nameof(queries));
        int nq = queries.Probes.Length / np;
        Guard.SearchBuffers(nq, k, distances.Length, labels.Length);
        long lutLen = (queries.LutPerProbe ? (long)nq * np : nq) * SubQuantizers * Ksub;
        if (queries.Luts.Length != lutLen) throw new ArgumentException($"Luts holds {queries.Luts.Length} floats but {lutLen} are needed.", nameof(queries));
        if (!queries.ProbeBias.IsEmpty && queries.ProbeBias.Length != nq * np) throw new ArgumentException($"ProbeBias must be empty or hold nq × ProbeCount = {nq * np} floats.", nameof(queries));
        if (!queries.ProbeTerms.IsEmpty && !queries.ProbeBias.IsEmpty) throw new ArgumentException("Give ProbeBias or ProbeTerms, not both.", nameof(queries));
        if (!queries.ProbeTerms.IsEmpty && queries.ProbeTerms.Length != nq * np) throw new ArgumentException($"ProbeTerms must be empty or hold nq × ProbeCount = {nq * np} terms.", nameof(queries));
        if (HasFactors && queries.ProbeTerms.IsEmpty) throw new ArgumentException("These lists carry per-row factors: ProbeTerms are required.", nameof(queries));
        if (nq == 0) return;

        int[] starts = ArrayPool<int>.Shared.Rent(nq * (np + 1));
        ulong[] packed = TopKPipeline.RentResult(nq, k);
        try
        {
            long maxTotal = 0;
            for (int q = 0; q < nq; q++)
            {
                long run = 0;
                for (int p = 0; p < np; p++)
                {
                    starts[q * (np + 1) + p] = (int)run;
                    int list = queries.Probes[q * np + p];
                    if (list < -1 || list >= ListCount) throw new ArgumentException($"Probe {p} of query {q} names list {list}; lists are 0..{ListCount - 1} (or -1 to skip).", nameof(queries));
                    if (list >= 0) run += _listSizes[list];
                }
                if (run > int.MaxValue) throw new ArgumentException($"Query {q} probes {run} codes; at most {int.MaxValue} per query are supported.", nameof(queries));
                starts[q * (np + 1) + np] = (int)run;
                maxTotal = Math.Max(maxTotal, run);
            }
            lock (_ctx.Gate)
            {
                _ctx.ThrowIfDisposed();
                if (maxTotal == 0) Array.Fill(packed, SelectKernels.Padding, 0, nq * k);
                else RunScan(queries, nq, np, k, starts.AsSpan(0, nq * (np + 1)), (int)maxTotal, largerIsBetter, packed.AsSpan(0, nq * k));
            }
            GpuFlatSearcher.Unpack(packed.AsSpan(0, nq * k), largerIsBetter ? Metric.InnerProduct : Metric.L2, distances, labels);
            var outLabels = labels[..(nq * k)];
            for (int i = 0; i < outLabels.Length; i++) if (outLabels[i] >= 0) outLabels[i] = _ids[outLabels[i]];
        }
        finally
        {
            ArrayPool<int>.Shared.Return(starts);
            TopKPipeline.Return(packed);
        }
    }

    private void RunScan(IvfPqQueries queries, int nq, int np, int k, ReadOnlySpan<int> starts, int maxTotal,
        bool largerIsBetter, Span<ulong> result)
    {
        var probes = _ctx.Scratch<int>("adc.probes", (long)nq * np);
        var startsView = _ctx.Scratch<int>("adc.starts", (long)nq * (np + 1));
        var luts = _ctx.Scratch<float>("adc.luts", queries.Luts.Length);
        var terms = _ctx.Scratch<IvfProbeTerms>("adc.terms", (long)nq * np);
        _ctx.Upload(probes, queries.Probes);
        _ctx.Upload(startsView, starts);
        _ctx.Upload(luts, queries.Luts);
        if (!queries.ProbeTerms.IsEmpty) _ctx.Upload(terms, queries.ProbeTerms);
        else
        {
            var plain = ArrayPool<IvfProbeTerms>.Shared.Rent(nq * np);
            for (int i = 0; i < nq * np; i++) plain[i] = IvfProbeTerms.Plain(queries.ProbeBias.IsEmpty ? 0 : queries.ProbeBias[i]);
            _ctx.Upload(terms, plain.AsSpan(0, nq * np));
            ArrayPool<IvfProbeTerms>.Shared.Return(plain);
        }
        int m = SubQuantizers;
        var adc = new AdcArgs { SubQuantizers = m, Probes = np, LutPerProbe = queries.LutPerProbe ? 1 : 0, HasFactors = HasFactors ? 1 : 0 };
        long lutsPerQuery = (queries.LutPerProbe ? np : 1) * (long)m * Ksub;
        int tile = TopKPipeline.TileSize(_ctx, k);
        int tiles = (int)((maxTotal + (long)tile - 1) / tile);
        var kernel = _ctx.Kernels.AdcTile;
        var codes = _codes.View;
        var offsets = _offsets.View;
        var factors = _factors.View;
        TopKPipeline.Run(_ctx, nq, k, tile, tiles, largerIsBetter ? 1 : 0, 0, 0,
            (first, config, args, parts) => kernel(config, codes, offsets,
                probes.SubView((long)first * np), startsView.SubView((long)first * (np + 1)),
                luts.SubView(first * lutsPerQuery), terms.SubView((long)first * np), factors,
                parts, args, adc),
            result);
    }

    /// <summary>Frees the device lists.</summary>
    public void Dispose()
    {
        lock (_ctx.Gate)
        {
            _codes.Dispose();
            _offsets.Dispose();
            _factors.Dispose();
        }
    }
}
