using System.Buffers;
using System.Runtime.InteropServices;
using Engine.Distance;
using Engine.Index.Lists;
using Engine.Quantization;
using Engine.Runtime;

namespace Engine.Index.Ivf;

public sealed partial class IvfIndex
{
    // Queries per coarse GEMM. The AVX-512 micro-kernel packs 32 query rows per pass (a 16-query chunk leaves half
    // of its lanes on zero padding), so large batches use 64; small batches use smaller chunks so every thread
    // still gets work.
    private const int MaxQueryChunk = 64;

    private static int ChunkFor(int nq, int threads) =>
        nq >= MaxQueryChunk * threads ? MaxQueryChunk : nq >= 32 * threads ? 32 : 16;

    /// <inheritdoc />
    /// <remarks>Pass <see cref="IvfSearchParameters"/> for probes, refine factor, code budget and filters. A batch is
    /// split over queries in chunks of 16 to 64 (coarse search of a chunk is one small GEMM).</remarks>
    /// <exception cref="ArgumentException">Wrong query dimension, non-finite queries, k ≤ 0, short buffers, an empty attribute window, or parameters of another index family.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A knob of <paramref name="parameters"/> is out of range (<see cref="IvfSearchParameters.Validate"/>;
    /// probes above the list count, negative threads, NaN attribute bounds).</exception>
    /// <exception cref="InvalidOperationException">The index is not trained.</exception>
    public unsafe void Search(ReadOnlySpan<float> queries, int k, Span<float> distances, Span<long> labels, SearchParameters? parameters = null)
    {
        int nq = Guard.Rows(queries, Dimension, nameof(queries));
        Guard.SearchBuffers(nq, k, distances.Length, labels.Length);
        Guard.Finite(queries, Dimension, nameof(queries));
        parameters?.Validate();
        SearchParameters.CheckFamily(parameters, "IVF", this);
        var ivf = parameters as IvfSearchParameters;
        int probes = CheckKnobs(ivf);
        // k-NN only: a range search takes no refine factor on any index (IvfIndex.Range.cs)
        if (ivf?.RefineFactor > 1 && !UsesRefineFactor(Spec))
            throw new ArgumentException($"RefineFactor applies to an index with a refine store (',RFlat' or ',Refine(...)') or fast-scan PQ codes; '{Description}' has neither, so it would change nothing.", "parameters");
        int rf = ivf?.RefineFactor ?? 1;
        long maxCodes = ivf?.MaxCodes ?? 0;
        EnsureTrained();
        if (nq == 0) return;
        int d = Dimension, threads = parameters?.ResolveThreads() ?? Environment.ProcessorCount;

        // Results written over the queries (the same buffer passed twice) must not change rows still to be read: copy them.
        bool aliased = queries.Overlaps(distances) || MemoryMarshal.AsBytes(queries).Overlaps(MemoryMarshal.AsBytes(labels));
        float[]? qw = PrepareQueries(queries, nq, out float[]? q, copy: aliased);
        long[]? allowed = null;
        try
        {
            fixed (float* callerRows = queries)
            fixed (float* preparedRows = qw)
            {
                var rows = new QueryRows(qw is null ? callerRows : preparedRows, nq * d);
                _lock.EnterRead();
                try
                {
                    var ctx = new SearchContext(this, k, probes, rf, maxCodes, parameters?.Filter, ivf, parameters?.Stats);
                    int allowedCount = 0;
                    if (ctx.Filtered && TryCollectAllowed(ctx, probes, out allowed, out allowedCount))
                        parameters?.Stats?.AddExactFallback();
                    if (allowed is null && UsesListJoin(nq, ctx)) SearchByListJoin(rows, nq, distances, labels, ctx, threads);
                    else RunChunks(rows, nq, distances, labels, ctx, allowed, allowedCount, threads);
                    parameters?.Stats?.Add(queries: nq);
                }
                finally { _lock.ExitRead(); }
            }
        }
        finally
        {
            ReturnQueries(q, qw);
            if (allowed is not null) ArrayPool<long>.Shared.Return(allowed);
        }
        if (Metric != Metric.L2)
            for (int i = 0; i < nq * k; i++) distances[i] = -distances[i];
    }

