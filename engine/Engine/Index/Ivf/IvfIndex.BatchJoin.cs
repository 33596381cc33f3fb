using Engine.Distance;
using Engine.Index.Lists;
using Engine.Quantization;
using Engine.Runtime;

namespace Engine.Index.Ivf;

public sealed partial class IvfIndex
{
    // Large batches on full-vector lists: list-major GEMM join instead of one scan per query.
    // Below this batch size the query-major scan is as fast. Rows of fewer than JoinShortRowDimension floats do too
    // little arithmetic per row for the GEMM to pay back its packing and per-(query, probe) heaps below
    // JoinMinQueriesShortRows queries (docs/ivf.md, Search item 6: 256-query batches on one thread, join vs scan:
    // MNIST 784-d 1.6×, GloVe 100-d 2.1×, 64-d embeddings 0.8×).
    private const int JoinMinQueries = 256;
    private const int JoinShortRowDimension = 96;
    private const int JoinMinQueriesShortRows = 1024;
    private const int JoinMinQueriesPerList = 8; // average queries per probed list for a GEMM to pay
    private const int JoinQueryBlock = 128;      // queries joined with one list per GEMM call
    private const int JoinMemberBlock = 2048;    // list rows per GEMM call
    private const long JoinMaxSlotEntries = 1 << 22; // (query, probe, neighbour) results held at once

    /// <summary>
    /// Whether a batch goes to <see cref="SearchByListJoin"/>: full-vector (<c>Flat</c>) lists without a refine store
    /// (with or without a front transform: the join reads the queries in the working space), no filter, window or code
    /// budget, and enough queries per probed list for a GEMM to beat the scan.
    /// </summary>
    private bool UsesListJoin(int nq, in SearchContext ctx) =>
        _codec is VectorCodec { Encoding: VectorEncoding.Flat } && _refine is null && _spillMap is null && !ctx.Filtered && ctx.MaxCodes == 0
        && nq >= (Dimension >= JoinShortRowDimension ? JoinMinQueries : JoinMinQueriesShortRows)
        && (long)nq * ctx.Probes >= (long)JoinMinQueriesPerList * ListCount;

    /// <summary>
    /// Answers a large batch list by list: the queries' probes are found as usual, then, chunk by chunk of queries,
    /// the (query, probe) pairs are grouped by list and every list is joined with all the queries that probe it as
    /// one small GEMM (<see cref="Distances.DotManyToMany"/>), each list's rows read once per block of queries instead
    /// of once per query. Every row of every probed list is scored exactly, as in the query-major scan, so the results
    /// are the same up to float rounding (‖q‖² + ‖x‖² − 2 q·x instead of Σ (q − x)²). Writes keys (smaller is better)
    /// and ids like <see cref="RunChunks"/>.
    /// </summary>
    private void SearchByListJoin(QueryRows qw, int nq, Span<float> distances, Span<long> labels, in SearchContext ctx, int threads)
    {
        int d = Dimension, k = ctx.K, probes = ctx.Probes, lists = ListCount;
        bool similarity = Metric != Metric.L2;
        var probeLists = new long[(long)nq * probes];
        int chunk = ChunkFor(nq, threads);
        var stats = ctx.Stats;
        QueryFanOut.Run(nq, chunk, threads, _scratchPool, new ChunkProbes(this, chunk, qw, probeLists, probes, k, ctx.QuantizerEf));

        int queryChunk = (int)Math.Max(1, Math.Min(nq, JoinMaxSlotEntries / ((long)probes * k)));
        var slotKeys = new float[(long)queryChunk * probes * k];
        var slotIds = new long[slotKeys.Length];
        var slotCounts = new int[queryChunk * probes];
        // Per query, an upper bound on its final k-th key: the threshold of any of its full (query, probe) heaps (the
        // k best of the union are at least as good as the k best of one list). Written without locks: any value
        // written was a valid bound when written and stays one, so a lost update only prunes less.
        var queryBound = new float[queryChunk];
        var outKeys = new float[(long)nq * k];
        var outIds = new long[outKeys.Length];
        long scored = 0;
        for (int start = 0; start < nq; start += queryChunk)
        {
            int count = Math.Min(queryChunk, nq - start);
            Array.Clear(slotCounts, 0, count * probes);
            Array.Fill(queryBound, float.PositiveInfinity, 0, count);
            var (slots, items) = ListMajorPlan.Build(probeLists.AsSpan(start * probes, count * probes), lists, JoinQueryBlock, l => _lists[l].Count == 0);
            int first = start;
            ParallelWork.For(0, items.Count, threads, _scratchPool.RentFunc, (w, _, s) =>
            {
                var (l, from, to) = items[w];
                long here = JoinList(qw, first, probes, k, similarity, _lists[l], slots.AsSpan(from, to - from), slotKeys, slotIds, slotCounts, queryBound, s);
                Interlocked.Add(ref scored, here);
                return s;
            }, _scratchPool.ReturnAction);
            // Merge each query's probes (a row lives in one list: no duplicates), best k first.
            ParallelWork.For(0, count, threads, i => ListMajorPlan.Merge(slotKeys.AsSpan(i * probes * k, probes * k), slotIds.AsSpan(i * probes * k, probes * k),
                slotCounts.AsSpan(i * probes, probes), k, outKeys.AsSpan((first + i) * k, k), outIds.AsSpan((first + i) * k, k)));
        }
        outKeys.AsSpan(0, nq * k).CopyTo(distances);
        outIds.AsSpan(0, nq * k).CopyTo(labels);
        stats?.Add(listsProbed: (long)nq * probes, codesScanned: 0, distances: scored, refined: 0);
    }

