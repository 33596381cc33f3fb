using Engine.Distance;
using Engine.Quantization;

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
                ParallelWork.For(0, nq, threads,
                    () => (Estimator: symmetric ? _codec.CreateSymmetricEstimator(Metric) : _codec.CreateEstimator(Metric),
                           Keys: new float[candidates], Ids: new long[candidates], Scratch: new float[d]),
                    (i, _, s) =>
                    {
                        SearchOne(q.AsSpan(i * d, d), count, k, s.Estimator, s.Keys, s.Ids, s.Scratch, filter,
                            outD.AsSpan(i * k, k), outL.AsSpan(i * k, k));
                        return s;
                    }, _ => { });
                long refined = _refine is null ? 0 : (long)nq * Math.Min(candidates, count);
                parameters?.Stats?.Add(queries: nq, codesScanned: (long)nq * count, refined: refined, distances: refined);
            }
        }
        finally { _lock.ExitRead(); }
        outD.CopyTo(distances);
        outL.CopyTo(labels);
    }

    private void SearchOne(ReadOnlySpan<float> query, int count, int k, IDistanceEstimator estimator, float[] keys, long[] rows,
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
