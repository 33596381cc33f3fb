namespace Engine.Mining;

/// <summary>How negatives are picked from the rank window.</summary>
public enum SamplingStrategy
{
    /// <summary>The best-scoring survivors of the window, in rank order.</summary>
    Top = 0,
    /// <summary>Uniformly at random among the window's survivors (without replacement).</summary>
    Uniform = 1,
    /// <summary>SimANS ambiguous negatives: p ∝ exp(−a·|s − s⁺ − b|).</summary>
    SimAns = 2,
    /// <summary>Softmax over scores: p ∝ exp(s / temperature).</summary>
    Softmax = 3,
}

/// <summary>What to do with an anchor whose window yields fewer than the requested negatives.</summary>
public enum ShortfallPolicy
{
    /// <summary>Drop the row (sentence-transformers behaviour).</summary>
    Drop = 0,
    /// <summary>Fill from survivors ranked beyond the window (deeper ranks, in rank order); a row still short is kept short.</summary>
    PadFromDeeper = 1,
    /// <summary>Emit the row with fewer negatives.</summary>
    KeepShort = 2,
}

/// <summary>Which positive score anchors the margin filters and SimANS when an anchor has several positives.</summary>
public enum PositiveAnchor
{
    /// <summary>The lowest positive score (the safe choice: the hardest positive).</summary>
    Min = 0,
    /// <summary>The mean positive score.</summary>
    Mean = 1,
    /// <summary>The highest positive score.</summary>
    Max = 2,
}

/// <summary>
/// Options of <see cref="HardNegativeMiner"/>. All scores are "larger is closer": similarity for inner product and
/// cosine, negative squared distance for L2 (<see cref="MetricExtensions.ToScore"/>).
/// </summary>
/// <remarks>
/// Candidate handling, in order: the anchor itself, its positives and its extra exclusions are removed; then the
/// near-duplicate guard, the margin filters and the score bounds drop candidates (each dropped candidate is counted
/// once, under the first filter that drops it); the survivors are ranked and the window
/// [<see cref="RangeMin"/>, <see cref="RangeMax"/>) is counted over survivors only (sentence-transformers
/// convention: <see cref="RangeMin"/> skips that many best survivors).
/// </remarks>
public sealed record MiningOptions
{
    /// <summary>Negatives per anchor (default 3, as sentence-transformers).</summary>
    public int NumNegatives { get; init; } = 3;

    /// <summary>Skip this many best surviving candidates (default 0).</summary>
    public int RangeMin { get; init; }

    /// <summary>Exclusive end of the window over surviving candidates (default 100).</summary>
    public int RangeMax { get; init; } = 100;

    /// <summary>
    /// Candidates fetched from the index per anchor; 0 = automatic: <see cref="RangeMax"/> plus the largest number of
    /// excluded ids of any anchor in the chunk, plus <see cref="RangeMax"/> again when a score filter or padding is on.
    /// There is no upper cap. With automatic depth and <see cref="SamplingStrategy.Top"/> selection (no re-scoring,
    /// normaliser, hand-out cap or padding), a first search fetches only about <c>RangeMin + NumNegatives</c>
    /// candidates (twice that with score filters) and anchors left short are searched again at the full depth
    /// (<see cref="MiningReport.DeepenedAnchors"/>); on an exact index the output is the same as a full-depth search.
    /// </summary>
    public int CandidateDepth { get; init; }

    /// <summary>
    /// Keep the anchor's positives among the candidates instead of removing them (sentence-transformers'
    /// <c>include_positives</c>: a full first-stage ranking, e.g. for re-ranker evaluation sets). They are still
    /// scored as positives for the margins; the other filters and the window apply to them like to any candidate.
    /// </summary>
    public bool IncludePositives { get; init; }

    /// <summary>
    /// Id of the first external (vector) anchor: anchor <c>i</c> of a <see cref="MiningInput.FromVectors"/> input is
    /// <c>AnchorIdOffset + i</c> in the output and in the random streams, so mining a query set in slices (each with
    /// the offset of its first row) gives the same rows as one call. Corpus anchors keep their corpus ids. Default 0.
    /// </summary>
    public long AnchorIdOffset { get; init; }

    /// <summary>Drop candidates whose cosine similarity to any positive exceeds this (null = off).</summary>
    public float? DuplicateThreshold { get; init; }

    /// <summary>Drop a candidate when <c>neg + margin &gt; pos</c> (null = off).</summary>
    public float? AbsoluteMargin { get; init; }

    /// <summary>Drop a candidate when <c>neg &gt; pos − |pos|·margin</c> (sign-safe; 0.05 = NV-Retriever TopK-PercPos 95%; null = off).</summary>
    public float? RelativeMargin { get; init; }

