using System.Text.Json;
namespace Engine.Mining;

/// <summary>What <see cref="MiningAudit.Run"/> measured: how many mined decisions flip under exact scores.</summary>
/// <param name="Anchors">Anchors mined.</param>
/// <param name="ApproximateNegatives">Negatives handed out by the approximate run.</param>
/// <param name="ExactNegatives">Negatives handed out by the exact run (same options and seed).</param>
/// <param name="SetFlips">|A \ E| + |E \ A| over all anchors: negatives one run hands out and the other does not.</param>
/// <param name="FlipRate">SetFlips / (ApproximateNegatives + ExactNegatives) (0 when both are empty).</param>
/// <param name="RowsChanged">Anchors whose negative sets differ (including rows one run drops).</param>
/// <param name="ThresholdFlips">Approximate negatives whose re-scored exact score breaks a score threshold the
/// approximate score passed (margin ceiling, min/max score): false-negative risks the index introduced.</param>
/// <param name="Band">Largest |approximate − exact| score of a handed-out negative: the ambiguous band around every threshold.</param>
/// <param name="InBand">Approximate negatives whose score lies within <paramref name="Band"/> of a threshold (re-scored exactly).</param>
/// <param name="MeanScoreError">Mean |approximate − exact| score of the handed-out negatives.</param>
public sealed record MiningAuditReport(int Anchors, long ApproximateNegatives, long ExactNegatives, long SetFlips, double FlipRate,
    int RowsChanged, long ThresholdFlips, double Band, long InBand, double MeanScoreError)
{
    /// <summary>The report as JSON (snake_case keys), for the mining report.</summary>
    public string ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("anchors", Anchors);
            w.WriteNumber("approximate_negatives", ApproximateNegatives);
            w.WriteNumber("exact_negatives", ExactNegatives);
            w.WriteNumber("set_flips", SetFlips);
            w.WriteNumber("flip_rate", FlipRate);
            w.WriteNumber("rows_changed", RowsChanged);
            w.WriteNumber("threshold_flips", ThresholdFlips);
            w.WriteNumber("band", Band);
            w.WriteNumber("in_band", InBand);
            w.WriteNumber("mean_score_error", MeanScoreError);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }
}

/// <summary>
/// Exact-versus-approximate audit of a mining run: mines the same input with the same options and seed on the
/// approximate index and on an exact index over the same vectors, compares the handed-out negatives anchor by anchor,
/// and re-scores the approximate run's negatives exactly to count threshold decisions that flip.
/// </summary>
public static class MiningAudit
{
    /// <summary>Runs both minings and compares them.</summary>
    /// <param name="approximate">The index the mining run uses.</param>
    /// <param name="exact">An exact index (e.g. <c>Flat</c>) holding the same ids and vectors.</param>
    /// <param name="input">Anchors and positives.</param>
    /// <param name="options">Mining options (shared by both runs).</param>
    /// <exception cref="ArgumentException">The indexes differ in dimension, metric or count, or the input is bad.</exception>
    public static MiningAuditReport Run(IVectorIndex approximate, IVectorIndex exact, MiningInput input, MiningOptions options)
    {
        ArgumentNullException.ThrowIfNull(approximate);
        ArgumentNullException.ThrowIfNull(exact);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(options);
        if (approximate.Dimension != exact.Dimension || approximate.Metric != exact.Metric || approximate.Count != exact.Count)
            throw new ArgumentException($"The exact index ({exact.Count} × {exact.Dimension}, {exact.Metric.ToShortName()}) must hold the same vectors as the approximate one ({approximate.Count} × {approximate.Dimension}, {approximate.Metric.ToShortName()}).", nameof(exact));
        var a = new HardNegativeMiner(approximate, options).Mine(input, new MiningReport(options.Seed)).ToDictionary(r => r.Anchor);
        // The exact run keeps the call's threads and filter but not the approximate index's knobs (probes, ef, ...).
        var sp = options.SearchParameters;
        var exactOptions = options with { SearchParameters = sp is null ? null : new SearchParameters { Threads = sp.Threads, Filter = sp.Filter } };
        var e = new HardNegativeMiner(exact, exactOptions).Mine(input, new MiningReport(options.Seed)).ToDictionary(r => r.Anchor);

        long aCount = a.Values.Sum(r => (long)r.Negatives.Length), eCount = e.Values.Sum(r => (long)r.Negatives.Length);
        long flips = 0;
        int changed = 0;
        foreach (long anchor in a.Keys.Union(e.Keys))
        {
            var sa = a.TryGetValue(anchor, out var ra) ? ra.Negatives.ToHashSet() : [];
            var se = e.TryGetValue(anchor, out var re) ? re.Negatives.ToHashSet() : [];
            long diff = sa.Count(id => !se.Contains(id)) + se.Count(id => !sa.Contains(id));
            flips += diff;
            if (diff > 0 || (ra is null) != (re is null)) changed++;
        }

        // Exact re-scoring of the approximate run's negatives.
        int d = exact.Dimension;
        var anchorVec = new float[d];
        var candidate = new float[d];
        var errors = new List<(float Approx, float Exact, float Ceiling)>();
        var ceilings = new HardNegativeMiner(exact, exactOptions);
        for (int i = 0; i < input.Count; i++)
        {
            long anchorId = input.CorpusAnchorIds is not null ? input.CorpusAnchorIds[i] : options.AnchorIdOffset + i;
            if (!a.TryGetValue(anchorId, out var row)) continue;
            if (input.CorpusAnchorIds is not null)
            {
                if (!exact.TryReconstruct(anchorId, anchorVec)) continue;
            }
            else input.Vectors.AsSpan(i * input.Dimension, d).CopyTo(anchorVec);
            float pos = options.PositiveAnchor switch
            {
                PositiveAnchor.Max => row.PositiveScores.Max(),
                PositiveAnchor.Mean => (float)row.PositiveScores.Average(),
                _ => row.PositiveScores.Min(),
            };
            float ceiling = ceilings.MarginCeiling(pos);
            if (options.MaxScore is float max) ceiling = MathF.Min(ceiling, max);
            for (int j = 0; j < row.Negatives.Length; j++)
            {
                if (!exact.TryReconstruct(row.Negatives[j], candidate)) continue;
                errors.Add((row.Scores[j], HardNegativeMiner.ExactScore(exact.Metric, anchorVec, candidate), ceiling));
            }
        }
        double band = errors.Count == 0 ? 0 : errors.Max(x => Math.Abs(x.Approx - x.Exact));
        double meanError = errors.Count == 0 ? 0 : errors.Average(x => Math.Abs(x.Approx - x.Exact));
        float floor = options.MinScore ?? float.NegativeInfinity;
        long thresholdFlips = errors.Count(x => x.Exact > x.Ceiling || x.Exact < floor);
        long inBand = errors.Count(x => x.Ceiling - x.Approx <= band || x.Approx - floor <= band);
        return new MiningAuditReport(input.Count, aCount, eCount, flips, aCount + eCount == 0 ? 0 : flips / (double)(aCount + eCount),
            changed, thresholdFlips, band, inBand, meanError);
    }
}
