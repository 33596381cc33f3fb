namespace Engine.Mining.Hubness;

/// <summary>Options of <see cref="HubnessAnalyzer"/>.</summary>
public sealed record HubnessOptions
{
    /// <summary>Neighbourhood size k of the k-occurrence N_k (scikit-hubness default 10).</summary>
    public int K { get; init; } = 10;

    /// <summary>Query-bank size drawn from the corpus with <see cref="Seed"/>; 0 = every corpus point.</summary>
    public int SampleSize { get; init; }

    /// <summary>An item is a hub when N_k ≥ HubFactor·k (scikit-hubness <c>hub_size</c> 2).</summary>
    public double HubFactor { get; init; } = 2.0;

    /// <summary>How many of the largest hubs the report lists.</summary>
    public int TopHubs { get; init; } = 10;

    /// <summary>Seed of the query-bank sample.</summary>
    public ulong Seed { get; init; } = 42;

    /// <summary>Worker threads (0 = all processors).</summary>
    public int Threads { get; init; }

    /// <summary>Queries per batched search.</summary>
    public int ChunkSize { get; init; } = 1024;

    internal void Validate()
    {
        if (K <= 0) throw new ArgumentOutOfRangeException(nameof(K), K, $"K must be at least 1 (got {K}).");
        if (SampleSize < 0) throw new ArgumentOutOfRangeException(nameof(SampleSize), SampleSize, $"SampleSize must be >= 0 (0 = every corpus point; got {SampleSize}).");
        if (!double.IsFinite(HubFactor) || HubFactor <= 0) throw new ArgumentOutOfRangeException(nameof(HubFactor), HubFactor, $"HubFactor must be finite and > 0 (got {HubFactor}).");
        if (TopHubs < 0) throw new ArgumentOutOfRangeException(nameof(TopHubs), TopHubs, $"TopHubs must be >= 0 (got {TopHubs}).");
        if (ChunkSize <= 0) throw new ArgumentOutOfRangeException(nameof(ChunkSize), ChunkSize, $"ChunkSize must be at least 1 (got {ChunkSize}).");
        if (Threads < 0) throw new ArgumentOutOfRangeException(nameof(Threads), Threads, $"Threads must be >= 0 (0 = all processors; got {Threads}).");
    }
}

/// <summary>
/// Measures hubness of an index: the k-occurrence N_k(x) (how many query-bank points have x among their k nearest
/// neighbours) and the usual summaries (scikit-hubness <c>Hubness</c>): skewness, Robin Hood index, Gini, hub and
/// antihub shares, top hubs.
/// </summary>
/// <remarks>Memory: one int per corpus id plus one chunk of search results; no query × corpus matrix.</remarks>
public static class HubnessAnalyzer
{
    /// <summary>
    /// N_k with the corpus itself (or a seeded sample of it) as the query bank. Each query's own id is excluded from
    /// its neighbour list (search depth k + 1). Vectors come from <see cref="IVectorIndex.TryReconstruct"/>.
    /// </summary>
    /// <param name="index">The index.</param>
    /// <param name="corpusIds">Every id in the index (the items N_k is reported over).</param>
    /// <param name="options">Options (null = defaults).</param>
    /// <exception cref="ArgumentException">Bad options, K ≥ the index count − 1, empty corpus, or an id the index does not hold.</exception>
    public static HubnessReport Analyze(IVectorIndex index, IReadOnlyList<long> corpusIds, HubnessOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(corpusIds);
        options ??= new HubnessOptions();
        options.Validate();
        if (corpusIds.Count == 0) throw new ArgumentException("corpusIds is empty.", nameof(corpusIds));
        // Each query's own id is left out, so its list can hold at most Count − 1 others: with K ≥ Count − 1 every
        // item is in (nearly) every list and N_k is flat whatever the geometry (skewness 0 says nothing).
        if (options.K >= index.Count - 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.K,
                $"K ({options.K}) must be below the index's vector count minus one ({index.Count - 1}): deeper lists hold every item and N_k measures nothing.");
        long[] bank = SampleBank(corpusIds, options.SampleSize, options.Seed);
        var counts = NewCounts(corpusIds);
        BankScan.Run(index, bank, options.K, options.Threads, options.ChunkSize, (_, ids, _) =>
        {
            foreach (long id in ids)
                if (counts.TryGetValue(id, out int c)) counts[id] = c + 1;
        });
        return new HubnessReport(counts, options.K, bank.Length, options.HubFactor, options.TopHubs);
    }

