namespace Engine.Mining.Hubness;

/// <summary>Runs a query bank of corpus ids through an index in chunks, excluding each query's own id.</summary>
internal static class BankScan
{
    /// <summary>
    /// Calls <paramref name="visit"/> once per bank query, in bank order, with up to <paramref name="k"/> neighbour
    /// ids and their scores (larger is closer, best first), the query's own id removed.
    /// </summary>
    public static void Run(IVectorIndex index, long[] bank, int k, int threads, int chunkSize,
        Action<int, ReadOnlySpan<long>, ReadOnlySpan<float>> visit)
    {
        int d = index.Dimension;
        int depth = (int)Math.Min(k + 1L, Math.Max(1, index.Count));
        chunkSize = ChunkFor(chunkSize, depth);
        var ids = new long[depth];
        var scores = new float[depth];
        for (int start = 0; start < bank.Length; start += chunkSize)
        {
            int c = Math.Min(chunkSize, bank.Length - start);
            var q = new float[c * d];
            for (int i = 0; i < c; i++)
                if (!index.TryReconstruct(bank[start + i], q.AsSpan(i * d, d)))
                    throw new ArgumentException($"Corpus id {bank[start + i]} is not in the index.", "corpusIds");
            var dist = new float[c * depth];
            var labels = new long[c * depth];
            index.Search(q, depth, dist, labels, new SearchParameters { Threads = threads });
            for (int i = 0; i < c; i++)
            {
                int taken = 0;
                for (int j = 0; j < depth && taken < k; j++)
                {
                    long id = labels[i * depth + j];
                    if (id < 0) break;
                    if (id == bank[start + i]) continue;
                    ids[taken] = id;
                    scores[taken] = index.Metric.ToScore(dist[i * depth + j]);
                    taken++;
                }
                visit(start + i, ids.AsSpan(0, taken), scores.AsSpan(0, taken));
            }
        }
    }

    /// <summary>Queries per search so that chunk × depth results fit one array (the chunk size is a memory bound,
    /// never a reason to overflow).</summary>
    public static int ChunkFor(int chunkSize, int depth) => (int)Math.Max(1, Math.Min(chunkSize, Array.MaxLength / Math.Max(1, depth)));
}
