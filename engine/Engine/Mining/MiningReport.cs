using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Engine.Mining;

/// <summary>
/// What a mining pass did: how many candidates each filter removed, how many rows fell short, score distributions,
/// how evenly negatives were handed out, wall time and peak memory. Filled by <see cref="HardNegativeMiner"/> in
/// anchor order, so every number is identical for any thread count (except time and memory).
/// </summary>
public sealed class MiningReport
{
    private readonly Dictionary<long, int> _handOuts = new();
    private readonly Stopwatch _clock = new();

    /// <summary>Creates an empty report; the seed drives the quantile reservoirs.</summary>
    public MiningReport(ulong seed = 42)
    {
        PositiveScores = new ScoreSummary(seed);
        NegativeScores = new ScoreSummary(seed + 1);
        Differences = new ScoreSummary(seed + 2);
    }

    /// <summary>Anchors processed.</summary>
    public long Anchors { get; internal set; }
    /// <summary>Rows emitted.</summary>
    public long RowsWritten { get; internal set; }
    /// <summary>Negatives emitted.</summary>
    public long NegativesWritten { get; internal set; }
    /// <summary>Candidates returned by the index (padding excluded).</summary>
    public long Candidates { get; internal set; }
    /// <summary>
    /// Anchors searched a second time at the full candidate depth because the first, shallow search (used for
    /// <c>top</c> selection) left their window short. Their counts below come from the full-depth search.
    /// </summary>
    public long DeepenedAnchors { get; internal set; }
    /// <summary>Candidates removed because they are a positive of the anchor.</summary>
    public long SkippedPositives { get; internal set; }
    /// <summary>Candidates removed because they are the anchor itself or in its extra exclusion list.</summary>
    public long SkippedExcluded { get; internal set; }
    /// <summary>Candidates removed by the near-duplicate guard.</summary>
    public long SkippedNearDuplicates { get; internal set; }
    /// <summary>Candidates removed by the absolute or relative margin.</summary>
    public long SkippedMargin { get; internal set; }
    /// <summary>Candidates removed by the min/max score bounds.</summary>
    public long SkippedScoreBounds { get; internal set; }
    /// <summary>Survivors skipped by RangeMin.</summary>
    public long SkippedBelowRangeMin { get; internal set; }
    /// <summary>Survivors ranked at or beyond RangeMax (outside the window).</summary>
    public long BeyondRangeMax { get; internal set; }
    /// <summary>Window candidates passed over because their hand-out cap was reached.</summary>
    public long SkippedHandOutCap { get; internal set; }
    /// <summary>Rows whose window gave fewer than the requested negatives (before the shortfall policy).</summary>
    public long ShortfallRows { get; internal set; }
    /// <summary>Shortfall rows dropped (policy Drop).</summary>
    public long RowsDropped { get; internal set; }
    /// <summary>Rows that received negatives from deeper ranks (policy PadFromDeeper).</summary>
    public long RowsPadded { get; internal set; }
    /// <summary>Negatives taken from deeper ranks.</summary>
    public long NegativesPadded { get; internal set; }
    /// <summary>Rows emitted with fewer than the requested negatives.</summary>
    public long RowsShort { get; internal set; }
    /// <summary>Exact anchor–positive scores.</summary>
    public ScoreSummary PositiveScores { get; }
    /// <summary>Scores of emitted negatives.</summary>
    public ScoreSummary NegativeScores { get; }
    /// <summary>Positive anchor score minus negative score, per emitted negative.</summary>
    public ScoreSummary Differences { get; }
    /// <summary>Wall time of the pass in seconds.</summary>
    public double WallSeconds => _clock.Elapsed.TotalSeconds;
    /// <summary>Peak working set of the process at the end of the pass, in bytes.</summary>
    public long PeakMemoryBytes { get; private set; }

    /// <summary>Distinct negative ids / negatives emitted (1 = every negative used once; NaN when none).</summary>
    public double DistinctNegativeRatio => NegativesWritten == 0 ? double.NaN : _handOuts.Count / (double)NegativesWritten;

    /// <summary>How often each corpus id was handed out as a negative.</summary>
    public IReadOnlyDictionary<long, int> HandOuts => _handOuts;

    /// <summary>Largest hand-out count of one corpus item.</summary>
    public int MaxHandOuts => _handOuts.Count == 0 ? 0 : _handOuts.Values.Max();

    /// <summary>Skewness of hand-out counts over the items that were handed out at least once.</summary>
    public double HandOutSkewness => Statistics.Skewness(_handOuts.Values.Select(v => (double)v));

    internal int HandOutCount(long id) => _handOuts.GetValueOrDefault(id);

    internal void RecordHandOut(long id) => _handOuts[id] = _handOuts.GetValueOrDefault(id) + 1;

    internal void Start() => _clock.Start();

