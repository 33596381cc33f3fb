namespace Engine.Index.Ivf;

/// <summary>
/// Per-call knobs of an <see cref="IvfIndex"/> search (faiss <c>SearchParametersIVF</c> + refine k_factor).
/// Out-of-range values are rejected with <see cref="ArgumentOutOfRangeException"/> naming the knob and its range.
/// </summary>
public sealed class IvfSearchParameters : SearchParameters
{
    /// <inheritdoc />
    public override string? IndexFamily => "IVF";

    /// <summary>Largest accepted <see cref="RefineFactor"/> (the CLI's <c>refine=</c> bound too).</summary>
    public const int MaxRefineFactor = 1 << 16;

    /// <summary>Lists probed per query (nprobe), 1..nlist (a larger value is rejected by the search, which knows
    /// nlist); null uses <see cref="IvfIndex.DefaultProbes"/>.</summary>
    public int? Probes { get; init; }

    /// <summary>
    /// Candidates gathered from compressed codes per result: k × RefineFactor candidates are re-ranked with the
    /// refine store (or, for fast-scan PQ codes without one, with exact ADC). 1..<see cref="MaxRefineFactor"/>; null
    /// means 1. Above 1 on an index with neither (Flat, PQ, binary or RaBitQ lists without a refine store), where it
    /// would change nothing, the search throws an <see cref="ArgumentException"/>.
    /// </summary>
    /// <remarks>At 1 a refine store (<c>,RFlat</c>, <c>,Refine(…)</c>) only makes the k returned distances exact: the
    /// codes alone choose the results. With binary (<c>IVF{n},BIN{b},RFlat</c>) or RaBitQ lists set 2–16 for recall; the
    /// Flat binary family's own default (<c>BinarySearchParameters.RefineFactor</c>) is 4.</remarks>
    public int? RefineFactor { get; init; }

    /// <summary>
    /// ef of the HNSW coarse quantizer's search for this call (<c>IVF{n}_HNSW{M}</c> indexes only; the search uses
    /// max(ef, probes)); 1..<see cref="Hnsw.HnswSearchParameters.MaxEf"/>; null uses <see cref="IvfIndex.CoarseHnswEf"/>.
    /// An index with the exhaustive quantizer rejects it.
    /// </summary>
    public int? QuantizerEf { get; init; }

    /// <summary>
    /// Confidence parameter ε₀ of RaBitQ's error bound for this call (<c>RaBitQ</c> / <c>RaBitQfs</c> lists only): with a
    /// refine store the scan keys are estimate − ε₀ × bound, and the refine stage stops at the first candidate whose
    /// key exceeds the k-th exact distance. Larger is safer and re-scores more (the bound holds on erf(ε₀/√2) of the
    /// pairs: 94 % at 1.9, 99.9 % at 3.3). Greater than 0 and at most 16; null uses 1.9. Other encodings reject it.
    /// </summary>
    public float? BoundEpsilon { get; init; }

    /// <summary>Stop probing further lists once this many codes were scanned (faiss max_codes); at least 1, null = no cap
    /// (the one spelling of "not set" in the parameter family: 0 is rejected rather than read as "no cap").</summary>
    public long? MaxCodes { get; init; }

    /// <summary>
    /// Range search with a refine store only: how far past the radius (in key units: squared distance for L2,
    /// similarity for inner product and cosine) an estimated key may lie and still be re-scored exactly. Finite and
    /// &gt;= 0; null lets the search estimate it per query (see <see cref="IvfIndex.RangeSearch"/>).
    /// </summary>
    public float? RangeSlack { get; init; }

    /// <summary>Lower bound (inclusive) of the numeric attribute window; null = unbounded below. Any number
    /// including -∞; NaN is rejected.</summary>
    public double? AttributeMin { get; init; }

    /// <summary>Upper bound (inclusive) of the numeric attribute window; null = unbounded above. Any number
    /// including +∞ and at least <see cref="AttributeMin"/>; NaN is rejected.</summary>
    public double? AttributeMax { get; init; }

    /// <summary>
    /// Allowed-set fraction at or below which a filtered search switches to exact search over the allowed set
    /// (probing would find too few allowed vectors). It also switches whenever the allowed set is smaller than
    /// the number of codes the probes would scan, because exact search is then cheaper. 0..1, default 0.01.
    /// </summary>
    public double ExactFallbackSelectivity { get; init; } = 0.01;

    /// <summary>True when an attribute window is set.</summary>
    public bool HasWindow => AttributeMin.HasValue || AttributeMax.HasValue;

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The attribute window is empty (<see cref="AttributeMin"/> &gt; <see cref="AttributeMax"/>).</exception>
    public override void Validate()
    {
        base.Validate();
        if (QuantizerEf is < 1 or > Hnsw.HnswSearchParameters.MaxEf)
            throw new ArgumentOutOfRangeException(nameof(QuantizerEf), QuantizerEf, $"QuantizerEf must be in 1..{Hnsw.HnswSearchParameters.MaxEf} (null = the index default), got {QuantizerEf}.");
        if (Probes is < 1)
            throw new ArgumentOutOfRangeException(nameof(Probes), Probes, $"Probes must be in 1..nlist (null = the index default), got {Probes}.");
        if (RefineFactor is < 1 or > MaxRefineFactor)
            throw new ArgumentOutOfRangeException(nameof(RefineFactor), RefineFactor, $"RefineFactor must be in 1..{MaxRefineFactor} (null = 1), got {RefineFactor}.");
        if (BoundEpsilon is float eps && !(eps > 0 && eps <= 16))
            throw new ArgumentOutOfRangeException(nameof(BoundEpsilon), eps, $"BoundEpsilon must be greater than 0 and at most 16 (null = 1.9), got {eps}.");
        if (MaxCodes is < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxCodes), MaxCodes, $"MaxCodes must be >= 1 (null = no limit; 0 is not a spelling of it), got {MaxCodes}.");
        if (RangeSlack is float slack && !(float.IsFinite(slack) && slack >= 0))
            throw new ArgumentOutOfRangeException(nameof(RangeSlack), slack, $"RangeSlack must be a finite number >= 0 (null = estimated per query), got {slack}.");
        if (AttributeMin is double lo && double.IsNaN(lo))
            throw new ArgumentOutOfRangeException(nameof(AttributeMin), lo, "AttributeMin is NaN: a bound must be a number (-inf allowed; null = unbounded).");
        if (AttributeMax is double hi && double.IsNaN(hi))
            throw new ArgumentOutOfRangeException(nameof(AttributeMax), hi, "AttributeMax is NaN: a bound must be a number (+inf allowed; null = unbounded).");
        if (AttributeMin is double a && AttributeMax is double b && a > b)
            throw new ArgumentException($"Attribute window [{a}, {b}] is empty: AttributeMin must be <= AttributeMax.", nameof(AttributeMin));
        if (!(ExactFallbackSelectivity is >= 0 and <= 1))
            throw new ArgumentOutOfRangeException(nameof(ExactFallbackSelectivity), ExactFallbackSelectivity,
                $"ExactFallbackSelectivity must be in 0..1, got {ExactFallbackSelectivity}.");
    }
}
