using Engine.Index.Lists;
using Engine.Runtime;

namespace Engine.Index.Ivf;

public sealed partial class IvfIndex
{
    // Rows of a query's nearest list whose estimated-versus-exact key error sets the query's slack (refine stores).
    private const int SlackSample = 64;

    /// <summary>
    /// Range search inside the probed lists: every stored vector of the query's <c>probes</c> nearest lists with
    /// squared L2 distance ≤ <paramref name="radius"/> (or similarity ≥ <paramref name="radius"/> for inner product and
    /// cosine), variable-length per query. Each probed list is read once by the codec's list scanner, which keeps every
    /// code whose key is inside the radius: Flat lists give exact distances; compressed codes give the estimates the
    /// k-NN search ranks by. With a refine store the scan keeps codes whose estimate is inside the radius widened by a
    /// slack, re-scores them from the refine store and keeps those inside the radius, reporting the refined distances.
    /// </summary>
    /// <remarks>
    /// <para>The slack is <see cref="IvfSearchParameters.RangeSlack"/> when set. Otherwise it is 0 for RaBitQ keys
    /// with a refine store (they are already lower bounds: estimate − ε₀ × bound at the default ε₀, and each candidate's own bound at another ε₀), and for other codes it is estimated
    /// per query: the largest |estimate − refined key| over the <c>64</c> rows of the query's nearest probed list whose
    /// estimates lie closest to the radius. With <c>probes = nlist</c> and Flat lists, or a <c>,RFlat</c> refine store
    /// whose slack covers the code error, the result is Flat's exact range result (distances up to float summation
    /// order).</para>
    /// <para>Knobs of <paramref name="parameters"/>: <see cref="IvfSearchParameters.Probes"/>,
    /// <see cref="IvfSearchParameters.MaxCodes"/>, <see cref="IvfSearchParameters.QuantizerEf"/>,
    /// <see cref="IvfSearchParameters.BoundEpsilon"/>, <see cref="IvfSearchParameters.RangeSlack"/>, id filters and
    /// attribute windows (applied inside the scan), threads. <see cref="IvfSearchParameters.RefineFactor"/> does not
    /// apply (there is no k). Runs on the CPU.</para>
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException">NaN/±∞ radius, negative L2 radius, cosine threshold outside [−1, 1],
    /// or a knob of <paramref name="parameters"/> out of range (probes above the list count, a negative slack).</exception>
    /// <exception cref="ArgumentException">Wrong query dimension, non-finite queries, or parameters of another index family.</exception>
    /// <exception cref="InvalidOperationException">The index is not trained.</exception>
    public unsafe RangeSearchResult RangeSearch(ReadOnlySpan<float> queries, float radius, SearchParameters? parameters = null)
    {
        RangeSearchResult.CheckRadius(Metric, radius);
        parameters?.Validate();
        SearchParameters.CheckFamily(parameters, "IVF", this);
        int nq = Guard.Rows(queries, Dimension, nameof(queries));
        Guard.Finite(queries, Dimension, nameof(queries));
        var ivf = parameters as IvfSearchParameters;
        int probes = CheckKnobs(ivf);
        if (ivf?.RangeSlack is not null && _refine is null)
            throw new ArgumentException($"RangeSlack applies to indexes with a refine store (',R…' specs); '{Description}' reports its scan keys as they are.", nameof(parameters));
        EnsureTrained();
        var lists = new List<(float Distance, long Id)>[nq];
        for (int i = 0; i < nq; i++) lists[i] = new List<(float, long)>();
        if (nq == 0) return RangeSearchResult.FromLists(Metric, radius, lists);
        int threads = parameters?.ResolveThreads() ?? Environment.ProcessorCount;

        float[]? qw = PrepareQueries(queries, nq, out float[]? q);
        try
        {
            fixed (float* callerRows = queries)
            fixed (float* preparedRows = qw)
            {
                var rows = new QueryRows(qw is null ? callerRows : preparedRows, nq * Dimension);
                _lock.EnterRead();
                try
                {
                    var ctx = new SearchContext(this, 1, probes, 1, ivf?.MaxCodes ?? 0, parameters?.Filter, ivf, parameters?.Stats);
                    var range = new RangeCall(Metric == Metric.L2 ? radius : -radius, ivf?.RangeSlack);
                    int chunk = ChunkFor(nq, threads);
                    QueryFanOut.Run(nq, chunk, threads, _scratchPool, new RangeChunks(this, chunk, rows, nq, lists, range, ctx));
                    parameters?.Stats?.Add(queries: nq);
                }
                finally { _lock.ExitRead(); }
            }
        }
        finally { ReturnQueries(q, qw); }
        return RangeSearchResult.FromLists(Metric, radius, lists);
    }