    internal void Stop()
    {
        _clock.Stop();
        using var p = Process.GetCurrentProcess();
        PeakMemoryBytes = p.PeakWorkingSet64;
    }

    /// <summary>The report as a JSON object (snake_case keys).</summary>
    public string ToJson(bool indented = true)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = indented }))
            WriteJson(w);
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    internal void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteNumber("anchors", Anchors);
        w.WriteNumber("rows_written", RowsWritten);
        w.WriteNumber("negatives_written", NegativesWritten);
        w.WriteNumber("candidates", Candidates);
        w.WriteNumber("deepened_anchors", DeepenedAnchors);
        w.WriteStartObject("skipped");
        w.WriteNumber("positives", SkippedPositives);
        w.WriteNumber("excluded", SkippedExcluded);
        w.WriteNumber("near_duplicates", SkippedNearDuplicates);
        w.WriteNumber("margin", SkippedMargin);
        w.WriteNumber("score_bounds", SkippedScoreBounds);
        w.WriteNumber("below_range_min", SkippedBelowRangeMin);
        w.WriteNumber("beyond_range_max", BeyondRangeMax);
        w.WriteNumber("hand_out_cap", SkippedHandOutCap);
        w.WriteEndObject();
        w.WriteStartObject("shortfall");
        w.WriteNumber("rows", ShortfallRows);
        w.WriteNumber("dropped", RowsDropped);
        w.WriteNumber("padded_rows", RowsPadded);
        w.WriteNumber("padded_negatives", NegativesPadded);
        w.WriteNumber("short_rows", RowsShort);
        w.WriteEndObject();
        w.WritePropertyName("positive_scores"); PositiveScores.WriteJson(w);
        w.WritePropertyName("negative_scores"); NegativeScores.WriteJson(w);
        w.WritePropertyName("differences"); Differences.WriteJson(w);
        JsonNumbers.Write(w, "distinct_negative_ratio", DistinctNegativeRatio);
        w.WriteNumber("max_hand_outs", MaxHandOuts);
        JsonNumbers.Write(w, "hand_out_skewness", HandOutSkewness);
        w.WriteNumber("wall_seconds", WallSeconds);
        w.WriteNumber("peak_memory_bytes", PeakMemoryBytes);
        w.WriteEndObject();
    }

    /// <summary>A short human-readable table.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"anchors {Anchors}, rows {RowsWritten}, negatives {NegativesWritten}, candidates {Candidates} (anchors searched again at full depth: {DeepenedAnchors})");
        sb.AppendLine($"skipped: positives {SkippedPositives}, excluded {SkippedExcluded}, near-duplicates {SkippedNearDuplicates}, margin {SkippedMargin}, score bounds {SkippedScoreBounds}, below range-min {SkippedBelowRangeMin}, beyond range-max {BeyondRangeMax}, hand-out cap {SkippedHandOutCap}");
        sb.AppendLine($"shortfall rows {ShortfallRows}: dropped {RowsDropped}, padded {RowsPadded} (+{NegativesPadded} negatives), kept short {RowsShort}");
        foreach (var (name, s) in new[] { ("positive", PositiveScores), ("negative", NegativeScores), ("difference", Differences) })
            sb.AppendLine($"{name,-10} n={s.Count} mean={s.Mean:G4} std={s.Std:G4} min={s.Min:G4} p25={s.Quantile(.25):G4} p50={s.Quantile(.5):G4} p75={s.Quantile(.75):G4} max={s.Max:G4}");
        sb.AppendLine($"distinct-negative ratio {DistinctNegativeRatio:F4}, max hand-outs {MaxHandOuts}, hand-out skewness {HandOutSkewness:F3}");
        sb.Append($"wall {WallSeconds:F2} s, peak memory {PeakMemoryBytes / (1024.0 * 1024.0):F1} MiB");
        return sb.ToString();
    }
}

/// <summary>Small statistics helpers shared by mining and hubness.</summary>
public static class Statistics
{
    /// <summary>Population skewness E[(x−μ)³]/σ³ (scipy.stats.skew default); NaN for fewer than 2 values, 0 when σ = 0.</summary>
    public static double Skewness(IEnumerable<double> values)
    {
        long n = 0; double mean = 0, m2 = 0, m3 = 0;
        foreach (double x in values)
        {
            // Welford-style update of the central moments (Terriberry).
            long n1 = n; n++;
            double delta = x - mean, deltaN = delta / n, term1 = delta * deltaN * n1;
            mean += deltaN;
            m3 += term1 * deltaN * (n - 2) - 3 * deltaN * m2;
            m2 += term1;
        }
        if (n < 2) return double.NaN;
        if (m2 <= 0) return 0;
        return Math.Sqrt(n) * m3 / Math.Pow(m2, 1.5);
    }
}
