using System.Globalization;
using Engine.Mining;
using Engine.Mining.Hubness;
using Spectre.Console;

namespace Engine.Cli;

/// <summary>Spectre tables for the reports the CLI prints on a terminal (redirected output keeps the plain text).</summary>
internal static class Tables
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>A two-column table of named values.</summary>
    private static Table KeyValues(string title, IEnumerable<(string Name, string Value)> rows)
    {
        var table = new Table { Title = new TableTitle($"[bold]{Markup.Escape(title)}[/]") };
        table.AddColumn("");
        table.AddColumn(new TableColumn("value").RightAligned());
        foreach (var (name, value) in rows) table.AddRow(Markup.Escape(name), Markup.Escape(value));
        return table;
    }

    /// <summary>Counters of a mining run, then one row per score distribution.</summary>
    public static Grid Mining(MiningReport r)
    {
        var counters = KeyValues("mine", [
            ("anchors", r.Anchors.ToString("N0", Inv)), ("rows written", r.RowsWritten.ToString("N0", Inv)),
            ("negatives written", r.NegativesWritten.ToString("N0", Inv)), ("candidates", r.Candidates.ToString("N0", Inv)),
            ("anchors deepened", r.DeepenedAnchors.ToString("N0", Inv)),
            ("skipped: positives / excluded", $"{r.SkippedPositives:N0} / {r.SkippedExcluded:N0}"),
            ("skipped: near-duplicates / margin", $"{r.SkippedNearDuplicates:N0} / {r.SkippedMargin:N0}"),
            ("skipped: score bounds / below range-min", $"{r.SkippedScoreBounds:N0} / {r.SkippedBelowRangeMin:N0}"),
            ("beyond range-max / hand-out cap", $"{r.BeyondRangeMax:N0} / {r.SkippedHandOutCap:N0}"),
            ("shortfall rows (dropped / padded / short)", $"{r.ShortfallRows:N0} ({r.RowsDropped:N0} / {r.RowsPadded:N0} / {r.RowsShort:N0})"),
            ("distinct-negative ratio", r.DistinctNegativeRatio.ToString("F4", Inv)),
            ("max hand-outs / skewness", string.Create(Inv, $"{r.MaxHandOuts} / {r.HandOutSkewness:F3}")),
            ("wall", string.Create(Inv, $"{r.WallSeconds:F2} s")),
            ("peak memory", string.Create(Inv, $"{r.PeakMemoryBytes / 1048576.0:F1} MiB")),
        ]);
        var scores = new Table { Title = new TableTitle("[bold]scores[/]") };
        foreach (var c in new[] { "", "n", "mean", "std", "min", "p25", "p50", "p75", "max" }) scores.AddColumn(new TableColumn(c).RightAligned());
        foreach (var (name, s) in new[] { ("positive", r.PositiveScores), ("negative", r.NegativeScores), ("difference", r.Differences) })
            scores.AddRow(name, s.Count.ToString("N0", Inv), G(s.Mean), G(s.Std), G(s.Min), G(s.Quantile(.25)), G(s.Quantile(.5)), G(s.Quantile(.75)), G(s.Max));
        var grid = new Grid().AddColumn();
        grid.AddRow(counters);
        grid.AddRow(scores);
        return grid;
    }

    /// <summary>Hubness statistics and the top hubs.</summary>
    public static Table Hubness(HubnessReport r) => KeyValues($"hubness (k={r.K})", [
        ("queries", r.QueryCount.ToString("N0", Inv)), ("corpus", r.Occurrence.Count.ToString("N0", Inv)),
        ("N_k skewness", r.Skewness.ToString("F3", Inv)), ("Robin Hood", r.RobinHood.ToString("F3", Inv)), ("Gini", r.Gini.ToString("F3", Inv)),
        ("hubs (share / occurrence)", $"{r.HubShare.ToString("P2", Inv)} / {r.HubOccurrence.ToString("P2", Inv)}"),
        ("antihubs", r.AntihubShare.ToString("P2", Inv)),
        ("top hubs (id:count)", string.Join(", ", r.TopHubs.Take(5).Select(h => $"{h.Id}:{h.Count}"))),
    ]);

    /// <summary>One search run.</summary>
    public static Table Search(SearchResult r)
    {
        var rows = new List<(string, string)>
        {
            ("spec", r.Spec), ("data set", $"{r.Dataset} (n={r.N:N0}, nq={r.Nq:N0})"),
            ("params", r.Params.Count == 0 ? "defaults" : string.Join(' ', r.Params.Select(kv => $"{kv.Key}={kv.Value}"))),
            ("threads", r.Threads.ToString(Inv)), ($"recall@{r.K}", r.Recall.ToString("F4", Inv)), ("QPS", r.Qps.ToString("F1", Inv)),
            ("p50 / p99", string.Create(Inv, $"{r.P50Ms:F3} / {r.P99Ms:F3} ms")),
            ("resident", string.Create(Inv, $"{r.IndexBytes / 1048576.0:F2} MiB")), ("on disk", string.Create(Inv, $"{r.DiskBytes / 1048576.0:F1} MiB")),
        };
        if (r.DiskIndex)
        {
            rows.Add(("postings probed / read / cache hits per query", string.Create(Inv, $"{r.ProbedPerQuery:F1} / {r.PostingsReadPerQuery:F1} / {r.CacheHitsPerQuery:F1}")));
            rows.Add(("bytes read per query", string.Create(Inv, $"{r.BytesRead / (double)Math.Max(1, r.Nq) / 1024:F1} KiB")));
        }
        return KeyValues("search", rows);
    }

    private static string G(double v) => v.ToString("G4", Inv);
}
