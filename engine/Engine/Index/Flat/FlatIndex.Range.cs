using Engine.Distance;
using Engine.Runtime;

namespace Engine.Index.Flat;

public sealed partial class FlatIndex
{
    /// <summary>
    /// Exact range search: every stored vector with squared L2 distance ≤ <paramref name="radius"/> (or similarity ≥
    /// <paramref name="radius"/> for inner product and cosine), from one blocked GEMM scan per query block. The
    /// distances are the ones <see cref="Search"/> reports for the same pairs.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">NaN/±∞ radius, negative L2 radius, cosine threshold outside [−1, 1],
    /// or a knob of <paramref name="parameters"/> out of range.</exception>
    /// <exception cref="ArgumentException">Wrong query dimension, non-finite queries, or parameters of another index family.</exception>
    public RangeSearchResult RangeSearch(ReadOnlySpan<float> queries, float radius, SearchParameters? parameters = null)
    {
        RangeSearchResult.CheckRadius(Metric, radius);
        parameters?.Validate();
        SearchParameters.CheckFamily(parameters, null, this);
        int nq = Guard.Rows(queries, Dimension, nameof(queries));
        Guard.Finite(queries, Dimension, nameof(queries));
        int d = Dimension;
        int threads = parameters?.ResolveThreads() ?? Environment.ProcessorCount;
        IIdFilter? filter = parameters?.Filter;
        var lists = new List<(float Distance, long Id)>[nq];
        for (int i = 0; i < nq; i++) lists[i] = new List<(float, long)>();
        if (nq == 0) return RangeSearchResult.FromLists(Metric, radius, lists);

        float[] q = queries.ToArray();
        if (Metric == Metric.Cosine)
            for (int i = 0; i < nq; i++) Distances.NormalizeInPlace(q.AsSpan(i * d, d));
        _lock.EnterRead();
        try
        {
            int n = _count;
            parameters?.Stats?.Add(queries: nq, distances: (long)nq * n);
            QueryFanOut.Run(nq, QueryBlock, threads, _scratch, new RangeChunk(this, q, n, radius, lists, filter));
        }
        finally { _lock.ExitRead(); }
        return RangeSearchResult.FromLists(Metric, radius, lists);
    }

    /// <summary>One chunk of a range batch (<see cref="RangeBlock"/>) for the shared fan-out.</summary>
    private readonly struct RangeChunk(FlatIndex index, float[] q, int n, float radius, List<(float Distance, long Id)>[] lists, IIdFilter? filter)
        : IQueryChunk<FlatScratch>
    {
        public void Run(int chunk, int first, int count, FlatScratch s)
        {
            int d = index.Dimension;
            index.RangeBlock(q.AsSpan(first * d, count * d), count, n, radius, lists.AsSpan(first, count), filter, s);
        }
    }

    // One block of queries (at most QueryBlock) against the whole corpus: a GEMM tile per corpus block, every entry
    // inside the radius kept.
    private void RangeBlock(ReadOnlySpan<float> qBlock, int qb, int n, float radius,
        Span<List<(float Distance, long Id)>> lists, IIdFilter? filter, FlatScratch s)
    {
        int d = Dimension;
        float[] dots = s.Dots(qb * Math.Min(_corpusBlock, Math.Max(1, n)));
        float[] qNorms = s.QueryNorms;
        if (Metric == Metric.L2) Distances.SquaredNorms(qBlock, d, qNorms.AsSpan(0, qb));
        for (int c0 = 0, cb; c0 < n; c0 += cb)
        {
            cb = Math.Min(Math.Min(_corpusBlock, n - c0), RowsInBlockFrom(c0));
            Distances.DotManyToMany(qBlock, RowRange(c0, cb), d, dots.AsSpan(0, qb * cb));
            var norms = _norms.AsSpan(c0, cb);
            for (int i = 0; i < qb; i++)
            {
                var row = dots.AsSpan(i * cb, cb);
                var list = lists[i];
                for (int j = 0; j < cb; j++)
                {
                    // Same arithmetic as the k-NN search (PushL2Block), so both report the same distance.
                    float value = Metric == Metric.L2 ? MathF.Max(0f, qNorms[i] + norms[j] - 2f * row[j]) : row[j];
                    if (!RangeSearchResult.Within(Metric, value, radius)) continue;
                    long id = _ids[c0 + j];
                    if (filter is not null && !filter.IsAllowed(id)) continue;
                    list.Add((value, id));
                }
            }
        }
    }
}

/// <summary>
/// The search scratch of one <see cref="FlatIndex"/> worker, pooled by the index (<see cref="ScratchPool{T}"/>): a query
/// block's heap counts and norms, and the distance tile of one query block × corpus block (grown on demand).
/// </summary>
internal sealed class FlatScratch
{
    public readonly int[] Counts = new int[FlatIndex.QueryBlock];
    public readonly float[] QueryNorms = new float[FlatIndex.QueryBlock];
    private float[] _dots = [];

    /// <summary>The distance tile, at least <paramref name="floats"/> long.</summary>
    public float[] Dots(int floats)
    {
        if (_dots.Length < floats) _dots = new float[floats];
        return _dots;
    }
}
