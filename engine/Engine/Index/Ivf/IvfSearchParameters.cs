namespace Engine.Index.Ivf;

/// <summary>
/// Per-call knobs of an <see cref="IvfIndex"/> search (faiss <c>SearchParametersIVF</c> + refine k_factor).
/// </summary>
public sealed class IvfSearchParameters : SearchParameters
{
    /// <summary>Lists probed per query (nprobe), 1..nlist; null uses <see cref="IvfIndex.DefaultProbes"/>.</summary>
    public int? Probes { get; init; }

    /// <summary>
    /// Candidates gathered from compressed codes per result: k × RefineFactor candidates are re-ranked with the
    /// refine store (or with exact ADC when there is none). At least 1; null means 1.
    /// </summary>
    public int? RefineFactor { get; init; }

    /// <summary>Stop probing further lists once this many codes were scanned (faiss max_codes); null or 0 = no cap.</summary>
    public long? MaxCodes { get; init; }

    /// <summary>Lower bound (inclusive) of the numeric attribute window; null = unbounded below.</summary>
    public double? AttributeMin { get; init; }

    /// <summary>Upper bound (inclusive) of the numeric attribute window; null = unbounded above.</summary>
    public double? AttributeMax { get; init; }

    /// <summary>
    /// Allowed-set fraction at or below which a filtered search switches to exact search over the allowed set
    /// (probing would find too few allowed vectors). It also switches whenever the allowed set is smaller than
    /// the number of codes the probes would scan, because exact search is then cheaper. Default 0.01.
    /// </summary>
    public double ExactFallbackSelectivity { get; init; } = 0.01;

    /// <summary>True when an attribute window is set.</summary>
    public bool HasWindow => AttributeMin.HasValue || AttributeMax.HasValue;
}