    // The queries as the lists see them, when that is not the caller's rows: a rented copy made unit length for cosine,
    // then through the front transform when the index has one (OPQ; the returned array; q holds the untransformed copy,
    // the same array without a transform). Null (both) for L2 and inner product without a transform, unless copy is
    // set: the lists read the caller's rows.
    // Give both back with ReturnQueries.
    private float[]? PrepareQueries(ReadOnlySpan<float> queries, int nq, out float[]? q, bool copy = false)
    {
        int d = Dimension;
        q = null;
        if (!copy && Metric != Metric.Cosine && _transform is null) return null;
        q = ArrayPool<float>.Shared.Rent(nq * d);
        queries.CopyTo(q);
        if (Metric == Metric.Cosine) for (int i = 0; i < nq; i++) Normalize(q.AsSpan(i * d, d));
        if (_transform is null) return q;
        var qw = ArrayPool<float>.Shared.Rent(nq * d);
        _transform.Apply(q.AsSpan(0, nq * d), qw.AsSpan(0, nq * d));
        return qw;
    }

    private static void ReturnQueries(float[]? q, float[]? qw)
    {
        if (qw is not null && !ReferenceEquals(qw, q)) ArrayPool<float>.Shared.Return(qw);
        if (q is not null) ArrayPool<float>.Shared.Return(q);
    }

    /// <summary>
    /// Whether <see cref="IvfSearchParameters.RefineFactor"/> changes what an index of <paramref name="spec"/> returns:
    /// with a refine store (k × factor candidates re-ranked), and with fast-scan PQ codes without one (k × factor
    /// survivors of the 16-bit filter keep exact ADC keys: a deeper heap loosens the filter's rounding).
    /// </summary>
    internal static bool UsesRefineFactor(IvfSpec spec) => spec.Refine is not null || spec.Encoding == IvfListEncoding.PQFastScan;

    // The knobs whose range depends on this index (list count, codec, coarse quantizer); returns the probe count.
    private int CheckKnobs(IvfSearchParameters? ivf)
    {
        int probes = ivf?.Probes ?? _defaultProbes;
        if (probes > ListCount)
            throw new ArgumentOutOfRangeException(nameof(IvfSearchParameters.Probes), probes, $"Probes must be in 1..{ListCount} (the list count), got {probes}.");
        if (ivf?.BoundEpsilon is not null && _rabitq is null)
            throw new ArgumentException($"BoundEpsilon applies to RaBitQ lists (RaBitQ, RaBitQ{{b}}, RaBitQfs{{b}}); '{Description}' has no error bound.", "parameters");
        if (ivf?.QuantizerEf is not null && Spec.CoarseHnswM == 0)
            throw new ArgumentException($"QuantizerEf applies to an HNSW coarse quantizer (IVF{{n}}_HNSW{{M}}); '{Description}' probes its centroids exhaustively.", "parameters");
        return probes;
    }

    /// <summary>Everything a worker needs about one call (read-only; a struct so a call allocates nothing for it).</summary>
    private readonly struct SearchContext(IvfIndex index, int k, int probes, int refineFactor, long maxCodes,
        IIdFilter? filter, IvfSearchParameters? ivf, SearchStats? stats)
    {
        public readonly int K = k, Probes = probes, RefineFactor = refineFactor;
        public readonly int? QuantizerEf = ivf?.QuantizerEf;
        public readonly float BoundEpsilon = ivf?.BoundEpsilon ?? RaBitQCodec.DefaultEpsilon;
        public readonly long MaxCodes = maxCodes;
        public readonly ListFilter Rows = new(filter, ivf?.HasWindow == true, ivf?.AttributeMin ?? double.NegativeInfinity, ivf?.AttributeMax ?? double.PositiveInfinity);
        public readonly double FallbackSelectivity = ivf?.ExactFallbackSelectivity ?? 0.01;
        public readonly SearchStats? Stats = stats;
        // SOAR stores two copies of a vector, so a query keeps 2k candidates at least: k distinct ids among them.
        public readonly int ScanK = index._spillMap is null ? k : (int)Math.Min(int.MaxValue / 2, 2L * k);
        public int Candidates => (int)Math.Min(int.MaxValue / 2, Math.Max(ScanK, (long)K * Math.Max(1, RefineFactor)));
        public IIdFilter? Filter => Rows.Filter;
        public bool HasWindow => Rows.HasWindow;
        public double Lo => Rows.Lo;
        public double Hi => Rows.Hi;
        public bool Filtered => Rows.Active;
        public readonly IvfIndex Index = index;

        public bool Allows(InvertedList list, int off) => Rows.Allows(list, off);
    }

