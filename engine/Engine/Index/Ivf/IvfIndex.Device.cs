using System.Buffers;
using Engine.Quantization;

namespace Engine.Index.Ivf;

public sealed partial class IvfIndex
{
    // Upper bound of the lookup-table floats one device launch carries (64 MiB): a launch takes
    // min(nq, max(1, this / (probes × M × 256))) queries.
    private const long DeviceLutFloats = 16L << 20;

    private readonly Lock _deviceGate = new();
    private IIvfDeviceScanProvider? _deviceScan;
    private DeviceListsCache? _deviceLists;
    private long _deviceStamp; // bumped by every write-locked mutation; the device copy is rebuilt when it moves

    /// <summary>
    /// Runs the list scan of PQ searches (<c>PQ{m}</c>, <c>PQ{m}x4</c>, <c>PQ{m}x4fs</c>, residual or raw <c>nr</c>) on
    /// an accelerator (e.g. Engine.Gpu's <c>GpuIvfScanProvider</c>); null scans on the CPU. The lists are uploaded once
    /// (on the first search after a change) and stay on the device; each launch scans a batch of queries × their
    /// probed lists with float ADC tables built on the CPU and returns k × refine-factor candidates per query, which go
    /// through the same refine stage as the CPU path. Searches with an id filter, an attribute window or a code
    /// budget (<see cref="IvfSearchParameters.MaxCodes"/>) keep the CPU scanner (the device scan has no per-row
    /// predicate). Not saved with the index.
    /// </summary>
    /// <remarks>Device memory: total × M bytes of codes + (nlist + 1) × 4 bytes of offsets, resident; per launch
    /// nq_b × probes × (M × 256 × 4 + 8) bytes of tables and probes plus the top-k scratch of the provider.</remarks>
    /// <exception cref="NotSupportedException">The lists are not PQ codes (Flat, SQ, RaBitQ): they have no device scanner.</exception>
    public IIvfDeviceScanProvider? DeviceScan
    {
        get => _deviceScan;
        set
        {
            if (value is not null && _pq is null)
                throw new NotSupportedException($"'{Description}' has no device list scanner: only PQ lists (PQ{{m}}, PQ{{m}}x4, PQ{{m}}x4fs, residual or nr) scan on an accelerator.");
            lock (_deviceGate)
            {
                _deviceLists?.Lists.Dispose();
                _deviceLists = null;
                _deviceScan = value;
            }
        }
    }

    /// <summary>True when this index's lists can be scanned by a <see cref="DeviceScan"/> provider (PQ codes).</summary>
    public bool SupportsDeviceScan => _pq is not null;

    private sealed record DeviceListsCache(IIvfDeviceLists Lists, int[] Offsets, int[] RowList, long Stamp);

    private bool UsesDevice(in SearchContext ctx) => _deviceScan is not null && !ctx.Filtered && ctx.MaxCodes == 0;

    // Uploads the lists (unpacked to one byte per sub-code) when the device copy is missing or stale. Runs under the read lock.
    private DeviceListsCache DeviceLists()
    {
        lock (_deviceGate)
        {
            if (_deviceLists is { } c && c.Stamp == Interlocked.Read(ref _deviceStamp)) return c;
            _deviceLists?.Lists.Dispose();
            _deviceLists = null;
            var pq = _pq!;
            int m = pq.M, nlist = ListCount;
            var offsets = new int[nlist + 1];
            for (int l = 0; l < nlist; l++) offsets[l + 1] = checked(offsets[l] + _lists[l].Count);
            int total = offsets[nlist];
            var codes = new byte[(long)total * m];
            var rowList = new int[total];
            bool fastScan = _codec is PQ4FastScanCodec;
            for (int l = 0; l < nlist; l++)
            {
                var list = _lists[l];
                int count = list.Count;
                rowList.AsSpan(offsets[l], count).Fill(l);
                var dst = codes.AsSpan(offsets[l] * m, count * m);
                if (!fastScan) { list.Codes[..(count * m)].CopyTo(dst); continue; }
                for (int r = 0; r < count; r++) PQ4FastScan.GetCode(list.Codes, m, r, dst.Slice(r * m, m));
            }
            var lists = _deviceScan!.Upload(codes, offsets, m);
            return _deviceLists = new DeviceListsCache(lists, offsets, rowList, _deviceStamp);
        }
    }

