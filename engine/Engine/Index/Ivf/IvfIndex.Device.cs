using System.Buffers;

namespace Engine.Index.Ivf;

public sealed partial class IvfIndex
{
    // Upper bound of the table floats of one device launch (64 MiB): a launch (one chunk of queries) takes at most
    // max(1, this / (tables per query × codeBytes × 256)) queries.
    private const long DeviceTableFloats = 16L << 20;

    private readonly Lock _deviceGate = new();
    private IIvfDeviceScanProvider? _deviceScan;
    private DeviceListsCache? _deviceLists;
    private bool? _supportsDevice;
    private long _deviceStamp; // bumped by every write-locked mutation; the device copy is rebuilt when it moves

    /// <summary>
    /// Runs the list scan of searches on an accelerator (e.g. Engine.Gpu's <c>GpuIvfScanProvider</c>); null scans on
    /// the CPU. Lists with a device scanner: PQ (<c>PQ{m}</c>, <c>PQ{m}x4</c>, <c>PQ{m}x4fs</c>, residual or raw
    /// <c>nr</c>) and RaBitQ (<c>RaBitQ</c>, <c>RaBitQ{b}</c> for b = 1..8, <c>RaBitQfs1</c>, <c>RaBitQfs4</c>). The lists are
    /// uploaded once (on the first search after a change) and stay on the device; each launch scans a chunk of queries ×
    /// their probed lists with tables built on the CPU by the codec's device scanner and returns each query's k (×
    /// refine factor with a refine store) best keys, which go through the same refine and error-bound re-ranking as the
    /// CPU path. Searches with an id filter, an attribute window or a code budget
    /// (<see cref="IvfSearchParameters.MaxCodes"/>) keep the CPU scanner (the device scan has no per-row predicate).
    /// Not saved with the index.
    /// </summary>
    /// <remarks>Device memory: total × codeBytes bytes of sub-codes (+ 12 bytes of factors per row for RaBitQ) and
    /// (nlist + 1) × 4 bytes of offsets, resident; per launch the chunk's tables (per (query, probe) for residual L2 PQ,
    /// else per query; codeBytes × 1 KiB each), 20 bytes of terms and 4 of probe per (query, probe), and the provider's
    /// top-k scratch. codeBytes: M for PQ; ⌈d / ⌊8 / b⌋⌉ for RaBitQ{b}; ⌈d / 4⌉ (fs1) or d (fs4) for fast-scan RaBitQ.</remarks>
    /// <exception cref="NotSupportedException">The lists have no device scanner (Flat, SQ, binary).</exception>
    public IIvfDeviceScanProvider? DeviceScan
    {
        get => _deviceScan;
        set
        {
            if (value is not null && !SupportsDeviceScan)
                throw new NotSupportedException($"'{Description}' has no device list scanner: only PQ lists (PQ{{m}}, PQ{{m}}x4, PQ{{m}}x4fs, residual or nr) and RaBitQ lists (RaBitQ{{b}}, RaBitQfs{{b}}) scan on an accelerator.");
            // A disposed index released its device lists already: dropping the provider is a no-op.
            if (value is null && _lock.IsClosed) { _deviceScan = null; return; }
            // Under the write lock: searches in flight hold the read lock and may be scanning the device lists this
            // disposes (a search then launched on freed device memory).
            _lock.EnterWrite();
            try
            {
                lock (_deviceGate)
                {
                    _deviceLists?.Lists.Dispose();
                    _deviceLists = null;
                    _deviceScan = value;
                }
            }
            finally { _lock.ExitWrite(); }
        }
    }

    /// <summary>True when this index's lists can be scanned by a <see cref="DeviceScan"/> provider (PQ or RaBitQ codes).</summary>
    public bool SupportsDeviceScan => _supportsDevice ??= CreateScanner(device: true) is not null;

    private sealed record DeviceListsCache(IIvfDeviceLists Lists, int[] Offsets, int[] RowList, int CodeBytes, bool TablePerList, long Stamp);

    private bool UsesDevice(in SearchContext ctx) => _deviceScan is not null && !ctx.Filtered && ctx.MaxCodes == 0;

    // Uploads the lists as the codec's device scanner lays them out, when the device copy is missing or stale. Runs
    // under the read lock.
    private DeviceListsCache DeviceLists()
    {
        lock (_deviceGate)
        {
            if (_deviceLists is { } c && c.Stamp == Interlocked.Read(ref _deviceStamp)) return c;
            _deviceLists?.Lists.Dispose();
            _deviceLists = null;
            var scanner = (IDeviceKeyScanner)CreateScanner(device: true)!;
            int m = scanner.DeviceCodeBytes, nlist = ListCount, per = scanner.HasRowFactors ? IvfDeviceRows.FactorsPerRow : 0;
            var offsets = new int[nlist + 1];
            for (int l = 0; l < nlist; l++) offsets[l + 1] = checked(offsets[l] + _lists[l].Count);
            int total = offsets[nlist];
            var codes = new byte[(long)total * m];
            var factors = new float[(long)total * per];
            var rowList = new int[total];
            for (int l = 0; l < nlist; l++)
            {
                int count = _lists[l].Count;
                if (count == 0) continue;
                rowList.AsSpan(offsets[l], count).Fill(l);
                scanner.WriteRows(_lists[l], codes.AsSpan(offsets[l] * m, count * m), factors.AsSpan(offsets[l] * per, count * per));
            }
            var lists = _deviceScan!.Upload(new IvfDeviceRows(codes, offsets, m, factors));
            return _deviceLists = new DeviceListsCache(lists, offsets, rowList, m, scanner.TablePerList, _deviceStamp);
        }
    }