    private void RunChunks(QueryRows qw, int nq, Span<float> distances, Span<long> labels, SearchContext ctx, long[]? allowed, int allowedCount, int threads)
    {
        int chunk = allowed is null && UsesDevice(ctx) ? DeviceChunk(nq, threads, ctx) : ChunkFor(nq, threads);
        var outKeys = ArrayPool<float>.Shared.Rent(nq * ctx.K);
        var outIds = ArrayPool<long>.Shared.Rent(nq * ctx.K);
        try
        {
            QueryFanOut.Run(nq, chunk, threads, _scratchPool, new ChunkSearch(this, chunk, qw, nq, outKeys, outIds, ctx, allowed, allowedCount));
            outKeys.AsSpan(0, nq * ctx.K).CopyTo(distances);
            outIds.AsSpan(0, nq * ctx.K).CopyTo(labels);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(outKeys);
            ArrayPool<long>.Shared.Return(outIds);
        }
    }

    /// <summary>One chunk of a k-NN batch (<see cref="RunChunk"/>) for the shared fan-out.</summary>
    private readonly struct ChunkSearch(IvfIndex index, int chunk, QueryRows qw, int nq, float[] outKeys, long[] outIds, SearchContext ctx,
        long[]? allowed, int allowedCount) : IQueryChunk<IvfScratch>
    {
        public void Run(int c, int first, int count, IvfScratch s) => index.RunChunk(c, chunk, qw, nq, outKeys, outIds, ctx, allowed, allowedCount, s);
    }

    // A new scratch for the pool: buffers sized on first use, the scanner of the index's codec.
    private IvfScratch NewScratch() =>
        new(Dimension, _pq is null ? _rabitq?.CodeSize ?? _binary?.CodeSize ?? 0 : PQ4FastScan.PaddedM(_pq.M), CreateScanner);

    private void RunChunk(int c, int chunk, QueryRows qw, int nq, float[] outKeys, long[] outIds, in SearchContext ctx, long[]? allowed, int allowedCount, IvfScratch s)
    {
        int d = Dimension, q0 = c * chunk, qb = Math.Min(chunk, nq - q0), k = ctx.K;
        s.Ensure(chunk, ListCount, ctx.Probes, ctx.Candidates);
        s.Scanner.BoundEpsilon = ctx.BoundEpsilon;
        if (allowed is not null)
        {
            for (int i = 0; i < qb; i++)
                ExactOverAllowed(qw.AsSpan((q0 + i) * d, d), allowed.AsSpan(0, allowedCount), outKeys.AsSpan((q0 + i) * k, k), outIds.AsSpan((q0 + i) * k, k), s, ctx);
            return;
        }
        _quantizer.Search(qw.AsSpan(q0 * d, qb * d), qb, ctx.Probes, s.ProbeKeys, s.ProbeLists, s, ctx.QuantizerEf);
        long scanned = 0, refined = 0;
        switch (ScanFor(qb, ctx))
        {
            case ChunkScan.Device:
                (scanned, refined) = ScanChunkOnDevice(qw, q0, qb, outKeys, outIds, s, ctx);
                break;
            case ChunkScan.ListMajor:
                (scanned, refined) = ScanChunkByList(qw, q0, qb, outKeys, outIds, s, ctx);
                break;
            default:
                for (int i = 0; i < qb; i++)
                {
                    var (sc, rf) = SearchOne(qw.AsSpan((q0 + i) * d, d), s.ProbeKeys.AsSpan(i * ctx.Probes, ctx.Probes), s.ProbeLists.AsSpan(i * ctx.Probes, ctx.Probes),
                        outKeys.AsSpan((q0 + i) * k, k), outIds.AsSpan((q0 + i) * k, k), s, ctx);
                    scanned += sc; refined += rf;
                }
                break;
        }
        bool exact = s.Scanner.ExactDistances;
        ctx.Stats?.Add(listsProbed: (long)qb * ctx.Probes, codesScanned: exact ? 0 : scanned,
            distances: exact ? scanned + refined : refined, refined: refined);
    }