    /// <summary>One chunk of a range batch (<see cref="RangeChunk"/>) for the shared fan-out.</summary>
    private readonly struct RangeChunks(IvfIndex index, int chunk, QueryRows qw, int nq, List<(float Distance, long Id)>[] lists, RangeCall range,
        SearchContext ctx) : IQueryChunk<IvfScratch>
    {
        public void Run(int c, int first, int count, IvfScratch s) => index.RangeChunk(c, chunk, qw, nq, lists, range, ctx, s);
    }

    /// <summary>The radius as a key bound (smaller is better: −s for similarities) and the caller's slack, if any.</summary>
    private readonly record struct RangeCall(float MaxKey, float? Slack);

    private void RangeChunk(int c, int chunk, QueryRows qw, int nq, List<(float Distance, long Id)>[] lists, RangeCall range,
        in SearchContext ctx, IvfScratch s)
    {
        int d = Dimension, q0 = c * chunk, qb = Math.Min(chunk, nq - q0), probes = ctx.Probes;
        s.Ensure(chunk, ListCount, probes, 1);
        s.Scanner.BoundEpsilon = ctx.BoundEpsilon;
        _quantizer.Search(qw.AsSpan(q0 * d, qb * d), qb, probes, s.ProbeKeys, s.ProbeLists, s, ctx.QuantizerEf);
        var candidates = new List<(float Key, long Label)>();
        long scanned = 0, refined = 0;
        for (int i = 0; i < qb; i++)
        {
            candidates.Clear();
            var q = qw.AsSpan((q0 + i) * d, d);
            var probeLists = s.ProbeLists.AsSpan(i * probes, probes);
            scanned += RangeScan(q, s.ProbeKeys.AsSpan(i * probes, probes), probeLists, range, candidates, s, ctx);
            refined += RangeCollect(q, probeLists, range.MaxKey, candidates, lists[q0 + i], s);
        }
        bool exact = s.Scanner.ExactDistances;
        ctx.Stats?.Add(listsProbed: (long)qb * probes, codesScanned: exact ? 0 : scanned,
            distances: exact ? scanned + refined : refined, refined: refined);
    }

