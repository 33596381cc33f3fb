using Microsoft.Extensions.VectorData;

namespace Engine.VectorData;

/// <summary>
/// How a <see cref="DistanceFunction"/> maps to an engine <see cref="Metric"/> and how the index's value becomes the
/// score the abstraction promises: similarities larger-is-closer, distances smaller-is-closer.
/// </summary>
internal sealed record VectorScoring(string Function, Metric Metric, bool HigherIsCloser, Func<float, double> Score)
{
    /// <summary>The distance functions Engine offers (the default is <see cref="DistanceFunction.CosineSimilarity"/>).</summary>
    public static readonly string[] Supported =
    [
        DistanceFunction.CosineSimilarity, DistanceFunction.CosineDistance, DistanceFunction.DotProductSimilarity,
        DistanceFunction.NegativeDotProductSimilarity, DistanceFunction.EuclideanDistance, DistanceFunction.EuclideanSquaredDistance,
    ];

    /// <summary>The scoring of <paramref name="function"/> (null: cosine similarity).</summary>
    /// <exception cref="NotSupportedException">A function Engine has no metric for (named, with the supported list).</exception>
    public static VectorScoring For(string? function, string property, string collection) => (function ?? DistanceFunction.CosineSimilarity) switch
    {
        // The index reports cosine similarity for Cosine, the inner product for InnerProduct and the squared L2 distance for L2.
        DistanceFunction.CosineSimilarity => new(DistanceFunction.CosineSimilarity, Metric.Cosine, true, d => d),
        DistanceFunction.CosineDistance => new(DistanceFunction.CosineDistance, Metric.Cosine, false, d => 1.0 - d),
        DistanceFunction.DotProductSimilarity => new(DistanceFunction.DotProductSimilarity, Metric.InnerProduct, true, d => d),
        DistanceFunction.NegativeDotProductSimilarity => new(DistanceFunction.NegativeDotProductSimilarity, Metric.InnerProduct, false, d => -d),
        DistanceFunction.EuclideanDistance => new(DistanceFunction.EuclideanDistance, Metric.L2, false, d => Math.Sqrt(Math.Max(0, d))),
        DistanceFunction.EuclideanSquaredDistance => new(DistanceFunction.EuclideanSquaredDistance, Metric.L2, false, d => Math.Max(0, d)),
        var f => throw new NotSupportedException(
            $"Collection '{collection}', vector property '{property}': distance function '{f}' is not supported by Engine; use one of {string.Join(", ", Supported)}."),
    };

    /// <summary>True when <paramref name="score"/> passes <paramref name="threshold"/> (at least it for similarities, at most it for distances).</summary>
    public bool Passes(double score, double? threshold) =>
        threshold is not double t || (HigherIsCloser ? score >= t : score <= t);
}

/// <summary>Maps <see cref="IndexKind"/> names to engine index specs; any other string is taken as an engine spec.</summary>
internal static class IndexKinds
{
    /// <summary>The spec each abstraction index kind maps to (documented in docs/vectordata.md).</summary>
    public static readonly IReadOnlyDictionary<string, string> Specs = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [IndexKind.Flat] = "Flat",
        [IndexKind.Hnsw] = "HNSW32",
        [IndexKind.IvfFlat] = "IVF256,Flat",
        [IndexKind.DiskAnn] = "SPANN",
        [IndexKind.Dynamic] = "HNSW32",
    };

    /// <summary>The engine spec for <paramref name="kind"/> (null: Flat, exact search).</summary>
    /// <exception cref="NotSupportedException">Neither a known index kind nor a spec the engine's factory accepts (named).</exception>
    public static string SpecFor(string? kind, string property, string collection, int dimension, Metric metric)
    {
        if (kind is null) return "Flat";
        if (Specs.TryGetValue(kind, out var spec)) return spec;
        if (kind == IndexKind.QuantizedFlat)
            throw new NotSupportedException($"Collection '{collection}', vector property '{property}': index kind '{kind}' is not supported by Engine; " +
                $"use {string.Join(", ", Specs.Keys)} or an engine spec such as 'IVF256,PQ16' or 'HNSW32,SQ8'.");
        try
        {
            // Any composition string the engine's factory knows ("HNSW16", "IVF1024,PQ32x4fs", "SPANN(postings=64)").
            using var probe = Engine.Index.IndexFactory.Create(kind, Math.Max(1, dimension), metric);
            return kind;
        }
        catch (ArgumentException e)
        {
            throw new NotSupportedException($"Collection '{collection}', vector property '{property}': index kind '{kind}' is neither one of " +
                $"{string.Join(", ", Specs.Keys)} nor an engine index spec ({e.Message})", e);
        }
    }
}