    /// <summary>The probed lists of one chunk of a list-join batch, into the batch's table, for the shared fan-out.</summary>
    private readonly struct ChunkProbes(IvfIndex index, int chunk, QueryRows qw, long[] probeLists, int probes, int k, int? quantizerEf)
        : IQueryChunk<IvfScratch>
    {
        public void Run(int c, int first, int count, IvfScratch s)
        {
            int d = index.Dimension;
            s.Ensure(chunk, index.ListCount, probes, k);
            index._quantizer.Search(qw.AsSpan(first * d, count * d), count, probes, s.ProbeKeys, s.ProbeLists, s, quantizerEf);
            s.ProbeLists.AsSpan(0, count * probes).CopyTo(probeLists.AsSpan(first * probes, count * probes));
        }
    }

    // Joins one list with a block of (query, probe) slots: GEMM over blocks of the list's rows, keys into each slot's heap.
    private long JoinList(QueryRows qw, int start, int probes, int k, bool similarity, InvertedList list, ReadOnlySpan<int> slots,
        float[] slotKeys, long[] slotIds, int[] slotCounts, float[] queryBound, IvfScratch s)
    {
        int d = Dimension, qb = slots.Length, rows = list.Count;
        var q = Scratch(ref s.JoinQueries, qb * d);
        var qNorms = Scratch(ref s.JoinNorms, qb + Math.Min(JoinMemberBlock, rows));
        for (int i = 0; i < qb; i++) qw.AsSpan((start + slots[i] / probes) * d, d).CopyTo(q.Slice(i * d, d));
        if (!similarity) Distances.SquaredNorms(q, d, qNorms[..qb]);
        var vectors = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(list.Codes)[..(rows * d)];
        var ids = list.Ids[..rows];
        var dots = Scratch(ref s.JoinDots, qb * Math.Min(JoinMemberBlock, rows));
        for (int t0 = 0; t0 < rows; t0 += JoinMemberBlock)
        {
            int mb = Math.Min(JoinMemberBlock, rows - t0);
            var block = vectors.Slice(t0 * d, mb * d);
            var norms = qNorms.Slice(qb, mb);
            if (!similarity) Distances.SquaredNorms(block, d, norms);
            Distances.DotManyToMany(q, block, d, dots[..(qb * mb)]);
            for (int i = 0; i < qb; i++)
            {
                int slot = slots[i];
                int query = slot / probes;
                var heap = new TopKHeap(slotKeys.AsSpan(slot * k, k), slotIds.AsSpan(slot * k, k), slotCounts[slot]);
                Distances.PushKeys(ref heap, dots.Slice(i * mb, mb), similarity ? 0f : qNorms[i], norms, ids.Slice(t0, mb), similarity,
                    bound: queryBound[query]);
                slotCounts[slot] = heap.Count;
                if (heap.Count == k && heap.Threshold < queryBound[query]) queryBound[query] = heap.Threshold;
            }
        }
        return (long)qb * rows;
    }

    private static Span<float> Scratch(ref float[] slot, int length)
    {
        if (slot.Length < length) slot = new float[length];
        return slot.AsSpan(0, length);
    }
}