    /// <summary>
    /// Scans the probed lists of one query into <paramref name="candidates"/> (key, probe &lt;&lt; 32 | row): every key
    /// inside the radius, widened by the slack when a refine store re-scores them. Returns the codes scanned.
    /// </summary>
    private long RangeScan(ReadOnlySpan<float> q, ReadOnlySpan<float> probeKeys, ReadOnlySpan<long> probeLists, RangeCall range,
        List<(float Key, long Label)> candidates, IvfScratch s, in SearchContext ctx)
    {
        var scanner = s.Scanner;
        scanner.SetQuery(q);
        bool estimate = _refine is not null && range.Slack is null && !scanner.HasErrorBounds;
        float bound = _refine is null ? range.MaxKey : range.MaxKey + (range.Slack ?? 0);
        // RaBitQ keys are lower bounds at the default ε₀; at another ε₀ each candidate's own lower bound decides (a
        // wider ε₀ reads every row of the probed lists, since a key above the radius may still have a bound below it).
        bool ownBounds = _refine is not null && scanner.HasErrorBounds && scanner.BoundsShiftKeys;
        bool readAll = ownBounds && ctx.BoundEpsilon > Quantization.RaBitQCodec.DefaultEpsilon;
        long scanned = 0;
        for (int p = 0; p < probeLists.Length; p++)
        {
            var list = OpenProbe(p, probeKeys, probeLists, scanner, ctx, ref scanned, out bool stop);
            if (stop) break;
            if (list is null) continue;
            if (!estimate)
            {
                scanner.ScanRange(list, p, readAll ? float.PositiveInfinity : bound, candidates, ctx.Rows);
                continue;
            }
            // The first non-empty list (the nearest) is read whole; its keys near the radius set the slack, then its
            // rows outside the widened radius are dropped and the other lists are scanned with it.
            scanner.ScanRange(list, p, float.PositiveInfinity, candidates, ctx.Rows);
            bound = range.MaxKey + EstimateSlack(q, probeLists, range.MaxKey, candidates, s);
            candidates.RemoveAll(cand => cand.Key > bound);
            estimate = false;
        }
        if (ownBounds)
            for (int j = candidates.Count - 1; j >= 0; j--)
            {
                var (key, label) = candidates[j];
                int p = (int)(label >> 32);
                if (scanner.LowerBound(key, _lists[(int)probeLists[p]], p, (int)(uint)label) > bound) candidates.RemoveAt(j);
            }
        return scanned;
    }

    // The largest |estimated − refined| key over the SlackSample candidates whose estimates are closest to maxKey.
    private float EstimateSlack(ReadOnlySpan<float> q, ReadOnlySpan<long> probeLists, float maxKey,
        List<(float Key, long Label)> candidates, IvfScratch s)
    {
        int n = candidates.Count;
        if (n == 0) return 0;
        var gaps = new float[n];
        var order = new int[n];
        for (int j = 0; j < n; j++) { gaps[j] = MathF.Abs(candidates[j].Key - maxKey); order[j] = j; }
        Array.Sort(gaps, order);
        float slack = 0;
        for (int j = 0; j < Math.Min(n, SlackSample); j++)
        {
            var (key, label) = candidates[order[j]];
            slack = MathF.Max(slack, MathF.Abs(RefineKey(q, probeLists, label, s) - key));
        }
        return slack;
    }

    private float RefineKey(ReadOnlySpan<float> q, ReadOnlySpan<long> probeLists, long label, IvfScratch s)
    {
        var list = _lists[(int)probeLists[(int)(label >> 32)]];
        int off = (int)(uint)label, size = _refine!.CodeSize;
        return _refine.Key(q, list.Refine.Slice(off * size, size), Metric != Metric.L2, s.Vector);
    }

    /// <summary>
    /// Turns one query's candidates into its results: re-scored from the refine store and kept when inside the
    /// radius, or taken as they are; keys become distances (similarities are negated back). Returns the re-scored count.
    /// </summary>
    private long RangeCollect(ReadOnlySpan<float> q, ReadOnlySpan<long> probeLists, float maxKey, List<(float Key, long Label)> candidates,
        List<(float Distance, long Id)> results, IvfScratch s)
    {
        bool similarity = Metric != Metric.L2;
        // SOAR: an id may come twice. Refined copies share their exact key (the second is skipped before it is read);
        // estimates differ, so the candidates go in key order and each id keeps its best.
        bool dedup = _spillMap is not null;
        if (dedup)
        {
            if (_refine is null) candidates.Sort((a, b) => a.Key.CompareTo(b.Key));
            s.Seen.Start(candidates.Count);
        }
        long refined = 0;
        foreach (var (estimate, label) in candidates)
        {
            InvertedList list = _lists[(int)probeLists[(int)(label >> 32)]];
            long id = list.Ids[(int)(uint)label];
            if (dedup && !s.Seen.Add(id)) continue;
            float key = estimate;
            if (_refine is not null)
            {
                key = RefineKey(q, probeLists, label, s);
                refined++;
                if (key > maxKey) continue;
            }
            results.Add((similarity ? -key : key, id));
        }
        return refined;
    }
}