    /// <summary>Scans the probed lists of one query and writes its sorted top-k (keys, ids). Returns (codes scanned, refined).</summary>
    private (long Scanned, long Refined) SearchOne(ReadOnlySpan<float> q, ReadOnlySpan<float> probeKeys, ReadOnlySpan<long> probeLists,
        Span<float> outKeys, Span<long> outIds, IvfScratch s, in SearchContext ctx)
    {
        int k = ctx.K;
        var scanner = s.Scanner;
        // Candidates are gathered by (probe, offset) so re-ranking reads the list directly, without the id map.
        int nc = scanner.CandidatesFor(ctx.ScanK, ctx.Candidates, _refine is not null);
        var cand = new TopKHeap(s.CandKeys.AsSpan(0, nc), s.CandLabels.AsSpan(0, nc));
        scanner.SetQuery(q);
        long scanned = 0;
        for (int p = 0; p < probeLists.Length; p++)
        {
            var list = OpenProbe(p, probeKeys, probeLists, scanner, ctx, ref scanned, out bool stop);
            if (stop) break;
            if (p + 1 < probeLists.Length) PrefetchListHead(probeLists[p + 1]);
            if (list is not null) scanner.ScanCodes(list, p, ref cand, ctx.Rows);
        }
        scanner.Drain(ref cand);
        return (scanned, Finish(q, probeLists, s.CandKeys.AsSpan(0, nc), s.CandLabels.AsSpan(0, nc), cand.Count, outKeys, outIds, scanner, s));
    }

    /// <summary>
    /// The <paramref name="p"/>-th probed list of a query, set on <paramref name="scanner"/> and counted in
    /// <paramref name="scanned"/>; null when it is empty. <paramref name="stop"/> is true past the last probe or once
    /// the code budget (<see cref="IvfSearchParameters.MaxCodes"/>) is spent.
    /// </summary>
    private InvertedList? OpenProbe(int p, ReadOnlySpan<float> probeKeys, ReadOnlySpan<long> probeLists, IvfListScanner scanner,
        in SearchContext ctx, ref long scanned, out bool stop)
    {
        long li = probeLists[p];
        stop = li < 0 || (ctx.MaxCodes > 0 && scanned >= ctx.MaxCodes && _lists[(int)li].Count > 0);
        if (stop) return null;
        var list = _lists[(int)li];
        if (list.Count == 0) return null;
        scanned += list.Count;
        scanner.SetList((int)li, probeKeys[p]);
        return list;
    }