    /// <summary>N_k for an external query bank (n × d row-major, at least one row); nothing is excluded.</summary>
    /// <exception cref="ArgumentException">Bad options, K ≥ the index count, wrong dimension, non-finite queries, no
    /// query (an empty bank), empty corpus.</exception>
    public static HubnessReport Analyze(IVectorIndex index, IReadOnlyList<long> corpusIds, ReadOnlySpan<float> queries,
        HubnessOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(corpusIds);
        options ??= new HubnessOptions();
        options.Validate();
        if (corpusIds.Count == 0) throw new ArgumentException("corpusIds is empty.", nameof(corpusIds));
        int d = index.Dimension, k = options.K;
        // A list as deep as the index holds every item: N_k is flat whatever the geometry (skewness 0 says nothing).
        if (k >= index.Count)
            throw new ArgumentOutOfRangeException(nameof(options), k,
                $"K ({k}) must be below the index's vector count ({index.Count}): deeper lists hold every item and N_k measures nothing.");
        int nq = Guard.Rows(queries, d, nameof(queries));
        // No query puts nothing in any list: every N_k would be 0 and the summaries would describe nothing (an empty
        // corpus is refused the same way).
        if (nq == 0)
            throw new ArgumentException("queries is empty (0 rows): hubness needs at least one query; use the corpus as the query bank instead (the overload without queries).", nameof(queries));
        Guard.Finite(queries, d, nameof(queries));
        var counts = NewCounts(corpusIds);
        // The chunk shrinks so chunk × k results fit one array.
        int chunk = BankScan.ChunkFor(options.ChunkSize, k);
        var dist = new float[Math.Min(chunk, Math.Max(1, nq)) * k];
        var labels = new long[dist.Length];
        for (int start = 0; start < nq; start += chunk)
        {
            int c = Math.Min(chunk, nq - start);
            index.Search(queries.Slice(start * d, c * d), k, dist, labels, new SearchParameters { Threads = options.Threads });
            for (int j = 0; j < c * k; j++)
                if (labels[j] >= 0 && counts.ContainsKey(labels[j])) counts[labels[j]]++;
        }
        return new HubnessReport(counts, options.K, nq, options.HubFactor, options.TopHubs);
    }

    /// <summary>A seeded sample of <paramref name="size"/> ids (all ids when size is 0 or ≥ the count), in input order.</summary>
    public static long[] SampleBank(IReadOnlyList<long> ids, int size, ulong seed)
    {
        if (size <= 0 || size >= ids.Count) return ids.ToArray();
        // Keep the ids with the smallest hash: a uniform sample that depends only on (seed, id).
        var keyed = new (ulong Key, int Pos)[ids.Count];
        for (int i = 0; i < ids.Count; i++) keyed[i] = (CounterRng.Hash(seed, 0xB4A4C, (ulong)ids[i]), i);
        Array.Sort(keyed);
        var pos = keyed.Take(size).Select(t => t.Pos).Order().ToArray();
        return pos.Select(p => ids[p]).ToArray();
    }

    private static Dictionary<long, int> NewCounts(IReadOnlyList<long> corpusIds)
    {
        var counts = new Dictionary<long, int>(corpusIds.Count);
        foreach (long id in corpusIds)
            if (!counts.TryAdd(id, 0)) throw new ArgumentException($"Corpus id {id} appears twice.", nameof(corpusIds));
        return counts;
    }
}
