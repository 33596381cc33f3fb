using System.Buffers;
using Engine.Distance;
using Engine.Runtime;

namespace Engine.Index.Flat;

public sealed partial class FlatIndex
{
    /// <inheritdoc />
    /// <exception cref="ArgumentException">Wrong query dimension, non-finite queries, k ≤ 0, short output buffers, or parameters of another index family.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A knob of <paramref name="parameters"/> is out of range
    /// (<see cref="SearchParameters.Validate"/>, e.g. negative threads).</exception>
    public void Search(ReadOnlySpan<float> queries, int k, Span<float> distances, Span<long> labels,
        SearchParameters? parameters = null)
    {
        parameters?.Validate();
        SearchParameters.CheckFamily(parameters, null, this);
        int nq = Guard.Rows(queries, Dimension, nameof(queries));
        Guard.SearchBuffers(nq, k, distances.Length, labels.Length);
        Guard.Finite(queries, Dimension, nameof(queries));
        if (nq == 0) return;
        int d = Dimension;
        int threads = parameters?.ResolveThreads() ?? Environment.ProcessorCount;
        IIdFilter? filter = parameters?.Filter;

        float[] q = ArrayPool<float>.Shared.Rent(nq * d);
        try
        {
            queries.CopyTo(q);
            if (Metric == Metric.Cosine)
                for (int i = 0; i < nq; i++) Distances.NormalizeInPlace(q.AsSpan(i * d, d));

            _lock.EnterRead();
            try
            {
                int n = _count;
                parameters?.Stats?.Add(queries: nq, distances: (long)nq * n);
                if (n == 0 || threads == 1 || (long)n * nq * d < 1 << 20)
                {
                    var s = _scratch.Rent();
                    try { SearchRange(q.AsSpan(0, nq * d), nq, 0, n, k, distances, labels, filter, s); }
                    finally { _scratch.Return(s); }
                }
                else if (nq >= threads * MinQueriesPerThread)
                {
                    SearchParallelOverQueries(q, nq, n, k, distances, labels, filter, threads);
                }
                else
                {
                    SearchParallelOverCorpus(q, nq, n, k, distances, labels, filter, threads);
                }
            }
            finally { _lock.ExitRead(); }
        }
        finally { ArrayPool<float>.Shared.Return(q); }

        // Keys are "smaller is better"; turn them back into the metric's values and order.
        FinishKeys(distances[..(nq * k)]);
    }

    // Below this many queries per thread the batch is split over the corpus instead (each thread scans a shard).
    private const int MinQueriesPerThread = 8;

    /// <summary>Exact top-k of the given queries restricted to rows [rowStart, rowEnd); keys in key space, sorted.</summary>
    private void SearchRange(ReadOnlySpan<float> q, int nq, int rowStart, int rowEnd, int k,
        Span<float> keys, Span<long> ids, IIdFilter? filter, FlatScratch s)
    {
        int d = Dimension;
        var counts = s.Counts;
        var qNorms = s.QueryNorms;
        var scratch = s.Dots(Math.Min(QueryBlock, nq) * Math.Min(_corpusBlock, Math.Max(1, rowEnd - rowStart)));
        for (int q0 = 0; q0 < nq; q0 += QueryBlock)
        {
            int qb = Math.Min(QueryBlock, nq - q0);
            Array.Clear(counts, 0, qb);
            var qBlock = q.Slice(q0 * d, qb * d);
            bool oneToMany = qb <= OneToManyMaxQueries;
            if (!oneToMany && Metric == Metric.L2) Distances.SquaredNorms(qBlock, d, qNorms);
            for (int c0 = rowStart, cb; c0 < rowEnd; c0 += cb)
            {
                cb = Math.Min(Math.Min(_corpusBlock, rowEnd - c0), RowsInBlockFrom(c0));
                var rows = RowRange(c0, cb);
                if (oneToMany)
                {
                    for (int i = 0; i < qb; i++)
                    {
                        var dist = scratch.AsSpan(0, cb);
                        var query = qBlock.Slice(i * d, d);
                        if (Metric == Metric.L2) Distances.SquaredL2OneToMany(query, rows, dist);
                        else Distances.DotOneToMany(query, rows, dist);
                        int qi = q0 + i;
                        counts[i] = PushBlock(dist, Metric != Metric.L2, c0, keys.Slice(qi * k, k), ids.Slice(qi * k, k), counts[i], filter);
                    }
                }
                else
                {
                    var dots = scratch.AsSpan(0, qb * cb);
                    Distances.DotManyToMany(qBlock, rows, d, dots);
                    for (int i = 0; i < qb; i++)
                    {
                        int qi = q0 + i;
                        counts[i] = Metric == Metric.L2
                            ? PushL2Block(dots.Slice(i * cb, cb), qNorms[i], c0, keys.Slice(qi * k, k), ids.Slice(qi * k, k), counts[i], filter)
                            : PushBlock(dots.Slice(i * cb, cb), true, c0, keys.Slice(qi * k, k), ids.Slice(qi * k, k), counts[i], filter);
                    }
                }
            }
            for (int i = 0; i < qb; i++)
            {
                int qi = q0 + i;
                new TopKHeap(keys.Slice(qi * k, k), ids.Slice(qi * k, k), counts[i]).SortAndPad(float.PositiveInfinity);
            }
        }
    }

