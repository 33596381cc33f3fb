namespace Engine;

/// <summary>
/// How two vectors are compared. Distances returned by <see cref="IVectorIndex.Search"/> follow the faiss
/// convention: <see cref="L2"/> returns the squared Euclidean distance (smaller is closer);
/// <see cref="InnerProduct"/> returns the inner product and <see cref="Cosine"/> the cosine similarity
/// (larger is closer).
/// </summary>
public enum Metric
{
    /// <summary>Squared Euclidean distance; smaller is closer.</summary>
    L2 = 0,

    /// <summary>Inner product; larger is closer.</summary>
    InnerProduct = 1,

    /// <summary>Cosine similarity (vectors normalised on insertion); larger is closer.</summary>
    Cosine = 2,
}

/// <summary>Helpers that turn metric-specific distances into one ordering and into similarity scores.</summary>
public static class MetricExtensions
{
    /// <summary>True when larger values mean closer (inner product, cosine).</summary>
    public static bool IsSimilarity(this Metric metric) => metric != Metric.L2;

    /// <summary>
    /// Converts a value returned by a search into a similarity score where larger is always closer:
    /// the value itself for inner product and cosine, the negative squared distance for L2.
    /// </summary>
    public static float ToScore(this Metric metric, float distance) => metric == Metric.L2 ? -distance : distance;

    /// <summary>The value a search reports for a padded (missing) result.</summary>
    public static float MissingDistance(this Metric metric) =>
        metric == Metric.L2 ? float.PositiveInfinity : float.NegativeInfinity;

    /// <summary>Short lowercase name used in files and on the command line: l2, ip, cosine.</summary>
    public static string ToShortName(this Metric metric) => metric switch
    {
        Metric.L2 => "l2",
        Metric.InnerProduct => "ip",
        Metric.Cosine => "cosine",
        _ => throw new ArgumentOutOfRangeException(nameof(metric), metric, "Unknown metric."),
    };

    /// <summary>Parses l2, ip / inner_product, cosine (case-insensitive).</summary>
    /// <exception cref="ArgumentException">The name is not a known metric.</exception>
    public static Metric ParseMetric(string name) => name.Trim().ToLowerInvariant() switch
    {
        "l2" or "euclidean" => Metric.L2,
        "ip" or "inner_product" or "innerproduct" or "dot" => Metric.InnerProduct,
        "cosine" or "angular" => Metric.Cosine,
        _ => throw new ArgumentException($"Unknown metric '{name}': expected l2, ip or cosine.", nameof(name)),
    };
}
