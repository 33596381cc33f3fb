using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Engine.Data;
using Engine.Index;
using Engine.Index.Flat;

namespace Engine.Cli;

/// <summary>
/// <c>engine search --radius R</c>: one range search over the data set's queries (distance ≤ R for l2, similarity ≥ R
/// for ip / cosine); reports results per query, time and, for an approximate index, the recall of the range result
/// against an exact scan of the data set's base vectors (ids 0..n−1, as <c>engine build</c> assigns them).
/// </summary>
internal static class RangeSearchRun
{
    /// <summary>Runs the range search; returns the exit code.</summary>
    public static int Run(IVectorIndex index, DataSet set, float radius, IReadOnlyDictionary<string, string> settings,
        int threads, bool json, TextWriter output)
    {
        RangeSearchResult.CheckRadius(index.Metric, radius);
        var parameters = IndexFactory.CreateParameters(index, settings, threads);
        var watch = Stopwatch.StartNew();
        var result = index.RangeSearch(set.Queries, radius, parameters);
        double seconds = watch.Elapsed.TotalSeconds;

        double? recall = null;
        if (index is not FlatIndex)
        {
            using var exact = new FlatIndex(set.Dimension, set.Metric);
            var ids = new long[set.Count];
            for (int i = 0; i < ids.Length; i++) ids[i] = i;
            exact.Add(set.Base, ids);
            recall = RangeSearchResult.Recall(exact.RangeSearch(set.Queries, radius, new SearchParameters { Threads = threads }), result);
        }
        long min = long.MaxValue, max = 0;
        for (int i = 0; i < result.QueryCount; i++)
        {
            long c = result.Offsets[i + 1] - result.Offsets[i];
            min = Math.Min(min, c);
            max = Math.Max(max, c);
        }
        if (result.QueryCount == 0) min = 0;
        double mean = result.TotalCount / (double)Math.Max(1, result.QueryCount);
        var inv = CultureInfo.InvariantCulture;
        if (json)
        {
            using var stream = new MemoryStream();
            using (var w = new Utf8JsonWriter(stream))
            {
                w.WriteStartObject();
                w.WriteString("spec", index.Description);
                w.WriteString("dataset", set.Name);
                w.WriteString("metric", index.Metric.ToShortName());
                w.WriteNumber("radius", radius);
                w.WriteNumber("nq", result.QueryCount);
                w.WriteNumber("results", result.TotalCount);
                w.WriteNumber("mean_per_query", Math.Round(mean, 3));
                w.WriteNumber("min_per_query", min);
                w.WriteNumber("max_per_query", max);
                w.WriteNumber("seconds", Math.Round(seconds, 4));
                w.WriteNumber("qps", Math.Round(result.QueryCount / Math.Max(seconds, 1e-9), 1));
                if (recall is double r) w.WriteNumber("range_recall", Math.Round(r, 5));
                else w.WriteNull("range_recall");
                w.WriteEndObject();
            }
            output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
        }
        else
        {
            string what = index.Metric == Metric.L2 ? "squared distance <=" : "similarity >=";
            string tail = recall is double rr ? string.Create(inv, $"  range recall vs exact={rr:F4}") : "  (exact index)";
            output.WriteLine(string.Create(inv,
                $"{index.Description} on {set.Name} ({what} {radius}): nq={result.QueryCount} results={result.TotalCount} " +
                $"per query mean={mean:F2} min={min} max={max}  {seconds * 1000:F1} ms ({result.QueryCount / Math.Max(seconds, 1e-9):F1} qps)") + tail);
        }
        return 0;
    }
}