    // Writes a query's top-k from its candidates (count entries over candKeys / candLabels, chosen by key): re-scored
    // from the refine store when there is one (all of them by RefineAll; in lower-bound order, stopping early, when the
    // candidates carry error bounds; skipping SOAR's second copies), otherwise as they are. The candidates form a heap
    // (a CPU scan's TopKHeap), or are sorted best first (sorted: a device scan's). Returns the candidates re-scored.
    private unsafe long Finish(ReadOnlySpan<float> q, ReadOnlySpan<long> probeLists, Span<float> candKeys, Span<long> candLabels, int count,
        Span<float> outKeys, Span<long> outIds, IvfListScanner scanner, IvfScratch s, bool sorted = false)
    {
        bool lowerBounds = _refine is not null && scanner.HasErrorBounds;
        bool dedup = _spillMap is not null;
        // Every candidate re-scored (no early stop): the three-pass refine, over one copy of each id under SOAR.
        if (_refine is not null && !lowerBounds)
        {
            if (dedup) count = DistinctCandidates(probeLists, candKeys, candLabels, count, s);
            return RefineAll(q, probeLists, candKeys, candLabels, count, outKeys, outIds, s);
        }
        // Only lower bounds are read in order (to stop early); otherwise every candidate goes to the final top-k,
        // whose content does not depend on the order, so the candidates are not sorted first.
        int found = count;
        if (lowerBounds && scanner.BoundsShiftKeys)
        {
            for (int c = 0; c < count; c++)
            {
                long label = candLabels[c];
                int p = (int)(label >> 32);
                candKeys[c] = scanner.LowerBound(candKeys[c], _lists[(int)probeLists[p]], p, (int)(uint)label);
            }
            // Each key moved by its own bound, so the candidates no longer form a heap: sort them outright (a heap sort
            // of a non-heap leaves them out of order, and the early stop below then skipped candidates it had to read).
            candKeys[..count].Sort(candLabels[..count]);
        }
        else if (lowerBounds && !sorted) new TopKHeap(candKeys, candLabels, count).SortAndPad(float.PositiveInfinity);
        // SOAR: an id may come twice. Refined copies get the same exact key, so the second is skipped before it is
        // read; estimates differ, so they are sorted first and each id keeps its best.
        if (dedup)
        {
            if (_refine is null && !lowerBounds) candKeys[..count].Sort(candLabels[..count]);
            s.Seen.Start(count);
        }
        long refined = 0;
        var final = new TopKHeap(outKeys, outIds);
        const int Ahead = 8; // refine rows are scattered (and a miss costs far more than a distance): fetch 8 candidates ahead
        if (_refine is not null)
            for (int c = 0; c < Math.Min(Ahead, found); c++) PrefetchRefine(candLabels[c], probeLists);
        for (int c = 0; c < found; c++)
        {
            // Error-bound re-ranking: candidates come in lower-bound order, so none after this one can beat the k-th.
            if (lowerBounds && candKeys[c] > final.Threshold) break;
            if (_refine is not null && c + Ahead < found) PrefetchRefine(candLabels[c + Ahead], probeLists);
            long label = candLabels[c];
            ref readonly var rows = ref _lists.Rows((int)probeLists[(int)(label >> 32)]);
            int off = (int)(uint)label;
            long id = rows.Ids[off];
            if (dedup && !s.Seen.Add(id)) continue;
            float key = candKeys[c];
            if (_refine is not null)
            {
                int size = _refine.CodeSize;
                key = _refine.Key(q, new ReadOnlySpan<byte>(rows.Refine + (long)off * size, size), Metric != Metric.L2, s.Vector);
                refined++;
            }
            final.Push(key, id);
        }
        final.SortAndPad(float.PositiveInfinity);
        return refined;
    }

    // SOAR files a vector under two lists, so both copies can be candidates (with raw codes their estimates are equal):
    // keeps the first copy of each id, in place, and returns how many are left. The ids' lines are requested first, so
    // their misses overlap instead of each stalling the set's probe; the refine rows of the copies dropped are never read.
    private unsafe int DistinctCandidates(ReadOnlySpan<long> probeLists, Span<float> candKeys, Span<long> candLabels, int count, IvfScratch s)
    {
        for (int c = 0; c < count; c++)
        {
            long label = candLabels[c];
            Runtime.Prefetch.At(_lists.Rows((int)probeLists[(int)(label >> 32)]).Ids + (int)(uint)label);
        }
        s.Seen.Start(count);
        int kept = 0;
        for (int c = 0; c < count; c++)
        {
            long label = candLabels[c];
            if (!s.Seen.Add(_lists.Rows((int)probeLists[(int)(label >> 32)]).Ids[(int)(uint)label])) continue;
            candKeys[kept] = candKeys[c];
            candLabels[kept++] = label;
        }
        return kept;
    }

    // Bytes of refine rows requested ahead of the one being scored by RefineAll (at least RefineWindowRows rows). On a
    // Zen 3 VM (AVX2), bench/ivf/ab-builds, 2 threads: 8 KiB was +13-14 % over 64 KiB on MNIST's 784-byte SQ8 rows (all
    // of a query's 30-160 candidates requested at once: hundreds of lines queue behind the miss buffers), and 4 KiB
    // (5 rows) +1 to +8 % over 8 KiB at MNIST p5-p10 (level at p20 r8), +3 % on GloVe's 400-byte rows; 2 KiB (2 rows)
    // lost 5-7 %. A single-thread probe of random 784-byte rows agreed (2-4 rows ahead 149-152 ns a row, 10 rows 166,
    // 30 rows 219). On an AVX-512 Zen 5 VM 16 and 24 KiB had measured level with 64 KiB (4 KiB not measured there).
    private const int RefineWindowBytes = 4 * 1024, RefineWindowRows = 4;

