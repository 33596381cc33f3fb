using Engine.Distance;

namespace Engine.Mining;

/// <summary>
/// Mines hard negatives for (anchor, positives) pairs from any <see cref="IVectorIndex"/>.
/// </summary>
/// <remarks>
/// <para>Design: anchors are processed in chunks of <see cref="MiningOptions.ChunkSize"/>; each chunk is one
/// batched <see cref="IVectorIndex.Search"/> of depth k, so memory is bounded by chunk × k candidates and no
/// anchors × corpus matrix ever exists. Per-anchor candidate work (exact positive scores, exclusions, filters,
/// optional exact re-scoring) runs in parallel and is a pure function of the anchor; selection then runs
/// sequentially in anchor order because the hand-out cap is shared state. Random choices use
/// <see cref="CounterRng"/> keyed by (seed, anchor id, candidate id), so the output is identical for any thread
/// count.</para>
/// <para>Positive scores are always exact (from <see cref="IVectorIndex.TryReconstruct"/>); candidate scores come
/// from the index unless <see cref="MiningOptions.RescoreExact"/> is set. Scores are larger-is-closer
/// (<see cref="MetricExtensions.ToScore"/>).</para>
/// <para>Thread safety: one instance may run several passes one after another; concurrent passes need separate
/// instances (they share nothing but the index, whose searches are thread-safe).</para>
/// </remarks>
public sealed partial class HardNegativeMiner
{
    private readonly IVectorIndex _index;
    private readonly MiningOptions _options;

