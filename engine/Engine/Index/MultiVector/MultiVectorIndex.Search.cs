using System.Runtime.CompilerServices;
using Engine.Distance;
using Engine.MultiVector;
using Engine.Runtime;

namespace Engine.Index.MultiVector;

public sealed partial class MultiVectorIndex
{
    /// <summary>
    /// MUVERA search: encodes each query, retrieves N candidates from the FDE index and re-ranks them by exact
    /// Chamfer similarity. Writes nq × k scores (larger is closer) and labels, padded with −∞ and −1.
    /// </summary>
    /// <param name="queries">Query token sets (d must match).</param>
    /// <param name="k">Results per query (≥ 1).</param>
    /// <param name="scores">nq × k Chamfer similarities.</param>
    /// <param name="labels">nq × k ids.</param>
    /// <param name="parameters">Candidates N, repetitions, FDE-index parameters, threads, filter, stats (Chamfer
    /// evaluations count as <see cref="SearchStats.DistancesComputed"/>, candidates as <see cref="SearchStats.Refined"/>).</param>
    /// <exception cref="ArgumentException">Mixed dimensions, bad buffers or knobs (named).</exception>
    public void Search(MultiVectorSet queries, int k, Span<float> scores, Span<long> labels, MuveraSearchParameters? parameters = null)
    {
        ArgumentNullException.ThrowIfNull(queries);
        parameters?.Validate();
        Encoder.CheckDimension(queries);
        Guard.SearchBuffers(queries.Count, k, scores.Length, labels.Length);
        int reps = parameters?.Repetitions ?? Encoder.Options.Repetitions;
        if (reps > Encoder.Options.Repetitions)
            throw new ArgumentOutOfRangeException(nameof(parameters), reps, $"Repetitions={reps} exceeds the index's R={Encoder.Options.Repetitions}.");
        int requested = parameters?.Candidates ?? Math.Max(10 * k, 100);
        if (requested < k)
            throw new ArgumentOutOfRangeException(nameof(parameters), requested, $"Candidates={requested} must be at least k={k}.");
        int threads = parameters?.ResolveThreads() ?? Environment.ProcessorCount;
        int nq = queries.Count, od = Encoder.OutputDimension;
        var fdes = new float[(long)nq * od];
        Encoder.EncodeAll(queries, document: false, fdes, reps, threads);
        var filter = parameters?.Filter;
        _lock.EnterRead();
        try
        {
            int n = (int)Math.Min(requested, Math.Max(1, (long)_count));
            var candScores = new float[(long)nq * n];
            var candLabels = new long[(long)nq * n];
            var fdeParameters = parameters?.FdeParameters ?? new SearchParameters { Threads = threads, Filter = filter };
            _fdeIndex.Search(fdes, n, candScores, candLabels, fdeParameters);
            float[] s = new float[(long)nq * k];
            long[] l = new long[(long)nq * k];
            var evaluations = new StrongBox<long>();
            QueryFanOut.Run(nq, 1, threads, new Rerank(this, queries, n, k, candLabels, filter, s, l, evaluations));
            s.CopyTo(scores);
            l.CopyTo(labels);
            parameters?.Stats?.Add(queries: nq, distances: evaluations.Value, refined: evaluations.Value);
        }
        finally { _lock.ExitRead(); }
    }

    /// <summary>
    /// Exact multi-vector search: Chamfer similarity of each query with every item (brute force; the ground truth
    /// of <see cref="Search"/>). Writes nq × k scores and labels, padded with −∞ and −1.
    /// </summary>
    /// <exception cref="ArgumentException">Mixed dimensions or bad buffers.</exception>
    public void SearchExact(MultiVectorSet queries, int k, Span<float> scores, Span<long> labels, SearchParameters? parameters = null)
    {
        ArgumentNullException.ThrowIfNull(queries);
        parameters?.Validate();
        SearchParameters.CheckFamily(parameters, null, _fdeIndex);
        Encoder.CheckDimension(queries);
        Guard.SearchBuffers(queries.Count, k, scores.Length, labels.Length);
        int threads = parameters?.ResolveThreads() ?? Environment.ProcessorCount;
        var filter = parameters?.Filter;
        int nq = queries.Count;
        float[] s = new float[(long)nq * k];
        long[] l = new long[(long)nq * k];
        _lock.EnterRead();
        try
        {
            int count = _count;
            QueryFanOut.Run(nq, 1, threads, new Exact(this, queries, count, k, filter, s, l));
            s.CopyTo(scores);
            l.CopyTo(labels);
            parameters?.Stats?.Add(queries: nq, distances: (long)nq * count);
        }
        finally { _lock.ExitRead(); }
    }

    /// <summary>Re-ranks the FDE candidates of queries by exact Chamfer similarity (one query per chunk) for the shared fan-out.</summary>
    private readonly struct Rerank(MultiVectorIndex index, MultiVectorSet queries, int n, int k, long[] candLabels, IIdFilter? filter,
        float[] scores, long[] labels, StrongBox<long> evaluations) : IQueryChunk
    {
        public void Run(int first, int count)
        {
            long local = 0;
            for (int qi = first; qi < first + count; qi++)
            {
                var heap = new TopKHeap(scores.AsSpan(qi * k, k), labels.AsSpan(qi * k, k));
                var query = queries.Item(qi);
                for (int c = 0; c < n; c++)
                {
                    long id = candLabels[(long)qi * n + c];
                    if (id < 0 || !index._rowOf.TryGetValue(id, out int row)) continue;
                    if (filter is not null && !filter.IsAllowed(id)) continue;
                    heap.Push(-index.ChamferWithRow(query, row), id);
                    local++;
                }
                FinishRow(ref heap, scores.AsSpan(qi * k, k));
            }
            Interlocked.Add(ref evaluations.Value, local);
        }
    }

    /// <summary>Exact Chamfer search of queries over every item (one query per chunk) for the shared fan-out.</summary>
    private readonly struct Exact(MultiVectorIndex index, MultiVectorSet queries, int items, int k, IIdFilter? filter, float[] scores, long[] labels)
        : IQueryChunk
    {
        public void Run(int first, int count)
        {
            for (int qi = first; qi < first + count; qi++)
            {
                var heap = new TopKHeap(scores.AsSpan(qi * k, k), labels.AsSpan(qi * k, k));
                var query = queries.Item(qi);
                for (int row = 0; row < items; row++)
                {
                    if (filter is not null && !filter.IsAllowed(index._ids[row])) continue;
                    heap.Push(-index.ChamferWithRow(query, row), index._ids[row]);
                }
                FinishRow(ref heap, scores.AsSpan(qi * k, k));
            }
        }
    }

    /// <summary>Sorts a row's heap (keys are negated scores) and turns it into scores, padding with −∞ / −1.</summary>
    private static void FinishRow(ref TopKHeap heap, Span<float> row)
    {
        int found = heap.SortAndPad(float.PositiveInfinity);
        for (int j = 0; j < row.Length; j++) row[j] = j < found ? -row[j] : float.NegativeInfinity;
    }
}