    // Queries per device chunk (one launch): the batch split over the threads (their tables are built in parallel while
    // another chunk's launch runs), at most DeviceTableFloats of tables and DeviceTableFloats of coarse distances
    // (each worker's pooled scratch keeps chunk × nlist of them: without this bound a large batch over many lists
    // left gigabytes in the pool).
    private int DeviceChunk(int nq, int threads, in SearchContext ctx)
    {
        var dev = DeviceLists();
        long perQuery = Math.Max((dev.TablePerList ? ctx.Probes : 1) * (long)dev.CodeBytes * 256, ListCount);
        int cap = (int)Math.Max(1, Math.Min(int.MaxValue, DeviceTableFloats / perQuery));
        int share = (nq + Math.Max(1, threads) - 1) / Math.Max(1, threads);
        return Math.Min(cap, Math.Max(share, Math.Min(nq, MaxQueryChunk)));
    }

    /// <summary>
    /// The device scan of a chunk whose probes are found (<see cref="RunChunk"/>): each query's device scanner
    /// (<see cref="IDeviceKeyScanner"/>, from <see cref="CreateScanner"/>) builds its tables and probe terms on the CPU,
    /// one launch scans every probed list of the chunk and selects each query's candidates on the device, and
    /// <see cref="Finish"/> re-ranks them with that scanner, as <see cref="SearchOne"/> does. Returns (codes scanned, refined).
    /// </summary>
    private (long Scanned, long Refined) ScanChunkOnDevice(QueryRows qw, int q0, int qb, float[] outKeys, long[] outIds, IvfScratch s, in SearchContext ctx)
    {
        var dev = DeviceLists();
        int d = Dimension, k = ctx.K, probes = ctx.Probes, m = dev.CodeBytes;
        s.EnsureBatch(qb, probes, ctx.Candidates, device: true);
        int nc = s.DeviceScanners[0].CandidatesFor(ctx.ScanK, ctx.Candidates, _refine is not null);
        long perTable = (long)m * 256;
        long tableCount = dev.TablePerList ? (long)qb * probes : qb;
        int[] probeInts = [];
        float[] tables = [];
        IvfProbeTerms[] terms = [];
        long scanned = 0, refined = 0;
        try
        {
            // rented inside the try: a failed rent (the checked size) returns the ones taken
            probeInts = ArrayPool<int>.Shared.Rent(qb * probes);
            tables = ArrayPool<float>.Shared.Rent(checked((int)(tableCount * perTable)));
            terms = ArrayPool<IvfProbeTerms>.Shared.Rent(qb * probes);
            for (int i = 0; i < qb; i++)
            {
                var scanner = s.DeviceScanners[i];
                var keys = (IDeviceKeyScanner)scanner;
                scanner.BoundEpsilon = ctx.BoundEpsilon;
                scanner.SetQuery(qw.AsSpan((q0 + i) * d, d));
                if (!dev.TablePerList) keys.WriteTable(tables.AsSpan((int)(i * perTable), (int)perTable));
                for (int p = 0; p < probes; p++)
                {
                    int slot = i * probes + p;
                    long li = s.ProbeLists[slot];
                    probeInts[slot] = (int)li;
                    terms[slot] = default;
                    if (li < 0) continue;
                    scanned += _lists[(int)li].Count;
                    scanner.SetList((int)li, s.ProbeKeys[slot]);
                    terms[slot] = keys.ProbeTerms(p);
                    if (dev.TablePerList) keys.WriteTable(tables.AsSpan((int)(slot * perTable), (int)perTable));
                }
            }
            var candKeys = s.BatchKeys.AsSpan(0, qb * nc);
            var candRows = s.BatchLabels.AsSpan(0, qb * nc);
            dev.Lists.Scan(new IvfDeviceBatch(probeInts.AsSpan(0, qb * probes), probes, tables.AsSpan(0, (int)(tableCount * perTable)),
                dev.TablePerList, terms.AsSpan(0, qb * probes)), nc, candKeys, candRows);
            for (int i = 0; i < qb; i++)
            {
                var plists = s.ProbeLists.AsSpan(i * probes, probes);
                var rows = candRows.Slice(i * nc, nc);
                int count = 0;
                for (; count < nc && rows[count] >= 0; count++) rows[count] = DeviceLabel(dev, plists, rows[count]);
                refined += Finish(qw.AsSpan((q0 + i) * d, d), plists, candKeys.Slice(i * nc, nc), rows, count,
                    outKeys.AsSpan((q0 + i) * k, k), outIds.AsSpan((q0 + i) * k, k), s.DeviceScanners[i], s, sorted: true);
            }
        }
        finally
        {
            if (probeInts.Length > 0) ArrayPool<int>.Shared.Return(probeInts);
            if (tables.Length > 0) ArrayPool<float>.Shared.Return(tables);
            if (terms.Length > 0) ArrayPool<IvfProbeTerms>.Shared.Return(terms);
        }
        return (scanned, refined);
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
