using System.Diagnostics;

namespace Engine.Mining.Training;

/// <summary>Options of <see cref="ContrastiveTrainer"/>; <see cref="Validate"/> names the first bad value.</summary>
public sealed record ContrastiveTrainingOptions
{
    /// <summary>Anchors drawn (without replacement, seeded) from the items that have a positive, per epoch.</summary>
    public int AnchorsPerEpoch { get; init; } = 2000;

    /// <summary>Tuples per optimizer step.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Adam step size.</summary>
    public float LearningRate { get; init; } = 2e-3f;

    /// <summary>InfoNCE temperature τ.</summary>
    public float Temperature { get; init; } = 0.1f;

    /// <summary>
    /// How the negatives are mined each epoch (<see cref="MiningOptions.NumNegatives"/>, the window and the
    /// false-negative guards). Its <see cref="MiningOptions.Seed"/> is offset by the epoch number.
    /// </summary>
    public MiningOptions Mining { get; init; } = new();

    /// <summary>Seed of the anchor draw and of the tuple order.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Threads for embedding and mining (0 = all cores); results do not depend on it.</summary>
    public int Threads { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first option out of its range
    /// (AnchorsPerEpoch, BatchSize &gt;= 1; LearningRate, Temperature finite &gt; 0; Threads &gt;= 0), then checks
    /// <see cref="Mining"/>.</summary>
    public void Validate()
    {
        if (AnchorsPerEpoch < 1) throw new ArgumentOutOfRangeException(nameof(AnchorsPerEpoch), AnchorsPerEpoch, $"AnchorsPerEpoch must be at least 1 (got {AnchorsPerEpoch}).");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, $"BatchSize must be at least 1 (got {BatchSize}).");
        if (!(LearningRate > 0) || !float.IsFinite(LearningRate)) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, $"LearningRate must be positive and finite (got {LearningRate}).");
        if (!(Temperature > 0) || !float.IsFinite(Temperature)) throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, $"Temperature must be positive and finite (got {Temperature}).");
        if (Threads < 0) throw new ArgumentOutOfRangeException(nameof(Threads), Threads, $"Threads must be 0 (all cores) or positive (got {Threads}).");
        ArgumentNullException.ThrowIfNull(Mining);
        Mining.Validate();
    }
}

/// <summary>What one epoch of <see cref="ContrastiveTrainer.TrainEpoch"/> did and how long each stage took.</summary>
/// <param name="Epoch">Epoch number (0-based).</param>
/// <param name="Loss">Mean InfoNCE loss over the tuples trained on.</param>
/// <param name="Tuples">(anchor, positive, negatives) tuples trained on (rows the miner emitted).</param>
/// <param name="Negatives">Negatives used.</param>
/// <param name="FalseNegativeShare">Share of the negatives whose label equals the anchor's (NaN without labels).</param>
/// <param name="EmbedSeconds">Embedding the corpus with the current model.</param>
/// <param name="IndexSeconds">Building the index over the embeddings.</param>
/// <param name="MineSeconds">Mining.</param>
/// <param name="TrainSeconds">Forward, backward and optimizer steps.</param>
/// <param name="Mining">The miner's report of this epoch.</param>
public sealed record EpochStats(int Epoch, double Loss, int Tuples, long Negatives, double FalseNegativeShare,
    double EmbedSeconds, double IndexSeconds, double MineSeconds, double TrainSeconds, MiningReport Mining)
{
    /// <summary>Wall time of the whole epoch.</summary>
    public double TotalSeconds => EmbedSeconds + IndexSeconds + MineSeconds + TrainSeconds;
}