    /// <summary>
    /// Re-ranks every candidate from the refine store (no error bounds, no duplicates) and writes the sorted top-k.
    /// Three passes: the rows (and ids) of all candidates are requested first, then every key is computed with the
    /// query prepared once for the codec (<see cref="VectorCodec.Prepare"/>), then the k best are kept. Requesting the
    /// rows up front lets their misses overlap instead of queueing behind each distance and heap push; docs/ivf.md
    /// (Search item 4) has the measurement. Returns the candidates re-scored (all of them).
    /// </summary>
    private unsafe long RefineAll(ReadOnlySpan<float> q, ReadOnlySpan<long> probeLists, Span<float> candKeys, Span<long> candLabels, int count,
        Span<float> outKeys, Span<long> outIds, IvfScratch s)
    {
        var refine = _refine!;
        bool ip = Metric != Metric.L2;
        int size = refine.CodeSize;
        float constant = refine.Prepare(q, ip, s.Prepared);
        int window = Math.Clamp(RefineWindowBytes / size, RefineWindowRows, 256);
        int ahead = Math.Min(window, count);
        for (int c = 0; c < ahead; c++) PrefetchRefine(candLabels[c], probeLists);
        for (int c = 0; c < count; c++)
        {
            if (c + ahead < count) PrefetchRefine(candLabels[c + ahead], probeLists);
            long label = candLabels[c];
            byte* row = _lists.Rows((int)probeLists[(int)(label >> 32)]).Refine + (long)(uint)label * size;
            candKeys[c] = refine.PreparedKey(q, s.Prepared, constant, new ReadOnlySpan<byte>(row, size), ip, s.Vector);
        }
        var final = new TopKHeap(outKeys, outIds);
        for (int c = 0; c < count; c++)
        {
            float key = candKeys[c];
            if (key > final.Threshold) continue; // cannot enter whatever its id: skip reading the id
            long label = candLabels[c];
            final.Push(key, _lists.Rows((int)probeLists[(int)(label >> 32)]).Ids[(int)(uint)label]);
        }
        final.SortAndPad(float.PositiveInfinity);
        return count;
    }

    // List-major scanning pays when a chunk's queries share lists and the codes do not stay in cache between
    // queries (faiss' IVF fast-scan batches by list for the same reason); fast-scan tables are small enough to keep
    // one scanner per query of the chunk. A code budget (MaxCodes) is defined in each query's probe order, so it
    // keeps the query-major loop; so does fast-scan without a refine store, whose survivors get exact ADC keys that
    // its 16-bit pruning does not see, which makes its (approximate) result depend on the order of the offers.
    private bool ListMajor(int qb, in SearchContext ctx) => qb > 1 && ctx.MaxCodes == 0 && _codec is PQ4FastScanCodec && _refine is not null;

    // List-major pair order: every query's nearest list first (one pass over those lists, sorted by list), then the
    // rest sorted by list, so each query's candidate threshold is tight before most of its codes are read (30 % fewer
    // survivors of the 16-bit filter on GloVe-100 at 32 probes than one pass in list order).
    private const long FirstPassDone = 1L << 62;
    private const long ListMask = (1L << 30) - 1;

