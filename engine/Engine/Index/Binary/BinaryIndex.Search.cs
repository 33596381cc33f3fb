using Engine.Distance;
using Engine.Quantization;
using Engine.Runtime;

namespace Engine.Index.Binary;

public sealed partial class BinaryIndex
{
    /// <summary>Default candidates per result re-ranked by the refine stage.</summary>
    public const int DefaultRefineFactor = 4;

    /// <inheritdoc />
    /// <remarks>Distances are exact (from the refine store) when the index has one, else the binary estimate.</remarks>
    public void Search(ReadOnlySpan<float> queries, int k, Span<float> distances, Span<long> labels, SearchParameters? parameters = null)
    {
        parameters?.Validate();
        SearchParameters.CheckFamily(parameters, "BIN", this);
        int d = Dimension;
        int nq = Guard.Rows(queries, d, nameof(queries));
        Guard.SearchBuffers(nq, k, distances.Length, labels.Length);
        Guard.Finite(queries, d, nameof(queries));
        var bin = parameters as BinarySearchParameters;
        if (bin?.RefineFactor is not null && _refine is null)
            throw new ArgumentException($"RefineFactor is set but the '{Description}' index has no refine stage (add RFlat or Refine(...)).", nameof(parameters));
        int factor = bin?.RefineFactor ?? DefaultRefineFactor;
        bool symmetric = bin?.Symmetric ?? false;
        int threads = parameters?.ResolveThreads() ?? Environment.ProcessorCount;
        var filter = parameters?.Filter;
        var q = Entry(queries).ToArray();
        var outD = new float[(long)nq * k];
        var outL = new long[(long)nq * k];
        _lock.EnterRead();
        try
        {
            if (!_codec.IsTrained)
            {
                Array.Fill(outD, Metric.MissingDistance());
                Array.Fill(outL, -1L);
            }
            else
            {
                int count = _count;
                int candidates = _refine is null ? k : (int)Math.Min(Math.Max(k, (long)k * factor), Math.Max(k, count));
                QueryFanOut.Run(nq, 1, threads, _scratch, new QuerySearch(this, q, count, k, candidates, symmetric, filter, outD, outL));
                long refined = _refine is null ? 0 : (long)nq * Math.Min(candidates, count);
                parameters?.Stats?.Add(queries: nq, codesScanned: (long)nq * count, refined: refined, distances: refined);
            }
        }
        finally { _lock.ExitRead(); }
        outD.CopyTo(distances);
        outL.CopyTo(labels);
    }

    /// <summary>Queries of a batch, one per chunk, for the shared fan-out.</summary>
    private readonly struct QuerySearch(BinaryIndex index, float[] q, int count, int k, int candidates, bool symmetric, IIdFilter? filter,
        float[] outD, long[] outL) : IQueryChunk<BinaryScratch>
    {
        public void Run(int chunk, int first, int n, BinaryScratch s)
        {
            int d = index.Dimension;
            var estimator = s.Estimator(index._codec, index.Metric, symmetric);
            s.Ensure(candidates, d);
            for (int i = first; i < first + n; i++)
                index.SearchOne(q.AsSpan(i * d, d), count, k, estimator, s.Keys.AsSpan(0, candidates), s.Ids.AsSpan(0, candidates), s.Vector, filter,
                    outD.AsSpan(i * k, k), outL.AsSpan(i * k, k));
        }
    }

    private void SearchOne(ReadOnlySpan<float> query, int count, int k, IDistanceEstimator estimator, Span<float> keys, Span<long> rows,
        float[] scratch, IIdFilter? filter, Span<float> distances, Span<long> labels)
    {
        estimator.SetQuery(query);
        int cs = _codec.CodeSize;
        var heap = new TopKHeap(keys, rows);
        ReadOnlySpan<byte> codes = _codes;
        for (int row = 0; row < count; row++)
        {
            float key = estimator.Distance(codes.Slice(row * cs, cs));
            if (key > heap.Threshold || (filter is not null && !filter.IsAllowed(_ids[row]))) continue;
            heap.Push(key, row);
        }
        int found = heap.SortAndPad(float.PositiveInfinity);
        var final = new TopKHeap(distances, labels);
        bool ip = Metric != Metric.L2;
        for (int c = 0; c < found; c++)
        {
            int row = (int)rows[c];
            float key = _refine is null
                ? keys[c]
                : _refine.Key(query, _refineCodes.AsSpan(row * _refine.CodeSize, _refine.CodeSize), ip, scratch);
            final.Push(key, _ids[row]);
        }
        int n = final.SortAndPad(float.PositiveInfinity);
        for (int j = 0; j < k; j++)
            distances[j] = j >= n ? Metric.MissingDistance() : ip ? -distances[j] : distances[j];
    }
}

/// <summary>
/// The search scratch of one <see cref="BinaryIndex"/> worker, pooled by the index: the query's candidate heap, a
/// vector for the refine stage, and one estimator of each kind (made on first use; an estimator keeps some of the
/// codec's learnt parameters, so <see cref="BinaryIndex.Train"/> empties the pool).
/// </summary>
internal sealed class BinaryScratch
{
    private IDistanceEstimator? _asymmetric, _symmetric;
    public float[] Keys = [];
    public long[] Ids = [];
    public float[] Vector = [];

    /// <summary>The estimator of the asked kind for <paramref name="codec"/> (the index's own; one per scratch and kind).</summary>
    public IDistanceEstimator Estimator(BinaryCodec codec, Metric metric, bool symmetric) => symmetric
        ? _symmetric ??= codec.CreateSymmetricEstimator(metric)
        : _asymmetric ??= codec.CreateEstimator(metric);

    /// <summary>Grows the buffers for <paramref name="candidates"/> candidates of dimension <paramref name="d"/>.</summary>
    public void Ensure(int candidates, int d)
    {
        if (Keys.Length < candidates) { Keys = new float[candidates]; Ids = new long[candidates]; }
        if (Vector.Length < d) Vector = new float[d];
    }
}