/// <summary>
/// In-process contrastive training with negatives re-mined every epoch (ANCE-style): embed the corpus with the
/// current model, index the embeddings, mine hard negatives for a seeded draw of anchors with
/// <see cref="HardNegativeMiner"/> (and its false-negative guards), then train on InfoNCE over
/// (anchor, positive, negatives) with Adam.
/// </summary>
/// <remarks>
/// <para>Positives are <em>designated pairs</em>: item i's positive is <c>positiveOf[i]</c> (−1 = item i never
/// anchors). The trainer never reads labels to choose negatives; labels, when given, only measure the share of
/// false negatives handed out.</para>
/// <para>The index comes from a factory over the embedding dimension, so the trainer depends only on
/// <see cref="IVectorIndex"/>; it must support <see cref="IVectorIndex.TryReconstruct"/> (the miner reads
/// corpus anchors and positives back) and is disposed after each epoch.</para>
/// <para>Determinism: anchors, mining and the tuple order are functions of the seeds; training runs sequentially,
/// so a run is reproducible for any thread count. Not thread safe: one epoch at a time.</para>
/// </remarks>
public sealed class ContrastiveTrainer
{
    private readonly MlpEmbedder _model;
    private readonly Func<int, IVectorIndex> _createIndex;
    private readonly ContrastiveTrainingOptions _options;
    private readonly AdamOptimizer _adam;
    private readonly float[] _gradient;
    private readonly List<MlpEmbedder.Activations> _acts = [];