    /// <summary>Which positive score the margins and SimANS use when there are several positives.</summary>
    public PositiveAnchor PositiveAnchor { get; init; } = PositiveAnchor.Min;

    /// <summary>Drop candidates scoring below this (null = off).</summary>
    public float? MinScore { get; init; }

    /// <summary>Drop candidates scoring above this (null = off).</summary>
    public float? MaxScore { get; init; }

    /// <summary>How negatives are picked from the window.</summary>
    public SamplingStrategy Sampling { get; init; } = SamplingStrategy.Top;

    /// <summary>SimANS sharpness a (shipped SimANS code uses 3).</summary>
    public double SimAnsA { get; init; } = 3.0;

    /// <summary>SimANS offset b (shipped SimANS code uses 0).</summary>
    public double SimAnsB { get; init; }

    /// <summary>Softmax temperature (must be positive).</summary>
    public double Temperature { get; init; } = 0.05;

    /// <summary>
    /// Hubness-aware sampling exponent γ: a candidate's sampling weight is multiplied by max(N_k(j), 1)^−γ, where
    /// N_k comes from <see cref="KOccurrence"/>. 0 = off. Needs a sampling strategy other than <see cref="SamplingStrategy.Top"/>.
    /// </summary>
    public double HubnessGamma { get; init; }

    /// <summary>k-occurrence N_k per corpus id (from <see cref="Hubness.HubnessAnalyzer"/>); required when <see cref="HubnessGamma"/> &gt; 0.</summary>
    public IReadOnlyDictionary<long, int>? KOccurrence { get; init; }

    /// <summary>At most this many hand-outs of one corpus item as a negative per mining pass (0 = unlimited).</summary>
    public int MaxHandOutsPerItem { get; init; }

    /// <summary>What to do with anchors that get too few negatives.</summary>
    public ShortfallPolicy Shortfall { get; init; } = ShortfallPolicy.Drop;

    /// <summary>Re-score every candidate exactly from reconstructed vectors (for approximate indexes).</summary>
    public bool RescoreExact { get; init; }

    /// <summary>Optional hubness-reducing normaliser used to rank candidates (filters still use raw scores).</summary>
    public Hubness.IScoreNormalizer? Normalizer { get; init; }

    /// <summary>Seed of the counter-based RNG; output depends only on the seed, never on thread count.</summary>
    public ulong Seed { get; init; } = 42;

    /// <summary>Worker threads (0 = all processors; negative is rejected). The output does not depend on it.</summary>
    public int Threads { get; init; }

    /// <summary>Anchors searched per batched index call (bounds memory: chunk × depth candidates).</summary>
    public int ChunkSize { get; init; } = 1024;

    /// <summary>
    /// Parameters of the candidate search (e.g. <c>IvfSearchParameters</c> with probes and refine factor for an
    /// approximate index); null searches with the index defaults and <see cref="Threads"/>.
    /// </summary>
    public SearchParameters? SearchParameters { get; init; }

    /// <summary>True when a filter that depends on scores is set.</summary>
    public bool HasScoreFilters => AbsoluteMargin.HasValue || RelativeMargin.HasValue || MinScore.HasValue
        || MaxScore.HasValue || DuplicateThreshold.HasValue;

