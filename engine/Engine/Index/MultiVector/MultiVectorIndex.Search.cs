using Engine.Distance;
using Engine.MultiVector;

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
            long evaluations = 0;
            ParallelWork.For(0, nq, threads, () => 0L, (qi, _, local) =>
            {
                var heap = new TopKHeap(s.AsSpan(qi * k, k), l.AsSpan(qi * k, k));
                var query = queries.Item(qi);
                for (int c = 0; c < n; c++)
                {
                    long id = candLabels[(long)qi * n + c];
                    if (id < 0 || !_rowOf.TryGetValue(id, out int row)) continue;
                    if (filter is not null && !filter.IsAllowed(id)) continue;
                    heap.Push(-ChamferWithRow(query, row), id);
                    local++;
                }
                FinishRow(ref heap, s.AsSpan(qi * k, k));
                return local;
            }, local => Interlocked.Add(ref evaluations, local));
            s.CopyTo(scores);
            l.CopyTo(labels);
            parameters?.Stats?.Add(queries: nq, distances: evaluations, refined: evaluations);
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
            ParallelWork.For(0, nq, threads, qi =>
            {
                var heap = new TopKHeap(s.AsSpan(qi * k, k), l.AsSpan(qi * k, k));
                var query = queries.Item(qi);
                for (int row = 0; row < count; row++)
                {
                    if (filter is not null && !filter.IsAllowed(_ids[row])) continue;
                    heap.Push(-ChamferWithRow(query, row), _ids[row]);
                }
                FinishRow(ref heap, s.AsSpan(qi * k, k));
            });
            s.CopyTo(scores);
            l.CopyTo(labels);
            parameters?.Stats?.Add(queries: nq, distances: (long)nq * count);
        }
        finally { _lock.ExitRead(); }
    }

    /// <summary>Sorts a row's heap (keys are negated scores) and turns it into scores, padding with −∞ / −1.</summary>
    private static void FinishRow(ref TopKHeap heap, Span<float> row)
    {
        int found = heap.SortAndPad(float.PositiveInfinity);
        for (int j = 0; j < row.Length; j++) row[j] = j < found ? -row[j] : float.NegativeInfinity;
    }
}