    /// <summary>
    /// Scans a chunk of queries list by list: the chunk's (list, query, probe) triples are sorted by list (each
    /// query's nearest list in a first pass), and each
    /// probed list's codes are read once, back to back for every query probing it, each query with its own scanner and
    /// candidate heap; then each query is finished as in <see cref="SearchOne"/>. The candidates and results equal the
    /// query-major loop's (a heap's final content does not depend on the order of its offers). Returns (codes
    /// scanned, refined) summed over the chunk.
    /// </summary>
    private (long Scanned, long Refined) ScanChunkByList(QueryRows qw, int q0, int qb, float[] outKeys, long[] outIds, IvfScratch s, in SearchContext ctx)
    {
        int d = Dimension, k = ctx.K, probes = ctx.Probes;
        int nc = s.Scanner.CandidatesFor(ctx.ScanK, ctx.Candidates, _refine is not null);
        s.EnsureBatch(qb, probes, nc);
        int pairs = 0;
        for (int i = 0; i < qb; i++)
        {
            var scanner = s.Scanners[i];
            scanner.BoundEpsilon = ctx.BoundEpsilon;
            scanner.SetQuery(qw.AsSpan((q0 + i) * d, d));
            s.BatchCounts[i] = 0;
            s.BatchScanned[i] = 0;
            for (int p = 0; p < probes; p++)
            {
                long li = s.ProbeLists[i * probes + p];
                if (li < 0) break;
                // a list that never held a row is skipped without loading its object (one that held rows and was
                // emptied by removals is scanned: it adds nothing)
                if (_lists.Rows((int)li).CodeBytes == 0) continue;
                s.Pairs[pairs++] = (p == 0 ? 0 : FirstPassDone) | (li << 32) | (uint)(i * probes + p);
            }
        }
        var order = SortPairs(s, pairs);
        for (int j = 0; j < pairs; j++)
        {
            int li = (int)((order[j] >> 32) & ListMask), slot = (int)(uint)order[j];
            int i = slot / probes, p = slot - i * probes;
            var scanner = s.Scanners[i];
            // The next pair probes the same list for another query: fast-scan both queries in one pass over the codes.
            int slot2 = j + 1 < pairs && (int)((order[j + 1] >> 32) & ListMask) == li ? (int)(uint)order[j + 1] : -1;
            var paired = slot2 >= 0 && scanner is FastScanListScanner fa && fa.CanPair(ctx.Rows)
                && s.Scanners[slot2 / probes] is FastScanListScanner fb && fb.CanPair(ctx.Rows) ? fb : null;
            int after = paired is null ? j + 1 : j + 2;
            if (after < pairs && (int)((order[after] >> 32) & ListMask) is int next && next != li)
            {
                _lists.PrefetchObject(next);
                PrefetchListHead(next, CodeHeadBytes);
            }
            var list = _lists[li];
            var cand = new TopKHeap(s.BatchKeys.AsSpan(i * nc, nc), s.BatchLabels.AsSpan(i * nc, nc), s.BatchCounts[i]);
            scanner.SetList(li, s.ProbeKeys[slot]);
            s.BatchScanned[i] += list.Count;
            if (paired is not null)
            {
                int i2 = slot2 / probes, p2 = slot2 - i2 * probes;
                var cand2 = new TopKHeap(s.BatchKeys.AsSpan(i2 * nc, nc), s.BatchLabels.AsSpan(i2 * nc, nc), s.BatchCounts[i2]);
                paired.SetList(li, s.ProbeKeys[slot2]);
                ((FastScanListScanner)scanner).ScanCodesPair(list, p, ref cand, paired, p2, ref cand2);
                s.BatchCounts[i2] = cand2.Count;
                s.BatchScanned[i2] += list.Count;
                j++;
            }
            else scanner.ScanCodes(list, p, ref cand, ctx.Rows);
            s.BatchCounts[i] = cand.Count;
        }
        long scanned = 0, refined = 0;
        for (int i = 0; i < qb; i++)
        {
            var cand = new TopKHeap(s.BatchKeys.AsSpan(i * nc, nc), s.BatchLabels.AsSpan(i * nc, nc), s.BatchCounts[i]);
            s.Scanners[i].Drain(ref cand);
            s.BatchCounts[i] = cand.Count;
            refined += Finish(qw.AsSpan((q0 + i) * d, d), s.ProbeLists.AsSpan(i * probes, probes), s.BatchKeys.AsSpan(i * nc, nc),
                s.BatchLabels.AsSpan(i * nc, nc), s.BatchCounts[i], outKeys.AsSpan((q0 + i) * k, k), outIds.AsSpan((q0 + i) * k, k), s.Scanners[i], s);
            scanned += s.BatchScanned[i];
        }
        return (scanned, refined);
    }

    /// <summary>
    /// The chunk's pairs in ascending order (first pass before the rest, then by list, then by query·probe slot): a
    /// counting sort over the 2 × nlist (pass, list) buckets when there are enough pairs to pay for the counters
    /// (it is stable, and the pairs were made in slot order, so the order equals a comparison sort's), otherwise
    /// <see cref="Array.Sort{T}(T[], int, int)"/> in place.
    /// </summary>
    private ReadOnlySpan<long> SortPairs(IvfScratch s, int pairs)
    {
        int buckets = 2 * ListCount;
        if (buckets > 2 * pairs)
        {
            Array.Sort(s.Pairs, 0, pairs);
            return s.Pairs.AsSpan(0, pairs);
        }
        var count = s.Buckets(buckets);
        var from = s.Pairs.AsSpan(0, pairs);
        foreach (long pair in from) count[Bucket(pair) + 1]++;
        for (int b = 1; b <= buckets; b++) count[b] += count[b - 1];
        var to = s.SortedPairs.AsSpan(0, pairs);
        foreach (long pair in from) to[count[Bucket(pair)]++] = pair;
        return to;
    }