    /// <summary>Checks every option; throws naming the first bad one. Called before any work starts.</summary>
    /// <remarks>Ranges: NumNegatives &gt;= 1; AnchorIdOffset &gt;= 0; RangeMin &gt;= 0 and &lt; RangeMax; NumNegatives &lt;= RangeMax − RangeMin;
    /// CandidateDepth 0 (automatic) or &gt;= RangeMax; DuplicateThreshold, margins and score bounds finite or null,
    /// MinScore &lt;= MaxScore; SimAnsA finite &gt;= 0; SimAnsB finite; Temperature finite &gt; 0; HubnessGamma finite
    /// &gt;= 0; MaxHandOutsPerItem &gt;= 0; Threads &gt;= 0 (0 = all processors); ChunkSize &gt;= 1;
    /// <see cref="SearchParameters"/> valid (<see cref="Engine.SearchParameters.Validate"/>).</remarks>
    /// <exception cref="ArgumentOutOfRangeException">One option is out of its range (the parameter name is the option's).</exception>
    /// <exception cref="ArgumentException">Options contradict each other (empty window, MinScore &gt; MaxScore, ...).</exception>
    public void Validate()
    {
        if (NumNegatives <= 0) throw new ArgumentOutOfRangeException(nameof(NumNegatives), NumNegatives, $"NumNegatives must be at least 1 (got {NumNegatives}).");
        if (RangeMin < 0) throw new ArgumentOutOfRangeException(nameof(RangeMin), RangeMin, $"RangeMin must be >= 0 (got {RangeMin}).");
        if (RangeMin >= RangeMax)
            throw new ArgumentException($"Rank window is empty: RangeMin ({RangeMin}) must be smaller than RangeMax ({RangeMax}).", nameof(RangeMax));
        if (NumNegatives > RangeMax - RangeMin)
            throw new ArgumentException(
                $"NumNegatives ({NumNegatives}) is larger than the rank window [{RangeMin}, {RangeMax}) of {RangeMax - RangeMin} candidates.", nameof(NumNegatives));
        if (CandidateDepth < 0) throw new ArgumentOutOfRangeException(nameof(CandidateDepth), CandidateDepth, $"CandidateDepth must be >= 0 (0 = automatic; got {CandidateDepth}).");
        if (CandidateDepth > 0 && CandidateDepth < RangeMax)
            throw new ArgumentException($"CandidateDepth ({CandidateDepth}) is smaller than RangeMax ({RangeMax}).", nameof(CandidateDepth));
        CheckFinite(DuplicateThreshold, nameof(DuplicateThreshold));
        CheckFinite(AbsoluteMargin, nameof(AbsoluteMargin));
        CheckFinite(RelativeMargin, nameof(RelativeMargin));
        CheckFinite(MinScore, nameof(MinScore));
        CheckFinite(MaxScore, nameof(MaxScore));
        if (MinScore.HasValue && MaxScore.HasValue && MinScore > MaxScore)
            throw new ArgumentException($"MinScore ({MinScore}) is larger than MaxScore ({MaxScore}).", nameof(MinScore));
        if (!Enum.IsDefined(Sampling)) throw new ArgumentException($"Unknown sampling strategy {Sampling}.", nameof(Sampling));
        if (!Enum.IsDefined(Shortfall)) throw new ArgumentException($"Unknown shortfall policy {Shortfall}.", nameof(Shortfall));
        if (!Enum.IsDefined(PositiveAnchor)) throw new ArgumentException($"Unknown positive anchor {PositiveAnchor}.", nameof(PositiveAnchor));
        if (!double.IsFinite(SimAnsA) || SimAnsA < 0) throw new ArgumentOutOfRangeException(nameof(SimAnsA), SimAnsA, $"SimAnsA must be finite and >= 0 (got {SimAnsA}).");
        if (!double.IsFinite(SimAnsB)) throw new ArgumentOutOfRangeException(nameof(SimAnsB), SimAnsB, $"SimAnsB must be finite (got {SimAnsB}).");
        if (!double.IsFinite(Temperature) || Temperature <= 0) throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, $"Temperature must be finite and > 0 (got {Temperature}).");
        if (!double.IsFinite(HubnessGamma) || HubnessGamma < 0) throw new ArgumentOutOfRangeException(nameof(HubnessGamma), HubnessGamma, $"HubnessGamma must be finite and >= 0 (got {HubnessGamma}).");
        if (HubnessGamma > 0 && KOccurrence is null)
            throw new ArgumentException("HubnessGamma > 0 needs KOccurrence (N_k per corpus id, from HubnessAnalyzer).", nameof(KOccurrence));
        if (HubnessGamma > 0 && Sampling == SamplingStrategy.Top)
            throw new ArgumentException("HubnessGamma > 0 needs a sampling strategy other than top (uniform, simans or softmax).", nameof(HubnessGamma));
        if (AnchorIdOffset < 0) throw new ArgumentOutOfRangeException(nameof(AnchorIdOffset), AnchorIdOffset, $"AnchorIdOffset must be >= 0 (got {AnchorIdOffset}).");
        if (MaxHandOutsPerItem < 0) throw new ArgumentOutOfRangeException(nameof(MaxHandOutsPerItem), MaxHandOutsPerItem, $"MaxHandOutsPerItem must be >= 0 (0 = unlimited; got {MaxHandOutsPerItem}).");
        if (Threads < 0) throw new ArgumentOutOfRangeException(nameof(Threads), Threads, $"Threads must be >= 0 (0 = all processors; got {Threads}).");
        if (ChunkSize <= 0) throw new ArgumentOutOfRangeException(nameof(ChunkSize), ChunkSize, $"ChunkSize must be at least 1 (got {ChunkSize}).");
        SearchParameters?.Validate();
    }

    private static void CheckFinite(float? v, string name)
    {
        if (v.HasValue && !float.IsFinite(v.Value))
            throw new ArgumentOutOfRangeException(name, v, $"{name} must be a finite number or null (off), got {v}.");
    }
}