    // Pushes one block of distances (negated when they are similarities) into a heap; returns the new count.
    private int PushBlock(ReadOnlySpan<float> values, bool negate, int rowBase,
        Span<float> keys, Span<long> ids, int count, IIdFilter? filter)
    {
        var heap = new TopKHeap(keys, ids, count);
        float threshold = heap.Threshold;
        for (int j = 0; j < values.Length; j++)
        {
            float key = negate ? -values[j] : values[j];
            if (key <= threshold)
            {
                long id = _ids[rowBase + j];
                if (filter is not null && !filter.IsAllowed(id)) continue;
                heap.Push(key, id);
                threshold = heap.Threshold;
            }
        }
        return heap.Count;
    }

    private int PushL2Block(ReadOnlySpan<float> dots, float qNorm, int rowBase,
        Span<float> keys, Span<long> ids, int count, IIdFilter? filter)
    {
        var heap = new TopKHeap(keys, ids, count);
        float threshold = heap.Threshold;
        var norms = _norms.AsSpan(rowBase, dots.Length);
        for (int j = 0; j < dots.Length; j++)
        {
            float key = MathF.Max(0f, qNorm + norms[j] - 2f * dots[j]);
            if (key <= threshold)
            {
                long id = _ids[rowBase + j];
                if (filter is not null && !filter.IsAllowed(id)) continue;
                heap.Push(key, id);
                threshold = heap.Threshold;
            }
        }
        return heap.Count;
    }

    private void SearchParallelOverQueries(float[] q, int nq, int n, int k, Span<float> distances, Span<long> labels,
        IIdFilter? filter, int threads)
    {
        float[] keys = ArrayPool<float>.Shared.Rent(nq * k);
        long[] ids = ArrayPool<long>.Shared.Rent(nq * k);
        try
        {
            // Chunks of up to a query block, at least one per thread, handed out dynamically so threads finish together.
            int chunk = Math.Min(QueryBlock, (nq + threads - 1) / threads);
            QueryFanOut.Run(nq, chunk, threads, _scratch, new ChunkSearch(this, q, n, k, keys, ids, filter));
            keys.AsSpan(0, nq * k).CopyTo(distances);
            ids.AsSpan(0, nq * k).CopyTo(labels);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(keys);
            ArrayPool<long>.Shared.Return(ids);
        }
    }

    /// <summary>One chunk of queries against the whole corpus (<see cref="SearchRange"/>) for the shared fan-out.</summary>
    private readonly struct ChunkSearch(FlatIndex index, float[] q, int n, int k, float[] keys, long[] ids, IIdFilter? filter)
        : IQueryChunk<FlatScratch>
    {
        public void Run(int chunk, int first, int count, FlatScratch s)
        {
            int d = index.Dimension;
            index.SearchRange(q.AsSpan(first * d, count * d), count, 0, n, k, keys.AsSpan(first * k, count * k), ids.AsSpan(first * k, count * k), filter, s);
        }
    }

    private void SearchParallelOverCorpus(float[] q, int nq, int n, int k, Span<float> distances, Span<long> labels,
        IIdFilter? filter, int threads)
    {
        int d = Dimension;
        int shards = Math.Min(threads, Math.Max(1, n / _corpusBlock));
        float[] keys = ArrayPool<float>.Shared.Rent(shards * nq * k);
        long[] ids = ArrayPool<long>.Shared.Rent(shards * nq * k);
        try
        {
            // Split over the corpus, not the queries: each shard's worker keeps its scratch for the shards it runs.
            ParallelWork.For(0, shards, threads, _scratch.RentFunc, (sh, _, s) =>
            {
                int r0 = (int)((long)n * sh / shards), r1 = (int)((long)n * (sh + 1) / shards);
                SearchRange(q.AsSpan(0, nq * d), nq, r0, r1, k, keys.AsSpan(sh * nq * k, nq * k), ids.AsSpan(sh * nq * k, nq * k), filter, s);
                return s;
            }, _scratch.ReturnAction);
            for (int i = 0; i < nq; i++)
            {
                var heap = new TopKHeap(distances.Slice(i * k, k), labels.Slice(i * k, k));
                for (int s = 0; s < shards; s++)
                {
                    int off = (s * nq + i) * k;
                    for (int j = 0; j < k && ids[off + j] >= 0; j++) heap.Push(keys[off + j], ids[off + j]);
                }
                heap.SortAndPad(float.PositiveInfinity);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(keys);
            ArrayPool<long>.Shared.Return(ids);
        }
    }

    private void FinishKeys(Span<float> keys)
    {
        if (Metric == Metric.L2) return; // +∞ padding already matches MissingDistance
        for (int i = 0; i < keys.Length; i++) keys[i] = -keys[i]; // +∞ padding becomes −∞
    }
}
