using System.Buffers;
using System.Numerics;
using System.Runtime.InteropServices;
using Engine.Distance;
using Engine.Quantization;

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
    /// <exception cref="ArgumentException">Wrong query dimension, non-finite queries, k ≤ 0, short buffers or an empty attribute window.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A knob of <paramref name="parameters"/> is out of range (<see cref="IvfSearchParameters.Validate"/>;
    /// probes above the list count, negative threads, NaN attribute bounds).</exception>
    /// <exception cref="InvalidOperationException">The index is not trained.</exception>
    public void Search(ReadOnlySpan<float> queries, int k, Span<float> distances, Span<long> labels, SearchParameters? parameters = null)
    {
        int nq = Guard.Rows(queries, Dimension, nameof(queries));
        Guard.SearchBuffers(nq, k, distances.Length, labels.Length);
        Guard.Finite(queries, Dimension, nameof(queries));
        parameters?.Validate();
        var ivf = parameters as IvfSearchParameters;
        int probes = ivf?.Probes ?? _defaultProbes;
        if (probes > ListCount)
            throw new ArgumentOutOfRangeException(nameof(IvfSearchParameters.Probes), probes, $"Probes must be in 1..{ListCount} (the list count), got {probes}.");
        int rf = ivf?.RefineFactor ?? 1;
        long maxCodes = ivf?.MaxCodes ?? 0;
        EnsureTrained();
        if (nq == 0) return;
        int d = Dimension, threads = parameters?.ResolveThreads() ?? Environment.ProcessorCount;

        float[] q = ArrayPool<float>.Shared.Rent(nq * d);
        float[] qw = q;
        long[]? allowed = null;
        try
        {
            queries.CopyTo(q);
            if (Metric == Metric.Cosine) for (int i = 0; i < nq; i++) Normalize(q.AsSpan(i * d, d));
            if (_opq is not null)
            {
                qw = ArrayPool<float>.Shared.Rent(nq * d);
                _opq.Apply(q.AsSpan(0, nq * d), qw.AsSpan(0, nq * d));
            }
            _lock.EnterReadLock();
            try
            {
                var ctx = new SearchContext(this, k, probes, rf, maxCodes, parameters?.Filter, ivf, parameters?.Stats);
                int allowedCount = 0;
                if (ctx.Filtered && TryCollectAllowed(ctx, probes, out allowed, out allowedCount))
                    parameters?.Stats?.AddExactFallback();
                RunChunks(qw, nq, distances, labels, ctx, allowed, allowedCount, threads);
                parameters?.Stats?.Add(queries: nq);
            }
            finally { _lock.ExitReadLock(); }
        }
        finally
        {
            if (!ReferenceEquals(qw, q)) ArrayPool<float>.Shared.Return(qw);
            ArrayPool<float>.Shared.Return(q);
            if (allowed is not null) ArrayPool<long>.Shared.Return(allowed);
        }
        if (Metric != Metric.L2)
            for (int i = 0; i < nq * k; i++) distances[i] = -distances[i];
    }

    /// <summary>Everything a worker needs about one call (read-only; a struct so a call allocates nothing for it).</summary>
    private readonly struct SearchContext(IvfIndex index, int k, int probes, int refineFactor, long maxCodes,
        IIdFilter? filter, IvfSearchParameters? ivf, SearchStats? stats)
    {
        public readonly int K = k, Probes = probes, RefineFactor = refineFactor;
        public readonly long MaxCodes = maxCodes;
        public readonly IIdFilter? Filter = filter;
        public readonly bool HasWindow = ivf?.HasWindow == true;
        public readonly double Lo = ivf?.AttributeMin ?? double.NegativeInfinity, Hi = ivf?.AttributeMax ?? double.PositiveInfinity;
        public readonly double FallbackSelectivity = ivf?.ExactFallbackSelectivity ?? 0.01;
        public readonly SearchStats? Stats = stats;
        public readonly int Candidates = (int)Math.Min(int.MaxValue / 2, (long)k * Math.Max(1, refineFactor));
        public bool Filtered => Filter is not null || HasWindow;
        public readonly IvfIndex Index = index;

        public bool Allows(IvfList list, int off) =>
            (!HasWindow || (list.Attributes[off] >= Lo && list.Attributes[off] <= Hi)) && (Filter is null || Filter.IsAllowed(list.Ids[off]));
    }

    private void RunChunks(float[] qw, int nq, Span<float> distances, Span<long> labels, SearchContext ctx, long[]? allowed, int allowedCount, int threads)
    {
        int chunk = ChunkFor(nq, threads);
        int chunks = (nq + chunk - 1) / chunk;
        var outKeys = ArrayPool<float>.Shared.Rent(nq * ctx.K);
        var outIds = ArrayPool<long>.Shared.Rent(nq * ctx.K);
        try
        {
            if (threads == 1 || chunks == 1)
            {
                var s = RentScratch();
                for (int c = 0; c < chunks; c++) RunChunk(c, chunk, qw, nq, outKeys, outIds, ctx, allowed, allowedCount, s);
                _scratchPool.Add(s);
            }
            else RunChunksParallel(chunks, chunk, qw, nq, outKeys, outIds, ctx, allowed, allowedCount, threads);
            outKeys.AsSpan(0, nq * ctx.K).CopyTo(distances);
            outIds.AsSpan(0, nq * ctx.K).CopyTo(labels);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(outKeys);
            ArrayPool<long>.Shared.Return(outIds);
        }
    }

    // Its own method: the lambda's closure (captured arguments) would otherwise be allocated on every call, also
    // by single-threaded searches that never run it.
    private void RunChunksParallel(int chunks, int chunk, float[] qw, int nq, float[] outKeys, long[] outIds, SearchContext ctx,
        long[]? allowed, int allowedCount, int threads) =>
        ParallelWork.For(0, chunks, threads, RentScratch,
            (c, _, s) => { RunChunk(c, chunk, qw, nq, outKeys, outIds, ctx, allowed, allowedCount, s); return s; },
            s => _scratchPool.Add(s));

    private IvfScratch RentScratch()
    {
        if (_scratchPool.TryTake(out var s)) return s;
        int m = _pq?.M ?? 0, ksub = _pq?.Ksub ?? 0;
        return new IvfScratch(Dimension, m, ksub, m == 0 ? 0 : PQ4FastScan.LutBytes(m));
    }

    private void RunChunk(int c, int chunk, float[] qw, int nq, float[] outKeys, long[] outIds, in SearchContext ctx, long[]? allowed, int allowedCount, IvfScratch s)
    {
        int d = Dimension, q0 = c * chunk, qb = Math.Min(chunk, nq - q0), k = ctx.K;
        s.Ensure(chunk, ListCount, ctx.Probes, ctx.Candidates);
        if (allowed is not null)
        {
            for (int i = 0; i < qb; i++)
                ExactOverAllowed(qw.AsSpan((q0 + i) * d, d), allowed.AsSpan(0, allowedCount), outKeys.AsSpan((q0 + i) * k, k), outIds.AsSpan((q0 + i) * k, k), s, ctx);
            return;
        }
        CoarseSearch(qw.AsSpan(q0 * d, qb * d), qb, ctx.Probes, s);
        long scanned = 0, refined = 0;
        for (int i = 0; i < qb; i++)
        {
            var (sc, rf) = SearchOne(qw.AsSpan((q0 + i) * d, d), s.ProbeKeys.AsSpan(i * ctx.Probes, ctx.Probes), s.ProbeLists.AsSpan(i * ctx.Probes, ctx.Probes),
                outKeys.AsSpan((q0 + i) * k, k), outIds.AsSpan((q0 + i) * k, k), s, ctx);
            scanned += sc; refined += rf;
        }
        ctx.Stats?.Add(listsProbed: (long)qb * ctx.Probes, codesScanned: Spec.Encoding == IvfListEncoding.Flat ? 0 : scanned,
            distances: Spec.Encoding == IvfListEncoding.Flat ? scanned + refined : refined, refined: refined);
    }

    // Nearest `probes` centroids of each query of the chunk, sorted, into s.ProbeKeys / s.ProbeLists.
    private void CoarseSearch(ReadOnlySpan<float> qs, int qb, int probes, IvfScratch s)
    {
        int nl = ListCount;
        var dots = s.Coarse.AsSpan(0, qb * nl);
        Distances.DotManyToMany(qs, _centroids, Dimension, dots);
        bool l2 = Metric == Metric.L2;
        if (l2) Distances.SquaredNorms(qs, Dimension, s.QueryNorms);
        for (int i = 0; i < qb; i++)
        {
            var heap = new TopKHeap(s.ProbeKeys.AsSpan(i * probes, probes), s.ProbeLists.AsSpan(i * probes, probes));
            var row = dots.Slice(i * nl, nl);
            float qn = l2 ? s.QueryNorms[i] : 0;
            for (int j = 0; j < nl; j++)
            {
                float key = l2 ? MathF.Max(0, qn + _centroidNorms[j] - 2 * row[j]) : -row[j];
                if (key <= heap.Threshold) heap.Push(key, j);
            }
            heap.SortAndPad(float.PositiveInfinity);
        }
    }

    /// <summary>Scans the probed lists of one query and writes its sorted top-k (keys, ids). Returns (codes scanned, refined).</summary>
    private (long Scanned, long Refined) SearchOne(ReadOnlySpan<float> q, ReadOnlySpan<float> probeKeys, ReadOnlySpan<long> probeLists,
        Span<float> outKeys, Span<long> outIds, IvfScratch s, in SearchContext ctx)
    {
        int k = ctx.K;
        bool exactLists = Spec.Encoding == IvfListEncoding.Flat;
        // Candidates are gathered by (probe, offset) so re-ranking reads the list directly, without the id map.
        int nc = exactLists || (_refine is null && Spec.Encoding == IvfListEncoding.PQ) ? k : ctx.Candidates;
        var cand = new TopKHeap(s.CandKeys.AsSpan(0, nc), s.CandLabels.AsSpan(0, nc));
        if (!exactLists) QueryTable(q, s);
        long scanned = 0;
        for (int p = 0; p < probeLists.Length; p++)
        {
            long li = probeLists[p];
            if (li < 0) break;
            var list = _lists[li];
            if (list.Count == 0) continue;
            if (ctx.MaxCodes > 0 && scanned >= ctx.MaxCodes) break;
            scanned += list.Count;
            switch (Spec.Encoding)
            {
                case IvfListEncoding.Flat: ScanFlat(q, list, p, ref cand, s, ctx); break;
                case IvfListEncoding.PQ: ScanPQ(list, (int)li, p, probeKeys[p], ref cand, s, ctx); break;
                default: ScanFastScan(list, (int)li, p, probeKeys[p], ref cand, s, ctx); break;
            }
        }
        int found = cand.SortAndPad(float.PositiveInfinity);
        long refined = 0;
        var final = new TopKHeap(outKeys, outIds);
        const int Ahead = 2; // refine rows are scattered: fetch the rows of candidates c+1, c+2 while scoring c
        if (_refine is not null)
            for (int c = 0; c < Math.Min(Ahead, found); c++) PrefetchRefine(s.CandLabels[c], probeLists);
        for (int c = 0; c < found; c++)
        {
            if (_refine is not null && c + Ahead < found) PrefetchRefine(s.CandLabels[c + Ahead], probeLists);
            long label = s.CandLabels[c];
            int p = (int)(label >> 32), off = (int)(uint)label;
            int li = (int)probeLists[p];
            var list = _lists[li];
            float key = s.CandKeys[c];
            if (_refine is not null)
            {
                key = _refine.Key(q, list.Refine.Slice(off * _refine.CodeSize, _refine.CodeSize), Metric != Metric.L2, s.Vector);
                refined++;
            }
            final.Push(key, list.Ids[off]);
        }
        final.SortAndPad(float.PositiveInfinity);
        return (scanned, refined);
    }

    private void PrefetchRefine(long label, ReadOnlySpan<long> probeLists)
    {
        var list = _lists[(int)probeLists[(int)(label >> 32)]];
        int size = _refine!.CodeSize;
        Runtime.Prefetch.Range(list.Refine.Slice((int)(uint)label * size, size));
    }

    // Term 3 (query-only) table: −2⟨q_m, c_mj⟩ for L2, −⟨q_m, c_mj⟩ for inner product.
    private void QueryTable(ReadOnlySpan<float> q, IvfScratch s)
    {
        var pq = _pq!;
        var t = s.Term3.AsSpan(0, pq.M * pq.Ksub);
        pq.InnerProductTable(q, t);
        System.Numerics.Tensors.TensorPrimitives.Multiply(t, Metric == Metric.L2 ? -2f : -1f, t);
    }

    // Float table of one probed list: term 3 plus (L2) term 2.
    private ReadOnlySpan<float> ListTable(int li, IvfScratch s)
    {
        var pq = _pq!;
        int per = pq.M * pq.Ksub;
        if (Metric != Metric.L2) return s.Term3.AsSpan(0, per);
        ReadOnlySpan<float> t2;
        if (_term2 is not null) t2 = _term2.AsSpan(li * per, per);
        else { ComputeTerm2(li, s.Term2.AsSpan(0, per)); t2 = s.Term2.AsSpan(0, per); }
        System.Numerics.Tensors.TensorPrimitives.Add(s.Term3.AsSpan(0, per), t2, s.Lut.AsSpan(0, per));
        return s.Lut.AsSpan(0, per);
    }

    private void ScanFlat(ReadOnlySpan<float> q, IvfList list, int probe, ref TopKHeap heap, IvfScratch s, in SearchContext ctx)
    {
        int d = Dimension;
        var rows = MemoryMarshal.Cast<byte, float>(list.Codes.Slice(0, list.Count * CodeSize));
        bool ip = Metric != Metric.L2;
        for (int off = 0; off < list.Count; off++)
        {
            var x = rows.Slice(off * d, d);
            float key = ip ? -Distances.Dot(q, x) : Distances.SquaredL2(q, x);
            if (key > heap.Threshold || (ctx.Filtered && !ctx.Allows(list, off))) continue;
            heap.Push(key, ((long)probe << 32) | (uint)off);
        }
    }

    private void ScanPQ(IvfList list, int li, int probe, float bias, ref TopKHeap heap, IvfScratch s, in SearchContext ctx)
    {
        var pq = _pq!;
        int m = pq.M, ksub = pq.Ksub;
        var lut = ListTable(li, s);
        var codes = list.Codes.Slice(0, list.Count * m);
        for (int off = 0; off < list.Count; off++)
        {
            var code = codes.Slice(off * m, m);
            float key = bias;
            for (int j = 0; j < m; j++) key += lut[j * ksub + code[j]];
            if (key > heap.Threshold || (ctx.Filtered && !ctx.Allows(list, off))) continue;
            heap.Push(key, ((long)probe << 32) | (uint)off);
        }
    }

    private unsafe void ScanFastScan(IvfList list, int li, int probe, float coarseKey, ref TopKHeap heap, IvfScratch s, in SearchContext ctx)
    {
        var pq = _pq!;
        int m = pq.M, blockBytes = PQ4FastScan.BlockBytes(m);
        var lut = ListTable(li, s);
        float scale = PQ4FastScan.QuantizeLut(lut, m, s.QLut, out float lutBias);
        float bias = coarseKey + lutBias, inv = 1f / scale;
        bool exactAdc = _refine is null;
        int blocks = (list.Count + 31) >> 5;
        fixed (byte* codes = list.Codes)
        fixed (byte* qlut = s.QLut)
        fixed (ushort* out32 = s.Out32)
        {
            ushort thr = Threshold16(heap.Threshold, bias, scale);
            if (thr == 0 && heap.Threshold < bias) return;
            for (int b = 0; b < blocks; b++)
            {
                uint mask = PQ4FastScan.ScanBlock(codes + (long)b * blockBytes, qlut, m, thr, out32);
                int valid = list.Count - b * 32;
                if (valid < 32) mask &= (1u << valid) - 1;
                while (mask != 0)
                {
                    int i = BitOperations.TrailingZeroCount(mask);
                    mask &= mask - 1;
                    float key = bias + out32[i] * inv;
                    if (key > heap.Threshold) continue;
                    int off = b * 32 + i;
                    if (ctx.Filtered && !ctx.Allows(list, off)) continue;
                    // Without a refine store the float table gives the final distance (undoing the uint8 rounding).
                    if (exactAdc) key = FloatAdc(list, off, coarseKey, lut, s);
                    heap.Push(key, ((long)probe << 32) | (uint)off);
                    thr = Threshold16(heap.Threshold, bias, scale);
                }
            }
        }
    }

    // The largest quantised value whose dequantised distance can still enter the heap.
    private static ushort Threshold16(float threshold, float bias, float scale)
    {
        if (float.IsPositiveInfinity(threshold)) return ushort.MaxValue;
        float t = (threshold - bias) * scale;
        if (t < 0) return 0;
        return t >= ushort.MaxValue ? ushort.MaxValue : (ushort)t;
    }

    // Float ADC distance of one fast-scan code from the list's float table.
    private float FloatAdc(IvfList list, int off, float coarseKey, ReadOnlySpan<float> lut, IvfScratch s)
    {
        var pq = _pq!;
        var code = s.Code.AsSpan(0, pq.M);
        PQ4FastScan.GetCode(list.Codes, pq.M, off, code);
        float key = coarseKey;
        for (int j = 0; j < pq.M; j++) key += lut[j * pq.Ksub + code[j]];
        return key;
    }
}
