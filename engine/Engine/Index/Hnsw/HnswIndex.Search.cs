using System.Buffers;
using System.Runtime.InteropServices;
using Engine.Distance;
using Engine.Runtime;

namespace Engine.Index.Hnsw;

public sealed partial class HnswIndex
{
    /// <inheritdoc />
    /// <remarks>Pass <see cref="HnswSearchParameters"/> to set ef (the search uses max(ef, k)). Deleted nodes are
    /// traversed but never returned; a filter is applied during the level-0 walk, or the call is answered exactly
    /// over the allowed set when that set is small (<see cref="HnswSearchParameters.ExactFallbackSelectivity"/>).
    /// A batch runs its queries in parallel over <see cref="SearchParameters.Threads"/>; one query allocates
    /// nothing after warm-up.</remarks>
    /// <exception cref="ArgumentException">Wrong query dimension, non-finite queries, k ≤ 0, short output buffers, or parameters of another index family.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Negative <see cref="SearchParameters.Threads"/>.</exception>
    public unsafe void Search(ReadOnlySpan<float> queries, int k, Span<float> distances, Span<long> labels,
        SearchParameters? parameters = null)
    {
        int nq = Guard.Rows(queries, Dimension, nameof(queries));
        Guard.SearchBuffers(nq, k, distances.Length, labels.Length);
        Guard.Finite(queries, Dimension, nameof(queries));
        parameters?.Validate();
        SearchParameters.CheckFamily(parameters, "HNSW", this);
        if (nq == 0) return;
        var hp = parameters as HnswSearchParameters;
        int ef = Math.Max(hp?.Ef ?? _defaultEf, k);
        var admit = new Admission(parameters?.Filter, hp?.HasWindow == true, hp?.AttributeMin ?? double.NegativeInfinity, hp?.AttributeMax ?? double.PositiveInfinity);
        var ctx = new QueryContext(k, ef, admit, parameters?.Stats);
        int threads = parameters?.ResolveThreads() ?? Environment.ProcessorCount;
        // Results written over the queries (the same buffer passed twice) must not change rows still to be read: copy them.
        bool aliased = queries.Overlaps(distances) || MemoryMarshal.AsBytes(queries).Overlaps(MemoryMarshal.AsBytes(labels));
        float[]? copy = aliased ? queries.ToArray() : null;
        _resize.EnterRead();
        try
        {
            if (!admit.IsOpen && TryCollectAllowed(in admit, ef, hp?.ExactFallbackSelectivity ?? 0.01, out var allowed, out int allowedCount))
            {
                ctx.Stats?.AddExactFallback();
                ctx = ctx with { Allowed = allowed, AllowedCount = allowedCount };
            }
            try
            {
                ReadOnlySpan<float> rows = queries;
                if (copy is not null) rows = copy;
                fixed (float* pq = rows)
                fixed (float* pd = distances)
                fixed (long* pl = labels)
                    QueryFanOut.Run(nq, 1, threads, _pool, new QuerySearch(this, pq, pd, pl, Dimension, ctx));
            }
            finally
            {
                if (ctx.Allowed is not null) ArrayPool<int>.Shared.Return(ctx.Allowed);
            }
        }
        finally { _resize.ExitRead(); }
    }

    /// <summary>Queries of a batch, one per chunk (graph walks differ too much in length for larger chunks to balance),
    /// for the shared fan-out. The rows stay pinned by <see cref="Search"/> while it runs.</summary>
    private readonly unsafe struct QuerySearch(HnswIndex index, float* queries, float* distances, long* labels, int d, QueryContext ctx)
        : IQueryChunk<HnswScratch>
    {
        public void Run(int chunk, int first, int count, HnswScratch s)
        {
            int k = ctx.K;
            for (int i = first; i < first + count; i++)
                index.SearchOne(new ReadOnlySpan<float>(queries + (long)i * d, d), new Span<float>(distances + (long)i * k, k),
                    new Span<long>(labels + (long)i * k, k), in ctx, s);
        }
    }

    /// <summary>Which nodes a search may return besides being live: the id filter and the attribute window.</summary>
    private readonly struct Admission(IIdFilter? filter, bool hasWindow, double lo, double hi)
    {
        public readonly IIdFilter? Filter = filter;
        public readonly bool HasWindow = hasWindow;
        public readonly double Lo = lo, Hi = hi;

        public bool IsOpen => Filter is null && !HasWindow;

        public bool Allows(long id, double attribute) =>
            (!HasWindow || (attribute >= Lo && attribute <= Hi)) && (Filter is null || Filter.IsAllowed(id));
    }

    private readonly record struct QueryContext(int K, int Ef, Admission Admit, SearchStats? Stats)
    {
        public int[]? Allowed { get; init; }
        public int AllowedCount { get; init; }
    }