    /// <summary>Creates a miner over <paramref name="index"/>; validates the options immediately.</summary>
    /// <exception cref="ArgumentException">A bad option (see <see cref="MiningOptions.Validate"/>).</exception>
    public HardNegativeMiner(IVectorIndex index, MiningOptions options)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _index = index;
        _options = options;
    }

    /// <summary>The options of this miner.</summary>
    public MiningOptions Options => _options;

    /// <summary>
    /// Mines lazily: rows stream out chunk by chunk in anchor order while <paramref name="report"/> fills up. The
    /// input is validated before the first row is produced (this method throws, not the enumeration).
    /// </summary>
    /// <exception cref="ArgumentException">Bad input: wrong dimension, NaN, positives not in the index, empty positive lists.</exception>
    public IEnumerable<MinedRow> Mine(MiningInput input, MiningReport report) => Mine(input, report, null);

    /// <summary>
    /// <see cref="Mine(MiningInput, MiningReport)"/> reporting (<c>mine</c>, anchors done, anchors) after each chunk
    /// of <see cref="MiningOptions.ChunkSize"/> anchors, on the enumerating thread.
    /// </summary>
    /// <exception cref="ArgumentException">Bad input: wrong dimension, NaN, positives not in the index, empty positive lists.</exception>
    public IEnumerable<MinedRow> Mine(MiningInput input, MiningReport report, IProgress<BuildProgress>? progress)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(report);
        // An empty corpus first: every positive would otherwise be reported as missing.
        if (_index.Count == 0) throw new ArgumentException("The index is empty: there is nothing to mine from.", nameof(input));
        input.Validate(_index);
        return MineValidated(input, report, progress);
    }

    /// <summary>Mines every anchor into <paramref name="sink"/>, completes it and returns the report.</summary>
    public MiningReport MineTo(MiningInput input, IMiningSink sink) => MineTo(input, sink, null);

    /// <summary><see cref="MineTo(MiningInput, IMiningSink)"/> reporting progress (see <see cref="Mine(MiningInput, MiningReport, IProgress{BuildProgress})"/>).</summary>
    public MiningReport MineTo(MiningInput input, IMiningSink sink, IProgress<BuildProgress>? progress)
    {
        ArgumentNullException.ThrowIfNull(sink);
        var report = new MiningReport(_options.Seed);
        foreach (var row in Mine(input, report, progress)) sink.Write(row);
        sink.Complete(report);
        return report;
    }

    /// <summary>
    /// Mines into <paramref name="path"/> (JSONL or binary, written atomically) and writes the provenance manifest
    /// beside it (<see cref="Output.MiningManifest.PathFor"/>). Returns the report.
    /// </summary>
    public MiningReport MineToFile(MiningInput input, string path, Output.MiningOutputFormat format,
        Output.MiningManifest? provenance = null) => MineToFile(input, path, format, provenance, null);

    /// <summary><see cref="MineToFile(MiningInput, string, Output.MiningOutputFormat, Output.MiningManifest?)"/> reporting progress.</summary>
    public MiningReport MineToFile(MiningInput input, string path, Output.MiningOutputFormat format,
        Output.MiningManifest? provenance, IProgress<BuildProgress>? progress)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        MiningReport report;
        using (IMiningSink sink = format == Output.MiningOutputFormat.Binary
            ? new Output.BinaryMiningWriter(path, _index)
            : new Output.JsonlMiningWriter(path))
        {
            report = MineTo(input, sink, progress);
        }
        (provenance ?? new Output.MiningManifest()).Write(path, format, _index, _options, report);
        return report;
    }

    /// <summary>
    /// Mines into fixed-width rows: row i of <paramref name="negatives"/> / <paramref name="scores"/> (n × width, n =
    /// <see cref="MiningInput.Count"/>) holds anchor i's negatives best first, padded with −1 / NaN; a row the shortfall
    /// policy drops is all padding. <paramref name="scores"/> may be empty (not wanted). The layout of <c>engine_mine</c>
    /// and of the cluster gateway.
    /// </summary>
    /// <exception cref="ArgumentException">Buffers shorter than n × width, or a width below <see cref="MiningOptions.NumNegatives"/>.</exception>
    public void MineToRows(MiningInput input, MiningReport report, int width, Span<long> negatives, Span<float> scores)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (width < _options.NumNegatives)
            throw new ArgumentException($"width ({width}) is smaller than num_negatives ({_options.NumNegatives}).", nameof(width));
        int rows = input.Count;
        long len = (long)rows * width;
        if (negatives.Length < len || (!scores.IsEmpty && scores.Length < len))
            throw new ArgumentException($"The output holds fewer than {rows} × {width} entries.", nameof(negatives));
        negatives[..(int)len].Fill(-1);
        if (!scores.IsEmpty) scores[..(int)len].Fill(float.NaN);
        int cursor = 0;
        foreach (var row in Mine(input, report))
        {
            // Rows come in anchor order; dropped anchors are skipped, so walk forward to this row's anchor.
            while (cursor < rows && input.AnchorId(cursor, _options.AnchorIdOffset) != row.Anchor) cursor++;
            if (cursor == rows) throw new InvalidOperationException($"Mined row for anchor {row.Anchor} does not match any input anchor.");
            int m = Math.Min(width, row.Negatives.Length);
            row.Negatives.AsSpan(0, m).CopyTo(negatives.Slice(cursor * width, m));
            if (!scores.IsEmpty) row.Scores.AsSpan(0, m).CopyTo(scores.Slice(cursor * width, m));
            cursor++;
        }
    }

    /// <summary>Mines every anchor into a list (convenient for small inputs and tests).</summary>
    public List<MinedRow> MineAll(MiningInput input, out MiningReport report)
    {
        report = new MiningReport(_options.Seed);
        return Mine(input, report).ToList();
    }

    private IEnumerable<MinedRow> MineValidated(MiningInput input, MiningReport report, IProgress<BuildProgress>? progress)
    {
        report.Start();
        try
        {
            int d = _index.Dimension;
            int threads = _options.Threads > 0 ? _options.Threads : Environment.ProcessorCount;
            int chunk = _options.ChunkSize;
            var prepared = new AnchorCandidates[Math.Min(chunk, input.Count)];
            for (int start = 0; start < input.Count; start += chunk)
            {
                int c = Math.Min(chunk, input.Count - start);
                int full = DepthFor(input, start, c);
                int shallow = ShallowDepth(input, start, c, full);
                var queries = new float[c * d];
                for (int i = 0; i < c; i++) LoadAnchor(input, start + i, queries.AsSpan(i * d, d));
                var rows = new int[c];
                for (int i = 0; i < c; i++) rows[i] = i;
                SearchAndPrepare(input, start, c, queries, rows, shallow, prepared, threads);
                if (shallow < full)
                {
                    // Anchors whose window came out short at the shallow depth are searched again at the full one,
                    // so the selected negatives are those a full-depth search gives.
                    var redo = new List<int>();
                    for (int i = 0; i < c; i++)
                        if (prepared[i].Window.Length < _options.NumNegatives) redo.Add(i);
                    if (redo.Count > 0)
                    {
                        var again = new float[redo.Count * d];
                        for (int r = 0; r < redo.Count; r++) queries.AsSpan(redo[r] * d, d).CopyTo(again.AsSpan(r * d, d));
                        SearchAndPrepare(input, start, c, again, redo.ToArray(), full, prepared, threads);
                        report.DeepenedAnchors += redo.Count;
                    }
                }
                for (int i = 0; i < c; i++)
                {
                    var row = Select(prepared[i], report);
                    prepared[i] = null!;
                    if (row is not null) yield return row;
                }
                progress?.Report(new BuildProgress("mine", start + c, input.Count));
            }
        }
        finally
        {
            report.Stop();
        }
    }

    // Searches `queries` (rows[i] of the chunk at row i) at depth k and prepares those anchors' candidates.
    private void SearchAndPrepare(MiningInput input, int start, int chunkCount, float[] queries, int[] rows, int k,
        AnchorCandidates[] prepared, int threads)
    {
        int d = _index.Dimension, c = rows.Length;
        var distances = new float[(long)c * k];
        var labels = new long[(long)c * k];
        _index.Search(queries, k, distances, labels, _options.SearchParameters ?? new SearchParameters { Threads = threads });
        ParallelWork.For(0, c, threads,
            () => new Scratch(d, MaxPositives(input, start, chunkCount)),
            (i, _, scratch) =>
            {
                prepared[rows[i]] = Prepare(input, start + rows[i], queries.AsSpan(i * d, d),
                    distances.AsSpan(i * k, k), labels.AsSpan(i * k, k), scratch);
                return scratch;
            },
            _ => { });
    }

    /// <summary>
    /// First-pass depth. <see cref="SamplingStrategy.Top"/> selection uses only the first <c>RangeMin +
    /// NumNegatives</c> survivors, so when nothing can reorder or consume candidates beyond the index ranking (no
    /// re-scoring, normaliser, hand-out cap or deeper padding) a search of about twice that depth finds them;
    /// anchors that come out short are searched again at <paramref name="full"/> depth. Otherwise the full depth.
    /// </summary>
    private int ShallowDepth(MiningInput input, int start, int count, int full)
    {
        if (_options.CandidateDepth > 0 || _options.Sampling != SamplingStrategy.Top || _options.RescoreExact
            || _options.Normalizer is not null || _options.MaxHandOutsPerItem > 0 || _options.Shortfall == ShortfallPolicy.PadFromDeeper)
            return full;
        int maxExcluded = 0;
        for (int i = 0; i < count; i++) maxExcluded = Math.Max(maxExcluded, input.ExcludedCount(start + i));
        long k = (long)(_options.RangeMin + _options.NumNegatives) * (_options.HasScoreFilters ? 2 : 1) + maxExcluded;
        return (int)Math.Min(k, full);
    }

    private int DepthFor(MiningInput input, int start, int count)
    {
        long k;
        if (_options.CandidateDepth > 0) k = _options.CandidateDepth;
        else
        {
            int maxExcluded = 0;
            for (int i = 0; i < count; i++) maxExcluded = Math.Max(maxExcluded, input.ExcludedCount(start + i));
            k = (long)_options.RangeMax + maxExcluded;
            if (_options.HasScoreFilters || _options.Shortfall == ShortfallPolicy.PadFromDeeper) k += _options.RangeMax;
        }
        // Asking for more than the corpus only produces padding.
        k = Math.Min(k, Math.Max(1, _index.Count));
        if (k * count > Array.MaxLength)
            throw new ArgumentException($"Candidate depth {k} × chunk {count} does not fit one buffer; lower ChunkSize.", nameof(input));
        return (int)k;
    }

    private static int MaxPositives(MiningInput input, int start, int count)
    {
        int m = 1;
        for (int i = 0; i < count; i++) m = Math.Max(m, input.Positives[start + i].Length);
        return m;
    }

    private void LoadAnchor(MiningInput input, int i, Span<float> destination)
    {
        int d = _index.Dimension;
        if (input.Vectors is not null) input.Vectors.AsSpan(i * d, d).CopyTo(destination);
        else if (!_index.TryReconstruct(input.CorpusAnchorIds![i], destination))
            throw new InvalidOperationException($"Anchor id {input.CorpusAnchorIds[i]} disappeared from the index during mining.");
    }

    /// <summary>Exact larger-is-closer score between two vectors under the index metric.</summary>
    internal static float ExactScore(Metric metric, ReadOnlySpan<float> a, ReadOnlySpan<float> b) => metric switch
    {
        Metric.L2 => -Distances.SquaredL2(a, b),
        Metric.InnerProduct => Distances.Dot(a, b),
        _ => Distances.Cosine(a, b),
    };

    private sealed class Scratch(int d, int maxPositives)
    {
        public readonly float[] Positives = new float[d * maxPositives];
        public readonly float[] Candidate = new float[d];
        public float[] Ranking = [];
        public float[] Raw = [];
        public long[] Ids = [];
    }
}