    /// <summary>
    /// The device path of <see cref="Search"/>: coarse search and ADC tables on the CPU, list scan and candidate
    /// selection on the device (a batch of queries per launch), then <see cref="Finish"/> (refine) per query on the CPU.
    /// </summary>
    private void SearchOnDevice(QueryRows qw, int nq, Span<float> distances, Span<long> labels, in SearchContext ctx)
    {
        var dev = DeviceLists();
        var pq = _pq!;
        int d = Dimension, k = ctx.K, probes = ctx.Probes, m = pq.M, ksub = pq.Ksub;
        var table = new DeviceTableScanner(pq, _tables, Metric, _codec is PQ4FastScanCodec);
        int nc = table.CandidatesFor(ctx.ScanK, ctx.Candidates, _refine is not null);
        long perQuery = (long)probes * m * 256;
        int batch = (int)Math.Min(nq, Math.Max(1, DeviceLutFloats / perQuery));
        var s = _scratchPool.Rent();
        int[] probeInts = ArrayPool<int>.Shared.Rent(batch * probes);
        float[] luts = ArrayPool<float>.Shared.Rent((int)(batch * perQuery));
        float[] bias = ArrayPool<float>.Shared.Rent(batch * probes);
        float[] candKeys = ArrayPool<float>.Shared.Rent(batch * nc);
        long[] candRows = ArrayPool<long>.Shared.Rent(batch * nc);
        try
        {
            s.Ensure(batch, ListCount, probes, ctx.Candidates);
            long scanned = 0, refined = 0;
            for (int q0 = 0; q0 < nq; q0 += batch)
            {
                int qb = Math.Min(batch, nq - q0);
                _quantizer.Search(qw.AsSpan(q0 * d, qb * d), qb, probes, s.ProbeKeys, s.ProbeLists, s, ctx.QuantizerEf);
                var lutSpan = luts.AsSpan(0, (int)(qb * perQuery));
                if (ksub != 256) lutSpan.Clear(); // 4-bit codes use 16 of each row's 256 entries
                for (int i = 0; i < qb; i++)
                {
                    table.SetQuery(qw.AsSpan((q0 + i) * d, d));
                    for (int p = 0; p < probes; p++)
                    {
                        int slot = i * probes + p;
                        long li = s.ProbeLists[slot];
                        probeInts[slot] = (int)li;
                        bias[slot] = 0;
                        if (li < 0) continue;
                        scanned += _lists[(int)li].Count;
                        table.SetList((int)li, s.ProbeKeys[slot]);
                        bias[slot] = table.Bias;
                        var dst = lutSpan.Slice((int)(slot * (long)m * 256), m * 256);
                        var src = table.CurrentTable;
                        for (int j = 0; j < m; j++) src.AsSpan(j * ksub, ksub).CopyTo(dst.Slice(j * 256, ksub));
                    }
                }
                dev.Lists.Scan(probeInts.AsSpan(0, qb * probes), probes, lutSpan, bias.AsSpan(0, qb * probes), nc,
                    candKeys.AsSpan(0, qb * nc), candRows.AsSpan(0, qb * nc));
                for (int i = 0; i < qb; i++)
                {
                    var plists = s.ProbeLists.AsSpan(i * probes, probes);
                    var keys = candKeys.AsSpan(i * nc, nc);
                    var rows = candRows.AsSpan(i * nc, nc);
                    int count = 0;
                    for (int c = 0; c < nc && rows[c] >= 0; c++, count++) rows[c] = DeviceLabel(dev, plists, rows[c]);
                    refined += Finish(qw.AsSpan((q0 + i) * d, d), plists, keys, rows, count,
                        distances.Slice((q0 + i) * k, k), labels.Slice((q0 + i) * k, k), table, s);
                }
            }
            ctx.Stats?.Add(listsProbed: (long)nq * probes, codesScanned: scanned, distances: refined, refined: refined);
        }
        finally
        {
            _scratchPool.Return(s);
            ArrayPool<int>.Shared.Return(probeInts);
            ArrayPool<float>.Shared.Return(luts);
            ArrayPool<float>.Shared.Return(bias);
            ArrayPool<float>.Shared.Return(candKeys);
            ArrayPool<long>.Shared.Return(candRows);
        }
    }

    // A global device row as the (probe << 32 | offset) label Finish reads.
    private static long DeviceLabel(DeviceListsCache dev, ReadOnlySpan<long> probeLists, long row)
    {
        int list = dev.RowList[row];
        int p = probeLists.IndexOf(list);
        return ((long)p << 32) | (uint)(row - dev.Offsets[list]);
    }

    private void DisposeDeviceLists()
    {
        lock (_deviceGate)
        {
            _deviceLists?.Lists.Dispose();
            _deviceLists = null;
        }
    }
}