    // One query: keys into `distances` (converted to the metric's values), ids into `labels`, padded.
    private void SearchOne(ReadOnlySpan<float> query, Span<float> distances, Span<long> labels, in QueryContext ctx, HnswScratch s)
    {
        var q = s.Query.AsSpan();
        query.CopyTo(q);
        if (Metric == Metric.Cosine) Distances.NormalizeInPlace(q);
        s.Distances = 0;
        int found;
        if (ctx.Allowed is not null) found = ExactOverAllowed(q, ctx.Allowed.AsSpan(0, ctx.AllowedCount), ctx.K, ctx.Admit, s);
        else found = GraphSearch(q, ctx.K, ctx.Ef, ctx.Admit, s);
        bool negate = Metric != Metric.L2;
        for (int j = 0; j < found; j++)
        {
            distances[j] = negate ? -s.Keys[j] : s.Keys[j];
            labels[j] = _ids[s.Nodes[j]];
        }
        float missing = Metric.MissingDistance();
        for (int j = found; j < ctx.K; j++)
        {
            distances[j] = missing;
            labels[j] = -1;
        }
        ctx.Stats?.Add(queries: 1, distances: s.Distances);
    }

    // Greedy descent then the level-0 best-first search; the best k in ascending key order into s.Keys / s.Nodes.
    private int GraphSearch(ReadOnlySpan<float> q, int k, int ef, in Admission admit, HnswScratch s)
    {
        long ep = Volatile.Read(ref _entry);
        int cur = EntryNode(ep);
        if (cur < 0) return 0;
        float curKey = _vectors.Key(q, cur, s.KeyScratch);
        s.Distances++;
        for (int l = EntryLevel(ep); l > 0; l--) Greedy(q, ref cur, ref curKey, l, s);
        SearchLayer(q, cur, curKey, 0, ef, s, in admit);
        while (s.Results.Count > k) s.Results.Pop();
        return DrainResults(s);
    }

    // Moves to the closest node on `level` by repeatedly taking any closer neighbour (ef = 1).
    private void Greedy(ReadOnlySpan<float> q, ref int cur, ref float curKey, int level, HnswScratch s)
    {
        bool changed = true;
        while (changed)
        {
            changed = false;
            var list = Links(cur, level);
            if (list.IsEmpty) return;
            int cnt = Math.Min(Volatile.Read(ref list[0]), list.Length - 1);
            for (int j = 1; j <= cnt; j++) _vectors.Prefetch(list[j]);
            for (int j = 1; j <= cnt; j++)
            {
                int nb = list[j];
                float key = _vectors.Key(q, nb, s.KeyScratch);
                if (key < curKey)
                {
                    curKey = key;
                    cur = nb;
                    changed = true;
                }
            }
            s.Distances += cnt;
        }
    }

    /// <summary>
    /// Best-first search of one level from <paramref name="entry"/> with a result list of <paramref name="ef"/>
    /// (algorithm 2). Every reached node is expanded, but only live nodes the filter allows enter the results
    /// (s.Results, a max-heap by key). Expanding a node first gathers its unvisited neighbours and prefetches their
    /// rows, then computes their distances.
    /// </summary>
    private void SearchLayer(ReadOnlySpan<float> q, int entry, float entryKey, int level, int ef, HnswScratch s, in Admission admit)
    {
        s.NewVisit(_levels.Length);
        var cand = s.Candidates;
        var res = s.Results;
        cand.Clear();
        res.Clear();
        s.Visit(entry);
        cand.Push(-entryKey, entry);
        if (Eligible(entry, in admit)) res.Push(entryKey, entry);
        var gather = s.Gather;
        var state = _state;
        bool open = admit.IsOpen;
        while (cand.Count > 0)
        {
            float ck = -cand.TopKey;
            if (res.Count >= ef && ck > res.TopKey) break;
            int c = cand.TopNode;
            cand.Pop();
            var list = Links(c, level);
            if (list.IsEmpty) continue;
            int cnt = Math.Min(Volatile.Read(ref list[0]), list.Length - 1);
            int g = 0;
            for (int j = 1; j <= cnt; j++)
            {
                int nb = list[j];
                if (!s.Visit(nb)) continue;
                gather[g++] = nb;
                _vectors.Prefetch(nb);
            }
            s.Distances += g;
            for (int j = 0; j < g; j++)
            {
                int nb = gather[j];
                float key = _vectors.Key(q, nb, s.KeyScratch);
                if (res.Count < ef || key < res.TopKey)
                {
                    cand.Push(-key, nb);
                    if (state[nb] == Live && (open || admit.Allows(_ids[nb], Attribute(nb))))
                    {
                        res.Push(key, nb);
                        if (res.Count > ef) res.Pop();
                    }
                }
            }
            // The next node to expand is known now: start loading its link list.
            if (cand.Count > 0) PrefetchLinks(cand.TopNode, level);
        }
    }

    private void PrefetchLinks(int node, int level)
    {
        var list = Links(node, level);
        if (!list.IsEmpty) Runtime.Prefetch.Range(System.Runtime.InteropServices.MemoryMarshal.AsBytes(list));
    }

    private bool Eligible(int node, in Admission admit) =>
        Volatile.Read(ref _state[node]) == Live && admit.Allows(_ids[node], Attribute(node));
}