    // (pass, list) of a pair: its bits above the slot, which lie below 2 × nlist.
    private int Bucket(long pair) => (int)(pair >> 62) * ListCount + (int)((pair >> 32) & ListMask);

    // The next probed list starts at an unrelated address: fetch its first codes while this list is scanned, so the
    // hardware prefetcher takes over from a warm start instead of a miss.
    // 16 KiB for full vectors (the query-major scan); 2 KiB ahead of a list-major fast-scan list, whose codes are
    // small enough to stay in cache on data sets like MNIST, where a longer prefetch is pure overhead.
    private const int ListHeadBytes = 16384, CodeHeadBytes = 2048;

    // Addresses come from the lists' dense table (InvertedLists.Rows), not from the list objects: loading a list
    // object and then its array header were two dependent misses before each prefetch could even be issued (on
    // GloVe-100 under L2 about a quarter of RefineAll's samples sat on them).
    private unsafe void PrefetchListHead(long li, int bytes = ListHeadBytes)
    {
        if (li < 0) return;
        ref readonly var rows = ref _lists.Rows((int)li);
        Runtime.Prefetch.Range(rows.Codes, Math.Min(rows.CodeBytes, bytes));
    }

    private unsafe void PrefetchRefine(long label, ReadOnlySpan<long> probeLists)
    {
        ref readonly var rows = ref _lists.Rows((int)probeLists[(int)(label >> 32)]);
        int size = _refine!.CodeSize, off = (int)(uint)label;
        Runtime.Prefetch.Range(rows.Refine + (long)off * size, size);
        // the id is read for every refined candidate too (final heap ties go by id): its line is a miss of its own
        Runtime.Prefetch.At(rows.Ids + off);
    }

    /// <summary>How a chunk's lists are scanned.</summary>
    private enum ChunkScan
    {
        /// <summary>Query by query on the CPU (<see cref="SearchOne"/>).</summary>
        QueryMajor,
        /// <summary>List by list on the CPU, one scanner per query (<see cref="ScanChunkByList"/>).</summary>
        ListMajor,
        /// <summary>One device launch over the chunk, one device scanner per query (<see cref="ScanChunkOnDevice"/>).</summary>
        Device,
    }

    // The selection point of a search's scan, with CreateScanner below: the device when one is attached and the search
    // has no per-row predicate or code budget (UsesDevice), else list-major or query-major on the CPU.
    private ChunkScan ScanFor(int qb, in SearchContext ctx) =>
        UsesDevice(ctx) ? ChunkScan.Device : ListMajor(qb, ctx) ? ChunkScan.ListMajor : ChunkScan.QueryMajor;

    // The scanner of this index's list codec: the one place a search chooses by codec (once per search thread). With
    // device, the codec's device scanner (IDeviceKeyScanner: the same keys from tables and per-row factors a device
    // scan evaluates; RaBitQ's CPU scanners are their own), or null when the codec has none.
    private IvfListScanner? CreateScanner(bool device) => _codec switch
    {
        PQ4FastScanCodec fs => device ? new DeviceTableScanner(fs.Quantizer, _tables, Metric, fastScan: true)
            : new FastScanListScanner(fs.Quantizer, _tables, Metric, hasRefine: _refine is not null),
        ProductQuantizer pq => device ? new DeviceTableScanner(pq, _tables, Metric, fastScan: false) : new PQListScanner(pq, _tables, Metric),
        RaBitQFastScanCodec rfs => new RaBitQFastScanListScanner(rfs, _quantizer, hasRefine: _refine is not null),
        RaBitQCodec rabitq => new RaBitQListScanner(rabitq, _quantizer, hasRefine: _refine is not null),
        BinaryCodec binary => device ? null : new BinaryListScanner(binary, _quantizer, Metric, _residual),
        _ => device ? null : new FlatListScanner(Dimension, Metric),
    };
}