    /// <summary>Creates a trainer; validates the options now.</summary>
    /// <param name="model">The model trained in place.</param>
    /// <param name="createIndex">Creates an empty index for a given dimension (e.g. a Flat inner-product index).</param>
    /// <param name="options">Training options.</param>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    public ContrastiveTrainer(MlpEmbedder model, Func<int, IVectorIndex> createIndex, ContrastiveTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(createIndex);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _model = model;
        _createIndex = createIndex;
        _options = options;
        _adam = new AdamOptimizer(model.ParameterCount, options.LearningRate);
        _gradient = new float[model.ParameterCount];
    }

    /// <summary>The model being trained.</summary>
    public MlpEmbedder Model => _model;

    /// <summary>
    /// One epoch: embed <paramref name="corpus"/>, index it, mine negatives for a seeded draw of anchors, train.
    /// </summary>
    /// <param name="corpus">n × D training inputs (row-major); corpus ids are row numbers.</param>
    /// <param name="positiveOf">n entries: the designated positive row of each row, or −1.</param>
    /// <param name="epoch">Epoch number; keys the anchor draw, the mining seed and the tuple order.</param>
    /// <param name="labels">Optional n labels, used only to report <see cref="EpochStats.FalseNegativeShare"/>.</param>
    /// <exception cref="ArgumentException">Sizes disagree, a positive is out of range or is the item itself, or no item has a positive.</exception>
    public EpochStats TrainEpoch(float[] corpus, long[] positiveOf, int epoch, int[]? labels = null)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        ArgumentNullException.ThrowIfNull(positiveOf);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        int n = Guard.Rows(corpus, _model.InputDimension, nameof(corpus));
        if (positiveOf.Length != n) throw new ArgumentException($"positiveOf has {positiveOf.Length} entries for {n} corpus rows.", nameof(positiveOf));
        if (labels is not null && labels.Length != n) throw new ArgumentException($"labels has {labels.Length} entries for {n} corpus rows.", nameof(labels));
        var candidates = new List<long>();
        for (int i = 0; i < n; i++)
        {
            long p = positiveOf[i];
            if (p == -1) continue;
            if (p < 0 || p >= n || p == i) throw new ArgumentException($"positiveOf[{i}] = {p} is not another corpus row (0..{n - 1}) or −1.", nameof(positiveOf));
            candidates.Add(i);
        }
        if (candidates.Count == 0) throw new ArgumentException("No corpus row has a positive (every positiveOf entry is −1).", nameof(positiveOf));

        var sw = Stopwatch.StartNew();
        int o = _model.OutputDimension;
        float[] embedded = _model.Embed(corpus, _options.Threads);
        double embedSeconds = sw.Elapsed.TotalSeconds;

        sw.Restart();
        var ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = i;
        using var index = _createIndex(o) ?? throw new InvalidOperationException("The index factory returned null.");
        if (index.Dimension != o) throw new InvalidOperationException($"The index factory made a {index.Dimension}-dimensional index for {o}-dimensional embeddings.");
        index.Train(embedded);
        index.Add(embedded, ids);
        double indexSeconds = sw.Elapsed.TotalSeconds;

        sw.Restart();
        long[] anchors = DrawAnchors(candidates, epoch);
        var positives = new long[anchors.Length][];
        for (int i = 0; i < anchors.Length; i++) positives[i] = [positiveOf[anchors[i]]];
        var mining = _options.Mining with { Seed = _options.Mining.Seed + (ulong)epoch, Threads = _options.Threads };
        var rows = new HardNegativeMiner(index, mining).MineAll(MiningInput.FromCorpusIds(anchors, positives), out var report);
        double mineSeconds = sw.Elapsed.TotalSeconds;

        sw.Restart();
        var (loss, tuples, negatives, falseNegatives) = TrainOnRows(rows, corpus, epoch, labels);
        double trainSeconds = sw.Elapsed.TotalSeconds;
        double share = labels is null || negatives == 0 ? double.NaN : (double)falseNegatives / negatives;
        return new EpochStats(epoch, loss, tuples, negatives, share, embedSeconds, indexSeconds, mineSeconds, trainSeconds, report);
    }

    private long[] DrawAnchors(List<long> candidates, int epoch)
    {
        // The AnchorsPerEpoch candidates with the smallest hash of (seed, epoch, id): a uniform draw without
        // replacement that depends only on the seeds.
        int take = Math.Min(_options.AnchorsPerEpoch, candidates.Count);
        var keys = new ulong[candidates.Count];
        for (int i = 0; i < keys.Length; i++) keys[i] = CounterRng.Hash(_options.Seed, 0xA4C0_0000UL + (ulong)epoch, (ulong)candidates[i]);
        var order = candidates.ToArray();
        Array.Sort(keys, order);
        return order[..take];
    }

    /// <summary>
    /// One optimiser step on <paramref name="rows"/> (a batch): InfoNCE on (anchor, first positive, negatives) of every
    /// row with at least one negative, computed from the raw <paramref name="corpus"/> inputs, then one Adam step.
    /// This is the step a loop that mines through a <see cref="Refresh.MiningRefresher"/> calls.
    /// </summary>
    /// <param name="rows">Mined rows whose anchors, positives and negatives are corpus row numbers.</param>
    /// <param name="corpus">n × D training inputs (row-major).</param>
    /// <returns>Mean loss over the rows used and how many rows were used (NaN and 0 when none had negatives).</returns>
    /// <exception cref="ArgumentException">An id is not a corpus row, or the corpus is not whole rows.</exception>
    public (double Loss, int Tuples) TrainStep(IReadOnlyList<MinedRow> rows, float[] corpus)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(corpus);
        int n = Guard.Rows(corpus, _model.InputDimension, nameof(corpus));
        var usable = rows.Where(r => r.Negatives.Length > 0).ToArray();
        foreach (var r in usable)
            foreach (long id in (long[])[r.Anchor, r.Positives[0], .. r.Negatives])
                if (id < 0 || id >= n) throw new ArgumentException($"Row of anchor {r.Anchor} refers to id {id}, which is not a corpus row (0..{n - 1}).", nameof(rows));
        if (usable.Length == 0) return (double.NaN, 0);
        long negatives = 0, falseNegatives = 0;
        double loss = Step(usable, corpus, null, ref negatives, ref falseNegatives);
        return (loss / usable.Length, usable.Length);
    }

    private (double Loss, int Tuples, long Negatives, long FalseNegatives) TrainOnRows(List<MinedRow> rows, float[] corpus, int epoch, int[]? labels)
    {
        var usable = rows.Where(r => r.Negatives.Length > 0).ToArray();
        var keys = new ulong[usable.Length];
        for (int i = 0; i < keys.Length; i++) keys[i] = CounterRng.Hash(_options.Seed, 0x5E0F_0000UL + (ulong)epoch, (ulong)usable[i].Anchor);
        Array.Sort(keys, usable);
        double lossSum = 0;
        long negatives = 0, falseNegatives = 0;
        for (int b0 = 0; b0 < usable.Length; b0 += _options.BatchSize)
        {
            int b1 = Math.Min(usable.Length, b0 + _options.BatchSize);
            lossSum += Step(usable.AsSpan(b0, b1 - b0), corpus, labels, ref negatives, ref falseNegatives);
        }
        return (usable.Length == 0 ? double.NaN : lossSum / usable.Length, usable.Length, negatives, falseNegatives);
    }

    // One Adam step on a batch of rows with negatives; returns the summed loss.
    private double Step(ReadOnlySpan<MinedRow> batch, float[] corpus, int[]? labels, ref long negatives, ref long falseNegatives)
    {
        int d = _model.InputDimension, o = _model.OutputDimension;
        int maxNeg = 0;
        foreach (var r in batch) maxNeg = Math.Max(maxNeg, r.Negatives.Length);
        while (_acts.Count < maxNeg + 2) _acts.Add(new MlpEmbedder.Activations(_model));
        var negEmb = new float[maxNeg * o];
        var negGrad = new float[maxNeg * o];
        var aGrad = new float[o];
        var pGrad = new float[o];
        float scale = 1f / batch.Length;
        double lossSum = 0;
        Array.Clear(_gradient);
        foreach (var row in batch)
        {
            int m = row.Negatives.Length;
            _model.Forward(corpus.AsSpan(checked((int)row.Anchor * d), d), _acts[0]);
            _model.Forward(corpus.AsSpan(checked((int)row.Positives[0] * d), d), _acts[1]);
            for (int j = 0; j < m; j++)
            {
                _model.Forward(corpus.AsSpan(checked((int)row.Negatives[j] * d), d), _acts[j + 2]);
                _acts[j + 2].Embedding.CopyTo(negEmb.AsSpan(j * o, o));
                if (labels is not null && labels[row.Negatives[j]] == labels[row.Anchor]) falseNegatives++;
            }
            negatives += m;
            lossSum += InfoNce.LossAndGradients(_acts[0].Embedding, _acts[1].Embedding, negEmb.AsSpan(0, m * o),
                _options.Temperature, scale, aGrad, pGrad, negGrad.AsSpan(0, m * o));
            _model.Backward(_acts[0], aGrad, _gradient);
            _model.Backward(_acts[1], pGrad, _gradient);
            for (int j = 0; j < m; j++) _model.Backward(_acts[j + 2], negGrad.AsSpan(j * o, o), _gradient);
        }
        _adam.Step(_model.Parameters, _gradient);
        return lossSum;
    }
}

/// <summary>Retrieval quality of an embedding measured with class labels.</summary>
public static class RetrievalQuality
{
    /// <summary>
    /// Precision@k: over all queries, the share of each query's k nearest corpus items (searched in
    /// <paramref name="corpusIndex"/>, whose ids must be row numbers into <paramref name="corpusLabels"/>) that
    /// carry the query's label. Missing results (index smaller than k) count as misses.
    /// </summary>
    /// <param name="corpusIndex">Index over the corpus; ids 0..n−1.</param>
    /// <param name="queries">nq × d query rows.</param>
    /// <param name="queryLabels">nq labels.</param>
    /// <param name="corpusLabels">n labels, indexed by corpus id.</param>
    /// <param name="k">Neighbours per query ≥ 1.</param>
    /// <param name="threads">Search threads (0 = all cores).</param>
    /// <exception cref="ArgumentException">Sizes disagree or the index returns an id outside corpusLabels.</exception>
    public static double PrecisionAtK(IVectorIndex corpusIndex, float[] queries, int[] queryLabels, int[] corpusLabels, int k, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(corpusIndex);
        ArgumentNullException.ThrowIfNull(queries);
        ArgumentNullException.ThrowIfNull(queryLabels);
        ArgumentNullException.ThrowIfNull(corpusLabels);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        int nq = Guard.Rows(queries, corpusIndex.Dimension, nameof(queries));
        if (queryLabels.Length != nq) throw new ArgumentException($"queryLabels has {queryLabels.Length} entries for {nq} queries.", nameof(queryLabels));
        if (nq == 0) throw new ArgumentException("No queries to evaluate.", nameof(queries));
        var dist = new float[checked(nq * k)];
        var ids = new long[dist.Length];
        corpusIndex.Search(queries, k, dist, ids, new SearchParameters { Threads = threads });
        long hits = 0;
        for (int q = 0; q < nq; q++)
            for (int j = 0; j < k; j++)
            {
                long id = ids[q * k + j];
                if (id < 0) continue;
                if (id >= corpusLabels.Length) throw new ArgumentException($"The index returned id {id}, outside the {corpusLabels.Length} corpus labels.", nameof(corpusLabels));
                if (corpusLabels[id] == queryLabels[q]) hits++;
            }
        return (double)hits / ((long)nq * k);
    }
}
